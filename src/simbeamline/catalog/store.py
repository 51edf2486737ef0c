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
    register_with_intake, writable_catalog_dir,
)
from ..control.config import BeamlineConfig  # noqa: E402
from .recording import record_runs  # noqa: E402,F401  (RE.subscribe through the index)


def open_catalog(config: BeamlineConfig) -> BeamlineCatalog:
    """The v2 catalog of *config*'s runs (created if new); raises CatalogDirError if unwritable."""
    directory = writable_catalog_dir(config)
    return BeamlineCatalog([str(directory / "*.msgpack")], name=config.catalog_name)


def open_db(config: BeamlineConfig, insert=None) -> BeamlineBroker:
    """The v1 ``Broker`` (``db``) of *config*'s catalog; ``db.v2`` is the v2 catalog.

    *insert*, if given, is what ``db.insert`` returns: a session passes the writer its
    RunEngine already records with, so that a tutorial's ``RE.subscribe(db.insert)``
    subscribes nothing new (bluesky subscribes a callable once) instead of a second
    writer of the same runs, which would fail each run at its start (the run file
    exists)."""
    db = open_catalog(config).v1
    if insert is not None:
        db.record_with(insert)
    return db
