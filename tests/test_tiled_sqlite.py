"""The catalog service on SQLite (``simbeamline start --tiled sqlite``), end to end, against
real processes: the command line starts the IOCs and a Tiled server on SQLite files under
the beamline's supervisord (no PostgreSQL), a session counts a spot camera into both
catalogs, the run is read back over HTTP, and ``simbeamline stop`` leaves nothing running.

Ports: SIMBEAMLINE_TEST_CA_PORT + 24 for this beamline's IOCs and
SIMBEAMLINE_TEST_TILED_PORT + 2 for its Tiled server, apart from the other Tiled tests'.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from session_support import CHILD_TIMEOUT, new_session
from simbeamline.control import catalog_service, launcher
from tiled_support import CA_PORT, TILED_PORT, extra_beamline, reader
from waiting import wait_for

pytestmark = pytest.mark.timeout(900)

SQLITE_TILED_PORT = TILED_PORT + 2


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simbeamline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT)


def _descendants(pid: int) -> set[int]:
    """*pid* and every process below it (from /proc), e.g. supervisord and its programs."""
    found, todo = set(), [pid]
    while todo:
        pid = todo.pop()
        found.add(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def test_sqlite_service_start_count_read_back_stop(beamline_config, tmp_path):
    from bluesky import RunEngine
    from bluesky.plans import count
    from bluesky_tiled_plugins.queries import ScanID
    from ophyd.sim import det

    from simbeamline.catalog.store import open_catalog, open_db
    from simbeamline.catalog.tiled import connect, tiled_writer

    config = extra_beamline(tmp_path, "sq", CA_PORT + 24, beamline_config)
    env = {key: value for key, value in os.environ.items() if key != "SIMBEAMLINE_TILED"}
    env.update(config.as_env(), SIMBEAMLINE_TILED_PORT=str(SQLITE_TILED_PORT))
    started = _cli("start", "--tiled", "sqlite", env=env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        service = catalog_service.saved_service(config)
        assert (service.mode, service.programs) == ("sqlite", [catalog_service.TILED_PROGRAM])
        assert service.tiled_uri == f"http://127.0.0.1:{SQLITE_TILED_PORT}"
        status = _cli("status", env=env)
        assert catalog_service.TILED_PROGRAM in status.stdout, status.stdout + status.stderr
        assert catalog_service.POSTGRES_PROGRAM not in status.stdout
        assert not catalog_service.pg_data_dir(config).exists()  # no PostgreSQL at all
        assert (catalog_service.tiled_data_dir(config) / "catalog.db").exists()

        # a session in another shell finds the service the launcher started
        ns = new_session(config)
        ns["RE"](ns["mv"](ns["spot"].exp, 0.005))
        uid, = ns["RE"](ns["count"]([ns["spot"], ns["I"]], num=3))
        scan_id = ns["db"][uid].start["scan_id"]
        client = reader(config, service)
        frames = client[uid]["primary"]["spot_img"]
        assert frames.shape == (3, 480, 640)
        embedded = list(ns["db"][uid].data("spot_img"))
        for i, frame in enumerate(embedded):
            np.testing.assert_array_equal(frames[i], frame)
        assert list(client.search(ScanID(scan_id))) == [uid]
        assert client[uid].metadata["start"]["beamline_prefix"] == "sq:"

        # bench_tiled's fill (issue 10): a Broker nobody else holds beside a TiledWriter;
        # every run is found by its scan_id in both catalogs
        RE = RunEngine({})
        RE.subscribe(open_db(config).insert)
        RE.subscribe(tiled_writer(connect(config, service)))
        RE.md["scan_id"] = 99_999
        uids = []
        for _ in range(3):
            uids += RE(count([det]))
            gc.collect()
        fresh = open_catalog(config)
        for n, uid in zip((100_000, 100_001, 100_002), uids):
            assert list(fresh.search({"scan_id": n})) == [uid]
            assert list(client.search(ScanID(n))) == [uid]

        supervisord = int((config.run_dir / "supervisord.pid").read_text())
        running = _descendants(supervisord)
        programs = {info["name"]: info["pid"]
                    for info in launcher._rpc(config).supervisor.getAllProcessInfo()}
        assert programs[catalog_service.TILED_PROGRAM] in running
    finally:
        stopped = _cli("stop", env=env)
        launcher.stop(config)  # in case the command line could not (no-op otherwise)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    wait_for(lambda: not any(launcher._alive(pid) for pid in running), 60,
             f"supervisord, its IOCs and Tiled (pids {sorted(running)}) to exit")
    assert not catalog_service.tiled_answers(service)
