"""Where the ADSimDetector IOC's PV Access server listens: the one place the PVA ports
are derived from the IOC's Channel Access port (the README gives the rule).

The server binds the host the IOC's CA server binds; its TCP port is the CA port
+ 10000 and its search (UDP) port the one after: 15064 and 15065 for CA port 5064.
A class of beamlines on one host (CA ports 5600 + 2(n-1), each repeater on the next
port) repeats its layout 10000 ports up, so no beamline's PVA ports meet another's
CA or PVA ports. Imports nothing: the command line and the profile use it without
loading p4p or the IOC.
"""

from __future__ import annotations

#: PVA server TCP port = CA port + PVA_PORT_OFFSET; search UDP port = that + 1
PVA_PORT_OFFSET = 10000


def pva_ports(ca_port: int) -> tuple[int, int]:
    """(server TCP port, search UDP port) of the PV Access server of an IOC whose
    Channel Access server listens on *ca_port*."""
    return ca_port + PVA_PORT_OFFSET, ca_port + PVA_PORT_OFFSET + 1


def server_conf(host: str, ca_port: int) -> dict[str, str]:
    """EPICS_PVAS_* of the IOC's PVA server: bound to *host* only, beacons sent on
    loopback to this beamline's search port (as its CA beacons)."""
    tcp, udp = pva_ports(ca_port)
    return {"EPICS_PVAS_INTF_ADDR_LIST": host, "EPICS_PVAS_SERVER_PORT": str(tcp),
            "EPICS_PVAS_BROADCAST_PORT": str(udp),
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_PVAS_BEACON_ADDR_LIST": "127.255.255.255"}


def client_conf(host: str, ca_port: int) -> dict[str, str]:
    """EPICS_PVA_* that make a PVA client (p4p, pvget) search only the IOC bound to
    *host* whose CA port is *ca_port*."""
    tcp, udp = pva_ports(ca_port)
    return {"EPICS_PVA_ADDR_LIST": f"{host}:{udp}", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVA_BROADCAST_PORT": str(udp), "EPICS_PVA_SERVER_PORT": str(tcp)}
