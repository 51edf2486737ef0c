"""Test session set-up: one private copy of the beamline, started the user's way.

At configuration time (before any test module connects to EPICS) the session
chooses a private Channel Access port and temporary run/data directories and
exports them as SIMBEAMLINE_* variables, so the tests never touch a beamline the
user is running, and every subprocess a test starts sees the same copy.
The ``beamline`` fixture starts the IOCs through ``simbeamline.control.launcher`` (what
``simbeamline start`` runs) and stops them, supervisord included, at the end.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import ca_search
from simbeamline.control import ca_env, launcher
from simbeamline.control.config import BeamlineConfig

#: Port of the test beamline; differs from 5064 so a user's running beamline is left alone.
TEST_CA_PORT = int(os.environ.get("SIMBEAMLINE_TEST_CA_PORT", "5070"))

_state: dict = {}


def pytest_configure(config):
    # The beamline is stopped at exit, after pyepics' own exit handler (registered
    # later, when the first test connects; atexit runs handlers in reverse) has closed
    # every client channel: stopped before, each connected client prints libca's
    # "Virtual circuit disconnect" exception block.
    atexit.register(_stop_test_beamline)
    ca_search.install()
    base = Path(tempfile.mkdtemp(prefix="simbeamline-test-"))
    beamline_config = BeamlineConfig(
        ca_port=TEST_CA_PORT,
        run_dir=base / "run",
        data_dir=base / "data",
        ad_path_map=f"/tmp={base / 'ioc_tmp'}",
    )
    os.environ.update(beamline_config.as_env())
    ca_env.apply_client_env(beamline_config)
    _state.update(base=base, config=beamline_config)


def _stop_test_beamline():
    beamline_config = _state.get("config")
    if beamline_config is not None:
        launcher.stop(beamline_config)
    base = _state.get("base")
    if base is not None and not os.environ.get("SIMBEAMLINE_KEEP_TEST_DIR"):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def beamline_config() -> BeamlineConfig:
    """The test beamline's configuration (IOCs not necessarily running)."""
    return _state["config"]


@pytest.fixture(scope="session")
def beamline(beamline_config) -> BeamlineConfig:
    """The test beamline with every IOC answering over Channel Access."""
    launcher.start(beamline_config, timeout=60)
    return beamline_config
