"""Test session set-up: one private copy of the beamline, started the user's way.

At configuration time (before any test module connects to EPICS) the session
chooses a private Channel Access port and temporary run/data directories and
exports them as SIMBEAMLINE_* variables, so the tests never touch a beamline the
user is running, and every subprocess a test starts sees the same copy.
The ``beamline`` fixture starts the IOCs through ``simbeamline.control.launcher`` (what
``simbeamline start`` runs) and stops them, supervisord included, at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


def _keep_pyepics_on_its_own_libca() -> None:
    """ophyd-async (the test extra, for test_adsim_ophyd_async.py) brings epicscorelibs,
    and importing ophyd then points pyepics at epicscorelibs' libca (PYEPICS_LIBCA),
    for processes that use pyepics and aioca together. No test process does (the
    ophyd-async client runs in a child of its own), so the tests and every process
    they start stay on the libca pyepics ships, as an install without the test extra
    runs. A PYEPICS_LIBCA the user set is kept."""
    if "PYEPICS_LIBCA" in os.environ:
        return
    from importlib.resources import files

    from epics.utils import clib_search_path

    bundled = files("epics.clibs") / clib_search_path("ca")
    if bundled.is_file():
        os.environ["PYEPICS_LIBCA"] = str(bundled)


_keep_pyepics_on_its_own_libca()

from simbeamline.control import ca_env, launcher  # noqa: E402  (after the libca choice)
from simbeamline.control.config import BeamlineConfig  # noqa: E402

#: Port of the test beamline; differs from 5064 so a user's running beamline is left alone.
TEST_CA_PORT = int(os.environ.get("SIMBEAMLINE_TEST_CA_PORT", "5070"))

_state: dict = {}


def pytest_configure(config):
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


def pytest_unconfigure(config):
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
