"""``simbeamline export RUN``: export any run of the catalog to TIFF, EDF or HDF5.

    simbeamline export -1 --out ~/export                      # newest run, TIFF
    simbeamline export 42 --format hdf5 --out ~/export        # scan_id 42, NeXus file
    simbeamline export 42 --format hdf5 --stream all --out ~/export   # every stream, one file
    simbeamline export 3fa2 --template '{start.sample}_{event.seq_num:04d}.tif' \\
        --dark -2 --out ~/export                              # subtract run -2's mean frame

RUN is a uid (or its first characters), a scan_id, or a negative index as in
``db[-1]``. By default a dark is subtracted when the run records one
(``dark_frame``); ``--dark RUN`` names another, ``--dark none`` turns it off.
Nothing is overwritten unless ``--overwrite`` is given, and every file name is
checked before the first file is written.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..catalog.paths import CatalogDirError
from .darks import DarkFrameError
from . import ALL_STREAMS, DEFAULT_TEMPLATES, FORMATS, export_run, make_exporter
from .paths import PathEscapeError, TemplateError
from .base import ExportError
from ..catalog.runs import FrameReadError, RunNotFoundError, default_image_field, find_run

#: Errors that are the user's to fix: reported in one line, exit status 2.
USER_ERRORS = (RunNotFoundError, FrameReadError, DarkFrameError, TemplateError,
               PathEscapeError, ExportError, FileExistsError, CatalogDirError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simbeamline export",
        description="Export a run's frames from the catalog to TIFF, EDF or NeXus/HDF5.",
    )
    parser.add_argument("run", metavar="RUN",
                        help="run uid (or its first characters), scan_id, or negative index (-1: newest)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="tiff",
                        help="file format (default: tiff)")
    parser.add_argument("--template",
                        help="file name template of start/descriptor/event fields; default "
                             + "; ".join(f"{k}: {v}" for k, v in DEFAULT_TEMPLATES.items()))
    parser.add_argument("--field", help="image field to export (default: the stream's only image field)")
    parser.add_argument("--stream", default="primary",
                        help="event stream (default: primary); with --format hdf5, 'all' writes "
                             "every stream of the run into the one NeXus file (--field and the "
                             "dark then apply to the primary stream)")
    parser.add_argument("--dark", default="auto", metavar="RUN",
                        help="dark run to subtract (uid, scan_id or negative index), 'none' for no "
                             "subtraction; default: the run's own dark_frame if it records one")
    parser.add_argument("--out", default="export", metavar="DIR",
                        help="export directory; every file stays inside it (default: ./export)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--catalog", help="catalog name (default: SIMBEAMLINE_CATALOG or 'simbeamline')")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def open_catalog(name: str | None = None):
    """The beamline's persistent catalog (v2) from SIMBEAMLINE_* configuration, or
    the intake catalog called *name* (``databroker.catalog[name]``)."""
    from ..catalog.store import open_catalog as open_beamline_catalog
    from ..control.config import BeamlineConfig

    config = BeamlineConfig.from_env()
    if name is None or name == config.catalog_name:
        return open_beamline_catalog(config)
    import databroker

    try:
        return databroker.catalog[name]
    except KeyError:
        known = ", ".join(sorted(databroker.catalog)) or "(none)"
        raise RunNotFoundError(
            f"no catalog named {name!r}; catalogs found: {known}. Leave out --catalog to "
            f"use the beamline's own ({config.catalog_name!r})"
        ) from None


def run_export(args, catalog) -> list:
    """Export as *args* says from *catalog*; return the files written."""
    run = find_run(catalog, args.run)
    field = args.field
    field_stream = "primary" if args.stream == ALL_STREAMS else args.stream
    if args.stream == ALL_STREAMS and args.format != "hdf5":
        raise ExportError(f"--stream {ALL_STREAMS} needs --format hdf5 (one file holds every "
                          f"stream); a {args.format} export writes one stream: name it")
    if field is None:
        field = default_image_field(run, field_stream)
    dark = args.dark
    if dark.lower() == "none":
        dark = None
    elif dark.lower() != "auto":
        try:
            dark = find_run(catalog, dark).metadata["start"]["uid"]
        except RunNotFoundError as err:
            raise DarkFrameError(f"--dark {args.dark}: {err}") from None
    exporter = make_exporter(args.format, field=field, directory=args.out,
                             template=args.template, db=catalog, dark=dark,
                             overwrite=args.overwrite, stream=args.stream)
    return export_run(run, exporter, progress=not args.no_progress)


def _write_problem(err: OSError, out: str) -> str:
    """One line for an OSError met while exporting: which path, why, what to do."""
    path = err.filename or out
    reason = err.strerror or str(err)
    root = os.path.abspath(os.path.expanduser(out))
    target = os.path.abspath(os.path.expanduser(str(path)))
    if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
        return (f"cannot write the export to {path} ({reason}): choose a directory you can "
                f"write to with --out (now {out})")
    return f"{path}: {reason}"


def main(argv: list[str] | None = None, catalog=None) -> int:
    """Entry point of ``simbeamline export``; returns the exit status.

    *catalog* lets tests and scripts pass an open catalog instead of a name.
    """
    args = build_parser().parse_args(argv)
    try:
        if catalog is None:
            catalog = open_catalog(args.catalog)
        written = run_export(args, catalog)
    except USER_ERRORS as err:
        print(f"simbeamline export: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:   # unwritable --out (permissions, a file in the way, disk full)
        print(f"simbeamline export: error: {_write_problem(err, args.out)}", file=sys.stderr)
        return 2
    if written:
        where = os.path.commonpath([str(p) for p in written]) if len(written) > 1 else written[0]
        print(f"exported {len(written)} file{'s' * (len(written) != 1)} to {where}")
    else:
        print(f"run {args.run}: nothing to export in stream {args.stream!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
