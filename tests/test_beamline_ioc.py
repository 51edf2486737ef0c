"""The beamline IOC over Channel Access: motors, ring, shutter, cameras, bluesky plans.

Every test talks to the real IOC process started by the ``beamline`` fixture
(tests/conftest.py) with ophyd, bluesky or caproto's client, as a user would.
Waits are on statuses and monitored conditions with timeouts; timing checks have
generous upper bounds (shared 2-core machine) and strict lower bounds where the
physics demands them (a move or an exposure cannot finish early).
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from caproto import AlarmSeverity
from caproto.sync.client import read as ca_read
from caproto.sync.client import write as ca_write
from caproto import ErrorResponseReceived
from ophyd import Component as Cpt
from ophyd import Device, EpicsMotor, EpicsSignal, EpicsSignalRO
from ophyd.utils import LimitError
from waiting import wait_for_value

BACKGROUND = 1000.0
TIMEOUT = 30.0


# --- helpers -------------------------------------------------------------------------

def get(pv: str):
    """Value, severity of *pv*, read fresh over CA (no monitor cache)."""
    response = ca_read(pv, data_type="time", timeout=5, repeater=False)
    value = response.data[0] if len(response.data) == 1 else response.data
    if isinstance(value, bytes):
        value = value.decode()
    return value, AlarmSeverity(response.metadata.severity)


def assert_refused(pv: str, value) -> None:
    """A put with completion of *value* fails and leaves the value and the alarm alone
    (no alarm: a real record refuses a bad put without raising one; issue 9)."""
    before, _ = get(pv)
    with pytest.raises(ErrorResponseReceived):
        ca_write(pv, value, notify=True, timeout=5, repeater=False)
    after, severity = get(pv)
    assert severity == AlarmSeverity.NO_ALARM
    assert after == before or (math.isnan(after) and math.isnan(before))


class SpotCamera(Device):
    """A minimal ophyd view of ``sim:spot:``: trigger = acquire with completion."""

    exposure = Cpt(EpicsSignal, "exp", kind="config")
    acquire = Cpt(EpicsSignal, "acquire", put_complete=True, kind="omitted")
    total = Cpt(EpicsSignalRO, "sum", kind="hinted")
    frame_counter = Cpt(EpicsSignalRO, "frame_counter", kind="normal")
    image = Cpt(EpicsSignalRO, "image", kind="omitted")
    width = Cpt(EpicsSignalRO, "width", kind="config")
    height = Cpt(EpicsSignalRO, "height", kind="config")

    def trigger(self):
        return self.acquire.set(1, timeout=TIMEOUT)

    def frame(self, exposure: float | None = None) -> np.ndarray:
        """Acquire one frame (waiting for completion) and return it as rows x columns."""
        if exposure is not None:
            self.exposure.put(exposure, wait=True)
        self.trigger().wait(TIMEOUT)
        flat = self.image.get(use_monitor=False)
        return np.asarray(flat).reshape(self.height.get(), self.width.get())


def centroid(signal: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(signal.shape)
    total = signal.sum()
    return (signal * columns).sum() / total, (signal * rows).sum() / total


# --- fixtures ------------------------------------------------------------------------

def _motor(prefix: str, name: str) -> EpicsMotor:
    motor = EpicsMotor(f"{prefix}m:{name}", name=f"motor_{name}")
    motor.wait_for_connection(timeout=TIMEOUT)
    return motor


@pytest.fixture(scope="module")
def spotx(beamline):
    return _motor(beamline.prefix, "spotx")


@pytest.fixture(scope="module")
def spoty(beamline):
    return _motor(beamline.prefix, "spoty")


@pytest.fixture(scope="module")
def dotx(beamline):
    return _motor(beamline.prefix, "dotx")


@pytest.fixture(scope="module")
def camera(beamline):
    cam = SpotCamera(f"{beamline.prefix}spot:", name="spot")
    cam.wait_for_connection(timeout=TIMEOUT)
    return cam


@pytest.fixture(scope="module")
def current(beamline):
    signal = EpicsSignalRO(f"{beamline.prefix}current", name="I")
    signal.wait_for_connection(timeout=TIMEOUT)
    return signal


@pytest.fixture
def centred(spotx, spoty, camera):
    """Spot motors at 0, exposure 1 s, before and after the test."""
    for m in (spotx, spoty):
        m.move(0, wait=True, timeout=TIMEOUT)
    camera.exposure.put(1.0, wait=True)
    yield
    for m in (spotx, spoty):
        m.move(0, wait=True, timeout=TIMEOUT)
    camera.exposure.put(1.0, wait=True)


@pytest.fixture
def ring_settings(beamline, current):
    """Let a test change the ring's lifetime and top-up period; restore a full ring after."""
    period = EpicsSignal(f"{beamline.prefix}current:topup_period", name="period")
    lifetime = EpicsSignal(f"{beamline.prefix}current:lifetime", name="lifetime")
    for s in (period, lifetime):
        s.wait_for_connection(timeout=TIMEOUT)
    saved = period.get(), lifetime.get()
    yield period, lifetime
    period.put(0.5, wait=True)                # force a top-up ...
    wait_for_value(current, lambda value: value > 495.0)
    lifetime.put(saved[1], wait=True)         # ... then the usual settings
    period.put(saved[0], wait=True)


# --- motors --------------------------------------------------------------------------

def test_motor_fields_ophyd_uses(beamline, spotx):
    prefix = f"{beamline.prefix}m:spotx"
    assert spotx.limits == (-250.0, 250.0)
    assert spotx.egu == "mm"
    assert spotx.velocity.get() == 100.0
    assert spotx.acceleration.get() == pytest.approx(0.1)
    for field in ("VAL", "RBV", "DMOV", "MOVN", "STOP", "VELO", "ACCL", "HLM", "LLM",
                  "HLS", "LLS", "LVIO", "EGU", "DESC", "PREC", "OFF", "DIR", "SET",
                  "FOFF", "MSTA", "CNEN", "TDIR", "HOMF", "HOMR", "DRBV", "SPMG"):
        get(f"{prefix}.{field}")               # every one answers
    assert get(f"{prefix}.DESC")[0] == "spot camera x"
    assert get(f"{beamline.prefix}m:samx.RBV")[0] == 50.0     # parked out of the beam
    assert get(f"{beamline.prefix}m:samx.HLM")[0] == 100.0
    assert get(f"{beamline.prefix}m:samx.VELO")[0] == 20.0


def test_move_takes_distance_over_velocity(spotx):
    spotx.move(0, wait=True, timeout=TIMEOUT)
    readbacks = []
    token = spotx.user_readback.subscribe(lambda value, **kw: readbacks.append(value),
                                          run=False)
    try:
        start = time.monotonic()
        status = spotx.move(100, wait=True, timeout=TIMEOUT)
        elapsed = time.monotonic() - start
    finally:
        spotx.user_readback.unsubscribe(token)
    assert status.success
    assert spotx.position == pytest.approx(100.0)
    # 100 mm at 100 mm/s plus a 0.1 s ramp: 1.1 s; it cannot be faster
    assert 1.05 <= elapsed < 1.1 + 2.0
    intermediate = [v for v in readbacks if 1.0 < v < 99.0]
    assert len(intermediate) >= 5, readbacks      # RBV updates during the move
    assert intermediate == sorted(intermediate)
    spotx.move(0, wait=True, timeout=TIMEOUT)


@pytest.mark.parametrize("target", [300.0, -250.01, math.nan])
def test_move_past_a_limit_raises_and_does_not_move(spotx, target):
    spotx.move(10, wait=True, timeout=TIMEOUT)
    with pytest.raises(LimitError):
        spotx.move(target, wait=True, timeout=TIMEOUT)
    assert spotx.user_readback.get(use_monitor=False) == 10.0
    assert spotx.motor_done_move.get(use_monitor=False) == 1
    spotx.move(0, wait=True, timeout=TIMEOUT)


@pytest.mark.parametrize("target", [300.0, -300.0, math.nan, math.inf, -math.inf])
def test_ioc_refuses_bad_targets_itself(beamline, spotx, target):
    """Past ophyd's client-side check: a raw CA put is refused by the IOC too."""
    pv = f"{beamline.prefix}m:spotx"
    spotx.move(20, wait=True, timeout=TIMEOUT)
    assert_refused(pv, target)
    assert get(f"{pv}.LVIO")[0] == 1
    assert get(f"{pv}.RBV")[0] == 20.0
    assert get(f"{pv}.DMOV")[0] == 1
    assert get(f"{pv}.MOVN")[0] == 0
    # the next good move clears the violation and succeeds, with no alarm
    status = spotx.move(0, wait=True, timeout=TIMEOUT)
    assert status.success
    assert get(f"{pv}.LVIO")[0] == 0
    assert get(pv) == (0.0, AlarmSeverity.NO_ALARM)


def test_stop_halts_a_move_short(beamline, spotx):
    spotx.move(0, wait=True, timeout=TIMEOUT)
    status = spotx.move(-200, wait=False, timeout=TIMEOUT)
    wait_for_value(spotx.user_readback, lambda value: value < -40.0)
    spotx.stop()
    wait_for_value(spotx.motor_done_move, lambda value: value == 1)
    try:  # ophyd finishes the status from its own callback thread, possibly a bit later
        status.wait(TIMEOUT)
    except Exception:  # a stopped move ends the status as unsuccessful; only "done" matters
        pass
    assert status.done
    stopped = spotx.user_readback.get(use_monitor=False)
    assert -190.0 < stopped < -40.0
    pv = f"{beamline.prefix}m:spotx"
    assert get(f"{pv}.MOVN")[0] == 0
    assert get(pv)[0] == pytest.approx(stopped)       # VAL becomes where it stopped
    spotx.move(0, wait=True, timeout=TIMEOUT)


def test_put_with_completion_taken_over_completes_when_the_motion_ends(beamline, spotx):
    """A put to VAL during a put-with-completion move retargets the motor; the first
    put completes only when the motor is at rest at the new target (DMOV=1), as on a
    motor record, not when it is taken over."""
    pv = f"{beamline.prefix}m:spotx"
    spotx.move(0, wait=True, timeout=TIMEOUT)
    first: dict = {}

    def put_with_completion():
        try:
            ca_write(pv, -200.0, notify=True, timeout=TIMEOUT, repeater=False)
        except Exception as exc:     # reported below, in the test's thread
            first["error"] = exc
        first["at"] = get(f"{pv}.RBV")[0], get(f"{pv}.DMOV")[0]

    thread = threading.Thread(target=put_with_completion, daemon=True)
    thread.start()
    try:
        wait_for_value(spotx.user_readback, lambda value: value < -40.0)
        # take it over (through pyepics: caproto's sync client is not for two threads)
        spotx.user_setpoint.put(50.0, use_complete=False)
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the first put never completed"
        assert "error" not in first, first.get("error")
        readback, done = first["at"]
        assert done == 1 and readback == pytest.approx(50.0), first["at"]
    finally:
        thread.join(TIMEOUT)
        spotx.move(0, wait=True, timeout=TIMEOUT)


def test_set_redefines_the_position_without_moving(beamline, dotx):
    pv = f"{beamline.prefix}m:dotx"
    dotx.move(0, wait=True, timeout=TIMEOUT)
    moving = []
    token = dotx.motor_is_moving.subscribe(lambda value, **kw: moving.append(value),
                                           run=False)
    try:
        dotx.set_current_position(10.0)
        wait_for_value(dotx.user_readback, lambda value: value == 10.0)
        assert get(f"{pv}.OFF")[0] == 10.0
        assert get(f"{pv}.DRBV")[0] == 0.0            # the hardware did not move
        assert get(f"{pv}.HLM")[0] == 260.0           # dial limits fixed, user ones shift
        assert get(f"{pv}.SET")[0] == 0              # back to Use
        assert 1 not in moving
    finally:
        dotx.user_offset.put(0.0, wait=True)
        dotx.motor_is_moving.unsubscribe(token)
    wait_for_value(dotx.user_readback, lambda value: value == 0.0)
    assert get(f"{pv}.HLM")[0] == 250.0


@pytest.mark.parametrize("field,bad", [("VELO", 0.0), ("VELO", -5.0), ("VELO", math.nan),
                                       ("ACCL", -0.1), ("ACCL", math.inf)])
def test_bad_motor_settings_are_refused(beamline, field, bad):
    assert_refused(f"{beamline.prefix}m:spoty.{field}", bad)


# --- ring ----------------------------------------------------------------------------

def _collect(signal, enough, timeout=TIMEOUT):
    """Monitor *signal* until *enough(values)*; return the values."""
    values, done = [], threading.Event()

    def callback(value, **kwargs):
        values.append(value)
        if enough(values):
            done.set()

    token = signal.subscribe(callback, run=False)
    try:
        assert done.wait(timeout), f"condition not met; saw {values}"
    finally:
        signal.unsubscribe(token)
    return values


def test_ring_current_in_range_and_changing(current):
    values = _collect(current, lambda v: len(v) >= 5)   # >= 1 update per second
    assert all(480.0 < v < 501.0 for v in values), values
    assert len(set(values)) > 1


def test_topup_is_seen_when_its_period_is_short(ring_settings, current):
    period, lifetime = ring_settings
    lifetime.put(20.0, wait=True)
    period.put(3.0, wait=True)
    # 3 s at a 20 s lifetime loses about 14 %; a top-up jumps back to ~500
    values = _collect(current, lambda v: len(v) > 1 and v[-1] - v[-2] > 20.0)
    assert values[-1] > 495.0
    assert min(values) < 480.0


@pytest.mark.parametrize("name", ["current:topup_period", "current:lifetime"])
@pytest.mark.parametrize("bad", [-1.0, 0.0, math.nan, math.inf])
def test_bad_ring_settings_are_refused(beamline, name, bad):
    pv = f"{beamline.prefix}{name}"
    assert_refused(pv, bad)
    good, _ = get(pv)
    ca_write(pv, good, notify=True, timeout=5, repeater=False)         # a good put clears the alarm
    assert get(pv) == (good, AlarmSeverity.NO_ALARM)


# --- shutter and cameras -------------------------------------------------------------

@pytest.mark.parametrize("x,y", [(0, 0), (50, -30), (-80, 40), (120, 60)])
def test_spot_centroid_follows_the_motors(centred, spotx, spoty, camera, x, y):
    spotx.move(x, wait=True, timeout=TIMEOUT)
    spoty.move(y, wait=True, timeout=TIMEOUT)
    frame = camera.frame(exposure=1.0)
    assert frame.dtype == np.int32 and frame.shape == (480, 640)
    column, row = centroid(frame - BACKGROUND)
    assert column == pytest.approx(320 - x, abs=2.0)
    assert row == pytest.approx(240 - y, abs=2.0)


def test_counts_above_background_scale_with_exposure(centred, camera):
    pixels = 480 * 640
    signal = {}
    for exposure in (0.25, 0.5, 1.0):
        camera.frame(exposure=exposure)
        signal[exposure] = camera.total.get(use_monitor=False) - BACKGROUND * pixels
    assert signal[0.5] / signal[0.25] == pytest.approx(2.0, rel=0.03)
    assert signal[1.0] / signal[0.25] == pytest.approx(4.0, rel=0.03)


def test_counts_above_background_scale_with_current(centred, camera, current, ring_settings):
    period, lifetime = ring_settings
    lifetime.put(30.0, wait=True)        # ~3 % per second: big changes, slow enough
    period.put(6.0, wait=True)
    pixels = 480 * 640
    samples = []                         # (signal per mA)
    currents = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        before = current.get(use_monitor=False)
        camera.frame(exposure=0.2)
        after = current.get(use_monitor=False)
        if abs(after - before) > 0.03 * after:
            continue                     # a top-up during the frame: current unknown
        mean_current = (before + after) / 2
        samples.append((camera.total.get(use_monitor=False) - BACKGROUND * pixels)
                       / mean_current)
        currents.append(mean_current)
        if max(currents) / min(currents) > 1.12:
            break
    assert max(currents) / min(currents) > 1.12, currents
    # signal / current is the same at every current
    assert max(samples) / min(samples) == pytest.approx(1.0, abs=0.05), (samples, currents)


def test_closed_shutter_gives_background_only(beamline, centred, camera):
    shutter = EpicsSignal(f"{beamline.prefix}shutter", name="shutter",
                          put_complete=True, string=True)
    readback = EpicsSignalRO(f"{beamline.prefix}shutter_RBV", name="shutter_rbv",
                             string=True)
    for s in (shutter, readback):
        s.wait_for_connection(timeout=TIMEOUT)
    assert readback.get() == "Open"
    try:
        shutter.set("Closed").wait(TIMEOUT)
        assert readback.get(use_monitor=False) == "Closed"   # followed before completion
        frame = camera.frame(exposure=1.0)
    finally:
        shutter.set("Open").wait(TIMEOUT)
    assert readback.get(use_monitor=False) == "Open"
    assert frame.mean() == pytest.approx(BACKGROUND, abs=1.0)
    assert frame.var() == pytest.approx(BACKGROUND, rel=0.05)       # Poisson
    assert frame[215:265, 295:345].mean() == pytest.approx(BACKGROUND, abs=10.0)


def test_signal_to_noise_grows_with_exposure(centred, camera):
    roi = (slice(220, 260), slice(290, 350))      # the bright core of the spot

    def snr(exposure):
        a, b = camera.frame(exposure)[roi], camera.frame(exposure)[roi]
        signal = (a.mean() + b.mean()) / 2 - BACKGROUND
        noise = (a.astype(float) - b).std() / math.sqrt(2)   # the shot noise
        return signal / noise

    short, long = snr(0.1), snr(1.0)
    assert long > 2.0 * short                     # ~sqrt(10) for shot noise


def test_acquire_never_completes_before_the_exposure(centred, camera):
    counter = camera.frame_counter.get(use_monitor=False)
    camera.exposure.put(1.5, wait=True)
    start = time.monotonic()
    camera.trigger().wait(TIMEOUT)
    elapsed = time.monotonic() - start
    assert elapsed >= 1.5
    assert elapsed < 1.5 + 3.0
    # the frame was published before the put completed
    assert camera.frame_counter.get(use_monitor=False) == counter + 1
    image = np.asarray(camera.image.get(use_monitor=False))
    assert image.sum(dtype=np.int64) == camera.total.get(use_monitor=False)


def test_frames_are_fresh_not_free_running(centred, spotx, camera):
    """A frame reflects a motor move made just before it, never an older state."""
    first = camera.frame(exposure=0.1)
    spotx.move(100, wait=True, timeout=TIMEOUT)
    second = camera.frame(exposure=0.1)
    assert centroid(first - BACKGROUND)[0] == pytest.approx(320, abs=3)
    assert centroid(second - BACKGROUND)[0] == pytest.approx(220, abs=3)


def test_a_frame_shows_the_beam_at_mid_exposure(centred, spotx, camera):
    """A spot crossing the field at constant speed during the whole exposure is seen
    where it was halfway through (the centroid of the smeared spot a real exposure
    records), not where it started or ended."""
    spotx.move(-100, wait=True, timeout=TIMEOUT)
    camera.exposure.put(4.0, wait=True)
    speed = spotx.velocity.get()
    try:
        spotx.velocity.put(50.0, wait=True)           # -100 -> 100: 4 s, the exposure
        moving = spotx.move(100, wait=False)
        frame = camera.frame()
        moving.wait(TIMEOUT)
    finally:
        spotx.velocity.put(speed, wait=True)
    column, _ = centroid(frame - BACKGROUND)
    # mid-exposure: x near 0 (column 320); the start or the end would give x = -100
    # or 100 (columns 420 or 220); the acquisition starts a few CA round trips late
    assert column == pytest.approx(320, abs=25), column


@pytest.mark.parametrize("camera_name", ["spot", "dot"])
@pytest.mark.parametrize("bad", [-1.0, 0.0, math.nan, math.inf, -math.inf])
def test_bad_exposures_are_refused(beamline, camera_name, bad):
    pv = f"{beamline.prefix}{camera_name}:exp"
    assert_refused(pv, bad)
    ca_write(pv, 1.0, notify=True, timeout=5, repeater=False)
    assert get(pv) == (1.0, AlarmSeverity.NO_ALARM)


def test_dot_camera_follows_its_own_motors(beamline, dotx):
    cam = SpotCamera(f"{beamline.prefix}dot:", name="dot")
    cam.wait_for_connection(timeout=TIMEOUT)
    try:
        dotx.move(-60, wait=True, timeout=TIMEOUT)
        column, _ = centroid(cam.frame(exposure=0.2) - BACKGROUND)
    finally:
        dotx.move(0, wait=True, timeout=TIMEOUT)
    assert column == pytest.approx(380, abs=3)


# --- bluesky -------------------------------------------------------------------------

@pytest.fixture
def RE():
    from bluesky import RunEngine
    return RunEngine({})


def _documents(RE, plan):
    docs = []
    RE(plan, lambda name, doc: docs.append((name, doc)))
    return docs


def test_bluesky_count(RE, centred, camera):
    from bluesky.plans import count
    camera.exposure.put(0.2, wait=True)
    counter = camera.frame_counter.get(use_monitor=False)
    docs = _documents(RE, count([camera], num=3))
    events = [doc for name, doc in docs if name == "event"]
    assert len(events) == 3
    assert docs[-1][1]["exit_status"] == "success"
    sums = [e["data"]["spot_total"] for e in events]
    assert all(s > BACKGROUND * 480 * 640 * 1.1 for s in sums)
    assert [e["data"]["spot_frame_counter"] for e in events] == [counter + 1, counter + 2,
                                                                 counter + 3]


def test_bluesky_grid_scan(RE, centred, camera, spotx, spoty):
    from bluesky.plans import grid_scan
    camera.exposure.put(0.2, wait=True)
    docs = _documents(RE, grid_scan([camera], spotx, -40, 40, 3, spoty, -20, 20, 3))
    events = [doc["data"] for name, doc in docs if name == "event"]
    assert docs[-1][1]["exit_status"] == "success"
    assert len(events) == 9
    points = {(round(e["motor_spotx"]), round(e["motor_spoty"])) for e in events}
    assert points == {(x, y) for x in (-40, 0, 40) for y in (-20, 0, 20)}
    brightest = max(events, key=lambda e: e["spot_total"])
    assert (round(brightest["motor_spotx"]), round(brightest["motor_spoty"])) == (0, 0)
