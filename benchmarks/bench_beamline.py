"""Benchmark of the beamline IOC over Channel Access, through ophyd (pyepics).

    SIMBEAMLINE_CA_PORT=5071 python benchmarks/bench_beamline.py [--seconds 5]

Starts its own beamline IOC (``python -m simbeamline_iocs.beamline``) and, on
another loopback address, a second caproto IOC serving one static 480 x 640 int32
frame (``bench:image``), then measures:

- IOC start-up: seconds from spawning the beamline IOC to every one of its PVs
  answering;
- scalar round trips per second: put with completion (``sim:spot:exp``) and get
  (``sim:current``, no monitor cache);
- frames per second of acquire-then-read of a 480 x 640 frame through ophyd
  (exposure 1 ms, so the figure is the cost of simulating and shipping a frame),
  against reads of the static frame in the same run: the ratio is the cost of
  simulating;
- an acquisition's latency: the put with completion of ``sim:spot:acquire`` at
  ``--exposure`` (default 5 ms; median of ``--triggers``), against its floor, the
  exposure plus a scalar put-with-completion round trip measured in the same run.

Both IOCs are stopped at the end. Results are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

STATIC_HOST = "127.0.0.4"
STATIC_PREFIX = "bench:"
SHAPE = (480, 640)


def serve_static() -> None:
    """Run the static-frame IOC (this script with --serve-static)."""
    import numpy as np
    from caproto import ChannelType
    from caproto.server import PVGroup, pvproperty

    from simbeamline_iocs.server import serve
    from simbeamline_iocs.spotcam import spot_frame

    frame = spot_frame(np.random.default_rng(0), SHAPE, 0, 0, 1.0, 500.0).ravel()

    class StaticFrame(PVGroup):
        """One fixed frame, for comparison with the simulated camera."""

        image = pvproperty(value=frame, name="image", dtype=ChannelType.LONG,
                           max_length=frame.size, read_only=True)

    serve(StaticFrame, default_prefix=STATIC_PREFIX, prefix_env="BENCH_STATIC_PREFIX",
          description="static frame for benchmarks")


def rate(action, seconds: float) -> tuple[float, int]:
    """Calls per second of *action* over about *seconds* (after one warm-up call)."""
    action()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action()
        n += 1
    return n / (time.perf_counter() - start), n


def median_ms(action, count: int) -> float:
    """Median milliseconds of *count* calls of *action* (after one warm-up call)."""
    action()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[count // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="duration of each measurement (default 5)")
    parser.add_argument("--exposure", type=float, default=0.005,
                        help="exposure of the latency measurement (s, default 0.005)")
    parser.add_argument("--triggers", type=int, default=200,
                        help="acquisitions timed for the latency (default 200)")
    args = parser.parse_args()

    from simbeamline.control import ca_env
    from simbeamline.control.config import BeamlineConfig

    config = BeamlineConfig.from_env()
    port = config.ca_port
    client = ca_env.client_env(config)
    client["EPICS_CA_ADDR_LIST"] += f" {STATIC_HOST}:{port}"
    os.environ.update(client)

    beamline_env = {**os.environ, **ca_env.server_env(config, config.beamline_host)}
    static_env = {**os.environ, **ca_env.server_env(config, STATIC_HOST)}
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    from caproto.sync.client import read

    from simbeamline_iocs.beamline import make_beamline

    names = list(make_beamline(prefix=config.prefix).pvdb)
    processes = []
    try:
        start = time.perf_counter()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "simbeamline_iocs.beamline"], env=beamline_env, **quiet))
        pending = set(names)
        while pending:
            for name in list(pending):
                try:
                    read(name, timeout=0.5, repeater=False)
                    pending.discard(name)
                except Exception:   # not up yet
                    if time.perf_counter() - start > 60:
                        raise SystemExit(f"beamline IOC did not answer {name}")
        startup = time.perf_counter() - start
        processes.append(subprocess.Popen(
            [sys.executable, __file__, "--serve-static"], env=static_env, **quiet))

        from ophyd import EpicsSignal, EpicsSignalRO

        p = config.prefix
        exp = EpicsSignal(f"{p}spot:exp", name="exp")
        current = EpicsSignalRO(f"{p}current", name="current")
        acquire = EpicsSignal(f"{p}spot:acquire", name="acquire", put_complete=True)
        image = EpicsSignalRO(f"{p}spot:image", name="image")
        static = EpicsSignalRO(f"{STATIC_PREFIX}image", name="static")
        for signal in (exp, current, acquire, image, static):
            signal.wait_for_connection(timeout=30)

        put_rate, _ = rate(lambda: exp.put(1.0, wait=True), args.seconds)
        get_rate, _ = rate(lambda: current.get(use_monitor=False), args.seconds)
        exp.put(0.001, wait=True)

        def acquire_and_read():
            acquire.set(1).wait(30)
            frame = image.get(use_monitor=False)
            assert frame.size == SHAPE[0] * SHAPE[1]

        def read_static():
            frame = static.get(use_monitor=False)
            assert frame.size == SHAPE[0] * SHAPE[1]

        sim_fps, sim_n = rate(acquire_and_read, args.seconds)
        static_fps, static_n = rate(read_static, args.seconds)
        exp.put(args.exposure, wait=True)
        acquire_ms = median_ms(lambda: acquire.set(1).wait(30), args.triggers)
        round_trip_ms = median_ms(lambda: exp.put(args.exposure, wait=True), args.triggers)
        exp.put(1.0, wait=True)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)

    print(f"beamline IOC start-up to all {len(names)} PVs answering: {startup:.2f} s")
    print(f"scalar put with completion (sim:spot:exp): {put_rate:8.0f} /s")
    print(f"scalar get (sim:current):                  {get_rate:8.0f} /s")
    print(f"acquire + read 480x640 frame (exp 1 ms):   {sim_fps:8.1f} frames/s ({sim_n} frames)")
    print(f"read static 480x640 frame:                 {static_fps:8.1f} frames/s ({static_n} frames)")
    print(f"cost of simulating: static / simulated = {static_fps / sim_fps:.1f}x")
    floor_ms = 1e3 * args.exposure + round_trip_ms
    print(f"acquire put with completion at exposure {1e3 * args.exposure:g} ms "
          f"(median of {args.triggers}): {acquire_ms:.2f} ms; floor (exposure + scalar "
          f"put round trip {round_trip_ms:.2f} ms) {floor_ms:.2f} ms: "
          f"{acquire_ms / floor_ms:.2f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-static"]:
        del sys.argv[1]
        serve_static()
    else:
        main()
