"""A classroom on one host: N student beamlines, each counting at the same time.

    python benchmarks/bench_classroom.py --sizes 1 10 30

For each N: N beamlines, each with its own Channel Access port (5300, 5302, ...: the
range 5300-5399 is this benchmark's) and its own run, data and IOC directories,
are started through the launcher (``simbeamline.control.launcher.start``, what
``simbeamline start`` runs), all at once; then N client processes, one per
beamline, each build the session the IPython profile builds (``build_session``,
quiet; WAVE of them at a time, as students arrive) and, released together, run ``count([spot], num=20)`` at exposure 0.01 s.

Printed per N: start time of the N beamlines; per-client wall time of the count
(median and slowest) and the slowdown of the median against the lone beamline
(N = 1, measured first in the same run); the memory of the beamlines (supervisord
and its IOCs) and of the clients (resident set sizes summed); a client's session
start-up (interpreter start to session built) and resident size; the CPU the whole
class uses while idle (every IOC, supervisord and session, over IDLE_WINDOW seconds
once all sessions are built); and, during the counts, the CPU per event of the IOCs
(their process times) and of the clients (each one's own process time of its count)
and how many of the machine's cores were busy. Every beamline is stopped after its
round, on failure and on Ctrl-C too, and the script checks that no process of its
beamlines is left.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from simbeamline.control import launcher
from simbeamline.control.config import BeamlineConfig

FIRST_PORT = 5300
LAST_PORT = 5399
EXPOSURE = 0.01
FRAMES = 20
WAVE = 5           #: client sessions opened at once
IDLE_WINDOW = 3.0  #: seconds over which the class's idle CPU is measured

CLIENT = r"""
import json, os, sys, time
started = time.time()
from ophyd.signal import EpicsSignalBase
# thirty sessions on a shared 2-core host answer slowly: ophyd's 2 s would fail them
EpicsSignalBase.set_defaults(timeout=60, connection_timeout=60)
from simbeamline.control.config import BeamlineConfig
from simbeamline.session import build_session
ns = build_session(BeamlineConfig.from_env(), adsim=False, table_and_plots=False,
                   move_progress=False)
RE = ns["RE"]
RE(ns["mv"](ns["spot"].exp, %(exposure)r))
import psutil
ready = {"startup": time.time() - float(os.environ["BENCH_SPAWNED"]),
         "rss": psutil.Process().memory_info().rss}
with open(sys.argv[1] + ".ready", "w") as f:
    json.dump(ready, f)
sys.stdin.readline()                      # released by the benchmark
t = time.perf_counter()
cpu = time.process_time()
RE(ns["count"]([ns["spot"]], num=%(frames)d))
ready["count"] = time.perf_counter() - t
ready["cpu"] = time.process_time() - cpu
ready["rss_after"] = psutil.Process().memory_info().rss
with open(sys.argv[1], "w") as f:
    json.dump(ready, f)
""" % {"exposure": EXPOSURE, "frames": FRAMES}


def configs(n: int, base: Path) -> list[BeamlineConfig]:
    out = []
    for i in range(n):
        port = FIRST_PORT + 2 * i
        if port > LAST_PORT:
            raise SystemExit(f"at most {(LAST_PORT - FIRST_PORT) // 2 + 1} beamlines fit ports "
                             f"{FIRST_PORT}-{LAST_PORT}")
        home = base / f"bl{i:02d}"
        out.append(BeamlineConfig(ca_port=port, run_dir=home / "run", data_dir=home / "data",
                                  ad_path_map=f"/tmp={home / 'ioc_tmp'}"))
    return out


def beamline_processes(config: BeamlineConfig) -> list[psutil.Process]:
    """supervisord of *config* and its children (the IOCs)."""
    try:
        pid = int((config.run_dir / "supervisord.pid").read_text())
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except (OSError, ValueError, psutil.Error):
        return []


def rss(processes) -> int:
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def cpu_seconds(processes) -> float:
    """User and system CPU time the *processes* have used so far."""
    total = 0.0
    for p in processes:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far, over all cores."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def stop_all(beamlines: list[BeamlineConfig]) -> None:
    """Stop every beamline (in parallel); then kill whatever of theirs survived."""
    left = [p for c in beamlines for p in beamline_processes(c)]

    def stop(config):
        try:
            launcher.stop(config, timeout=60)
        except Exception as exc:  # keep stopping the others
            print(f"stopping port {config.ca_port}: {exc}", file=sys.stderr)

    with ThreadPoolExecutor(max_workers=max(len(beamlines), 1)) as pool:
        list(pool.map(stop, beamlines))
    for p in left:
        try:
            if p.is_running():
                p.kill()
        except psutil.Error:
            pass


def one_round(n: int, base: Path) -> dict:
    beamlines = configs(n, base)
    clients: list[subprocess.Popen] = []
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(lambda c: launcher.start(c, timeout=300), beamlines))
        start_seconds = time.perf_counter() - start
        ioc_memory = rss(p for c in beamlines for p in beamline_processes(c))

        results = [base / f"client{i:02d}.json" for i in range(n)]
        # students open their sessions WAVE at a time (thirty sessions connecting at
        # once on a loaded 2-core host time out); all count at the same time
        for first in range(0, n, WAVE):
            wave = list(zip(beamlines, results))[first:first + WAVE]
            for config, result in wave:
                env = {**os.environ, **config.as_env(), "BENCH_SPAWNED": repr(time.time())}
                clients.append(subprocess.Popen(
                    [sys.executable, "-c", CLIENT, str(result)], env=env,
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=open(f"{result}.log", "w"), text=True))
            deadline = time.monotonic() + 600
            while not all(Path(f"{r}.ready").exists() for r in results[:first + WAVE]):
                for c, r in zip(clients, results):
                    if c.poll() is not None:
                        raise SystemExit(f"client failed: {Path(f'{r}.log').read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise SystemExit("clients did not build their sessions within 600 s")
                time.sleep(0.2)   # polling for the clients' ready files
        iocs = [p for c in beamlines for p in beamline_processes(c)]
        sessions = [psutil.Process(c.pid) for c in clients]
        client_memory = rss(sessions)
        # what the class costs while nobody counts: every IOC and every session
        idle_cpu, idle_busy, idle_wall = (cpu_seconds(iocs + sessions), busy_seconds(),
                                          time.monotonic())
        time.sleep(IDLE_WINDOW)   # a measurement window, not a wait for a condition
        idle_cores = (cpu_seconds(iocs + sessions) - idle_cpu) / (time.monotonic() - idle_wall)
        idle_machine = (busy_seconds() - idle_busy) / (time.monotonic() - idle_wall)
        ioc_cpu, busy, wall = cpu_seconds(iocs), busy_seconds(), time.monotonic()
        for c in clients:      # release them together
            c.stdin.write("go\n")
            c.stdin.flush()
        for c in clients:
            c.wait(timeout=900)
        ioc_cpu = cpu_seconds(iocs) - ioc_cpu
        busy, wall = busy_seconds() - busy, time.monotonic() - wall
        data = [json.loads(r.read_text()) for r in results]
        events = n * FRAMES
        return {
            "n": n, "start": start_seconds, "ioc_memory": ioc_memory,
            "client_memory": client_memory,
            "counts": sorted(d["count"] for d in data),
            "startup": statistics.median(d["startup"] for d in data),
            "client_rss": statistics.median(d["rss"] for d in data),
            "idle_cores": idle_cores, "idle_machine": idle_machine,
            "ioc_ms": 1e3 * ioc_cpu / events,
            "client_ms": 1e3 * sum(d["cpu"] for d in data) / events,
            "machine_ms": 1e3 * busy / events, "busy": busy / wall,
        }
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
            c.wait()
        stop_all(beamlines)
        survivors = [p for c in beamlines for p in beamline_processes(c) if p.is_running()]
        if survivors:
            print(f"WARNING: still running: {[p.pid for p in survivors]}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 30])
    args = parser.parse_args()
    # Ctrl-C / SIGTERM unwind through the finally blocks that stop the beamlines
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    base = Path(tempfile.mkdtemp(prefix="bench-classroom-"))
    rounds = []
    try:
        for n in sorted(set([1, *args.sizes])):
            rounds.append(one_round(n, base / f"n{n}"))
            r = rounds[-1]
            print(f"N={n}: started in {r['start']:.1f} s; count median "
                  f"{statistics.median(r['counts']):.2f} s, slowest {r['counts'][-1]:.2f} s; "
                  f"IOC memory {r['ioc_memory'] / 1e9:.2f} GB, clients "
                  f"{r['client_memory'] / 1e9:.2f} GB; a session starts in "
                  f"{r['startup']:.1f} s, {r['client_rss'] / 1e6:.0f} MB", flush=True)
            print(f"      idle: the class {r['idle_cores']:.2f} cores, the machine "
                  f"{r['idle_machine']:.2f}; counting: CPU per event IOCs {r['ioc_ms']:.1f} ms, "
                  f"clients {r['client_ms']:.1f} ms, machine {r['machine_ms']:.1f} ms, "
                  f"cores busy {r['busy']:.2f}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    lone = statistics.median(rounds[0]["counts"])
    print(f"\ncount([spot], num={FRAMES}) at exposure {EXPOSURE} s on every beamline at once")
    print("| beamlines | start all (s) | count median (s) | slowest (s) | slowdown vs lone |"
          " IOC memory (GB) | client memory (GB) | idle class (cores) |"
          " CPU/event IOCs + clients (ms) | machine busy (cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rounds:
        median = statistics.median(r["counts"])
        print(f"| {r['n']} | {r['start']:.1f} | {median:.2f} | {r['counts'][-1]:.2f} | "
              f"{median / lone:.1f}x | {r['ioc_memory'] / 1e9:.2f} | "
              f"{r['client_memory'] / 1e9:.2f} | {r['idle_cores']:.2f} | "
              f"{r['ioc_ms']:.1f} + {r['client_ms']:.1f} | {r['busy']:.2f} |")
    first = rounds[0]
    print(f"\na client's session: start-up {first['startup']:.1f} s (interpreter to session "
          f"built), resident {first['client_rss'] / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
