"""scan_ids unique per catalog across processes, lookups that match several runs say so,
and a run that cannot be recorded (disk full) uses up nothing (issue 9, items 7 and 8)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from session_support import CHILD_TIMEOUT, private_config

pytestmark = pytest.mark.timeout(900)

COUNT_RUNS = r"""
import json, sys
from simbeamline.control.config import BeamlineConfig
from simbeamline.session import build_session
ns = build_session(BeamlineConfig.from_env(), adsim=False, table_and_plots=False,
                   move_progress=False)
RE, db = ns["RE"], ns["db"]
print("ready", flush=True)
sys.stdin.readline()  # both sessions start counting together
scan_ids = [db[uid].start["scan_id"] for _ in range(int(sys.argv[1]))
            for uid in RE(ns["count"]([ns["I"]], num=2))]
print(json.dumps(scan_ids))
"""


def test_two_sessions_counting_at_once_get_distinct_scan_ids(beamline, tmp_path):
    config = private_config(beamline, tmp_path / "data")
    env = {**os.environ, **config.as_env()}
    children = [subprocess.Popen([sys.executable, "-c", COUNT_RUNS, "5"], env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE) for _ in range(2)]
    try:
        for child in children:  # wait until both sessions are connected
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=CHILD_TIMEOUT) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
    scan_ids = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    together = scan_ids[0] + scan_ids[1]
    assert sorted(together) == list(range(1, 11)), scan_ids  # distinct, none skipped
    for ids in scan_ids:
        assert ids == sorted(ids)


TWO_RUNS_SAME_SCAN_ID = r"""
import json, sys
from bluesky import RunEngine
from bluesky.plans import count
from ophyd.sim import det
from simbeamline.catalog.store import open_db
from simbeamline.control.config import BeamlineConfig
db = open_db(BeamlineConfig.from_env())
uids = []
for _ in range(2):  # as two tutorial sessions would, each with its own RunEngine
    RE = RunEngine({})
    RE.subscribe(db.insert)
    uids += RE(count([det]))
print(json.dumps(uids))
"""


def test_a_scan_id_shared_by_two_runs_is_reported_never_picked(tmp_path):
    """Runs written by RunEngines that do not take their scan_ids from the catalog (a
    tutorial's own ``RE.subscribe(db.insert)``) may share one: lookups say so."""
    from simbeamline.catalog.runs import AmbiguousRunError
    from simbeamline.catalog.store import open_db
    from simbeamline.control.config import BeamlineConfig

    config = BeamlineConfig(data_dir=tmp_path / "data")
    env = {**os.environ, **config.as_env()}
    out = subprocess.run([sys.executable, "-c", TWO_RUNS_SAME_SCAN_ID], env=env,
                         capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=True)
    uids = json.loads(out.stdout.strip().splitlines()[-1])
    db = open_db(config)
    with pytest.raises(AmbiguousRunError) as err:
        db[1]
    assert all(uid in str(err.value) for uid in uids)
    assert db[uids[0][:8]].start["uid"] == uids[0]  # a uid still picks one

    export = subprocess.run(
        [sys.executable, "-m", "simbeamline.cli", "export", "1", "--out", str(tmp_path / "x")],
        env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert export.returncode != 0 and "Traceback" not in export.stderr
    assert "scan_id 1 matches 2 runs" in export.stderr and uids[1] in export.stderr

    check = subprocess.run([sys.executable, "-m", "simbeamline.cli", "catalog", "check"],
                           env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert "scan_id 1 is shared by 2 runs" in check.stdout


DISK_FULL = r"""
import json, os, sys
from pathlib import Path
from bluesky import RunEngine
from bluesky.plans import count
from ophyd.sim import det
from simbeamline.catalog.store import open_catalog, record_runs
from simbeamline.control.config import BeamlineConfig
disk = Path(sys.argv[1])
cat = open_catalog(BeamlineConfig(data_dir=disk / "data"))
RE = RunEngine({})
record_runs(RE, cat.v1)
RE(count([det]))
folder = disk / "data" / "catalog"
before = sorted(os.listdir(folder))
with open(disk / "filler", "wb", buffering=0) as filler:  # fill the disk
    try:
        while True:
            filler.write(b"\0" * 4096)
    except OSError:
        pass
errors = []
tutorial_RE = RunEngine({})  # a tutorial's own RunEngine: its scan_ids are its own
tutorial_RE.subscribe(cat.v1.insert)
for engine in (RE, tutorial_RE):
    try:
        engine(count([det]))
        errors.append(None)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
after = sorted(os.listdir(folder))
os.unlink(disk / "filler")
uid, = RE(count([det]))
print(json.dumps({"errors": errors, "before": before, "after": after,
                  "next_scan_id": cat[uid].metadata["start"]["scan_id"],
                  "runs": len(cat)}))
"""


def _small_disk_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _small_disk_works(),
                    reason="needs `unshare -rm` (user namespaces) to mount a small tmpfs")
def test_a_run_on_a_full_disk_uses_up_nothing(tmp_path):
    """On a 1 MiB filesystem mounted for the test (its own mount namespace), filled up:
    the run fails saying the disk is full, leaves no run file, and the next run, once
    there is space, gets the scan_id the failed one would have had."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "disk_full.py"
    script.write_text(DISK_FULL)
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c",
         f'mount -t tmpfs -o size=1m tmpfs "{disk}" && exec "{sys.executable}" "{script}" "{disk}"'],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for error in found["errors"]:  # the session's RunEngine, a tutorial's RunEngine
        assert error and "disk full" in error, found
    assert found["after"] == found["before"], "a file was left by the run that failed"
    assert found["next_scan_id"] == 2 and found["runs"] == 2


def test_a_uid_beginning_with_digits_is_found_by_its_first_characters(tmp_path):
    """``db["42892104"]``: no run has that scan_id, so the digits are the beginning of a
    uid (1 uid in 40 begins with eight decimal digits)."""
    from event_model import compose_run

    from simbeamline.catalog.store import open_db
    from simbeamline.control.config import BeamlineConfig

    db = open_db(BeamlineConfig(data_dir=tmp_path / "data"))
    run = compose_run(uid="42892104-0000-4000-8000-000000000000", metadata={"scan_id": 7})
    db.insert("start", run.start_doc)
    db.insert("stop", run.compose_stop())
    assert db["42892104"].start["uid"] == run.start_doc["uid"]
    assert db[7].start["uid"] == run.start_doc["uid"]          # a scan_id still wins
    with pytest.raises(KeyError, match="scan_id=99"):
        db[99]


def test_runs_reach_the_catalog_through_a_broker_nobody_else_holds(tmp_path):
    """``RE.subscribe(open_db(config).insert)``: the RunEngine keeps only a weak reference
    to a bound method's instance, and a Broker and its catalog form a cycle, so the cyclic
    garbage collector used to drop the subscription silently and every later run was lost
    (issue 10: bench_tiled's find by scan_id found no run). ``gc.collect()`` between runs
    makes that collection happen where it did by chance."""
    import gc

    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import det

    from simbeamline.catalog.store import open_catalog, open_db
    from simbeamline.control.config import BeamlineConfig

    config = BeamlineConfig(data_dir=tmp_path / "data")
    RE = RunEngine({})
    RE.subscribe(open_db(config).insert)
    RE.md["scan_id"] = 99
    uids = []
    for _ in range(3):
        uids += RE(count([det]))
        gc.collect()
    cat = open_catalog(config)  # as a new session opens it
    assert len(cat) == 3
    for scan_id, uid in zip((100, 101, 102), uids):
        assert list(cat.search({"scan_id": scan_id})) == [uid]

