"""The simDetector driver: ImageMode/NumImages, AcquireTime/AcquirePeriod on the
simulation clock (:mod:`simbeamline_iocs.clock`: real time at scale 1, the beamline's
``time_scale`` PV followed), Acquire/Acquire_RBV/AcquireBusy, DetectorState,
counters, abort. With the beamline's ``fault:adsim:hang`` On an exposure never ends
until aborted.

One acquisition is one task. It posts, strictly in this order, Acquire_RBV and
AcquireBusy = Acquiring at its start, then the frames (each after AcquireTime has
elapsed), then (after the plugins have drained when WaitForPlugins is Yes)
Acquire_RBV = Done and AcquireBusy = Done, exactly once. A put with completion on
Acquire returns then.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from caproto import SkipWrite

from ..clock import CLOCK
from .frames import FrameCache, SimParams, clamp_region, compute_frame
from .plugins import NDArray

log = logging.getLogger(__name__)

#: cam1 record -> SimParams field (records whose value the frame depends on).
PARAM_RECORDS = {
    "SimMode": "sim_mode", "DataType": "data_type", "MinX": "min_x", "MinY": "min_y",
    "SizeX": "size_x", "SizeY": "size_y", "BinX": "bin_x", "BinY": "bin_y",
    "Gain": "gain", "GainX": "gain_x", "GainY": "gain_y", "Offset": "offset", "Noise": "noise",
    "PeakStartX": "peak_start_x", "PeakStartY": "peak_start_y",
    "PeakWidthX": "peak_width_x", "PeakWidthY": "peak_width_y",
    "PeakNumX": "peak_num_x", "PeakNumY": "peak_num_y",
    "PeakStepX": "peak_step_x", "PeakStepY": "peak_step_y", "PeakVariation": "peak_variation",
}


class Driver:
    def __init__(self, ioc, *, stage_scale: float = 4.0):
        self.ioc = ioc
        self.stage_scale = stage_scale   # pixels per stage unit (the peak follows samx/samy)
        self.task: asyncio.Task | None = None
        self.done = asyncio.Event()
        self.done.set()
        self.stop = asyncio.Event()
        self.frame_number = 0
        self.array_counter = 0
        self.rng = np.random.default_rng()
        self.frame_cache = FrameCache()
        reg = ioc.register
        reg("cam1:Acquire", self._put_acquire)
        reg("cam1:AcquireTime", self._put_nonnegative)
        reg("cam1:AcquirePeriod", self._put_nonnegative)
        reg("cam1:NumImages", self._put_at_least_one)
        reg("cam1:NumExposures", self._put_at_least_one)
        reg("cam1:ArrayCounter", self._put_array_counter)
        reg("cam1:ColorMode", self._put_color_mode)
        for axis in "XY":
            for field in ("Min", "Size", "Bin"):
                reg(f"cam1:{field}{axis}", self._put_region(field, axis))

    # -- puts ----------------------------------------------------------------
    def cam(self, field):
        return self.ioc.get(f"cam1:{field}")

    async def _put_nonnegative(self, value):
        return max(float(value), 0.0)

    async def _put_at_least_one(self, value):
        return max(int(value), 1)

    async def _put_array_counter(self, value):
        self.array_counter = int(value)
        return int(value)

    async def _put_color_mode(self, value):
        if value != "Mono":
            raise ValueError("this simDetector only produces ColorMode Mono")
        return value

    def _put_region(self, field, axis):
        async def handler(value):
            # Clamp the region as a whole, as ADDriver does: min within the
            # sensor, size within what remains, bin within the size.
            fields = {f: int(self.cam(f"{f}{axis}")) for f in ("Min", "Size", "Bin")}
            fields[field] = int(value)
            maximum = int(self.cam(f"MaxSize{axis}_RBV"))
            clamped = dict(zip(("Min", "Size", "Bin"), clamp_region(
                fields["Min"], fields["Size"], fields["Bin"], maximum)))
            for f, v in clamped.items():
                if f != field and v != fields[f]:
                    await self.ioc.post_many({f"cam1:{f}{axis}": v, f"cam1:{f}{axis}_RBV": v})
            return clamped[field]
        return handler

    async def _put_acquire(self, value):
        start = value in ("Acquire", 1)
        if not start:
            if self.task is not None and not self.task.done():
                await self.abort("")
            return "Done"
        if self.task is None or self.task.done():
            self.done = asyncio.Event()
            self.stop = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._acquire(self.done))
            await self.ioc.channels["cam1:Acquire"].write("Acquire", verify_value=False)
        done = self.done
        await done.wait()          # put with completion: held until acquisition ends
        return SkipWrite

    async def abort(self, reason: str = "") -> None:
        """Stop the acquisition in progress (Acquire=0, or a plugin failed)."""
        if reason:
            log.warning("acquisition stopped: %s", reason)
        self.stop.set()

    # -- acquisition ---------------------------------------------------------
    def sim_params(self) -> SimParams:
        values = {attr: self.cam(rec) for rec, attr in PARAM_RECORDS.items()}
        values["max_size_x"] = int(self.cam("MaxSizeX_RBV"))
        values["max_size_y"] = int(self.cam("MaxSizeY_RBV"))
        values["reverse_x"] = self.cam("ReverseX") in ("Yes", 1)
        values["reverse_y"] = self.cam("ReverseY") in ("Yes", 1)
        link = self.ioc.beamline
        values["shutter_open"] = link.shutter_open
        values["stage_dx"] = link.samx * self.stage_scale
        values["stage_dy"] = link.samy * self.stage_scale
        return SimParams(**values)

    async def _wait_stop(self, seconds: float) -> bool:
        """Sleep *seconds* (simulation clock; None: for ever) unless stopped first;
        True when stopped."""
        return await CLOCK.wait(seconds, self.stop)

    async def _acquire(self, done: asyncio.Event) -> None:
        ioc = self.ioc
        loop = asyncio.get_running_loop()
        aborted = False
        failed = False
        try:
            await ioc.post_many({"cam1:DetectorState_RBV": "Acquire", "cam1:NumImagesCounter_RBV": 0,
                                 "cam1:Acquire_RBV": "Acquiring", "cam1:AcquireBusy": "Acquiring",
                                 "cam1:StatusMessage_RBV": "Acquiring"})
            mode = self.cam("ImageMode")
            total = {"Single": 1, "Multiple": max(int(self.cam("NumImages")), 1)}.get(mode)
            taken = 0
            while total is None or taken < total:
                started = CLOCK.now()
                exposure = float(self.cam("AcquireTime"))
                period = float(self.cam("AcquirePeriod"))
                await ioc.post("cam1:DetectorState_RBV", "Acquire")
                await ioc.post_changed({"cam1:TimeRemaining_RBV": exposure})
                if await self._wait_stop(None if self.ioc.beamline.hang else exposure):
                    aborted = True
                    break
                await ioc.post("cam1:DetectorState_RBV", "Readout")
                params = self.sim_params()
                number = self.frame_number
                self.frame_number += 1
                # a constant noiseless frame seen before is passed on as it is (read-only):
                # no maths, no copy, no executor round trip
                frame = self.frame_cache.known_constant(params)
                if frame is None:
                    frame = await loop.run_in_executor(ioc.executor, compute_frame, params,
                                                       number, self.rng, self.frame_cache)
                taken += 1
                self.array_counter += 1
                stamp = time.time()
                ny, nx = frame.shape
                # sizes first: a client that sees the counter move reads the new sizes
                await ioc.post_changed({
                    "cam1:ArraySizeX_RBV": nx, "cam1:ArraySizeY_RBV": ny, "cam1:ArraySizeZ_RBV": 0,
                    "cam1:ArraySize_RBV": frame.nbytes, "cam1:TimeRemaining_RBV": 0.0,
                    "cam1:NDimensions_RBV": 2, "cam1:DataType_RBV": params.data_type,
                })
                await ioc.post_many({
                    "cam1:ArrayCounter_RBV": self.array_counter,
                    "cam1:NumImagesCounter_RBV": taken,
                    "cam1:Dimensions_RBV": [nx, ny] + [0] * 8,
                })
                if self.cam("ArrayCallbacks") == "Enable":
                    await ioc.plugins.publish(self.cam("PortName_RBV"),
                                              NDArray(frame, self.array_counter, stamp))
                if total is not None and taken >= total:
                    break
                await ioc.post("cam1:DetectorState_RBV", "Waiting")
                if await self._wait_stop(period - (CLOCK.now() - started)):
                    aborted = True
                    break
            if self.stop.is_set():
                aborted = True
            if self.cam("WaitForPlugins") == "Yes":
                await ioc.plugins.drain()
        except Exception as exc:
            log.exception("acquisition failed")
            failed = True
            await ioc.post_many({"cam1:DetectorState_RBV": "Error",
                                 "cam1:StatusMessage_RBV": str(exc)})
        finally:
            # an acquisition that failed keeps DetectorState=Error and its message
            if not failed:
                await ioc.post_many({
                    "cam1:DetectorState_RBV": "Aborted" if aborted else "Idle",
                    "cam1:StatusMessage_RBV": "Acquisition aborted" if aborted else "Acquisition completed"})
            await ioc.post_many({"cam1:Acquire": "Done",
                                 "cam1:Acquire_RBV": "Done",
                                 "cam1:AcquireBusy": "Done"})
            done.set()
