"""Damaged run files (issue 9, item 3): one bad byte, a file cut short, an empty file.

Runs are written by a real session (RunEngine, spot camera frames over Channel Access)
into a private catalog, then damaged the way the issue reproduced it. Every other run
stays listed and readable by name, by ``simbeamline export`` and in the IPython
profile; the damaged files are named in warnings; ``simbeamline catalog check``
reports them and ``--repair`` mends them, keeping the original bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from session_support import CHILD_TIMEOUT, private_config, run_child

pytestmark = pytest.mark.timeout(900)

WRITE_RUNS = r"""
import json, sys
from simbeamline.control.config import BeamlineConfig
from simbeamline.session import build_session
ns = build_session(BeamlineConfig.from_env(), adsim=False, table_and_plots=False,
                   move_progress=False)
RE = ns["RE"]
RE(ns["mv"](ns["spot"].exp, 0.005))
runs = []
for n in range(int(sys.argv[1])):
    uid, = RE(ns["count"]([ns["spot"], ns["I"]], num=3))
    h = ns["db"][uid]
    runs.append({"uid": uid, "scan_id": h.start["scan_id"],
                 "sums": [float(im.sum()) for im in h.data("spot_img")]})
print(json.dumps(runs))
"""

READ_BY_NAME = r"""
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import databroker
    from databroker import Broker
    cat = databroker.catalog["simbeamline"]
    db = Broker.named("simbeamline")
    out = {"listed": list(cat), "runs": {}}
    for uid in cat:
        run = cat[uid]
        frames = "primary" in run  # a run emptied, then repaired, has no events left
        out["runs"][uid] = {
            "incomplete": run.metadata.get("incomplete"),
            "stop": run.metadata["stop"] and dict(run.metadata["stop"]),
            "v2_sums": frames and [float(x.sum()) for x in run.primary.read()["spot_img"]],
            "v1_sums": frames and [float(im.sum()) for im in db[uid].data("spot_img")]}
    out["v1_last"] = db[-1].start["uid"]
out["warnings"] = [str(w.message) for w in caught
                   if type(w.message).__name__ == "CatalogFileWarning"]
print(json.dumps(out))
"""


def damage(path: Path, how: str) -> bytes:
    """Damage a run file as issue 9 did; return its bytes afterwards."""
    if how == "bad byte":
        subprocess.run(f"printf '\\xc1' | dd of={path} bs=1 seek=3 conv=notrunc status=none",
                       shell=True, check=True)
    elif how == "truncated":
        os.truncate(path, path.stat().st_size - 100)
    elif how == "empty":
        os.truncate(path, 0)
    return path.read_bytes()


@pytest.fixture(scope="module")
def damaged(beamline, tmp_path_factory):
    """A catalog of five runs: one with a bad byte, one cut short, one emptied, two intact;
    plus a stray empty run file the index never knew."""
    config = private_config(beamline, tmp_path_factory.mktemp("damaged") / "data")
    runs = run_child(WRITE_RUNS, config, "5")
    folder = config.data_dir / "catalog"
    files = [folder / f"{run['uid']}.msgpack" for run in runs]
    bad = {how: (runs[i], files[i], damage(files[i], how))
           for i, how in enumerate(("bad byte", "truncated", "empty"))}
    stray = folder / "0badf11e-0000-0000-0000-000000000000.msgpack"
    stray.touch()
    bad["stray"] = (None, stray, b"")
    return config, runs, bad


def test_damaged_files_are_skipped_with_a_warning_and_the_others_read_by_name(damaged):
    config, runs, bad = damaged
    read = run_child(READ_BY_NAME, config)
    intact = runs[3:]
    truncated = bad["truncated"][0]
    assert set(read["listed"]) == {r["uid"] for r in intact} | {truncated["uid"]}
    for run in intact:
        got = read["runs"][run["uid"]]
        assert got["incomplete"] is None and got["stop"]["exit_status"] == "success"
        assert got["v2_sums"] == got["v1_sums"] == run["sums"]
    # the run cut short: listed, marked incomplete, no stop document shown
    got = read["runs"][truncated["uid"]]
    assert "cut short" in got["incomplete"] and got["stop"] is None
    assert read["v1_last"] == runs[-1]["uid"]
    # one warning naming each damaged file
    for how in ("bad byte", "truncated", "empty", "stray"):
        path = str(bad[how][1])
        assert any(path in w for w in read["warnings"]), (how, read["warnings"])
    assert any("incomplete" in w and str(bad["truncated"][1]) in w for w in read["warnings"])


def test_export_reads_the_intact_runs_and_names_a_damaged_one(damaged, tmp_path):
    config, runs, bad = damaged
    env = {**os.environ, **config.as_env()}

    def export(run, out):
        return subprocess.run(
            [sys.executable, "-m", "simbeamline.cli", "export", str(run), "--out", str(out),
             "--no-progress"], env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT)

    good = export(runs[3]["scan_id"], tmp_path / "good")
    assert good.returncode == 0, good.stderr
    assert len(list((tmp_path / "good").glob("*.tif"))) == 3
    broken = bad["bad byte"][0]
    result = export(broken["scan_id"], tmp_path / "bad")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert str(bad["bad byte"][1]) in result.stderr and "--repair" in result.stderr


def test_the_ipython_profile_starts_with_the_session(damaged, beamline):
    config, runs, bad = damaged
    env = {**os.environ, **config.as_env(), "SIMBEAMLINE_RUN_DIR": str(beamline.run_dir)}
    code = "import json; print(json.dumps({'RE': 'RE' in globals(), 'runs': len(db.v2)}))"
    result = subprocess.run(
        [sys.executable, "-m", "simbeamline.cli", "ipython", "--no-start", "--colors=nocolor",
         "-c", code], env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"RE": True, "runs": 3}


def test_catalog_check_reports_and_repair_keeps_the_original_bytes(damaged):
    """Last in this module: it repairs the shared catalog."""
    config, runs, bad = damaged
    env = {**os.environ, **config.as_env()}

    def check(*args):
        return subprocess.run([sys.executable, "-m", "simbeamline.cli", "catalog", "check", *args],
                              env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT)

    report = check()
    assert report.returncode == 1, report.stdout + report.stderr
    for how, state in (("bad byte", "damaged"), ("truncated", "incomplete"), ("empty", "empty"),
                       ("stray", "empty")):
        assert f"{state}: {bad[how][1]}" in report.stdout, report.stdout

    repaired = check("--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    quarantine = config.data_dir / "catalog" / "quarantine"
    kept = {p.name.split(".msgpack")[0]: p.read_bytes() for p in quarantine.iterdir()}
    for how, (run, path, damaged_bytes) in bad.items():
        assert str(path) in repaired.stdout
        assert kept[path.name.split(".msgpack")[0]] == damaged_bytes, how  # nothing lost
    assert not bad["stray"][1].exists()  # nothing to recover: quarantined

    again = check()
    assert again.returncode == 0, again.stdout
    read = run_child(READ_BY_NAME, config)
    assert read["warnings"] == []
    assert set(read["listed"]) == {r["uid"] for r in runs}
    for how in ("bad byte", "truncated", "empty"):
        got = read["runs"][bad[how][0]["uid"]]
        assert got["stop"]["exit_status"] == "fail" and "repaired" in got["stop"]["reason"]
    # one bad byte in the start document costs only that document: the frames stay
    assert read["runs"][bad["bad byte"][0]["uid"]]["v1_sums"] == bad["bad byte"][0]["sums"]
