"""Start, stop and inspect the beamline's IOCs, each a supervisord program.

supervisord restarts an IOC that dies and keeps its log; this module gives it the
beamline configuration (addresses, prefixes, directories) through environment
variables, and adds what supervisord cannot know: an IOC is *up* only when its
PVs answer over Channel Access.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from caproto.sync.client import read as ca_read

from . import ca_env, catalog_service
from .config import BeamlineConfig

#: supervisord's configuration, in the repository's supervisor/ folder.
SUPERVISOR_CONF = Path(
    os.environ.get(
        "SIMBEAMLINE_SUPERVISOR_CONF",
        Path(__file__).resolve().parents[3] / "supervisor" / "supervisord.conf",
    )
)


class LauncherError(RuntimeError):
    """The beamline could not be started, stopped or reached."""


@dataclasses.dataclass(frozen=True)
class Ioc:
    """One IOC process: its supervisord program name, address and a PV that proves it is up."""

    name: str
    host: str
    ready_pv: str

    @property
    def log_file(self) -> str:
        return f"{self.name}.log"


def iocs(config: BeamlineConfig) -> list[Ioc]:
    """The IOCs of a beamline, as supervisord.conf names them."""
    return [
        Ioc("beamline", config.beamline_host, f"{config.prefix}current"),
        Ioc("adsim", config.adsim_host, f"{config.ad_prefix}cam1:Acquire_RBV"),
    ]


def _socket(config: BeamlineConfig) -> Path:
    return config.run_dir / "supervisor.sock"


def _rpc(config: BeamlineConfig):
    """An XML-RPC proxy to this beamline's supervisord over its unix socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{_socket(config)}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_env(config: BeamlineConfig) -> dict[str, str]:
    """The environment supervisord (and so every IOC) runs with."""
    env = dict(os.environ)
    env.update(config.as_env())
    env.update(ca_env.server_env(config, config.beamline_host))
    env.pop("EPICS_CAS_INTF_ADDR_LIST")  # set per program in supervisord.conf
    env["SIMBEAMLINE_LOG_DIR"] = str(config.log_dir)
    env["SIMBEAMLINE_PYTHON"] = sys.executable
    env["PYTHONUNBUFFERED"] = "1"
    env.update(catalog_service.supervisor_env(config, catalog_service.CatalogService.parse(
        os.environ.get("SIMBEAMLINE_TILED"))))
    return env


def supervisord_running(config: BeamlineConfig) -> bool:
    """True when this beamline's supervisord answers on its socket."""
    if not _socket(config).exists():
        return False
    try:
        return _rpc(config).supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return False


def pv_answers(pv: str, timeout: float = 1.0) -> bool:
    """True when *pv* can be read over Channel Access within *timeout* seconds."""
    try:
        ca_read(pv, timeout=timeout, repeater=False)  # spawn no caproto-repeater
    except Exception:  # caproto raises several kinds (timeout, no route, refused)
        return False
    return True


def log_tail(config: BeamlineConfig, ioc: Ioc, lines: int = 25) -> str:
    """The last *lines* lines of an IOC's log, for error messages."""
    path = config.log_dir / ioc.log_file
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])


def status(config: BeamlineConfig | None = None) -> dict[str, dict]:
    """State of every IOC: supervisord's state, pid, and whether its PVs answer."""
    config = config or BeamlineConfig.from_env()
    ca_env.apply_client_env(config)
    running = supervisord_running(config)
    infos = {}
    if running:
        infos = {i["name"]: i for i in _rpc(config).supervisor.getAllProcessInfo()}
    result = {}
    for ioc in iocs(config):
        info = infos.get(ioc.name, {})
        state = info.get("statename", "STOPPED" if running else "NOT STARTED")
        result[ioc.name] = {
            "state": state,
            "pid": info.get("pid", 0),
            "address": f"{ioc.host}:{config.ca_port}",
            "ready_pv": ioc.ready_pv,
            "answers": state == "RUNNING" and pv_answers(ioc.ready_pv),
        }
    result.update(catalog_service.status(config, catalog_service.CatalogService.from_env(config), infos))
    return result


def wait_until_answering(config: BeamlineConfig, timeout: float = 30.0) -> None:
    """Return when every IOC's ready PV answers; raise LauncherError with the log tail if not."""
    ca_env.apply_client_env(config)
    deadline = time.monotonic() + timeout
    pending = iocs(config)
    while pending:
        pending = [ioc for ioc in pending if not pv_answers(ioc.ready_pv, timeout=0.5)]
        if pending and time.monotonic() > deadline:
            details = "\n\n".join(
                f"IOC '{ioc.name}' ({ioc.ready_pv} at {ioc.host}:{config.ca_port}) did not answer "
                f"within {timeout:.0f} s. Last lines of {config.log_dir / ioc.log_file}:\n"
                f"{log_tail(config, ioc)}"
                for ioc in pending
            )
            raise LauncherError(details)


def start(config: BeamlineConfig | None = None, timeout: float = 30.0) -> bool:
    """Start the IOCs under supervisord and wait until every one answers.

    Does nothing (but wait) when the beamline is already running. Returns True if
    this call started supervisord, False if it was already running. If an IOC does
    not answer, a supervisord this call started is stopped again before raising, so
    a failed start leaves nothing running.
    """
    config = config or BeamlineConfig.from_env()
    started = False
    if not supervisord_running(config):
        for directory in (config.run_dir, config.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(SUPERVISOR_CONF)],
            env=supervisor_env(config), capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise LauncherError(
                f"supervisord did not start (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        deadline = time.monotonic() + timeout
        while not supervisord_running(config):
            if time.monotonic() > deadline:
                raise LauncherError(
                    f"supervisord did not answer on {_socket(config)} within {timeout:.0f} s; "
                    f"see {config.log_dir / 'supervisord.log'}"
                )
            time.sleep(0.05)  # polling supervisord's socket until it answers
        started = True
    else:
        rpc = _rpc(config)
        for info in rpc.supervisor.getAllProcessInfo():
            if info["statename"] not in ("RUNNING", "STARTING"):
                rpc.supervisor.startProcess(info["name"], False)
    try:
        wait_until_answering(config, timeout)
        _start_catalog_service(config, started, timeout)
    except LauncherError:
        if started:
            stop(config)
        raise
    return started


def _start_catalog_service(config: BeamlineConfig, started: bool, timeout: float) -> None:
    """Wait for the catalog service (if configured) and remember it for other shells."""
    if started:
        service = catalog_service.CatalogService.parse(os.environ.get("SIMBEAMLINE_TILED"))
        catalog_service.save_service(config, service)
    else:
        service = catalog_service.CatalogService.from_env(config)
        missing = set(service.programs) - {i["name"] for i in _rpc(config).supervisor.getAllProcessInfo()}
        if missing:
            raise LauncherError(f"the beamline runs without the catalog service "
                                f"({', '.join(sorted(missing))}); restart it with "
                                f"`simbeamline restart --tiled {service.as_env()['SIMBEAMLINE_TILED']}`")
    try:
        catalog_service.wait_until_answering(config, service, timeout=max(timeout, 60.0))
    except catalog_service.CatalogServiceError as err:
        raise LauncherError(str(err)) from None


def ensure_running(config: BeamlineConfig | None = None, timeout: float = 30.0) -> BeamlineConfig:
    """Start the beamline if it is down; return its configuration with the client env applied."""
    config = config or BeamlineConfig.from_env()
    start(config, timeout=timeout)
    return ca_env.apply_client_env(config)


def stop(config: BeamlineConfig | None = None, timeout: float = 30.0) -> bool:
    """Stop every IOC and supervisord; return False if it was not running.

    Asks supervisord to shut down over its socket; if the socket does not answer
    but the pid file names a live supervisord, sends it SIGTERM instead, so a
    half-started or unresponsive beamline is never left behind.
    """
    config = config or BeamlineConfig.from_env()
    pidfile = config.run_dir / "supervisord.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        pid = None
    if supervisord_running(config):
        _rpc(config).supervisor.shutdown()
    elif pid is not None and _alive(pid):
        os.kill(pid, signal.SIGTERM)
    else:
        return False
    deadline = time.monotonic() + timeout
    while pid is not None and _alive(pid):
        if time.monotonic() > deadline:
            raise LauncherError(f"supervisord (pid {pid}) did not exit within {timeout:.0f} s")
        time.sleep(0.05)  # polling for the process to exit
    return True


def restart_ioc(config: BeamlineConfig, name: str) -> None:
    """Restart one IOC by its program name and wait until it answers again."""
    rpc = _rpc(config)
    rpc.supervisor.stopProcess(name, True)
    rpc.supervisor.startProcess(name, True)
    wait_until_answering(config)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
