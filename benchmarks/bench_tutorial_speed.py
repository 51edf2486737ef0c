"""Benchmark of the simulation clock: the dot notebook's wall time at several time scales.

The dot Handling Images notebook as written (tests/tutorial_replay.py: counts of
1, 5 and 150 frames at 0.005 s, then the 197-point spiral at 5 s) at each time
scale, against the sum of its nominal exposures times the scale (the floor: what
the exposures alone take). The difference is the overhead the clock cannot scale
away (frame transfer, files, documents, motor moves' fixed costs).

Starts the IOCs through the launcher if they are down (configuration from the
``SIMBEAMLINE_*`` variables); uses a temporary catalog directory; the session is
quiet (no table, plots or bars). Restores time scale 1 at the end.

    . .venv/bin/activate
    python benchmarks/bench_tutorial_speed.py --scales 0.01 0.1 1
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")

    from simbeamline.control import launcher
    from simbeamline.control.config import BeamlineConfig
    from simbeamline.control.faults import FaultClient
    from simbeamline.session import build_session
    from tutorial_replay import DOT_EXPOSURES, dot_notebook, nominal_seconds

    base = BeamlineConfig.from_env()
    launcher.ensure_running(base)
    client = FaultClient(base)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-tutorial-"))
    nominal = nominal_seconds(DOT_EXPOSURES)
    print(f"dot notebook: {sum(n for _, n in DOT_EXPOSURES)} frames, nominal exposures "
          f"{nominal:.1f} s", flush=True)
    print(f"{'scale':>6} {'wall s':>8} {'exposures s':>12} {'overhead s':>11} "
          f"{'wall / exposures':>17}", flush=True)
    try:
        ns = build_session(dataclasses.replace(base, data_dir=data_dir), adsim=False,
                           table_and_plots=False, move_progress=False)
        ns["RE"](ns["mv"](ns["shutter"], "Open"))
        for scale in args.scales:
            client.set_time_scale(scale)
            started = time.perf_counter()
            dot_notebook(ns)
            wall = time.perf_counter() - started
            floor = nominal * scale
            print(f"{scale:>6g} {wall:>8.1f} {floor:>12.1f} {wall - floor:>11.1f} "
                  f"{wall / floor:>17.2f}", flush=True)
    finally:
        client.set_time_scale(1.0)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
