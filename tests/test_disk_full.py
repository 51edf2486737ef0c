"""A full disk ends the run with a reason that says so and names the directory.

The test mounts a small tmpfs (3 MB, two spot frames) over the frame directory of
a private data directory; it skips, saying why, only where mounting is impossible
(not root, no tmpfs).
"""

from __future__ import annotations

import subprocess

import pytest

from session_support import new_session, private_config

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def small_frames_dir(tmp_path):
    frames = tmp_path / "data" / "frames"
    frames.mkdir(parents=True)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(frames)],
                                capture_output=True, text=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"cannot mount a small filesystem here: {exc}")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {result.stderr.strip()}")
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
