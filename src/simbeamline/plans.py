"""Bluesky plans for darks, flats and dark-subtracted scans with the real shutter.

The seed recipe takes a dark by closing the shutter, sleeping, counting, opening
and sleeping again, then runs the scan with ``dark_frame=<dark uid>``. Here the
shutter's put completes when it has moved (``bps.mv`` waits for it), so no sleep
is needed, and the shutter is reopened even when the dark fails or is aborted.

Every plan returns the uid(s) of the run(s) it made (``uid = yield from ...``
inside another plan), and marks each run's start document with ``purpose``
('dark', 'flat' or 'raw') so the runs can be found later
(``cat.search({'purpose': 'flat'})``).
"""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp

#: Values of the simulated shutter's enum (sim:shutter).
CLOSED = "Closed"
OPEN = "Open"

#: Sample-stage positions: samx parks at 50 (out of the beam); |samx| <= 5 is in.
SAMPLE_IN = 0.0
SAMPLE_OUT = 50.0


def take_dark(detectors, shutter, *, num: int = 1, closed=CLOSED, opened=OPEN, md=None):
    """Close the shutter, count *detectors* *num* times, then reopen the shutter.

    What you get: one run whose start document says ``purpose='dark'``, holding
    frames of the detector's dark signal only; the shutter open again afterwards
    (also after an error or an abort). Returns the dark run's uid, to pass as
    ``dark_frame`` to the scans it belongs to.
    """
    _md = {"purpose": "dark", "shutter": str(closed), **(md or {})}
    yield from bps.mv(shutter, closed)
    return (yield from bpp.finalize_wrapper(bp.count(detectors, num=num, md=_md),
                                            bps.mv(shutter, opened)))


def scan_with_dark(detectors, shutter, plan, *, dark_num: int = 1, closed=CLOSED,
                   opened=OPEN, dark_md=None):
    """Take a dark with the shutter closed, reopen it, then run *plan* with the
    dark's uid recorded as ``dark_frame`` in the plan's start document(s).

    *plan* is a plan generator (``bp.grid_scan([spot], ...)``). What you get: a
    dark run and the scan run; exporting the scan with
    ``TiffExporter(..., db=db)`` subtracts the dark's mean frame. Returns
    ``(dark_uid, scan_uid)``.
    """
    dark_uid = yield from take_dark(detectors, shutter, num=dark_num, closed=closed,
                                    opened=opened, md=dark_md)
    scan_uid = yield from bpp.inject_md_wrapper(plan, {"dark_frame": dark_uid})
    return dark_uid, scan_uid


def take_flat(detectors, shutter, sample_motor, *, num: int = 1, out_position=SAMPLE_OUT,
              opened=OPEN, md=None):
    """Open the shutter, move the sample out of the beam, count *detectors* *num* times.

    What you get: one run with ``purpose='flat'``: the beam and the detector's
    pixel response without the sample. The sample stays out. Returns the uid.
    """
    yield from bps.mv(shutter, opened, sample_motor, out_position)
    _md = {"purpose": "flat", "sample_position": out_position, **(md or {})}
    return (yield from bp.count(detectors, num=num, md=_md))


def take_raw(detectors, shutter, sample_motor, *, num: int = 1, in_position=SAMPLE_IN,
             opened=OPEN, md=None):
    """Open the shutter, move the sample into the beam, count *detectors* *num* times.

    What you get: one run with ``purpose='raw'``: frames of the sample in the
    beam. Returns the uid.
    """
    yield from bps.mv(shutter, opened, sample_motor, in_position)
    _md = {"purpose": "raw", "sample_position": in_position, **(md or {})}
    return (yield from bp.count(detectors, num=num, md=_md))


def flatfield_series(detectors, shutter, sample_motor, *, num_dark: int = 5,
                     num_flat: int = 5, num_raw: int = 10, in_position=SAMPLE_IN,
                     out_position=SAMPLE_OUT, closed=CLOSED, opened=OPEN, md=None):
    """Dark, flat, raw, flat: everything a flat-field correction needs.

    What you get: four runs, in order: a dark (shutter closed), a flat (sample
    out), the raw frames (sample in; its start document names ``dark_frame`` and
    ``flat_before``), and a second flat (its start document names the raw run as
    ``flat_after_of``), so flats can be interpolated over the raw frames. The
    sample is left out of the beam. Returns a dict of the four uids:
    ``{'dark', 'flat_before', 'raw', 'flat_after'}``.
    """
    md = dict(md or {})
    dark = yield from take_dark(detectors, shutter, num=num_dark, closed=closed,
                                opened=opened, md=md)
    before = yield from take_flat(detectors, shutter, sample_motor, num=num_flat,
                                  out_position=out_position, opened=opened, md=md)
    raw = yield from take_raw(detectors, shutter, sample_motor, num=num_raw,
                              in_position=in_position, opened=opened,
                              md={**md, "dark_frame": dark, "flat_before": before})
    after = yield from take_flat(detectors, shutter, sample_motor, num=num_flat,
                                 out_position=out_position, opened=opened,
                                 md={**md, "flat_after_of": raw})
    return {"dark": dark, "flat_before": before, "raw": raw, "flat_after": after}
