"""NDPluginAttribute (Attr1): the value of up to eight named attributes of each frame,
and their running sums.

For each N in 1..8, ``Attr1:N:AttrName`` names what to follow: one of the four
values every NDArray carries (``NDArrayUniqueId``, ``NDArrayTimeStamp``,
``NDArrayEpicsTSSec``, ``NDArrayEpicsTSNsec``) or an NDAttribute of the frame (the
simDetector's ``ColorMode``). Each frame sets ``Attr1:N:Value_RBV`` and adds it to
``Attr1:N:ValueSum_RBV``; a name the frame does not carry leaves both alone, as
NDPluginAttribute does; ``Attr1:Reset`` zeroes them. Each frame also sends the
eight values to address 1 of the ATTR1 port, where Attr1:TS (ATTR1_TS,
:mod:`.timeseries`) makes them the time series ``Attr1:N:TSArrayValue``.
"""

from __future__ import annotations

import numpy as np

from .h5writer import EPICS_EPOCH
from .plugins import NDArray, Plugin

ATTRIBUTES = 8
#: NDColorMode numbers (NDAttribute ColorMode of the driver)
COLOR_MODES = {"Mono": 0, "Bayer": 1, "RGB1": 2, "RGB2": 3, "RGB3": 4, "YUV444": 5,
               "YUV422": 6, "YUV411": 7}


def attribute_value(array: NDArray, name: str) -> float | None:
    """The value NDPluginAttribute reads for *name* from *array*, or None if the
    frame carries no such attribute."""
    sec = int(array.timestamp)       # as the plugins' EpicsTSSec_RBV/EpicsTSNsec_RBV
    if name == "NDArrayUniqueId":
        return float(array.unique_id)
    if name == "NDArrayTimeStamp":
        return array.timestamp - EPICS_EPOCH          # seconds since the EPICS epoch
    if name == "NDArrayEpicsTSSec":
        return float(sec - EPICS_EPOCH)
    if name == "NDArrayEpicsTSNsec":
        return float(int((array.timestamp - sec) * 1e9))
    if name == "ColorMode":
        return float(COLOR_MODES.get(array.color_mode, 0))
    return None


class AttributePlugin(Plugin):
    """Attr1: per frame, the named attributes' values and their sums."""

    #: compression aware in ADCore (it reads attributes, never pixels): it takes
    #: Codec1/2's compressed frames too
    compression_aware = True

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.sums = [0.0] * ATTRIBUTES
        self.ioc.register(self.pv("Reset"), self._reset)

    async def _reset(self, value):
        if value in (1, "Reset"):
            self.sums = [0.0] * ATTRIBUTES
            await self.post({f"{n}:{field}": 0.0 for n in range(1, ATTRIBUTES + 1)
                             for field in ("Value_RBV", "ValueSum_RBV")})
        return value

    async def handle(self, array: NDArray):
        values = {}
        for n in range(1, ATTRIBUTES + 1):
            value = attribute_value(array, str(self.get(f"{n}:AttrName")))
            if value is None:
                continue
            self.sums[n - 1] += value
            values.update({f"{n}:Value_RBV": value, f"{n}:ValueSum_RBV": self.sums[n - 1]})
        await self.post(values)
        # the time-series point (Attr1:TS): every attribute's Value_RBV, one not in
        # this frame its last value, as a 1-D Float64 NDArray on address 1
        point = np.array([float(self.get(f"{n}:Value_RBV")) for n in range(1, ATTRIBUTES + 1)])
        await self.chain.publish(self.port, NDArray(point, array.unique_id, array.timestamp), 1)
