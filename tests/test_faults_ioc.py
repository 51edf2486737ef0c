"""Scripted faults of the beamline IOC, injected and cleared over Channel Access.

Each test injects one fault through its ``sim:fault:`` PV, checks what a client
sees (as ophyd and a raw CA client see it on a real beamline), clears it and checks
the beamline is back to normal.
"""

from __future__ import annotations

import threading

import pytest
from caproto import AlarmSeverity, ErrorResponseReceived
from caproto.sync.client import read as ca_read
from caproto.sync.client import write as ca_write
from ophyd import EpicsMotor, EpicsSignal, EpicsSignalRO

from test_beamline_ioc import SpotCamera, get
from waiting import wait_for, wait_for_value

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def pv(beamline):
    """``pv(suffix)``: the full name of a beamline PV."""
    return lambda suffix: f"{beamline.prefix}{suffix}"


def put(name, value):
    ca_write(name, value, notify=True, timeout=10, repeater=False)


@pytest.fixture(scope="module")
def current(pv):
    signal = EpicsSignalRO(pv("current"), name="I")
    signal.wait_for_connection(timeout=TIMEOUT)
    return signal


@pytest.fixture
def time_scale(pv):
    """Run the test on a fast clock (scale 0.01); real time again after."""
    put(pv("time_scale"), 0.01)
    yield 0.01
    put(pv("time_scale"), 1.0)


# --- ring -----------------------------------------------------------------------

def test_beam_dump_until_cleared(pv, current):
    put(pv("fault:beam_dump:duration"), 0)
    put(pv("fault:beam_dump"), "On")
    try:
        wait_for_value(current, lambda value: value == 0.0)
        assert get(pv("current"))[0] == 0.0
    finally:
        put(pv("fault:beam_dump"), "Off")
    wait_for_value(current, lambda value: value > 499.0)   # refilled at once


def test_timed_beam_dump_returns_by_itself(pv, current, time_scale):
    put(pv("fault:beam_dump:duration"), 100.0)              # 1 s of wall time at 0.01
    try:
        put(pv("fault:beam_dump"), "On")
        wait_for_value(current, lambda value: value == 0.0)
        wait_for_value(current, lambda value: value > 499.0)
        wait_for(lambda: get(pv("fault:beam_dump"))[0] == 0, what="the fault to read Off")
    finally:
        put(pv("fault:beam_dump"), "Off")
        put(pv("fault:beam_dump:duration"), 0)


def test_paused_topup_lets_the_beam_decay(pv, current, time_scale):
    lifetime, period = get(pv("current:lifetime"))[0], get(pv("current:topup_period"))[0]
    put(pv("current:lifetime"), 100.0)      # decays by 10 % in 10 s nominal (0.1 s wall)
    put(pv("current:topup_period"), 20.0)
    put(pv("fault:topup_paused"), "On")
    try:
        wait_for_value(current, lambda value: 0 < value < 300.0)   # long past 20 s
    finally:
        put(pv("fault:topup_paused"), "Off")
        put(pv("current:lifetime"), lifetime)
        put(pv("current:topup_period"), 0.5)
        wait_for_value(current, lambda value: value > 495.0)
        put(pv("current:topup_period"), period)


def test_refused_dump_duration(pv):
    before = get(pv("fault:beam_dump:duration"))[0]
    with pytest.raises(ErrorResponseReceived):
        put(pv("fault:beam_dump:duration"), -1.0)
    # refused as a real record refuses: value unchanged, no alarm left behind (issue 9)
    assert get(pv("fault:beam_dump:duration")) == (before, AlarmSeverity.NO_ALARM)
    put(pv("fault:beam_dump:duration"), 0.0)
    assert get(pv("fault:beam_dump:duration")) == (0.0, AlarmSeverity.NO_ALARM)


# --- shutter --------------------------------------------------------------------

def test_stuck_shutter_ignores_commands_and_shows_the_interlock(pv):
    shutter = EpicsSignal(pv("shutter_RBV"), write_pv=pv("shutter"), put_complete=True,
                          string=True, name="shutter")
    shutter.wait_for_connection(timeout=TIMEOUT)
    assert get(pv("shutter_RBV")) == (1, AlarmSeverity.NO_ALARM)
    put(pv("fault:shutter_stuck"), "On")
    try:
        shutter.set("Closed").wait(TIMEOUT)         # accepted, and ignored
        assert get(pv("shutter_RBV")) == (1, AlarmSeverity.MAJOR_ALARM)
        assert get(pv("shutter")) == (1, AlarmSeverity.NO_ALARM)
        assert get(pv("shutter:interlock")) == (1, AlarmSeverity.MAJOR_ALARM)
    finally:
        put(pv("fault:shutter_stuck"), "Off")
    assert get(pv("shutter:interlock")) == (0, AlarmSeverity.NO_ALARM)
    shutter.set("Closed").wait(TIMEOUT)
    assert get(pv("shutter_RBV")) == (0, AlarmSeverity.NO_ALARM)
    shutter.set("Open").wait(TIMEOUT)
    assert get(pv("shutter_RBV"))[0] == 1


# --- motors ---------------------------------------------------------------------

@pytest.fixture
def doty(pv):
    motor = EpicsMotor(pv("m:doty"), name="motor_doty")
    motor.wait_for_connection(timeout=TIMEOUT)
    motor.move(0, wait=True, timeout=TIMEOUT)
    yield motor
    put(pv("fault:m:doty:stall"), "Off")
    put(pv("fault:m:doty:limit"), "None")
    motor.move(0, wait=True, timeout=TIMEOUT)


def test_stalled_motor_stops_short_and_ophyd_reports_a_failed_move(pv, doty):
    put(pv("fault:m:doty:stall"), "On")
    status = doty.move(40, wait=False)
    with pytest.raises(Exception):
        status.wait(TIMEOUT)
    assert not status.success
    assert doty.motor_done_move.get(use_monitor=False) == 1
    assert doty.user_readback.get(use_monitor=False) == pytest.approx(20.0)
    msta = int(get(pv("m:doty.MSTA"))[0])
    assert msta & (1 << 9) and msta & (1 << 6)           # problem, slip/stall
    assert get(pv("m:doty"))[1] == AlarmSeverity.MAJOR_ALARM      # the record's alarm
    assert get(pv("m:doty.SEVR"))[0] == AlarmSeverity.MAJOR_ALARM
    put(pv("fault:m:doty:stall"), "Off")
    assert doty.move(40, wait=True, timeout=TIMEOUT).success   # the next move goes
    assert not int(get(pv("m:doty.MSTA"))[0]) & (1 << 9)
    assert get(pv("m:doty"))[1] == AlarmSeverity.NO_ALARM


def test_limit_switch_blocks_moves_towards_it(pv, doty):
    put(pv("fault:m:doty:limit"), "High")
    assert get(pv("m:doty.HLS"))[0] == 1
    status = doty.move(30, wait=False)
    with pytest.raises(Exception):
        status.wait(TIMEOUT)
    assert not status.success
    assert doty.user_readback.get(use_monitor=False) == 0.0
    assert int(get(pv("m:doty.MSTA"))[0]) & (1 << 2)      # plus limit switch
    assert doty.move(-10, wait=True, timeout=TIMEOUT).success   # away from it: fine
    put(pv("fault:m:doty:limit"), "None")
    assert get(pv("m:doty.HLS"))[0] == 0
    assert doty.move(30, wait=True, timeout=TIMEOUT).success


# --- cameras ----------------------------------------------------------------------

def test_hung_camera_never_finishes_until_aborted(pv, beamline):
    camera = SpotCamera(pv("dot:"), name="dot")
    camera.wait_for_connection(timeout=TIMEOUT)
    camera.exposure.put(0.01, wait=True)
    acquiring = EpicsSignal(pv("dot:acquire"), name="acquiring")
    hang = EpicsSignal(pv("fault:dot:hang"), name="hang")
    for signal in (acquiring, hang):
        signal.wait_for_connection(timeout=TIMEOUT)
    frames = camera.frame_counter.get(use_monitor=False)
    hang.put(1, wait=True)
    outcome = {}

    def acquire():      # the only caproto sync client call while this thread runs
        try:
            put(pv("dot:acquire"), 1)
            outcome["result"] = "finished"
        except ErrorResponseReceived as exc:
            outcome["result"] = str(exc)

    worker = threading.Thread(target=acquire)
    try:
        worker.start()
        wait_for_value(acquiring, lambda value: value == 1)
        worker.join(1.0)          # a 10 ms exposure: long over, yet still acquiring
        assert worker.is_alive() and acquiring.get(use_monitor=False) == 1
        acquiring.put(0, wait=True)                           # abort
        worker.join(TIMEOUT)
    finally:
        hang.put(0, wait=True)
    assert "aborted" in outcome["result"]
    assert camera.frame_counter.get(use_monitor=False) == frames    # no frame
    camera.trigger().wait(TIMEOUT)                                  # works again
    assert camera.frame_counter.get(use_monitor=False) == frames + 1
    assert get(pv("dot:acquire"))[1] == AlarmSeverity.NO_ALARM
    camera.exposure.put(1.0, wait=True)


# --- the whole IOC ----------------------------------------------------------------

def test_frozen_ioc_stops_answering_then_recovers(pv):
    put(pv("fault:freeze"), 3.0)
    wait_for(lambda: not _answers(pv("current")), what="the IOC to stop answering")
    wait_for(lambda: _answers(pv("current")), what="the IOC to answer again")
    assert get(pv("fault:freeze"))[0] == 0.0


def _answers(name):
    try:
        ca_read(name, timeout=0.5, repeater=False)
        return True
    except TimeoutError:
        return False
