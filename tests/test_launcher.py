"""The launcher as a user meets it: `simbeamline start|status|stop`, supervisord restarts."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

import pytest
from waiting import wait_for

from simbeamline.control import launcher
from simbeamline.control.config import BeamlineConfig


def simbeamline(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the `simbeamline` command as a user would, in this test session's environment."""
    return subprocess.run(
        [sys.executable, "-m", "simbeamline.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_start_is_idempotent_and_status_reports_every_ioc(beamline):
    result = simbeamline("start")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    status = simbeamline("status")
    assert status.returncode == 0, status.stdout + status.stderr
    for ioc in launcher.iocs(beamline):
        line = next(line for line in status.stdout.splitlines() if line.startswith(ioc.name))
        # start returns once every IOC answers, which can be inside supervisord's
        # startsecs (1 s), while it still calls the program STARTING
        state = line.split()[1]
        assert state in ("RUNNING", "STARTING"), line
        assert "answers" in line and "no answer" not in line


def test_plain_caproto_get_answers_without_epics_variables(beamline):
    """A plain shell (no EPICS_* variables) finds the IOC on the default port."""
    if beamline.ca_port != 5064:
        # the test copy runs on its own port; check the same path with that port,
        # the only difference from a plain shell being the server port to search
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
        env["EPICS_CA_SERVER_PORT"] = str(beamline.ca_port)
    else:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "caproto-get"), "--no-repeater",
         f"{beamline.prefix}current"],
        capture_output=True, text=True, timeout=30, env=env,
    )
    assert result.returncode == 0, result.stderr
    value = float(result.stdout.split("[")[1].rstrip("]\n "))
    assert 300 < value < 700


def test_killed_ioc_is_restarted_and_ophyd_reconnects(beamline):
    from ophyd import EpicsSignalRO

    current = EpicsSignalRO(f"{beamline.prefix}current", name="I")
    current.wait_for_connection(timeout=10)
    assert 300 < current.get() < 700
    rpc = launcher._rpc(beamline)
    old_pid = rpc.supervisor.getProcessInfo("beamline")["pid"]
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: not current.connected, 20, "ophyd to see the IOC disconnect")
    new_pid = wait_for(
        lambda: (info := rpc.supervisor.getProcessInfo("beamline"))["statename"] == "RUNNING"
        and info["pid"] != old_pid and info["pid"],
        30, "supervisord to restart the IOC",
    )
    assert new_pid != old_pid
    current.wait_for_connection(timeout=30)
    assert 300 < current.get(use_monitor=False) < 700
    launcher.wait_until_answering(beamline)


def test_start_fails_with_the_ioc_log_tail(tmp_path):
    """An IOC that never answers makes `start` fail with the reason from its log."""
    bad = dataclasses.replace(
        BeamlineConfig.from_env(),
        ad_prefix="bad prefix",  # the IOC refuses it and exits; supervisord gives up
        ca_port=BeamlineConfig.from_env().ca_port + 100,
        run_dir=tmp_path / "run",
        log_dir_override=None,
    )
    try:
        with pytest.raises(launcher.LauncherError) as info:
            launcher.start(bad, timeout=60)  # returns once supervisord gives up on adsim
        message = str(info.value)
        assert "adsim" in message and "did not answer" in message
        assert "not a valid PV prefix" in message
        assert not launcher.supervisord_running(bad), "a failed start left supervisord running"
    finally:
        launcher.stop(bad)
    assert not launcher.supervisord_running(bad)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prefix", "bad prefix", "status"], "not a valid PV prefix"),
        (["--port", "http", "status"], "not a port number"),
        (["status", "--bogus"], "unrecognized arguments"),
        (["launch"], "invalid choice"),
    ],
)
def test_command_line_bad_input_is_named(args, message):
    result = simbeamline(*args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("module", ["simbeamline_iocs.beamline", "simbeamline_iocs.adsim"])
def test_ioc_refuses_a_malformed_prefix_and_unknown_flags(module):
    bad_prefix = subprocess.run([sys.executable, "-m", module, "--prefix", "sim: x"],
                                capture_output=True, text=True, timeout=60)
    assert bad_prefix.returncode != 0
    assert "not a valid PV prefix" in bad_prefix.stderr
    bad_flag = subprocess.run([sys.executable, "-m", module, "--frobnicate"],
                              capture_output=True, text=True, timeout=60)
    assert bad_flag.returncode == 2
    assert "unrecognized arguments: --frobnicate" in bad_flag.stderr


def _repeaters() -> int:
    """How many caproto-repeater processes run on this host."""
    result = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True)
    return sum("caproto.commandline.repeater" in line for line in result.stdout.splitlines())


def test_checking_the_iocs_spawns_no_repeater(beamline):
    """`start`/`status` probe PVs with caproto's sync client; that must leave no
    caproto-repeater process behind on a CI machine."""
    before = _repeaters()
    assert launcher.answering(beamline) == {ioc.name for ioc in launcher.iocs(beamline)}
    assert simbeamline("status").returncode == 0
    assert _repeaters() <= before
