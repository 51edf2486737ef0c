"""An IOC asked to stop never hangs: after SIGINT the graceful shutdown has
EXIT_GRACE seconds, then the process writes every thread's stack and exits (a
process whose main task swallows its cancellation stands in for a stuck IOC)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from simbeamline_iocs.server import EXIT_GRACE

STUCK = r"""
import asyncio, sys
from simbeamline_iocs.server import _end_on_sigint, _watch_sigint

async def main():
    _watch_sigint()
    print("ready", flush=True)
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass                      # a shutdown that never finishes

_end_on_sigint()                      # as the IOCs' serve() does before its loop
asyncio.run(main())
"""


def ignore_sigint() -> None:
    """How a background job of a shell script starts its children: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("launch", [None, ignore_sigint], ids=["plainly", "with SIGINT ignored"])
def test_a_stuck_ioc_ends_within_the_grace_after_sigint_with_its_stacks(launch):
    proc = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=launch)
    try:
        assert proc.stdout.readline().strip() == "ready"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(EXIT_GRACE + 20)
        took = time.monotonic() - started
        err = proc.stderr.read()
    finally:
        proc.kill() if proc.poll() is None else None
    assert code == 0
    assert took >= EXIT_GRACE * 0.9                  # the graceful path had its time
    assert f"still running {EXIT_GRACE:g} s after SIGINT" in err
    assert "most recent call first" in err and "asyncio/runners.py" in err   # the main thread


def test_an_ioc_started_with_sigint_ignored_still_ends_on_sigint():
    """A background job of a shell script starts its children with SIGINT ignored (a
    full test run started that way saw IOCs outlive SIGINT): the real ADSim IOC, so
    started, still ends on SIGINT, with exit status 0, within the grace."""
    from adsim_extra import ExtraADSimIOC

    server = ExtraADSimIOC(preexec_fn=ignore_sigint)
    with server:
        server.proc.send_signal(signal.SIGINT)
        code = server.proc.wait(EXIT_GRACE + 20)
    assert code == 0
