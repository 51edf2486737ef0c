"""The document-stream side shared by the file exporters.

A :class:`FrameExporter` is a callback ``exporter(name, doc)`` that works the same
way live (``RE(plan, exporter)``: it fills each frame from its file as the event
arrives, using the same handlers databroker uses) and on finished runs
(``db.process(headers, exporter)``, or ``export_run(cat[uid], exporter)`` with the
v2 API). For every event of the chosen stream it fills the frame, subtracts the
dark when the run names one, computes the file name from the template, refuses to
overwrite or to leave the export directory, and hands the frame to ``write``,
which subclasses implement for one file format.

Everything that can be checked early is checked before the first file is written:
the template's start fields and its directory at the start document, the dark run
at the start document, the field and the dark's shape at the descriptor.
"""

from __future__ import annotations

import datetime as _dt
import os
import uuid
from pathlib import Path

import numpy as np
from event_model import DocumentRouter, Filler

from .darks import DarkFrameError, load_dark, subtract_dark
from .paths import PathEscapeError, TemplateError, export_root, render_path
from ..catalog.runs import FrameReadError, failing_file, is_read_failure, plain_doc


class ExportError(RuntimeError):
    """An export cannot go on (file exists, field missing, name collision)."""


def handler_registry() -> dict:
    """Handlers for every asset spec installed (area-detector-handlers, ophyd's NPY_SEQ)."""
    from databroker.core import discover_handlers

    return discover_handlers()


def json_safe(value):
    """*value* with numpy scalars and arrays, tuples and sets made JSON-friendly."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"<array {value.shape} {value.dtype}>"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def frame_metadata(start: dict, descriptor: dict, event: dict, field: str,
                   dark_uid: str | None) -> dict:
    """What a file says about its frame: the run's start document, the stream, the
    event (its scalar readings) and whether a dark was subtracted.

    Built from the documents only, so a live export and an export of the same run
    from the catalog give identical files.
    """
    external = {k for k, dk in descriptor["data_keys"].items() if dk.get("external")}
    readings = {k: v for k, v in event["data"].items() if k not in external and k != field}
    return json_safe({
        "run_uid": start["uid"],
        "scan_id": start.get("scan_id"),
        "plan_name": start.get("plan_name"),
        "stream": descriptor.get("name"),
        "field": field,
        "seq_num": event["seq_num"],
        "event_uid": event["uid"],
        "time": event["time"],
        "readings": readings,
        "dark_frame": dark_uid,
        "dark_subtracted": dark_uid is not None,
        "start": start,
    })


def event_datetime(event: dict) -> _dt.datetime:
    """The event's time as a local datetime (for the TIFF DateTime tag)."""
    return _dt.datetime.fromtimestamp(event["time"])


#: How to ask for replacing files, in the words of both interfaces.
OVERWRITE_HINT = "--overwrite on the command line, overwrite=True in Python"


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Raise FileExistsError naming *path* if it exists and *overwrite* is false."""
    if not overwrite and path.exists():
        raise FileExistsError(
            f"{str(path)!r} exists; nothing was replaced. Choose another directory "
            f"or template, or replace it ({OVERWRITE_HINT})"
        )


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name next to *path* (same directory, so ``os.replace`` is atomic)
    where a replacement for *path* is written until it is complete."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")


class RunExporter(DocumentRouter):
    """What every exporter does with the document stream, whatever it writes.

    - works on plain dicts (databroker v1 hands out read-only ``doct`` objects);
    - chooses the dark run (:meth:`_choose_dark`: ``dark``, ``require_dark``) and
      loads its mean frame of *field* from *stream* of *db*;
    - checks the field's shape against the dark's (:meth:`_check_dark_shape`);
    - forwards every document to a :class:`event_model.Filler` that fills frames
      from their files with the handlers databroker uses (``root_map`` honoured).

    Subclasses write files (:class:`FrameExporter`, one per frame;
    :class:`simbeamline.export.nexus.NexusExporter`, one per run). In a dry run
    (``dry_run = True``, set by :func:`simbeamline.export.export_run`) nothing is
    read or written: only names are planned in ``written`` and checks are made.
    """

    def __init__(self, *, field: str | None, overwrite: bool = False, db=None, dark="auto",
                 require_dark: bool = False, stream: str = "primary",
                 root_map: dict | None = None):
        super().__init__()
        if require_dark and field is None:
            raise ValueError("require_dark=True needs field=, the image field to subtract it from")
        self.field = field
        self.overwrite = overwrite
        self.db = db
        self.dark_source = dark
        self.require_dark = require_dark
        self.stream = stream
        self.root_map = root_map
        self.dry_run = False
        #: files written (or, in a dry run, planned) for the current/last run
        self.written: list[Path] = []
        self._start = None
        self._filler = None
        self._dark = None
        self._dark_uid = None

    def __call__(self, name, doc, validate=False):
        return super().__call__(name, plain_doc(doc), validate)

    # -- the dark ------------------------------------------------------------
    def _choose_dark(self, start) -> str | None:
        """The uid of the dark run to subtract from *start*'s run, or None."""
        if self.dark_source is None or self.field is None:
            return None
        if self.dark_source != "auto":
            return self.dark_source
        named = start.get("dark_frame")
        if named is None and self.require_dark:
            raise DarkFrameError(
                f"run {start['uid'][:8]} records no dark_frame: take the dark with "
                "simbeamline.plans.scan_with_dark, or export with dark=None"
            )
        return named

    def _start_dark(self, start) -> None:
        """Choose the dark of the run that *start* opens and, unless dry, load it."""
        self._dark = None
        self._dark_uid = self._choose_dark(start)
        if self._dark_uid is not None and not self.dry_run:
            self._dark = load_dark(self.db, self._dark_uid, self.field, self.stream)

    def _check_dark_shape(self, data_keys: dict) -> None:
        """Refuse a field whose declared shape is not the dark's (before any frame is read)."""
        if self._dark is None or self.field not in data_keys:
            return
        shape = tuple(data_keys[self.field].get("shape") or ())
        if shape and 0 not in shape and shape != self._dark.shape:
            raise DarkFrameError(
                f"dark run {self._dark_uid!r} has frames of shape {self._dark.shape} but "
                f"{self.field!r} has shape {shape}: take the dark with the same detector settings"
            )

    # -- filling ---------------------------------------------------------------
    def _open_filler(self, start) -> None:
        self._close_filler()
        if not self.dry_run:
            self._filler = Filler(handler_registry(), inplace=False, root_map=self.root_map)
            self._filler("start", start)

    def _forward(self, name, doc):
        if self._filler is not None:
            return self._filler(name, doc)
        return None

    def _fill_event(self, doc) -> dict:
        """*doc* with its external data read from their files.

        A frame file that is missing or unreadable is a :class:`FrameReadError` naming
        the file and what to do, instead of event_model's generic "Filler was unable
        to load the data" (the OSError stays in the cause chain).
        """
        try:
            _, filled = self._filler("event", doc)
        except Exception as err:
            if not is_read_failure(err):
                raise
            raise FrameReadError(self._read_problem(doc, err)) from err
        return filled

    def _read_problem(self, event, err) -> str:
        uid = self._start["uid"][:8] if self._start else "?"
        failed = failing_file(err)
        if failed is None:
            what = f"its data cannot be read ({type(err).__name__}: {err})"
            todo = "check that the run's data files are where its resource documents say"
        else:
            missing = isinstance(failed, FileNotFoundError)
            what = (f"file {failed.filename} is missing" if missing else
                    f"file {failed.filename} cannot be read ({failed.strerror or failed})")
            todo = ("restore the file (if the run's data directory moved, open the catalog "
                    "with root_map={old_root: new_root} in Python)" if missing else
                    "make the file readable (permissions, a complete copy)")
        return (f"cannot export event {event.get('seq_num')} of run {uid}: {what}; "
                f"{todo}, then export again{self._failure_note()}")

    def _failure_note(self) -> str:
        """What the export left behind after a failed event (subclasses)."""
        return ""

    def _close_filler(self):
        if self._filler is not None:
            self._filler.close()
            self._filler = None

    def resource(self, doc):
        self._forward("resource", doc)

    def datum(self, doc):
        self._forward("datum", doc)

    def datum_page(self, doc):
        self._forward("datum_page", doc)

    def event_page(self, doc):
        return NotImplemented   # DocumentRouter unpacks pages into events


class FrameExporter(RunExporter):
    """Write one file per frame of *field*, named by *template*.

    Parameters
    ----------
    field : str
        Data key of the frames, e.g. ``'spot_img'``.
    template : str
        File name template, e.g. ``'{start.scan_id}_step{event.seq_num:04d}.tif'``;
        relative to *directory*, or absolute when *directory* is None (its fixed
        leading directories are then the export directory).
    directory : path, optional
        Export directory; every file stays inside it.
    overwrite : bool
        Replace existing files (default: refuse, naming the file).
    db : databroker Broker or v2 catalog, optional
        Where to find the dark run named by the start document's ``dark_frame``.
    dark : 'auto', None, or a run uid
        'auto' (default): subtract the dark run named by ``dark_frame`` when the
        start document has one. None: never subtract. A uid: subtract that run.
    require_dark : bool
        Refuse runs that name no dark (as the seed's ``SubtractedTiffExporter``).
    stream : str
        Event stream to export (default ``'primary'``); the dark run's frames are
        read from the same stream.
    root_map : dict, optional
        Relocated data roots, as for databroker.
    """

    #: file name suffix of this format (subclasses)
    suffix = ""

    def __init__(self, field: str, template: str, *, directory=None, overwrite: bool = False,
                 db=None, dark="auto", require_dark: bool = False, stream: str = "primary",
                 root_map: dict | None = None):
        super().__init__(field=field, overwrite=overwrite, db=db, dark=dark,
                         require_dark=require_dark, stream=stream, root_map=root_map)
        self.root, self.template = export_root(template, directory)
        self._descriptors: dict[str, dict] = {}
        self._seen_paths: dict[Path, int] = {}

    # -- the document stream -------------------------------------------------
    def start(self, doc):
        self._start = doc
        self._descriptors = {}
        self.written = []
        self._seen_paths = {}
        # start fields and the directory: checked before anything else happens
        render_path(self.template, self.root, doc)
        self._start_dark(doc)
        self._open_filler(doc)

    def descriptor(self, doc):
        self._forward("descriptor", doc)
        if doc.get("name") != self.stream:
            return
        keys = doc["data_keys"]
        if self.field not in keys:
            raise ExportError(
                f"field {self.field!r} is not in stream {self.stream!r} of run "
                f"{self._start['uid'][:8]}; its fields are: {', '.join(sorted(keys))}"
            )
        self._check_dark_shape(keys)
        self._descriptors[doc["uid"]] = doc

    def event(self, doc):
        descriptor = self._descriptors.get(doc["descriptor"])
        if descriptor is None:
            return   # another stream: nothing to export, nothing to fill
        path = self._path_for(descriptor, doc)
        if self.dry_run:
            self.written.append(path)
            return
        filled = self._fill_event(doc)
        frame = np.asarray(filled["data"][self.field])
        if self._dark is not None:
            frame = subtract_dark(frame, self._dark)
        metadata = frame_metadata(self._start, descriptor, doc, self.field, self._dark_uid)
        self._write_new(path, frame, metadata, doc)
        self.written.append(path)

    def stop(self, doc):
        self._forward("stop", doc)
        self._close_filler()
        self._dark = None

    # -- helpers ---------------------------------------------------------------
    def _path_for(self, descriptor, event) -> Path:
        path = render_path(self.template, self.root, self._start, descriptor, event)
        previous = self._seen_paths.get(path)
        if previous is not None:
            raise ExportError(
                f"template {self.template!r} gives the same file {str(path)!r} for events "
                f"{previous} and {event['seq_num']}: add a per-event field such as "
                "{event.seq_num:04d}"
            )
        self._seen_paths[path] = event["seq_num"]
        refuse_existing(path, self.overwrite)
        return path

    def _failure_note(self) -> str:
        if not self.written:
            return " (no file of this run was written)"
        return (f" ({len(self.written)} earlier file{'s' * (len(self.written) != 1)} of this "
                f"run stay; to replace them, export again with {OVERWRITE_HINT})")

    def _write_new(self, path: Path, frame, metadata, event):
        """Write one frame file. Without overwrite it is created exclusively ('x': never
        replace, even in a race); with overwrite it is written under a temporary name
        and renamed over the old file only once complete, so a failure keeps the old one.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        target = temporary_sibling(path) if self.overwrite else path
        try:
            with open(target, "xb") as fh:
                self.write(fh, frame, metadata, event)
            if target != path:
                os.replace(target, path)
        except FileExistsError:
            if target != path:
                raise
            raise FileExistsError(
                f"{str(path)!r} appeared while exporting; nothing was replaced. To "
                f"replace it: {OVERWRITE_HINT}"
            ) from None
        except BaseException:
            target.unlink(missing_ok=True)   # no half-written file left behind
            raise

    def write(self, fh, frame: np.ndarray, metadata: dict, event: dict) -> None:
        """Write *frame* to the open binary file *fh* (subclasses)."""
        raise NotImplementedError


__all__ = [
    "ExportError", "FrameExporter", "RunExporter", "DarkFrameError", "PathEscapeError", "TemplateError",
    "frame_metadata", "json_safe", "handler_registry", "refuse_existing", "temporary_sibling",
]
