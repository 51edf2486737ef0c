"""The simulation clock over Channel Access: ``sim:time_scale`` and what follows it.

Durations are read from the time stamps the IOC posts (wall clock, as on any
IOC): the acquire PV going to 1 and back to 0, DMOV leaving 1 and returning to it.
Their accuracy does not depend on how fast this test process reads them.
"""

from __future__ import annotations

import statistics
import threading

import numpy as np
import pytest
from caproto import AlarmSeverity
from ophyd import EpicsMotor, EpicsSignal, EpicsSignalRO

from simbeamline_iocs import spotcam
from test_beamline_ioc import assert_refused, camera, get  # noqa: F401 (fixture)
from waiting import wait_for

TIMEOUT = 30.0


class Transitions:
    """The IOC's time stamps of each change of a monitored *signal*'s value."""

    def __init__(self, signal):
        self.signal = signal
        self.changes: list[tuple[object, float]] = []
        self.lock = threading.Lock()
        self.token = signal.subscribe(self._record, run=False)

    def _record(self, value, timestamp, **kw):
        with self.lock:
            if not self.changes or self.changes[-1][0] != value:
                self.changes.append((value, timestamp))

    def close(self):
        self.signal.unsubscribe(self.token)

    def durations(self, start_value, end_value) -> list[float]:
        """Seconds from each *start_value* to the *end_value* that follows it."""
        with self.lock:
            changes = list(self.changes)
        out, began = [], None
        for value, stamp in changes:
            if value == start_value:
                began = stamp
            elif value == end_value and began is not None:
                out.append(stamp - began)
                began = None
        return out


@pytest.fixture(scope="module")
def time_scale(beamline):
    signal = EpicsSignal(f"{beamline.prefix}time_scale", name="time_scale")
    signal.wait_for_connection(timeout=TIMEOUT)
    yield signal
    signal.put(1.0, wait=True)
    EpicsSignal(f"{beamline.prefix}spot:exp", name="exp").put(1.0, wait=True)


@pytest.fixture(scope="module")
def dotx(beamline):
    motor = EpicsMotor(f"{beamline.prefix}m:dotx", name="motor_dotx")
    motor.wait_for_connection(timeout=TIMEOUT)
    yield motor
    motor.acceleration.put(0.1, wait=True)
    motor.velocity.put(100.0, wait=True)
    motor.move(0, wait=True, timeout=TIMEOUT)


def acquire_durations(beamline, camera, exposure, repeats):
    acquire = EpicsSignalRO(f"{beamline.prefix}spot:acquire", name="acquire")
    acquire.wait_for_connection(timeout=TIMEOUT)
    transitions = Transitions(acquire)
    try:
        camera.exposure.put(exposure, wait=True)
        for _ in range(repeats):
            camera.trigger().wait(TIMEOUT)
        wait_for(lambda: len(transitions.durations(1, 0)) >= repeats,
                 what="every acquisition's 1 -> 0 transition")
    finally:
        transitions.close()
    return transitions.durations(1, 0)


def test_time_scale_pv_reads_the_start_scale_and_refuses_nonsense(beamline, time_scale):
    assert time_scale.get() == 1.0          # the test beamline starts in real time
    for bad in (0.0, -1.0, 1e-6, 1e4):
        assert_refused(f"{beamline.prefix}time_scale", bad)
    time_scale.put(0.5, wait=True)
    assert get(f"{beamline.prefix}time_scale") == (0.5, AlarmSeverity.NO_ALARM)
    time_scale.put(1.0, wait=True)


def test_at_scale_one_an_exposure_takes_its_time(beamline, time_scale, camera):
    """0.5 s within 10 %, from the IOC's time stamps; the frame computation that
    follows every exposure is measured at a 1 ms exposure and taken off."""
    time_scale.put(1.0, wait=True)
    overhead = statistics.median(acquire_durations(beamline, camera, 0.001, 3))
    exposed = statistics.median(acquire_durations(beamline, camera, 0.5, 3))
    print(f"0.5 s exposure: {exposed - overhead:.3f} s (IOC time stamps; frame "
          f"computation {overhead:.3f} s taken off)")
    assert exposed - overhead == pytest.approx(0.5, rel=0.10)


def test_at_scale_one_a_move_takes_distance_over_velocity(beamline, time_scale, dotx):
    """40 units at 50/s with no ramp: 0.8 s within 10 %, DMOV 1 -> 0 -> 1 stamps."""
    time_scale.put(1.0, wait=True)
    dotx.move(0, wait=True, timeout=TIMEOUT)
    dotx.velocity.put(50.0, wait=True)
    dotx.acceleration.put(0.0, wait=True)
    transitions = Transitions(dotx.motor_done_move)
    try:
        for target in (40, 0, 40):
            assert dotx.move(target, wait=True, timeout=TIMEOUT).success
        wait_for(lambda: len(transitions.durations(0, 1)) >= 3, what="three DMOV edges")
    finally:
        transitions.close()
    moved = statistics.median(transitions.durations(0, 1))
    print(f"40-unit move at 50/s: {moved:.3f} s (IOC time stamps of DMOV)")
    assert moved == pytest.approx(0.8, rel=0.10)


def test_a_fast_clock_keeps_the_counts_of_the_nominal_exposure(beamline, time_scale,
                                                                camera):
    """At scale 0.01 a 5 s exposure lasts about 50 ms and counts as 5 s do.

    At that scale the ring tops up every 6 s of wall time and decays 1.7 % in
    between, so the frame's current is bracketed by readings taken before the
    acquisitions and after the frame, not taken from one reading.
    """
    current = EpicsSignalRO(f"{beamline.prefix}current", name="I")
    current.wait_for_connection(timeout=TIMEOUT)
    time_scale.put(0.01, wait=True)
    try:
        before = current.get(use_monitor=False)
        durations = acquire_durations(beamline, camera, 5.0, 2)
        frame = np.asarray(camera.image.get(use_monitor=False), dtype=float)
        after = current.get(use_monitor=False)
    finally:
        time_scale.put(1.0, wait=True)
    assert max(durations) < 2.5             # nowhere near the nominal 5 s
    shape = spotcam.DEFAULT_SHAPE
    low, high = (spotcam.expected_frame(shape, 0.0, 0.0, 5.0, I).sum()
                 for I in sorted((before, after)))
    assert low * 0.995 <= frame.sum() <= high * 1.005, (before, after)
    short = spotcam.expected_frame(shape, 0.0, 0.0, 0.05, after).sum()
    assert abs(frame.sum() - high) < abs(frame.sum() - short) / 10


def test_a_fast_clock_speeds_motor_moves(beamline, time_scale, dotx):
    time_scale.put(0.01, wait=True)
    dotx.velocity.put(1.0, wait=True)       # 100 units would take 100 s at scale 1
    dotx.acceleration.put(0.0, wait=True)
    transitions = Transitions(dotx.motor_done_move)
    try:
        assert dotx.move(100, wait=True, timeout=TIMEOUT).success
        wait_for(lambda: transitions.durations(0, 1), what="DMOV back to 1")
    finally:
        transitions.close()
        time_scale.put(1.0, wait=True)
        dotx.velocity.put(100.0, wait=True)
    assert dotx.position == pytest.approx(100.0)
    assert transitions.durations(0, 1)[0] < 10.0
