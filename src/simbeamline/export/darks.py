"""Dark-frame subtraction without wrap-around.

A run's start document may name a dark run (``dark_frame``: its uid), taken with
the shutter closed. The dark is the mean of that run's frames. Subtracting it from
an unsigned integer frame in the frame's own dtype would wrap negative noise
around to huge values, so the result is computed in a wider signed dtype:
integer frames stay integers (the mean dark rounded to whole counts), float
frames stay floats.
"""

from __future__ import annotations

import numpy as np

from ..catalog.runs import FrameReadError, RunNotFoundError, find_run, mean_frame

#: Signed integer dtype that holds the difference of two values of each integer dtype.
_WIDER = {
    np.dtype(np.uint8): np.dtype(np.int16),
    np.dtype(np.int8): np.dtype(np.int16),
    np.dtype(np.uint16): np.dtype(np.int32),
    np.dtype(np.int16): np.dtype(np.int32),
    np.dtype(np.uint32): np.dtype(np.int64),
    np.dtype(np.int32): np.dtype(np.int64),
    np.dtype(np.uint64): np.dtype(np.float64),
    np.dtype(np.int64): np.dtype(np.float64),
}


class DarkFrameError(RuntimeError):
    """The dark run cannot be used: missing, unreadable, or of another shape."""


def subtracted_dtype(dtype) -> np.dtype:
    """The dtype in which ``frame - dark`` is computed and stored for frames of *dtype*."""
    dtype = np.dtype(dtype)
    if dtype in _WIDER:
        return _WIDER[dtype]
    if dtype.kind == "f":
        return np.result_type(dtype, np.float32)
    raise DarkFrameError(f"cannot subtract a dark from frames of dtype {dtype}")


def subtract_dark(frame: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """``frame - dark`` in :func:`subtracted_dtype` of the frame, never wrapping around.

    *dark* is a mean frame (float); for integer frames it is rounded to whole counts.
    """
    frame = np.asarray(frame)
    if frame.shape != dark.shape:
        raise DarkFrameError(
            f"the dark frame has shape {dark.shape} but the frame has shape {frame.shape}: "
            "take the dark with the same detector settings (region, binning)"
        )
    out = subtracted_dtype(frame.dtype)
    if out.kind in "iu":
        return np.subtract(frame, np.rint(dark).astype(out), dtype=out)
    return np.subtract(frame, dark, dtype=out)


def load_dark(db, uid, field: str, stream: str = "primary") -> np.ndarray:
    """Mean frame (float64) of *field* in the dark run *uid* from catalog *db*.

    Raises DarkFrameError naming the run and the reason, so that an export can stop
    before it writes any file.
    """
    if db is None:
        raise DarkFrameError(
            f"the run names dark run {uid!r} but no catalog was given to read it from: "
            "pass db=db (or cat) to the exporter, or dark=None to export without subtraction"
        )
    try:
        run = find_run(db, uid)
    except RunNotFoundError as err:
        raise DarkFrameError(f"dark run {uid!r} cannot be found: {err}") from None
    try:
        dark, _, _ = mean_frame(run, field, stream)
    except FrameReadError as err:
        raise DarkFrameError(f"dark run {uid!r} cannot be read: {err}") from err
    return dark
