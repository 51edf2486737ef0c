"""Export frames as numbered TIFF files, live or from the catalog (the seed recipe).

``TiffExporter('spot_img', '{start.scan_id}_step{event.seq_num}.tif', directory=...)``
replaces bluesky's removed ``LiveTiffExporter``: ``RE(plan, exporter)`` exports as
the scan runs, ``db.process(db[uid], exporter)`` exports a finished run. Files are
written by ``tifffile.imwrite`` in the frame's own dtype (or the wider signed dtype
of a dark-subtracted frame), with the run's metadata as JSON in the ImageDescription
tag (``tifffile.TiffFile(f).shaped_metadata[0]``), the event time in DateTime, the
run uid in DocumentName and ``stream:seq_num`` in PageName.
"""

from __future__ import annotations

import tifffile

from .base import FrameExporter, event_datetime

#: TIFF tag numbers written besides tifffile's standard ones
DOCUMENT_NAME = 269
PAGE_NAME = 285


class TiffExporter(FrameExporter):
    """One TIFF file per frame; see :class:`simbeamline.export.base.FrameExporter`."""

    suffix = ".tif"

    def write(self, fh, frame, metadata, event):
        tifffile.imwrite(
            fh,
            frame,
            photometric="minisblack",
            metadata=metadata,
            software="simbeamline",
            datetime=event_datetime(event),
            extratags=[
                (DOCUMENT_NAME, "s", 0, metadata["run_uid"], True),
                (PAGE_NAME, "s", 0, f"{metadata['stream']}:{metadata['seq_num']}", True),
            ],
        )


class SubtractedTiffExporter(TiffExporter):
    """A :class:`TiffExporter` that requires the run to name its dark (``dark_frame``)
    and subtracts it, as the seed recipe's subclass of the same name."""

    def __init__(self, field, template, *, db, **kwargs):
        kwargs.setdefault("require_dark", True)
        super().__init__(field, template, db=db, **kwargs)
