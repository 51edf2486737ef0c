"""Channel Access reads that sleep until the IOC answers, instead of spinning.

pyepics waits for the answer to a read (``epics.ca.get_complete_with_metadata``, under
every ``PV.get`` and ophyd ``get``/``read`` that is not served by a monitor) by calling
``ca.poll()`` in a loop. Each turn sleeps ten microseconds in libca, wakes, takes
the GIL and looks again: about twenty turns for a read answered in half a
millisecond, hundreds for one answered late on a busy host, every one of them CPU
taken from the IOC that is to answer. A session's count reads afresh at each point
(``I``, the suspension guard's interlock, the camera's frame counter); without
those turns a session's count costs 10 to 22 % less CPU per event
(benchmarks/bench_client_waits.py).

:func:`install` makes the answer wake the reader. pyepics stores the answer, from
libca's callback thread, in a one-element list per channel and request type
(``_CacheItem.get_results``). Those lists become :class:`_Slot`, which notify a
condition when set; while a thread is inside ``get_complete_with_metadata``, its
``poll()`` flushes the request to the IOC and waits on that condition instead of
sleeping ten microseconds. pyepics' own loop is otherwise unchanged: it still checks
the answer, keeps its time-out and its warning, and unpacks the value. A wait lasts
at most :data:`SLICE` seconds before the loop looks again, so a read times out when
pyepics says, give or take that slice.

Process-wide, like the ophyd dispatcher it sits beside (:mod:`.dispatcher`); written
against pyepics 3.5.10 (pinned in pyproject.toml). Only for preemptive callbacks
(ophyd's mode), where answers arrive on libca's own threads; otherwise a no-op.
"""

from __future__ import annotations

import threading

#: Longest single wait of a read before pyepics' loop looks at the answer and its
#: time-out again (the answer itself ends the wait at once).
SLICE = 0.05

_local = threading.local()
_installed: dict = {}


class _Slot(list):
    """A ``[answer]`` list of pyepics' read cache that wakes the readers when set."""

    __slots__ = ("board",)

    def __setitem__(self, index, value):
        super().__setitem__(index, value)
        with self.board.answered:
            self.board.answered.notify_all()


class _Board(dict):
    """``_CacheItem.get_results`` of one channel: a ``_Slot`` per request type (a
    missing type reads as ``[None]``, as pyepics' defaultdict gives it, but the list
    returned is the very ``_Slot`` stored)."""

    def __init__(self, results):
        super().__init__()
        self.answered = threading.Condition()
        for ftype, slot in results.items():
            self[ftype] = slot

    def __setitem__(self, ftype, slot):
        notifying = _Slot(slot)
        notifying.board = self
        super().__setitem__(ftype, notifying)

    def __missing__(self, ftype):
        self[ftype] = [None]
        return super().__getitem__(ftype)


def _board(entry) -> _Board:
    """*entry*'s results, made notifying (under the lock its callback sets them with)."""
    with entry.lock:
        if not isinstance(entry.get_results, _Board):
            entry.get_results = _Board(entry.get_results)
        return entry.get_results


def install() -> None:
    """Make pyepics' reads wait on their answer (idempotent; undone by
    :func:`uninstall`). A no-op unless pyepics runs with preemptive callbacks."""
    from epics import ca

    if _installed or not ca.PREEMPTIVE_CALLBACK:
        return
    poll, get_complete = ca.poll, ca.get_complete_with_metadata

    def waiting_poll(evt=1.e-5, iot=1.0):
        waiting = getattr(_local, "waiting", None)
        if waiting is None:
            return poll(evt, iot)
        board, ftype = waiting
        slot = board[ftype]
        if slot[0] is not ca.GET_PENDING:  # not a read in flight (e.g. a reconnection)
            return poll(evt, iot)
        ca.flush_io()                     # the request leaves for the IOC now
        with board.answered:
            if not board.answered.wait_for(lambda: slot[0] is not ca.GET_PENDING, SLICE):
                return poll(evt, iot)     # no answer yet: let libca have its turn
        return None

    def get_complete_with_metadata(chid, ftype=None, count=None, *args, **kwargs):
        entry = ca.get_cache(ca.name(chid))
        if not entry or getattr(_local, "waiting", None) is not None:
            return get_complete(chid, ftype, count, *args, **kwargs)
        _local.waiting = (_board(entry), ca.field_type(chid) if ftype is None else ftype)
        try:
            return get_complete(chid, ftype, count, *args, **kwargs)
        finally:
            _local.waiting = None

    _installed.update(poll=poll, get_complete_with_metadata=get_complete)
    ca.poll, ca.get_complete_with_metadata = waiting_poll, get_complete_with_metadata


def uninstall() -> None:
    """Give pyepics back its own ``poll`` and ``get_complete_with_metadata``."""
    from epics import ca

    if _installed:
        ca.poll = _installed.pop("poll")
        ca.get_complete_with_metadata = _installed.pop("get_complete_with_metadata")


def installed() -> bool:
    return bool(_installed)


class TurnCounter:
    """Counts the turns of libca's event loop that this process asks for
    (``ca.pend_event`` calls: each turn of pyepics' own waiting loop makes one) from
    its creation on; what the tests and benchmarks/bench_client_waits.py measure."""

    def __init__(self):
        from epics import ca

        self.calls = 0
        pend_event = ca.pend_event

        def counted(timeout=1e-5):
            self.calls += 1
            return pend_event(timeout)

        ca.pend_event = counted
