"""An IOC asked to stop never hangs: after SIGINT the graceful shutdown has
EXIT_GRACE seconds, then the process writes every thread's stack and exits (a
process whose main task swallows its cancellation stands in for a stuck IOC)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from simbeamline_iocs.server import EXIT_GRACE

STUCK = r"""
import asyncio, sys
from simbeamline_iocs.server import _watch_sigint

async def main():
    _watch_sigint()
    print("ready", flush=True)
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass                      # a shutdown that never finishes

asyncio.run(main())
"""


def test_a_stuck_ioc_ends_within_the_grace_after_sigint_with_its_stacks():
    proc = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
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
