"""A full disk ends the run with a reason that says so and names the directory.

The test mounts a small tmpfs (3 MB, two spot frames) over the frame directory of
a private data directory; it skips, saying why, only where mounting is impossible
(not root, no tmpfs).
"""

from __future__ import annotations

import subprocess

import numpy as np

import pytest

from session_support import new_session, private_config

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def small_frames_dir(tmp_path):
    frames = tmp_path / "data" / "frames"
    _mount_small(frames, "3m")
    try:
        yield tmp_path / "data"
    finally:
        subprocess.run(["umount", "-l", str(frames)], capture_output=True, timeout=30)


def test_disk_full_is_named_in_the_stop_reason(beamline, small_frames_dir):
    ns = new_session(private_config(beamline, small_frames_dir))
    RE, spot, db = ns["RE"], ns["spot"], ns["db"]
    spot.exp.put(0.01)
    stops = []
    RE.subscribe(lambda name, doc: stops.append(doc) if name == "stop" else None)
    with pytest.raises(Exception, match="disk full"):
        RE(ns["count"]([spot], num=10))
    (stop,) = stops
    assert stop["exit_status"] == "fail"
    assert "disk full (ENOSPC)" in stop["reason"]
    assert str(small_frames_dir / "frames") in stop["reason"]
    assert "success=False" not in stop["reason"].split("[")[0]
    # the frames written before are readable; no partial file is left
    frames = list(db[stop["run_start"]].data("spot_img"))
    assert 1 <= len(frames) < 10 and all(f.shape == (480, 640) for f in frames)
    assert not list((small_frames_dir / "frames").rglob("*.part"))


def _mount_small(directory, size: str):
    """Mount a tmpfs of *size* over *directory*; skip, saying why, where impossible."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                 str(directory)], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"cannot mount a small filesystem here: {exc}")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {result.stderr.strip()}")


def test_adsim_disk_full_ends_the_run_naming_it_and_keeps_earlier_frames(beamline, tmp_path):
    """HDF1 cannot write a frame's file (the IOC's directory is full): the trigger fails
    with the IOC's WriteMessage, so no event points at a file that was never written."""
    import time
    from pathlib import Path

    from simbeamline.devices.adsimdet import path_templates

    ns = new_session(private_config(beamline, tmp_path / "data"), adsim=True)
    RE, adsimdet, db = ns["RE"], ns["adsimdet"], ns["db"]
    host_dir = Path(time.strftime(path_templates(beamline)[1]))
    _mount_small(host_dir, "2m")
    stops = []
    RE.subscribe(lambda name, doc: stops.append(doc) if name == "stop" else None)
    try:
        with pytest.raises(Exception, match="disk full"):
            RE(ns["count"]([adsimdet], num=20))
        (stop,) = stops
        # every event saved points at a file that was written (read while mounted)
        frames = list(db[stop["run_start"]].data("adsimdet_image"))
    finally:
        subprocess.run(["umount", "-l", str(host_dir)], capture_output=True, timeout=30)
    assert stop["exit_status"] == "fail"
    assert "disk full (ENOSPC)" in stop["reason"] and "HDF5 plugin" in stop["reason"]
    assert 1 <= len(frames) < 20 and all(np.asarray(f).sum() > 0 for f in frames)
    uid, = RE(ns["count"]([adsimdet], num=1))       # room again: the detector works
    assert len(list(db[uid].data("adsimdet_image"))) == 1
