"""Where the run catalog lives, and making it reachable by name through intake.

Kept apart from :mod:`simbeamline.catalog` (which imports databroker) because
``import simbeamline`` runs :func:`register_with_intake` before intake is imported:
intake reads INTAKE_PATH once, at import.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .config import BeamlineConfig

#: The folder of the shipped intake YAML(s); put on INTAKE_PATH by :func:`register_with_intake`.
CATALOGS_DIR = Path(__file__).resolve().parent / "catalogs"
#: The catalog name the shipped YAML defines.
SHIPPED_NAME = "simbeamline"


class CatalogDirError(RuntimeError):
    """The catalog or frame directory cannot be created or written."""


def catalog_dir(config: BeamlineConfig) -> Path:
    """Where the run (msgpack) files live."""
    return config.data_dir / "catalog"


def frames_dir(config: BeamlineConfig) -> Path:
    """Where the spot cameras' frame files live (inside ``data_dir``, the Resources' root)."""
    return config.data_dir / "frames"


def check_writable(directory: Path, what: str = "catalog directory") -> Path:
    """Create *directory* if needed and prove a file can be written there; else raise CatalogDirError."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CatalogDirError(
            f"the {what} {directory} is not writable ({err.strerror or err}): choose a "
            "writable folder with SIMBEAMLINE_DATA_DIR=/some/folder (or `simbeamline "
            "--data-dir /some/folder ...`), or fix its permissions"
        ) from None
    return directory


def _yaml_for(name: str, directory: Path) -> str:
    return (
        "sources:\n"
        f"  {name}:\n"
        f"    description: \"simbeamline runs in {directory}\"\n"
        "    driver: simbeamline.catalog_driver.BeamlineCatalog\n"
        "    args:\n"
        f"      paths: [\"{directory}/*.msgpack\"]\n"
    )


def register_with_intake(config: BeamlineConfig | None = None) -> None:
    """Make the catalog reachable by name (``databroker.catalog[name]``, ``Broker.named``).

    Puts the shipped YAML's folder on INTAKE_PATH and sets SIMBEAMLINE_DATA_DIR (which
    the YAML reads) when unset. intake reads INTAKE_PATH when it is first imported, so
    this runs from ``import simbeamline``; if intake is already imported its search
    path is extended too (``databroker.catalog``, built when databroker is imported,
    then needs a fresh process, but ``Broker.named`` sees it). A catalog name other
    than the shipped one gets a generated YAML under ``<run_dir>/intake``.
    """
    config = config or BeamlineConfig.from_env()
    os.environ.setdefault("SIMBEAMLINE_DATA_DIR", str(config.data_dir))
    folders = [str(CATALOGS_DIR)]
    if config.catalog_name != SHIPPED_NAME:
        generated = config.run_dir / "intake"
        try:
            generated.mkdir(parents=True, exist_ok=True)
            (generated / f"{config.catalog_name}.yml").write_text(
                _yaml_for(config.catalog_name, catalog_dir(config)))
            folders.append(str(generated))
        except OSError:
            pass  # reported by open_catalog's directory checks when the catalog is used
    current = [p for p in os.environ.get("INTAKE_PATH", "").split(os.pathsep) if p]
    os.environ["INTAKE_PATH"] = os.pathsep.join(current + [f for f in folders if f not in current])
    if "intake" in sys.modules:
        import intake

        paths = intake.config.conf.setdefault("catalog_path", [])
        paths.extend(f for f in folders if f not in paths)
