"""CA reads that sleep until the IOC answers (``simbeamline.devices.ca_gets``).

Each case runs in a fresh interpreter against the test beamline (the change is
process-wide): it reads the ring current afresh, the way a count reads ``I`` at each
point, and counts how often libca's ``pend_event`` ran (``ca_gets.TurnCounter``),
which is what pyepics' waiting loop calls at every turn.
"""

from __future__ import annotations

import threading

import pytest
from test_session_units import fresh_process_output

from simbeamline.control import launcher

pytestmark = pytest.mark.timeout(180)

READS = 50

#: A fresh process: READS fresh reads of the ring current through ophyd, with or
#: without ca_gets installed. Prints the pend_event calls per read, the reads that
#: gave a positive current, and whether ca_gets is installed.
FRESH_READS = """
from simbeamline.control import ca_env
config = ca_env.apply_client_env()
from ophyd import EpicsSignalRO
from simbeamline.devices import ca_gets
if %(install)r:
    ca_gets.install()
turns = ca_gets.TurnCounter()
current = EpicsSignalRO(config.prefix + "current", name="I")   # no monitor: fresh reads
current.wait_for_connection(timeout=60)
current.get()
turns.calls = 0
values = [current.get() for _ in range(%(reads)d)]
print(turns.calls / len(values), sum(isinstance(v, float) and v > 0 for v in values),
      ca_gets.installed())
"""


def test_fresh_reads_sleep_until_the_answer(beamline, tmp_path):
    """Installed, a read hardly turns pyepics' loop (pyepics' own: about twenty turns
    for a read answered in half a millisecond); every read gives the current."""
    per_read, good, installed = fresh_process_output(
        FRESH_READS % {"install": True, "reads": READS}, tmp_path, beamline.as_env())
    assert (int(good), installed) == (READS, "True")
    assert float(per_read) <= 0.5, f"{per_read} pend_event calls per read"


def test_without_it_reads_spin(beamline, tmp_path):
    """The measurement above can fail: pyepics' own loop turns at least once a read."""
    per_read, good, installed = fresh_process_output(
        FRESH_READS % {"install": False, "reads": READS}, tmp_path, beamline.as_env())
    assert (int(good), installed) == (READS, "False")
    assert float(per_read) >= 1.0, f"only {per_read} pend_event calls per read"


#: A fresh process: stop the beamline IOC (SIGSTOP: its sockets stay open, it just
#: never answers), read the current with a 1 s budget, let the IOC go on (SIGCONT),
#: read again. Prints the error of the first read, how long it took and the second
#: read's value.
STOPPED_IOC = """
import os, signal, time
from simbeamline.control import ca_env
config = ca_env.apply_client_env()
from ophyd import EpicsSignalRO
from simbeamline.devices import ca_gets
ca_gets.install()
current = EpicsSignalRO(config.prefix + "current", name="I")
current.wait_for_connection(timeout=60)
os.kill(%(pid)d, signal.SIGSTOP)
try:
    started = time.monotonic()
    try:
        current.get(timeout=1.0)
        error = "none"
    except Exception as exc:
        error = type(exc).__name__
    took = time.monotonic() - started
finally:
    os.kill(%(pid)d, signal.SIGCONT)
print(error, took, current.get(timeout=30) > 0)
"""


def test_a_read_the_ioc_does_not_answer_times_out_as_pyepics_would(beamline, tmp_path):
    """A frozen IOC: the read fails with ophyd's ReadTimeoutError after its budget
    (not twice it, not never), and the next read, once the IOC runs again, succeeds."""
    pid = launcher.status(beamline)["beamline"]["pid"]
    error, took, then = fresh_process_output(
        STOPPED_IOC % {"pid": pid}, tmp_path, beamline.as_env())
    assert (error, then) == ("ReadTimeoutError", "True")
    assert 1.0 <= float(took) < 1.0 + 1.0, f"the 1 s read failed after {took} s"


def test_install_is_idempotent_and_uninstall_gives_pyepics_back(tmp_path):
    code = ("from epics import ca\n"
            "from simbeamline.devices import ca_gets\n"
            "own = (ca.poll, ca.get_complete_with_metadata)\n"
            "ca_gets.install(); patched = (ca.poll, ca.get_complete_with_metadata)\n"
            "ca_gets.install()\n"
            "again = (ca.poll, ca.get_complete_with_metadata) == patched\n"
            "ca_gets.uninstall()\n"
            "print(patched != own, again, (ca.poll, ca.get_complete_with_metadata) == own,"
            " ca_gets.installed())\n")
    assert fresh_process_output(code, tmp_path) == ["True", "True", "True", "False"]


def test_an_answer_wakes_its_reader_even_for_a_request_type_first_seen():
    """pyepics reads ``get_results[ftype]`` of a type it never asked for as ``[None]``;
    the list it gets must be the one stored, whose setting wakes a waiting reader."""
    from simbeamline.devices.ca_gets import _Board

    board = _Board({})
    slot = board[14]                      # DBR_TIME_DOUBLE, never asked for before
    assert slot == [None] and slot is board[14]
    answered = threading.Event()

    def reader():
        with board.answered:
            if board.answered.wait_for(lambda: slot[0] == "answer", timeout=60):
                answered.set()

    thread = threading.Thread(target=reader)
    thread.start()
    board[14][0] = "answer"               # what pyepics' get callback does
    thread.join(60)
    assert answered.is_set()
