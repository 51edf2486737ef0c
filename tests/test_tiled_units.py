"""The catalog service's pure logic: choosing it, its supervisord include list, key
files, and the document patches of the Tiled writer (no processes)."""

from __future__ import annotations

import pytest

from simbeamline.catalog.tiled import directory_resource_path, identity
from simbeamline.catalog.tiled_sync import _same_json, _without_added
from simbeamline.control import catalog_service
from simbeamline.control.catalog_service import CatalogService, CatalogServiceError
from simbeamline.control.config import BeamlineConfig


@pytest.mark.parametrize("value, mode, programs", [
    (None, "off", []), ("", "off", []), ("OFF", "off", []),
    ("postgres", "postgres", ["catalog-postgres", "catalog-tiled"]),
    ("sqlite", "sqlite", ["catalog-tiled"]),
    ("postgresql://u:p@db.example:5432", "postgresql", ["catalog-tiled"]),
    ("https://tiled.example/api", "tiled", []),
])
def test_service_modes(value, mode, programs):
    service = CatalogService.parse(value, {})
    assert service.mode == mode and service.programs == programs
    assert service.host == "127.0.0.1"   # loopback unless told otherwise


def test_bad_service_values_name_the_variable():
    with pytest.raises(CatalogServiceError, match="SIMBEAMLINE_TILED='mongo'"):
        CatalogService.parse("mongo", {})
    with pytest.raises(CatalogServiceError, match="SIMBEAMLINE_TILED_PORT"):
        CatalogService.parse("postgres", {"SIMBEAMLINE_TILED_PORT": "http"})
    with pytest.raises(CatalogServiceError, match="outside"):
        CatalogService.parse("postgres", {"SIMBEAMLINE_PG_PORT": "80"})


def test_existing_tiled_keeps_its_key_out_of_the_environment():
    service = CatalogService.parse("http://h:8000/", {"SIMBEAMLINE_TILED_API_KEY": "secret"})
    assert service.tiled_uri == "http://h:8000" and service.api_key == "secret"
    assert "secret" not in repr(service.as_env())
    assert CatalogService.parse(service.as_env()["SIMBEAMLINE_TILED"], service.as_env()).mode == "tiled"


def test_supervisor_include_list():
    config = BeamlineConfig()
    env = catalog_service.supervisor_env(config, CatalogService.parse("postgres", {}))
    assert env["SIMBEAMLINE_CATALOG_PROGRAMS"] == "catalog/postgres.conf catalog/tiled.conf"
    env = catalog_service.supervisor_env(config, CatalogService())
    assert env["SIMBEAMLINE_CATALOG_PROGRAMS"] == "catalog/off.conf"


def test_private_files_are_never_world_readable(tmp_path):
    config = BeamlineConfig(run_dir=tmp_path / "run")
    service = CatalogService.parse("http://h:1234", {"SIMBEAMLINE_TILED_API_KEY": "k" * 72})
    catalog_service.save_service(config, service)
    path = catalog_service.state_dir(config) / "service.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert catalog_service.state_dir(config).stat().st_mode & 0o777 == 0o700
    assert catalog_service.saved_service(config) == service
    assert catalog_service.redact("k" * 72) == "kkkkkkkk..."


def test_ad_resource_gets_a_directory_path_and_the_original_is_untouched():
    doc = {"spec": "AD_HDF5_SINGLE", "resource_path": "tmp/x/2026",
           "resource_kwargs": {"template": "%s%s_%6.6d.h5", "filename": "f"}}
    patched = directory_resource_path(doc)
    assert patched["resource_path"] == "tmp/x/2026/" and doc["resource_path"] == "tmp/x/2026"
    npy = {"spec": "NPY_SEQ", "resource_path": "frames/a", "resource_kwargs": {}}
    assert directory_resource_path(npy) is npy


def test_identity_and_added_dtype_are_tolerated_by_check():
    assert identity(BeamlineConfig(prefix="b2:")) == {"beamline_prefix": "b2:", "beamline_name": "b2"}
    embedded = {"I": {"dtype": "number", "shape": []}}
    tiled = {"I": {"dtype": "number", "shape": [], "dtype_numpy": "<f8"}}
    assert _same_json(embedded, _without_added(tiled, embedded))
    changed = {"I": {"dtype": "integer", "shape": [], "dtype_numpy": "<f8"}}
    assert not _same_json(embedded, _without_added(changed, embedded))


def test_catalog_command_offers_check_repair_sync_and_check_tiled():
    """One `simbeamline catalog` command: check (--repair) of the embedded catalog, and
    sync / check --tiled against the Tiled server, each reaching its own parser."""
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "simbeamline.cli", "catalog", *args],
                              capture_output=True, text=True, timeout=120)

    top = run("--help")
    assert top.returncode == 0 and "check" in top.stdout and "sync" in top.stdout
    assert "--repair" in run("check", "--help").stdout
    assert "--quiet" in run("sync", "--help").stdout
    assert "--scan-id" in run("check", "--tiled", "--help").stdout


_RACER = """
import sys, time
from pathlib import Path
from simbeamline.control.config import BeamlineConfig
from simbeamline.catalog.tiled_server import pg_password
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)        # the barrier: every process asks at the same instant
print(pg_password(BeamlineConfig(run_dir=Path(sys.argv[1]))))
"""


def test_processes_asking_for_the_new_password_at_once_all_get_the_same_one(tmp_path):
    """PostgreSQL (initdb) and Tiled start together and both make the password on first
    use: they used to write different ones (Tiled's then failed to authenticate) or
    fail renaming the same temporary file."""
    import subprocess
    import sys

    for attempt in range(2):
        run_dir, go = tmp_path / f"run{attempt}", tmp_path / f"go{attempt}"
        racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(run_dir), str(go)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(6)]
        go.touch()
        results = [racer.communicate(timeout=120) for racer in racers]
        assert all(racer.returncode == 0 for racer in racers), [err for _, err in results]
        passwords = {out.strip() for out, _ in results}
        assert len(passwords) == 1 and len(passwords.pop()) > 20
        leftovers = [p.name for p in (run_dir / "catalog").iterdir() if p.suffix == ".part"]
        assert leftovers == []


def test_a_second_writer_of_the_password_keeps_the_first(tmp_path):
    """The interleaving of the race, in order: both found no file, the first wrote
    its password (and initdb used it), then the second writes: the first must stay."""
    path = tmp_path / "catalog" / "pg_password"
    catalog_service.write_private(path, "first", keep_existing=True)
    catalog_service.write_private(path, "second", keep_existing=True)
    assert path.read_text() == "first"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["pg_password"]   # no .part left
