"""Where the ADSimDetector IOC's PV Access server listens, and how a client finds it:
the one place the PVA ports are derived from the IOC's Channel Access port.

The server binds the host the IOC's CA server binds; its TCP port is the CA port
+ 10000 and its search (UDP) port the one after: 15064 and 15065 for CA port 5064.
A class of beamlines on one host (CA ports 5600 + 2(n-1), each repeater on the next
port) repeats its layout 10000 ports up, so no beamline's PVA ports meet another's
CA or PVA ports.

Clients search by TCP (EPICS_PVA_NAME_SERVERS = host:TCP port), not by UDP: pvxs
answers a UDP search with "reply to the sender's address" from a socket bound to
0.0.0.0, so the reply of an IOC on 127.0.0.3 comes from 127.0.0.1 and the client
then connects to 127.0.0.1, where nothing listens. Imports nothing: the command line
and the profile use it without loading p4p or the IOC.
"""

from __future__ import annotations

#: PVA server TCP port = CA port + PVA_PORT_OFFSET; search UDP port = that + 1
PVA_PORT_OFFSET = 10000


def pva_ports(ca_port: int) -> tuple[int, int]:
    """(server TCP port, search UDP port) of the PV Access server of an IOC whose
    Channel Access server listens on *ca_port*."""
    return ca_port + PVA_PORT_OFFSET, ca_port + PVA_PORT_OFFSET + 1


def server_conf(host: str, ca_port: int) -> dict[str, str]:
    """EPICS_PVAS_* of the IOC's PVA server: bound to *host* only, no beacons (its
    clients ask it directly, see :func:`client_conf`)."""
    tcp, udp = pva_ports(ca_port)
    return {"EPICS_PVAS_INTF_ADDR_LIST": host, "EPICS_PVAS_SERVER_PORT": str(tcp),
            "EPICS_PVAS_BROADCAST_PORT": str(udp),
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO", "EPICS_PVAS_BEACON_ADDR_LIST": ""}


def client_conf(host: str, ca_port: int) -> dict[str, str]:
    """EPICS_PVA_* that make a PVA client (p4p, pvxs tools) ask the IOC bound to *host*
    whose CA port is *ca_port*, and no other server."""
    tcp, _ = pva_ports(ca_port)
    return {"EPICS_PVA_NAME_SERVERS": f"{host}:{tcp}", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVA_ADDR_LIST": ""}
