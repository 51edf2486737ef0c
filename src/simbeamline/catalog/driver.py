"""The catalog's databroker classes: the intake driver and its v1 Broker.

The shipped intake YAML names :class:`BeamlineCatalog` as its driver, and intake
imports it while databroker itself is being imported; so this module is imported
through :mod:`simbeamline.catalog.store`, which imports databroker first (importing this
module first would make that import circular).

:class:`BeamlineBroker` is databroker's own v1 ``Broker`` whose ``get_documents``
(behind ``h.data``, ``h.events`` and ``h.table``) and headers differ from the stock
ones in four ways:

- an unknown field raises :class:`UnknownFieldError` listing the fields that exist
  (stock databroker yields nothing);
- filled events are plain dicts, filled one at a time and only for the fields
  asked for, so ``for im in h.data('spot_img')`` holds one frame at a time (stock
  databroker fills five events ahead, fills images even for ``h.data('I')``, and
  wraps events in self-referencing ``doct`` objects that only the cyclic garbage
  collector frees: measured 40 MB peak for 100 frames of 1.2 MB);
- ``h.data(field)`` checks the field at once and returns :class:`FieldData`, a lazy
  iterator that ``np.stack`` accepts (numpy 2 refuses plain generators);
- a frame file deleted behind the catalog's back raises :class:`FrameFileMissing`
  naming that file; the run's other frames stay readable.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path

import event_model

from databroker._drivers.msgpack import BlueskyMsgpackCatalog
from databroker.core import Entry
from databroker.v1 import ALL, Broker, Header, Results, _ensure_list
from mongoquery import Query

from . import runfile
from .compat import quiet_dataset_dims
from .lazy import lazy_handler_registry
from .index import LISTED, CatalogFileWarning, RunIndex, sync, warn_about_problems
from .paths import configured_catalog_dir
from .runs import AmbiguousRunError, failing_file, plain_doc
from .writer import CatalogWriter


quiet_dataset_dims()

#: How often the filler retries a frame file that is not (yet) there, in seconds.
RETRY_INTERVALS = (0.05, 0.2)


class UnknownFieldError(KeyError):
    """A field asked of a run (``h.data('nope')``) is not one of its data keys."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


class FrameFileMissing(FileNotFoundError):
    """A frame file that a run's Datum points to is gone or unreadable."""

    def __str__(self) -> str:
        return str(self.args[0])


def _stream_fields(header, stream_name) -> set[str]:
    """Data keys and configuration keys of one stream (every stream for ALL)."""
    fields: set[str] = set()
    for descriptor in header.descriptors:
        if stream_name is not ALL and descriptor.get("name", "primary") != stream_name:
            continue
        fields.update(descriptor["data_keys"])
        for obj in descriptor.get("configuration", {}).values():
            fields.update(obj.get("data", {}))
    return fields


def check_fields(header, stream_name, fields) -> None:
    """Raise UnknownFieldError if a field (name or regex, as v1 allows) matches no data key."""
    if not header.descriptors:
        return
    known = _stream_fields(header, stream_name)
    unknown = []
    for field in fields:
        try:
            pattern = re.compile(field)
        except re.error:
            pattern = re.compile(re.escape(field))
        if field not in known and not any(pattern.fullmatch(k) for k in known):
            unknown.append(field)
    if unknown:
        streams = sorted({d.get("name", "primary") for d in header.descriptors})
        where = "any stream" if stream_name is ALL else f"stream {stream_name!r}"
        raise UnknownFieldError(
            f"run {header.start['uid'][:8]} (scan_id {header.start.get('scan_id')}) has no "
            f"field {', '.join(map(repr, unknown))} in {where}; its fields are: "
            f"{', '.join(sorted(known)) or '(none)'}"
            + (f" (streams: {', '.join(streams)})" if len(streams) > 1 else "")
        )


class FieldData(Iterator):
    """The values of one field of a run, read lazily, one event at a time.

    Behaves like the generator stock databroker returns from ``h.data`` (``next``,
    unpacking, ``list``, ``zip``, ``for`` hold one value at a time) and is also a
    sequence to numpy 2, which refuses plain generators: ``np.stack(h.data(...))``.
    numpy iterates its argument twice (``tuple(arrays)`` to dispatch, then a list to
    stack), so until ``next()`` is first called each iteration is a pass over the
    run, and a pass while every value of the previous complete pass is still alive
    (held by numpy's tuple) hands out those same arrays instead of reading the files
    again: ``np.stack`` then holds one copy of the frames plus its result, as it does
    for a list of ``np.load``s (re-reading would hold a third copy). After ``next()``
    iteration continues where it stopped, as a generator's does. Indexing
    (``h.data('spot_img')[3]``) reads from a fresh pass.
    """

    def __init__(self, header, field: str, stream_name: str = "primary", fill: bool = True):
        self._args = (header, field, stream_name, fill)
        self._cursor = self._fresh()  # generators start work only on first next()
        self._started = False
        self._last_pass: list | None = None  # weak references to the last complete pass

    def _pass(self):
        """One pass over the values: the previous pass's objects while they all live, else read."""
        if self._last_pass is not None:
            values = [ref() for ref in self._last_pass]
            if all(value is not None for value in values):
                yield from values
                return
        refs: list | None = []
        for value in self._fresh():
            try:
                if refs is not None:
                    refs.append(weakref.ref(value))
            except TypeError:  # a plain number: nothing to share, nothing saved by sharing
                refs = None
            yield value
            del value
        if refs is not None:
            self._last_pass = refs

    def _fresh(self, skip: int = 0):
        """A new pass over the values from the *skip*-th on (earlier events are not filled)."""
        header, field, stream_name, fill = self._args
        if not fill or skip == 0:
            events = header.events(stream_name=stream_name, fields=[field], fill=fill)
        else:
            events = (doc for name, doc in header.db.filled_documents(
                header, stream_name, [field], fill_from=skip) if name == "event")
        return (event["data"][field] for event in itertools.islice(events, skip, None))

    def _count(self) -> int:
        header, field, stream_name, _ = self._args
        return sum(1 for _ in header.events(stream_name=stream_name, fields=[field]))

    def __iter__(self):
        return self._cursor if self._started else self._pass()

    def __next__(self):
        self._started = True
        return next(self._cursor)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count()))]
        index = int(index)
        if index < 0:
            index += self._count()
        try:
            if index < 0:
                raise StopIteration
            return next(self._fresh(skip=index))
        except StopIteration:
            raise IndexError(f"{self._args[1]!r} has no value {index}") from None

    def __repr__(self) -> str:
        header, field, stream_name, _ = self._args
        return (f"<values of {field!r} in stream {stream_name!r} of run "
                f"{header.start['uid'][:8]}: iterate, next(), list() or np.stack()>")


class BeamlineHeader(Header):
    """databroker's v1 Header whose ``data`` checks the field and returns :class:`FieldData`."""

    def data(self, field, stream_name="primary", fill=True):
        check_fields(self, stream_name, [field])
        return FieldData(self, field, stream_name, fill)


class BeamlineResults(Results):
    """Search results (``db(plan_name='count')``) as :class:`BeamlineHeader`."""

    def __iter__(self):
        for header in super().__iter__():
            yield BeamlineHeader(header._data_source)


class Insert:
    """``db.insert``: records each document it is called with into *broker*'s catalog.

    A callable object rather than a bound method because bluesky's RunEngine keeps only
    a weak reference to the instance behind a bound method it is subscribed to, and
    drops the subscription, silently, once that instance is garbage-collected. A Broker
    and its catalog refer to each other, so a Broker nobody else holds
    (``RE.subscribe(open_db(config).insert)``,
    ``RE.subscribe(databroker.catalog["simbeamline"].v1.insert)``) lived only until the
    next cyclic garbage collection: the runs after it were lost without a word, and when
    that came depended on how much else the process allocated (issue 10: a Tiled client
    in the same process made it come within the first hundred runs). The RunEngine
    holds a callable object strongly, so the Broker lives as long as the subscription.
    """

    def __init__(self, broker: "BeamlineBroker"):
        self._broker = broker

    def __call__(self, name, doc):
        self._broker._serializer(name, doc)

    def __repr__(self) -> str:
        return f"<insert into the catalog {self._broker.v2._directory}>"


class BeamlineBroker(Broker):
    """databroker's v1 Broker with a lazy, one-frame-at-a-time, explicit get_documents.

    See the module docstring for what differs from the stock one, and why.
    """

    def __getitem__(self, key):
        found = super().__getitem__(key)  # lists come back through this method
        if isinstance(found, Header) and not isinstance(found, BeamlineHeader):
            return BeamlineHeader(found._data_source)
        return found

    def __call__(self, text_search=None, **kwargs):
        results = super().__call__(text_search, **kwargs)
        results.__class__ = BeamlineResults  # same state, headers of our class
        return results

    @property
    def insert(self) -> "Insert":
        """Record one document of a RunEngine's run (``RE.subscribe(db.insert)``).

        The catalog's writer records the run in the catalog's index as it goes, so unlike
        databroker's, this does not re-read the catalog after each run. It is an
        :class:`Insert` that holds this Broker, not a bound method: see :class:`Insert`
        for why."""
        try:
            return self.__insert
        except AttributeError:
            self.__insert = Insert(self)
            return self.__insert

    def record_with(self, insert) -> None:
        """Make *insert* what :attr:`insert` returns (see :func:`.store.open_db`)."""
        self.__insert = insert

    def get_documents(self, headers, stream_name=ALL, fields=None, fill=False,
                      handler_registry=None):
        headers = _ensure_list(headers)
        if fields is not None:
            for header in headers:
                check_fields(header, stream_name, fields)
        if not fill or handler_registry is not None:  # (the stock one refuses a registry)
            yield from super().get_documents(headers, stream_name=stream_name, fields=fields,
                                             fill=fill, handler_registry=handler_registry)
            return
        for header in headers:
            yield from self.filled_documents(header, stream_name, fields)

    def filled_documents(self, header, stream_name=ALL, fields=None, fill_from: int = 0):
        """One run's documents with its events filled one at a time, as plain dicts,
        except the first *fill_from* events, which pass through unfilled."""
        catalog = self.v2
        seen = 0
        with event_model.Filler(catalog._handler_registry, inplace=True,
                                root_map=catalog._root_map,
                                retry_intervals=RETRY_INTERVALS) as filler:
            for name, doc in super().get_documents([header], stream_name=stream_name,
                                                   fields=fields, fill=False):
                if name != "event":
                    filler(name, plain_doc(doc))
                    yield name, doc
                    continue
                seen += 1
                if seen <= fill_from:
                    yield name, doc
                    continue
                event = plain_doc(doc)
                # the fields filter left only the fields asked for; fill only those
                event["filled"] = {k: v for k, v in event.get("filled", {}).items()
                                   if k in event["data"]}
                try:
                    filler("event", event)
                except event_model.DataNotAccessible as err:
                    failed = failing_file(err)
                    path = failed.filename if failed is not None else "(unknown file)"
                    raise FrameFileMissing(
                        f"frame file {path} of run {header.start['uid'][:8]} "
                        f"(event {event.get('seq_num')}) is missing or unreadable: "
                        "it was moved or deleted after the run. Restore it to read "
                        "this frame; the run's other frames are still readable."
                    ) from None
                yield name, event


class IndexedEntries(Mapping):
    """The catalog's entries (uid -> intake Entry), read from its index when asked for.

    intake's hook for large catalogs (``_make_entries_container``): nothing is built for
    a run nobody asks about, so opening and looking up cost the same at 10 or 10,000 runs.
    """

    def __init__(self, catalog: "BeamlineCatalog"):
        self._catalog = catalog
        self._built: dict = {}   # uid -> (index version, Entry)

    def __iter__(self):
        return iter(self._catalog._listed_uids())

    def __len__(self):
        return self._catalog._count()

    def __contains__(self, uid):
        return self._catalog._listed_row(uid) is not None

    def __getitem__(self, uid):
        row = self._catalog._listed_row(uid)
        if row is None:
            raise KeyError(uid)
        return self.entry(row)

    def __setitem__(self, uid, entry):  # intake's Catalog.__setitem__; kept until reload
        self._built[uid] = (None, entry)

    def pop(self, uid, *default):
        return self._built.pop(uid, *default)

    def entry(self, row) -> Entry:
        version, built = self._built.get(row.uid, (None, None))
        if built is not None and (version is None or version == row.version):
            return built
        built = self._catalog._build_entry(row)
        self._built[row.uid] = (row.version, built)
        return built


class BeamlineCatalog(BlueskyMsgpackCatalog):
    """databroker's msgpack catalog, kept in an index, whose v1 accessor is :class:`BeamlineBroker`.

    The intake YAML names this class as its driver, and the ``intake.catalogs``
    entry point builds one, so ``databroker.catalog[name]`` gives it too.

    With no *paths* (None or empty, as the shipped YAML gives) the runs are
    ``<data_dir>/catalog/*.msgpack``; with no *data_dir* either (the YAML's
    ``{{ env('SIMBEAMLINE_DATA_DIR') }}`` in a fresh shell), the configured data
    directory's: SIMBEAMLINE_DATA_DIR, else ``~/.local/share/simbeamline``.

    Unlike databroker's, it finds runs through the catalog's :class:`~.index.RunIndex`
    (no re-reading of every file on lookup or insert) and it survives damaged files:
    a file that cannot be read is skipped with a warning naming it, a run cut short is
    listed but marked incomplete (``run.metadata['incomplete']`` says why, and getting
    it warns), and a scan_id or uid beginning shared by several runs is an
    :class:`~.runs.AmbiguousRunError` listing them, never one picked silently.
    """

    name = "simbeamline-msgpack-catalog"

    def __init__(self, paths=None, *, data_dir=None, **kwargs):
        if isinstance(paths, (str, Path)):
            paths = [str(paths)]
        if not paths or not any(paths):
            paths = [str(configured_catalog_dir(data_dir) / "*.msgpack")]
        directories = {os.path.dirname(os.path.abspath(p)) for p in paths}
        if len(directories) != 1 or any(os.path.basename(p) != "*.msgpack" for p in paths):
            raise ValueError(f"{type(self).__name__} reads one directory's *.msgpack run "
                             f"files; got paths {paths}")
        self._directory = Path(directories.pop())
        self._index = None  # opened by the first _load
        if kwargs.get("handler_registry") is None:  # loaded when a frame is first read
            kwargs["handler_registry"] = lazy_handler_registry()

        self._matched = None
        super().__init__(paths, **kwargs)

    # -- loading: the index, brought level with the directory once per catalog -----------
    def _make_entries_container(self):
        return IndexedEntries(self)

    def _load(self):
        if self._index is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            self._index = RunIndex(self._directory)
            sync(self._index)
            warn_about_problems(self._index, stacklevel=6)
        if self._query:  # search results: which listed runs match, newest last
            query = Query(self._query)
            self._matched = {row.uid: row for row in self._index.listed()
                             if query.match(row.start)}

    @property
    def index(self) -> RunIndex:
        return self._index

    def _listed_uids(self) -> list[str]:
        return list(self._matched) if self._matched is not None else self._index.uids()

    def _count(self) -> int:
        return len(self._matched) if self._matched is not None else self._index.count()

    def _listed(self, rows):
        rows = [row for row in rows if row.state in LISTED]
        if self._matched is not None:
            rows = [row for row in rows if row.uid in self._matched]
        return rows

    def _listed_row(self, uid):
        rows = self._listed(self._index.by_uid(uid))
        return rows[0] if rows else None

    def _build_entry(self, row) -> Entry:
        metadata = {"start": row.start, "stop": row.stop}
        if row.state == runfile.INCOMPLETE:
            metadata["incomplete"] = row.problem
        return Entry(
            name=row.uid, description={}, driver="databroker.core.BlueskyRunFromGenerator",
            direct_access="forbid",
            args={"gen_func": runfile.iter_documents,
                  "gen_args": (str(self._directory / row.file),), "gen_kwargs": {},
                  "get_filler": self._get_filler, "transforms": self._transforms},
            cache=None, parameters=[], metadata=metadata, catalog_dir=None,
            getenv=True, getshell=True, catalog=self)

    # -- lookups: a scan_id, a uid (or its beginning), a negative index -----------------
    def __getitem__(self, name):
        row = self._find(name)
        if row.state == runfile.INCOMPLETE:
            warnings.warn(CatalogFileWarning(
                f"run {row.uid[:8]} (scan_id {row.scan_id}, file {self._directory / row.file}) "
                f"is incomplete: {row.problem}"), stacklevel=2)
        return self._entries.entry(row).get()  # a BlueskyRun

    def _find(self, name):
        try:
            n = int(name)
        except (ValueError, TypeError):
            return self._find_uid(str(name))
        if n < 0:
            if self._matched is not None:
                rows = list(self._matched.values())
                if -n > len(rows):
                    raise IndexError(f"Catalog only contains {len(rows)} runs.")
                return rows[n]
            row = self._index.newest(-n)
            if row is None:
                raise IndexError(f"Catalog only contains {self._index.count()} runs.")
            return row
        every = self._index.by_scan_id(n)
        rows = self._listed(every)
        if len(rows) > 1:
            raise AmbiguousRunError(
                f"scan_id {n} matches {len(rows)} runs of the catalog {self._directory}:\n"
                + "\n".join(f"  {row.describe()}" for row in rows)
                + "\ngive a uid (or its first characters) to pick one")
        if not rows:
            if isinstance(name, str) and len(name) >= 3:   # a uid may begin with digits only
                try:
                    return self._find_uid(name)
                except KeyError:
                    pass
            raise KeyError(f"No run with scan_id={n}" + self._unreadable_note(every))
        return rows[0]

    def _find_uid(self, name):
        every = self._index.by_uid(name) or self._index.by_uid_prefix(name)
        rows = self._listed(every)
        if len(rows) > 1:
            raise AmbiguousRunError(
                f"Multiple matches to partial uid {name!r}:\n"
                + "\n".join(f"  {row.describe()}" for row in rows))
        if not rows:
            raise KeyError(name + self._unreadable_note(every))
        return rows[0]

    def _unreadable_note(self, rows) -> str:
        bad = [row for row in rows if row.state not in LISTED]
        return "".join(
            f" (run file {self._directory / row.file} cannot be read: {row.problem}; "
            "`simbeamline catalog check --repair` recovers what it can)" for row in bad)

    def __len__(self):
        return self._count()

    def _get_serializer(self):
        "What ``Broker.insert`` (``RE.subscribe(db.insert)``) calls with each document."
        return CatalogWriter(self._index)

    def allocate_scan_id(self, at_least: int = 0) -> int:
        """A scan_id no other run or session of this catalog has (see RunIndex)."""
        return self._index.allocate_scan_id(at_least)

    @property
    def v1(self):
        if not hasattr(self, "_Broker__v1"):
            self._Broker__v1 = BeamlineBroker(self)
        return self._Broker__v1
