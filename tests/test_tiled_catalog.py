"""Runs into Tiled on PostgreSQL beside the embedded catalog, against real processes:
a PostgreSQL cluster and a Tiled server started by the launcher under the beamline's
supervisord, the IOCs, the session's RunEngine, and readers over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from session_support import CHILD_TIMEOUT, new_session
from simbeamline.catalog import tiled_sync
from simbeamline.catalog.tiled import TiledRecorder, TiledUnavailable
from simbeamline.control import catalog_service, launcher
from tiled_support import (
    CA_PORT, SERVICE_ENV, extra_beamline, program_pid, reader, remote_env,
    start_with_service,
)
from waiting import wait_for

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def tiled_beamline(beamline, tmp_path_factory):
    """Beamline ``tl:`` with its own IOCs, PostgreSQL and Tiled (stopped at the end)."""
    config = extra_beamline(tmp_path_factory.mktemp("tiled"), "tl", CA_PORT + 20, beamline)
    try:
        service = start_with_service(config, SERVICE_ENV)
        yield config, service
    finally:
        launcher.stop(config)


@pytest.fixture(scope="module")
def session(tiled_beamline):
    config, _ = tiled_beamline
    return new_session(config, adsim=True)


def _scan_ids(*uids, ns):
    return [ns["db"][uid].start["scan_id"] for uid in uids]


def test_service_is_private_and_shown_in_status(tiled_beamline, capsys):
    config, service = tiled_beamline
    from simbeamline.cli import print_status

    assert print_status(config)
    out = capsys.readouterr().out
    for name in ("catalog-postgres", "catalog-tiled"):
        assert name in out
    keys = catalog_service.keys_file(config)
    for path in (keys, catalog_service.state_dir(config) / "pg_password",
                 catalog_service.state_dir(config) / "tiled.yml"):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    writer = catalog_service.api_key(config, service, "writer")
    assert writer[:8] in out and writer not in out  # shown by its id only
    assert (catalog_service.pg_data_dir(config) / "PG_VERSION").exists()
    assert service.host == "127.0.0.1"


def test_grid_scan_and_adsim_read_back_equal(session, tiled_beamline):
    config, service = tiled_beamline
    ns = session
    RE, bp = ns["RE"], ns["bp"]
    RE(ns["mv"](ns["spot"].exp, 0.005))
    grid, = RE(bp.grid_scan([ns["spot"], ns["I"]], ns["mtr_spotx"], -20, 20, 2,
                            ns["mtr_spoty"], -20, 20, 3, False))
    ad, = RE(bp.count([ns["adsimdet"]], num=2))
    client = reader(config, service)

    frames = client[grid]["primary"]["spot_img"]
    assert frames.shape == (6, 480, 640)
    assert frames[3].shape == (480, 640)
    embedded = list(ns["db"][grid].data("spot_img"))
    assert len(embedded) == 6
    for i, frame in enumerate(embedded):
        np.testing.assert_array_equal(frames[i], frame)
    ad_frames = client[ad]["primary"]["adsimdet_image"].read()
    np.testing.assert_array_equal(ad_frames, np.stack(list(ns["db"][ad].data("adsimdet_image"))))
    start = client[grid].metadata["start"]
    assert (start["beamline_prefix"], start["beamline_name"]) == ("tl:", "tl")

    results = tiled_sync.check(config, scan_ids=_scan_ids(grid, ad, ns=ns))
    assert {uid: problems for uid, (_, problems) in results.items()} == {grid: [], ad: []}


REMOTE_READER = r"""
import json, sys
from tiled.client import from_uri
from tiled.queries import Key
from bluesky_tiled_plugins.queries import ScanID, TimeRange
uri, key, uid, scan_id = sys.argv[1:5]
c = from_uri(uri, api_key=key)
frame = c[uid]['primary']['spot_img'][3]
table = c[uid]['primary'].read()
by_scan = list(c.search(ScanID(int(scan_id))))
by_sample = list(c.search(Key('start.sample') == 'remote-sample'))
t = c[uid].metadata['start']['time']
by_time = list(c.search(TimeRange(since=t - 1, until=t + 1)))
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('simbeamline', 'databroker', 'ophyd'))
print(json.dumps({'shape': list(frame.shape), 'sum': int(frame.sum()),
                  'columns': sorted(table.data_vars), 'by_scan': by_scan,
                  'by_sample': by_sample, 'by_time': by_time, 'loaded': loaded}))
"""


def test_remote_reader_over_http_only(session, tiled_beamline, tmp_path):
    config, service = tiled_beamline
    ns = session
    uid, = ns["RE"](ns["count"]([ns["spot"], ns["I"]], num=5), sample="remote-sample")
    scan_id = ns["db"][uid].start["scan_id"]
    # a clean environment: no SIMBEAMLINE_* variables, started elsewhere
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMBEAMLINE")}
    key = catalog_service.api_key(config, service, "reader")
    result = subprocess.run([sys.executable, "-c", REMOTE_READER, service.tiled_uri, key, uid,
                             str(scan_id)], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=CHILD_TIMEOUT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    frame = list(ns["db"][uid].data("spot_img"))[3]
    assert out["shape"] == [480, 640] and out["sum"] == int(frame.sum())
    assert {"spot_img", "I", "spot_sum"} <= set(out["columns"])
    assert uid in out["by_scan"] and out["by_sample"] == [uid] and uid in out["by_time"]
    assert out["loaded"] == []


def _plain_run_engine(ns, *callbacks):
    """A RunEngine writing to the session's embedded catalog and *callbacks* only."""
    from bluesky import RunEngine

    RE = RunEngine({})
    RE.md["scan_id"] = 1000
    RE.subscribe(ns["db"].insert)
    for callback in callbacks:
        RE.subscribe(callback)
    return RE


# the reader's key refused below: event_model's RunRouter warns of any callback that
# raises on a start document (an API change note of event-model 1.14) before re-raising
@pytest.mark.filterwarnings("ignore:The callback .* when RunRouter passed it:UserWarning")
def test_wrong_key_is_refused_and_writes_nothing(session, tiled_beamline):
    import httpx
    from tiled.client import from_uri

    from simbeamline.catalog.tiled import tiled_writer

    config, service = tiled_beamline
    with pytest.raises(httpx.HTTPStatusError) as info:
        from_uri(service.tiled_uri, api_key="0" * 72)
    assert info.value.response.status_code == 401
    before = len(reader(config, service))
    wrong = catalog_service.CatalogService(mode="tiled", uri=service.tiled_uri, api_key="0" * 72)
    recorder = TiledRecorder(config, wrong)
    RE = _plain_run_engine(session, recorder)
    with pytest.warns(TiledUnavailable) as caught:
        uid, = RE(session["count"]([session["I"]], num=2))
    assert len([w for w in caught if w.category is TiledUnavailable]) == 1
    assert recorder.failed == [uid]
    assert uid in session["db"].v2          # the run is in the embedded catalog
    client = reader(config, service)
    assert len(client) == before and uid not in client   # and nothing in Tiled
    # the reader's key cannot write either
    with pytest.raises(httpx.HTTPStatusError) as info:
        tiled_writer(client)("start", {"uid": "not-written", "time": 0.0})
    assert info.value.response.status_code in (401, 403)
    assert "not-written" not in reader(config, service)


def test_tiled_killed_mid_scan_then_sync_and_check(session, tiled_beamline, capfd):
    config, service = tiled_beamline
    rpc = launcher._rpc(config)

    def kill_tiled_at_third_event(name, doc):
        if name == "event" and doc["seq_num"] == 3:
            # freeze it, tell supervisord not to restart it, then kill it outright
            pid = program_pid(config, catalog_service.TILED_PROGRAM)
            os.kill(pid, signal.SIGSTOP)
            rpc.supervisor.stopProcess(catalog_service.TILED_PROGRAM, False)
            os.kill(pid, signal.SIGKILL)

    RE, ns = session["RE"], session
    token = RE.subscribe(kill_tiled_at_third_event)
    capfd.readouterr()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            uid, = RE(ns["count"]([ns["spot"], ns["I"]], num=6))
    finally:
        RE.unsubscribe(token)
        wait_for(lambda: rpc.supervisor.getProcessInfo(catalog_service.TILED_PROGRAM)[
            "statename"] in ("STOPPED", "EXITED", "FATAL"), 60, "the killed Tiled to be stopped")
        rpc.supervisor.startProcess(catalog_service.TILED_PROGRAM, True)
    err = capfd.readouterr().err
    assert [w.category for w in caught if w.category is TiledUnavailable] == [TiledUnavailable]
    assert "Traceback" not in err
    assert len(list(ns["db"][uid].data("spot_img"))) == 6      # complete in the embedded catalog
    wait_for(lambda: catalog_service.tiled_answers(service), 300, "Tiled to answer again")

    scan_id = ns["db"][uid].start["scan_id"]
    report = tiled_sync.sync(config)
    assert report.copied + report.replaced >= 1
    again = tiled_sync.sync(config)
    assert (again.copied, again.replaced) == (0, 0)              # idempotent
    results = tiled_sync.check(config, scan_ids=[scan_id])
    assert results[uid][1] == []
    np.testing.assert_array_equal(reader(config, service)[uid]["primary"]["spot_img"][5],
                                  list(ns["db"][uid].data("spot_img"))[5])


def test_postgres_restarted_under_running_server(session, tiled_beamline):
    config, service = tiled_beamline
    rpc = launcher._rpc(config)
    old = program_pid(config, catalog_service.POSTGRES_PROGRAM)
    server = program_pid(config, catalog_service.TILED_PROGRAM)
    rpc.supervisor.stopProcess(catalog_service.POSTGRES_PROGRAM, True)
    rpc.supervisor.startProcess(catalog_service.POSTGRES_PROGRAM, True)
    assert program_pid(config, catalog_service.POSTGRES_PROGRAM) != old
    wait_for(lambda: catalog_service._port_open(service.host, service.pg_port), 120,
             "PostgreSQL to accept connections again")
    ns = session
    with warnings.catch_warnings():
        warnings.simplefilter("error", TiledUnavailable)
        uid, = ns["RE"](ns["count"]([ns["spot"], ns["I"]], num=2))
    frame = reader(config, service)[uid]["primary"]["spot_img"][1]
    np.testing.assert_array_equal(frame, list(ns["db"][uid].data("spot_img"))[1])
    assert program_pid(config, catalog_service.TILED_PROGRAM) == server  # same server process


WRITE_RUNS = r"""
import json
from bluesky.plans import count
from simbeamline.catalog.store import open_db
from simbeamline.control import ca_env
from simbeamline.control.config import BeamlineConfig
from simbeamline.devices import cameras
from simbeamline.session import run_engine
config = ca_env.apply_client_env(BeamlineConfig.from_env())
RE, _ = run_engine(open_db(config), progress=False, table_and_plots=False, config=config)
spot = cameras.spot_camera(config.prefix, "spot", config.data_dir)
I = cameras.current(config.prefix)
for device in (spot, I):
    device.wait_for_connection(timeout=120)
spot.exp.put(0.005)
uids = [RE(count([spot, I], num=3))[0] for _ in range(2)]
print(json.dumps(uids))
"""


def test_three_beamlines_write_concurrently_into_one_tiled(beamline, tiled_beamline, tmp_path):
    from tiled.queries import Key

    from session_support import private_config

    config, service = tiled_beamline
    third = extra_beamline(tmp_path, "u3", CA_PORT + 22, beamline)
    launcher.start(third, timeout=120)
    try:
        beamlines = [config, private_config(beamline, tmp_path / "sim-data"), third]
        children = [
            subprocess.Popen([sys.executable, "-c", WRITE_RUNS], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **b.as_env(), **remote_env(config, service)})
            for b in beamlines]
        outputs = [child.communicate(timeout=CHILD_TIMEOUT) for child in children]
    finally:
        launcher.stop(third)
    written = {}
    for b, child, (out, err) in zip(beamlines, children, outputs):
        assert child.returncode == 0, err
        assert "TiledUnavailable" not in err, err
        written[b.prefix] = set(json.loads(out.strip().splitlines()[-1]))
    client = reader(config, service)
    for prefix, uids in written.items():
        found = set(client.search(Key("start.beamline_prefix") == prefix))
        assert uids <= found, f"{prefix}: runs missing from Tiled"
        others = set().union(*(u for p, u in written.items() if p != prefix))
        assert not found & others, f"{prefix}: another beamline's runs"


def test_bulk_filled_runs_read_back_like_tiled_writer_runs(session, tiled_beamline):
    """``benchmarks/tiled_bulk.py`` (how the lookup benchmark reaches 10,000 runs) copies
    runs into Tiled's databases in the layout of one run TiledWriter wrote: Tiled must
    find and serve them as it serves that run, start document, stop and event table."""
    from bluesky.plans import count
    from bluesky_tiled_plugins.queries import ScanID
    from ophyd.sim import det

    from simbeamline.catalog.tiled import connect, tiled_writer
    from simbeamline.catalog.tiled_server import databases

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from tiled_bulk import BulkTiledFill, TemplateError

    config, service = tiled_beamline
    db = session["db"]
    RE = _plain_run_engine(session)
    RE.md["scan_id"] = 7000
    token = RE.subscribe(tiled_writer(connect(config, service)))
    template, = RE(count([det], num=1))
    RE.unsubscribe(token)
    dbs = databases(config, service)
    bulk = BulkTiledFill(dbs["catalog"], dbs["storage"], template)
    token = RE.subscribe(bulk)
    det.noise.put("uniform")  # events that differ from run to run
    try:
        uids = [RE(count([det], num=3))[0] for _ in range(4)]
    finally:
        det.noise.put("none")
    bulk.flush()
    RE.unsubscribe(token)

    client = reader(config, service)
    written = client[template]
    for uid in uids:
        start = db[uid].start
        run, = client.search(ScanID(start["scan_id"])).values()
        assert run.metadata["start"]["uid"] == uid
        assert run.metadata["start"]["plan_args"]["num"] == 3
        assert run.metadata["stop"]["num_events"]["primary"] == 3
        assert sorted(run["primary"].metadata) == sorted(written["primary"].metadata)
        assert list(run["primary"].read()) == list(written["primary"].read())
        np.testing.assert_array_equal(run["primary"]["det"].read(), db[uid].table()["det"].values)

    # a template Tiled does not hold: refused by name, and nothing written
    stray = BulkTiledFill(dbs["catalog"], dbs["storage"], "no-such-run")
    RE.subscribe(stray)
    uid, = RE(count([det], num=1))
    with pytest.raises(TemplateError, match="no run no-such-run .* with TiledWriter first"):
        stray.flush()
    assert uid not in client
