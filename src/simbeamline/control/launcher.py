"""Start, stop and inspect the beamline's IOCs, each a supervisord program.

supervisord restarts an IOC that dies and keeps its log; this module gives it the
beamline configuration (addresses, prefixes, directories) through environment
variables, and adds what supervisord cannot know: an IOC is *up* only when its
PVs answer over Channel Access (a channel created, :mod:`.ca_probe`). supervisord also
runs the beamline's CA repeater, on the beamline's own repeater port.

Light on purpose (no caproto, no numpy, no supervisor package, and its XML-RPC client
only once supervisord is on its way): the command line imports it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


from . import ca_env, ca_probe, catalog_service
from .config import BeamlineConfig

#: supervisord's configuration, in the repository's supervisor/ folder.
SUPERVISOR_CONF = Path(
    os.environ.get(
        "SIMBEAMLINE_SUPERVISOR_CONF",
        Path(__file__).resolve().parents[3] / "supervisor" / "supervisord.conf",
    )
)


#: supervisord's program name of the beamline's CA repeater.
REPEATER = "repeater"
#: Seconds between two looks at a process that should start or exit.
POLL = 0.01
#: Seconds ``status`` gives a running IOC to answer (it returns as soon as all have).
STATUS_TIMEOUT = 3.0


class LauncherError(RuntimeError):
    """The beamline could not be started, stopped or reached."""


@dataclasses.dataclass(frozen=True)
class Ioc:
    """One IOC process: its supervisord program name, address, PV prefix and a PV that
    proves it is up."""

    name: str
    host: str
    prefix: str
    ready_pv: str


def iocs(config: BeamlineConfig) -> list[Ioc]:
    """The IOCs of a beamline, as supervisord.conf names them."""
    return [
        Ioc("beamline", config.beamline_host, config.prefix, f"{config.prefix}current"),
        Ioc("adsim", config.adsim_host, config.ad_prefix, f"{config.ad_prefix}cam1:Acquire_RBV"),
    ]


def _socket(config: BeamlineConfig) -> Path:
    return config.run_dir / "supervisor.sock"


@functools.cache
def _xmlrpc():
    """xmlrpc.client, and a transport for it over a unix socket (supervisor's own
    transport costs a heavier import). Imported on first use: with http.client it is
    a quarter of the command line's imports, and `start` needs it only once
    supervisord has been spawned."""
    import http.client
    import xmlrpc.client

    class UnixConnection(http.client.HTTPConnection):
        """HTTP over supervisord's unix socket."""

        def __init__(self, path: Path):
            super().__init__("localhost")
            self.socket_path = str(path)

        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(self.socket_path)

    class UnixTransport(xmlrpc.client.Transport):
        def __init__(self, path: Path):
            super().__init__()
            self.socket_path = path

        def make_connection(self, host):
            return UnixConnection(self.socket_path)

    return xmlrpc.client, UnixTransport


def _rpc(config: BeamlineConfig):
    """An XML-RPC proxy to this beamline's supervisord over its unix socket."""
    client, transport = _xmlrpc()
    return client.ServerProxy("http://localhost", transport=transport(_socket(config)))


def _rpc_errors() -> tuple[type[Exception], ...]:
    """What a call of :func:`_rpc`'s proxy raises when supervisord does not answer it."""
    client, _ = _xmlrpc()
    return (OSError, client.Fault, client.ProtocolError)


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
    except _rpc_errors():
        return False


def answering(config: BeamlineConfig, names: list[str] | None = None,
              timeout: float = 1.0) -> set[str]:
    """The IOCs (program names, all if *names* is None) and the repeater (if named) that
    answer within *timeout* seconds: each IOC creates a channel for its ready PV, the
    repeater confirms a registration. All are asked at once; returns as soon as every
    one has its answer."""
    probes = {ioc.name: ca_probe.Channel(ioc.ready_pv, ioc.host, config.ca_port)
              for ioc in iocs(config) if names is None or ioc.name in names}
    if names is not None and REPEATER in names:
        probes[REPEATER] = ca_probe.Repeater(config.repeater_port)
    return ca_probe.answering(probes, timeout)


def ioc_state(config: BeamlineConfig, name: str, timeout: float) -> str:
    """What the IOC *name* says when asked for a channel of its ready PV within *timeout*
    seconds: :data:`.ca_probe.SERVES`, ``LACKS``, ``SILENT`` (busy) or ``DOWN``."""
    ioc = next(ioc for ioc in iocs(config) if ioc.name == name)
    return ca_probe.Channel(ioc.ready_pv, ioc.host, config.ca_port).state(time.monotonic() + timeout)


def log_tail(config: BeamlineConfig, name: str, lines: int = 25) -> str:
    """The last *lines* lines of a program's log, for error messages."""
    path = config.log_dir / f"{name}.log"
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])


def status(config: BeamlineConfig | None = None) -> dict[str, dict]:
    """State of every IOC: supervisord's state, pid, and whether its PVs answer."""
    config = config or BeamlineConfig.from_env()
    running = supervisord_running(config)
    infos = {}
    if running:
        infos = {i["name"]: i for i in _rpc(config).supervisor.getAllProcessInfo()}
    names = [ioc.name for ioc in iocs(config)] + [REPEATER]
    answers = answering(config, names, timeout=STATUS_TIMEOUT) if running else set()
    result = {}
    for ioc in iocs(config):
        info = infos.get(ioc.name, {})
        state = info.get("statename", "STOPPED" if running else "NOT STARTED")
        result[ioc.name] = {
            "state": state,
            "pid": info.get("pid", 0),
            "address": f"{ioc.host}:{config.ca_port}",
            "ready_pv": ioc.ready_pv,
            # STARTING: supervisord's startsecs have not passed, but the IOC may answer
            "answers": state in ("RUNNING", "STARTING") and ioc.name in answers,
        }
    info = infos.get(REPEATER, {})
    result[REPEATER] = {  # EXITED when another repeater already holds the port: it serves
        "state": info.get("statename", "STOPPED" if running else "NOT STARTED"),
        "pid": info.get("pid", 0),
        "address": f"127.0.0.1:{config.repeater_port}",
        "ready_pv": "CA repeater",
        "answers": REPEATER in answers,
    }
    result.update(catalog_service.status(config, catalog_service.CatalogService.from_env(config), infos))
    return result


def wait_until_answering(config: BeamlineConfig, timeout: float = 30.0) -> None:
    """Return as soon as every IOC answers and the repeater confirms; raise LauncherError
    with the log tail of what did not (at once if supervisord gave up on its program)."""
    deadline = time.monotonic() + timeout
    pending = {ioc.name for ioc in iocs(config)}
    if REPEATER in _programs(config):  # not in a supervisord started before it existed
        pending.add(REPEATER)
    while pending:
        pending -= answering(config, sorted(pending), timeout=min(0.5, deadline - time.monotonic()))
        if not pending:
            return
        given_up = pending & _given_up(config)
        if given_up or (pending and time.monotonic() > deadline):
            raise LauncherError("\n\n".join(
                f"{_describe(config, name)} did not answer "
                + ("(supervisord gave up starting it)" if name in given_up
                   else f"within {timeout:.0f} s")
                + f". Last lines of {config.log_dir / f'{name}.log'}:\n{log_tail(config, name)}"
                for name in sorted(pending)))


def _programs(config: BeamlineConfig) -> dict[str, str]:
    """``{program: supervisord state}``; empty if supervisord does not answer."""
    try:
        return {info["name"]: info["statename"]
                for info in _rpc(config).supervisor.getAllProcessInfo()}
    except _rpc_errors():
        return {}


def _given_up(config: BeamlineConfig) -> set[str]:
    """Programs supervisord will not start again by itself (FATAL)."""
    return {name for name, state in _programs(config).items() if state == "FATAL"}


def _describe(config: BeamlineConfig, name: str) -> str:
    if name == REPEATER:
        return f"The CA repeater (127.0.0.1:{config.repeater_port})"
    ioc = next(ioc for ioc in iocs(config) if ioc.name == name)
    return f"IOC '{ioc.name}' ({ioc.ready_pv} at {ioc.host}:{config.ca_port})"


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
        daemon = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(SUPERVISOR_CONF)],
            env=supervisor_env(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        _xmlrpc()   # imported while supervisord starts and daemonizes
        stdout, stderr = daemon.communicate()
        if daemon.returncode != 0:
            raise LauncherError(
                f"supervisord did not start (exit {daemon.returncode}):\n{stdout}{stderr}"
            )
        deadline = time.monotonic() + timeout
        while not supervisord_running(config):
            if time.monotonic() > deadline:
                raise LauncherError(
                    f"supervisord did not answer on {_socket(config)} within {timeout:.0f} s; "
                    f"see {config.log_dir / 'supervisord.log'}"
                )
            time.sleep(POLL)  # polling supervisord's socket until it answers
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
    """Stop every program and supervisord; return False if it was not running.

    Asks supervisord to signal every program at once, waits for them to exit, then
    shuts supervisord down: with nothing left to stop it exits at once, instead of
    stopping one program per turn of its one-second loop. If the socket does not
    answer but the pid file names a live supervisord, sends it SIGTERM instead, so a
    half-started or unresponsive beamline is never left behind.
    """
    config = config or BeamlineConfig.from_env()
    deadline = time.monotonic() + timeout
    pidfile = config.run_dir / "supervisord.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        pid = None
    if supervisord_running(config):
        rpc = _rpc(config)
        programs = [info["pid"] for info in rpc.supervisor.getAllProcessInfo() if info["pid"]]
        rpc.supervisor.stopAllProcesses(False)  # SIGTERM to every program group at once
        _wait_exit(programs, deadline, "the beamline's programs")
        try:
            rpc.supervisor.shutdown()
        except _rpc_errors():
            pass  # already shutting down
    elif pid is not None and _alive(pid):
        os.kill(pid, signal.SIGTERM)
    else:
        return False
    _wait_exit([pid] if pid is not None else [], deadline, "supervisord")
    return True


def _wait_exit(pids: list[int], deadline: float, what: str) -> None:
    """Return when none of *pids* runs any more (a reaped child or another user's
    process counts as gone); raise LauncherError at *deadline*."""
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise LauncherError(f"{what} (pids {pids}) did not exit in time")
        time.sleep(POLL)  # polling for the processes to exit


def restart_ioc(config: BeamlineConfig, name: str) -> None:
    """Restart one IOC by its program name and wait until it answers again."""
    rpc = _rpc(config)
    rpc.supervisor.stopProcess(name, True)
    rpc.supervisor.startProcess(name, True)
    wait_until_answering(config)


def _alive(pid: int) -> bool:
    """True while *pid* runs; a zombie (exited, its parent not yet told) has ended."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): ask the kernel, zombies included
        pass
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the number reused by another user
        return False
    return True
