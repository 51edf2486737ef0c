"""Seconds from `simbeamline start` to every IOC answering, against a bare caproto IOC.

Baseline, measured in the same run: spawn a one-PV caproto IOC directly (no
supervisord, no beamline) and wait for its PV to answer. The ratio is what the
whole beamline (supervisord, two IOC processes, hundreds of PVs) costs over the
cheapest possible start of a Python IOC on this machine.

    . .venv/bin/activate
    python benchmarks/bench_launcher.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simbeamline.control import ca_env, launcher
from simbeamline.control.config import BeamlineConfig

BARE_IOC = """
from caproto.server import PVGroup, pvproperty, run
class Bare(PVGroup):
    value = pvproperty(value=1.0)
run(Bare(prefix="bench:bare:").pvdb, interfaces=["127.0.0.9"])
"""


def time_bare_ioc(port: int) -> float:
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
               EPICS_CAS_BEACON_ADDR_LIST="127.255.255.255",
               EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST=f"127.0.0.9:{port}")
    os.environ.update({k: env[k] for k in ("EPICS_CA_AUTO_ADDR_LIST", "EPICS_CA_ADDR_LIST")})
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", BARE_IOC], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not launcher.pv_answers("bench:bare:value", timeout=0.2):
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("the bare caproto IOC did not answer within 60 s")
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()


def time_beamline(config: BeamlineConfig) -> float:
    t0 = time.perf_counter()
    try:
        launcher.start(config, timeout=60)
        return time.perf_counter() - t0
    finally:
        launcher.stop(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=5090)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="simbeamline-bench-") as tmp:
        config = BeamlineConfig(ca_port=args.port, run_dir=Path(tmp) / "run",
                                data_dir=Path(tmp) / "data", ad_path_map=f"/tmp={tmp}/ioc_tmp")
        bare, full = [], []
        for i in range(args.repeat):
            bare.append(time_bare_ioc(args.port + 1))
            ca_env.apply_client_env(config)
            full.append(time_beamline(config))
            print(f"run {i + 1}: bare IOC {bare[-1]:.2f} s, simbeamline start {full[-1]:.2f} s",
                  flush=True)
    b, f = statistics.median(bare), statistics.median(full)
    print(f"median: bare one-PV caproto IOC {b:.2f} s; `simbeamline start` to every IOC "
          f"answering {f:.2f} s; ratio {f / b:.1f}x")


if __name__ == "__main__":
    main()
