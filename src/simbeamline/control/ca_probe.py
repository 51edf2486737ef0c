"""Does an IOC (or a CA repeater) answer? Channel Access questions in plain Python.

The command line asks this of every IOC at ``start`` and ``status``; importing a CA
client library for the question (caproto imports numpy) costs more than the answer.

- :class:`Channel`: connect to the IOC's TCP port and create a channel for a PV, as
  any client does first. TCP, not a UDP name search: a loaded IOC (a class of
  sessions connecting at once) drops search datagrams, and a probe must not call such
  an IOC down. :meth:`Channel.state` tells four cases apart: the IOC creates the
  channel (:data:`SERVES`), refuses it (:data:`LACKS`: it does not serve that PV),
  accepts the connection but does not reply in time (:data:`SILENT`: alive but busy),
  or nothing listens (:data:`DOWN`).
- :class:`Repeater`: REPEATER_REGISTER to this host's CA repeater, which confirms
  (what libca asks before it would try to spawn one).

:func:`answering` asks many at once, one thread each, retrying every *interval*
seconds until each answers or the time is up, so a process is seen within an
interval of coming up.
"""

from __future__ import annotations

import dataclasses
import getpass
import socket
import struct
import threading
import time
from collections.abc import Hashable, Mapping

#: CA message header: command, payload size, data type, data count, parameter 1 and 2.
_HEADER = struct.Struct(">HHHHII")
_VERSION, _REPEATER_CONFIRM, _CREATE_CHAN, _CLIENT_NAME, _HOST_NAME = 0, 17, 18, 20, 21
_REPEATER_REGISTER, _CREATE_CH_FAIL = 24, 26
_MINOR_VERSION = 13
_LOOPBACK = 0x7F000001   #: 127.0.0.1, the address a repeater client registers from
#: Seconds between two questions to a process that has not answered yet.
INTERVAL = 0.05
#: What :meth:`Channel.state` found.
SERVES, LACKS, SILENT, DOWN = "serves", "lacks", "silent", "down"


def _message(command: int, payload: bytes = b"", data_type: int = 0, data_count: int = 0,
             p1: int = 0, p2: int = 0) -> bytes:
    if payload:
        payload += b"\0" * (8 - len(payload) % 8)  # NUL-terminated, padded to 8
    return _HEADER.pack(command, len(payload), data_type, data_count, p1, p2) + payload


def commands(data: bytes) -> list[int]:
    """The command numbers of the complete CA messages at the start of *data*."""
    found, offset = [], 0
    while offset + _HEADER.size <= len(data):
        command, size, *_ = _HEADER.unpack_from(data, offset)
        if offset + _HEADER.size + size > len(data):
            break
        found.append(command)
        offset += _HEADER.size + size
    return found


@dataclasses.dataclass(frozen=True)
class Channel:
    """Create a channel for *pv* on the IOC at *host*:*port* (over TCP)."""

    pv: str
    host: str
    port: int

    def request(self) -> bytes:
        return (_message(_VERSION, data_count=_MINOR_VERSION)
                + _message(_CLIENT_NAME, getpass.getuser().encode())
                + _message(_HOST_NAME, socket.gethostname().encode())
                + _message(_CREATE_CHAN, self.pv.encode(), p1=1, p2=_MINOR_VERSION))

    def ask(self, deadline: float, interval: float) -> bool:
        """True once the channel is created; False if refused or at *deadline*."""
        return self.state(deadline, interval) == SERVES

    def state(self, deadline: float, interval: float = INTERVAL) -> str:
        """:data:`SERVES` or :data:`LACKS` as soon as the IOC says; at *deadline*,
        :data:`SILENT` if it accepted a connection, else :data:`DOWN`."""
        request = self.request()
        accepted = False
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                with socket.create_connection((self.host, self.port), timeout=remaining) as sock:
                    accepted = True
                    sock.sendall(request)
                    answer = _read_until(sock, {_CREATE_CHAN, _CREATE_CH_FAIL}, deadline)
                    if answer is not None:
                        return SERVES if answer == _CREATE_CHAN else LACKS
            except OSError:  # refused (nothing listens yet), reset, or out of time
                pass
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))  # next try
        return SILENT if accepted else DOWN


def _read_until(sock: socket.socket, wanted: set[int], deadline: float) -> int | None:
    """The first command of *wanted* the server sends, or None if it closes first."""
    data = b""
    while True:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
        for command in commands(data):
            if command in wanted:
                return command


@dataclasses.dataclass(frozen=True)
class Repeater:
    """Register with this host's CA repeater on UDP *port*; it confirms if it runs."""

    port: int

    def ask(self, deadline: float, interval: float) -> bool:
        request = _message(_REPEATER_REGISTER, p2=_LOOPBACK)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while time.monotonic() < deadline:
                sock.sendto(request, ("127.0.0.1", self.port))
                sock.settimeout(max(0.001, min(interval, deadline - time.monotonic())))
                try:
                    if _REPEATER_CONFIRM in commands(sock.recv(4096)):
                        return True
                except OSError:  # no reply within the interval (or port closed): ask again
                    pass
        return False


def refused(pvs: list[str], host: str, port: int, timeout: float) -> list[str]:
    """The PVs of *pvs* the IOC at *host*:*port* refuses a channel for (it does not
    serve them), asked one after another within *timeout* seconds in all; a PV not
    answered in time is not counted (a busy IOC is not a lacking one)."""
    deadline = time.monotonic() + timeout
    return [pv for pv in pvs if Channel(pv, host, port).state(deadline) == LACKS]


def answering(probes: Mapping[Hashable, Channel | Repeater], timeout: float,
              interval: float = INTERVAL) -> set:
    """The keys of *probes* answered within *timeout* seconds; returns as soon as every
    probe has its answer."""
    deadline = time.monotonic() + timeout
    answered: set = set()

    def ask(key, probe):
        if probe.ask(deadline, interval):
            answered.add(key)

    threads = [threading.Thread(target=ask, args=item, daemon=True) for item in probes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered
