"""Benchmark of the beamline session: taking and reading back spot frames.

1. ``count([spot, I], num=150)`` at exposure 0.005 s, wall time, against
   - the floor, 150 x exposure = 0.75 s;
   - the same plan with ophyd.sim's in-process detector (``SynSignalWithRegistry``
     making a 480 x 640 int32 Poisson frame, exposure 0.005 s, stored as NPY_SEQ
     files like ours) and ``I``, on the same catalog;
   - the same detector made to expose: ophyd.sim's ``trigger`` starts the exposure and
     the next frame's draw in a thread but saves the frame it already holds and
     returns at once, so its count never waits for an exposure; this variant waits
     the exposure, draws the frame and saves it before its status finishes (what
     the spot camera's IOC and client do);
   all with the session's quiet RunEngine (no table, plots or bars) and, for the
   spot, with the session's table and plots as in the IPython session (its
   BestEffortCallback, redraws paced: simbeamline.liveplots; Agg backend).
   Beside the wall time, the CPU each plan costs per event: this process's (every
   thread) and the beamline IOC's, which is what thirty beamlines on one host run
   out of (benchmarks/README.md, "Classroom").
2. Reading those 150 frames through ``h.data('spot_img')`` against plain reads of
   the same files (``np.load``), and against ``h5py`` reads of the same frames
   copied into one HDF5 file (one dataset per frame, as the AD_HDF5_SINGLE files
   hold them).

Starts the IOCs through the launcher if they are down (configuration from the
``SIMBEAMLINE_*`` variables); uses a temporary catalog directory. Each timing runs
``--repeat`` times, interleaved; medians printed.

    . .venv/bin/activate
    python benchmarks/bench_session.py --repeat 3
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

EXPOSURE = 0.005
FRAMES = 150
SHAPE = (480, 640)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


class CpuMeter:
    """CPU seconds (user + system) spent by this process and by the beamline IOC."""

    def __init__(self, ioc_pid: int):
        import psutil

        self.ioc = psutil.Process(ioc_pid)

    def now(self) -> tuple[float, float]:
        times = self.ioc.cpu_times()
        return time.process_time(), times.user + times.system

    def measured(self, function) -> tuple[float, float, float]:
        """Run *function*; return (wall s, client CPU s, IOC CPU s) it took."""
        client, ioc = self.now()
        wall = timed(function)
        client_after, ioc_after = self.now()
        return wall, client_after - client, ioc_after - ioc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    from ophyd.signal import EpicsSignalBase

    # a shared, loaded machine can take more than ophyd's default 2 s to answer a read
    EpicsSignalBase.set_defaults(timeout=30, connection_timeout=30)

    from simbeamline.control import launcher
    from simbeamline.control.config import BeamlineConfig

    base = BeamlineConfig.from_env()
    launcher.ensure_running(base)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-session-"))
    try:
        _measure(args, dataclasses.replace(base, data_dir=data_dir))
    finally:
        # 150 frames x 3 plans x --repeat: 1-2 GB that must not outlive the benchmark
        shutil.rmtree(data_dir, ignore_errors=True)


def exposing(detector):
    """*detector* (an ophyd.sim ``SynSignalWithRegistry`` with no exposure time of its
    own) whose trigger waits EXPOSURE, then draws, saves and records its frame."""
    from ophyd import DeviceStatus
    from ophyd.sim import SynSignalWithRegistry

    def trigger():
        status = DeviceStatus(detector)

        def expose():
            time.sleep(EXPOSURE)                       # the exposure
            try:
                SynSignalWithRegistry.trigger(detector)  # draws now, saves, makes the datum
            except Exception as exc:
                status.set_exception(exc)
            else:
                status.set_finished()

        threading.Thread(target=expose, daemon=True).start()
        return status

    detector.trigger = trigger
    return detector


def _measure(args, config) -> None:
    """Take and read back the frames with *config* (its data_dir is temporary); print."""
    import h5py
    from ophyd.sim import SynSignalWithRegistry

    from simbeamline.catalog.store import frames_dir
    from simbeamline.control import launcher
    from simbeamline.session import build_session, run_engine

    ns = build_session(config, adsim=False, table_and_plots=False, move_progress=False)
    RE, db, count, mv = ns["RE"], ns["db"], ns["count"], ns["mv"]
    spot, I = ns["spot"], ns["I"]
    RE(mv(spot.exp, EXPOSURE, ns["shutter"], "Open"))
    RE(mv(ns["mtr_spotx"], 0, ns["mtr_spoty"], 0))
    rng = np.random.default_rng()
    sim = SynSignalWithRegistry(lambda: rng.poisson(1000, SHAPE).astype(np.int32), name="sim_img",
                                exposure_time=EXPOSURE, save_path=str(frames_dir(config)))
    exposed = exposing(SynSignalWithRegistry(
        lambda: rng.poisson(1000, SHAPE).astype(np.int32), name="exposed_img",
        save_path=str(frames_dir(config))))
    for detector in (sim, exposed):   # frames as external (480, 640) data, as the spot's
        detector.describe = lambda name=detector.name: {name: {
            "source": "ophyd.sim", "dtype": "array", "shape": list(SHAPE),
            "external": "FILESTORE:"}}
    RE_bec, _ = run_engine(db, progress=False, table_and_plots=True)
    RE_bec.md["scan_id"] = RE.md["scan_id"]

    meter = CpuMeter(launcher.status(config)["beamline"]["pid"])
    holder: dict = {}                 # the spot count's uid, for the read-back below
    plans = {"spot": lambda: holder.update(uid=RE(count([spot, I], num=FRAMES))[0]),
             "spot_bec": lambda: RE_bec(count([spot, I], num=FRAMES)),
             "sim": lambda: RE(count([sim, I], num=FRAMES)),
             "exposed": lambda: RE(count([exposed, I], num=FRAMES))}
    times: dict[str, list[float]] = {key: [] for key in plans}
    cpu: dict[str, list[tuple[float, float]]] = {key: [] for key in plans}
    read_times: dict[str, list[float]] = {"h.data": [], "np.load": [], "h5py": []}
    for _ in range(args.repeat):
        for key, plan in plans.items():
            wall, client_cpu, ioc_cpu = meter.measured(plan)
            times[key].append(wall)
            cpu[key].append((client_cpu, ioc_cpu))
        uid = holder["uid"]

        h = db[uid]
        resource = next(doc for name, doc in db.v2[uid].documents(fill="no")
                        if name == "resource")
        files = [Path(resource["root"]) / f"{resource['resource_path']}_{i}.npy"
                 for i in range(FRAMES)]
        h5_path = Path(config.data_dir) / "copy.h5"
        with h5py.File(h5_path, "w") as f:
            for i, path in enumerate(files):
                f.create_dataset(f"frame_{i}", data=np.load(path))

        def through_h_data():
            assert sum(1 for _ in h.data("spot_img")) == FRAMES

        def plain_np_load():
            for path in files:
                np.load(path)

        def plain_h5py():
            with h5py.File(h5_path, "r") as f:
                for i in range(FRAMES):
                    f[f"frame_{i}"][()]

        read_times["h.data"].append(timed(through_h_data))
        read_times["np.load"].append(timed(plain_np_load))
        read_times["h5py"].append(timed(plain_h5py))

    floor = FRAMES * EXPOSURE
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"count(num={FRAMES}) at exposure {EXPOSURE} s (median of {args.repeat}); "
          f"floor {floor:.2f} s")
    print("| plan | wall s | ms/frame | x floor |\n|---|---|---|---|")
    labels = {"spot": "count([spot, I]), quiet RunEngine",
              "spot_bec": "count([spot, I]), with the session's table and plots",
              "sim": "count([ophyd.sim detector, I]), quiet RunEngine",
              "exposed": "count([ophyd.sim detector made to expose, I]), quiet RunEngine"}
    for key, label in labels.items():
        print(f"| {label} | {med[key]:.2f} | {1000 * med[key] / FRAMES:.1f} | "
              f"{med[key] / floor:.1f} |")
    print(f"\nratios: spot / ophyd.sim detector (quiet) = {med['spot'] / med['sim']:.2f}x; "
          f"spot / ophyd.sim detector made to expose = {med['spot'] / med['exposed']:.2f}x; "
          f"with the session's table and plots / quiet = {med['spot_bec'] / med['spot']:.2f}x")
    print(f"\nCPU per event (median of {args.repeat}; the IOC's includes its idle work)")
    print("| plan | this process ms | beamline IOC ms | both ms |\n|---|---|---|---|")
    per_event = {}
    for key, label in labels.items():
        client = 1000 * statistics.median(c for c, _ in cpu[key]) / FRAMES
        ioc = 1000 * statistics.median(i for _, i in cpu[key]) / FRAMES
        per_event[key] = client + ioc
        print(f"| {label} | {client:.1f} | {ioc:.1f} | {client + ioc:.1f} |")
    print(f"\nCPU ratio: spot / ophyd.sim detector = {per_event['spot'] / per_event['sim']:.2f}x; "
          f"spot / made to expose = {per_event['spot'] / per_event['exposed']:.2f}x")
    rmed = {k: statistics.median(v) for k, v in read_times.items()}
    print(f"\nreading the {FRAMES} frames (median of {args.repeat})")
    print("| how | s | frames/s | x np.load |\n|---|---|---|---|")
    for key, label in (("h.data", "`h.data('spot_img')` (databroker, filled one by one)"),
                       ("np.load", "`np.load` of the same .npy files"),
                       ("h5py", "h5py, the same frames in one HDF5 file")):
        print(f"| {label} | {rmed[key]:.3f} | {FRAMES / rmed[key]:.0f} | "
              f"{rmed[key] / rmed['np.load']:.1f} |")


if __name__ == "__main__":
    main()
