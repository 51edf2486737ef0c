"""The tests' search schedule (tests/ca_search.py), against a UDP server that never
answers the first socket that asks: as a search lost for one source port (what an
IOC socket that is not read does to the datagrams hashed to it). caproto's own
schedule resends from the same socket and times out; the resending one answers."""

from __future__ import annotations

import socket
import threading
import time

import caproto as ca
import pytest
from caproto import CaprotoTimeoutError

import ca_search


@pytest.fixture
def deaf_to_the_first_asker(monkeypatch):
    """A search responder on a free loopback port that ignores the first source port
    it hears from; EPICS_CA_ADDR_LIST points only at it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    monkeypatch.setenv("EPICS_CA_ADDR_LIST", f"127.0.0.1:{port}")
    monkeypatch.setenv("EPICS_CA_AUTO_ADDR_LIST", "NO")
    stop = threading.Event()
    ignored = []

    def serve():
        broadcaster = ca.Broadcaster(our_role=ca.SERVER)
        while not stop.is_set():
            try:
                data, address = server.recvfrom(4096)
            except OSError:
                continue
            if not ignored:
                ignored.append(address)
            if address == ignored[0]:
                continue
            for command in broadcaster.recv(data, address):
                if isinstance(command, ca.SearchRequest):
                    server.sendto(broadcaster.send(ca.VersionResponse(13), ca.SearchResponse(
                        5999, None, command.cid, 13)), address)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()
    server.close()


def search_with(search, timeout):
    sock = ca.bcast_socket()
    try:
        return search("some:pv", sock, timeout)
    finally:
        sock.close()


def test_caproto_schedule_loses_a_search_lost_for_its_socket(deaf_to_the_first_asker):
    with pytest.raises(CaprotoTimeoutError):
        search_with(ca_search._caproto_search, 3.0)


def test_resending_from_fresh_sockets_finds_it_within_a_resend(deaf_to_the_first_asker):
    started = time.monotonic()
    host, port = search_with(ca_search.search_resending, 10.0)
    assert port == 5999 and host == "127.0.0.1"
    assert time.monotonic() - started < 3 * ca_search.SEARCH_RESEND
