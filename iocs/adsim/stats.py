"""NDStats values of one frame (plain numpy)."""

from __future__ import annotations

import numpy as np


def frame_statistics(frame: np.ndarray, *, bgd_width: int = 0) -> dict[str, float]:
    """Total, Net, MinValue, MaxValue, MeanValue, Sigma and the extrema positions.

    Net is Total minus the background estimated (as NDPluginStats does) from the
    mean of a border *bgd_width* pixels wide; 0 means no background, Net = Total.

    Frames of unsigned 8- or 16-bit integers (the simDetector's usual UInt8) are
    counted with a histogram in exact integers: a fifth of the time of the float64
    copy and passes the general case takes on a 1024 x 1024 frame.
    """
    if frame.dtype in (np.uint8, np.uint16) and frame.ndim == 2 and frame.size:
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
    """CentroidX/Y, SigmaX/Y and SigmaXY of the pixels at or above *threshold*,
    each weighted by its value (NDPluginStats's centroid)."""
    data = frame.astype(np.float64, copy=False)
    weights = np.where(data >= threshold, data, 0.0)
    total = float(weights.sum())
    if total == 0.0:
        return {"CentroidTotal": 0.0, "CentroidX": 0.0, "CentroidY": 0.0,
                "SigmaX": 0.0, "SigmaY": 0.0, "SigmaXY": 0.0}
    ny, nx = data.shape
    x = np.arange(nx, dtype=np.float64)
    y = np.arange(ny, dtype=np.float64)
    col = weights.sum(axis=0)  # profile along x
    row = weights.sum(axis=1)  # profile along y
    cx = float(col @ x) / total
    cy = float(row @ y) / total
    vx = float(col @ (x - cx) ** 2) / total
    vy = float(row @ (y - cy) ** 2) / total
    cxy = float((y - cy) @ weights @ (x - cx)) / total
    sx, sy = vx ** 0.5, vy ** 0.5
    return {"CentroidTotal": total, "CentroidX": cx, "CentroidY": cy,
            "SigmaX": sx, "SigmaY": sy,
            "SigmaXY": cxy / (sx * sy) if sx > 0 and sy > 0 else 0.0}
