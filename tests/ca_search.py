"""Searches of caproto's synchronous client, resent as libca resends them.

The tests talk to IOCs of their own (other ports, other address lists) with caproto's
synchronous client, which sends a search twice, half its timeout apart (15 s at 30 s),
from one UDP socket: one unanswered search costs a test its whole timeout. Seen in CI
in the middle of a test whose other reads all answered, and under load on this
machine. libca resends within a second, with backoff. :func:`install` gives the
client that schedule: a search unanswered for SEARCH_RESEND seconds is sent again,
from a fresh socket (a new source port), until the caller's timeout.
"""

from __future__ import annotations

import time

import caproto as ca
from caproto import CaprotoTimeoutError
from caproto.sync import client as sync_client

#: Seconds a search may go unanswered before it is sent again from a fresh socket.
SEARCH_RESEND = 1.0

_caproto_search = sync_client.search


def search_resending(pv_name, udp_sock, timeout, *, max_retries=2):
    """caproto's sync ``search`` (its signature), resent every SEARCH_RESEND seconds
    from a fresh UDP socket until *timeout*; the last attempt on *udp_sock* itself."""
    deadline = time.monotonic() + timeout
    while deadline - time.monotonic() > SEARCH_RESEND:
        sock = ca.bcast_socket()
        try:
            return _caproto_search(pv_name, sock, SEARCH_RESEND, max_retries=1)
        except CaprotoTimeoutError:
            continue
        finally:
            sock.close()
    return _caproto_search(pv_name, udp_sock, max(deadline - time.monotonic(), 0.1),
                           max_retries=max_retries)


def install() -> None:
    """Make every read and write of caproto's sync client search this way
    (``make_channel`` looks ``search`` up in its module at each call)."""
    sync_client.search = search_resending
