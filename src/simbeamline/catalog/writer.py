"""Recording a RunEngine's documents into the catalog: one run file each, and the index.

:class:`CatalogWriter` is what ``db.insert`` and a session's RunEngine call (see
:func:`simbeamline.catalog.recording.record_runs`). It writes the same file suitcase-msgpack
writes (``<uid>.msgpack``, events and datums as pages), flushed after each document so
that a crashed session leaves every document before the crash readable, and records
the run's start and stop in the catalog's :class:`~.index.RunIndex`: recording a run
costs the same whatever the catalog's size (no directory scan, no re-reading).

A run whose start cannot be written (disk full, directory gone) leaves no file behind
and gives its scan_id back: the error says why, and nothing is used up.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import warnings
from pathlib import Path

import event_model

from . import runfile
from .index import RunIndex


class CatalogWriteError(OSError):
    """A run's documents could not be written into the catalog (``errno`` says why)."""

    def __str__(self) -> str:
        return self.strerror or str(self.args[0])


def _why(err: Exception) -> str:
    if getattr(err, "errno", None) == errno.ENOSPC or "full" in str(err):
        return "no space left on device (disk full)"
    return getattr(err, "strerror", None) or str(err)


class RunAlreadyRecorded(UserWarning):
    """A run whose file another writer of the same catalog already records."""


class _RunFile:
    """The open file of one run."""

    def __init__(self, index: RunIndex, start: dict):
        self.index = index
        self.name = f"{start['uid']}.msgpack"
        self.path = index.directory / self.name
        self.file = None
        try:
            self.file = open(self.path, "xb")
        except FileExistsError:
            # another writer of this catalog records this run (a second subscription,
            # e.g. RE.subscribe(databroker.catalog['simbeamline'].v1.insert)): its file
            # and its scan_id are that writer's, and stay
            raise RunAlreadyRecorded(
                f"run {start['uid'][:8]} is already being recorded in {index.directory} by "
                "another subscription of this catalog; this one leaves it to that one "
                "(one `RE.subscribe` per catalog is enough)") from None
        try:
            self.file.write(runfile.encode("start", start))
            self.file.flush()
            stat = os.fstat(self.file.fileno())
            index.record_start(self.name, start, stat.st_size, stat.st_mtime_ns)
        except (OSError, sqlite3.Error) as err:
            self._discard()
            scan_id = start.get("scan_id")
            try:
                if scan_id is not None:
                    index.release_scan_id(int(scan_id))
            except sqlite3.Error:
                pass  # a reservation left behind expires with this process
            raise CatalogWriteError(
                getattr(err, "errno", None) or errno.EIO,
                f"cannot record run {start['uid'][:8]} in {index.directory}: {_why(err)}. "
                "Nothing was recorded (no run file is left"
                + (f" and scan_id {scan_id} stays free" if scan_id is not None else "")
                + "); free some space or choose another data directory "
                "(SIMBEAMLINE_DATA_DIR), then run the plan again.") from err

    def _discard(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def write(self, name: str, doc: dict) -> None:
        try:
            self.file.write(runfile.encode(name, doc))
            self.file.flush()
        except OSError as err:
            raise CatalogWriteError(
                err.errno, f"cannot write the {name} document of run {self.name} into "
                f"{self.index.directory}: {_why(err)}. The documents before it are kept; the "
                "run is listed as incomplete.") from err

    def stop(self, doc: dict) -> None:
        self.write("stop", doc)
        self.file.close()
        stat = os.stat(self.path)
        self.index.record_stop(self.name, doc, stat.st_size, stat.st_mtime_ns)


class CatalogWriter:
    """Write each run's documents to its own file of *index*'s directory (see the module).

    Call it as ``writer(name, doc)``; runs may interleave (documents are routed by their
    run_start, descriptor and resource uids).
    """

    def __init__(self, index: RunIndex):
        self.index = index
        self._runs: dict[str, _RunFile] = {}
        self._run_of: dict[str, str] = {}  # descriptor or resource uid -> run uid

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            try:
                self._runs[doc["uid"]] = _RunFile(self.index, doc)
            except RunAlreadyRecorded as already:
                warnings.warn(already, stacklevel=2)   # its documents are skipped below
            return
        if name in ("event", "event_page"):
            run = self._run_of.get(doc["descriptor"])
            if name == "event":
                name, doc = "event_page", event_model.pack_event_page(doc)
        elif name in ("datum", "datum_page"):
            run = self._run_of.get(doc["resource"])
            if name == "datum":
                name, doc = "datum_page", event_model.pack_datum_page(doc)
        else:
            run = doc.get("run_start")
        if run is None and len(self._runs) == 1:
            run = next(iter(self._runs))  # e.g. a resource without run_start: the one open run
        run_file = self._runs.get(run)
        if run_file is None:
            return  # a run whose start could not be recorded (already reported), or not ours
        if name in ("descriptor", "resource", "stream_resource"):
            self._run_of[doc["uid"]] = run
        if name == "stop":
            del self._runs[run]
            for key in [k for k, v in self._run_of.items() if v == run]:
                del self._run_of[key]
            run_file.stop(doc)
        else:
            run_file.write(name, doc)

    @property
    def directory(self) -> Path:
        return self.index.directory
