"""NDPluginPva (Pva1): each frame it takes, as an NTNDArray over PV Access.

The real plugin serves one pvRecord named by its PV_NAME macro, ``$(P)Pva1:Image``;
this one serves ``<prefix>Pva1:Image`` from a p4p :class:`~p4p.server.Server` holding
one :class:`~p4p.server.thread.SharedPV`. Each frame becomes an NTNDArray as ADCore's
NTNDArrayConverter builds it: the ``value`` union member of the frame's type, one
``dimension`` per axis (x first), ``uniqueId`` = the array's UniqueId, ``dataTimeStamp``
and ``timeStamp`` = its time, sizes, ``codec`` and the NDAttributes the frame carries
(the driver's ``ColorMode``, an Int32, as simDetector adds it). Pva1 is compression
aware, as the C plugin is: a frame compressed by Codec1/2 goes out as the converter
sends it, ``ubyteValue`` holding the compressed bytes, ``codec.name`` the codec
("blosc", "lz4", "bslz4", "jpeg", "zlib"), ``compressedSize`` their length and
``uncompressedSize`` the frame's; ``codec.parameters`` holds the uncompressed data
type (a pvData ScalarType code, an int) for every frame, compressed or not, so a
client can decompress. The CA side (counters, dims, QueueFree, EnableCallbacks,
NDArrayPort) is the base plugin's.

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
import sys

import numpy as np

from ..epics_libraries import import_without_setuptools

if "p4p" not in sys.modules:    # 0.15 s instead of 0.6 s, a third of the IOC's start
    import_without_setuptools("p4p")

from p4p.nt import NTNDArray  # noqa: E402
from p4p.server import Server  # noqa: E402
from p4p.server.thread import SharedPV  # noqa: E402

from .plugins import NDArray, Plugin  # noqa: E402
from .pva_address import server_conf  # noqa: E402

log = logging.getLogger(__name__)

#: NDAttrSourceDriver: the sourceType of an attribute the driver adds (ColorMode)
_SOURCE_DRIVER = 0
#: NDColorMode's values (NDArray.h) of the colour modes the simulation makes
_COLOR_MODE = {"Mono": 0, "RGB1": 2, "RGB2": 3, "RGB3": 4}
#: pvData's ScalarType code of each NDDataType (ntndArrayConverter's NDDataTypeToScalar):
#: what codec.parameters says of the uncompressed frame
_SCALAR_TYPE = {"Int8": 1, "Int16": 2, "Int32": 3, "Int64": 4, "UInt8": 5, "UInt16": 6,
                "UInt32": 7, "UInt64": 8, "Float32": 9, "Float64": 10}


def _time(seconds: float) -> dict:
    sec = int(seconds)
    return {"secondsPastEpoch": sec, "nanoseconds": int((seconds - sec) * 1e9)}


def ntndarray(array: NDArray):
    """*array* as the NTNDArray Value NDPluginPva publishes."""
    if array.codec:
        # the compressed bytes as ubyteValue; dims, sizes as the uncompressed frame's
        value = NTNDArray().wrap(np.frombuffer(array.compressed, dtype=np.uint8), attrib={})
        value["dimension"] = [{"size": n, "offset": 0, "fullSize": n, "binning": 1,
                               "reverse": False} for n in array.dims]
        value["compressedSize"] = array.compressed_size
        value["uncompressedSize"] = array.data.nbytes
    else:
        value = NTNDArray().wrap(array.data, attrib={})   # value union, dims, sizes
    value["uniqueId"] = array.unique_id
    value["dataTimeStamp"] = value["timeStamp"] = _time(array.timestamp)
    value["codec.name"] = array.codec
    value["codec.parameters"] = ("i", _SCALAR_TYPE[array.data_type])   # a pvInt
    value["attribute"] = [{"name": "ColorMode",   # ("i", n): an Int32, as NDAttrInt32
                           "value": ("i", _COLOR_MODE.get(array.color_mode, 0)),
                           "descriptor": "Color mode", "sourceType": _SOURCE_DRIVER,
                           "source": ""}]
    return value


class PvaPlugin(Plugin):
    """NDPluginPva: publishes each frame it takes on ``<prefix><name>:Image``."""

    compression_aware = True

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
