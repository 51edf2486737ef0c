"""How long a process with ophyd takes to exit: ophyd's dispatcher stop against the
session's (``simbeamline.devices.dispatcher.calm_dispatcher``).

    python benchmarks/bench_session_exit.py --repeat 10

Each case is a fresh interpreter that connects one EPICS signal (the ring current of
the environment's beamline), waits a random part of a second (ophyd's debug monitor
thread wakes once a second, so where an exit falls in that second matters), and
exits. Measured: from its last-registered exit handler (the first to run) to the
process's end, seen by this process. "ophyd's stop" joins every dispatcher thread,
the debug monitor included; "calmed" joins only the callback threads. The cases
alternate; printed are each run, the medians and their ratio. The IOCs must be
running (``simbeamline start``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time

CHILD = r"""
import atexit, sys, time
from simbeamline.control import ca_env
config = ca_env.apply_client_env()
import ophyd
from ophyd import EpicsSignalRO
from simbeamline.devices.dispatcher import calm_dispatcher
if sys.argv[1] == "calmed":
    calm_dispatcher()
signal = EpicsSignalRO(config.prefix + "current", name="I")
signal.wait_for_connection(timeout=30)
time.sleep(float(sys.argv[2]))   # where in the debug monitor's second the exit falls
atexit.register(lambda: print(time.time(), flush=True))
"""


def exit_seconds(case: str, pause: float) -> float:
    """Seconds from the child's first exit handler to its end, seen from here."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, case, repr(pause)],
                             stdout=subprocess.PIPE, text=True)
    stamp = child.stdout.readline()
    child.wait(timeout=120)
    ended = time.time()
    if child.returncode != 0 or not stamp:
        raise SystemExit(f"{case}: the child exited {child.returncode}")
    return ended - float(stamp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    cases = ("ophyd's stop", "calmed")
    results: dict[str, list[float]] = {case: [] for case in cases}
    for n in range(args.repeat):
        pause = random.uniform(0.0, 1.0)
        for case in (cases if n % 2 == 0 else cases[::-1]):
            results[case].append(exit_seconds(case.split()[0], pause))
            print(f"  {n + 1}/{args.repeat} {case} (pause {pause:.2f} s): "
                  f"exit {results[case][-1]:.3f} s", flush=True)
    med = {case: statistics.median(values) for case, values in results.items()}
    for case, values in results.items():
        print(f"{case:13s}: exit median {med[case]:.3f} s, range {min(values):.3f}-"
              f"{max(values):.3f} s")
    print(f"ratio calmed / ophyd's stop: {med['calmed'] / med[cases[0]]:.2f}x")


if __name__ == "__main__":
    main()
