"""NDPluginROIStat (ROIStat1): the basic statistics of up to eight regions of each
frame, without copying the regions out (as ROI1 + Stats would).

For each N in 1..8 with ``ROIStat1:N:Use`` Yes: the region ``MinX``/``MinY``,
``SizeX``/``SizeY`` clamped into the frame as NDPluginROIStat clamps it (shown in the
``_RBV`` records, the frame's size in ``MaxSizeX_RBV``/``MaxSizeY_RBV``), and of it
``MinValue_RBV``, ``MaxValue_RBV``, ``MeanValue_RBV``, ``Total_RBV`` and ``Net_RBV``
(Total less the mean of a border ``BgdWidth`` pixels wide inside the region, times
the region's pixels). ``N:Reset`` zeroes one region's values, ``ResetAll`` all.
Frames are passed on unchanged. 1-D and 2-D (Mono) frames only, as the C plugin.

Its own time series: ``TSControl`` Erase/Start (erase, then acquire), Start (go on,
if not full), Stop, Read, Erase; while ``TSAcquiring`` each frame adds one point
(``TSCurrentPoint``) of the six values (:data:`TS_VALUES`) of every region in use,
until ``TSNumPoints``; the waveforms ``N:TSMinValue`` ... ``N:TSTimestamp`` show the
points so far, published on Stop, Read, Erase, when full, and each second while
acquiring (``TSRead``'s scan).
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from ..clock import CLOCK
from .h5writer import EPICS_EPOCH
from .plugins import NDArray, Plugin

log = logging.getLogger(__name__)

ROIS = 8
VALUES = ("MinValue", "MaxValue", "MeanValue", "Total", "Net")
#: the time series of each region (NDPluginROIStatTSType order)
TS_VALUES = VALUES + ("Timestamp",)
TS_CONTROLS = ("Erase/Start", "Start", "Stop", "Read", "Erase")


def clamp_region(offset: int, size: int, dim: int) -> tuple[int, int]:
    """(offset, size) of a region within a dimension of *dim* pixels: the offset in
    0..dim-1, the size at least 1 and at most what remains (NDPluginROIStat)."""
    offset = min(max(int(offset), 0), dim - 1)
    size = min(max(int(size), 1), dim - offset)
    return offset, size


def region_statistics(frame: np.ndarray, offset: tuple[int, int], size: tuple[int, int],
                      bgd_width: int = 0) -> dict[str, float]:
    """MinValue, MaxValue, MeanValue, Total and Net of the region of *frame* (numpy
    (y, x), or 1-D) at *offset*/*size* ((x, y), already clamped).

    The background, with *bgd_width* > 0, is the mean of the region's top and bottom
    rows and of its left and right columns between them, each *bgd_width* wide (at
    most the region's size; pixels in two of these bands counted twice, as the C loops
    count them); Net = Total - background mean * region pixels."""
    (x0, y0), (sx, sy) = offset, size
    if frame.ndim == 1:
        region = frame[x0:x0 + sx].astype(np.float64)[np.newaxis, :]
        sy = 1
    else:
        region = frame[y0:y0 + sy, x0:x0 + sx].astype(np.float64)
    total = float(region.sum())
    bgd = 0.0
    if bgd_width > 0:
        bwx = min(bgd_width, sx)
        if frame.ndim == 1:
            bands = [region[:, :bwx], region[:, sx - bwx:]]
        else:
            bwy = min(bgd_width, sy)
            middle = region[bwy:max(bwy, sy - bwy)]
            bands = [region[:bwy], region[sy - bwy:], middle[:, :bwx], middle[:, sx - bwx:]]
        count = sum(band.size for band in bands)
        if count:
            bgd = sum(float(band.sum()) for band in bands) / count * region.size
    return {"MinValue": float(region.min()), "MaxValue": float(region.max()),
            "MeanValue": total / region.size, "Total": total, "Net": total - bgd}


class ROIStatPlugin(Plugin):
    """ROIStat1: per frame, the statistics of each region in use."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        for n in range(1, ROIS + 1):
            self.ioc.register(self.pv(f"{n}:Reset"), self._reset(n))
        self.ioc.register(self.pv("ResetAll"), self._reset_all)
        self.ts_points = max(int(self.get("TSNumPoints") or 2048), 1)
        self.ts = np.zeros((ROIS, len(TS_VALUES), self.ts_points))
        self.ts_current = 0
        self.ts_acquiring = False
        self.ts_stop = asyncio.Event()
        self.ioc.register(self.pv("TSControl"), self._put_ts_control)
        self.ioc.register(self.pv("TSRead"), self._put_ts_read)
        self.ioc.register(self.pv("TSNumPoints"), self._put_ts_points)

    # -- the time series -------------------------------------------------------
    async def _put_ts_control(self, value):
        control = TS_CONTROLS[value] if isinstance(value, int) else value
        if control not in TS_CONTROLS:
            raise ValueError(f"{self.name}:TSControl is one of {TS_CONTROLS}, not {value!r}")
        if control in ("Erase/Start", "Erase"):
            await self._ts_erase()
        if control == "Erase/Start" or (control == "Start" and self.ts_current < self.ts_points):
            await self._ts_acquiring(True)
        elif control == "Stop":
            await self._ts_acquiring(False)
        if control in ("Stop", "Read", "Erase"):
            await self.publish_ts()
        return value

    async def _put_ts_read(self, value):
        """TSRead writes its value to TSControl, but only while acquiring (SDIS)."""
        if self.ts_acquiring:
            await self._put_ts_control(int(value))
        return value

    async def _put_ts_points(self, value):
        self.ts_points = max(int(value), 1)
        self.ts = np.zeros((ROIS, len(TS_VALUES), self.ts_points))
        self.ts_current = min(self.ts_current, self.ts_points)
        return self.ts_points

    async def _ts_erase(self):
        self.ts[:] = 0.0
        self.ts_current = 0
        await self.post({"TSCurrentPoint": 0})

    async def _ts_acquiring(self, on: bool):
        if on and not self.ts_acquiring:
            self.ts_stop = asyncio.Event()
            asyncio.get_running_loop().create_task(self._read_while_acquiring(self.ts_stop))
        if not on:
            self.ts_stop.set()
        self.ts_acquiring = on
        await self.post({"TSAcquiring": "Acquiring" if on else "Done"})

    async def _read_while_acquiring(self, stop: asyncio.Event) -> None:
        while not await CLOCK.wait(1.0, stop):
            try:
                await self.publish_ts()
            except Exception:
                log.exception("%s could not publish its time series", self.name)

    async def publish_ts(self) -> None:
        """Every region's six waveforms, the points so far (doTimeSeriesCallbacks)."""
        values = {}
        for roi in range(ROIS):
            for i, field in enumerate(TS_VALUES):
                pv = self.pv(f"{roi + 1}:TS{field}")
                length = self.ioc.channels[pv].spec.length
                values[pv] = self.ts[roi, i, :min(self.ts_current, length)].copy()
        await self.ioc.post_many(values)

    def _reset(self, n):
        async def handler(value):
            await self.post({f"{n}:{field}_RBV": 0.0 for field in VALUES})
            return value
        return handler

    async def _reset_all(self, value):
        await self.post({f"{n}:{field}_RBV": 0.0 for n in range(1, ROIS + 1) for field in VALUES})
        return value

    async def handle(self, array: NDArray):
        frame = array.data
        if frame.ndim not in (1, 2):
            log.error("%s: the number of array dimensions must be 1 or 2, not %d (%s)",
                      self.name, frame.ndim, array.color_mode)
            return False
        dims = array.dims
        values = {}
        point = self.ts_acquiring and self.ts_current < self.ts_points
        for n in range(1, ROIS + 1):
            if self.get(f"{n}:Use") != "Yes":
                continue
            offset, size = [0, 0], [1, 1]
            for axis, letter in enumerate("XY"[:frame.ndim]):
                offset[axis], size[axis] = clamp_region(
                    self.get(f"{n}:Min{letter}"), self.get(f"{n}:Size{letter}"), dims[axis])
                values.update({f"{n}:MaxSize{letter}_RBV": dims[axis],
                               f"{n}:Min{letter}_RBV": offset[axis],
                               f"{n}:Size{letter}_RBV": size[axis]})
            if frame.ndim == 1:
                values[f"{n}:MaxSizeY_RBV"] = 0
            stats = region_statistics(frame, tuple(offset), tuple(size),
                                      int(self.get(f"{n}:BgdWidth")))
            values.update({f"{n}:{field}_RBV": value for field, value in stats.items()})
            if point:
                self.ts[n - 1, :, self.ts_current] = [
                    *(stats[field] for field in VALUES), array.timestamp - EPICS_EPOCH]
        await self.post(values)
        if point:
            self.ts_current += 1
            await self.post({"TSCurrentPoint": self.ts_current})
            if self.ts_current >= self.ts_points:
                await self._ts_acquiring(False)
                await self.publish_ts()
        return None                                   # passed on unchanged
