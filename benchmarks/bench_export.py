"""Export speed: frames per second of the exporters against tifffile alone.

Makes one run of N frames (480 x 640 int32, the spot camera's size, stored as
NPY_SEQ files with Resource/Datum documents, as the beamline's cameras store
them) in a temporary databroker catalog, then times, in the same process and on
the same disk:

- tifffile.imwrite of the same arrays, already in memory (the floor);
- np.load of each frame file + tifffile.imwrite (what any export must do at least);
- export_run(cat[uid], TiffExporter) (v2; includes the checking pass);
- db.process(db[uid], TiffExporter) (v1, the seed recipe's call);
- the same with dark subtraction, and the EDF and NeXus/HDF5 exporters;
- live export: a count() with the exporter subscribed against the same count()
  without it (the difference is what the exporter adds to each frame).

    . .venv/bin/activate
    python benchmarks/bench_export.py --frames 200

Prints a Markdown table (the figures in benchmarks/README.md, section "Export").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

SHAPE = (480, 640)


def timed(func):
    t0 = time.perf_counter()
    result = func()
    return time.perf_counter() - t0, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the median is shown")
    parser.add_argument("--dir", help="work directory (default: a new temporary one, removed after)")
    args = parser.parse_args(argv)

    import bluesky.plans as bp
    import databroker
    import tifffile
    from bluesky import RunEngine
    from ophyd.sim import SynSignalWithRegistry

    from simbeamline.export import EdfExporter, NexusExporter, TiffExporter, export_run

    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rng = np.random.default_rng(0)
        pool = [rng.poisson(1000, SHAPE).astype(np.int32) for _ in range(8)]
        counter = iter(range(10**9))
        db = databroker.temp()
        RE = RunEngine({})
        RE.subscribe(db.insert)
        (work / "frames").mkdir(exist_ok=True)
        spot = SynSignalWithRegistry(lambda: pool[next(counter) % len(pool)], name="spot_img",
                                     save_path=str(work / "frames"))
        n = args.frames
        (dark,) = RE(bp.count([spot], num=4))
        (uid,) = RE(bp.count([spot], num=n), dark_frame=dark)
        frames = np.stack(list(db[uid].data("spot_img")))
        files = sorted((work / "frames").glob("*.npy"), key=lambda p: p.stat().st_mtime)[-n:]

        template = "{start.scan_id}_{event.seq_num:05d}.tif"

        def fresh(name):
            d = work / name
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            return d

        def direct(out):
            for i, f in enumerate(frames):
                tifffile.imwrite(out / f"{i}.tif", f)

        def load_write(out):
            for i, p in enumerate(files):
                tifffile.imwrite(out / f"{i}.tif", np.load(p))

        cases = {
            "tifffile.imwrite, arrays in memory (floor)": direct,
            "np.load frame file + tifffile.imwrite": load_write,
            "export_run(cat[uid], TiffExporter)": lambda out: export_run(
                db.v2[uid], TiffExporter("spot_img", template, directory=out, dark=None)),
            "db.process(db[uid], TiffExporter)": lambda out: db.process(
                db[uid], TiffExporter("spot_img", template, directory=out, dark=None)),
            "export_run, TIFF, dark subtracted (int64 out)": lambda out: export_run(
                db.v2[uid], TiffExporter("spot_img", template, directory=out, db=db)),
            "export_run, EDF (fabio)": lambda out: export_run(db.v2[uid], EdfExporter(
                "spot_img", "{event.seq_num:05d}.edf", directory=out, dark=None)),
            "export_run, NeXus/HDF5 (h5py, one file)": lambda out: export_run(db.v2[uid], NexusExporter(
                "{start.scan_id}.h5", field="spot_img", directory=out, dark=None)),
        }
        times = {name: [] for name in cases}
        live_extra = []
        for _ in range(args.repeat):      # interleaved, each after a sync: fair to all
            for k, (name, case) in enumerate(cases.items()):
                out = fresh(f"case{k}")
                os.sync()
                times[name].append(timed(lambda: case(out))[0])
                shutil.rmtree(out)
            scratch = fresh("live_frames")      # frames of the two counts below, removed after
            spot.save_path = str(scratch)
            os.sync()
            t_plain, _ = timed(lambda: RE(bp.count([spot], num=n)))
            out = fresh("live")
            os.sync()
            live = TiffExporter("spot_img", template, directory=out, dark=None)
            inside = [0.0]

            def timed_live(name, doc):
                t0 = time.perf_counter()
                live(name, doc)
                inside[0] += time.perf_counter() - t0

            t_live, _ = timed(lambda: RE(bp.count([spot], num=n), timed_live))
            live_extra.append((t_live - t_plain, t_plain, t_live, inside[0]))
            shutil.rmtree(out)
            shutil.rmtree(scratch)

        results = [(name, n / statistics.median(ts), 1e3 * statistics.median(ts) / n)
                   for name, ts in times.items()]
        extra, t_plain, t_live, _ = sorted(live_extra)[len(live_extra) // 2]
        in_callback = statistics.median(x[3] for x in live_extra)
        results.append(("live: time inside the exporter callback during RE(count(num=N))",
                        n / in_callback, 1e3 * in_callback / n))
        results.append(("live: wall time of RE(count, exporter) minus RE(count), per frame",
                        n / extra if extra > 0 else float("inf"), 1e3 * extra / n))

        floor = results[0][1]
        print(f"{n} frames of {SHAPE[0]} x {SHAPE[1]} int32 ({frames.nbytes / n / 1e6:.2f} MB each), work dir {work}")
        print()
        print("| what | frames/s | ms/frame | vs tifffile alone |")
        print("|---|---|---|---|")
        for name, fps, ms in results:
            print(f"| {name} | {fps:.0f} | {ms:.2f} | {fps / floor:.2f}x |")
        print()
        print(f"count(num={n}) without exporter: {t_plain:.2f} s; with: {t_live:.2f} s "
              f"(median of {args.repeat}; every case run {args.repeat} times, interleaved, "
              "after os.sync())")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
