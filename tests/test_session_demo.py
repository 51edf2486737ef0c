"""The main job, `simbeamline demo`, end to end: runs in the catalog, PNGs that show the spot."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from session_support import private_config

pytestmark = pytest.mark.timeout(900)

PICTURES = ("spot_frame.png", "spot_mean.png", "spot_grid.png", "dot_spiral.png")


@pytest.fixture(scope="module")
def demo(beamline, tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    config = private_config(beamline, base / "data")
    out = base / "pictures"
    result = subprocess.run(
        [sys.executable, "-m", "simbeamline.cli", "demo", "--out", str(out)],
        env={**os.environ, **config.as_env()}, capture_output=True, text=True, timeout=800)
    return config, out, result


def test_demo_succeeds_and_prints_pictures_and_uids(demo):
    config, out, result = demo
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for name in PICTURES:
        assert str(out / name) in result.stdout
    uids = re.findall(r"^  ([0-9a-f]{8}-[0-9a-f-]{27})  ", result.stdout, re.MULTILINE)
    assert len(uids) >= 4
    from simbeamline.catalog.store import open_catalog

    catalog = open_catalog(config)
    for uid in uids:
        assert catalog[uid].metadata["stop"]["exit_status"] == "success"
    assert "scan" in result.stdout  # per-run progress lines


def test_demo_pictures_exist_and_show_the_spot(demo):
    import matplotlib.image as mpimg

    _, out, result = demo
    assert result.returncode == 0
    for name in PICTURES:
        picture = mpimg.imread(out / name)
        assert picture.ndim == 3 and picture.shape[0] >= 300 and picture.std() > 0.02, name
    # spot_frame.png is the frame pixel for pixel (viridis: brighter = more counts)
    frame = mpimg.imread(out / "spot_frame.png")[..., :3].mean(axis=2)
    assert frame.shape == (480, 640)
    centre = frame[215:265, 270:370].mean()
    corners = np.mean([frame[:40, :40].mean(), frame[-40:, -40:].mean(),
                       frame[:40, -40:].mean(), frame[-40:, :40].mean()])
    assert centre > corners + 0.15, (centre, corners)
    rows, columns = np.nonzero(frame >= np.percentile(frame, 99.5))  # the brightest pixels
    assert abs(rows.mean() - 240) < 25 and abs(columns.mean() - 320) < 40  # spot at the centre
