"""A session's CPU per event with pyepics' own waiting loop against ``ca_gets``.

    python benchmarks/bench_client_waits.py --rounds 10

In one session process, interleaved round by round (the order alternating), the same
count runs two ways:

- **before**: pyepics waits for each fresh CA read by spinning ``ca.poll()``
  (``ca_gets.uninstall()``), and frames are saved as ``np.save`` into a buffer, then
  written (this project's frame store before ``write_npy``);
- **after**: reads sleep until the IOC answers (``ca_gets.install()``) and frames are
  written from the array's memory (``frame_store.write_npy``).

Two plans: ``count([spot, I], num=100)`` at 5 ms exposure (two fresh reads a point:
``I`` and the suspension guard's interlock, plus the camera's frame counter) and the
classroom's ``count([spot], num=20)`` at 10 ms. Printed per plan and way: the
median (and least) wall time, this process's CPU and the beamline IOC's CPU per
event, and libca ``pend_event`` calls per event; then the after/before ratios.
Interleaving in one process keeps the machine's drift (this host's memory and
scheduling vary a lot from minute to minute) out of the ratio.

Starts the IOCs through the launcher if they are down (configuration from the
``SIMBEAMLINE_*`` variables); frames go to a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

PLANS = {"count([spot, I], num=100), 5 ms": (0.005, True, 100),
         "count([spot], num=20), 10 ms": (0.01, False, 20)}


def buffered_save(file, frame) -> None:
    """The frame store's write before write_npy: np.save into memory, then the file."""
    buffer = io.BytesIO()
    np.save(buffer, frame, allow_pickle=False)
    file.write(buffer.getbuffer())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import psutil

    from simbeamline.catalog import frame_store
    from simbeamline.control import launcher
    from simbeamline.control.config import BeamlineConfig
    from simbeamline.devices import ca_gets
    from simbeamline.session import build_session

    base = BeamlineConfig.from_env()
    launcher.ensure_running(base)
    config = dataclasses.replace(base, data_dir=Path(tempfile.mkdtemp(prefix="bench-waits-")))
    try:
        ns = build_session(config, adsim=False, table_and_plots=False, move_progress=False)
        RE, count, mv, spot, current = ns["RE"], ns["count"], ns["mv"], ns["spot"], ns["I"]
        RE(mv(ns["shutter"], "Open"))
        ioc = psutil.Process(launcher.status(config)["beamline"]["pid"])
        turns = ca_gets.TurnCounter()   # after the session: its CA settings come first
        ways = {"before": (ca_gets.uninstall, buffered_save),
                "after": (ca_gets.install, frame_store.write_npy)}
        results = {(plan, way): [] for plan in PLANS for way in ways}
        for number in range(args.rounds):
            order = list(ways) if number % 2 == 0 else list(reversed(ways))
            for plan, (exposure, with_current, frames) in PLANS.items():
                RE(mv(spot.exp, exposure))
                for way in order:
                    switch, write = ways[way]
                    switch()
                    frame_store.write_npy = write
                    detectors = [spot, current] if with_current else [spot]
                    ioc_before = sum(ioc.cpu_times()[:2])
                    turns.calls = 0
                    cpu, wall = time.process_time(), time.perf_counter()
                    RE(count(detectors, num=frames))
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    ioc_cpu = sum(ioc.cpu_times()[:2]) - ioc_before
                    results[plan, way].append(
                        (wall / frames, cpu / frames, ioc_cpu / frames, turns.calls / frames))
            print(f"round {number + 1} of {args.rounds} done", flush=True)
    finally:
        shutil.rmtree(config.data_dir, ignore_errors=True)

    print(f"\nper event, median (least) of {args.rounds} interleaved rounds")
    print("| plan | way | wall ms | client CPU ms | IOC CPU ms | pend_event calls |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for (plan, way), rows in results.items():
        columns = list(zip(*rows))
        medians[plan, way] = [statistics.median(c) for c in columns]
        cells = " | ".join(f"{1e3 * statistics.median(c):.2f} ({1e3 * min(c):.2f})"
                           for c in columns[:3])
        print(f"| {plan} | {way} | {cells} | {statistics.median(columns[3]):.1f} |")
    for plan in PLANS:
        after, before = medians[plan, "after"], medians[plan, "before"]
        print(f"{plan}: after/before wall {after[0] / before[0]:.2f}x, client CPU "
              f"{after[1] / before[1]:.2f}x, IOC CPU {after[2] / before[2]:.2f}x")


if __name__ == "__main__":
    main()
