"""Benchmark of the ADSimDetector IOC (issues 3 and 8).

``--startup``: only this, each a ratio to caproto's ``mini_beamline`` example IOC
measured the same way in the same run: seconds from process start to the last
record answering a CA read, then idle CPU (%) and RSS (MB) over 10 s, with every
plugin loaded and disabled (the boot state, as commonPlugins boots).

1. Frames per second written in HDF5 Single mode, 1024 x 1024 UInt8, uncompressed
   and zlib (level 6), against a plain h5py loop writing the same frames to the
   same disk in the same run (that loop is the limit).
2. Events per second of ``count([adsimdet], num=N)`` (the seed's device, apstools
   ``ad_creator``) against the same count with ophyd.sim's in-process image
   detector ``img``.

``--single``: only (1), uncompressed, in ``--repeats`` interleaved rounds (IOC run,
then the h5py loop on its frames), medians reported. With ``--baseline-iocs DIR``
(a copy of an earlier ``iocs/`` tree, e.g. ``git archive <commit> iocs``) each round
also runs that IOC (as package ``simbeamline_iocs`` from DIR, on the next port):
before and after, interleaved, under the same load.

``--chain``: frames per second through cam1 -> ROI1 -> Stats2 -> HDF1 (Single mode,
uncompressed; ROI1 the whole frame unless ``--roi``, Stats2 computing its
statistics) against cam1 -> HDF1, both in the same IOC, alternated ``--repeats``
times; the ratio of the medians and the median of the per-round ratios.

Starts its own IOC (``python -m simbeamline_iocs.adsim``) on the port of
SIMBEAMLINE_CA_PORT (default 5064) at 127.0.0.1, writing under a temporary
directory; stops it and removes the directory at the end, even on failure.

    SIMBEAMLINE_CA_PORT=5072 python benchmarks/bench_adsim.py [--frames 100] [--events 50]
    SIMBEAMLINE_CA_PORT=5072 python benchmarks/bench_adsim.py --chain [--repeats 5]
    SIMBEAMLINE_CA_PORT=5072 python benchmarks/bench_adsim.py --single [--baseline-iocs DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py


def start_ioc(port: int, tmp: Path, prefix: str, iocs_dir: Path | None = None):
    """The IOC on *port*, writing through the path map into *tmp*; with *iocs_dir*
    (a directory holding a package ``simbeamline_iocs``) that code instead of the
    installed one."""
    env = dict(os.environ)
    env.update({"EPICS_CA_SERVER_PORT": str(port), "EPICS_CAS_SERVER_PORT": str(port),
                "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
                "EPICS_CAS_BEACON_ADDR_LIST": "127.255.255.255",
                "SIMBEAMLINE_AD_PATH_MAP": f"/tmp={tmp}", "SIMBEAMLINE_PREFIX": "benchnone:"})
    if iocs_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(iocs_dir), env.get("PYTHONPATH")]))
    with open(tmp / f"ioc-{prefix.strip(':')}.log", "w") as log:   # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-m", "simbeamline_iocs.adsim", "--prefix", prefix],
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_ioc(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _last_record_answers(cmd, env, last_pv, port):
    """Start *cmd*; seconds until *last_pv* answers a CA read, and the process."""
    from caproto.sync.client import read

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited with {proc.returncode}")
        try:
            read(last_pv, timeout=0.2, repeater=False)
            return time.perf_counter() - t0, proc
        except Exception:
            continue


def _idle(pid, seconds=10.0):
    """(CPU %, RSS MB) of process *pid* over *seconds*."""
    def cpu():
        with open(f"/proc/{pid}/stat") as f:
            return sum(map(int, f.read().split()[13:15])) / os.sysconf("SC_CLK_TCK")
    c0 = cpu()
    time.sleep(seconds)
    used = cpu() - c0
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return 100 * used / seconds, rss


def startup(port: int) -> None:
    from caproto.ioc_examples.mini_beamline import MiniBeamline

    os.environ.update({"EPICS_CA_ADDR_LIST": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO"})
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
               EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO", EPICS_CAS_BEACON_ADDR_LIST="127.255.255.255",
               SIMBEAMLINE_PREFIX="benchnone:", SIMBEAMLINE_AD_PATH_MAP="")
    mini_last = list(MiniBeamline(prefix="mini:").pvdb)[-1]
    runs = {
        "mini_beamline": ([sys.executable, "-m", "caproto.ioc_examples.mini_beamline",
                           "--prefix", "mini:", "--interfaces", "127.0.0.1"], mini_last),
        "adsim": ([sys.executable, "-m", "simbeamline_iocs.adsim", "--prefix", "bench:"],
                  "bench:Pva1:ArrayRate_RBV"),
    }
    results = {}
    for name, (cmd, last) in runs.items():
        seconds, proc = _last_record_answers(cmd, env, last, port)
        try:
            results[name] = (seconds, *_idle(proc.pid))
        finally:
            stop_ioc(proc)
    (m_s, m_cpu, m_rss), (a_s, a_cpu, a_rss) = results["mini_beamline"], results["adsim"]
    print("## ADSim IOC start and idle (7,395 records, every plugin loaded, disabled)")
    print(f"start to last record answering: adsim {a_s:.2f} s, mini_beamline {m_s:.2f} s, "
          f"ratio {a_s / m_s:.2f}")
    print(f"idle CPU over 10 s: adsim {a_cpu:.1f} %, mini_beamline {m_cpu:.1f} %")
    print(f"RSS: adsim {a_rss:.0f} MB, mini_beamline {m_rss:.0f} MB, ratio {a_rss / m_rss:.2f}")


def _median(values):
    return statistics.median(values)


def _wait_ioc(prefix: str) -> None:
    import epics
    from adsim_support import wait_for

    wait_for(lambda: epics.get_pv(prefix + "cam1:Acquire_RBV", form="native")
             .wait_for_connection(1), 60, f"IOC {prefix}")


def _single_run(ad, tmp: Path, ioc_dir: str, frames: int, compression: str = "None",
                noise: float | None = None):
    """One Single-mode run of *frames* frames into *ioc_dir*: (frames/s, host directory).
    *noise*: cam1:Noise for the run (None: as it is, 10 from boot)."""
    ad.camera(exposure=0.0, period=0.0, mode="Multiple", num_images=frames)
    if noise is not None:
        ad.put("cam1:Noise", noise)
    ad.hdf(ioc_dir, name="f", compression=compression, blocking="Yes")
    ad.put("HDF1:ZLevel", 6)
    t0 = time.perf_counter()
    ad.acquire(timeout=600)
    seconds = time.perf_counter() - t0
    host = tmp / ioc_dir.strip("/").split("/", 1)[1]
    files = sorted(host.glob("f_*.h5"))
    assert len(files) == frames, (len(files), ad.string("HDF1:WriteMessage"))
    return frames / seconds, host


def _h5py_loop(frames_from: Path, out: Path) -> float:
    """Frames/s of a plain h5py loop writing the frames of *frames_from*'s files
    (uncompressed, one 2-D dataset a file) into *out*."""
    frames = []
    for f in sorted(frames_from.glob("f_*.h5")):
        with h5py.File(f, "r") as h:
            frames.append(h["/entry/data/data"][()])
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        with h5py.File(out / f"f_{i:06d}.h5", "w") as h:
            h.create_dataset("/entry/data/data", data=frame)
    return len(frames) / (time.perf_counter() - t0)


def _ca_env(*ports: int) -> None:
    os.environ.update({"EPICS_CA_ADDR_LIST": " ".join(f"127.0.0.1:{p}" for p in ports),
                       "EPICS_CA_AUTO_ADDR_LIST": "NO",
                       "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 1024 * 1024)})
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def single(port: int, frames: int, repeats: int, baseline_iocs: Path | None,
           noise: float | None = None) -> None:
    """Single-mode uncompressed frames/s against the h5py loop, interleaved rounds;
    with *baseline_iocs*, that IOC too in every round."""
    ports = [port] + ([port + 1] if baseline_iocs else [])
    _ca_env(*ports)
    from adsim_support import AD

    tmp = Path(tempfile.mkdtemp(prefix="bench-adsim-"))
    variants = {"this tree": ("bench:", port, None)}
    if baseline_iocs:
        variants["baseline"] = ("benchbase:", port + 1, baseline_iocs)
    procs = []
    results = {name: [] for name in variants}
    loops = []
    try:
        for prefix, p, iocs_dir in variants.values():
            procs.append(start_ioc(p, tmp, prefix, iocs_dir))
        for prefix, _, _ in variants.values():
            _wait_ioc(prefix)
        for r in range(repeats):
            last_host = None
            for name, (prefix, _, _) in variants.items():
                fps, host = _single_run(AD(prefix), tmp, f"/tmp/{name[:4]}-{r}/", frames,
                                        noise=noise)
                results[name].append(fps)
                if last_host is not None:
                    shutil.rmtree(last_host)
                last_host = host
            loops.append(_h5py_loop(last_host, tmp / f"h5py-{r}"))
            shutil.rmtree(last_host)
            shutil.rmtree(tmp / f"h5py-{r}")
            print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in results.items())
                  + f", h5py loop {loops[-1]:.1f} frames/s", flush=True)
    finally:
        for proc in procs:
            stop_ioc(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    loop = _median(loops)
    print(f"## Single mode, uncompressed, {frames} frames 1024x1024 UInt8 (Peaks, Noise "
          f"{'10 (boot)' if noise is None else noise}), {repeats} rounds "
          f"(medians; load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"plain h5py loop: {loop:.1f} frames/s (rounds {min(loops):.0f}-{max(loops):.0f})")
    for name, values in results.items():
        ratios = [v / l for v, l in zip(values, loops)]
        print(f"IOC ({name}): {_median(values):.1f} frames/s (rounds {min(values):.1f}-"
              f"{max(values):.1f}), ratio of medians {_median(values) / loop:.2f}, "
              f"median per-round ratio {_median(ratios):.2f}")


def chain(port: int, frames: int, repeats: int, roi: int | None,
          noise: float | None = None) -> None:
    """cam1 -> ROI1 -> Stats2 -> HDF1 against cam1 -> HDF1 (frames/s), alternated."""
    _ca_env(port)
    from adsim_support import AD

    tmp = Path(tempfile.mkdtemp(prefix="bench-adsim-chain-"))
    prefix = "bench:"
    proc = None
    rates = {"cam1 -> HDF1": [], "cam1 -> ROI1 -> Stats2 -> HDF1": []}
    try:
        proc = start_ioc(port, tmp, prefix)
        _wait_ioc(prefix)
        ad = AD(prefix)
        size = roi or 1024
        start = (1024 - size) // 2
        for suffix, value in (("MinX", start), ("MinY", start), ("SizeX", size),
                              ("SizeY", size), ("BinX", 1), ("BinY", 1), ("EnableX", "Enable"),
                              ("EnableY", "Enable"), ("DataTypeOut", "Automatic"),
                              ("EnableScale", "Disable")):
            ad.put(f"ROI1:{suffix}", value)
        ad.put("Stats2:ComputeStatistics", "Yes")
        for r in range(repeats):
            for name in rates:
                chained = "ROI1" in name
                for plugin, source in (("ROI1", "SIM1"), ("Stats2", "ROI1")):
                    ad.put(f"{plugin}:NDArrayPort", source)
                    ad.put(f"{plugin}:EnableCallbacks", "Enable" if chained else "Disable")
                    ad.put(f"{plugin}:BlockingCallbacks", "Yes")
                    ad.put(f"{plugin}:ArrayCallbacks", "Enable")
                counters = {p: ad.get(f"{p}:ArrayCounter_RBV") for p in ("ROI1", "Stats2")}
                ioc_dir = f"/tmp/chain-{r}-{int(chained)}/"
                ad.hdf(ioc_dir, name="f", compression="None", blocking="Yes")   # HDF1 <- SIM1
                if chained:
                    ad.put("HDF1:NDArrayPort", "STATS2")
                fps, host = _single_run(ad, tmp, ioc_dir, frames, noise=noise)
                moved = {p: ad.get(f"{p}:ArrayCounter_RBV") - counters[p] for p in counters}
                assert moved == ({p: frames for p in counters} if chained else
                                 {p: 0 for p in counters}), (name, moved)
                with h5py.File(sorted(host.glob("f_*.h5"))[-1], "r") as h:
                    assert h["/entry/data/data"].shape == ((size, size) if chained else (1024, 1024))
                shutil.rmtree(host)
                rates[name].append(fps)
            print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items())
                  + " frames/s", flush=True)
    finally:
        if proc is not None:
            stop_ioc(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    direct, chained = rates.values()
    print(f"## Plugin chain, Single mode uncompressed, {frames} frames 1024x1024 UInt8 a run, "
          f"ROI1 {roi or 1024}x{roi or 1024}, Noise {'10 (boot)' if noise is None else noise}, "
          f"{repeats} rounds (load average "
          f"{os.getloadavg()[0]:.1f} at the end)")
    for name, values in rates.items():
        print(f"{name}: median {_median(values):.1f} frames/s "
              f"(rounds {min(values):.1f}-{max(values):.1f})")
    print(f"ratio chain / direct: {_median(chained) / _median(direct):.2f} (medians), "
          f"{_median([c / d for c, d in zip(chained, direct)]):.2f} (median per round)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--startup", action="store_true",
                        help="only the start time / idle CPU / RSS comparison")
    parser.add_argument("--chain", action="store_true",
                        help="only cam1 -> ROI1 -> Stats2 -> HDF1 against cam1 -> HDF1")
    parser.add_argument("--single", action="store_true",
                        help="only Single-mode uncompressed writing against the h5py loop")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved rounds of --chain / --single")
    parser.add_argument("--roi", type=int, default=None,
                        help="--chain: ROI1 a centred square of this size (default: the frame)")
    parser.add_argument("--noise", type=float, default=None,
                        help="--chain / --single: cam1:Noise (default: the boot value, 10)")
    parser.add_argument("--baseline-iocs", type=Path, default=None,
                        help="--single: also run the IOC from this copy of iocs/ in each round")
    args = parser.parse_args()
    port = int(os.environ.get("SIMBEAMLINE_CA_PORT", "5064"))
    if args.startup:
        return startup(port)
    if args.chain:
        return chain(port, args.frames, args.repeats, args.roi, args.noise)
    if args.single:
        baseline = args.baseline_iocs
        if baseline is not None and not (baseline / "simbeamline_iocs" / "adsim").is_dir():
            parser.error(f"--baseline-iocs {baseline}: no simbeamline_iocs/adsim package in it")
        return single(port, args.frames, args.repeats, baseline, args.noise)
    os.environ.update({"EPICS_CA_ADDR_LIST": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO",
                       "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 1024 * 1024)})
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from adsim_support import AD  # noqa: E402

    tmp = Path(tempfile.mkdtemp(prefix="bench-adsim-"))   # ~200 MB of frames: removed at the end
    prefix = "bench:"
    proc = None
    try:
        proc = start_ioc(port, tmp, prefix)
        ad = AD(prefix)
        _wait_ioc(prefix)
        results = {}
        for compression in ("None", "zlib"):
            ioc_fps, host = _single_run(ad, tmp, f"/tmp/single-{compression}/", args.frames,
                                        compression)
            frames = []
            for f in sorted(host.glob("f_*.h5")):
                with h5py.File(f, "r") as h:
                    frames.append(h["/entry/data/data"][()])
            # the limit: a plain h5py loop, same frames, same disk, same filter
            kwargs = {"compression": "gzip", "compression_opts": 6, "chunks": (1024, 1024)} \
                if compression == "zlib" else {}
            out = tmp / f"h5py-{compression}"
            out.mkdir()
            t0 = time.perf_counter()
            for i, frame in enumerate(frames):
                with h5py.File(out / f"f_{i:06d}.h5", "w") as h:
                    h.create_dataset("/entry/data/data", data=frame, **kwargs)
            loop_s = time.perf_counter() - t0
            results[compression] = (ioc_fps, args.frames / loop_s)

        # events per second of count([adsimdet], num=N)
        import bluesky
        import bluesky.plans as bp
        import databroker
        from ophyd.sim import img
        from test_adsim_seed import recapitulation  # the seed's device, verbatim

        seed = recapitulation(prefix, tmp)
        det = seed["adsimdet"]
        RE = bluesky.RunEngine()
        db = databroker.temp()
        RE.subscribe(db.insert)
        t0 = time.perf_counter()
        RE(bp.count([det], num=args.events))
        ad_eps = args.events / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        RE(bp.count([img], num=args.events))
        sim_eps = args.events / (time.perf_counter() - t0)
    finally:
        if proc is not None:
            stop_ioc(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"## ADSimDetector benchmark ({args.frames} frames 1024x1024 UInt8, {args.events} events)")
    for compression, (ioc_fps, loop_fps) in results.items():
        print(f"Single mode {compression:5s}: IOC {ioc_fps:7.1f} frames/s, plain h5py loop "
              f"{loop_fps:7.1f} frames/s, ratio {ioc_fps / loop_fps:.2f}")
    print(f"count([adsimdet], num={args.events}): {ad_eps:.1f} events/s; "
          f"count([ophyd.sim.img]): {sim_eps:.1f} events/s; ratio {ad_eps / sim_eps:.3f}")


if __name__ == "__main__":
    main()
