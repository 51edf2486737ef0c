"""Statistics of simulated frames against their model (shared by the pure-logic tests
and the ones reading frames from the IOC over Channel Access).

Significance: the goodness-of-fit tests reject at ALPHA; per-pixel moment checks allow
Z standard errors. Frames from a seeded generator make the pure-logic tests
deterministic; frames from the IOC are unseeded, so a correct IOC fails such a test
with probability ALPHA (or far less for the Z-sigma checks).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

#: Significance level of the goodness-of-fit tests.
ALPHA = 0.001
#: Allowed deviation of a moment, in standard errors.
Z = 5.0


def poisson_goodness_of_fit(counts: np.ndarray, mean: float) -> tuple[float, float]:
    """Pearson chi-square test of *counts* (any shape, all with one *mean*) against
    Poisson(mean). Returns (statistic, p-value). The tails are pooled into the two
    end bins until every bin expects at least 5 counts."""
    counts = np.asarray(counts).ravel()
    n = counts.size
    low, high = int(stats.poisson.ppf(1e-6, mean)), int(stats.poisson.isf(1e-6, mean))
    # grow the range until each pooled tail expects >= 5
    while n * stats.poisson.cdf(low - 1, mean) >= 5:
        low -= 1
    while n * stats.poisson.sf(high, mean) >= 5:
        high += 1
    while n * stats.poisson.cdf(low, mean) < 5:
        low += 1
    while n * stats.poisson.sf(high - 1, mean) < 5:
        high -= 1
    values = np.arange(low, high + 1)
    expected = n * stats.poisson.pmf(values, mean)
    expected[0] = n * stats.poisson.cdf(low, mean)            # everything <= low
    expected[-1] = n * stats.poisson.sf(high - 1, mean)       # everything >= high
    observed = np.bincount(np.clip(counts, low, high) - low, minlength=values.size)
    statistic, p = stats.chisquare(observed, expected * (n / expected.sum()))
    return float(statistic), float(p)


class PixelMoments:
    """Per-pixel sums over frames, to compare each pixel with its model mean *m*:
    the standardised mean error, the variance and the third central moment, all of
    which are m for Poisson counts."""

    def __init__(self, model_mean: np.ndarray):
        self.m = np.asarray(model_mean, dtype=np.float64)
        self.n = 0
        self.s1 = np.zeros_like(self.m)      # sum of (x - m)
        self.s2 = np.zeros_like(self.m)      # sum of (x - m)^2
        self.s3 = np.zeros_like(self.m)      # sum of (x - m)^3

    def add(self, frame: np.ndarray) -> None:
        d = frame.astype(np.float64) - self.m
        self.n += 1
        self.s1 += d
        d2 = d * d
        self.s2 += d2
        d2 *= d
        self.s3 += d2

    def mean_z(self, where=None) -> np.ndarray:
        """(pixel mean - m) / sqrt(m / n): standard normal for each pixel."""
        z = self.s1 / self.n / np.sqrt(self.m / self.n)
        return z if where is None else z[where]

    def variance_ratio(self, where=None) -> np.ndarray:
        """Per-pixel sample variance (about the model mean) over m: 1 on average."""
        r = self.s2 / self.n / self.m
        return r if where is None else r[where]

    def skewness_ratio(self, where=None) -> np.ndarray:
        """Per-pixel third central moment (about the model mean) over m: 1 on average
        (a normal distribution of the same mean and variance gives 0)."""
        r = self.s3 / self.n / self.m
        return r if where is None else r[where]


def check_pixel_moments(moments: PixelMoments, where=None, label: str = "") -> None:
    """Assert each moment's average over the pixels *where* matches Poisson within
    Z standard errors (pixels independent, so errors shrink as 1/sqrt(pixels))."""
    n = moments.n
    z = moments.mean_z(where)
    pixels = z.size
    assert abs(z.mean()) < Z / np.sqrt(pixels), f"{label}: mean bias {z.mean():.4g}"
    # var of (x-m)^2/m about 1 is 2 + 1/m; of the n-frame mean, (2 + 1/m) / n
    ratio = moments.variance_ratio(where)
    assert abs(ratio.mean() - 1) < Z * np.sqrt(2.2 / n / pixels), \
        f"{label}: variance / mean = {ratio.mean():.5f}"
    # (x-m)^3/m has mean 1 and variance about 15 m^2 / m^2 * m = 15 m (m large)
    m = moments.m if where is None else moments.m[where]
    skew = moments.skewness_ratio(where)
    standard_error = np.sqrt(np.mean(15 * m) / n / pixels)
    assert abs(skew.mean() - 1) < Z * standard_error, \
        f"{label}: third moment / mean = {skew.mean():.4f} +- {standard_error:.4f}"


def centroid_and_width(signal: np.ndarray) -> tuple[float, float, float, float]:
    """(column, row, sigma along columns, sigma along rows) of a 2-D distribution."""
    rows, columns = np.indices(signal.shape)
    total = signal.sum()
    cx = (signal * columns).sum() / total
    cy = (signal * rows).sum() / total
    sx = np.sqrt((signal * (columns - cx) ** 2).sum() / total)
    sy = np.sqrt((signal * (rows - cy) ** 2).sum() / total)
    return cx, cy, sx, sy
