"""Settings survive an IOC restart, as with EPICS autosave (iocs/autosave.py).

The integration tests change settings over Channel Access, wait until the IOC has
saved them, restart the IOC through supervisord and read them back; they put the
defaults back at the end so other tests see the beamline they expect.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from caproto.sync.client import read as ca_read
from caproto.sync.client import write as ca_write

from simbeamline.control import launcher
from simbeamline_iocs.autosave import Autosave, PutSettings, autosave_path, is_ad_action
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)


def get(pv: str):
    data = ca_read(pv, timeout=10, repeater=False).data
    value = data[0] if len(data) == 1 else data
    return value.decode() if isinstance(value, bytes) else value


def get_text(pv: str) -> str:
    data = ca_read(pv, timeout=10, repeater=False).data
    return bytes(data).split(b"\0", 1)[0].decode()


def put(pv: str, value) -> None:
    ca_write(pv, value, notify=True, timeout=30, repeater=False)


def ioc_prefix(config, ioc: str) -> str:
    return config.ad_prefix if ioc == "adsim" else config.prefix


def saved(config, ioc: str) -> dict:
    path = autosave_path(ioc, config.as_env(), prefix=ioc_prefix(config, ioc))
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --- pure logic -----------------------------------------------------------------------

def test_saves_atomically_only_on_change_and_loads_back(tmp_path):
    settings = {"a": 1.5, "b": "Closed"}
    path = tmp_path / "autosave" / "x.sav"
    save = Autosave(path, lambda: settings)
    save.save_now()
    assert json.loads(path.read_text()) == settings
    stamp = path.stat().st_mtime_ns
    save.save_now()
    assert path.stat().st_mtime_ns == stamp            # unchanged: not rewritten
    settings["a"] = float("nan")                       # not a setting worth saving
    save.save_now()
    assert json.loads(path.read_text()) == {"b": "Closed"}
    assert [p.name for p in path.parent.iterdir()] == ["x.sav"]   # no temporary left
    assert Autosave(path, dict).load() == {"b": "Closed"}


@pytest.mark.parametrize("content", [b"{not json", b"\xc1\x00", b"[1, 2]", b""])
def test_a_bad_file_is_reported_kept_aside_and_never_fatal(tmp_path, caplog, content):
    path = tmp_path / "x.sav"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert Autosave(path, dict).load() == {}
    assert "not a settings file" in caplog.text and str(path) in caplog.text
    assert (tmp_path / "x.sav.bad").read_bytes() == content and not path.exists()


def test_no_run_directory_means_nothing_saved():
    assert autosave_path("beamline", {}) is None
    assert Autosave(None, lambda: {"a": 1}).load() == {}


def test_ad_actions_are_not_settings():
    for action in ("cam1:Acquire", "HDF1:Capture", "HDF1:WriteFile", "Stats1:Reset",
                   "HDF1:ProcessPlugin", "cam1:ArrayCounter"):
        assert is_ad_action(action)
    for setting in ("cam1:AcquireTime", "HDF1:FileName", "HDF1:Compression"):
        assert not is_ad_action(setting)
    settings = PutSettings("adsim", is_ad_action)
    settings.remember("cam1:Acquire", 1)
    settings.remember("cam1:AcquireTime", 0.2)
    assert settings.values == {"cam1:AcquireTime": 0.2}


# --- against the IOCs -----------------------------------------------------------------

BEAMLINE_CHANGES = {          # PV suffix -> value changed to (and read back)
    "shutter": "Closed",
    "spot:exp": 0.25,
    "dot:exp": 0.125,
    "current:topup_period": 300.0,
    "current:lifetime": 18000.0,
    "m:spotx.VELO": 50.0,
    "m:spotx.ACCL": 0.2,
    "m:samy.HLM": 80.0,
}
BEAMLINE_DEFAULTS = {
    "shutter": "Open", "spot:exp": 1.0, "dot:exp": 1.0, "current:topup_period": 600.0,
    "current:lifetime": 36000.0, "m:spotx.VELO": 100.0, "m:spotx.ACCL": 0.1,
    "m:samy.HLM": 100.0,
}
MOVES = {"m:spotx": 12.5, "m:doty": -7.25, "m:samx": 3.0}
MOVE_DEFAULTS = {"m:spotx": 0.0, "m:doty": 0.0, "m:samx": 50.0}


@pytest.fixture
def restore_defaults(beamline):
    yield
    p = beamline.prefix
    for suffix, value in {**BEAMLINE_DEFAULTS, **MOVE_DEFAULTS}.items():
        put(p + suffix, value)


def test_beamline_ioc_restart_keeps_its_settings(beamline, restore_defaults):
    from ophyd import EpicsSignalRO
    from simbeamline.devices.ioc_loss import SessionIocs

    p = beamline.prefix
    for suffix, value in {**BEAMLINE_CHANGES, **MOVES}.items():
        put(p + suffix, value)
    current = EpicsSignalRO(f"{p}current", name="I")
    current.wait_for_connection(timeout=10)
    said = io.StringIO()
    SessionIocs({f"the beamline IOC ({p})": current}, out=said)
    # SIGTERM (supervisord's stop) saves the last changes too; a kill -9 would lose
    # at most the last save period, as with autosave: wait for the periodic save
    wait_for(lambda: all(saved(beamline, "beamline").get(f"{motor}.position") == position
                         for motor, position in MOVES.items())
             and saved(beamline, "beamline").get("shutter") == "Closed", 30,
             "the beamline IOC to save its settings")
    launcher.restart_ioc(beamline, "beamline")
    for suffix, value in BEAMLINE_CHANGES.items():
        assert get(p + suffix) == value, suffix
    # the restored speed is the speed, not the top speed: VELO up to VMAX still goes
    assert get(f"{p}m:spotx.VMAX") == 1000.0
    assert get(f"{p}shutter_RBV") == "Closed"
    for motor, position in MOVES.items():
        assert get(f"{p}{motor}.RBV") == pytest.approx(position), motor
        assert get(f"{p}{motor}.DMOV") == 1
    # the session said so, once
    wait_for(lambda: "restarted" in said.getvalue(), 30, "the session to notice the restart")
    current.get(use_monitor=False)
    assert said.getvalue().count("restarted") == 1


def test_adsim_ioc_restart_keeps_the_settings_a_client_put(beamline):
    p = beamline.ad_prefix
    before_time, before_name = get(f"{p}cam1:AcquireTime"), get_text(f"{p}HDF1:FileName")
    put(f"{p}cam1:AcquireTime", 0.0375)
    put(f"{p}HDF1:FileName", b"autosaved\0")
    try:
        wait_for(lambda: saved(beamline, "adsim").get("HDF1:FileName") == "autosaved", 30,
                 "the ADSim IOC to save its settings")
        launcher.restart_ioc(beamline, "adsim")
        assert get(f"{p}cam1:AcquireTime") == 0.0375
        assert get(f"{p}cam1:AcquireTime_RBV") == 0.0375
        assert get_text(f"{p}HDF1:FileName") == "autosaved"
        assert get(f"{p}cam1:Acquire") in ("Done", 0)       # actions are not restored
    finally:
        put(f"{p}cam1:AcquireTime", before_time)
        put(f"{p}HDF1:FileName", (before_name or "image").encode() + b"\0")


def test_an_unreadable_autosave_file_is_logged_and_the_ioc_boots(beamline):
    path = autosave_path("beamline", beamline.as_env(), prefix=beamline.prefix)
    wait_for(path.exists, 30, "the beamline IOC's autosave file")
    launcher._rpc(beamline).supervisor.stopProcess("beamline", True)
    path.write_bytes(b"\xc1 garbage")
    launcher._rpc(beamline).supervisor.startProcess("beamline", True)
    launcher.wait_until_answering(beamline, 60)
    assert get(f"{beamline.prefix}spot:exp") == 1.0          # defaults
    log = (beamline.log_dir / "beamline.log").read_text(errors="replace")
    assert "not a settings file" in log and str(path) in log
    assert path.with_name(path.name + ".bad").exists()
