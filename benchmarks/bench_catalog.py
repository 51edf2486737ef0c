"""Benchmark of the embedded catalog at 10, 1,000 and 10,000 runs (issue 14).

For each size, a fresh catalog is filled with synthetic runs (event-model documents:
start, descriptor, 10 events, stop, through the catalog's own writer), then, medians
of ``--repeat``:

- insert: one more 10-event run through ``db.insert`` (what ``RE.subscribe(db.insert)``
  calls), start to stop;
- find by scan_id: ``db[scan_id]`` (v1), a run in the middle of the catalog;
- find by uid: ``cat[uid]`` (v2), and by its first 9 characters (``cat[uid[:9]]``);
- newest: ``db[-1]``;
- open: ``open_catalog`` (one ``stat`` per run file to notice files changed behind
  its back).

Figures are printed as times and as ratios to the 10-run catalog measured in the same
run (aim of issue 14: flat within 2x). With ``--stock``, databroker's own
``BlueskyMsgpackCatalog`` is measured too at the sizes up to 1,000 (the baseline the
issue measured).

    . .venv/bin/activate
    python benchmarks/bench_catalog.py --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from event_model import compose_run

SIZES = (10, 1_000, 10_000)


def synthetic_run(scan_id: int, events: int = 10, t0: float | None = None):
    """The documents of one run: start, descriptor, *events* events, stop."""
    run = compose_run(metadata={"scan_id": scan_id, "plan_name": "count", "detectors": ["det"]},
                      time=t0)
    yield "start", run.start_doc
    stream = run.compose_descriptor(
        name="primary", data_keys={"det": {"source": "sim", "dtype": "number", "shape": []}})
    yield "descriptor", stream.descriptor_doc
    for n in range(events):
        yield "event", stream.compose_event(data={"det": float(n)}, timestamps={"det": 0.0},
                                             seq_num=n + 1)
    yield "stop", run.compose_stop()


def median_ms(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def fill(directory: Path, n: int) -> None:
    """*n* runs through the catalog's writer (the index kept as on real inserts)."""
    from simbeamline.catalog.index import RunIndex
    from simbeamline.catalog.writer import CatalogWriter

    writer = CatalogWriter(RunIndex(directory))
    t0 = time.time() - n
    for i in range(n):
        for name, doc in synthetic_run(i + 1, t0=t0 + i):
            writer(name, doc)


def measure(open_catalog, n: int, repeat: int) -> dict:
    """Insert and lookups on the catalog *open_catalog()* returns, holding *n* runs."""
    open_ms = median_ms(open_catalog, max(3, repeat // 4))
    cat = open_catalog()
    db = cat.v1
    middle = cat[-(n // 2 or 1)].metadata["start"]
    scan_ids = iter(range(n + 1, n + 1 + 10 * repeat))

    def insert():
        for name, doc in synthetic_run(next(scan_ids)):
            db.insert(name, doc)

    return {
        "insert": median_ms(insert, repeat),
        "db[scan_id]": median_ms(lambda: db[middle["scan_id"]], repeat),
        "cat[uid]": median_ms(lambda: cat[middle["uid"]], repeat),
        "cat[uid[:9]]": median_ms(lambda: cat[middle["uid"][:9]], repeat),  # 8 hex and "-": never a scan_id
        "db[-1]": median_ms(lambda: db[-1], repeat),
        "open": open_ms,
    }


def measure_ours(directory: Path, n: int, repeat: int) -> dict:
    from simbeamline.catalog.store import open_catalog
    from simbeamline.control.config import BeamlineConfig

    config = BeamlineConfig(data_dir=directory.parent)
    started = time.perf_counter()
    fill(directory, n)
    filled = time.perf_counter() - started
    return {**measure(lambda: open_catalog(config), n, repeat), "fill s": filled}


def measure_stock(directory: Path, n: int, repeat: int) -> dict:
    """databroker's own msgpack catalog on the same kind of runs."""
    from databroker._drivers.msgpack import BlueskyMsgpackCatalog
    from suitcase.msgpack import Serializer

    t0 = time.time() - n
    for i in range(n):
        with Serializer(directory) as serializer:
            for name, doc in synthetic_run(i + 1, t0=t0 + i):
                serializer(name, doc)
    pattern = str(directory / "*.msgpack")
    return measure(lambda: BlueskyMsgpackCatalog(pattern), n, repeat)


def table(title: str, results: dict) -> None:
    sizes = list(results)
    keys = [k for k in results[sizes[0]] if k != "fill s"]
    print(f"\n{title}")
    print("| ms (median) | " + " | ".join(f"{n:,} runs" for n in sizes)
          + f" | ratio {sizes[-1]:,} / {sizes[0]:,} |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for key in keys:
        values = [results[n][key] for n in sizes]
        print(f"| {key} | " + " | ".join(f"{v:.2f}" for v in values)
              + f" | {values[-1] / values[0]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--stock", action="store_true",
                        help="also measure databroker's BlueskyMsgpackCatalog (sizes <= 1,000)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # databroker's PendingDeprecationWarning on insert
    ours, stock = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        for n in args.sizes:
            directory = Path(tmp, f"ours-{n}", "catalog")
            directory.mkdir(parents=True)
            ours[n] = measure_ours(directory, n, args.repeat)
            print(f"{n:,} runs: filled in {ours[n]['fill s']:.1f} s", flush=True)
            if args.stock and n <= 1_000:
                directory = Path(tmp, f"stock-{n}")
                directory.mkdir()
                stock[n] = measure_stock(directory, n, args.repeat)
    table("simbeamline catalog (index beside the run files)", ours)
    if stock:
        table("databroker 1.2 BlueskyMsgpackCatalog (baseline)", stock)


if __name__ == "__main__":
    main()
