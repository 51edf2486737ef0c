"""The catalog's databroker classes: the intake driver and its v1 Broker.

The shipped intake YAML names :class:`BeamlineCatalog` as its driver, and intake
imports it while databroker itself is being imported; so this module is imported
through :mod:`simbeamline.catalog`, which imports databroker first (importing this
module first would make that import circular).

:class:`BeamlineBroker` is databroker's own v1 ``Broker`` with one method replaced,
``get_documents``, which behind ``h.data``, ``h.events`` and ``h.table`` does three
things the stock one does not:

- an unknown field raises :class:`UnknownFieldError` listing the fields that exist
  (stock databroker yields nothing);
- filled events are plain dicts, filled one at a time and only for the fields
  asked for, so ``for im in h.data('spot_img')`` holds one frame at a time (stock
  databroker fills five events ahead, fills images even for ``h.data('I')``, and
  wraps events in self-referencing ``doct`` objects that only the cyclic garbage
  collector frees: measured 40 MB peak for 100 frames of 1.2 MB);
- a frame file deleted behind the catalog's back raises :class:`FrameFileMissing`
  naming that file; the run's other frames stay readable.
"""

from __future__ import annotations

import re

import event_model
from databroker._drivers.msgpack import BlueskyMsgpackCatalog
from databroker.v1 import ALL, Broker, _ensure_list


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


def _plain(doc):
    """A plain dict/list copy of a document (databroker wraps them in doct objects)."""
    if isinstance(doc, dict):
        return {k: _plain(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_plain(v) for v in doc]
    return doc


def _missing_file(err: BaseException) -> str | None:
    """The file name of the first OSError in *err*'s cause chain."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.filename:
            return str(err.filename)
        err = err.__cause__ or err.__context__
    return None


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


class BeamlineBroker(Broker):
    """databroker's v1 Broker with a lazy, one-frame-at-a-time, explicit get_documents.

    See the module docstring for what differs from the stock one, and why.
    """

    def get_documents(self, headers, stream_name=ALL, fields=None, fill=False,
                      handler_registry=None):
        headers = _ensure_list(headers)
        if fields is not None:
            for header in headers:
                check_fields(header, stream_name, fields)
        parent = super().get_documents
        if not fill:
            yield from parent(headers, stream_name=stream_name, fields=fields,
                              fill=False, handler_registry=handler_registry)
            return
        catalog = self.v2
        for header in headers:
            with event_model.Filler(catalog._handler_registry, inplace=True,
                                    root_map=catalog._root_map,
                                    retry_intervals=RETRY_INTERVALS) as filler:
                for name, doc in parent([header], stream_name=stream_name, fields=fields,
                                        fill=False, handler_registry=handler_registry):
                    if name != "event":
                        filler(name, _plain(doc))
                        yield name, doc
                        continue
                    event = _plain(doc)
                    # the fields filter left only the fields asked for; fill only those
                    event["filled"] = {k: v for k, v in event.get("filled", {}).items()
                                       if k in event["data"]}
                    try:
                        filler("event", event)
                    except event_model.DataNotAccessible as err:
                        path = _missing_file(err) or "(unknown file)"
                        raise FrameFileMissing(
                            f"frame file {path} of run {header.start['uid'][:8]} "
                            f"(event {event.get('seq_num')}) is missing or unreadable: "
                            "it was moved or deleted after the run. Restore it to read "
                            "this frame; the run's other frames are still readable."
                        ) from None
                    yield name, event


class BeamlineCatalog(BlueskyMsgpackCatalog):
    """databroker's msgpack catalog whose v1 accessor is :class:`BeamlineBroker`.

    The intake YAML names this class as its driver, so ``databroker.catalog[name]``
    gives it too.
    """

    name = "simbeamline-msgpack-catalog"

    @property
    def v1(self):
        if not hasattr(self, "_Broker__v1"):
            self._Broker__v1 = BeamlineBroker(self)
        return self._Broker__v1
