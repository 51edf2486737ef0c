"""Export frames as ESRF Data Format (EDF) files with fabio, one file per frame.

An EDF file series named by a template, the way ESRF beamlines keep frames
(``fabio.open_series`` reads it back as one series). Each file's header carries the
run's metadata as flat ``key = value`` pairs: run uid, scan_id, plan name, stream,
seq_num, event time, the event's scalar readings (``reading.<name>``), the dark
that was subtracted, and the start document's scalar entries (``start.<key>``).
"""

from __future__ import annotations

import json

import fabio.edfimage

from .base import FrameExporter


def edf_header(metadata: dict) -> dict[str, str]:
    """The flat string header of one EDF frame, from :func:`frame_metadata`'s dict."""
    header = {}
    for key in ("run_uid", "scan_id", "plan_name", "stream", "field", "seq_num",
                "event_uid", "time", "dark_frame", "dark_subtracted"):
        header[key] = "" if metadata.get(key) is None else str(metadata[key])
    for name, value in metadata["readings"].items():
        header[f"reading.{name}"] = str(value)
    for key, value in metadata["start"].items():
        if isinstance(value, (str, int, float, bool)):
            header[f"start.{key}"] = str(value)
        elif key not in ("hints", "plan_args"):
            header[f"start.{key}"] = json.dumps(value)
    # EDF headers are '{ key = value ; ... }': keep values on one line, free of ';' and braces
    table = str.maketrans({";": ",", "\n": " ", "{": "(", "}": ")"})
    return {k: v.translate(table) for k, v in header.items()}


class EdfExporter(FrameExporter):
    """One EDF file per frame; see :class:`simbeamline.export.base.FrameExporter`."""

    suffix = ".edf"

    def write(self, fh, frame, metadata, event):
        # fabio writes to an open file object too (and closes it when done)
        fabio.edfimage.EdfImage(data=frame, header=edf_header(metadata)).write(fh)
