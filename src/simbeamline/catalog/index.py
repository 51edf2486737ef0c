"""The catalog's index: one small SQLite file beside the run files.

It lets the catalog find a run by scan_id, uid or recency, and record a run, without
reading every run file (each costs a few indexed rows, whatever the catalog's size),
and it hands out scan_ids atomically to every process that writes into the catalog
(SQLite's file lock serialises them), so two sessions counting at once never share one.

The run files stay the truth: the index holds each file's start and stop documents,
size, modification time and state (see :mod:`.runfile`), and :func:`sync` brings it
level with the directory (new, changed, vanished files; writers that died). A missing
or unreadable index is rebuilt from the files; ``simbeamline catalog check --repair``
rebuilds it too. No databroker import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sqlite3
import time
import warnings
from pathlib import Path

from . import runfile

INDEX_NAME = ".runs-index.sqlite"
#: Listed states: a run file the catalog shows (damaged and empty ones are skipped).
LISTED = (runfile.COMPLETE, runfile.OPEN, runfile.INCOMPLETE)
_LISTED_SQL = "state IN ('complete', 'open', 'incomplete')"
_SCHEMA = 1
#: A scan_id handed out to a run whose start document never came (a process killed in
#: between) is given back after this many seconds.
RESERVATION_LIFETIME = 600.0


class CatalogFileWarning(UserWarning):
    """A run file of the catalog is damaged, empty or incomplete."""


class IndexWriteError(OSError):
    """The index could not be written (disk full, read-only directory)."""

    def __str__(self) -> str:
        return str(self.args[0])


def this_writer() -> str:
    """This process, as the index records the writer of a run: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def writer_alive(writer: str | None) -> bool:
    """Whether *writer* (``host:pid``) may still be writing: a live process of this host,
    or any process of another host (which cannot be checked from here)."""
    if not writer:
        return False
    host, _, pid = writer.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


@dataclasses.dataclass(frozen=True)
class IndexedRun:
    """One run file as the index knows it."""

    file: str
    uid: str | None
    scan_id: int | None
    time: float | None
    state: str
    problem: str | None
    writer: str | None
    version: int
    start_blob: bytes | None
    stop_blob: bytes | None

    @property
    def start(self) -> dict | None:
        return runfile.unpack(self.start_blob)

    @property
    def stop(self) -> dict | None:
        return runfile.unpack(self.stop_blob)

    def describe(self) -> str:
        """One line naming the run: uid, scan_id, time and plan."""
        start = self.start or {}
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time)) if self.time else "?"
        return (f"{self.uid} (scan_id {self.scan_id}, {when}, "
                f"{start.get('plan_name', 'unknown plan')}, {self.state})")


_TABLES = """
    DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS reservations;
    CREATE TABLE runs (
        file TEXT PRIMARY KEY, uid TEXT, scan_id INTEGER, time REAL,
        state TEXT NOT NULL, problem TEXT, writer TEXT,
        size INTEGER, mtime_ns INTEGER, version INTEGER NOT NULL DEFAULT 0,
        start BLOB, stop BLOB);
    CREATE INDEX runs_uid ON runs (uid);
    CREATE INDEX runs_scan_id ON runs (scan_id);
    CREATE INDEX runs_time ON runs (time);
    CREATE TABLE reservations (scan_id INTEGER PRIMARY KEY, writer TEXT, time REAL)
"""
_COLUMNS = "file, uid, scan_id, time, state, problem, writer, version, start, stop"


class RunIndex:
    """The index of the run files in *directory* (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / INDEX_NAME
        self._db = self._connect()

    # -- opening ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            return self._open(self.path)
        except sqlite3.DatabaseError as err:
            if not self.path.exists() or not os.access(self.directory, os.W_OK):
                # a catalog one may read but not write: an index in memory, rebuilt per open
                return self._open(":memory:")
            aside = self.path.with_name(f"{INDEX_NAME}.bad-{time.strftime('%Y%m%dT%H%M%S')}")
            os.replace(self.path, aside)
            warnings.warn(CatalogFileWarning(
                f"the catalog index {self.path} could not be read ({err}); it was moved to "
                f"{aside.name} and is rebuilt from the run files"), stacklevel=3)
            return self._open(self.path)

    @staticmethod
    def _open(path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), timeout=60, isolation_level=None,
                             check_same_thread=False)
        # The default (rollback) journal: a reader creates no file (WAL would), so reading a
        # catalog leaves its directory untouched. No fsync: the index is rebuilt from the run
        # files whenever it is lost or out of date, and SQLite's locks, not fsync, keep the
        # scan_ids of concurrent writers apart.
        db.execute("PRAGMA synchronous = OFF")
        if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA:
            with _transaction(db):  # another process may have created it meanwhile: ask again
                if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA:
                    for statement in _TABLES.split(";"):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {_SCHEMA}")
        return db

    def close(self) -> None:
        self._db.close()

    # -- scan_ids -----------------------------------------------------------------------
    def allocate_scan_id(self, at_least: int = 0) -> int:
        """The next scan_id: one more than any run or pending run of the catalog (and than
        *at_least*, a scan_id the caller already reached), reserved until
        :meth:`record_start` or :meth:`release_scan_id`."""
        now = time.time()
        try:
            with _transaction(self._db, immediate=True):
                self._expire_reservations(now)
                highest = self._db.execute(
                    "SELECT max(coalesce((SELECT max(scan_id) FROM runs), 0),"
                    " coalesce((SELECT max(scan_id) FROM reservations), 0))").fetchone()[0]
                scan_id = max(int(highest or 0), int(at_least or 0)) + 1
                self._db.execute("INSERT OR REPLACE INTO reservations VALUES (?, ?, ?)",
                                 (scan_id, this_writer(), now))
        except sqlite3.OperationalError as err:
            full = "full" in str(err)
            raise IndexWriteError(
                f"cannot allocate a scan_id in the catalog {self.directory}: "
                + ("no space left on device (disk full)" if full else str(err))
                + ". Nothing was recorded; free some space or choose another data directory "
                "(SIMBEAMLINE_DATA_DIR), then run the plan again.") from err
        return scan_id

    def release_scan_id(self, scan_id: int) -> None:
        """Give back a scan_id whose run could not be recorded."""
        with _transaction(self._db):
            self._db.execute("DELETE FROM reservations WHERE scan_id = ? AND writer = ?",
                             (scan_id, this_writer()))

    def _expire_reservations(self, now: float) -> None:
        for scan_id, writer, when in self._db.execute(
                "SELECT scan_id, writer, time FROM reservations").fetchall():
            if not writer_alive(writer) or now - when > RESERVATION_LIFETIME:
                self._db.execute("DELETE FROM reservations WHERE scan_id = ?", (scan_id,))

    def highest_scan_id(self) -> int:
        row = self._db.execute(f"SELECT max(scan_id) FROM runs WHERE {_LISTED_SQL}").fetchone()
        return int(row[0] or 0)

    # -- recording ----------------------------------------------------------------------
    def record_start(self, file: str, start: dict, size: int, mtime_ns: int) -> None:
        """A run file was created with *start* in it (by this process, still writing)."""
        with _transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO runs (file, uid, scan_id, time, state, writer, size,"
                " mtime_ns, version, start) VALUES (?, ?, ?, ?, 'open', ?, ?, ?,"
                " coalesce((SELECT version FROM runs WHERE file = ?), 0) + 1, ?)",
                (file, start["uid"], _int(start.get("scan_id")), start.get("time"),
                 this_writer(), size, mtime_ns, file, runfile.pack(start)))
            if start.get("scan_id") is not None:
                self._db.execute("DELETE FROM reservations WHERE scan_id = ? AND writer = ?",
                                 (_int(start["scan_id"]), this_writer()))

    def record_stop(self, file: str, stop: dict, size: int, mtime_ns: int) -> None:
        """The run of *file* ended with *stop*, its file closed at *size* bytes."""
        with _transaction(self._db):
            self._db.execute(
                "UPDATE runs SET state = 'complete', problem = NULL, writer = NULL, size = ?,"
                " mtime_ns = ?, stop = ?, version = version + 1 WHERE file = ?",
                (size, mtime_ns, runfile.pack(stop), file))

    def record_report(self, report: runfile.FileReport, writer: str | None = None,
                      known: IndexedRun | None = None) -> None:
        """Record what reading a file found. A damaged file's start and stop stay as the
        index had them (they are what a repair puts back)."""
        start = report.start or (known.start if known else None)
        stop = report.stop if report.state != runfile.DAMAGED else (
            report.stop or (known.stop if known else None))
        with _transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO runs (file, uid, scan_id, time, state, problem, writer,"
                " size, mtime_ns, version, start, stop) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " coalesce((SELECT version FROM runs WHERE file = ?), 0) + 1, ?, ?)",
                (report.path.name, (start or {}).get("uid"), _int((start or {}).get("scan_id")),
                 (start or {}).get("time"), report.state, report.problem,
                 writer if report.state == runfile.OPEN else None,
                 report.size, report.mtime_ns, report.path.name,
                 None if start is None else runfile.pack(start),
                 None if stop is None else runfile.pack(stop)))

    def forget(self, file: str) -> None:
        with _transaction(self._db):
            self._db.execute("DELETE FROM runs WHERE file = ?", (file,))

    # -- finding ------------------------------------------------------------------------
    def _runs(self, where: str, args=(), tail: str = "") -> list[IndexedRun]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM runs WHERE {where} {tail}", args)
        return [IndexedRun(*row) for row in rows.fetchall()]

    def by_file(self, file: str) -> IndexedRun | None:
        found = self._runs("file = ?", (file,))
        return found[0] if found else None

    def by_uid(self, uid: str) -> list[IndexedRun]:
        return self._runs("uid = ?", (uid,))

    def by_uid_prefix(self, prefix: str, limit: int = 20) -> list[IndexedRun]:
        """Runs whose uid starts with *prefix* (any state), through the uid index."""
        return self._runs("uid >= ? AND uid < ?", (prefix, prefix + "\U0010ffff"),
                          f"ORDER BY time DESC LIMIT {int(limit)}")

    def by_scan_id(self, scan_id: int) -> list[IndexedRun]:
        """Runs with this scan_id (any state), newest first."""
        return self._runs("scan_id = ?", (int(scan_id),), "ORDER BY time DESC")

    def newest(self, n: int) -> IndexedRun | None:
        """The *n*-th newest listed run (n = 1 is the newest)."""
        found = self._runs(_LISTED_SQL, (), f"ORDER BY time DESC LIMIT 1 OFFSET {int(n) - 1}")
        return found[0] if found else None

    def count(self) -> int:
        return self._db.execute(f"SELECT count(*) FROM runs WHERE {_LISTED_SQL}").fetchone()[0]

    def uids(self) -> list[str]:
        """The uids of the listed runs, oldest first."""
        return [row[0] for row in self._db.execute(
            f"SELECT uid FROM runs WHERE {_LISTED_SQL} ORDER BY time").fetchall()]

    def listed(self) -> list[IndexedRun]:
        return self._runs(_LISTED_SQL, (), "ORDER BY time")

    def all(self) -> list[IndexedRun]:
        return self._runs("1", (), "ORDER BY file")

    def shared_scan_ids(self) -> list[tuple[int, int]]:
        """``(scan_id, number of runs)`` for each scan_id that several listed runs share."""
        return self._db.execute(
            f"SELECT scan_id, count(*) FROM runs WHERE {_LISTED_SQL} AND scan_id IS NOT NULL"
            " GROUP BY scan_id HAVING count(*) > 1 ORDER BY scan_id").fetchall()

    def problems(self) -> list[IndexedRun]:
        """Damaged, empty and incomplete files."""
        return self._runs("state IN ('damaged', 'empty', 'incomplete')", (), "ORDER BY file")

    def file_states(self) -> dict[str, tuple]:
        """``file -> (size, mtime_ns, state, writer)`` for every indexed file."""
        return {row[0]: row[1:] for row in self._db.execute(
            "SELECT file, size, mtime_ns, state, writer FROM runs").fetchall()}


def sync(index: RunIndex, full: bool = False) -> list[runfile.FileReport]:
    """Bring *index* level with its directory; return the reports of the files read.

    A file is read when the index does not know it, when its size or modification time
    changed since the index recorded it, or when its writer died without a stop
    document; with *full*, every file is read (``catalog check``). Cost: one ``stat``
    per file, plus reading those files.
    """
    known = index.file_states()
    seen = set()
    reports = []
    with os.scandir(index.directory) as entries:
        for entry in entries:
            if not entry.name.endswith(".msgpack") or not entry.is_file():
                continue
            seen.add(entry.name)
            stat = entry.stat()
            row = known.get(entry.name)
            if not full and row is not None:
                size, mtime_ns, state, writer = row
                if state == runfile.OPEN and writer_alive(writer):
                    continue  # being written: growing is what it should do
                if ((size, mtime_ns) == (stat.st_size, stat.st_mtime_ns)
                        and state != runfile.OPEN):
                    continue
            writer = row[3] if row is not None else None
            try:
                report = runfile.scan(entry.path, writer_alive=writer_alive(writer))
            except FileNotFoundError:
                continue
            index.record_report(report, writer, index.by_file(entry.name) if row else None)
            reports.append(report)
    for file in set(known) - seen:
        index.forget(file)
    return reports


def warn_about_problems(index: RunIndex, stacklevel: int = 2) -> None:
    """One warning per damaged, empty or incomplete file of *index*, naming it and the way out."""
    for row in index.problems():
        what = ("is listed, marked incomplete" if row.state == runfile.INCOMPLETE
                else "cannot be read and is skipped (not listed)")
        warnings.warn(CatalogFileWarning(
            f"run file {index.directory / row.file} {what}: {row.problem}. "
            "`simbeamline catalog check --repair` repairs it, keeping the original bytes."),
            stacklevel=stacklevel + 1)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection, immediate: bool = True):
    db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
            db.execute("ROLLBACK")
        raise


def _int(value) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
