"""Finding runs and reading their frames, for either databroker API.

Exporters and processing take whatever the user has at hand: a v1 ``Broker``
(``db``), a v2 catalog (``cat``), a v1 ``Header`` or a v2 ``BlueskyRun``. These
helpers turn them into v2 objects and read frames one event at a time, so a long
run never has to fit in memory.
"""

from __future__ import annotations

import numpy as np


class RunNotFoundError(LookupError):
    """No run matches what the user asked for."""


class AmbiguousRunError(RunNotFoundError, ValueError):
    """A scan_id or uid beginning names several runs (listed in the message)."""

    def __str__(self) -> str:  # KeyError-like classes would quote the message
        return str(self.args[0])


class FrameReadError(RuntimeError):
    """A run's frames cannot be read (missing field, missing or unreadable file)."""


def plain_doc(doc):
    """A plain dict/list copy of a document, nested mappings and lists included (arrays
    untouched): databroker v1 hands out read-only, self-referencing ``doct`` objects."""
    if isinstance(doc, dict):
        return {k: plain_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [plain_doc(v) for v in doc]
    return doc


def failing_file(err: BaseException | None) -> OSError | None:
    """The first OSError naming a file in *err*'s cause/context chain (None if there is none).

    Handlers and fillers wrap the OSError of a missing or unreadable file in their own
    exceptions; this finds it again so that messages can name the file.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.filename:
            return err
        err = err.__cause__ or err.__context__
    return None


def as_catalog(db):
    """The v2 catalog behind *db* (a v1 Broker or already a v2 catalog)."""
    return getattr(db, "v2", db)


def as_run(run_or_header):
    """The v2 ``BlueskyRun`` for a v1 Header or a v2 run."""
    for attribute in ("v2", "_data_source"):   # databroker 1.2's v1 Header: _data_source
        header_v2 = getattr(run_or_header, attribute, None)
        if header_v2 is not None:
            return header_v2
    return run_or_header


def parse_run_key(text: str | int):
    """A run key as typed: an int (scan_id, or negative index as in ``db[-1]``) or a uid."""
    if isinstance(text, int):
        return text
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        return text


def find_run(db, key):
    """The v2 run that *key* names in *db*: a uid (or its unique beginning), a
    scan_id, or a negative index counting back from the newest run."""
    catalog = as_catalog(db)
    parsed = parse_run_key(key)
    # digits may be a scan_id or the beginning of a uid: try the scan_id first
    attempts = [parsed] if not isinstance(parsed, int) or isinstance(key, int) else [parsed, str(key).strip()]
    if isinstance(parsed, int) and parsed < 0:
        attempts = [parsed]
    problems = []
    for attempt in attempts:
        try:
            return catalog[attempt]
        except AmbiguousRunError:
            raise
        except (KeyError, IndexError, ValueError) as err:
            problems.append(str(err).strip("'\""))
    detail = "; ".join(p for p in dict.fromkeys(problems) if p and p != str(parsed))
    raise RunNotFoundError(
        f"no run {str(key)!r} in the catalog{f' ({detail})' if detail else ''}: give a run "
        "uid (or its first characters), a scan_id, or a negative index such as -1 for the "
        "newest run"
    )


def run_fields(run, stream: str = "primary") -> dict:
    """The data keys of one stream of *run* (empty if the stream does not exist)."""
    for descriptor in run.metadata.get("descriptors", None) or _descriptors(run):
        if descriptor.get("name") == stream:
            return descriptor["data_keys"]
    return {}


def _descriptors(run):
    return [doc for name, doc in run.documents(fill="no") if name == "descriptor"]


def count_events(run, streams: str | set[str] | None = "primary") -> int:
    """How many events *streams* (a name, a set of names, or None for all) of *run*
    have: from the stop document's ``num_events`` when it covers them, otherwise
    counted from the documents without reading any frame (a run that never
    finished, or written by other software)."""
    if isinstance(streams, str):
        streams = {streams}
    counts = (run.metadata.get("stop") or {}).get("num_events") or {}
    if counts and (streams is None or all(s in counts for s in streams)):
        return sum(int(n) for s, n in counts.items() if streams is None or s in streams)
    descriptor_uids = set()
    total = 0
    for name, doc in run.documents(fill="no"):
        if name == "descriptor" and (streams is None or doc.get("name") in streams):
            descriptor_uids.add(doc["uid"])
        elif name == "event_page" and doc["descriptor"] in descriptor_uids:
            total += len(doc["seq_num"])
        elif name == "event" and doc["descriptor"] in descriptor_uids:
            total += 1
    return total


def image_fields(data_keys: dict) -> list[str]:
    """The fields of a stream that hold frames (2-D or more)."""
    return [key for key, dk in data_keys.items() if len(dk.get("shape") or ()) >= 2]


def default_image_field(run, stream: str = "primary") -> str:
    """The one image field of *stream*, or an error naming the candidates."""
    keys = run_fields(run, stream)
    images = image_fields(keys)
    if len(images) == 1:
        return images[0]
    uid = run.metadata["start"]["uid"]
    if not images:
        raise FrameReadError(
            f"run {uid[:8]} stream {stream!r} has no image field; its fields are: "
            f"{', '.join(sorted(keys)) or '(none)'}"
        )
    raise FrameReadError(
        f"run {uid[:8]} stream {stream!r} has several image fields "
        f"({', '.join(images)}): name one with --field"
    )


def iter_frames(run, field: str, stream: str = "primary"):
    """Yield ``(event, frame)`` for each event of *stream*, frames filled one at a time.

    Errors name the run, the field and the file that could not be read.
    """
    keys = run_fields(run, stream)
    uid = run.metadata["start"]["uid"]
    if field not in keys:
        raise FrameReadError(
            f"run {uid[:8]} has no field {field!r} in stream {stream!r}; its fields are: "
            f"{', '.join(sorted(keys)) or '(none)'}"
        )
    from event_model import unpack_event_page

    descriptor_uids = set()
    try:
        for name, doc in run.documents(fill="yes"):
            if name == "descriptor" and doc.get("name") == stream:
                descriptor_uids.add(doc["uid"])
            elif name == "event_page" and doc["descriptor"] in descriptor_uids:
                for event in unpack_event_page(doc):
                    yield event, np.asarray(event["data"][field])
            elif name == "event" and doc["descriptor"] in descriptor_uids:
                yield doc, np.asarray(doc["data"][field])
    except Exception as err:
        if not is_read_failure(err):
            raise
        raise FrameReadError(
            f"cannot read field {field!r} of run {uid[:8]}: {_describe(err)}"
        ) from err


def is_read_failure(err: BaseException) -> bool:
    """Whether *err* (raised while filling external data) means a frame could not be read:
    a missing or unreadable file, a missing resource or datum, a handler's complaint."""
    return isinstance(err, (OSError, ValueError, KeyError)) or type(err).__name__ in (
        "DataNotAccessible", "UnresolvableForeignKeyError", "EventModelError")


def _describe(err: BaseException) -> str:
    """The most useful line about *err*: the file that could not be read, if any."""
    failed = failing_file(err)
    if failed is not None:
        return f"file {failed.filename} cannot be read ({failed.strerror or failed})"
    return f"{type(err).__name__}: {err}"


def mean_frame(run, field: str, stream: str = "primary") -> tuple[np.ndarray, int, float]:
    """Mean of all frames of *field* in float64, the number of frames and their mean time."""
    total = None
    count = 0
    times = 0.0
    for event, frame in iter_frames(run, field, stream):
        total = frame.astype(np.float64) if total is None else total + frame
        times += event["time"]
        count += 1
    if count == 0:
        uid = run.metadata["start"]["uid"]
        raise FrameReadError(f"run {uid[:8]} has no frames of {field!r} in stream {stream!r}")
    return total / count, count, times / count
