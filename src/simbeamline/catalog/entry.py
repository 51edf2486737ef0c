"""``databroker.catalog["simbeamline"]`` and ``Broker.named("simbeamline")`` in any
process, with nothing set up first.

pyproject.toml registers :data:`catalog` of this module as the ``simbeamline``
entry point of the ``intake.catalogs`` group, which intake's ``EntrypointsCatalog``
lists; it is the first part of both ``databroker.catalog`` and ``intake.cat`` (where
``Broker.named`` looks after databroker's v0 config files), so it is found before
any YAML of the same name. Reading the entry loads the attribute. It is built on each access, by the module
``__getattr__`` below, from the configured data directory (SIMBEAMLINE_DATA_DIR,
else the default ``~/.local/share/simbeamline``), so a fresh shell needs no
environment variable, no ``import simbeamline`` and no file written anywhere, and
each access sees the runs written since.

The catalog classes are imported on access, through :mod:`simbeamline.catalog.store`
(databroker first, then :mod:`simbeamline.catalog.driver`), never when this
module is imported: see catalog.driver's docstring on the circular import.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name != "catalog":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .store import BeamlineCatalog
    from .paths import SHIPPED_NAME

    return BeamlineCatalog(name=SHIPPED_NAME)  # no paths: the configured data directory's
