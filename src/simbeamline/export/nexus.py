"""Export a run (or one stream of it) to one NeXus/HDF5 file with h5py.

Layout (NeXus base classes, so silx view, h5web and NeXus readers plot it at once)::

    /                       @default = "entry"
    /entry                  NXentry; the start document as attributes
                            (scalars as they are, others as JSON), @default = stream
    /entry/<stream>         NXdata, one per exported stream
        <field>             one dataset per data key, events along axis 0
        time, seq_num       per-event time (s since epoch) and sequence number
        @signal             the image field (or the first field)
        @configuration      the stream's configuration readings, as JSON
    /entry/@exit_status, @num_events, @stop_time   from the stop document

Like the frame exporters it is a document callback: live (``RE(plan, exporter)``,
datasets growing as events arrive) or on finished runs (``db.process``,
:func:`simbeamline.export.export_run`). When the run names a dark
(``dark_frame``), the dark is subtracted from *field* (in a wider dtype, no
wrap-around) and ``@dark_frame`` on the dataset says so.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

from .darks import subtract_dark
from .paths import TemplateError, export_root, render_path, template_fields
from .base import ExportError, RunExporter, json_safe, refuse_existing, temporary_sibling


def _attr_value(value):
    """An HDF5 attribute value: numbers and strings as they are, the rest as JSON."""
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    return json.dumps(json_safe(value))


class NexusExporter(RunExporter):
    """Write each run to one HDF5 file named by *template* (start fields only).

    Parameters
    ----------
    template : str
        File name, e.g. ``'{start.scan_id}.h5'``; relative to *directory*.
    field : str, optional
        The image field of *stream*: the NXdata signal, and where a dark is subtracted.
    streams : list of str, optional
        Streams to export (default: all).
    stream : str
        The stream that holds *field* (default ``'primary'``); the dark run's frames
        are read from the same stream.
    directory, overwrite, db, dark, require_dark, root_map
        As for :class:`simbeamline.export.base.FrameExporter`.
    compression : str, optional
        h5py compression of the image datasets (e.g. ``'gzip'``).

    A run that fails part way (a frame file missing, a dark of another shape, a
    field changing shape) leaves no file behind: the file is closed and removed, and
    the exception goes on. Files of earlier runs are untouched. With *overwrite*, the
    file is written under a temporary name in the same directory and renamed over the
    old one (``os.replace``) only at the stop document, so a failed run keeps the old file.
    """

    suffix = ".h5"

    def __init__(self, template: str, *, field: str | None = None, streams=None,
                 directory=None, overwrite: bool = False, db=None, dark="auto",
                 require_dark: bool = False, stream: str = "primary",
                 root_map: dict | None = None, compression: str | None = None):
        super().__init__(field=field, overwrite=overwrite, db=db, dark=dark,
                         require_dark=require_dark, stream=stream, root_map=root_map)
        self.root, self.template = export_root(template, directory)
        for name in template_fields(self.template):
            if not name.startswith("start"):
                raise TemplateError(
                    f"template field '{{{name}}}': an HDF5 file holds a whole run, so its "
                    "name can use start fields only (for example '{start.scan_id}.h5')"
                )
        self.streams = None if streams is None else set(streams)
        self.compression = compression
        self._file = None
        self._path = None       # the file's name once complete
        self._writing = None    # the name it is written under (a temporary one with overwrite)
        self._groups = {}

    def __call__(self, name, doc, validate=False):
        try:
            return super().__call__(name, doc, validate)
        except BaseException:
            self._discard()
            raise

    def _wanted(self, stream):
        return self.streams is None or stream in self.streams

    def start(self, doc):
        self._discard()         # a run that never stopped: its file is not complete
        self.written = []
        self._start = doc
        self._groups = {}       # descriptor uid -> (group, descriptor)
        path = render_path(self.template, self.root, doc)
        refuse_existing(path, self.overwrite)
        self._start_dark(doc)
        if self.dry_run:
            self.written.append(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        writing = temporary_sibling(path) if self.overwrite else path
        self._file = h5py.File(writing, "w-")   # never replaces: the rename does, when complete
        self._path, self._writing = path, writing
        self._file.attrs["default"] = "entry"
        self._file.attrs["creator"] = "simbeamline"
        entry = self._file.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        for key, value in doc.items():
            entry.attrs[key] = _attr_value(value)
        self._open_filler(doc)

    def descriptor(self, doc):
        if self._file is None:
            return
        self._forward("descriptor", doc)
        stream = doc.get("name", "primary")
        if not self._wanted(stream):
            return
        keys = doc["data_keys"]
        if stream == self.stream and self.field is not None:
            if self.field not in keys:
                raise ExportError(
                    f"field {self.field!r} is not in stream {self.stream!r} of run "
                    f"{self._start['uid'][:8]}; its fields are: {', '.join(sorted(keys))}"
                )
            self._check_dark_shape(keys)
        entry = self._file["entry"]
        group = entry.get(stream) or entry.create_group(stream)
        group.attrs["NX_class"] = "NXdata"
        if stream == self.stream or "default" not in entry.attrs:
            entry.attrs["default"] = stream  # the exporter's stream, whatever comes first
        signal = self.field if self.field in keys else next(
            (k for k, dk in keys.items() if len(dk.get("shape") or ()) >= 2), next(iter(keys), None))
        if signal is not None:
            group.attrs["signal"] = signal
        group.attrs["configuration"] = json.dumps(json_safe(
            {obj: cfg.get("data", {}) for obj, cfg in doc.get("configuration", {}).items()}))
        self._groups[doc["uid"]] = (group, doc)

    def event(self, doc):
        if self._file is None or doc["descriptor"] not in self._groups:
            return
        group, descriptor = self._groups[doc["descriptor"]]
        filled = self._fill_event(doc)
        row = dict(filled["data"])
        subtract = self._dark is not None and descriptor.get("name", "primary") == self.stream
        if subtract and self.field in row:
            row[self.field] = subtract_dark(np.asarray(row[self.field]), self._dark)
        row["time"] = doc["time"]
        row["seq_num"] = doc["seq_num"]
        for key, value in row.items():
            self._append(group, key, value, descriptor["data_keys"].get(key),
                         dark_uid=self._dark_uid if subtract and key == self.field else None)

    def _append(self, group, key, value, data_key, dark_uid=None):
        value = np.asarray(value)
        if value.dtype.kind == "U":
            value = value.astype(h5py.string_dtype())
        dataset = group.get(key)
        if dataset is None:
            chunks = (1, *value.shape) if value.ndim else True
            dataset = group.create_dataset(
                key, shape=(0, *value.shape), maxshape=(None, *value.shape),
                dtype=value.dtype, chunks=chunks,
                compression=self.compression if value.ndim >= 2 else None)
            if data_key:
                for attr in ("source", "units", "precision"):
                    if data_key.get(attr) is not None:
                        dataset.attrs[attr] = data_key[attr]
            if dark_uid is not None:
                dataset.attrs["dark_frame"] = dark_uid
        if dataset.shape[1:] != value.shape:
            raise ExportError(
                f"field {key!r} changed shape from {dataset.shape[1:]} to {value.shape} "
                "within one stream: it cannot be stacked into one dataset"
            )
        n = dataset.shape[0]
        dataset.resize(n + 1, axis=0)
        dataset[n] = value

    def stop(self, doc):
        if self._file is not None:
            entry = self._file["entry"]
            entry.attrs["exit_status"] = doc.get("exit_status", "")
            entry.attrs["stop_time"] = doc.get("time", 0.0)
            entry.attrs["num_events"] = json.dumps(json_safe(doc.get("num_events", {})))
            self._close()
            if self._writing != self._path:
                os.replace(self._writing, self._path)
            self._writing = None
            self.written.append(self._path)
        self._close()

    def _failure_note(self) -> str:
        return (" (the run's unfinished HDF5 file was removed"
                + ("; the file it was to replace is untouched)" if self.overwrite else ")"))

    def _close(self):
        self._close_filler()
        self._dark = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _discard(self):
        """Close and remove the file of the run being written (after a failure); with
        overwrite that is the temporary file, and the old file stays."""
        path = self._writing   # None once the run's file is complete (or never opened)
        self._groups = {}
        try:
            self._close()
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
            self._writing = None
