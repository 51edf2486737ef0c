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
import faulthandler
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

import ca_search
from simbeamline.control import ca_env, launcher
from simbeamline.control.config import BeamlineConfig

#: Port of the test beamline; differs from 5064 so a user's running beamline is left alone.
TEST_CA_PORT = int(os.environ.get("SIMBEAMLINE_TEST_CA_PORT", "5070"))

_state: dict = {}

# Enabled before pytest's own faulthandler plugin configures, so that plugin hands it back
# at unconfigure instead of switching it off: a crash in a C library's thread (libca, p4p)
# while the process exits then prints every thread's Python stack, not a bare exit 139.
faulthandler.enable(all_threads=True)


def pytest_configure(config):
    # A session that finishes stops the beamline in _end_test_process, once Channel
    # Access is closed (stopped before, each connected client prints libca's "Virtual
    # circuit disconnect" exception block); this handler, registered first and so run
    # last, stops it if the session never got that far.
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
    # the ADSim IOCs keep their parsed table here, not in the user's ~/.cache
    os.environ["SIMBEAMLINE_CACHE_DIR"] = str(base / "cache")
    ca_env.apply_client_env(beamline_config)
    _state.update(base=base, config=beamline_config)


def pytest_sessionfinish(session):
    # Registered after pyepics' and ophyd's exit handlers, so it runs before them.
    atexit.register(_end_test_process, session)


def _end_test_process(session):
    """Close Channel Access, stop the test beamline and end the process with pytest's
    exit status, skipping the rest of the interpreter's teardown.

    This process holds dozens of sessions' channels, some in contexts left by IOCs
    killed mid-test. Left to ``atexit``, ophyd's per-signal ``weakref`` finalizers run
    before pyepics' ``finalize_libca`` and clear each subscription one by one; in two
    full runs one of those ``ca_clear_subscription`` calls crashed the process
    (SIGSEGV, exit 139) after every test had passed, leaving the beamline running.
    pyepics' ``finalize_libca`` clears every channel (and with it every subscription),
    after which those finalizers return at once; ``os._exit`` then keeps libca's
    threads from calling back into a half-torn-down interpreter.
    """
    status = int(session.exitstatus)
    ophyd = sys.modules.get("ophyd")
    epics = sys.modules.get("epics")
    try:
        if ophyd is not None and ophyd.cl is not None and ophyd.cl.name == "pyepics":
            dispatcher = ophyd.cl.get_dispatcher()
            if dispatcher is not None and dispatcher.is_alive():
                dispatcher.stop()
        if epics is not None:
            epics.ca.finalize_libca()
        _stop_test_beamline()
    except BaseException:
        traceback.print_exc()
        status = status or 1    # a beamline left running fails the run
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


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
