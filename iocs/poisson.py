"""Poisson counts for large means at a fraction of the cost of an exact draw.

A camera pixel of the simulation always sees at least the dark background (mean
1000 counts), so its count is Poisson with a large mean ``m``. There the Poisson
distribution is a normal one with small, known corrections, and a normal deviate
costs a fraction of numpy's exact Poisson sampler (a 480 x 640 frame: about 4.5 ms
against 19 ms, benchmarks/bench_frames.py). :func:`poisson_counts` draws one standard normal ``z`` per pixel and
returns ``round(q(z))``, ``q`` the Cornish-Fisher expansion of the Poisson quantile
to order ``1/m``::

    q(z) = m + sqrt(m - 1/12) z + (z^2 - 1)/6 + (z - z^3) / (72 sqrt(m))

The ``(z^2 - 1)/6`` term gives the Poisson skewness ``1/sqrt(m)``, the cubic term its
excess kurtosis ``1/m``, and ``- 1/12`` takes back the variance that rounding to an
integer adds (Sheppard's correction). The mean and variance of the counts equal
``m``, and the probability of each count differs from Poisson's so little that a
chi-square goodness-of-fit test would need more than 10^12 pixels at ``m = 1000``
(3 million frames) to tell the two apart; a plain rounded normal is told apart in
60,000 pixels, a fifth of one frame.
(``tests/test_frame_statistics.py`` checks this against scipy's Poisson pmf.)

Where the mean is below :data:`NORMAL_LIMIT` the counts come from numpy's exact
Poisson sampler, so the function is right for any mean, and fast where frames need it.
"""

from __future__ import annotations

import numpy as np

#: Means at or above this use the corrected normal limit; below it, exact Poisson.
NORMAL_LIMIT = 1000.0
#: Means up to this are computed in float32 (a float32 near 2**17 resolves 1/128 of
#: a count, ample for rounding to the count); above, float64.
FLOAT32_LIMIT = 2.0 ** 17
COUNT_MAX = np.iinfo(np.int32).max


def _quantile(z: np.ndarray, mean) -> np.ndarray:
    """q(z) + 1/2 for each standard normal *z* (*mean* a scalar or an array of z's
    shape). Horner's form of ``(m - 1/6) + z (sqrt(m - 1/12) + c) + z^2/6 - c z^3``,
    ``c = 1 / (72 sqrt(m))``, with ``sqrt(m - 1/12) = sqrt(m) - 3c`` (to 3e-8 at m = 1000);
    the ``+ 1/2`` makes truncation toward zero round to the nearest count."""
    root = np.sqrt(mean, dtype=z.dtype)
    c = np.divide(1.0 / 72.0, root, dtype=z.dtype)
    t = np.multiply(z, -c, dtype=z.dtype)
    t += 1.0 / 6.0
    t *= z
    root -= 2.0 * c                 # sqrt(m - 1/12) + c
    t += root
    t *= z
    t += mean
    t += 1.0 / 3.0                  # - 1/6 + 1/2
    return t


def standard_normals(rng: np.random.Generator, shape, dtype=np.float32) -> np.ndarray:
    """Standard normal deviates of *shape*, the ones :func:`poisson_counts` turns into
    counts; drawn ahead of the means by a camera (they do not depend on them).

    By the Box-Muller transform: from uniforms u, v, ``sqrt(-2 ln(1 - u))`` times
    ``cos(2 pi v)`` and ``sin(2 pi v)`` are two independent standard normals, exactly.
    numpy's vectorised log, sqrt, cos and sin make that three times cheaper than its
    ziggurat sampler (480 x 640 float32: about 1.6 ms against 4.9). In float32 the
    largest deviate is 5.8 (u = 1 - 2**-24): the distribution beyond it, 8e-9 of the
    pixels, one in 400 frames of 480 x 640, is lost.
    """
    size = int(np.prod(shape, dtype=np.int64))
    pairs = (size + 1) // 2
    uniforms = rng.random(2 * pairs, dtype=dtype)
    radius, angle = uniforms[:pairs], uniforms[pairs:]
    np.log1p(np.negative(radius, out=radius), out=radius)     # ln(1 - u) <= 0
    radius *= -2.0
    np.sqrt(radius, out=radius)
    angle *= 2.0 * np.pi
    normals = np.empty(2 * pairs, dtype)
    np.cos(angle, out=normals[:pairs])
    np.sin(angle, out=normals[pairs:])
    normals[:pairs] *= radius
    normals[pairs:] *= radius
    return normals[:size].reshape(shape)


def poisson_counts(rng: np.random.Generator, mean, shape=None, normals=None) -> np.ndarray:
    """Poisson counts (int32) of the given mean per element.

    *mean* is a scalar (then *shape* gives the result's shape) or an array of
    non-negative, finite means (the result has its shape). Counts saturate at
    2**31 - 1, the largest an int32 pixel holds. *normals*, if given, are fresh
    deviates of :func:`standard_normals` of the result's shape, used once instead of
    drawing them here (for means up to FLOAT32_LIMIT, the very counts drawing them
    here from the same stream gives).
    """
    scalar = np.ndim(mean) == 0
    if scalar:
        if shape is None:
            raise ValueError("poisson_counts: give the shape of the frame for a scalar mean")
        mean = float(mean)
        low, high = mean, mean
    else:
        mean = np.asarray(mean)
        shape = mean.shape
        if mean.size == 0:
            return np.zeros(shape, np.int32)
        low, high = float(mean.min()), float(mean.max())
    if not (low >= 0.0 and np.isfinite(high)):
        raise ValueError(f"poisson_counts: means must be finite and not negative "
                         f"(got {low} .. {high})")
    if high < NORMAL_LIMIT:                        # small means: exact throughout
        counts = rng.poisson(mean, size=shape if scalar else None)
        return np.minimum(counts, COUNT_MAX).astype(np.int32)
    dtype = np.float32 if high <= FLOAT32_LIMIT else np.float64
    if not scalar:
        mean = mean.astype(dtype, copy=False)
    if normals is None:
        normals = standard_normals(rng, shape, dtype)
    elif np.shape(normals) != tuple(shape):
        raise ValueError(f"poisson_counts: normals of shape {np.shape(normals)} for "
                         f"counts of shape {tuple(shape)}")
    q = _quantile(normals.astype(dtype, copy=False), mean)
    if dtype == np.float64:                        # float32 means stay far below 2**31
        np.clip(q, 0.0, COUNT_MAX, out=q)
    counts = q.astype(np.int32)                    # q > 0: truncation is the floor
    if low < NORMAL_LIMIT:                         # a few small means: exact there
        small = mean < NORMAL_LIMIT
        counts[small] = np.minimum(rng.poisson(mean[small]), COUNT_MAX)
    return counts
