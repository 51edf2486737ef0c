"""Both Handling Images notebooks replayed as written (5 s exposures, the full
spiral and grid) on a fast simulation clock: every frame counts as its nominal
exposure does. Wall time is a benchmark (benchmarks/bench_tutorial_speed.py), not
asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest

from session_support import new_session, private_config
from simbeamline.control.faults import FaultClient, Put
from simbeamline_iocs import ring, spotcam
from tutorial_replay import dot_notebook, spot_notebook
from waiting import wait_for

pytestmark = pytest.mark.timeout(900)

SCALE = 0.01


@pytest.fixture(scope="module")
def ns(beamline, tmp_path_factory):
    """The session on a fast clock, with a steady ring (no top-up, no decay to speak
    of) so that ``I`` read beside a frame is the current the frame saw, up to noise."""
    client = FaultClient(beamline)
    saved = {name: client.read(name) for name in ("current:lifetime", "current:topup_period")}
    client.write([Put("current:lifetime", 1e12), Put("current:topup_period", 1e12)])
    client.set_time_scale(SCALE)
    session = new_session(private_config(beamline, tmp_path_factory.mktemp("tutorial-fast")))
    session["RE"](session["mv"](session["shutter"], "Open"))
    yield session
    session["RE"](session["mv"](session["mtr_spotx"], 0, session["mtr_spoty"], 0,
                                session["mtr_dotx"], 0, session["mtr_doty"], 0))
    client.set_time_scale(1.0)
    client.write([Put("current:lifetime", saved["current:lifetime"]),
                  Put("current:topup_period", 0.5)])      # a top-up: a full ring again
    wait_for(lambda: client.read("current") > 499.0, what="a top-up")
    client.write([Put("current:topup_period", saved["current:topup_period"])])


def assert_counts_of_nominal_exposure(header, camera, x_key, y_key, exposure):
    """Each frame's total within Poisson noise (5 sigma) of its expected value at the
    nominal *exposure*, allowing for the ring current having moved by its noise
    between the frame and the read of ``I``."""
    table = header.table()
    assert header.start["time_scale"] == SCALE
    for _, row in table.iterrows():
        x, y, current = row[x_key], row[y_key], row["I"]
        signal = spotcam.expected_signal(spotcam.DEFAULT_SHAPE, x, y, exposure, current).sum()
        expected = spotcam.BACKGROUND * np.prod(spotcam.DEFAULT_SHAPE) + signal
        tolerance = 5 * np.sqrt(expected) + signal * 8 * ring.NOISE_SIGMA / current
        assert abs(row[f"{camera}_sum"] - expected) < tolerance, (x, y, row[f"{camera}_sum"],
                                                                  expected)
        # a frame counted as a 1/SCALE shorter exposure would be far outside
        assert signal * (1 - SCALE) > 10 * tolerance or signal < 1e6


def test_dot_notebook_as_written_counts_as_nominal(ns):
    headers = dot_notebook(ns)
    spiral = headers["h_spiral"]
    assert len(spiral.table()) == 197
    assert_counts_of_nominal_exposure(spiral, "dot", "motor_dotx", "motor_doty", 5.0)


def test_spot_notebook_as_written_counts_as_nominal(ns):
    headers = spot_notebook(ns)
    grid = headers["h_grid"]
    assert len(grid.table()) == 25
    assert_counts_of_nominal_exposure(grid, "spot", "motor_spotx", "motor_spoty", 5.0)
