"""Each IOC's UDP search sockets are bound to its own address and to broadcast
addresses (to answer this host's broadcast searches), never to 0.0.0.0; its TCP
circuits send without Nagle's delay. Read from the IOC processes themselves (Linux's
/proc, and pidfd_getfd for a socket's options)."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from pathlib import Path

import pytest

from simbeamline.control import launcher
from simbeamline_iocs.server import broadcast_addresses

pytestmark = pytest.mark.skipif(not Path("/proc/net/udp").exists(),
                                reason="reads the sockets from Linux's /proc")


def udp_bindings(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every IPv4 UDP socket process *pid* holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    bindings = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            address, port = fields[1].split(":")
            ip = socket.inet_ntoa(struct.pack("<I", int(address, 16)))
            bindings.add((ip, int(port, 16)))
    return bindings


def test_search_sockets_are_bound_to_the_iocs_own_and_broadcast_addresses(beamline):
    rpc = launcher._rpc(beamline)
    allowed_broadcasts = set(broadcast_addresses())
    for ioc in launcher.iocs(beamline):
        pid = rpc.supervisor.getProcessInfo(ioc.name)["pid"]
        on_port = {ip for ip, port in udp_bindings(pid) if port == beamline.ca_port}
        assert "0.0.0.0" not in on_port, f"{ioc.name} listens on 0.0.0.0:{beamline.ca_port}"
        assert ioc.host in on_port, f"{ioc.name} does not listen on {ioc.host}"
        assert on_port <= {ioc.host} | allowed_broadcasts, (ioc.name, on_port)


def test_broadcast_addresses_are_broadcasts():
    addresses = broadcast_addresses()
    assert addresses[:2] == ["255.255.255.255", "127.255.255.255"]
    assert "0.0.0.0" not in addresses


def _established_tcp_inodes(pid: int, port: int) -> list[int]:
    """fd numbers of process *pid*'s established IPv4 TCP sockets on local *port*."""
    fds = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            fds[target[8:-1]] = int(fd.name)
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in fds:   # ESTABLISHED
            found.append(fds[fields[9]])
    return found


def _socket_of(pid: int, fd: int) -> socket.socket:
    """A duplicate, in this process, of process *pid*'s socket *fd* (pidfd_getfd)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(438, pidfd, fd, 0)      # SYS_pidfd_getfd on x86_64 and arm64
        if copy < 0:
            pytest.skip(f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=copy)


def test_iocs_send_without_nagle_delay(beamline):
    """Every IOC's CA circuits have TCP_NODELAY, as rsrv's do: with Nagle on, a read
    just after the IOC sent a burst waited 40 ms for a delayed acknowledgement."""
    import epics

    rpc = launcher._rpc(beamline)
    for ioc in launcher.iocs(beamline):
        channel = epics.PV(ioc.ready_pv)
        assert channel.wait_for_connection(timeout=10), ioc.ready_pv
        pid = rpc.supervisor.getProcessInfo(ioc.name)["pid"]
        circuits = _established_tcp_inodes(pid, beamline.ca_port)
        assert circuits, f"{ioc.name}: no CA circuit found"
        for fd in circuits:
            with _socket_of(pid, fd) as sock:
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), \
                    f"{ioc.name}: a CA circuit has Nagle's algorithm on"
        channel.disconnect()


@pytest.mark.parametrize("environment, expected", [
    ({}, 0.001), ({"CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC": "0.02"}, 0.02)])
def test_iocs_hold_a_burst_of_monitors_1_ms_not_10(environment, expected):
    """caproto's server waits CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC for more updates
    before sending the tail of a burst (default 10 ms: a frame's sum and counter came
    10 ms after its image). The IOC package sets 1 ms before caproto reads it, unless
    the environment says otherwise; checked in the interpreter an IOC would run in."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC"}
    code = ("import simbeamline_iocs.beamline, caproto.server.common as c; "
            "print(c.HIGH_LOAD_TIMEOUT)")
    out = subprocess.run([sys.executable, "-c", code], env={**env, **environment},
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert float(out) == expected
