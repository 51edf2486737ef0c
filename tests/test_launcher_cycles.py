"""Start and stop, over and over: nothing left behind, and start returns when status agrees.

A private beamline (its own port, repeater port and directories) is started and stopped
SIMBEAMLINE_TEST_CYCLES times (default 200). After every start, `status` already says
every IOC answers (no "STARTING ... no answer" window); after every stop, every process
of that cycle (supervisord, both IOCs, the repeater) has exited; at the end no port of
the beamline is held.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time

import pytest

from simbeamline.control import launcher
from simbeamline.control.config import BeamlineConfig

CYCLES = int(os.environ.get("SIMBEAMLINE_TEST_CYCLES", "200"))
#: First port of the tests that run beamlines of their own (a class, these cycles).
CLASS_PORT = int(os.environ.get("SIMBEAMLINE_TEST_CLASS_PORT", "5600"))

#: A cycle takes about 5 s on the 2-core machine (the ADSim IOC's 7,395 records load in
#: about 3 s); the suite's 600 s limit is for one test, not for 200 starts.
pytestmark = pytest.mark.timeout(120 + 10 * CYCLES)


def port_free(host: str, port: int, kind: int) -> bool:
    """True if nothing holds *host*:*port* (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:  # a connection in TIME_WAIT holds no port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def beamline_ports_free(config: BeamlineConfig) -> list[str]:
    """The beamline's ports still held: IOC TCP and UDP ports, the repeater's port."""
    held = []
    for host in (config.beamline_host, config.adsim_host):
        for kind, name in ((socket.SOCK_STREAM, "TCP"), (socket.SOCK_DGRAM, "UDP")):
            if not port_free(host, config.ca_port, kind):
                held.append(f"{name} {host}:{config.ca_port}")
    if not port_free("127.0.0.1", config.repeater_port, socket.SOCK_DGRAM):
        held.append(f"repeater UDP 127.0.0.1:{config.repeater_port}")
    return held


def processes(config: BeamlineConfig) -> list[int]:
    """supervisord's pid and every program's."""
    pid = int((config.run_dir / "supervisord.pid").read_text())
    return [pid] + [info["pid"] for info in launcher._rpc(config).supervisor.getAllProcessInfo()]


@pytest.fixture
def private_beamline(tmp_path) -> BeamlineConfig:
    config = dataclasses.replace(
        BeamlineConfig.from_env(), ca_port=CLASS_PORT, run_dir=tmp_path / "run",
        data_dir=tmp_path / "data", ad_path_map=f"/tmp={tmp_path / 'ioc_tmp'}", log_dir_override=None)
    yield config
    launcher.stop(config)


def test_stop_start_cycles_leave_nothing_behind(private_beamline):
    config = private_beamline
    assert beamline_ports_free(config) == [], "another process holds this test's ports"
    t0 = time.monotonic()
    for cycle in range(CYCLES):
        assert launcher.start(config, timeout=120), f"cycle {cycle}: already running"
        states = launcher.status(config)
        assert all(s["answers"] for s in states.values()), f"cycle {cycle}: {states}"
        pids = processes(config)
        assert launcher.stop(config)
        alive = [pid for pid in pids if launcher._alive(pid)]
        assert not alive, f"cycle {cycle}: still running after stop: {alive}"
    assert beamline_ports_free(config) == []
    assert not launcher.supervisord_running(config)
    print(f"{CYCLES} stop/start cycles in {time.monotonic() - t0:.0f} s")
