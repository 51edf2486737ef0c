"""Tiled on PostgreSQL beside the embedded catalog: what it costs and what it buys.

Starts its own beamline (IOCs, PostgreSQL, Tiled, through the launcher) in a temporary
directory, measures, prints a table of ratios and stops everything:

1. per-event cost of a count of ``spot`` (frames) with both catalogs against the
   embedded catalog alone (same session, same camera, interleaved repetitions);
2. time to find one run by scan_id in catalogs of N runs (default 100, 1,000, 10,000):
   Tiled on PostgreSQL (``c.search(ScanID(n))``, the run's start document) against the
   msgpack catalog (``cat.search({'scan_id': n})``, opened afresh as a new session would);
   runs are small (one event of ``ophyd.sim.det``): the msgpack catalog's written by
   its writer, Tiled's first by ``TiledWriter`` and the rest copied in its layout
   (``tiled_bulk.py``);
3. one frame read over HTTP (``c[uid]['primary']['spot_img'][i]``) against ``np.load``
   of its file.

    SIMBEAMLINE_CA_PORT=5071 python benchmarks/bench_tiled.py --sizes 100 1000 10000
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
from tqdm import tqdm


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


def fill_catalogs(config, n: int, first_scan_id: int, template: list) -> None:
    """Write *n* one-event runs of ophyd.sim.det into both catalogs.

    The msgpack catalog gets every run through its own writer (``db.insert``). Tiled
    gets its first run through ``TiledWriter`` over HTTP (kept in *template*), and the
    rest copied into its PostgreSQL databases in that run's layout (``tiled_bulk``):
    through ``TiledWriter`` 10,000 runs would take hours here.
    """
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import det

    from simbeamline.catalog.store import open_db
    from simbeamline.catalog.tiled import connect, tiled_writer
    from simbeamline.catalog.tiled_server import databases
    from simbeamline.control.catalog_service import CatalogService
    from tiled_bulk import BulkTiledFill

    RE = RunEngine({})
    RE.subscribe(open_db(config).insert)  # a Broker nobody else holds (issue 10)
    RE.md["scan_id"] = first_scan_id - 1
    last = first_scan_id + n - 1
    if not template:
        token = RE.subscribe(tiled_writer(connect(config)))
        template += RE(count([det], num=1))
        RE.unsubscribe(token)
        n -= 1
    dbs = databases(config, CatalogService.from_env(config))
    bulk = BulkTiledFill(dbs["catalog"], dbs["storage"], template[0])
    RE.subscribe(bulk)
    progress = tqdm(total=n, desc=f"filling to {last - 99_999} runs", unit="run",
                    leave=False)
    for _ in range(n):
        RE(count([det], num=1))
        progress.update()
    bulk.flush()
    progress.close()
    highest = open_db(config).v2.index.highest_scan_id()
    if highest != last:
        raise RuntimeError(f"the msgpack catalog's highest scan_id is {highest}, not "
                           f"{last}: runs were lost")


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

    uid = tiled()["uid"]
    assert msgpack()["uid"] == uid
    # the run Tiled found holds the same event data as the msgpack catalog's
    np.testing.assert_array_equal(client[uid]["primary"]["det"].read(),
                                  open_catalog(config)[uid].primary.read()["det"].values)
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
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
        written, template = 0, []
        for size in sorted(args.sizes):
            fill_catalogs(config, size - written, 100_000 + written, template)
            written = size
            msgpack, tiled = find_by_scan_id(config, 100_000 + size // 2, args.repeat)
            row(f"find by scan_id, {size} runs: msgpack", msgpack, "Tiled/PostgreSQL", tiled)
    finally:
        launcher.stop(config)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
