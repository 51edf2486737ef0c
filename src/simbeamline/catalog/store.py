"""The beamline's persistent run catalog: databroker 1.2.x msgpack files on local disk.

Every run is one ``<uid>.msgpack`` file under ``<data_dir>/catalog``; the spot
cameras' frames are ``.npy`` files under ``<data_dir>/frames`` that the runs'
Resource/Datum documents point to (spec ``NPY_SEQ``, read by ophyd's registered
handler, so no handler code of ours). Runs survive restarts, and the catalog is
reachable by name from any process (``databroker.catalog["simbeamline"]``,
``Broker.named("simbeamline")``) through the package's ``intake.catalogs`` entry
point (:mod:`simbeamline.catalog.entry`), and, once :mod:`simbeamline` is imported,
also through the intake YAML shipped in ``simbeamline/catalog/intake``.
"""

from __future__ import annotations

from ..lean_imports import databroker_without_setuptools

# first: importing databroker loads our YAML, which imports catalog.driver
databroker_without_setuptools()

from .driver import (  # noqa: E402,F401  (the catalog's public API)
    BeamlineBroker, BeamlineCatalog, FrameFileMissing, UnknownFieldError, check_fields,
)
from .paths import (  # noqa: E402,F401
    SHIPPED_NAME, CatalogDirError, catalog_dir, check_writable, frames_dir,
    register_with_intake,
)
from ..control.config import BeamlineConfig  # noqa: E402


def open_catalog(config: BeamlineConfig) -> BeamlineCatalog:
    """The v2 catalog of *config*'s runs (created if new); raises CatalogDirError if unwritable."""
    directory = check_writable(catalog_dir(config))
    check_writable(frames_dir(config), "frame directory")
    return BeamlineCatalog([str(directory / "*.msgpack")], name=config.catalog_name)


def open_db(config: BeamlineConfig) -> BeamlineBroker:
    """The v1 ``Broker`` (``db``) of *config*'s catalog; ``db.v2`` is the v2 catalog."""
    return open_catalog(config).v1


def last_scan_id(catalog) -> int:
    """The highest scan_id of *catalog*'s runs (0 if it has none)."""
    return getattr(catalog, "v2", catalog).index.highest_scan_id()


class CatalogScanIds:
    """A RunEngine's ``scan_id_source`` that takes each scan_id from the catalog's index:
    one more than any run of the catalog, whichever process wrote it, so sessions counting
    into one catalog at once never share a scan_id.

    A scan_id the user sets (``RE.md['scan_id'] = 100``) is honoured: the next one is
    above it. One handed out to a run that could not be recorded is given back.
    """

    def __init__(self, catalog, last: int):
        self._catalog = catalog
        self._last = last

    def __call__(self, md) -> int:
        asked = int(md.get("scan_id") or 0)
        # RE.md keeps the last scan_id handed out, even one given back: not a floor then
        self._last = self._catalog.allocate_scan_id(0 if asked == self._last else asked)
        return self._last


def record_runs(RE, db) -> None:
    """Store every document *RE* emits in *db*, its scan_ids allocated by the catalog."""
    last = last_scan_id(db)
    RE.md["scan_id"] = last
    RE.scan_id_source = CatalogScanIds(getattr(db, "v2", db), last)
    RE.subscribe(db.insert)
