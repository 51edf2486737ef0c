"""Export runs to TIFF, EDF or NeXus/HDF5: the public entry points.

Live, during a scan (the exporter is an ordinary RunEngine subscription)::

    from simbeamline.export import TiffExporter
    exporter = TiffExporter("spot_img", "{start.scan_id}_step{event.seq_num:04d}.tif",
                            directory="~/export", db=db)
    RE(grid_scan([spot], ...), exporter)

Later, from the catalog::

    db.process(db[uid], exporter)            # databroker v1, as in the seed recipe
    export_run(cat[uid], exporter)           # v2; checks every file name first

:func:`export_run` makes a first pass over the run without reading any frame, so a
template that escapes the directory, a name collision or an existing file is
reported before the first file is written; then it writes, with a progress bar.
"""

from __future__ import annotations

from pathlib import Path

from .edf import EdfExporter
from .base import ExportError, FrameExporter
from .nexus import NexusExporter
from ..catalog.runs import as_run, count_events
from .tiff import SubtractedTiffExporter, TiffExporter

#: --format name -> exporter class
FORMATS = {"tiff": TiffExporter, "edf": EdfExporter, "hdf5": NexusExporter}

#: File name templates used when none is given.
DEFAULT_TEMPLATES = {
    "tiff": "{start.scan_id}_{descriptor.name}_{event.seq_num:05d}.tif",
    "edf": "{start.scan_id}_{descriptor.name}_{event.seq_num:05d}.edf",
    "hdf5": "{start.scan_id}_{start.uid:.8}.h5",
}


#: ``stream=`` value meaning every stream of the run (hdf5 only: one NeXus file holds them all)
ALL_STREAMS = "all"


def make_exporter(fmt: str, *, field: str | None, directory, template: str | None = None,
                  db=None, dark="auto", overwrite: bool = False, stream: str = "primary"):
    """An exporter for format *fmt* ('tiff', 'edf' or 'hdf5') with the usual defaults.

    *stream* ``'all'`` (hdf5 only) exports every stream into the one NeXus file; *field*
    and the dark then belong to the primary stream.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    template = template or DEFAULT_TEMPLATES[fmt]
    if fmt == "hdf5":
        if stream == ALL_STREAMS:
            return NexusExporter(template, field=field, streams=None, stream="primary",
                                 directory=directory, overwrite=overwrite, db=db, dark=dark)
        return NexusExporter(template, field=field, streams=[stream], stream=stream,
                             directory=directory, overwrite=overwrite, db=db, dark=dark)
    if stream == ALL_STREAMS:
        raise ExportError(
            f"stream {ALL_STREAMS!r} is for the hdf5 format (one file holds every stream); "
            f"a {fmt} export writes the frames of one stream: name it (for example 'primary')")
    if field is None:
        raise ExportError(f"a {fmt} export needs the image field (for example 'spot_img')")
    return FORMATS[fmt](field, template, directory=directory, overwrite=overwrite, db=db,
                        dark=dark, stream=stream)


def exported_streams(exporter) -> set[str] | None:
    """The streams *exporter* writes: its ``streams`` (NeXus; None: every stream) or
    its one ``stream``."""
    if hasattr(exporter, "streams"):
        return None if exporter.streams is None else set(exporter.streams)
    return {getattr(exporter, "stream", None) or "primary"}


def count_exported_events(run, streams: set[str] | None) -> int:
    """How many events of *streams* (None: all) *run* has, for the progress bar."""
    return count_events(run, streams)


def export_run(run, exporter, *, progress: bool = False) -> list[Path]:
    """Feed one finished run (v2 run or v1 header) to *exporter*; return the files written.

    Every file name is computed and checked (inside the directory, unique, not an
    existing file) before any frame is read or any file is written.
    """
    run = as_run(run)
    exporter.dry_run = True
    try:
        for name, doc in run.documents(fill="no"):
            exporter(name, doc)
    finally:
        exporter.dry_run = False
    streams = exported_streams(exporter)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count_exported_events(run, streams), unit="event",
                   desc=f"export {run.metadata['start']['uid'][:8]}")
    ours = set()   # descriptors of the exported streams, for the progress count
    try:
        for name, doc in run.documents(fill="no"):
            exporter(name, doc)
            if name == "descriptor" and (streams is None or doc.get("name") in streams):
                ours.add(doc["uid"])
            elif bar is not None and name in ("event", "event_page") and doc["descriptor"] in ours:
                bar.update(len(doc["seq_num"]) if name == "event_page" else 1)
    finally:
        if bar is not None:
            bar.close()
    return list(exporter.written)


__all__ = [
    "ALL_STREAMS", "DEFAULT_TEMPLATES", "EdfExporter", "ExportError", "FORMATS", "FrameExporter",
    "NexusExporter", "SubtractedTiffExporter", "TiffExporter", "count_exported_events", "export_run",
    "exported_streams", "make_exporter",
]
