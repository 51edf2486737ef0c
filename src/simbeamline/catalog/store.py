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

import databroker  # noqa: F401  first: importing it loads our YAML, which imports catalog.driver

from .driver import (  # noqa: F401  (the catalog's public API)
    BeamlineBroker, BeamlineCatalog, FrameFileMissing, UnknownFieldError, check_fields,
)
from .paths import (  # noqa: F401
    SHIPPED_NAME, CatalogDirError, catalog_dir, check_writable, frames_dir,
    register_with_intake,
)
import warnings

from ..control.config import BeamlineConfig


def open_catalog(config: BeamlineConfig) -> BeamlineCatalog:
    """The v2 catalog of *config*'s runs (created if new); raises CatalogDirError if unwritable."""
    directory = check_writable(catalog_dir(config))
    check_writable(frames_dir(config), "frame directory")
    return BeamlineCatalog([str(directory / "*.msgpack")], name=config.catalog_name)


def open_db(config: BeamlineConfig) -> BeamlineBroker:
    """The v1 ``Broker`` (``db``) of *config*'s catalog; ``db.v2`` is the v2 catalog."""
    return open_catalog(config).v1


def last_scan_id(catalog) -> int:
    """The scan_id of the newest run in *catalog* (0 if it has none)."""
    catalog = getattr(catalog, "v2", catalog)
    try:
        run = catalog[-1]
    except (IndexError, KeyError, ValueError):
        return 0
    return int(run.metadata["start"].get("scan_id") or 0)


def record_runs(RE, db) -> None:
    """Store every document *RE* emits in *db*, continuing *db*'s scan_id across sessions."""
    RE.md["scan_id"] = last_scan_id(db)
    # databroker 1.2 marks Broker.insert pending deprecation; it is the documented way to
    # store a RunEngine's documents in a v1 catalog (the APS example does the same)
    warnings.filterwarnings("ignore", "The method Broker.insert", PendingDeprecationWarning)
    RE.subscribe(db.insert)
