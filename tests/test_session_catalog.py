"""The persistent catalog: runs written in one process are read in another by name,
scan_id keeps counting, frames are read one at a time, and bad input is explained."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from session_support import new_session, private_config, run_child

pytestmark = pytest.mark.timeout(600)

FRAME_BYTES = 480 * 640 * 4  # int32

WRITE_RUN = r"""
import json, sys
import simbeamline
from simbeamline.control.config import BeamlineConfig
from simbeamline.session import build_session
ns = build_session(BeamlineConfig.from_env(), adsim=False, table_and_plots=False,
                   move_progress=False)
RE = ns["RE"]
RE(ns["mv"](ns["spot"].exp, 0.005))
uid, = RE(ns["count"]([ns["spot"], ns["I"]], num=int(sys.argv[1])))
h = ns["db"][uid]
print(json.dumps({"uid": uid, "scan_id": h.start["scan_id"],
                  "sums": [float(im.sum()) for im in h.data("spot_img")]}))
"""

READ_BY_NAME = r"""
import json
import simbeamline  # puts the shipped intake YAML on INTAKE_PATH
import databroker
from databroker import Broker
cat = databroker.catalog["simbeamline"]
db = Broker.named("simbeamline")
out = {}
for uid in cat:
    run = cat[uid]
    images = run.primary.read()["spot_img"]
    out[uid] = {"scan_id": run.metadata["start"]["scan_id"],
                "v2_sums": [float(images[i].sum()) for i in range(images.shape[0])],
                "v2_shape": list(images.shape),
                "v1_sums": [float(im.sum()) for im in db[uid].data("spot_img")]}
print(json.dumps(out))
"""


@pytest.fixture
def config(beamline, tmp_path):
    return private_config(beamline, tmp_path / "data")


def test_write_in_one_process_read_by_name_in_another(config):
    first = run_child(WRITE_RUN, config, "3")
    second = run_child(WRITE_RUN, config, "2")
    assert second["scan_id"] == first["scan_id"] + 1, "scan_id keeps counting across sessions"
    read = run_child(READ_BY_NAME, config)
    assert set(read) == {first["uid"], second["uid"]}
    for written in (first, second):
        got = read[written["uid"]]
        assert got["scan_id"] == written["scan_id"]
        assert got["v2_shape"] == [len(written["sums"]), 480, 640]
        assert got["v2_sums"] == written["sums"] == got["v1_sums"]
    assert list((config.data_dir / "catalog").glob("*.msgpack")), "runs are files on disk"


def test_scan_id_continues_from_the_catalog_in_a_new_session(config):
    first = run_child(WRITE_RUN, config, "1")
    ns = new_session(config)
    assert ns["RE"].md["scan_id"] == first["scan_id"]
    uid, = ns["RE"](ns["count"]([ns["I"]]))
    assert ns["db"][uid].start["scan_id"] == first["scan_id"] + 1


@pytest.fixture
def ns(config):
    return new_session(config)


def test_unknown_field_names_the_fields_that_exist(ns):
    from simbeamline.catalog.store import UnknownFieldError

    ns["RE"](ns["count"]([ns["spot"], ns["I"]]))
    h = ns["db"][-1]
    with pytest.raises(UnknownFieldError) as info:
        h.data("spot_image")
    message = str(info.value)
    assert "'spot_image'" in message
    for field in ("spot_img", "spot_sum", "I"):
        assert field in message
    with pytest.raises(KeyError):  # still a KeyError for code that catches those
        list(h.events(fields=["nope"]))


def test_deleted_frame_file_is_named_and_other_frames_stay_readable(ns):
    from simbeamline.catalog.store import FrameFileMissing

    RE = ns["RE"]
    RE(ns["mv"](ns["spot"].exp, 0.005))
    uid, = RE(ns["count"]([ns["spot"], ns["I"]], num=4))
    h = ns["db"][uid]
    resource = next(doc for name, doc in ns["cat"][uid].documents(fill="no")
                    if name == "resource")
    victim = Path(resource["root"]) / f"{resource['resource_path']}_2.npy"
    assert victim.exists()
    victim.unlink()
    frames = h.data("spot_img")
    assert next(frames).shape == (480, 640)
    assert next(frames).shape == (480, 640)
    with pytest.raises(FrameFileMissing) as info:
        next(frames)
    assert str(victim) in str(info.value)
    assert h.data("spot_img")[3].shape == (480, 640)
    assert len(list(h.data("I"))) == 4  # scalar fields never touch the files


def test_150_frames_through_h_data_hold_a_few_frames_at_a_time(ns):
    RE = ns["RE"]
    RE(ns["mv"](ns["spot"].exp, 0.005))
    uid, = RE(ns["count"]([ns["spot"], ns["I"]], num=150))
    h = ns["db"][uid]
    tracemalloc.start()
    try:
        n, total = 0, 0.0
        for im in h.data("spot_img"):
            n += 1
            total += float(im[240, 320])
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 150 and total > 0
    print(f"peak {peak / 1e6:.1f} MB = {peak / FRAME_BYTES:.1f} frames")
    assert peak < 4 * FRAME_BYTES


def test_unwritable_catalog_directory_is_reported_at_start_up(beamline, tmp_path, capsys):
    from simbeamline.catalog.store import CatalogDirError
    from simbeamline.session import session_namespace

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = private_config(beamline, blocker / "data")
    with pytest.raises(CatalogDirError) as info:
        new_session(config)
    assert str(blocker / "data" / "catalog") in str(info.value)
    assert "SIMBEAMLINE_DATA_DIR" in str(info.value)
    namespace = session_namespace(config)
    err = capsys.readouterr().err
    assert "not writable" in err and "Traceback" not in err
    assert "RE" not in namespace and "np" in namespace


def test_profile_with_iocs_down_prints_one_message(beamline, tmp_path):
    """The IPython profile, started with no IOC answering its prefix: one message, no
    traceback, and the stored runs browsable (``db``, ``cat``, ``RE``) without IOCs."""
    config = private_config(beamline, tmp_path / "data")
    stored = run_child(WRITE_SIM_RUN, config)["uid"]
    env = {**config.as_env(),
           "SIMBEAMLINE_PREFIX": "nobody:", "SIMBEAMLINE_RUN_DIR": str(tmp_path / "run")}
    import os

    result = subprocess.run(
        [sys.executable, "-m", "simbeamline.cli", "ipython", "--no-start", "--colors=nocolor",
         "-c", "print('spot' in globals(), 'np' in globals(), 'RE' in globals(), "
               "db[-1].start['uid'], list(cat))"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "False True True" in result.stdout
    assert f"{stored} ['{stored}']" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert "does not answer" in result.stderr
    assert "start" in result.stderr
    assert result.stderr.count("simbeamline:") == 1


def test_profile_with_iocs_up_has_the_session(beamline, tmp_path):
    import os

    env = {**os.environ, **private_config(beamline, tmp_path / "data").as_env(),
           "SIMBEAMLINE_RUN_DIR": str(beamline.run_dir)}
    code = ("import json; print(json.dumps({k: k in globals() for k in "
            "('RE', 'bec', 'db', 'cat', 'spot', 'dot', 'I', 'mtr_spotx', 'shutter', "
            "'bp', 'bps', 'mv', 'count', 'np', 'plt')}))")
    result = subprocess.run(
        [sys.executable, "-m", "simbeamline.cli", "ipython", "--no-start", "--colors=nocolor",
         "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(found.values()), found


WRITE_SIM_RUN = r"""
import json
import simbeamline
from bluesky import RunEngine
from bluesky.plans import count
from ophyd.sim import det
from simbeamline.catalog.store import open_db
from simbeamline.control.config import BeamlineConfig
db = open_db(BeamlineConfig.from_env())
RE = RunEngine()
RE.subscribe(db.insert)
uid, = RE(count([det]))
print(json.dumps({"uid": uid}))
"""

READ_NAMED = r"""
import json, os
import simbeamline
import databroker
from databroker import Broker
name = os.environ["SIMBEAMLINE_CATALOG"]
print(json.dumps({"v2": list(databroker.catalog[name]),
                  "v1": Broker.named(name)[-1].start["uid"]}))
"""


@pytest.mark.parametrize("intake_path", [None, "/nonexistent/user/catalogs"])
def test_a_custom_catalog_name_is_reachable_by_name(tmp_path, intake_path, monkeypatch):
    """No IOC needed: SIMBEAMLINE_CATALOG names a generated YAML; a user's own
    INTAKE_PATH stays in use beside it."""
    import dataclasses

    from simbeamline.control.config import BeamlineConfig

    if intake_path:
        monkeypatch.setenv("INTAKE_PATH", intake_path)
    else:
        monkeypatch.delenv("INTAKE_PATH", raising=False)
    config = dataclasses.replace(BeamlineConfig.from_env(), catalog_name="student7",
                                 data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    written = run_child(WRITE_SIM_RUN, config)
    read = run_child(READ_NAMED, config)
    assert read == {"v2": [written["uid"]], "v1": written["uid"]}


# --- By name in a fresh shell: no `import simbeamline`, no INTAKE_PATH, no set-up ---------

READ_IN_A_FRESH_SHELL = r"""
import json, sys
import databroker
from databroker import Broker
imported_by_databroker = "simbeamline" in sys.modules
cat = databroker.catalog["simbeamline"]
db = Broker.named("simbeamline")
runs = {}
for uid in cat:
    images = cat[uid].primary.read()["spot_img"]
    runs[uid] = {"scan_id": cat[uid].metadata["start"]["scan_id"],
                 "v2_sums": [float(images[i].sum()) for i in range(images.shape[0])],
                 "v1_sums": [float(im.sum()) for im in db[uid].data("spot_img")]}
print(json.dumps({"imported_by_databroker": imported_by_databroker, "runs": runs,
                  "v1_last": db[-1].start["uid"]}))
"""


def _tree(root: Path) -> dict:
    """Every file and folder under *root*, with size and modification time."""
    return {str(p): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def _fresh_shell(code: str, home: Path, **env: str) -> dict:
    """Run *code* in a fresh Python with only PATH, HOME and *env* set, in *home*;
    return the JSON object it prints last, and check that it wrote nothing there
    beyond what databroker and intake write for any catalog (matplotlib's font
    cache, intake's ~/.intake/persisted), which a first child creates before the
    snapshot."""
    import os

    env = {"PATH": os.environ["PATH"], "HOME": str(home), **env}

    def child(source):
        result = subprocess.run([sys.executable, "-c", source], cwd=home, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"child failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    child("import databroker, intake.container.persist")
    before = _tree(home)
    out = child(code)
    assert _tree(home) == before, "reading the catalog wrote or changed files"
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs_in_default_data_dir(beamline, tmp_path_factory):
    """A fresh HOME whose default data directory (~/.local/share/simbeamline) holds two
    runs a session wrote: (home, [what each writer printed])."""
    home = tmp_path_factory.mktemp("home")
    config = private_config(beamline, home / ".local" / "share" / "simbeamline")
    return home, [run_child(WRITE_RUN, config, "2"), run_child(WRITE_RUN, config, "1")]


@pytest.mark.parametrize("data_dir_variable", [True, False], ids=["DATA_DIR-set", "DATA_DIR-unset"])
@pytest.mark.parametrize("virtual_env", [False, True], ids=["plain", "activated-venv"])
def test_fresh_shell_reads_the_runs_by_name_without_importing_simbeamline(
        runs_in_default_data_dir, data_dir_variable, virtual_env):
    """databroker.catalog['simbeamline'] and Broker.named('simbeamline') in a process that
    never imports simbeamline and has no INTAKE_PATH: the package's intake.catalogs
    entry point, with the data directory from SIMBEAMLINE_DATA_DIR or, unset, the default."""
    home, written = runs_in_default_data_dir
    env = {}
    if data_dir_variable:
        env["SIMBEAMLINE_DATA_DIR"] = str(home / ".local" / "share" / "simbeamline")
    if virtual_env:
        env["VIRTUAL_ENV"] = sys.prefix  # as `source .venv/bin/activate` sets it
    read = _fresh_shell(READ_IN_A_FRESH_SHELL, home, **env)
    assert not read["imported_by_databroker"], "the entry point is loaded only when used"
    assert set(read["runs"]) == {w["uid"] for w in written}
    for w in written:
        got = read["runs"][w["uid"]]
        assert got["scan_id"] == w["scan_id"]
        assert got["v2_sums"] == w["sums"] == got["v1_sums"]
    assert read["v1_last"] == written[-1]["uid"]


READ_SHIPPED_YAML = r"""
import json, sys
import intake
cat = intake.open_catalog(sys.argv[1])["simbeamline"]
print(json.dumps({"uids": list(cat), "paths": list(cat.paths)}))
"""


def test_shipped_yaml_finds_the_default_data_dir_without_the_variable(tmp_path):
    """The shipped intake YAML with SIMBEAMLINE_DATA_DIR unset (its env() renders empty,
    here even after the package's import-time set-up, which a bad SIMBEAMLINE_CA_PORT
    skips): the driver takes the default data directory. No IOC needed."""
    from simbeamline.catalog.paths import CATALOGS_DIR
    from simbeamline.control.config import BeamlineConfig

    home = tmp_path / "home"
    data_dir = home / ".local" / "share" / "simbeamline"
    config = BeamlineConfig(data_dir=data_dir, run_dir=tmp_path / "run")
    written = run_child(WRITE_SIM_RUN, config)
    import os

    result = subprocess.run(
        [sys.executable, "-c", READ_SHIPPED_YAML, str(CATALOGS_DIR / "simbeamline.yml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"PATH": os.environ["PATH"], "HOME": str(home), "SIMBEAMLINE_CA_PORT": "not-a-port"})
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout.strip().splitlines()[-1])
    assert read == {"uids": [written["uid"]], "paths": [f"{data_dir}/catalog/*.msgpack"]}


def test_the_driver_without_paths_uses_the_configured_data_dir(tmp_path, monkeypatch):
    from simbeamline.catalog.store import BeamlineCatalog

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("SIMBEAMLINE_DATA_DIR", raising=False)
    default = f"{tmp_path}/.local/share/simbeamline/catalog/*.msgpack"
    assert BeamlineCatalog().paths == [default]
    assert BeamlineCatalog(data_dir="").paths == [default]
    monkeypatch.setenv("SIMBEAMLINE_DATA_DIR", "")  # set but empty: still the default
    assert BeamlineCatalog(data_dir="").paths == [default]
    monkeypatch.setenv("SIMBEAMLINE_DATA_DIR", str(tmp_path / "d"))
    assert BeamlineCatalog(data_dir="").paths == [f"{tmp_path}/d/catalog/*.msgpack"]
    assert BeamlineCatalog(data_dir=tmp_path / "e").paths == [f"{tmp_path}/e/catalog/*.msgpack"]
    assert BeamlineCatalog(paths=[f"{tmp_path}/f/*.msgpack"]).paths == [f"{tmp_path}/f/*.msgpack"]
