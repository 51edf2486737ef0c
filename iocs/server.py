"""Running an IOC of this project: command-line flags, loopback defaults, local search.

Every IOC module ends with ``serve(MyGroup, ...)``, which gives it the same flags
(caproto's own ``--prefix``, ``--interfaces``, ``--list-pvs``, ``-v``), the same
environment variables (``$SIMBEAMLINE_TIME_SCALE`` sets the simulation clock),
and the same safe default: bind to loopback, send beacons
on loopback, and answer name searches only from this host.
"""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import ipaddress
import os
import signal
import socket
import struct
import sys
import threading

import caproto as ca
from caproto.server import template_arg_parser

from .clock import CLOCK, scale_from_env
from .heap import hold_collector
from .logs import bound_log_records
from .names import check_prefix


def _loopback_defaults() -> None:
    """Default to loopback unless the user chose interfaces or beacon addresses."""
    os.environ.setdefault("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
    os.environ.setdefault("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO")
    os.environ.setdefault("EPICS_CAS_BEACON_ADDR_LIST", "127.255.255.255")


@functools.lru_cache(maxsize=256)
def is_this_host(address: str) -> bool:
    """True for a loopback address or one of this host's own addresses."""
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))  # only a local address can be bound
        except OSError:
            return False
    return True


class LocalSearchResponder(asyncio.DatagramProtocol):
    """Answer CA name searches broadcast from this host only.

    A plain ``caproto-get sim:current`` broadcasts its search to
    255.255.255.255 (pyepics to each interface's broadcast address), which never
    reaches a server bound to a loopback address. This listener, bound to those
    broadcast addresses (not 0.0.0.0), hears them, ignores every sender that is not
    this host, and points local clients at the IOC's loopback address.
    """

    def __init__(self, pvdb: dict, host: str, port: int):
        self.pvdb = pvdb
        self.host = host
        self.port = port
        self.broadcaster = ca.Broadcaster(our_role=ca.SERVER)
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def _knows(self, name: str) -> bool:
        if name in self.pvdb:
            return True
        try:
            _, record, _, _ = ca.parse_record_field(name)
        except ValueError:
            return False
        return record in self.pvdb

    def datagram_received(self, data, addr):
        if not is_this_host(addr[0]):
            return
        try:
            commands = self.broadcaster.recv(data, addr)
            self.broadcaster.process_commands(commands)
        except ca.RemoteProtocolError:
            return
        replies = [
            ca.SearchResponse(self.port, self.host, command.cid, ca.DEFAULT_PROTOCOL_VERSION)
            for command in commands
            if isinstance(command, ca.SearchRequest) and self._knows(command.name)
        ]
        if replies:
            self.transport.sendto(self.broadcaster.send(ca.VersionResponse(13), *replies), addr)


#: SIOCGIFBRDADDR: the ioctl giving an interface's IPv4 broadcast address (Linux).
_SIOCGIFBRDADDR = 0x8919


def broadcast_addresses() -> list[str]:
    """The broadcast addresses a search from this host can be sent to: the limited
    broadcast, the loopback network's, and each interface's (Linux; elsewhere the
    first two)."""
    addresses = ["255.255.255.255", "127.255.255.255"]
    try:
        import fcntl

        names = [name for _, name in socket.if_nameindex()]
    except (ImportError, OSError):
        return addresses
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFBRDADDR,
                                    struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            address = socket.inet_ntoa(reply[20:24])
            if address != "0.0.0.0" and address not in addresses:
                addresses.append(address)
    return addresses


async def _start_local_search_responder(pvdb: dict, host: str, port: int) -> None:
    """Listen for broadcast searches on each broadcast address (never 0.0.0.0, so no
    unicast search from another host reaches this IOC except on its own address)."""
    loop = asyncio.get_running_loop()
    for address in broadcast_addresses():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            sock.bind((address, port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        await loop.create_datagram_endpoint(
            lambda: LocalSearchResponder(pvdb, host, port), sock=sock)


def serve(group_class, *, default_prefix: str, prefix_env: str, description: str,
          group_kwargs: dict | None = None, startup=None, extra_arguments=None) -> None:
    """Parse the command line, build *group_class* and serve it until interrupted.

    The prefix comes from ``--prefix``, else the environment variable *prefix_env*,
    else *default_prefix*. *startup* is an optional ``async def startup(group, address)``
    run inside the server's event loop (for IOCs that are also CA clients, or serve
    more than CA), *address* being the ``(host, port)`` the CA server binds.
    *extra_arguments* is an optional ``extra_arguments(parser)`` that adds IOC-specific
    flags to the argparse parser; their values are passed to *group_class* (a PVGroup
    class or any callable returning one instance) as keyword arguments, named by
    their ``dest``. Unknown flags exit with status 2 and argparse's message.
    """
    _loopback_defaults()
    bound_log_records()
    # `kill -USR1 <pid>` writes every thread's stack to the IOC's log: how to see
    # where an IOC that does not answer, or does not end, is stuck
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    default = os.environ.get(prefix_env, default_prefix)
    parser, split_args = template_arg_parser(
        default_prefix=default, desc=description, supported_async_libs=("asyncio",)
    )
    standard = {action.dest for action in parser._actions}
    if extra_arguments is not None:
        extra_arguments(parser)
    args = parser.parse_args()
    extra = {action.dest: getattr(args, action.dest)
             for action in parser._actions if action.dest not in standard}
    ioc_options, run_options = split_args(args)
    try:
        check_prefix(ioc_options["prefix"])
        CLOCK.set_scale(scale_from_env())
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    with hold_collector():   # see .heap: the build without the collector
        group = group_class(**ioc_options, **(group_kwargs or {}), **extra)
    interfaces = run_options.get("interfaces") or ["127.0.0.1"]
    port = int(ca.get_environment_variables()["EPICS_CA_SERVER_PORT"])

    async def startup_hook(async_lib):
        host = interfaces[0]
        if host != "0.0.0.0":
            await _start_local_search_responder(group.pvdb, host, port)
        if startup is not None:
            await startup(group, (host, port))

    _run(group.pvdb, interfaces, run_options.get("log_pv_names", False), startup_hook)


#: Receive buffer of the IOC's UDP search sockets, bytes (the kernel caps it at
#: net.core.rmem_max): a class of clients connecting at once sends bursts of searches
#: that a busy IOC reads late, and the default (about 200 kB) drops them.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


#: Seconds an IOC has to end after SIGINT before it writes every thread's stack to its
#: log and exits anyway: an IOC asked to stop never hangs. (Once in a while in full
#: test runs an ADSim IOC with a PV Access monitor connected outlived SIGINT by more
#: than 10 s; where it waits was not found; this dump will show it.)
EXIT_GRACE = 5.0


def _end_within_grace() -> None:
    """From SIGINT on, give the graceful shutdown EXIT_GRACE seconds (a daemon timer)."""
    def expire():
        print(f"IOC still running {EXIT_GRACE:g} s after SIGINT; its threads:",
              file=sys.stderr, flush=True)
        faulthandler.dump_traceback(all_threads=True)
        os._exit(0)

    timer = threading.Timer(EXIT_GRACE, expire)
    timer.daemon = True
    timer.start()


def _end_on_sigint() -> None:
    """Let SIGINT end the IOC even when it was started with SIGINT ignored.

    A background job of a shell script (``cmd &`` without job control, as CI runners
    and ``nohup ... &`` start them) runs with SIGINT ignored, and every process it
    starts inherits that: asyncio then installs no SIGINT handler, and ``kill -INT``,
    which should end an IOC within :data:`EXIT_GRACE` seconds, did nothing (seen in a
    full test run started that way). Python's default handler is put back before the
    event loop starts; asyncio replaces it with its own as usual."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _watch_sigint() -> None:
    """Chain :func:`_end_within_grace` before asyncio's own SIGINT handler (which
    cancels the main task, then raises KeyboardInterrupt)."""
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        return

    def on_sigint(signum, frame):
        _end_within_grace()
        previous(signum, frame)

    signal.signal(signal.SIGINT, on_sigint)


def _server_context():
    """caproto's asyncio server context, with Nagle's algorithm off on every circuit
    (and no search for startup hooks in a database that has none).

    asyncio turns it off only for sockets whose ``proto`` is IPPROTO_TCP; caproto
    creates its listening socket with proto 0 (``_create_bound_tcp_socket``), so the
    sockets it accepts report 0 too, and its circuits kept Nagle on. A client's read
    just after the IOC sent a burst (a put's completion, monitors) then waited for the
    TCP acknowledgement its peer delays by 40 ms: half the events of
    ``count([spot, I])`` took 40 ms longer (benchmarks/README.md, "Nagle"). Every
    EPICS server and client (rsrv, libca, pvxs) sets TCP_NODELAY.
    """
    from caproto.asyncio.server import Context

    class NoDelayContext(Context):
        async def tcp_handler(self, client, addr):
            sock = client.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await super().tcp_handler(client, addr)

        def _find_hook_methods(self, *attrs):
            # a database that says its channels have no startup/shutdown hooks (the
            # ADSim's, built record by record on first use) is not walked for them
            if not getattr(self.pvdb, "has_hooks", True):
                return {}
            return super()._find_hook_methods(*attrs)

    return NoDelayContext


def _run(pvdb: dict, interfaces: list[str], log_pv_names: bool, startup_hook) -> None:
    """caproto's ``run``, with :data:`UDP_RECEIVE_BUFFER` on its UDP sockets and
    TCP_NODELAY on its circuits (:func:`_server_context`)."""

    async def main():
        _watch_sigint()
        context = _server_context()(pvdb, interfaces)

        async def hook(async_lib):
            for udp in context.udp_socks.values():
                udp.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            await startup_hook(async_lib)

        await context.run(log_pv_names=log_pv_names, startup_hook=hook)

    _end_on_sigint()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
