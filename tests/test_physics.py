"""Unit tests of the beamline IOC's physics: the plain functions beside each PVGroup.

No network, no IOC process: these pin the models that the integration tests in
test_beamline_ioc.py then check over Channel Access.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbeamline_iocs import motor, ring, spotcam
from simbeamline_iocs.validation import non_negative_finite, positive_finite

SHAPE = (480, 640)


# --- ring ----------------------------------------------------------------------------

def test_current_decays_with_lifetime():
    assert ring.decayed_current(500.0, 0.0, 100.0) == 500.0
    assert ring.decayed_current(500.0, 100.0, 100.0) == pytest.approx(500.0 / math.e)


def test_ring_tops_up_after_the_period_and_not_before():
    state = ring.RingState(last_fill=0.0)
    before = state.current(9.9, lifetime=10.0, topup_period=10.0)
    assert before == pytest.approx(500.0 * math.exp(-0.99))
    after = state.current(10.0, lifetime=10.0, topup_period=10.0)
    assert after == pytest.approx(500.0)
    assert state.last_fill == 10.0


def test_changing_the_lifetime_applies_from_then_on_and_keeps_the_topup_schedule():
    state = ring.RingState(last_fill=0.0)
    at_change = state.current(300.0, ring.DEFAULT_LIFETIME, ring.DEFAULT_TOPUP_PERIOD)
    assert at_change == pytest.approx(500.0 * math.exp(-300.0 / ring.DEFAULT_LIFETIME))
    state.reanchor(300.0, ring.DEFAULT_LIFETIME)      # lifetime 10 h -> 20 s at t = 300 s
    # no jump: the past decay stays as it was; the new lifetime governs what follows
    assert state.current(300.0, 20.0, ring.DEFAULT_TOPUP_PERIOD) == pytest.approx(at_change)
    assert state.current(320.0, 20.0, ring.DEFAULT_TOPUP_PERIOD) == pytest.approx(at_change / math.e)
    # the top-up schedule still counts from the last fill, not from the change
    assert state.current(599.0, 20.0, ring.DEFAULT_TOPUP_PERIOD) < 1.0
    assert state.current(600.0, 20.0, ring.DEFAULT_TOPUP_PERIOD) == pytest.approx(500.0)
    assert state.last_fill == 600.0
    assert state.current(620.0, 20.0, ring.DEFAULT_TOPUP_PERIOD) == pytest.approx(500.0 / math.e)


def test_ring_stays_in_range_with_default_settings():
    state = ring.RingState(last_fill=0.0)
    rng = np.random.default_rng(1)
    values = [ring.noisy(state.current(t, ring.DEFAULT_LIFETIME, ring.DEFAULT_TOPUP_PERIOD), rng)
              for t in np.arange(0.0, 3 * ring.DEFAULT_TOPUP_PERIOD, 0.5)]
    assert 490.0 < min(values) and max(values) < 501.0
    assert np.std(values) > 0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_positive_finite_refuses_bad_times(bad):
    with pytest.raises(ValueError, match="positive, finite"):
        positive_finite(bad, "exposure")
    assert positive_finite(0.25, "exposure") == 0.25


@pytest.mark.parametrize("bad", [-0.1, -math.inf, math.nan, math.inf])
def test_non_negative_finite_refuses_bad_times_and_accepts_zero(bad):
    with pytest.raises(ValueError, match="non-negative, finite"):
        non_negative_finite(bad, "acceleration time")
    assert non_negative_finite(0.0, "acceleration time") == 0.0
    assert non_negative_finite(0.25, "acceleration time") == 0.25


# --- motor ---------------------------------------------------------------------------

def test_long_move_takes_distance_over_velocity_plus_ramp():
    assert motor.move_duration(100.0, 100.0, 0.1) == pytest.approx(1.1)
    assert motor.move_duration(-100.0, 100.0, 0.1) == pytest.approx(1.1)
    assert motor.move_duration(0.0, 100.0, 0.1) == 0.0
    assert motor.move_duration(10.0, 20.0, 0.0) == pytest.approx(0.5)


def test_short_move_is_triangular():
    # 100 mm/s reached in 0.1 s needs 10 mm; 4 mm never reaches full speed
    accel = 100.0 / 0.1
    assert motor.move_duration(4.0, 100.0, 0.1) == pytest.approx(2 * math.sqrt(4.0 / accel))
    assert motor.move_duration(4.0, 100.0, 0.1) < 4.0 / 100.0 + 0.1


@pytest.mark.parametrize("start,target,velocity,accel", [
    (0.0, 100.0, 100.0, 0.1), (50.0, -30.0, 20.0, 0.1), (0.0, 4.0, 100.0, 0.1),
    (1.0, 2.0, 1.0, 0.0)])
def test_profile_is_monotonic_continuous_and_ends_on_target(start, target, velocity, accel):
    total = motor.move_duration(target - start, velocity, accel)
    times = np.linspace(-0.1, total + 0.1, 2001)
    positions = np.array([motor.position_at(start, target, velocity, accel, t) for t in times])
    assert positions[0] == start and positions[-1] == target
    steps = np.diff(positions) * np.sign(target - start)
    assert (steps >= -1e-12).all()
    # never faster than the velocity (a small allowance for the time grid)
    assert (np.abs(np.diff(positions)) <= velocity * (times[1] - times[0]) * 1.001).all()


def test_user_dial_conversion_round_trips():
    for direction in (0, 1):
        user = motor.user_from_dial(12.5, offset=3.0, direction=direction)
        assert motor.dial_from_user(user, offset=3.0, direction=direction) == 12.5
    assert motor.user_from_dial(10.0, 5.0, 0) == 15.0
    assert motor.user_from_dial(10.0, 5.0, 1) == -5.0
    assert motor.user_limits(-250.0, 250.0, 10.0, 0) == (-240.0, 260.0)
    assert motor.user_limits(-100.0, 50.0, 0.0, 1) == (-50.0, 100.0)


@pytest.mark.parametrize("target", [300.0, -250.5, math.nan, math.inf, -math.inf])
def test_bad_targets_are_named(target):
    problem = motor.target_problem(target, -250.0, 250.0)
    assert problem is not None and str(target) in problem


def test_good_targets_pass_and_equal_limits_mean_none():
    assert motor.target_problem(250.0, -250.0, 250.0) is None
    assert motor.target_problem(-250.0, -250.0, 250.0) is None
    assert motor.target_problem(1e6, 0.0, 0.0) is None
    assert motor.target_problem(math.nan, 0.0, 0.0) is not None


def test_motor_status_word_bits():
    idle = motor.motor_status_word(positive=True, done=True, moving=False)
    moving = motor.motor_status_word(positive=False, done=False, moving=True)
    assert idle & 0b11 == 0b11 and not idle & (1 << 10)
    assert moving & 1 == 0 and moving & 2 == 0 and moving & (1 << 10)


# --- spot camera ---------------------------------------------------------------------

def centroid(signal: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(signal.shape)
    total = signal.sum()
    return (signal * columns).sum() / total, (signal * rows).sum() / total


@pytest.mark.parametrize("x,y", [(0, 0), (50, -30), (-80, 40), (120, 60)])
def test_expected_spot_centroid_follows_the_motors(x, y):
    column, row = centroid(spotcam.expected_signal(SHAPE, x, y, 1.0, 500.0))
    assert column == pytest.approx(320 - x, abs=1.0)
    assert row == pytest.approx(240 - y, abs=1.0)


def test_spot_widths_and_peak():
    profile = spotcam.spot_profile(SHAPE, 0.0, 0.0)
    assert profile.max() == pytest.approx(1.0)
    assert profile[240, 320 + 50] == pytest.approx(math.exp(-0.5))   # sigma_x = 50 px
    assert profile[240 + 25, 320] == pytest.approx(math.exp(-0.5))   # sigma_y = 25 px
    dim = spotcam.spot_profile(SHAPE, 100.0, 0.0)
    assert dim.max() == pytest.approx(math.exp(-1.0))


def test_signal_scales_with_exposure_and_current_and_shutter_blocks_it():
    base = spotcam.expected_signal(SHAPE, 10, 5, 1.0, 500.0)
    assert spotcam.expected_signal(SHAPE, 10, 5, 2.0, 500.0) == pytest.approx(2 * base)
    assert spotcam.expected_signal(SHAPE, 10, 5, 1.0, 250.0) == pytest.approx(base / 2)
    assert not spotcam.expected_signal(SHAPE, 10, 5, 1.0, 500.0, shutter_open=False).any()
    # peak of the model: 200 * exposure * I at the centre, times the pixel response
    assert base.max() == pytest.approx(200 * 500.0 * math.exp(-(125) / 1e4), rel=0.1)


def test_frames_are_int32_poisson_with_background_1000():
    rng = np.random.default_rng(3)
    dark = spotcam.spot_frame(rng, SHAPE, 0, 0, 1.0, 500.0, shutter_open=False)
    assert dark.dtype == np.int32 and dark.shape == SHAPE
    assert dark.mean() == pytest.approx(1000.0, abs=1.0)
    assert dark.var() == pytest.approx(1000.0, rel=0.05)     # Poisson: variance = mean
    bright = spotcam.spot_frame(rng, SHAPE, 0, 0, 1.0, 500.0)
    expected = spotcam.expected_frame(SHAPE, 0, 0, 1.0, 500.0)
    assert bright.sum() == pytest.approx(expected.sum(), rel=1e-3)


def test_background_does_not_depend_on_exposure():
    rng = np.random.default_rng(4)
    short = spotcam.spot_frame(rng, SHAPE, 0, 0, 0.01, 500.0, shutter_open=False)
    long = spotcam.spot_frame(rng, SHAPE, 0, 0, 10.0, 500.0, shutter_open=False)
    assert short.mean() == pytest.approx(long.mean(), abs=1.0)


def test_pixel_response_is_fixed_smooth_and_near_one():
    response = spotcam.pixel_response(SHAPE)
    assert response is spotcam.pixel_response(SHAPE)                 # cached, fixed
    assert not response.flags.writeable
    assert 0.88 < response.min() < 0.97 and 1.03 < response.max() < 1.12
    assert np.abs(response - 1.0).max() <= 0.1                         # as documented
    assert response.mean() == pytest.approx(1.0, abs=0.02)
    # smooth: neighbouring pixels differ far less than the map's range
    assert np.abs(np.diff(response, axis=1)).max() < 0.02
    assert np.abs(np.diff(response, axis=0)).max() < 0.02


def test_pixel_response_multiplies_the_signal_not_the_background():
    flat = spotcam.GAIN * 1.0 * 500.0 * spotcam.spot_profile(SHAPE, 0, 0)
    signal = spotcam.expected_signal(SHAPE, 0, 0, 1.0, 500.0)
    np.testing.assert_allclose(signal, flat * spotcam.pixel_response(SHAPE))
    assert (spotcam.expected_frame(SHAPE, 0, 0, 1.0, 500.0, shutter_open=False) == 1000.0).all()


def test_sample_transmission_pattern():
    t = spotcam.sample_transmission(SHAPE)
    assert not t.flags.writeable
    assert t.min() == pytest.approx(0.3) and t.max() == pytest.approx(0.9)
    assert set(np.unique(t).round(3)) == {0.3, 0.5, 0.6, 0.9}
    assert t[260, 280] == pytest.approx(0.3)        # disc
    assert t[260, 370] == pytest.approx(0.5)        # square
    assert t[220, 315] == pytest.approx(0.6) and t[220, 305] == pytest.approx(0.9)  # stripes
    assert t[10, 10] == pytest.approx(0.9)


@pytest.mark.parametrize("samx,samy,inside", [
    (0, 0, True), (5, -5, True), (5.01, 0, False), (0, -6, False), (50, 0, False)])
def test_sample_is_in_the_beam_only_near_the_centre(samx, samy, inside):
    assert spotcam.sample_in_beam(samx, samy) is inside


def test_sample_multiplies_the_signal_by_its_transmission():
    out = spotcam.expected_signal(SHAPE, 0, 0, 1.0, 500.0, sample_in=False)
    inside = spotcam.expected_signal(SHAPE, 0, 0, 1.0, 500.0, sample_in=True)
    np.testing.assert_allclose(inside, out * spotcam.sample_transmission(SHAPE))
    # flat-field correction recovers the transmission where the beam shines
    rng = np.random.default_rng(5)
    dark = spotcam.spot_frame(rng, SHAPE, 0, 0, 1.0, 500.0, shutter_open=False).astype(float)
    flat = spotcam.spot_frame(rng, SHAPE, 0, 0, 1.0, 500.0).astype(float)
    raw = spotcam.spot_frame(rng, SHAPE, 0, 0, 1.0, 500.0, sample_in=True).astype(float)
    bright = out > 20000
    corrected = (raw - dark)[bright] / (flat - dark)[bright]
    error = corrected - spotcam.sample_transmission(SHAPE)[bright]
    assert np.abs(np.median(error)) < 0.01


def test_other_frame_sizes():
    shape = (100, 200)
    frame = spotcam.spot_frame(np.random.default_rng(6), shape, 0, 0, 1.0, 500.0)
    assert frame.shape == shape
    assert spotcam.pixel_response(shape).shape == shape
    assert spotcam.sample_transmission(shape).shape == shape
