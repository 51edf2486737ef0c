"""An IOC killed mid-plan ends the run at once, says which IOC, loses nothing before it,
and the next plan of the same session works once supervisord has restarted the IOC.

Each test kills a real IOC process (SIGKILL) of the test beamline while a plan runs,
from a document callback once a few events are stored, and leaves it answering again.
A plan that hung instead of ending would be stopped by the test's time limit; a plan
that ended by a timeout would not name the IOC in its reason.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from session_support import new_session, private_config
from simbeamline.control import launcher
from waiting import wait_for

pytestmark = pytest.mark.timeout(120)

#: Events stored before the IOC is killed.
EVENTS_BEFORE_KILL = 3


@pytest.fixture(scope="module")
def ns(beamline, tmp_path_factory):
    return new_session(private_config(beamline, tmp_path_factory.mktemp("crash-data")),
                       adsim=True)


def kill_after_events(RE, config, program: str, events: int = EVENTS_BEFORE_KILL):
    """Subscribe a callback killing *program*'s IOC (SIGKILL) at the *events*-th event;
    return (the documents seen, the pid killed), the pid filled in once killed."""
    rpc = launcher._rpc(config)
    pid = rpc.supervisor.getProcessInfo(program)["pid"]
    docs: list = []
    killed: list = []

    def callback(name, doc):
        docs.append((name, doc))
        if name == "event" and not killed and sum(n == "event" for n, _ in docs) >= events:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    token = RE.subscribe(callback)
    return docs, killed, token


def wait_restarted(config, program: str, old_pid: int) -> None:
    """Wait until supervisord has restarted *program* and every IOC answers."""
    rpc = launcher._rpc(config)
    wait_for(lambda: (info := rpc.supervisor.getProcessInfo(program))["statename"] == "RUNNING"
             and info["pid"] != old_pid, 60, f"supervisord to restart {program}")
    launcher.wait_until_answering(config, 60)


def stop_of(docs) -> dict:
    stops = [doc for name, doc in docs if name == "stop"]
    assert len(stops) == 1, "the run has no stop document"
    return stops[0]


def test_adsim_ioc_killed_mid_count_ends_the_run_and_the_next_count_works(ns, beamline):
    import hdf5plugin  # noqa: F401

    RE, bp, adsimdet, cat = ns["RE"], ns["bp"], ns["adsimdet"], ns["cat"]
    docs, killed, token = kill_after_events(RE, beamline, "adsim")
    try:
        with pytest.raises(Exception, match="ADSimDetector IOC"):
            RE(bp.count([adsimdet], num=20))
    finally:
        RE.unsubscribe(token)
    assert killed, "the IOC was never killed: the count ended before its third event"
    stop = stop_of(docs)
    assert stop["exit_status"] == "fail"
    assert "ADSimDetector IOC (ad:" in stop["reason"] or \
        f"ADSimDetector IOC ({beamline.ad_prefix})" in stop["reason"]
    assert "stopped answering" in stop["reason"]
    # every event stored before the kill is readable, its file complete
    run = cat[stop["run_start"]]
    events = [doc for name, doc in docs if name == "event"]
    assert len(events) >= EVENTS_BEFORE_KILL
    frames = run.primary.read()[adsimdet.image.name].values
    assert frames.shape[0] == len(events) and frames[0][0].ndim == 2   # (1, rows, columns) each
    # after supervisord restarted the IOC, the same session counts again (no manual priming)
    wait_restarted(beamline, "adsim", killed[0])
    (uid,) = RE(bp.count([adsimdet], num=3))
    again = cat[uid]
    assert again.metadata["stop"]["exit_status"] == "success"
    assert again.primary.read()[adsimdet.image.name].shape[0] == 3


def test_beamline_ioc_killed_mid_scan_ends_the_run_and_the_next_count_works(ns, beamline):
    RE, bp, spot, motor, db = ns["RE"], ns["bp"], ns["spot"], ns["mtr_spotx"], ns["db"]
    spot.exp.put(0.02)
    docs, killed, token = kill_after_events(RE, beamline, "beamline")
    try:
        with pytest.raises(Exception, match="beamline IOC"):
            RE(bp.scan([spot], motor, -10, 10, 20))
    finally:
        RE.unsubscribe(token)
    assert killed, "the IOC was never killed: the scan ended before its third event"
    stop = stop_of(docs)
    assert stop["exit_status"] == "fail"
    assert "beamline IOC" in stop["reason"] and "stopped answering" in stop["reason"]
    events = [doc for name, doc in docs if name == "event"]
    assert len(events) >= EVENTS_BEFORE_KILL
    header = db[stop["run_start"]]
    frames = list(header.data("spot_img"))
    assert len(frames) == len(events)
    assert all(frame.shape == (480, 640) for frame in frames)
    wait_restarted(beamline, "beamline", killed[0])
    (uid,) = RE(bp.count([spot], num=2))
    assert db[uid].stop["exit_status"] == "success"
    assert np.stack(list(db[uid].data("spot_img"))).shape == (2, 480, 640)


def test_beamline_ioc_killed_mid_move_names_the_ioc(ns, beamline):
    """Killed while a scan's motor is moving (not acquiring): ophyd's own callbacks fail
    the MoveStatus first, and the error and the stop document still name the IOC."""
    RE, bp, spot, motor, db = ns["RE"], ns["bp"], ns["spot"], ns["mtr_spotx"], ns["db"]
    spot.exp.put(0.01)
    motor.move(0, wait=True, timeout=30)
    speed = motor.velocity.get()
    rpc = launcher._rpc(beamline)
    pid = rpc.supervisor.getProcessInfo("beamline")["pid"]
    docs: list = []
    killed: list = []

    def kill_once_moving(*, value, **kwargs):
        # the second point's move (the first event is stored by then) takes 4 s
        if value and not killed and any(name == "event" for name, _ in docs):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    motor.velocity.put(1.0, wait=True)
    moving = motor.motor_is_moving.subscribe(kill_once_moving, run=False)
    token = RE.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        with pytest.raises(Exception, match="beamline IOC"):
            RE(bp.scan([spot], motor, 0, 4, 2))
    finally:
        RE.unsubscribe(token)
        motor.motor_is_moving.unsubscribe(moving)
    assert killed, "the IOC was never killed: the motor never moved after the first event"
    stop = stop_of(docs)
    assert stop["exit_status"] == "fail"
    assert "beamline IOC" in stop["reason"] and "stopped answering" in stop["reason"]
    assert [frame.shape for frame in db[stop["run_start"]].data("spot_img")] == [(480, 640)]
    wait_restarted(beamline, "beamline", killed[0])
    motor.wait_for_connection(timeout=30)
    motor.velocity.put(speed, wait=True)      # autosave brought the slow speed back
    assert motor.velocity.get(use_monitor=False) == speed, "VELO did not go back up"
    motor.move(0, wait=True, timeout=30)
