"""Helpers of the Tiled tests: beamlines with a catalog service, started the user's way.

Ports: SIMBEAMLINE_TEST_PG_PORT / SIMBEAMLINE_TEST_TILED_PORT for the catalog service,
SIMBEAMLINE_TEST_CA_PORT + 20 and + 22 for the two extra beamlines (the session's test
beamline keeps its own port).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

from simbeamline.control import catalog_service, launcher
from simbeamline.control.catalog_service import CatalogService
from simbeamline.control.config import BeamlineConfig

PG_PORT = int(os.environ.get("SIMBEAMLINE_TEST_PG_PORT", "5450"))
TILED_PORT = int(os.environ.get("SIMBEAMLINE_TEST_TILED_PORT", "8050"))
CA_PORT = int(os.environ.get("SIMBEAMLINE_TEST_CA_PORT", "5070"))

#: The private service's settings, as `simbeamline start --tiled postgres` exports them.
SERVICE_ENV = {"SIMBEAMLINE_TILED": "postgres", "SIMBEAMLINE_PG_PORT": str(PG_PORT),
               "SIMBEAMLINE_TILED_PORT": str(TILED_PORT)}


def extra_beamline(base: Path, name: str, port: int, shared: BeamlineConfig) -> BeamlineConfig:
    """A second copy of the beamline: its own prefixes, port and directories."""
    return dataclasses.replace(
        shared, prefix=f"{name}:", ad_prefix=f"{name}ad:", ca_port=port,
        run_dir=base / name / "run", data_dir=base / name / "data",
        ad_path_map=f"/tmp={base / name / 'ioc_tmp'}", log_dir_override=None)


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """Set environment variables for the block (what a user's shell would export)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_with_service(config: BeamlineConfig, env: dict[str, str]) -> CatalogService:
    """Start *config*'s IOCs and its catalog service (as `simbeamline start --tiled`)."""
    with environment({**config.as_env(), **env}):
        launcher.start(config, timeout=120)
    return catalog_service.saved_service(config)


def remote_env(config: BeamlineConfig, service: CatalogService) -> dict[str, str]:
    """Variables that point another beamline at *config*'s Tiled server (writer key)."""
    return {"SIMBEAMLINE_TILED": service.tiled_uri,
            "SIMBEAMLINE_TILED_API_KEY": catalog_service.api_key(config, service, "writer")}


def reader(config: BeamlineConfig, service: CatalogService):
    """A Tiled client with the reader key, over HTTP."""
    from tiled.client import from_uri

    return from_uri(service.tiled_uri, api_key=catalog_service.api_key(config, service, "reader"))


def program_pid(config: BeamlineConfig, name: str) -> int:
    return launcher._rpc(config).supervisor.getProcessInfo(name)["pid"]
