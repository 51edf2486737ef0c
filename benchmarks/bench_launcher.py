"""`simbeamline start` and `stop` against bare caproto IOCs; a class started and stopped at once.

Measured in the same run, interleaved, each `--repeat` times (medians):

- start: `simbeamline start` as a user types it (a new process: command-line imports,
  supervisord, both IOCs and the repeater, until every IOC answers), against spawning
  caproto's own example `python -m caproto.ioc_examples.mini_beamline` and waiting for
  its `mini:current` to answer (the same probe), and against spawning the project's
  two IOC processes bare (no supervisord, no command line, no repeater) until both
  answer: the launcher's own cost; and against mini_beamline started by supervisord
  (a configuration holding that one program, no command line), until it answers: the
  least any IOC launched by supervisord costs, whatever the IOC;
- stop: `simbeamline stop` (until supervisord and every program have exited), against
  the same two IOC processes run bare (no supervisord) and killed by SIGTERM, until both
  have exited;
- a class (`--students`, default 30): `simbeamline class start` and `class stop` of that
  many beamlines at once, wall time of each (once).

    . .venv/bin/activate
    python benchmarks/bench_launcher.py --repeat 5 --port 5700 --students 30 --class-port 5600
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simbeamline.control import ca_env, ca_probe, classroom, launcher
from simbeamline.control.config import BeamlineConfig

CLI = [sys.executable, "-m", "simbeamline.cli"]


def wait_answering(probes: dict, what: str, timeout: float = 120.0) -> None:
    if ca_probe.answering(probes, timeout) != set(probes):
        raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")


def time_mini_beamline(port: int) -> float:
    """Spawn caproto's mini_beamline on 127.0.0.9:*port*; seconds until mini:current answers."""
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
               EPICS_CAS_BEACON_ADDR_LIST="127.255.255.255")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "caproto.ioc_examples.mini_beamline",
                             "--interfaces", "127.0.0.9"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answering({"mini": ca_probe.Channel("mini:current", "127.0.0.9", port)}, "mini_beamline")
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()


SUPERVISED_MINI = """\
[unix_http_server]
file={run}/supervisor.sock
[supervisord]
logfile={run}/supervisord.log
pidfile={run}/supervisord.pid
directory={run}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:mini]
command={python} -m caproto.ioc_examples.mini_beamline --interfaces 127.0.0.9
environment=EPICS_CA_SERVER_PORT="{port}",EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",EPICS_CAS_BEACON_ADDR_LIST="127.255.255.255"
startsecs=0
stopasgroup=true
killasgroup=true
"""


def time_supervised_mini(port: int, run: Path) -> float:
    """supervisord started as the launcher starts it (``python -m supervisor.supervisord``,
    daemonizing, then asked on its socket until it answers) with mini_beamline its one
    program; seconds until mini:current answers. supervisord is then shut down (SIGTERM)
    and waited for.

    The asking matters: supervisord's loop waits up to a second for an event on its
    sockets before it starts its programs, and the launcher's first request is that event.
    """
    run.mkdir(parents=True, exist_ok=True)
    conf = run / "supervisord.conf"
    conf.write_text(SUPERVISED_MINI.format(run=run, python=sys.executable, port=port))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
    try:
        while not launcher.supervisord_running(BeamlineConfig(run_dir=run)):
            time.sleep(launcher.POLL)  # asked as the launcher asks (its socket is there too)
        wait_answering({"mini": ca_probe.Channel("mini:current", "127.0.0.9", port)},
                       "mini_beamline under supervisord")
        return time.perf_counter() - t0
    finally:
        pid = int((run / "supervisord.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        while True:  # supervisord is not our child (it daemonized): wait for its pid to go
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)


def cli(config: BeamlineConfig, *args: str) -> float:
    """Seconds `simbeamline --port ... ARGS` takes, as a user runs it."""
    env = {**os.environ, **config.as_env()}
    t0 = time.perf_counter()
    subprocess.run([*CLI, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def time_bare(config: BeamlineConfig) -> tuple[float, float]:
    """The two IOC processes run bare (no supervisord, no command line): seconds from
    spawning them until both answer, and from SIGTERM until both exited."""
    procs = []
    t0 = time.perf_counter()
    for ioc in launcher.iocs(config):
        env = {**launcher.supervisor_env(config), "EPICS_CAS_INTF_ADDR_LIST": ioc.host}
        procs.append(subprocess.Popen([sys.executable, "-m", f"simbeamline_iocs.{ioc.name}"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        wait_answering({ioc.name: ca_probe.Channel(ioc.ready_pv, ioc.host, config.ca_port)
                        for ioc in launcher.iocs(config)}, "the bare IOCs")
        answered = time.perf_counter() - t0
        t0 = time.perf_counter()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait()
        return answered, time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.kill() if proc.poll() is None else None


def time_class(name: str, students: int, base_port: int, root: Path) -> tuple[float, float]:
    configs = classroom.class_configs(name, students, base_port=base_port, root=root)
    t0 = time.perf_counter()
    try:
        results = classroom.start(configs)
        started = time.perf_counter() - t0
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)} of {students} beamlines did not start: {failed[0]}")
    finally:
        t1 = time.perf_counter()
        classroom.stop(configs)
        stopped = time.perf_counter() - t1
    return started, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=5700, help="the beamline's CA port (and + 1, + 2)")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--class-port", type=int, default=classroom.BASE_PORT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="simbeamline-bench-") as tmp:
        config = BeamlineConfig(ca_port=args.port, run_dir=Path(tmp) / "run",
                                data_dir=Path(tmp) / "data", ad_path_map=f"/tmp={tmp}/ioc_tmp")
        ca_env.apply_client_env(config)
        rows = {"mini_beamline spawn to answering": [], "`simbeamline start`": [],
                "the same IOCs spawned bare, to answering": [],
                "mini_beamline under supervisord, to answering": [],
                "bare IOCs killed by SIGTERM": [], "`simbeamline stop`": []}
        for i in range(args.repeat):
            rows["mini_beamline spawn to answering"].append(time_mini_beamline(args.port + 2))
            rows["mini_beamline under supervisord, to answering"].append(
                time_supervised_mini(args.port + 2, Path(tmp) / "mini_run"))
            rows["`simbeamline start`"].append(cli(config, "start"))
            rows["`simbeamline stop`"].append(cli(config, "stop"))
            spawned, killed = time_bare(config)
            rows["the same IOCs spawned bare, to answering"].append(spawned)
            rows["bare IOCs killed by SIGTERM"].append(killed)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in rows.items()),
                  flush=True)
        med = {k: statistics.median(v) for k, v in rows.items()}
        print("\nmedians:")
        for k, v in med.items():
            print(f"  {k}: {v:.2f} s")
        print(f"  start ratio (simbeamline / mini_beamline): "
              f"{med['`simbeamline start`'] / med['mini_beamline spawn to answering']:.2f}x")
        print(f"  start ratio (simbeamline / the same IOCs bare): "
              f"{med['`simbeamline start`'] / med['the same IOCs spawned bare, to answering']:.2f}x")
        print(f"  mini_beamline under supervisord / mini_beamline (the floor of any supervised IOC): "
              f"{med['mini_beamline under supervisord, to answering'] / med['mini_beamline spawn to answering']:.2f}x")
        print(f"  start ratio (simbeamline / mini_beamline under supervisord): "
              f"{med['`simbeamline start`'] / med['mini_beamline under supervisord, to answering']:.2f}x")
        print(f"  stop ratio (simbeamline / SIGTERM): "
              f"{med['`simbeamline stop`'] / med['bare IOCs killed by SIGTERM']:.2f}x")
        if args.students:
            started, stopped = time_class("bench", args.students, args.class_port, Path(tmp) / "class")
            print(f"class of {args.students}: started at once in {started:.1f} s, "
                  f"stopped at once in {stopped:.1f} s")


if __name__ == "__main__":
    main()
