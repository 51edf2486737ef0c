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

from .edf_export import EdfExporter
from .frame_export import ExportError, FrameExporter
from .hdf5_export import NexusExporter
from .run_access import as_run
from .tiff_export import SubtractedTiffExporter, TiffExporter

#: --format name -> exporter class
FORMATS = {"tiff": TiffExporter, "edf": EdfExporter, "hdf5": NexusExporter}

#: File name templates used when none is given.
DEFAULT_TEMPLATES = {
    "tiff": "{start.scan_id}_{descriptor.name}_{event.seq_num:05d}.tif",
    "edf": "{start.scan_id}_{descriptor.name}_{event.seq_num:05d}.edf",
    "hdf5": "{start.scan_id}_{start.uid:.8}.h5",
}


def make_exporter(fmt: str, *, field: str | None, directory, template: str | None = None,
                  db=None, dark="auto", overwrite: bool = False, stream: str = "primary"):
    """An exporter for format *fmt* ('tiff', 'edf' or 'hdf5') with the usual defaults."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    template = template or DEFAULT_TEMPLATES[fmt]
    if fmt == "hdf5":
        return NexusExporter(template, field=field, streams=[stream], stream=stream,
                             directory=directory, overwrite=overwrite, db=db, dark=dark)
    if field is None:
        raise ExportError(f"a {fmt} export needs the image field (for example 'spot_img')")
    return FORMATS[fmt](field, template, directory=directory, overwrite=overwrite, db=db,
                        dark=dark, stream=stream)


def _count_events(run, stream):
    stop = run.metadata.get("stop") or {}
    return (stop.get("num_events") or {}).get(stream)


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
    stream = getattr(exporter, "stream", None) or next(iter(getattr(exporter, "streams", None) or ["primary"]))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=_count_events(run, stream), unit="frame",
                   desc=f"export {run.metadata['start']['uid'][:8]}")
    ours = set()   # descriptors of the exported stream, for the progress count
    try:
        for name, doc in run.documents(fill="no"):
            exporter(name, doc)
            if name == "descriptor" and doc.get("name") == stream:
                ours.add(doc["uid"])
            elif bar is not None and name in ("event", "event_page") and doc["descriptor"] in ours:
                bar.update(len(doc["seq_num"]) if name == "event_page" else 1)
    finally:
        if bar is not None:
            bar.close()
    return list(exporter.written)


__all__ = [
    "DEFAULT_TEMPLATES", "EdfExporter", "ExportError", "FORMATS", "FrameExporter",
    "NexusExporter", "SubtractedTiffExporter", "TiffExporter", "export_run", "make_exporter",
]
