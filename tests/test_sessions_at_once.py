"""A class starts together: ten sessions started at the same instant all connect,
``adsimdet`` included, as the profile builds them.

Each child process imports the session stack first, then waits for one "go" file, so
all ten open their Channel Access connections to the same IOC at the same moment
(the case where 8 of 10 used to fail with "Unexpected channel ID" and ECA_DISCONN,
then told the student to start IOCs that were running). Each child has its own data
directory, as students do. Their output must not carry libca's repeater complaints:
the beamline runs its own repeater on its own port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from waiting import wait_for

SESSIONS = 10
#: Seconds each session may take (ten at once on a small, shared CI machine).
CHILD_TIMEOUT = 900

CHILD = r"""
import json, sys, time
from pathlib import Path
from simbeamline.control.config import BeamlineConfig
from simbeamline.session import build_session  # every heavy import before the barrier
import simbeamline.devices.adsimdet

Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)  # the barrier: all children connect at the same instant
ns = build_session(BeamlineConfig.from_env(), adsim=None, table_and_plots=False,
                   move_progress=False)   # None: adsimdet too, since its IOC answers
print(json.dumps({"current": ns["I"].get(), "spot": ns["spot"].connected,
                  "motor": ns["mtr_spotx"].connected,
                  "adsimdet": ns["adsimdet"] is not None and ns["adsimdet"].connected}))
"""

#: What libca prints when it finds no repeater (or one that never confirms).
REPEATER_COMPLAINTS = ("caRepeater", "CA Repeater", "CA repeater")


@pytest.mark.timeout(CHILD_TIMEOUT + 120)
def test_ten_sessions_started_at_once_all_connect(beamline, tmp_path):
    go = tmp_path / "go"
    children = []
    for n in range(SESSIONS):
        env = {**os.environ, **beamline.as_env(), "SIMBEAMLINE_DATA_DIR": str(tmp_path / f"data{n}")}
        out, err = (open(tmp_path / f"{n}.{kind}", "w+") for kind in ("out", "err"))
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / f"ready{n}"), str(go)],
                                env=env, stdout=out, stderr=err, text=True)
        children.append((proc, out, err))
    try:
        wait_for(lambda: all((tmp_path / f"ready{n}").exists() for n in range(SESSIONS)),
                 CHILD_TIMEOUT, "every session to finish importing")
        go.touch()
        results = []
        for proc, out, err in children:
            proc.wait(timeout=CHILD_TIMEOUT)
            out.seek(0), err.seek(0)
            results.append((proc.returncode, out.read(), err.read()))
    finally:
        for proc, out, err in children:
            proc.kill() if proc.poll() is None else None
            out.close(), err.close()
    failed = [f"exit {code}:\n{stderr[-2000:]}" for code, _, stderr in results if code != 0]
    failed += [f"a session's state: {stdout.strip()[-500:]}" for code, stdout, _ in results
               if code == 0 and not connected(stdout)]
    failed += [f"repeater complaint:\n{stderr[-2000:]}" for _, _, stderr in results
               if any(text in stderr for text in REPEATER_COMPLAINTS)]
    assert not failed, f"{len(failed)} of {SESSIONS} sessions failed:\n" + "\n".join(failed)


def connected(stdout: str) -> bool:
    """Whether a session's last line says it read the ring current and connected."""
    try:
        state = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return False
    return (300 < state["current"] < 700 and state["spot"] and state["motor"]
            and state["adsimdet"])


def test_connect_tells_a_failed_connection_from_a_down_ioc(beamline):
    """The IOC answers but a device's PV never connects: ConnectFailed after the retries
    in fresh CA contexts. The IOC does not answer: IocDown, and for a session
    BeamlineNotRunning, which says how to start the IOCs."""
    import dataclasses

    import pytest
    from ophyd import EpicsSignalRO

    from simbeamline.control import ca_probe, launcher
    from simbeamline.devices import connect
    from simbeamline.devices.beamline import BeamlineNotRunning, build_beamline

    def build():
        return {"x": EpicsSignalRO(f"{beamline.prefix}no_such_pv", name="x")}

    with pytest.raises(connect.ConnectFailed, match="answers, but its devices did not connect"):
        connect.connect(build, lambda: launcher.ioc_state(beamline, "beamline", 5), "the IOC",
                        patience=0.5, attempts=2)
    with pytest.raises(connect.IocDown, match="does not answer"):
        connect.connect(build, lambda: ca_probe.DOWN, "the IOC", patience=0.5)
    with pytest.raises(BeamlineNotRunning, match="start"):
        build_beamline(dataclasses.replace(beamline, prefix="nobody:"), adsim=False)


def test_a_long_connection_says_what_it_waits_for(beamline, capfd):
    """An IOC that answers while one PV of a device never connects, and nobody asks
    the IOC whether it serves that PV (as for a search lost in a busy class: the IOC
    serves it): the wait goes on, but not in silence: each stall says which signals
    are missing and how long it may still wait, each retry says so, and the end is
    ConnectFailed naming the PV."""
    import pytest
    from ophyd import EpicsSignalRO

    from simbeamline.control import launcher
    from simbeamline.devices import connect

    def build():
        return {"I": EpicsSignalRO(f"{beamline.prefix}current", name="I"),
                "x": EpicsSignalRO(f"{beamline.prefix}no_such_pv", name="x")}

    with pytest.raises(connect.ConnectFailed, match="no_such_pv"):
        connect.connect(build, lambda: launcher.ioc_state(beamline, "beamline", 5), "the IOC",
                        patience=0.5, attempts=2, limit=1.5)
    said = capfd.readouterr().err
    assert "simbeamline: the IOC: 1 of 2 signals not connected" in said
    assert f"{beamline.prefix}no_such_pv" in said
    assert "the IOC answers, so waiting on (at most" in said
    assert "trying again in a fresh Channel Access context (attempt 2 of 2)" in said


def test_a_pv_the_ioc_refuses_fails_at_the_first_stall(beamline, capfd):
    """A session's connection asks the IOC for the PVs still missing after a stall: one
    it refuses (an IOC of another version) will never connect, so the session fails
    there, naming the PVs and what to do, instead of waiting on for ten minutes. The
    PVs it serves are not counted."""
    import pytest
    from ophyd import EpicsSignal, EpicsSignalRO

    from simbeamline.control import ca_probe
    from simbeamline.devices.beamline import BeamlineConnectFailed, _connect

    prefix = beamline.prefix
    assert ca_probe.refused([f"{prefix}current", f"{prefix}no_such_pv"], beamline.beamline_host,
                            beamline.ca_port, 5) == [f"{prefix}no_such_pv"]

    def build():
        return {"I": EpicsSignalRO(f"{prefix}current", name="I"),
                "x": EpicsSignal(f"{prefix}no_such_pv", write_pv=f"{prefix}no_such_sp", name="x")}

    with pytest.raises(BeamlineConnectFailed) as failed:
        _connect(beamline, "beamline", build, timeout=0.5)
    message = str(failed.value)
    assert f"does not serve {prefix}no_such_pv, {prefix}no_such_sp, which" in message
    assert "not the IOC these devices were made for" in message
    assert f"{prefix}current" not in message
    said = capfd.readouterr().err
    assert "waiting on" not in said and "trying again" not in said, said
