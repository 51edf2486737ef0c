"""Each IOC's UDP search sockets are bound to its own address and to broadcast
addresses (to answer this host's broadcast searches), never to 0.0.0.0."""

from __future__ import annotations

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
