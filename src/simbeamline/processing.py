"""Flat-field correction: ``(raw - dark) / (flat - dark)``, with flats interpolated.

The detector's pixels differ in response and the beam is not uniform, so a raw
frame of a sample shows both. Dividing by a flat (the same beam with the sample
out) leaves the sample's transmission. Everything is computed in float32 (integer
counts would overflow or truncate), and pixels where the flat equals the dark
(no beam there: division by zero) are masked instead of becoming inf or nan.

The beam drifts (the ring current decays between top-ups), so a flat taken before
the raw frames is right only for the first of them. With a second flat taken after,
each raw frame gets a flat interpolated linearly between the two, by acquisition
time or by frame index (the ESRF tutorial's exercise 3).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .catalog.runs import as_run, count_events, find_run, iter_frames, mean_frame


def _lookup(db, run):
    """The v2 run *run* names: a run object as it is, or a uid/scan_id/index in *db*."""
    if not isinstance(run, (str, int)):
        return as_run(run)
    if db is None:
        raise ValueError(
            f"a db/catalog is needed to look up run {run!r} (a uid, scan_id or index): "
            "pass db (or cat) as the first argument, or pass the run itself "
            "(db[...] or cat[...])"
        )
    return find_run(db, run)


@dataclasses.dataclass(frozen=True)
class FrameSet:
    """The mean of a set of frames (a dark or a flat), when and where in a series
    it was taken."""

    frame: np.ndarray    #: mean frame, float64
    time: float          #: mean acquisition time (s since epoch)
    count: int           #: number of frames averaged
    index: float = 0.0   #: position in the raw series (for interpolation by index)

    @classmethod
    def from_run(cls, db, run, field: str, stream: str = "primary", index: float = 0.0):
        """Average *field* over a run (a run object, or a uid/scan_id/index in *db*)."""
        frame, count, time = mean_frame(_lookup(db, run), field, stream)
        return cls(frame=frame, time=time, count=count, index=index)


def flatfield_correction(raw, flat, dark, *, min_denominator: float = 0.0) -> np.ma.MaskedArray:
    """``(raw - dark) / (flat - dark)`` in float32, masking pixels where
    ``|flat - dark| <= min_denominator`` (default: exactly equal) or not finite.

    Returns a float32 ``numpy.ma.MaskedArray``; masked pixels hold 0 in ``.data``.
    Use ``.filled(np.nan)`` for a plain array.
    """
    raw = np.asarray(raw, dtype=np.float32)
    flat = np.asarray(flat, dtype=np.float32)
    dark = np.asarray(dark, dtype=np.float32)
    if not (raw.shape == flat.shape == dark.shape):
        raise ValueError(
            f"raw {raw.shape}, flat {flat.shape} and dark {dark.shape} must have the same "
            "shape: take them with the same detector settings"
        )
    numerator = raw - dark
    denominator = flat - dark
    bad = ~(np.abs(denominator) > np.float32(min_denominator)) | ~np.isfinite(denominator)
    out = np.zeros(raw.shape, dtype=np.float32)
    np.divide(numerator, denominator, out=out, where=~bad)
    return np.ma.MaskedArray(out, mask=bad)


def interpolation_weight(before: float, after: float, at: float) -> float:
    """Weight of the *after* flat at position *at* between *before* and *after*,
    clipped to [0, 1] (no extrapolation beyond the flats)."""
    if after == before:
        return 0.0
    return float(min(max((at - before) / (after - before), 0.0), 1.0))


def interpolate_flat(before: FrameSet, after: FrameSet, *, time: float | None = None,
                     index: float | None = None) -> np.ndarray:
    """The flat at *time* (s since epoch) or at frame *index*, linear between two flats."""
    if (time is None) == (index is None):
        raise ValueError("give exactly one of time= or index= to interpolate a flat")
    if time is not None:
        w = interpolation_weight(before.time, after.time, time)
    else:
        w = interpolation_weight(before.index, after.index, index)
    return (1.0 - w) * before.frame + w * after.frame


class FlatFieldCorrector:
    """Correct frames with a dark and one flat, or two flats interpolated.

    ``by`` is 'time' (each raw frame's acquisition time between the flats' mean
    times) or 'index' (the frame's index between ``flat_before.index`` and
    ``flat_after.index``).
    """

    def __init__(self, dark: FrameSet | np.ndarray, flat_before: FrameSet,
                 flat_after: FrameSet | None = None, *, by: str = "time",
                 min_denominator: float = 0.0):
        if by not in ("time", "index"):
            raise ValueError(f"by={by!r}: interpolate flats by 'time' or by 'index'")
        self.dark = dark.frame if isinstance(dark, FrameSet) else np.asarray(dark)
        self.flat_before = flat_before
        self.flat_after = flat_after
        self.by = by
        self.min_denominator = min_denominator

    def flat_for(self, *, time: float | None = None, index: float | None = None) -> np.ndarray:
        """The flat to use for a frame taken at *time* / with *index*."""
        if self.flat_after is None:
            return self.flat_before.frame
        if self.by == "time":
            if time is None:
                raise ValueError("flats interpolated by time need each frame's time")
            return interpolate_flat(self.flat_before, self.flat_after, time=time)
        if index is None:
            raise ValueError("flats interpolated by index need each frame's index")
        return interpolate_flat(self.flat_before, self.flat_after, index=index)

    def correct(self, raw, *, time: float | None = None, index: float | None = None):
        """Flat-field corrected *raw* (float32 masked array)."""
        return flatfield_correction(raw, self.flat_for(time=time, index=index), self.dark,
                                    min_denominator=self.min_denominator)


def correct_run(db, raw_run, field: str, *, dark, flat_before, flat_after=None,
                by: str = "time", stream: str = "primary"):
    """Yield ``(event, corrected)`` for each frame of *raw_run*.

    *dark*, *flat_before*, *flat_after*: runs (objects, uids, scan_ids or negative
    indices in *db*). For ``by='index'`` the before-flat stands at frame 0 and the
    after-flat at the last frame of the raw run.
    """
    raw = _lookup(db, raw_run)
    # the stop document's num_events, or the events counted if it has none (a run that
    # never finished): else the after-flat would stand at index 0, beside the before-flat
    n = count_events(raw, stream) if flat_after is not None else None
    dark_set = FrameSet.from_run(db, dark, field, stream)
    before = FrameSet.from_run(db, flat_before, field, stream, index=0)
    after = None
    if flat_after is not None:
        after = FrameSet.from_run(db, flat_after, field, stream, index=max(n - 1, 0))
    corrector = FlatFieldCorrector(dark_set, before, after, by=by)
    for i, (event, frame) in enumerate(iter_frames(raw, field, stream)):
        yield event, corrector.correct(frame, time=event["time"], index=i)
