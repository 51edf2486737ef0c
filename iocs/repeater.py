"""The beamline's Channel Access repeater: the IOCs' beacons, fanned out to its clients.

libca (pyepics, so ophyd) registers with a repeater on ``EPICS_CA_REPEATER_PORT`` when
its context starts. With none running it tries to spawn the ``caRepeater`` executable,
which a pip install does not have ("caRepeater couldn't be located"), and complains
again after 50 unconfirmed tries. caproto's repeater records libca's registration (a
zero-length datagram) without confirming it, so libca complains all the same. This one
confirms both forms of registration, as EPICS's own caRepeater does, and is plain
Python, so it starts in milliseconds.

It listens on this host only: registrations and unicast on 127.0.0.1, the IOCs'
beacons on 127.255.255.255 (where they send them). Binding 127.0.0.1 makes the port
busy for libca's "is a repeater running?" test. If the port is already taken, another
repeater serves it: exit 0.

    python -m simbeamline_iocs.repeater        (port from EPICS_CA_REPEATER_PORT, 5065)
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys

_HEADER = struct.Struct(">HHHHII")
BEACON, REPEATER_CONFIRM, REPEATER_REGISTER = 13, 17, 24
#: Where registrations arrive and where the IOCs' beacons arrive.
LISTEN = ("127.0.0.1", "127.255.255.255")


def _address(host: str) -> int:
    return struct.unpack(">I", socket.inet_aton(host))[0]


class Repeater:
    """Registered clients, each a UDP socket connected to it (a closed client port shows
    up as ConnectionRefusedError on a later send, and the client is dropped)."""

    def __init__(self):
        self.clients: dict[tuple[str, int], socket.socket] = {}

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        """One datagram from *source*: a registration, or something to fan out."""
        if len(data) >= _HEADER.size:
            command, size, data_type, count, p1, p2 = _HEADER.unpack_from(data)
            if command == REPEATER_REGISTER:
                return self.register(source)
            if command == BEACON and p2 == 0:  # the server left its address to us
                data = _HEADER.pack(command, size, data_type, count, p1,
                                    _address(source[0])) + data[_HEADER.size:]
        elif not data:  # libca's form of registration
            return self.register(source)
        self.fan_out(data, source)

    def register(self, client: tuple[str, int]) -> None:
        if client not in self.clients:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(client)
            self.clients[client] = sock
        self.send(client, _HEADER.pack(REPEATER_CONFIRM, 0, 0, 0, 0, _address(client[0])))

    def fan_out(self, data: bytes, source: tuple[str, int]) -> None:
        for client in list(self.clients):
            if client != source:
                self.send(client, data)

    def send(self, client: tuple[str, int], data: bytes) -> None:
        try:
            self.clients[client].send(data)
        except OSError:  # the client is gone (its port refused an earlier datagram)
            self.clients.pop(client).close()


def bind(port: int) -> list[socket.socket] | None:
    """The listening sockets, or None if another process holds the port."""
    sockets = []
    try:
        for host in LISTEN:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.bind((host, port))
    except OSError:
        for sock in sockets:
            sock.close()
        return None
    return sockets


def main() -> int:
    port = int(os.environ.get("EPICS_CA_REPEATER_PORT", "5065"))
    sockets = bind(port)
    if sockets is None:
        print(f"repeater: port {port} is taken; another repeater serves it", flush=True)
        return 0
    print(f"repeater: listening on {', '.join(LISTEN)} port {port}", flush=True)
    repeater = Repeater()
    while True:
        ready, _, _ = select.select(sockets, [], [])
        for sock in ready:
            try:
                data, source = sock.recvfrom(65536)
            except OSError:
                continue
            repeater.handle(data, source)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
