"""Recording a RunEngine's runs into a beamline's catalog, without databroker.

Every document goes to the run's file through :class:`.writer.CatalogWriter`, which
also records the run's start and stop in the catalog's :class:`.index.RunIndex`; each
run's scan_id comes from that index, so sessions counting into one catalog at once
never share one. Neither needs databroker: a session records its runs from its first
plan and imports databroker only when it first reads one (:mod:`.on_first_use`).
"""

from __future__ import annotations

from ..control.config import BeamlineConfig
from .index import RunIndex, sync
from .paths import writable_catalog_dir
from .writer import CatalogWriter


def open_index(config: BeamlineConfig) -> RunIndex:
    """The index of *config*'s catalog, level with its run files (the catalog and frame
    directories are created if new); raises CatalogDirError if either is unwritable.

    Damaged run files are reported when the catalog itself is opened (the first read),
    not here."""
    index = RunIndex(writable_catalog_dir(config))
    sync(index)
    return index


class CatalogScanIds:
    """A RunEngine's ``scan_id_source`` that takes each scan_id from the catalog's index:
    one more than any run of the catalog, whichever process wrote it, so sessions counting
    into one catalog at once never share a scan_id.

    A scan_id the user sets (``RE.md['scan_id'] = 100``) is honoured: the next one is
    above it. One handed out to a run that could not be recorded is given back.
    """

    def __init__(self, index: RunIndex, last: int):
        self._index = index
        self._last = last

    def __call__(self, md) -> int:
        asked = int(md.get("scan_id") or 0)
        # RE.md keeps the last scan_id handed out, even one given back: not a floor then
        self._last = self._index.allocate_scan_id(0 if asked == self._last else asked)
        return self._last


def index_of(catalog) -> RunIndex:
    """The :class:`~.index.RunIndex` of *catalog*: the index itself, its
    :class:`~.writer.CatalogWriter`, a catalog (``cat``) or its v1 Broker (``db``)."""
    if isinstance(catalog, RunIndex):
        return catalog
    if isinstance(catalog, CatalogWriter):
        return catalog.index
    return getattr(catalog, "v2", catalog).index


def record_runs(RE, catalog) -> None:
    """Store every document *RE* emits in *catalog* (a :class:`~.index.RunIndex`, its
    :class:`~.writer.CatalogWriter`, ``cat`` or ``db``), its scan_ids allocated by the
    catalog's index (continuing its highest). Given a writer, *RE* is subscribed to that
    writer itself (a session hands the same one to its ``db.insert``)."""
    index = index_of(catalog)
    last = index.highest_scan_id()
    RE.md["scan_id"] = last
    RE.scan_id_source = CatalogScanIds(index, last)
    RE.subscribe(catalog if isinstance(catalog, CatalogWriter) else CatalogWriter(index))
