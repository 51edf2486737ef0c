"""Where the run catalog lives, and making it reachable by name through intake.

Kept apart from :mod:`simbeamline.catalog.store` (which imports databroker) because
``import simbeamline`` runs :func:`register_with_intake` before intake is imported:
intake reads INTAKE_PATH once, at import.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ..control.config import BeamlineConfig

#: The folder of the shipped intake YAML(s); put on INTAKE_PATH by :func:`register_with_intake`.
CATALOGS_DIR = Path(__file__).resolve().parent / "intake"
#: The catalog name the shipped YAML defines.
SHIPPED_NAME = "simbeamline"


class CatalogDirError(RuntimeError):
    """The catalog or frame directory cannot be created or written."""


def catalog_dir(config: BeamlineConfig) -> Path:
    """Where the run (msgpack) files live."""
    return config.data_dir / "catalog"


def configured_catalog_dir(data_dir: str | Path | None = None) -> Path:
    """The catalog directory of *data_dir*, or, if that is None or empty, of the
    configured data directory: SIMBEAMLINE_DATA_DIR, else the default
    (``~/.local/share/simbeamline``), as :meth:`BeamlineConfig.from_env` reads it.

    Only that variable is read, so a bad SIMBEAMLINE_PREFIX or _CA_PORT (reported
    when a session starts) does not stop anyone reading the runs.
    """
    if not data_dir:
        value = os.environ.get("SIMBEAMLINE_DATA_DIR")
        data_dir = BeamlineConfig.from_env({"SIMBEAMLINE_DATA_DIR": value} if value else {}).data_dir
    return catalog_dir(BeamlineConfig(data_dir=Path(data_dir).expanduser()))


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


def writable_catalog_dir(config: BeamlineConfig) -> Path:
    """*config*'s catalog directory, it and the frame directory created if new and proved
    writable; raises CatalogDirError naming the one that is not."""
    directory = check_writable(catalog_dir(config))
    check_writable(frames_dir(config), "frame directory")
    return directory


def _yaml_for(name: str, directory: Path) -> str:
    return (
        "sources:\n"
        f"  {name}:\n"
        f"    description: \"simbeamline runs in {directory}\"\n"
        "    driver: simbeamline.catalog.driver.BeamlineCatalog\n"
        "    args:\n"
        f"      paths: [\"{directory}/*.msgpack\"]\n"
    )


def register_with_intake(config: BeamlineConfig | None = None) -> None:
    """Make the catalog reachable by name (``databroker.catalog[name]``, ``Broker.named``).

    Puts the folder of the catalog's intake YAML on intake's search path and sets
    SIMBEAMLINE_DATA_DIR (which the shipped YAML reads) when unset. The folder is the
    shipped one for the default name; another ``catalog_name`` gets a generated YAML
    under ``<run_dir>/intake``.

    intake reads INTAKE_PATH once, when first imported, so this runs from ``import
    simbeamline``. When INTAKE_PATH is unset (the usual case) it is simply set, and
    intake is not imported. Otherwise intake is imported and its list extended,
    because intake 0.6 cannot split a multi-folder INTAKE_PATH of absolute POSIX paths
    (its separator pattern skips ':' before '/'). ``databroker.catalog`` is built when
    databroker is first imported, so import simbeamline before databroker for a
    custom name (the default name is also the package's ``intake.catalogs`` entry
    point, :mod:`simbeamline.catalog.entry`, found with nothing imported first).
    """
    config = config or BeamlineConfig.from_env()
    os.environ.setdefault("SIMBEAMLINE_DATA_DIR", str(config.data_dir))
    folder = str(CATALOGS_DIR)
    if config.catalog_name != SHIPPED_NAME:
        generated = config.run_dir / "intake"
        try:
            generated.mkdir(parents=True, exist_ok=True)
            (generated / f"{config.catalog_name}.yml").write_text(
                _yaml_for(config.catalog_name, catalog_dir(config)))
        except OSError:
            return  # reported by open_catalog's directory checks when the catalog is used
        folder = str(generated)
    if "intake" not in sys.modules and os.environ.get("INTAKE_PATH", folder) == folder:
        os.environ["INTAKE_PATH"] = folder
        return
    import intake

    paths = intake.config.conf.get("catalog_path") or []
    if isinstance(paths, str):
        paths = intake.config.intake_path_dirs(paths)
    intake.config.conf["catalog_path"] = [*paths, folder] if folder not in paths else paths
