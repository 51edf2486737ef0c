"""The catalog service beside the IOCs: a Tiled server (on PostgreSQL or SQLite) that
every run is also written to, so readers on other machines reach the runs over HTTP.

What it is, chosen by ``SIMBEAMLINE_TILED`` (or ``simbeamline start --tiled ...``):

=========================  ==========================================================
``off`` (or unset)         no Tiled: runs go to the embedded msgpack catalog only
``postgres``               a private PostgreSQL cluster (data under the data dir,
                           loopback, ``SIMBEAMLINE_PG_PORT``) and a Tiled server on it
``sqlite``                 a Tiled server on SQLite files in the data dir
``postgresql://...``       a Tiled server of ours on an existing PostgreSQL
``http(s)://...``          an existing Tiled server (writer key in
                           ``SIMBEAMLINE_TILED_API_KEY``): nothing is started
=========================  ==========================================================

The servers are supervisord programs of the beamline (``supervisor/catalog/*.conf``,
included by ``supervisord.conf`` through ``SIMBEAMLINE_CATALOG_PROGRAMS``). Their API
keys (writer and reader) and the PostgreSQL password live in ``<run_dir>/catalog``,
mode 0700, files 0600; they are never printed in full.

Light imports only: the command line reads this module on every call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from pathlib import Path

from .config import BeamlineConfig

#: supervisord program names of the catalog service.
POSTGRES_PROGRAM = "catalog-postgres"
TILED_PROGRAM = "catalog-tiled"
MODES = ("off", "postgres", "sqlite")


class CatalogServiceError(RuntimeError):
    """The catalog service is misconfigured or did not come up."""


def _port(env, name: str, default: int) -> int:
    text = env.get(name) or str(default)
    try:
        port = int(text)
    except ValueError:
        raise CatalogServiceError(f"{name}={text!r} is not a port number") from None
    if not 1024 <= port <= 65535:
        raise CatalogServiceError(f"{name}={port} is outside 1024-65535")
    return port


@dataclasses.dataclass(frozen=True)
class CatalogService:
    """Which catalog service a beamline has, where it listens and keeps its state."""

    mode: str = "off"           #: off | postgres | sqlite | postgresql | tiled
    uri: str = ""               #: the PostgreSQL or Tiled URI named by the user
    host: str = "127.0.0.1"     #: address our Tiled server (and PostgreSQL) bind
    tiled_port: int = 8000
    pg_port: int = 5433
    api_key: str = ""           #: writer key of an existing Tiled server (never printed)

    @classmethod
    def parse(cls, value: str | None, environ: dict | None = None) -> "CatalogService":
        """The service named by *value* (``SIMBEAMLINE_TILED``) with ports from *environ*."""
        env = os.environ if environ is None else environ
        value = (value or "off").strip()
        common = dict(host=env.get("SIMBEAMLINE_TILED_HOST") or "127.0.0.1",
                      tiled_port=_port(env, "SIMBEAMLINE_TILED_PORT", 8000),
                      pg_port=_port(env, "SIMBEAMLINE_PG_PORT", 5433))
        if value.lower() in MODES:
            return cls(mode=value.lower(), **common)
        if value.startswith(("postgresql://", "postgres://")):
            return cls(mode="postgresql", uri=value, **common)
        if value.startswith(("http://", "https://")):
            return cls(mode="tiled", uri=value.rstrip("/"),
                       api_key=env.get("SIMBEAMLINE_TILED_API_KEY", ""), **common)
        raise CatalogServiceError(
            f"SIMBEAMLINE_TILED={value!r} is not one of off, postgres, sqlite, a "
            "postgresql://... URI or an http(s)://... Tiled URI")

    @classmethod
    def from_env(cls, config: BeamlineConfig, environ: dict | None = None) -> "CatalogService":
        """``SIMBEAMLINE_TILED`` if set, else what the beamline's running service was
        started with (so a session in another shell writes where the launcher serves)."""
        env = os.environ if environ is None else environ
        if env.get("SIMBEAMLINE_TILED"):
            return cls.parse(env["SIMBEAMLINE_TILED"], env)
        saved = saved_service(config)
        return saved if saved is not None else cls()

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def ours(self) -> bool:
        """True when the launcher runs the Tiled server (all but an existing Tiled)."""
        return self.mode in ("postgres", "sqlite", "postgresql")

    @property
    def programs(self) -> list[str]:
        """The supervisord programs this service adds to the beamline."""
        if self.mode == "postgres":
            return [POSTGRES_PROGRAM, TILED_PROGRAM]
        return [TILED_PROGRAM] if self.ours else []

    @property
    def tiled_uri(self) -> str:
        """Where clients reach Tiled."""
        if self.mode == "tiled":
            return self.uri
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.tiled_port}"

    def as_env(self) -> dict[str, str]:
        """The variables that reproduce this choice in a child process (no key)."""
        value = self.uri if self.mode in ("postgresql", "tiled") else self.mode
        return {"SIMBEAMLINE_TILED": value, "SIMBEAMLINE_TILED_HOST": self.host,
                "SIMBEAMLINE_TILED_PORT": str(self.tiled_port),
                "SIMBEAMLINE_PG_PORT": str(self.pg_port)}


# ---------------------------------------------------------------------------- state files

def state_dir(config: BeamlineConfig) -> Path:
    """``<run_dir>/catalog``: keys, passwords, the Tiled config (0700)."""
    return config.run_dir / "catalog"


def pg_data_dir(config: BeamlineConfig) -> Path:
    """The private PostgreSQL cluster's data directory."""
    return config.data_dir / "postgres"


def tiled_data_dir(config: BeamlineConfig) -> Path:
    """Tiled's own files: SQLite catalogs and arrays it writes itself."""
    return config.data_dir / "tiled"


def private_dir(path: Path) -> Path:
    """Create *path* readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str, *, keep_existing: bool = False) -> None:
    """Write *text* to *path* with mode 0600 from the first byte (never world-readable).

    Readers see the old file or the whole new one, never a part. With *keep_existing*
    the first of several processes writing at once wins and the others keep its file
    (PostgreSQL and Tiled start together and both ask for the password it makes).
    """
    private_dir(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        if keep_existing:
            try:
                os.link(partial, path)   # atomic, and fails if another process was first
            except FileExistsError:
                pass
        else:
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def save_service(config: BeamlineConfig, service: CatalogService) -> None:
    """Remember the service the launcher started (read by sessions in other shells)."""
    write_private(state_dir(config) / "service.json",
                  json.dumps({**service.as_env(), "SIMBEAMLINE_TILED_API_KEY": service.api_key}))


def saved_service(config: BeamlineConfig) -> CatalogService | None:
    try:
        env = json.loads((state_dir(config) / "service.json").read_text())
    except (OSError, ValueError):
        return None
    return CatalogService.parse(env.get("SIMBEAMLINE_TILED"), env)


def forget_service(config: BeamlineConfig) -> None:
    (state_dir(config) / "service.json").unlink(missing_ok=True)


def keys_file(config: BeamlineConfig) -> Path:
    return state_dir(config) / "api_keys.json"


def api_key(config: BeamlineConfig, service: CatalogService, role: str = "writer") -> str | None:
    """The *role* ('writer' or 'reader') API key of *service*, or None if there is none."""
    if service.mode == "tiled":
        return service.api_key or None
    try:
        return json.loads(keys_file(config).read_text())[role]
    except (OSError, ValueError, KeyError):
        return None


def redact(key: str | None) -> str:
    """A key as it may be shown: its first 8 characters (Tiled's own key id)."""
    return f"{key[:8]}..." if key else "(none)"


# ---------------------------------------------------------------------------- launcher hooks

def supervisor_env(config: BeamlineConfig, service: CatalogService) -> dict[str, str]:
    """Variables supervisord needs for the catalog programs (the include list first)."""
    files = {
        POSTGRES_PROGRAM: "catalog/postgres.conf",
        TILED_PROGRAM: "catalog/tiled.conf",
    }
    programs = [files[name] for name in service.programs] or ["catalog/off.conf"]
    return {"SIMBEAMLINE_CATALOG_PROGRAMS": " ".join(programs), **service.as_env()}


def tiled_answers(service: CatalogService, timeout: float = 1.0) -> bool:
    """True when the Tiled server answers HTTP on its /api/v1/ (any status but 5xx)."""
    import urllib.error  # here, not at the top: off the command line's start
    import urllib.request

    try:
        with urllib.request.urlopen(f"{service.tiled_uri}/api/v1/", timeout=timeout):
            return True
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (OSError, ValueError):
        return False


def wait_until_answering(config: BeamlineConfig, service: CatalogService,
                         timeout: float = 60.0) -> None:
    """Return when Tiled answers; raise CatalogServiceError with the log tails if not."""
    if not service.enabled:
        return
    deadline = time.monotonic() + timeout
    while not tiled_answers(service):
        if time.monotonic() > deadline:
            tails = "\n\n".join(
                f"Last lines of {config.log_dir / (name + '.log')}:\n{_tail(config, name)}"
                for name in service.programs)
            raise CatalogServiceError(
                f"the Tiled server at {service.tiled_uri} did not answer within "
                f"{timeout:.0f} s.\n{tails}")
        time.sleep(0.1)  # polling the server until it answers


def _tail(config: BeamlineConfig, name: str, lines: int = 20) -> str:
    try:
        return "\n".join((config.log_dir / f"{name}.log").read_text(errors="replace")
                         .splitlines()[-lines:])
    except OSError:
        return "(no log)"


def status(config: BeamlineConfig, service: CatalogService, infos: dict) -> dict[str, dict]:
    """Status rows of the catalog service, shaped like the launcher's IOC rows."""
    if not service.enabled:
        return {}
    rows = {}
    if POSTGRES_PROGRAM in service.programs:
        info = infos.get(POSTGRES_PROGRAM, {})
        rows[POSTGRES_PROGRAM] = {
            "state": info.get("statename", "NOT STARTED"), "pid": info.get("pid", 0),
            "address": f"{service.host}:{service.pg_port}", "ready_pv": "postgresql",
            "answers": info.get("statename") == "RUNNING" and _port_open(service.host,
                                                                          service.pg_port)}
    info = infos.get(TILED_PROGRAM, {}) if service.ours else {"statename": "EXTERNAL"}
    rows[TILED_PROGRAM] = {
        "state": info.get("statename", "NOT STARTED"), "pid": info.get("pid", 0),
        "address": service.tiled_uri.split("//", 1)[-1],
        "ready_pv": f"tiled key {redact(api_key(config, service))}",
        "answers": tiled_answers(service)}
    return rows


def _port_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
