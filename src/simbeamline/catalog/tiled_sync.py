"""Bring Tiled level with the embedded catalog, and prove both hold the same runs.

:func:`sync` replays every embedded run that Tiled lacks (or holds only partly: no stop
document, as when the server died mid-run) through the same ``TiledWriter`` a session
uses, frame files registered as external data. It is idempotent, and it is also how an
existing msgpack catalog is migrated (runs without the beamline's identity get this
beamline's). :func:`check` compares run by run: start and stop documents, each stream's
descriptor, and every field's values, frames included, read through the server.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ..control.config import BeamlineConfig
from .tiled import TiledKeyError, _reason, connect, identity, tiled_writer

#: Descriptor keys compared (the stream node's metadata in Tiled is the descriptor).
DESCRIPTOR_KEYS = ("uid", "time", "data_keys", "configuration", "hints", "object_classes")


class SyncError(RuntimeError):
    """Tiled cannot be reached, or the embedded catalog cannot be read."""


@dataclasses.dataclass
class SyncReport:
    copied: int = 0      #: runs Tiled did not have
    replaced: int = 0    #: runs Tiled had without their stop document (rewritten)
    present: int = 0     #: runs already complete in Tiled


def _open(config: BeamlineConfig, role: str):
    """The embedded v2 catalog and a Tiled client (*role* key)."""
    import httpx

    from .store import open_catalog

    try:
        client = connect(config, role=role)
    except (TiledKeyError, httpx.HTTPError, OSError) as err:
        raise SyncError(f"cannot reach Tiled: {err}") from None
    return open_catalog(config), client


def _runs(catalog, scan_ids):
    """(uid, run) of the embedded catalog, oldest first, optionally only some scan_ids."""
    runs = [(uid, catalog[uid]) for uid in list(catalog)]
    runs.sort(key=lambda item: item[1].metadata["start"]["time"])
    for uid, run in runs:
        if scan_ids and run.metadata["start"].get("scan_id") not in scan_ids:
            continue
        yield uid, run


def _tiled_run(client, uid: str):
    try:
        return client[uid]
    except KeyError:
        return None


def _with_identity(config: BeamlineConfig):
    """Start-document patch: this beamline's identity where a migrated run has none."""
    def patch(doc: dict) -> dict:
        return {**identity(config), **doc}
    return patch


def copy_run(client, run, config: BeamlineConfig) -> None:
    """Replay one embedded run's documents into Tiled."""
    writer = tiled_writer(client, patches={"start": _with_identity(config)})
    for name, doc in run.documents(fill="no"):
        writer(name, doc.to_dict() if hasattr(doc, "to_dict") else doc)  # databroker's are read-only


def sync(config: BeamlineConfig, *, scan_ids=None,
         progress: Callable[[str], None] | None = None) -> SyncReport:
    """Copy every embedded run missing (or partial) in Tiled; return what was done."""
    catalog, client = _open(config, "writer")
    report = SyncReport()
    for uid, run in _runs(catalog, scan_ids):
        node = _tiled_run(client, uid)
        if node is not None and node.metadata.get("stop") is not None:
            report.present += 1
            continue
        if node is not None:
            # partial (the writer stopped mid-run): rewrite it whole; the frame files
            # are external to Tiled and are never deleted by it
            client.delete_contents(uid, recursive=True, external_only=False)
            report.replaced += 1
        else:
            report.copied += 1
        copy_run(client, run, config)
        if progress:
            scan_id = run.metadata["start"].get("scan_id")
            progress(f"{uid[:8]}  scan {scan_id}: {'replaced' if node is not None else 'copied'}")
    return report


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return a == b


def compare_run(run, node) -> list[str]:
    """What differs between an embedded run and its Tiled copy ([] if nothing)."""
    if node is None:
        return ["missing in Tiled"]
    problems = []
    start, stop = run.metadata["start"], run.metadata["stop"]
    tiled_start = dict(node.metadata.get("start") or {})
    extra = set(tiled_start) - set(start)
    if {k: tiled_start[k] for k in start if k in tiled_start} != dict(start) or \
            extra - {"beamline_prefix", "beamline_name"}:
        problems.append("start document differs")
    if node.metadata.get("stop") is None:
        problems.append("no stop document in Tiled (partial run)")
    elif dict(node.metadata["stop"]) != dict(stop or {}):
        problems.append("stop document differs")
    streams, tiled_streams = set(run), set(node)
    if streams != tiled_streams:
        problems.append(f"streams {sorted(streams)} in the embedded catalog, "
                        f"{sorted(tiled_streams)} in Tiled")
    for stream in sorted(streams & tiled_streams):
        problems += compare_stream(run[stream], node[stream], stream)
    return problems


def compare_stream(stream, tiled_stream, name: str) -> list[str]:
    """Descriptor and values (frames filled) of one stream, embedded vs Tiled."""
    problems = []
    descriptor = stream.metadata["descriptors"][0]
    tiled_descriptor = tiled_stream.metadata
    for key in DESCRIPTOR_KEYS:
        if not _same_json(descriptor.get(key), _without_added(tiled_descriptor.get(key),
                                                              descriptor.get(key))):
            problems.append(f"{name}: descriptor {key} differs")
    data = stream.read()
    try:
        tiled_data = tiled_stream.read()   # the whole stream, frames included, in one go
    except Exception as err:  # the server could not read it (a missing file, ...)
        return problems + [f"{name}: unreadable in Tiled ({_reason(err)})"]
    for field in list(data.data_vars) + ["time"]:
        if field not in tiled_data.variables:
            problems.append(f"{name}/{field}: missing in Tiled")
        elif not _same(data[field].values, tiled_data[field].values):
            problems.append(f"{name}/{field}: values differ")
    return problems


#: Keys TiledWriter's normaliser adds to data keys that lack them (dtype from the data).
ADDED_BY_TILED = {"dtype_numpy"}


def _without_added(tiled, embedded):
    """*tiled* less the keys Tiled's writer added where *embedded* has none."""
    if isinstance(tiled, dict) and isinstance(embedded, dict):
        return {k: _without_added(v, embedded.get(k)) for k, v in tiled.items()
                if k in embedded or k not in ADDED_BY_TILED}
    return tiled


def _same_json(a, b) -> bool:
    """Equal as JSON values (tuples and lists alike, None and {} alike)."""
    import json

    def norm(value):
        return json.loads(json.dumps(value or {}, sort_keys=True, default=str))
    return norm(a) == norm(b)


def check(config: BeamlineConfig, *, scan_ids=None) -> dict[str, tuple[int, list[str]]]:
    """Per embedded run: ``uid -> (scan_id, problems)``, problems empty when the same."""
    catalog, client = _open(config, "reader")
    return {uid: (int(run.metadata["start"].get("scan_id") or 0),
                  compare_run(run, _tiled_run(client, uid)))
            for uid, run in _runs(catalog, scan_ids)}
