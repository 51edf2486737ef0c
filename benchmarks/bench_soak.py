"""Soak: memory of the client and of the beamline IOC over many spot events.

``count([spot], num=N)`` at the shortest exposure (0.001 s) in the session's quiet
RunEngine, storing every frame and document in a temporary catalog. Every
``--every`` events a document callback samples the resident memory (VmRSS) of this
process and of the beamline IOC (its pid from supervisord). The report gives each
process's growth per 1,000 events: the least-squares slope of RSS against the
event count, after the first sample (start-up and first-use allocations).

Starts the IOCs through the launcher if they are down (configuration from the
``SIMBEAMLINE_*`` variables; use your own port).

    . .venv/bin/activate
    SIMBEAMLINE_CA_PORT=5144 python benchmarks/bench_soak.py --events 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

EXPOSURE = 0.001


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of process *pid* in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def slope_per_1000(events: list[int], values: list[float]) -> float:
    """Least-squares growth of *values* per 1,000 events (MB)."""
    if len(events) < 2:
        return float("nan")
    return float(np.polyfit(np.array(events, float), np.array(values, float), 1)[0] * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=500, help="events between samples")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")

    from simbeamline.control import launcher
    from simbeamline.control.config import BeamlineConfig
    from simbeamline.session import build_session

    base = BeamlineConfig.from_env()
    launcher.ensure_running(base)
    ioc_pid = launcher._rpc(base).supervisor.getProcessInfo("beamline")["pid"]
    data_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    try:
        ns = build_session(dataclasses.replace(base, data_dir=data_dir), adsim=False,
                           table_and_plots=False, move_progress=False)
        RE, spot = ns["RE"], ns["spot"]
        spot.exp.put(EXPOSURE)
        samples: list[tuple[int, float, float, float]] = []
        counted = [0]
        started = time.perf_counter()

        def sample(name, doc):
            if name != "event":
                return
            counted[0] += 1
            if counted[0] % args.every == 0:
                samples.append((counted[0], rss_mb(), rss_mb(ioc_pid),
                                time.perf_counter() - started))

        samples.append((0, rss_mb(), rss_mb(ioc_pid), 0.0))
        RE.subscribe(sample)
        RE(ns["count"]([spot], num=args.events))
        print(f"{'events':>8} {'client MB':>10} {'IOC MB':>8} {'s':>8}")
        for events, client, ioc, seconds in samples:
            print(f"{events:>8} {client:>10.1f} {ioc:>8.1f} {seconds:>8.1f}")
        steady = samples[1:]
        xs = [s[0] for s in steady]
        print(f"client growth per 1,000 events: {slope_per_1000(xs, [s[1] for s in steady]):.2f} MB")
        print(f"IOC growth per 1,000 events:    {slope_per_1000(xs, [s[2] for s in steady]):.2f} MB")
        print(f"events per second: {args.events / (time.perf_counter() - started):.1f}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
