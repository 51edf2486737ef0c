"""Tiled on PostgreSQL beside the embedded catalog: what it costs and what it buys.

Starts its own beamline (IOCs, PostgreSQL, Tiled, through the launcher) in a temporary
directory, measures, prints a table of ratios and stops everything:

1. per-event cost of a count of ``spot`` (frames) with both catalogs against the
   embedded catalog alone (same session, same camera, interleaved repetitions);
2. time to find one run by scan_id in catalogs of N runs (default 100 and 1,000):
   Tiled on PostgreSQL (``c.search(ScanID(n))``, the run's start document) against the
   msgpack catalog (``cat.search({'scan_id': n})``, opened afresh as a new session would);
   runs are small (one event of ``ophyd.sim.det``), written with each catalog's writer;
3. one frame read over HTTP (``c[uid]['primary']['spot_img'][i]``) against ``np.load``
   of its file.

    SIMBEAMLINE_CA_PORT=5071 python benchmarks/bench_tiled.py --sizes 100 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _median_time(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_event(ns, config, events: int, repeat: int) -> tuple[float, float]:
    """Seconds per event: embedded alone, embedded + Tiled (interleaved)."""
    from bluesky import RunEngine
    from bluesky.plans import count

    from simbeamline.catalog.tiled import TiledRecorder
    from simbeamline.control.catalog_service import CatalogService

    alone, both = RunEngine({}), RunEngine({})
    alone.subscribe(ns["db"].insert)
    both.subscribe(ns["db"].insert)
    both.subscribe(TiledRecorder(config, CatalogService.from_env(config)))
    ns["spot"].exp.put(0.001)
    detectors = [ns["spot"], ns["I"]]
    a, b = [], []
    for _ in range(repeat):
        for RE, out in ((alone, a), (both, b)):
            start = time.perf_counter()
            RE(count(detectors, num=events))
            out.append((time.perf_counter() - start) / events)
    return statistics.median(a), statistics.median(b)


def fill_catalogs(config, n: int, first_scan_id: int) -> None:
    """Write *n* one-event runs of ophyd.sim.det into both catalogs (each its own writer)."""
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import det

    from simbeamline.catalog.store import open_db
    from simbeamline.catalog.tiled import connect, tiled_writer

    RE = RunEngine({})
    RE.subscribe(open_db(config).insert)  # a Broker nobody else holds (issue 10)
    RE.subscribe(tiled_writer(connect(config)))
    RE.md["scan_id"] = first_scan_id - 1
    for _ in range(n):
        RE(count([det], num=1))
    highest = open_db(config).v2.index.highest_scan_id()
    if highest != first_scan_id + n - 1:
        raise RuntimeError(f"the msgpack catalog's highest scan_id is {highest}, not "
                           f"{first_scan_id + n - 1}: runs were lost")


def find_by_scan_id(config, scan_id: int, repeat: int) -> tuple[float, float]:
    """Seconds to find one run's start document by scan_id: msgpack, Tiled."""
    from bluesky_tiled_plugins.queries import ScanID

    from simbeamline.catalog.store import open_catalog
    from simbeamline.catalog.tiled import connect

    def msgpack():
        cat = open_catalog(config)  # a new session opens the catalog, then searches
        uid, = cat.search({"scan_id": scan_id})
        return cat[uid].metadata["start"]

    client = connect(config, role="reader")

    def tiled():
        run, = client.search(ScanID(scan_id)).values()
        return run.metadata["start"]

    assert msgpack()["uid"] == tiled()["uid"]
    return _median_time(msgpack, repeat), _median_time(tiled, repeat)


def frame_read(ns, config, repeat: int) -> tuple[float, float]:
    """Seconds to read one spot frame: np.load of its file, Tiled over HTTP."""
    from simbeamline.catalog.tiled import connect

    uid, = ns["RE"](ns["count"]([ns["spot"]], num=5))
    client = connect(config, role="reader")
    frames = client[uid]["primary"]["spot_img"]
    files = sorted((config.data_dir / "frames").rglob("*.npy"), key=os.path.getmtime)[-5:]
    np.testing.assert_array_equal(np.load(files[3]), frames[3])
    return (_median_time(lambda: np.load(files[3]), repeat),
            _median_time(lambda: frames[3], repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from simbeamline.control import launcher
    from simbeamline.control.config import BeamlineConfig
    from simbeamline.session import build_session

    base = Path(tempfile.mkdtemp(prefix="simbeamline-bench-tiled-"))
    config = dataclasses.replace(BeamlineConfig.from_env(), run_dir=base / "run",
                                 data_dir=base / "data", ad_path_map=f"/tmp={base / 'ioc'}")
    os.environ.update(config.as_env())
    os.environ.setdefault("SIMBEAMLINE_TILED", "postgres")
    warnings.simplefilter("ignore")
    rows = []
    print(f"| measurement (median of {args.repeat}) | baseline | other | other / baseline |")
    print("|---|---|---|---|")

    def row(what, base_s, other, other_s):
        rows.append(what)
        print(f"| {what} vs {other} | {base_s * 1e3:.2f} ms | {other_s * 1e3:.2f} ms "
              f"| {other_s / base_s:.2f}x |", flush=True)

    try:
        launcher.start(config, timeout=120)
        ns = build_session(config, adsim=False, table_and_plots=False, move_progress=False)
        alone, both = per_event(ns, config, args.events, args.repeat)
        row("per event, count of spot: embedded alone", alone, "embedded + Tiled", both)
        load, http = frame_read(ns, config, args.repeat * 4)
        row("one frame: np.load of the file", load, "Tiled over HTTP", http)
        written = 0
        for size in sorted(args.sizes):
            fill_catalogs(config, size - written, 100_000 + written)
            written = size
            msgpack, tiled = find_by_scan_id(config, 100_000 + size // 2, args.repeat)
            row(f"find by scan_id, {size} runs: msgpack", msgpack, "Tiled/PostgreSQL", tiled)
    finally:
        launcher.stop(config)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
