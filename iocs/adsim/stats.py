"""NDStats values of one frame (plain numpy)."""

from __future__ import annotations

import numpy as np

#: the statistics in NDPluginStats' time-series array (NDStatTSType order), each the
#: suffix of its waveform record ``StatsN:TS<name>``
STATS_SIGNALS = ("MinValue", "MinX", "MinY", "MaxValue", "MaxX", "MaxY", "MeanValue",
                 "Sigma", "Total", "Net", "CentroidTotal", "CentroidX", "CentroidY",
                 "SigmaX", "SigmaY", "SigmaXY", "SkewX", "SkewY", "KurtosisX", "KurtosisY",
                 "Eccentricity", "Orientation", "Timestamp")


def frame_statistics(frame: np.ndarray, *, bgd_width: int = 0) -> dict[str, float]:
    """Total, Net, MinValue, MaxValue, MeanValue, Sigma and the extrema positions.

    Net is Total minus the background estimated (as NDPluginStats does) from the
    mean of a border *bgd_width* pixels wide; 0 means no background, Net = Total.

    Frames of unsigned 8- or 16-bit integers (the simDetector's usual UInt8) are
    counted with a histogram in exact integers: a fifth of the time of the float64
    copy and passes the general case takes on a 1024 x 1024 frame.
    """
    if frame.ndim != 2:
        raise ValueError(f"frame_statistics takes 2-D frames, not {frame.ndim}-D; "
                         "see array_statistics")
    if frame.dtype in (np.uint8, np.uint16) and frame.size:
        return _unsigned_statistics(frame, bgd_width)
    data = frame.astype(np.float64, copy=False)
    total = float(data.sum())
    imin, imax = int(np.argmin(data)), int(np.argmax(data))
    ny, nx = data.shape
    net = total
    if bgd_width > 0 and 2 * bgd_width < min(ny, nx):
        mask = np.ones_like(data, dtype=bool)
        mask[bgd_width:-bgd_width, bgd_width:-bgd_width] = False
        net = total - float(data[mask].mean()) * data.size
    return {
        "Total": total,
        "Net": net,
        "MinValue": float(data.flat[imin]),
        "MaxValue": float(data.flat[imax]),
        "MeanValue": float(data.mean()),
        "Sigma": float(data.std()),
        "MinX": imin % nx, "MinY": imin // nx,
        "MaxX": imax % nx, "MaxY": imax // nx,
    }


def array_statistics(data: np.ndarray, *, x_size: int, bgd_width: int = 0) -> dict[str, float]:
    """NDPluginStats::doComputeStatistics of an array of any rank (a colour frame):
    the values over every element, in memory order; MinX/MinY and MaxX/MaxY are the
    element's index modulo and divided by *x_size* (NDArrayInfo's xSize: the image
    width, so for RGB1 frames they are not pixel coordinates, as in the C plugin).

    The background of Net is the C plugin's N-dimensional one: for each dimension,
    the slabs *bgd_width* thick at its start and at its end, their totals and element
    counts summed (elements in more than one slab counted in each), Net = Total -
    (their total / their count) * elements."""
    values = data.astype(np.float64, copy=False)
    flat = values.ravel()
    n = flat.size
    total = float(flat.sum())
    imin, imax = int(np.argmin(flat)), int(np.argmax(flat))
    mean = total / n
    net = total
    if bgd_width > 0:
        counts, pixels = 0.0, 0
        for axis, size in enumerate(values.shape):
            width = min(bgd_width, size)
            for start in (0, max(size - bgd_width, 0)):
                slab = np.take(values, range(start, start + min(width, size - start)), axis=axis)
                counts += float(slab.sum())
                pixels += slab.size
        net = total - counts / max(pixels, 1) * n
    return {
        "Total": total,
        "Net": net,
        "MinValue": float(flat[imin]),
        "MaxValue": float(flat[imax]),
        "MeanValue": mean,
        "Sigma": max(float((flat * flat).sum()) / n - mean * mean, 0.0) ** 0.5,
        "MinX": imin % x_size, "MinY": imin // x_size,
        "MaxX": imax % x_size, "MaxY": imax // x_size,
    }


def _unsigned_statistics(frame: np.ndarray, bgd_width: int) -> dict[str, float]:
    """:func:`frame_statistics` of an unsigned 8/16-bit frame, from its histogram
    (sums in Python integers: exact)."""
    flat = frame.ravel()
    counts = np.bincount(flat)
    levels = np.arange(counts.size, dtype=np.int64)
    n = flat.size
    total = int(counts @ levels)
    squares = int(counts @ (levels * levels))
    imin, imax = int(np.argmin(flat)), int(np.argmax(flat))
    ny, nx = frame.shape
    net = float(total)
    if bgd_width > 0 and 2 * bgd_width < min(ny, nx):
        inner = frame[bgd_width:-bgd_width, bgd_width:-bgd_width]
        border = n - inner.size
        net = total - (total - int(inner.sum(dtype=np.int64))) / border * n
    return {
        "Total": float(total),
        "Net": net,
        "MinValue": float(flat[imin]),
        "MaxValue": float(flat[imax]),
        "MeanValue": total / n,
        "Sigma": max(n * squares - total * total, 0) ** 0.5 / n,
        "MinX": imin % nx, "MinY": imin // nx,
        "MaxX": imax % nx, "MaxY": imax // nx,
    }


def frame_centroid(frame: np.ndarray, *, threshold: float = 0.0) -> dict[str, float]:
    """CentroidTotal, CentroidX/Y, SigmaX/Y, SigmaXY, SkewX/Y, KurtosisX/Y, Eccentricity
    and Orientation (degrees) of the pixels at or above *threshold*, each weighted by
    its value: NDPluginStats's moments (all 0 when no pixel reaches the threshold)."""
    return centroid_and_profiles(frame, threshold=threshold)[0]


#: The scalars of :func:`frame_centroid` when no pixel reaches the threshold.
_NO_CENTROID = dict.fromkeys(("CentroidTotal", "CentroidX", "CentroidY", "SigmaX", "SigmaY",
                              "SigmaXY", "SkewX", "SkewY", "KurtosisX", "KurtosisY",
                              "Eccentricity", "Orientation"), 0.0)


def centroid_and_profiles(frame: np.ndarray, *, threshold: float = 0.0):
    """(the :func:`frame_centroid` scalars, the four profiles NDPluginStats computes in
    the same pass): ``ProfileAverageX/Y`` (the mean of each column / row) and
    ``ProfileThresholdX/Y`` (the same of the pixels at or above *threshold*).

    The moments are NDPluginStats's: raw moments of the thresholded column and row
    sums (x and y to the fourth power; the cross moment from the pixels), central
    moments from them; sigmas, skew, kurtosis (excess), SigmaXY as the correlation,
    Orientation ``0.5 atan2(2 varXY, varX - varY)`` in degrees and Eccentricity
    ``((mu20 - mu02)^2 - 4 mu11^2) / (mu20 + mu02)^2``."""
    data = frame.astype(np.float64, copy=False)
    ny, nx = data.shape
    weights = np.where(data >= threshold, data, 0.0)
    col = weights.sum(axis=0)            # thresholded sum of each column (along x)
    row = weights.sum(axis=1)            # ... of each row (along y)
    profiles = {"ProfileAverageX": data.sum(axis=0) / ny, "ProfileAverageY": data.sum(axis=1) / nx,
                "ProfileThresholdX": col / ny, "ProfileThresholdY": row / nx}
    m00 = float(col.sum())
    if m00 <= 0.0:
        return dict(_NO_CENTROID), profiles
    x = np.arange(nx, dtype=np.float64)
    y = np.arange(ny, dtype=np.float64)
    m10, m20, m30, m40 = (float(col @ x ** k) for k in (1, 2, 3, 4))
    m01, m02, m03, m04 = (float(row @ y ** k) for k in (1, 2, 3, 4))
    m11 = float(y @ weights @ x)
    mu20 = m20 - m10 * m10 / m00
    mu02 = m02 - m01 * m01 / m00
    mu11 = m11 - m10 * m01 / m00
    mu30 = m30 - 3 * m10 * m20 / m00 + 2 * m10 ** 3 / m00 ** 2
    mu03 = m03 - 3 * m01 * m02 / m00 + 2 * m01 ** 3 / m00 ** 2
    mu40 = m40 - 4 * m30 * m10 / m00 + 6 * m20 * m10 ** 2 / m00 ** 2 - 3 * m10 ** 4 / m00 ** 3
    mu04 = m04 - 4 * m03 * m01 / m00 + 6 * m02 * m01 ** 2 / m00 ** 2 - 3 * m01 ** 4 / m00 ** 3
    var_x, var_y, var_xy = mu20 / m00, mu02 / m00, mu11 / m00
    sx, sy = max(var_x, 0.0) ** 0.5, max(var_y, 0.0) ** 0.5
    out = dict(_NO_CENTROID)
    out.update(CentroidTotal=m00, CentroidX=m10 / m00, CentroidY=m01 / m00, SigmaX=sx, SigmaY=sy,
               Orientation=float(np.degrees(0.5 * np.arctan2(2.0 * var_xy, var_x - var_y))))
    if sx > 0 and sy > 0:
        out["SigmaXY"] = var_xy / (sx * sy)
    if var_x > 0:
        out["SkewX"] = mu30 / (m00 * var_x ** 1.5)
        out["KurtosisX"] = mu40 / (m00 * var_x ** 2) - 3.0
    if var_y > 0:
        out["SkewY"] = mu03 / (m00 * var_y ** 1.5)
        out["KurtosisY"] = mu04 / (m00 * var_y ** 2) - 3.0
    if mu20 + mu02 != 0:
        out["Eccentricity"] = ((mu20 - mu02) ** 2 - 4 * mu11 ** 2) / (mu20 + mu02) ** 2
    return out, profiles


def line_profiles(frame: np.ndarray, *, centroid: tuple[float, float],
                  cursor: tuple[int, int]) -> dict:
    """The row and column through the centroid (rounded) and through the cursor, as
    ``ProfileCentroidX/Y`` and ``ProfileCursorX/Y``, and ``CursorVal``, the pixel at the
    cursor; positions (x, y) clamped into the frame, as NDPluginStats does."""
    ny, nx = frame.shape
    def clamp(value, size):
        return min(max(int(value), 0), size - 1)
    cx, cy = clamp(centroid[0] + 0.5, nx), clamp(centroid[1] + 0.5, ny)
    ux, uy = clamp(cursor[0], nx), clamp(cursor[1], ny)
    data = frame.astype(np.float64, copy=False)
    return {"ProfileCentroidX": data[cy, :].copy(), "ProfileCentroidY": data[:, cx].copy(),
            "ProfileCursorX": data[uy, :].copy(), "ProfileCursorY": data[:, ux].copy(),
            "CursorVal": float(data[uy, ux])}


def histogram_bins(size: int, low: float, high: float) -> tuple[int, float, float]:
    """(size, low, high) as NDPluginStats uses them: at least one bin, and a range of
    at least 1 when HistMax is not above HistMin."""
    size = max(int(size), 1)
    if high <= low:
        high = low + 1.0
    return size, float(low), float(high)


def histogram_x(size: int, low: float, high: float) -> np.ndarray:
    """HistogramX_RBV: ``low + i (high - low) / size`` for each of the *size* bins
    (NDPluginStats::computeHistX, recomputed when HistSize, HistMin or HistMax is put;
    note its step is range/size while the bins are range/(size - 1) apart)."""
    size = max(int(size), 1)
    return low + np.arange(size, dtype=np.float64) * ((high - low) / size)


def frame_histogram(frame: np.ndarray, *, size: int, low: float, high: float) -> dict:
    """Histogram, HistBelow, HistAbove and HistEntropy as NDPluginStats computes them:
    a pixel goes to bin ``int((value - low) (size - 1) / (high - low) + 0.5)``; below
    *low* (or NaN) counts in HistBelow, above *high* in HistAbove. The entropy is
    ``-sum(c ln c) / pixels`` over the bins, an empty bin counted as c = 1."""
    size, low, high = histogram_bins(size, low, high)
    values = frame.ravel().astype(np.float64, copy=False)
    inside = values >= low                          # False for NaN, as the C comparison
    below = int(values.size - np.count_nonzero(inside))
    kept = values[inside]
    bins = np.floor((kept - low) * ((size - 1) / (high - low)) + 0.5)
    over = (bins > size - 1) | (kept > high)
    histogram = np.bincount(bins[~over].astype(np.int64), minlength=size)[:size].astype(np.float64)
    counts = np.where(histogram <= 0, 1.0, histogram)
    entropy = -float((counts * np.log(counts)).sum()) / max(values.size, 1)
    return {"Histogram": histogram, "HistBelow": below, "HistAbove": int(np.count_nonzero(over)),
            "HistEntropy": entropy}
