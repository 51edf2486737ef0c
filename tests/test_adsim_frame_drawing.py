"""The ADSim driver's frame drawing (simbeamline_iocs.adsim.frames), pure logic:
the fast forms (a grid of peaks as one matrix product, integer casts through the
narrowest intermediate) against the plain definitions, and the statistics of the
noise (Offset + Noise * uniform) and of the peaks (centroid, width, height)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from simbeamline_iocs.adsim import frames
from statistics_support import ALPHA, centroid_and_width


def peaks_by_definition(p: frames.SimParams, rng) -> np.ndarray:
    """The grid of peaks summed one by one (float64), as the driver defines it."""
    x, y = frames._axes(p)
    image = np.zeros((y.size, x.size))
    height = frames.PEAK_HEIGHT * p.gain * p.gain_x * p.gain_y
    for i in range(p.peak_num_x):
        gx = np.exp(-0.5 * ((x - (p.peak_start_x + i * p.peak_step_x + p.stage_dx))
                            / p.peak_width_x) ** 2)
        for j in range(p.peak_num_y):
            gy = np.exp(-0.5 * ((y - (p.peak_start_y + j * p.peak_step_y + p.stage_dy))
                                / p.peak_width_y) ** 2)
            amplitude = height
            if p.peak_variation:
                amplitude *= 1 + p.peak_variation / 100 * rng.standard_normal()
            image += amplitude * np.outer(gy, gx)
    return image


@pytest.mark.parametrize("grid,variation", [((1, 1), 0.0), ((1, 4), 0.0), ((5, 3), 0.0),
                                            ((4, 4), 10.0)])
def test_peak_grid_equals_the_peaks_summed_one_by_one(grid, variation):
    p = frames.SimParams(peak_num_x=grid[0], peak_num_y=grid[1], peak_start_x=100,
                         peak_start_y=150, peak_step_x=200, peak_step_y=180,
                         peak_variation=variation, gain=2.0, stage_dx=7.5, size_x=900,
                         min_x=50, bin_y=2)
    x, y = frames._axes(p)
    fast = frames._peaks(p, x, y, np.random.default_rng(5))
    assert fast.dtype == np.float32 and fast.shape == (y.size, x.size)
    reference = peaks_by_definition(p, np.random.default_rng(5))
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-4 * reference.max())


def test_no_peaks_is_a_dark_pattern():
    p = frames.SimParams(peak_num_x=0)
    x, y = frames._axes(p)
    assert not frames._peaks(p, x, y, np.random.default_rng(0)).any()


@pytest.mark.parametrize("name", frames.DATA_TYPES)
@pytest.mark.parametrize("scale", [100.0, 3e4, 1e6, 1e10])
def test_integer_casts_through_a_narrow_type_wrap_as_through_int64(name, scale):
    values = np.random.default_rng(6).uniform(-scale, scale, (64, 64)).astype(np.float32)
    got = frames.convert(values, name)
    dtype = frames.NUMPY_TYPES[name]
    assert got.dtype == dtype
    if dtype.kind != "f":
        wide = values.astype(np.int64)
        expected = wide.view(np.uint64) if dtype == np.uint64 else wide.astype(dtype)
        np.testing.assert_array_equal(got, expected)


def test_noise_is_offset_plus_uniform():
    """Offset&Noise, Float64: every pixel Offset + Noise * U[0, 1): a Kolmogorov-Smirnov
    test of the frame against that uniform distribution, and its mean and variance."""
    p = frames.SimParams(sim_mode="Offset&Noise", offset=20.0, noise=50.0, data_type="Float64")
    frame = frames.compute_frame(p, 0, np.random.default_rng(7), frames.FrameCache())
    assert stats.kstest(frame.ravel(), stats.uniform(loc=20.0, scale=50.0).cdf).pvalue > ALPHA
    # and the test sees a noise amplitude 1 % off
    assert stats.kstest(frame.ravel(), stats.uniform(loc=20.0, scale=50.5).cdf).pvalue < 1e-6
    n = frame.size
    assert frame.mean() == pytest.approx(45.0, abs=5 * 50 / np.sqrt(12 * n))
    assert frame.var() == pytest.approx(50.0 ** 2 / 12, rel=5 * np.sqrt(0.8 / n))


def test_noisy_peak_centroid_width_and_height():
    p = frames.SimParams(noise=10.0, offset=5.0, data_type="Float32", peak_start_x=400,
                         peak_start_y=600, peak_width_x=60, peak_width_y=30)
    cache = frames.FrameCache()
    mean = np.mean([frames.compute_frame(p, n, np.random.default_rng(n), cache)
                    for n in range(20)], axis=0)
    signal = mean - (5.0 + 10.0 / 2)                 # minus the noise's mean
    window = (slice(600 - 180, 600 + 180), slice(400 - 360, 400 + 360))   # +- 6 sigma
    cx, cy, sx, sy = centroid_and_width(signal[window])
    cx, cy = cx + 400 - 360, cy + 600 - 180
    assert (cx, cy) == pytest.approx((400, 600), abs=0.5)
    assert (sx, sy) == pytest.approx((60, 30), abs=0.5)
    assert signal.max() == pytest.approx(frames.PEAK_HEIGHT, abs=3.0)
