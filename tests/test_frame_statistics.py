"""The spot cameras' frames are statistically the model's: pure logic, no network.

Frames are drawn by the fast sampler (simbeamline_iocs.poisson: a corrected normal
limit, every pixel's mean being at least the background 1000) from seeded
generators, and checked against the model (spotcam.expected_frame) and scipy's
Poisson distribution: per-pixel mean, variance and third moment over many frames,
the background's distribution (chi-square goodness of fit), the spot's centroid and
width. Each check is shown to reject what it must (a plain normal, a shifted mean).
tests/test_frame_statistics_ioc.py repeats the checks on frames read from the IOC.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats
from simbeamline_iocs import poisson, spotcam
from statistics_support import (ALPHA, PixelMoments, centroid_and_width, check_pixel_moments,
                                poisson_goodness_of_fit)

SHAPE = (480, 640)


# --- the sampler's distribution, exactly -----------------------------------------------

def implied_pmf(mean: float, quantile) -> tuple[np.ndarray, np.ndarray]:
    """Counts k and P(k) when k = floor(quantile(z)) for a standard normal z
    (quantile increasing, vectorised): P(k) = Phi(z_(k+1)) - Phi(z_k) where
    quantile(z_k) = k, solved by Newton's method for all k at once."""
    spread = 12 * math.sqrt(mean)
    k = np.arange(int(mean - spread), int(mean + spread))
    levels = np.append(k, k[-1] + 1).astype(np.float64)
    z = (levels - mean) / math.sqrt(mean)
    h = 1e-6
    for _ in range(20):
        slope = (quantile(z + h) - quantile(z - h)) / (2 * h)
        z -= (quantile(z) - levels) / slope
    assert np.abs(quantile(z) - levels).max() < 1e-9
    return k, np.diff(stats.norm.cdf(z))


def sampler_quantile(mean):
    """The sampler's z -> count + 1/2, in float64 (as it computes means above 2**17)."""
    return lambda z: poisson._quantile(np.asarray(z, np.float64), mean)


@pytest.mark.parametrize("mean", [1000.0, 1500.0, 20000.0, 1e6])
def test_sampler_pmf_is_poisson_far_below_what_a_test_can_see(mean):
    """Chi-square noncentrality per pixel: a goodness-of-fit test over N pixels has
    noncentrality N * that; it needs about 10 to notice anything. The sampler needs
    more than 10^10 pixels (30,000 frames and far more); a plain rounded normal of
    the same mean and variance fewer than a million."""
    k, implied = implied_pmf(mean, sampler_quantile(mean))
    exact = stats.poisson.pmf(k, mean)
    noncentrality = np.sum((implied - exact) ** 2 / exact)
    assert noncentrality < 1e-9
    assert np.sum(k * implied) == pytest.approx(mean, abs=1e-6)
    _, plain = implied_pmf(mean, lambda z: mean + math.sqrt(mean) * z + 0.5)
    plain_noncentrality = np.sum((plain - exact) ** 2 / exact)
    assert plain_noncentrality > 1000 * noncentrality
    if mean <= 20000:
        assert plain_noncentrality > 1e-6


def test_small_means_are_exact_poisson_and_bad_means_are_refused():
    rng = np.random.default_rng(1)
    mixed = np.full((200, 200), 2000.0)
    mixed[:, :100] = 3.0                        # below NORMAL_LIMIT: numpy's Poisson
    counts = poisson.poisson_counts(rng, mixed)
    assert counts.dtype == np.int32 and counts.shape == mixed.shape
    assert counts[:, :100].mean() == pytest.approx(3.0, abs=0.05)
    assert counts[:, :100].var() == pytest.approx(3.0, rel=0.05)
    assert counts[:, 100:].mean() == pytest.approx(2000.0, abs=1.0)
    assert poisson.poisson_counts(rng, 0.5, (1000,)).mean() == pytest.approx(0.5, abs=0.1)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="finite and not negative"):
            poisson.poisson_counts(rng, np.array([1000.0, bad]))
    with pytest.raises(ValueError, match="shape"):
        poisson.poisson_counts(rng, 1000.0)


def test_huge_means_saturate_instead_of_wrapping():
    counts = poisson.poisson_counts(np.random.default_rng(2), np.array([4e9, 1e7]))
    assert counts[0] == np.iinfo(np.int32).max
    assert counts[1] == pytest.approx(1e7, abs=6 * math.sqrt(1e7))


# --- the frame model the sampler is given -----------------------------------------------

@pytest.mark.parametrize("x,y,exposure,sample_in", [
    (0, 0, 1.0, False), (0, 0, 0.005, False), (80, -40, 0.2, False), (0, 0, 1.0, True),
    (300, 0, 0.001, False)])
def test_frame_mean_is_the_model_in_float32(x, y, exposure, sample_in):
    fast = spotcam.frame_mean(SHAPE, x, y, exposure, 500.0, True, sample_in)
    model = spotcam.expected_frame(SHAPE, x, y, exposure, 500.0, True, sample_in)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, model, rtol=5e-7, atol=0)   # a few float32 ulps
    assert (spotcam.frame_mean(SHAPE, x, y, exposure, 500.0, False) == 1000.0).all()


def test_normals_drawn_ahead_give_the_counts_drawn_in_place():
    """A camera draws each frame's normal deviates during its exposure, before the beam
    (so the means) is known: the counts must be the very ones poisson_counts draws
    itself from the same stream, and deviates of another shape are refused."""
    model = spotcam.frame_mean(SHAPE, 30, -20, 1.0, 500.0)
    in_place = poisson.poisson_counts(np.random.default_rng(15), model)
    rng = np.random.default_rng(15)
    ahead = poisson.poisson_counts(rng, model, normals=poisson.standard_normals(rng, SHAPE))
    np.testing.assert_array_equal(ahead, in_place)
    dark = spotcam.spot_frame(rng, SHAPE, 0, 0, 1.0, 500.0, shutter_open=False,
                              normals=poisson.standard_normals(rng, SHAPE))
    assert abs(dark.mean() - spotcam.BACKGROUND) < 0.5
    with pytest.raises(ValueError, match=r"normals of shape \(480, 641\)"):
        poisson.poisson_counts(rng, model, normals=poisson.standard_normals(rng, (480, 641)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normals_are_standard_and_independent(dtype):
    """The Box-Muller deviates: standard normal (Kolmogorov-Smirnov), tails as often as
    the normal's, and the two deviates made from one pair of uniforms (one in each half
    of the frame) independent: uncorrelated, their squared sum exponential of mean 2.
    The same test rejects deviates 1 % too wide."""
    z = poisson.standard_normals(np.random.default_rng(21), (1000, 1001), dtype)
    assert z.dtype == dtype and z.shape == (1000, 1001)
    z = z.ravel().astype(np.float64)
    assert stats.kstest(z, "norm").pvalue > ALPHA
    assert stats.kstest(1.01 * z, "norm").pvalue < ALPHA
    beyond = int(np.count_nonzero(np.abs(z) > 4.0))
    assert stats.binomtest(beyond, z.size, 2 * stats.norm.sf(4.0)).pvalue > ALPHA
    pairs = z.size // 2
    first, second = z[:pairs], z[z.size - pairs:]
    assert abs(np.corrcoef(first, second)[0, 1]) < 4 / math.sqrt(pairs)
    assert stats.kstest(first ** 2 + second ** 2, "expon", args=(0, 2)).pvalue > ALPHA
    odd = poisson.standard_normals(np.random.default_rng(22), (3, 5))
    assert odd.shape == (3, 5) and np.isfinite(odd).all()


# --- frames: moments, background distribution, spot ------------------------------------

def test_dark_frames_pass_a_poisson_goodness_of_fit_test():
    rng = np.random.default_rng(10)
    dark = np.stack([spotcam.spot_frame(rng, SHAPE, 0, 0, 1.0, 500.0, shutter_open=False)
                     for _ in range(10)])                  # 3 million pixels
    _, p = poisson_goodness_of_fit(dark, spotcam.BACKGROUND)
    assert p > ALPHA


def test_the_goodness_of_fit_test_rejects_near_misses():
    """Same pixel count as above: the test sees a rounded normal (the normal limit
    without its skewness) and a background 0.2 % too high."""
    rng = np.random.default_rng(11)
    n = 10 * 480 * 640
    plain = np.rint(rng.normal(1000.0, math.sqrt(1000.0), n)).astype(np.int64)
    assert poisson_goodness_of_fit(plain, 1000.0)[1] < 1e-6
    shifted = rng.poisson(1002.0, n)
    assert poisson_goodness_of_fit(shifted, 1000.0)[1] < 1e-6
    exact = rng.poisson(1000.0, n)                          # and passes the real thing
    assert poisson_goodness_of_fit(exact, 1000.0)[1] > ALPHA


@pytest.mark.parametrize("x,y,exposure,sample_in", [(0, 0, 1.0, False), (60, -30, 0.01, True)])
def test_pixel_means_variances_and_third_moments_follow_the_model(x, y, exposure, sample_in):
    rng = np.random.default_rng(12)
    model = spotcam.expected_frame(SHAPE, x, y, exposure, 500.0, True, sample_in)
    moments = PixelMoments(model)
    for _ in range(100):
        moments.add(spotcam.spot_frame(rng, SHAPE, x, y, exposure, 500.0, True, sample_in))
    check_pixel_moments(moments, label="all pixels")
    bright = model > 1000.0 + 0.5 * (model.max() - 1000.0)
    assert bright.sum() > 2000
    check_pixel_moments(moments, bright, label="the bright half of the spot")
    background = model < 1000.0 + 1e-3
    assert background.sum() > 1000
    check_pixel_moments(moments, background, label="background")


def test_pixel_moment_checks_reject_a_plain_normal_and_a_wrong_mean():
    model = spotcam.expected_frame(SHAPE, 0, 0, 1.0, 500.0)
    rng = np.random.default_rng(13)
    normal, wrong = PixelMoments(model), PixelMoments(model)
    for _ in range(30):
        normal.add(np.rint(rng.normal(model, np.sqrt(model))))
        wrong.add(spotcam.spot_frame(rng, SHAPE, 0, 0, 1.01, 500.0))   # 1 % more signal
    with pytest.raises(AssertionError, match="third moment"):
        check_pixel_moments(normal)
    with pytest.raises(AssertionError, match="mean bias"):
        check_pixel_moments(wrong)


@pytest.mark.parametrize("x,y", [(0, 0), (50, -30), (-80, 40)])
def test_spot_centroid_and_width_of_a_frame(x, y):
    frame = spotcam.spot_frame(np.random.default_rng(14), SHAPE, x, y, 1.0, 500.0)
    cx, cy, sx, sy = centroid_and_width(frame - spotcam.BACKGROUND)
    mx, my, msx, msy = centroid_and_width(spotcam.expected_signal(SHAPE, x, y, 1.0, 500.0))
    # the model: centred at (320 - x, 240 - y), sigma 50 x 25 px (the pixel response
    # moves these by well under a pixel)
    assert (mx, my) == pytest.approx((320 - x, 240 - y), abs=1.0)
    assert (msx, msy) == pytest.approx((spotcam.SIGMA_X, spotcam.SIGMA_Y), abs=1.0)
    # one frame's shot and background noise move them by a fraction of a pixel
    assert (cx, cy) == pytest.approx((mx, my), abs=0.5)
    assert (sx, sy) == pytest.approx((msx, msy), abs=0.5)
