"""Frame files and their Resource/Datum documents: how a camera's frames enter a run.

A frame is written as ``<data_dir>/frames/<day>/<resource uid>_<n>.npy``, atomically,
and described by one Resource per staging and one Datum per frame in ophyd's
``NPY_SEQ`` spec, which ophyd itself registers as a databroker handler
(``ophyd.sim.NumpySeqHandler``, entry point ``databroker.handlers``): reading frames
back (``fill=True``, ``h.data(...)``) needs no handler code of ours.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
import time
import uuid
from collections import deque
from pathlib import Path

import numpy as np

#: The spec of the frame files' Resource documents (ophyd.sim.NumpySeqHandler reads it).
FRAME_SPEC = "NPY_SEQ"


def write_npy(file, frame: np.ndarray) -> None:
    """Write C-contiguous *frame* to the open binary *file* as the bytes ``np.save``
    writes, the values straight from the array's memory (no copy). Through Python's
    own file writes, so a full disk raises OSError with its errno (numpy's
    ``tofile``, under ``np.save`` to a file, raises one without it)."""
    np.lib.format.write_array_header_1_0(
        file, np.lib.format.header_data_from_array_1_0(frame))
    file.write(frame.data.cast("B"))


class FrameStore:
    """Write frames as ``<root>/<resource_path>_<n>.npy`` and make their documents.

    One Resource per staging (per run); one Datum per frame, its id
    ``<resource uid>/<n>``. ``root`` is the data directory, so a moved data
    directory is read back with databroker's ``root_map``.

    Documents not collected when a new Resource starts belong to a run that ended
    without collecting them (aborted between ``trigger()`` and ``read()``): they are
    dropped, never emitted in the next run. A frame whose save fails leaves no
    ``.part`` file.
    """

    def __init__(self, root: Path, subdir: str = "frames"):
        self.root = Path(root)
        self.subdir = subdir
        self._docs: deque = deque()
        self._resource_uid: str | None = None
        self._resource_path: str | None = None
        self._counter = itertools.count()
        self._lock = threading.Lock()   # acquisitions run in threads of their own

    def new_resource(self) -> None:
        """Start a new Resource: the next frame is index 0 of a new file series.

        Documents of the previous Resource still waiting to be collected are dropped.
        """
        uid = str(uuid.uuid4())
        day = time.strftime("%Y/%m/%d")
        resource_path = f"{self.subdir}/{day}/{uid}"
        (self.root / resource_path).parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._docs.clear()
            self._resource_uid = uid
            self._resource_path = resource_path
            self._counter = itertools.count()
            self._docs.append(("resource", {
                "spec": FRAME_SPEC,
                "root": str(self.root),
                "resource_path": resource_path,
                "resource_kwargs": {},
                "path_semantics": "posix",
                "uid": uid,
            }))

    def restart_resource(self) -> None:
        """Start a new Resource if one is open (the RunEngine paused or suspended).

        The RunEngine then drops the event it was bundling and takes the point again,
        and the Resource and Datum documents already collected for that event are
        dropped with it; a Resource of its own makes the retaken frames' events
        point at documents that are emitted.
        """
        if self._resource_uid is not None:
            self.new_resource()

    def close_resource(self) -> None:
        """End the current Resource; the next write starts a new one."""
        with self._lock:
            self._resource_uid = None

    def write(self, frame: np.ndarray) -> str:
        """Save *frame* (atomically: no reader sees half a file); return its datum id.

        If the save fails (disk full, ...), the partial file is removed and the error
        raised.
        """
        if self._resource_uid is None:
            self.new_resource()
        with self._lock:
            uid, resource_path, index = self._resource_uid, self._resource_path, next(self._counter)
        path = self.root / f"{resource_path}_{index}.npy"
        partial = path.with_name(path.name + ".part")
        frame = np.ascontiguousarray(frame)
        try:
            with open(partial, "wb") as file:
                write_npy(file, frame)
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC and not exc.filename:   # name the directory
                raise OSError(exc.errno, exc.strerror, str(partial.parent)) from exc
            raise
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        datum_id = f"{uid}/{index}"
        with self._lock:
            if uid == self._resource_uid:   # else its run has ended: nobody will collect it
                self._docs.append(("datum", {
                    "resource": uid,
                    "datum_kwargs": {"index": index},
                    "datum_id": datum_id,
                }))
        return datum_id

    def collect_asset_docs(self):
        """Yield and forget the Resource/Datum documents made since the last call."""
        while True:
            with self._lock:
                if not self._docs:
                    return
                doc = self._docs.popleft()
            yield doc
