"""The beamline's CA repeater and the launcher's plain-Python CA probes."""

from __future__ import annotations

import socket
import struct
import time

from simbeamline.control import ca_probe
from simbeamline_iocs import repeater as rep

HEADER = struct.Struct(">HHHHII")


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    return sock


def test_repeater_confirms_libca_zero_length_registration(beamline):
    """libca registers with an empty datagram; caproto's repeater never confirms it, so
    libca complained "unable to contact CA repeater after 50 tries". Ours confirms."""
    with udp_socket() as client:
        client.sendto(b"", ("127.0.0.1", beamline.repeater_port))
        command, *_, address = HEADER.unpack(client.recv(1024)[:16])
    assert command == rep.REPEATER_CONFIRM
    assert address == struct.unpack(">I", socket.inet_aton("127.0.0.1"))[0]
    assert ca_probe.answering({"r": ca_probe.Repeater(beamline.repeater_port)}, 10) == {"r"}


def test_repeater_fans_beacons_out_with_the_sender_address():
    """Unit test of the fan-out: a beacon with no address gets its sender's, and goes to
    every registered client but the sender."""
    repeater = rep.Repeater()
    with udp_socket() as a, udp_socket() as b:
        for client in (a, b):
            repeater.handle(b"", client.getsockname())
            assert HEADER.unpack(client.recv(1024)[:16])[0] == rep.REPEATER_CONFIRM
        beacon = HEADER.pack(rep.BEACON, 0, 13, 5064, 7, 0)
        repeater.handle(beacon, ("127.0.0.5", 40000))
        for client in (a, b):
            command, _, _, port, _, address = HEADER.unpack(client.recv(1024)[:16])
            assert (command, port, address) == (rep.BEACON, 5064, 0x7F000005)


def test_probe_tells_serves_lacks_and_down_apart(beamline):
    host, port = beamline.beamline_host, beamline.ca_port

    def state(pv, port=port, timeout=10.0):
        return ca_probe.Channel(pv, host, port).state(time.monotonic() + timeout)

    assert state(f"{beamline.prefix}current") == ca_probe.SERVES
    assert state("nobody:current") == ca_probe.LACKS
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind((host, 0))
        free = unused.getsockname()[1]
    assert state("x", port=free, timeout=0.3) == ca_probe.DOWN


def test_commands_parses_only_complete_messages():
    one = HEADER.pack(18, 8, 0, 0, 1, 13) + b"abc\0\0\0\0\0"
    assert ca_probe.commands(one + one[:20]) == [18]
