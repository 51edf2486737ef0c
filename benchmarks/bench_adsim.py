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

Starts its own IOC (``python -m simbeamline_iocs.adsim``) on the port of
SIMBEAMLINE_CA_PORT (default 5064) at 127.0.0.1, writing under a temporary
directory; stops it and removes the directory at the end, even on failure.

    SIMBEAMLINE_CA_PORT=5072 python benchmarks/bench_adsim.py [--frames 100] [--events 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py


def start_ioc(port: int, tmp: Path, prefix: str):
    env = dict(os.environ)
    env.update({"EPICS_CA_SERVER_PORT": str(port), "EPICS_CAS_SERVER_PORT": str(port),
                "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
                "EPICS_CAS_BEACON_ADDR_LIST": "127.255.255.255",
                "SIMBEAMLINE_AD_PATH_MAP": f"/tmp={tmp}", "SIMBEAMLINE_PREFIX": "benchnone:"})
    with open(tmp / "ioc.log", "w") as log:    # the child keeps its own copy of the handle
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--startup", action="store_true",
                        help="only the start time / idle CPU / RSS comparison")
    args = parser.parse_args()
    port = int(os.environ.get("SIMBEAMLINE_CA_PORT", "5064"))
    if args.startup:
        return startup(port)
    os.environ.update({"EPICS_CA_ADDR_LIST": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO",
                       "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 1024 * 1024)})
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from adsim_support import AD, wait_for  # noqa: E402
    import epics  # noqa: E402

    tmp = Path(tempfile.mkdtemp(prefix="bench-adsim-"))   # ~200 MB of frames: removed at the end
    prefix = "bench:"
    proc = None
    try:
        proc = start_ioc(port, tmp, prefix)
        ad = AD(prefix)
        wait_for(lambda: epics.get_pv(prefix + "cam1:Acquire_RBV", form="native").wait_for_connection(1), 60, "IOC")
        results = {}
        for compression in ("None", "zlib"):
            ioc_dir = f"/tmp/single-{compression}/"
            ad.camera(exposure=0.0, period=0.0, mode="Multiple", num_images=args.frames)
            ad.hdf(ioc_dir, name="f", compression=compression, blocking="Yes")
            ad.put("HDF1:ZLevel", 6)
            t0 = time.perf_counter()
            ad.acquire(timeout=600)
            ioc_s = time.perf_counter() - t0
            host = tmp / ioc_dir.strip("/").split("/", 1)[1]
            files = sorted(host.glob("f_*.h5"))
            assert len(files) == args.frames, (len(files), ad.string("HDF1:WriteMessage"))
            frames = []
            for f in files:
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
            results[compression] = (args.frames / ioc_s, args.frames / loop_s)

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
