"""Flat-field correction: masked safe division, recovery of the simulated sample's
transmission within the noise, and interpolated flats on a drifting beam.

Frames come from the spot camera's model (non-uniform beam, pixel response, the
known sample transmission) through a real RunEngine and catalog (export_support).
"""

from __future__ import annotations

import numpy as np
import pytest

from export_support import SHAPE, Session
from simbeamline.plans import flatfield_series
from simbeamline.processing import (
    FlatFieldCorrector, FrameSet, correct_run, flatfield_correction, interpolate_flat,
)
from simbeamline_iocs import spotcam


def test_division_by_zero_is_masked_not_inf():
    raw = np.array([[110, 50, 7]], dtype=np.uint16)
    flat = np.array([[210, 100, 100]], dtype=np.uint16)
    dark = np.array([[10, 100, 0]], dtype=np.uint16)
    out = flatfield_correction(raw, flat, dark)
    assert out.dtype == np.float32
    assert out.mask.tolist() == [[False, True, False]]
    assert out.compressed().tolist() == pytest.approx([0.5, 0.07])
    assert np.isfinite(out.data).all()
    with pytest.raises(ValueError, match="same shape"):
        flatfield_correction(raw, flat[:, :2], dark)


def test_interpolated_flat_is_linear_and_never_extrapolates():
    before = FrameSet(np.full((2, 2), 100.0), time=10.0, count=1, index=0)
    after = FrameSet(np.full((2, 2), 50.0), time=20.0, count=1, index=4)
    assert interpolate_flat(before, after, time=12.5)[0, 0] == pytest.approx(87.5)
    assert interpolate_flat(before, after, index=2)[0, 0] == pytest.approx(75.0)
    assert interpolate_flat(before, after, time=99)[0, 0] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="exactly one"):
        interpolate_flat(before, after)


def _signal_pixels(exposure, current, level):
    signal = spotcam.expected_signal(SHAPE, 0, 0, exposure, current)
    return signal > level, signal


def test_flat_field_recovers_the_simulated_transmission_within_the_noise(tmp_path):
    session = Session(tmp_path, exposure=1.0)
    n_dark, n_flat, n_raw = 5, 5, 5
    uids = session.RE(flatfield_series([session.spot], session.shutter, session.samx,
                                       num_dark=n_dark, num_flat=n_flat, num_raw=n_raw,
                                       closed=0, opened=1)).plan_result
    start = session.db[uids["raw"]].start
    assert start["dark_frame"] == uids["dark"] and start["flat_before"] == uids["flat_before"]
    assert session.db[uids["flat_after"]].start["flat_after_of"] == uids["raw"]

    corrected = [c for _, c in correct_run(session.db, uids["raw"], "spot_img",
                                           dark=uids["dark"], flat_before=uids["flat_before"])]
    mean = np.ma.mean(np.ma.stack(corrected), axis=0)

    truth = spotcam.sample_transmission(SHAPE)
    bright, s = _signal_pixels(1.0, 500.0, 20000)
    assert bright.sum() > 5000
    # expected scatter of the mean corrected value, from Poisson statistics
    b = spotcam.BACKGROUND
    num, den = s * truth, s
    var_num = (b + s * truth) / n_raw + b / n_dark
    var_den = (b + s) / n_flat + b / n_dark
    cov = b / n_dark
    sigma = truth * np.sqrt(var_num / num**2 + var_den / den**2 - 2 * cov / (num * den))
    z = ((mean - truth) / sigma)[bright]
    assert abs(float(np.ma.mean(z))) < 0.1                 # no bias
    assert 0.8 < float(np.ma.std(z)) < 1.2                  # scatter is the noise, nothing more
    assert float(np.ma.mean(np.abs(z) > 5)) < 1e-3
    # without the flat, the beam shape and pixel response dominate: far outside the noise
    raw_over_peak = (session.frames(uids["raw"]).mean(axis=0) - b) / (s.max())
    assert np.median(np.abs(raw_over_peak - truth)[bright]) > 20 * np.median(sigma[bright])


def test_interpolated_flats_beat_either_end_alone_on_a_drifting_beam(tmp_path):
    # the current decays with a 1 s lifetime while the series is taken, each frame
    # taking at least 20 ms (a 1 s exposure of a drifting source, on any machine)
    session = Session(tmp_path, exposure=1.0, lifetime=1.0, exposure_time=0.02)
    uids = session.RE(flatfield_series([session.spot], session.shutter, session.samx,
                                       num_dark=3, num_flat=3, num_raw=8,
                                       closed=0, opened=1)).plan_result
    db = session.db
    dark = FrameSet.from_run(db, uids["dark"], "spot_img")
    n = 8
    before = FrameSet.from_run(db, uids["flat_before"], "spot_img", index=0)
    after = FrameSet.from_run(db, uids["flat_after"], "spot_img", index=n - 1)
    drift = before.frame.sum() / after.frame.sum()
    assert drift > 1.05, f"the beam should drift during the series (ratio {drift:.3f})"

    truth = spotcam.sample_transmission(SHAPE)
    bright, _ = _signal_pixels(1.0, 400.0, 20000)

    def error(corrector):
        """Mean over raw frames of |median relative error| in the bright region."""
        errors = []
        for i, (event, frame) in enumerate(zip(
                db[uids["raw"]].events(), db[uids["raw"]].data("spot_img"))):
            c = corrector.correct(frame, time=event["time"], index=i)
            errors.append(abs(np.ma.median((c / truth)[bright]) - 1))
        return float(np.mean(errors))

    only_before = error(FlatFieldCorrector(dark, before))
    only_after = error(FlatFieldCorrector(dark, after))
    by_time = error(FlatFieldCorrector(dark, before, after, by="time"))
    by_index = error(FlatFieldCorrector(dark, before, after, by="index"))
    assert by_time < 0.5 * min(only_before, only_after), (by_time, only_before, only_after)
    assert by_index < 0.5 * min(only_before, only_after), (by_index, only_before, only_after)
    # the catalog-level helper gives the same as the corrector by time
    via_runs = [c for _, c in correct_run(db, uids["raw"], "spot_img", dark=uids["dark"],
                                          flat_before=uids["flat_before"],
                                          flat_after=uids["flat_after"], by="time")]
    first = FlatFieldCorrector(dark, before, after).correct(
        next(iter(db[uids["raw"]].data("spot_img"))), time=next(iter(db[uids["raw"]].events()))["time"])
    np.testing.assert_allclose(via_runs[0].filled(0), first.filled(0), rtol=1e-6)
