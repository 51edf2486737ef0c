"""NDPluginPva (Pva1): each frame it takes, as an NTNDArray over PV Access.

The real plugin serves one pvRecord named by its PV_NAME macro, ``$(P)Pva1:Image``;
this one serves ``<prefix>Pva1:Image`` from a p4p :class:`~p4p.server.Server` holding
one :class:`~p4p.server.thread.SharedPV`. Each frame becomes an NTNDArray as ADCore's
NTNDArrayConverter builds it: the ``value`` union member of the frame's type, one
``dimension`` per axis (x first), ``uniqueId`` = the array's UniqueId, ``dataTimeStamp``
and ``timeStamp`` = its time, sizes, an empty ``codec`` and the NDAttributes the frame
carries (the driver's ``ColorMode``, an Int32, as simDetector adds it). The CA side
(counters, dims, QueueFree, EnableCallbacks, NDArrayPort) is the base plugin's.

Memory: a SharedPV keeps only its latest value; each subscriber's queue in pvxs holds
at most the queueSize its client asked for (4 unless it asks otherwise: p4p, pvget),
newer frames replacing the last queued one, so a stalled client costs a few frames
(no upper limit on what a client may ask for: pvxs has none, p4p's SharedPV exposes
none), and a client that goes away costs nothing.

Addresses: the server binds the host the IOC's CA server binds, on ports derived
from its CA port by :mod:`.pva_address` (the one place), so beamlines sharing a host
on different CA ports (a class) never collide.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from p4p.nt import NTNDArray
from p4p.server import Server
from p4p.server.thread import SharedPV

from .plugins import NDArray, Plugin
from .pva_address import server_conf

log = logging.getLogger(__name__)

#: NDAttrSourceDriver: the sourceType of an attribute the driver adds (ColorMode)
_SOURCE_DRIVER = 0
#: NDColorMode of a frame by its number of dimensions (this simDetector: Mono only)
_COLOR_MODE = {2: 0}


def _time(seconds: float) -> dict:
    sec = int(seconds)
    return {"secondsPastEpoch": sec, "nanoseconds": int((seconds - sec) * 1e9)}


def ntndarray(array: NDArray):
    """*array* as the NTNDArray Value NDPluginPva publishes."""
    value = NTNDArray().wrap(array.data, attrib={})   # value union, dims, sizes
    value["uniqueId"] = array.unique_id
    value["dataTimeStamp"] = value["timeStamp"] = _time(array.timestamp)
    value["codec.name"] = ""
    value["attribute"] = [{"name": "ColorMode",   # ("i", n): an Int32, as NDAttrInt32
                           "value": ("i", _COLOR_MODE.get(array.data.ndim, 0)),
                           "descriptor": "Color mode", "sourceType": _SOURCE_DRIVER,
                           "source": ""}]
    return value


class PvaPlugin(Plugin):
    """NDPluginPva: publishes each frame it takes on ``<prefix><name>:Image``."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.channel = f"{self.ioc.prefix}{name}:Image"
        self.image = None
        self.server = None

    async def start(self, host: str, ca_port: int) -> None:
        """Serve the channel (an empty NTNDArray until the first frame) on *host*;
        the server's threads end with the process (p4p stops it at exit)."""
        await self.post({"PvName_RBV": self.channel})
        self.image = SharedPV(initial=ntndarray(NDArray(np.zeros((0, 0), np.uint8), 0, 0.0)))
        conf = server_conf(host, ca_port)
        wanted = conf["EPICS_PVAS_SERVER_PORT"]
        try:
            self.server = Server(providers=[{self.channel: self.image}], conf=conf, useenv=False)
        except Exception as exc:   # the IOC still serves everything over CA
            log.error("%s: cannot serve PV Access on %s:%s: %s", self.channel, host, wanted, exc)
            return
        port = self.server.conf()["EPICS_PVAS_SERVER_PORT"]
        if port != wanted:         # pvxs falls back to a random port when ours is taken
            log.error("%s: PV Access port %s:%s is taken; serving on port %s, where clients "
                      "(EPICS_PVA_NAME_SERVERS=%s:%s) will not look", self.channel, host, wanted,
                      port, host, wanted)
        else:
            log.info("%s served over PV Access on %s:%s", self.channel, host, port)

    async def handle(self, array):
        if self.image is not None:
            value = await asyncio.get_running_loop().run_in_executor(None, ntndarray, array)
            self.image.post(value)
