"""One run file (``<uid>.msgpack``): writing it, and reading it back whatever state it is in.

A run file is a sequence of msgpack ``[name, document]`` pairs, as suitcase-msgpack
writes them and databroker's msgpack catalog reads them. This module reads one
tolerantly: it says whether the file is complete, was cut short (truncated, or its
writer died before the stop document) or holds bytes that do not decode (damaged), and
where; :func:`recover_documents` gets back every document that still decodes, also
after a damaged one. No databroker import: the ``catalog check`` command uses it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import msgpack
import msgpack_numpy

#: As databroker's msgpack driver reads run files.
UNPACK_OPTIONS = dict(object_hook=msgpack_numpy.decode, raw=False, max_buffer_size=1_000_000_000)

#: The document names a run file may hold.
DOCUMENT_NAMES = ("start", "descriptor", "event", "event_page", "resource", "datum",
                  "datum_page", "stream_resource", "stream_datum", "stop")

#: Errors msgpack (or msgpack_numpy's decoder) raises on bytes that are not what was written.
DECODE_ERRORS = (ValueError, TypeError, KeyError, msgpack.UnpackException, RecursionError)

#: How a pair starts on disk: a 2-element array, then the name as a msgpack string.
_PAIR_MARKERS = tuple(b"\x92" + msgpack.packb(name) for name in DOCUMENT_NAMES)

# The states of a run file.
COMPLETE = "complete"      # start ... stop, every byte decodes
OPEN = "open"              # no stop yet, its writer still running
INCOMPLETE = "incomplete"  # no stop and its writer gone, or cut mid-document: listed, marked
DAMAGED = "damaged"        # bytes that do not decode: not listed until repaired
EMPTY = "empty"            # no document at all: not listed


class RunFileDamaged(OSError):
    """A run file holds bytes that do not decode as documents."""

    def __str__(self) -> str:
        return str(self.args[0])


def encode(name: str, doc: dict) -> bytes:
    """One ``[name, document]`` pair as suitcase-msgpack writes it (numpy arrays included)."""
    return msgpack.packb((name, doc), default=msgpack_numpy.encode, use_bin_type=True)


def pack(value) -> bytes:
    return msgpack.packb(value, default=msgpack_numpy.encode, use_bin_type=True)


def unpack(data: bytes | None):
    return None if data is None else msgpack.unpackb(
        data, object_hook=msgpack_numpy.decode, raw=False)


@dataclasses.dataclass
class FileReport:
    """What reading one run file found."""

    path: Path
    size: int
    mtime_ns: int
    state: str
    start: dict | None = None
    stop: dict | None = None
    documents: int = 0
    #: Offset just after the last document that decoded.
    good_end: int = 0
    #: What is wrong, in words (None for a complete or open file).
    problem: str | None = None

    @property
    def listed(self) -> bool:
        """Whether the catalog lists this run (damaged and empty files are skipped)."""
        return self.state in (COMPLETE, OPEN, INCOMPLETE)


def _pairs(file, start: int = 0):
    """Yield ``(name, doc, end_offset)`` from *start*; raise DECODE_ERRORS on bad bytes or
    RunFileDamaged on something that is not a document pair. Stops quietly at the end of
    the data, also in the middle of a pair (the caller compares the offset with the size)."""
    file.seek(start)
    unpacker = msgpack.Unpacker(file, **UNPACK_OPTIONS)
    for item in unpacker:
        end = start + unpacker.tell()
        if (not isinstance(item, (list, tuple)) or len(item) != 2
                or item[0] not in DOCUMENT_NAMES or not isinstance(item[1], dict)):
            raise RunFileDamaged(f"not a [name, document] pair ({type(item).__name__})")
        yield item[0], item[1], end


def iter_documents(path: str | os.PathLike):
    """The documents of a run file, in order; stops at the end of what was written (a file
    cut short ends early) and raises RunFileDamaged, naming the file and offset, at bytes
    that do not decode. databroker reads the catalog's runs through this."""
    offset = 0
    with open(path, "rb") as file:
        try:
            for name, doc, offset in _pairs(file):
                yield name, doc
        except DECODE_ERRORS + (RunFileDamaged,) as err:
            raise RunFileDamaged(
                f"run file {path} is damaged at byte {offset} ({type(err).__name__}: {err}): "
                "the documents after it cannot be read. Run `simbeamline catalog check "
                "--repair` to recover what can be read (the original is kept)."
            ) from None


def scan(path: str | os.PathLike, writer_alive: bool = False) -> FileReport:
    """Read a whole run file and say what state it is in (see the module constants).

    *writer_alive*: the process writing it is still running, so no stop document yet is
    normal (OPEN), not a sign of a crash (INCOMPLETE).
    """
    path = Path(path)
    stat = path.stat()
    report = FileReport(path, stat.st_size, stat.st_mtime_ns, COMPLETE)
    if stat.st_size == 0:
        report.state, report.problem = EMPTY, "empty file (no document: a run that was never recorded)"
        return report
    with open(path, "rb") as file:
        try:
            for name, doc, end in _pairs(file):
                if report.documents == 0 and name != "start":
                    raise RunFileDamaged(f"first document is a {name!r}, not a 'start'")
                if name == "start":
                    report.start = report.start or doc
                elif name == "stop":
                    report.stop = doc
                report.documents += 1
                report.good_end = end
        except DECODE_ERRORS + (RunFileDamaged,) as err:
            report.state = DAMAGED
            report.problem = (f"bytes that do not decode at byte {report.good_end} of "
                              f"{report.size} ({type(err).__name__}: {err})")
            return report
    if report.documents == 0:
        report.state = DAMAGED
        report.problem = f"no complete document in its {report.size} bytes"
    elif report.good_end < report.size and report.stop is not None:
        report.state = DAMAGED
        report.problem = (f"{report.size - report.good_end} bytes after its stop document that "
                          "are not a whole document")
    elif report.good_end < report.size:
        report.state = OPEN if writer_alive else INCOMPLETE
        report.problem = (f"cut short: ends in the middle of a document at byte {report.good_end} "
                          f"of {report.size}; the documents after it and the stop document are "
                          "missing")
        if writer_alive:
            report.problem = None
    elif report.stop is None:
        report.state = OPEN if writer_alive else INCOMPLETE
        if not writer_alive:
            report.problem = ("no stop document: the session writing it ended before the run "
                              "did (crash, kill, or a file cut at a document boundary)")
    return report


def recover_documents(path: str | os.PathLike) -> tuple[list[tuple[str, dict]], list[tuple[int, int]]]:
    """Every document of *path* that still decodes, in order, and the byte ranges lost.

    After bad bytes, reading resumes at the next place where a document pair starts and
    decodes (a one-byte error costs the one document it falls in).
    """
    data = Path(path).read_bytes()
    docs: list[tuple[str, dict]] = []
    lost: list[tuple[int, int]] = []
    offset = 0
    import io

    while offset < len(data):
        file = io.BytesIO(data)
        try:
            for name, doc, end in _pairs(file, offset):
                docs.append((name, doc))
                offset = end
            if offset < len(data):  # cut short: the tail is an incomplete pair
                lost.append((offset, len(data)))
            break
        except DECODE_ERRORS + (RunFileDamaged,):
            resume = _next_pair(data, offset + 1)
            lost.append((offset, resume))
            offset = resume
    return docs, lost


def _next_pair(data: bytes, start: int) -> int:
    """The offset of the next document pair at or after *start* that decodes (len(data) if none)."""
    while True:
        found = [i for i in (data.find(marker, start) for marker in _PAIR_MARKERS) if i >= 0]
        if not found:
            return len(data)
        candidate = min(found)
        unpacker = msgpack.Unpacker(**UNPACK_OPTIONS)
        unpacker.feed(data[candidate:])
        try:
            item = next(unpacker)
            if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], dict):
                return candidate
        except (StopIteration,) + DECODE_ERRORS:
            pass
        start = candidate + 1
