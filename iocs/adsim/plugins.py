"""NDArray plugins: the base every plugin shares (counters, queues), image1 and Stats.

The chain that routes between them is :mod:`.chain`. A frame published on a port (the driver's "SIM1", or a plugin's own port when its
ArrayCallbacks is Enable) reaches every plugin whose NDArrayPort names that port
and whose EnableCallbacks is Enable. BlockingCallbacks=Yes processes it in the
publisher's context; otherwise it is queued (QueueSize deep; a full queue drops
it and counts DroppedArrays) and processed in order by the plugin's own task.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import numpy as np
from typing import TYPE_CHECKING

from .channels import IMAGE_FTVL
from .frames import DATA_TYPES
from .h5writer import EPICS_EPOCH
from .stats import (STATS_SIGNALS, array_statistics, centroid_and_profiles, frame_histogram,
                    frame_statistics, histogram_x, line_profiles)

if TYPE_CHECKING:
    from .chain import PluginChain

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NDArray:
    """One frame. A compressed frame (``codec`` set, by NDPluginCodec: see :mod:`.codec`)
    holds its bytes in ``compressed``; its ``data`` is then a read-only placeholder of
    the uncompressed frame's shape and type (no memory, every element 0), since the
    real NDArray keeps the uncompressed dims and data type beside compressed data."""

    data: np.ndarray
    unique_id: int
    timestamp: float
    #: NDColorMode: Mono frames are (y, x); RGB1 (y, x, 3), RGB2 (y, 3, x) and RGB3
    #: (3, y, x) in numpy's order (NDArray dims are the reverse, x or colour first).
    color_mode: str = "Mono"
    #: NDArray.codec.name: "" for an uncompressed frame, else "jpeg", "blosc", ...
    codec: str = ""
    #: the compressed bytes of a frame whose codec is set (None otherwise)
    compressed: bytes | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def compressed_frame(cls, like: "NDArray", codec: str, payload: bytes) -> "NDArray":
        """*like*'s frame as *payload*, compressed with *codec*."""
        placeholder = np.broadcast_to(np.zeros((), like.data.dtype), like.data.shape)
        return cls(placeholder, like.unique_id, like.timestamp, like.color_mode, codec,
                   bytes(payload))

    @property
    def compressed_size(self) -> int:
        """NDArray.compressedSize: the bytes of a compressed frame, else its data size."""
        return len(self.compressed) if self.codec else self.data.nbytes

    @property
    def data_type(self) -> str:
        return DATA_TYPES[[np.dtype(t.lower()) for t in DATA_TYPES].index(self.data.dtype)]

    @property
    def dims(self) -> list[int]:
        """The NDArray dims (fastest-varying first)."""
        return list(reversed(self.data.shape))

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(x, y, colour) sizes as NDArrayInfo gives them (colour 0 for Mono)."""
        if self.data.ndim == 1:                  # NDArrayInfo: ySize 0 for 1-D
            return self.data.shape[0], 0, 0
        if self.data.ndim == 2:
            ny, nx = self.data.shape
            return nx, ny, 0
        axes = {"RGB1": (1, 0, 2), "RGB2": (2, 0, 1), "RGB3": (2, 1, 0)}.get(
            self.color_mode, (2, 1, 0))          # (x, y, colour) axes of the numpy shape
        return tuple(self.data.shape[a] for a in axes)


class Plugin:
    """Base plugin: counters and readbacks common to every NDPlugin."""

    #: takes compressed frames (NDPluginDriver's compressionAware): a plugin that
    #: does not drops them, counting each in DroppedArrays, as NDPluginDriver does
    compression_aware = False
    #: why a compressed frame is dropped, for the IOC's log
    compressed_refusal = "is not compression aware"

    def __init__(self, chain: "PluginChain", name: str):
        self.chain = chain
        self.ioc = chain.ioc
        self.name = name
        self.port = self.ioc.get(f"{name}:PortName_RBV")
        self.pending = 0
        self.queue: asyncio.Queue | None = None
        self.worker = None
        self.idle = asyncio.Event()
        self.idle.set()
        self.counter = 0
        self.dropped = 0
        for field in ("ArrayCounter", "DroppedArrays"):
            self.ioc.register(f"{name}:{field}", self._set_counter(field))
        self.ioc.register(f"{name}:QueueSize", self._set_queue_size)

    def pv(self, field: str) -> str:
        return f"{self.name}:{field}"

    def get(self, field: str):
        return self.ioc.get(self.pv(field))

    async def post(self, values: dict) -> None:
        await self.ioc.post_many({self.pv(k): v for k, v in values.items()})

    async def post_arrays(self, arrays: dict) -> None:
        """Post waveforms (fields of this plugin, or full record names), each cut to
        its record's NELM, as a waveform record keeps at most NELM of what asyn gives it."""
        cut = {}
        for name, values in arrays.items():
            pv = name if name in self.ioc.channels else self.pv(name)
            channel = self.ioc.channels.get(pv)
            if channel is not None:
                cut[pv] = np.asarray(values)[:channel.spec.length]
        await self.ioc.post_many(cut)

    def _set_counter(self, field):
        async def handler(value):
            setattr(self, "counter" if field == "ArrayCounter" else "dropped", int(value))
            return value
        return handler

    async def _set_queue_size(self, value):
        value = max(int(value), 1)
        await self.post({"QueueFree": value - self.pending})
        return value

    @property
    def enabled(self) -> bool:
        return self.get("EnableCallbacks") == "Enable"

    def inputs_from(self, port: str, addr: int = 0) -> int:
        """How many times the plugin takes each frame published on address *addr* of
        *port*: once if its NDArrayPort and NDArrayAddress name them (Gather1 reads
        several ports)."""
        return int(self.get("NDArrayPort") == port and int(self.get("NDArrayAddress")) == addr)

    def has_room(self) -> bool:
        """Whether a frame given now would be processed, not dropped: blocking
        callbacks, or a free place in the queue."""
        return (self.get("BlockingCallbacks") == "Yes"
                or self.pending < max(int(self.get("QueueSize")), 1))

    async def receive(self, array: NDArray) -> None:
        if not self.enabled:
            return
        if array.codec and not self.compression_aware:
            await self._refuse_compressed(array)
            return
        if self.get("BlockingCallbacks") == "Yes":
            self.pending += 1
            self.idle.clear()
            try:
                await self._process(array)
            finally:
                self._done_one()
            return
        size = max(int(self.get("QueueSize")), 1)
        if self.pending >= size:
            self.dropped += 1
            await self.post({"DroppedArrays": self.dropped, "DroppedArrays_RBV": self.dropped})
            return
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.worker = asyncio.get_running_loop().create_task(self._work())
        self.pending += 1
        self.idle.clear()
        await self.post({"QueueFree": size - self.pending})
        self.queue.put_nowait(array)

    async def _refuse_compressed(self, array: NDArray) -> None:
        """NDPluginDriver::driverCallback's answer to a compressed frame in a plugin
        that is not compression aware: dropped, counted, and an error in the log (the
        first one for this plugin; the rest only counted, so a stream floods nothing)."""
        self.dropped += 1
        await self.post({"DroppedArrays": self.dropped, "DroppedArrays_RBV": self.dropped})
        if not getattr(self, "_told_compressed", False):
            self._told_compressed = True
            log.error("%s got a compressed array (codec %s) and %s: dropped array "
                      "uniqueId=%d (further ones are only counted in DroppedArrays); "
                      "decompress it first (a Codec plugin in Mode Decompress)",
                      self.name, array.codec, self.compressed_refusal, array.unique_id)

    def _done_one(self):
        self.pending -= 1
        if self.pending == 0:
            self.idle.set()

    async def _work(self):
        while True:
            array = await self.queue.get()
            try:
                await self._process(array)
            except Exception:
                log.exception("%s failed to process array %d", self.name, array.unique_id)
            finally:
                self._done_one()
                try:
                    await self.post({"QueueFree": max(int(self.get("QueueSize")), 1) - self.pending})
                except Exception as exc:
                    log.warning("%s could not post QueueFree: %s", self.name, exc)

    async def post_changed(self, values: dict) -> None:
        """:meth:`post` of the scalar values that changed (see ADSimIOC.post_changed)."""
        await self.ioc.post_changed({self.pv(k): v for k, v in values.items()})

    async def _process(self, array: NDArray) -> None:
        self.counter += 1
        nx, ny, nz = array.sizes
        dims = array.dims
        sec = int(array.timestamp)
        # sizes first: a client that sees the counter move reads the new sizes
        await self.post_changed({
            "ArraySizeX_RBV": nx, "ArraySizeY_RBV": ny, "ArraySizeZ_RBV": nz,
            "ArraySize_RBV": array.data.nbytes, "NDimensions_RBV": len(dims),
            "DataType_RBV": array.data_type, "ColorMode_RBV": array.color_mode,
            "Codec_RBV": array.codec, "CompressedSize_RBV": array.compressed_size,
        })
        await self.post({
            "ArrayCounter_RBV": self.counter, "Dimensions_RBV": dims + [0] * (10 - len(dims)),
            "UniqueId_RBV": array.unique_id, "TimeStamp_RBV": array.timestamp - EPICS_EPOCH,
            "EpicsTSSec_RBV": sec - EPICS_EPOCH,
            "EpicsTSNsec_RBV": int((array.timestamp - sec) * 1e9),
        })
        out = await self.handle(array)
        if out is not False and self.get("ArrayCallbacks") == "Enable":
            await self.chain.publish(self.port, array if out is None else out)

    async def handle(self, array: NDArray):
        """What the plugin does with a frame (subclasses): returns the array it
        passes downstream, None for the input itself, False for none."""

    def require_mono(self, array: NDArray) -> None:
        """Refuse (a clear error in the IOC's log) a colour frame, for plugins whose
        simulation handles 2-D frames only (BadPix1)."""
        if array.data.ndim != 2:
            raise ValueError(f"{self.name}: {array.color_mode} frames are not simulated "
                             f"(Mono only); route it to a Mono port or convert with CC1/CC2")

    async def drain(self) -> None:
        await self.idle.wait()


class ImagePlugin(Plugin):
    """NDStdArrays: image1:ArrayData carries each frame (flattened, FTVL type)."""

    def __init__(self, chain, name, image_ftvl="UCHAR"):
        super().__init__(chain, name)
        self.dtype = IMAGE_FTVL[image_ftvl][1]

    async def handle(self, array):
        flat = array.data.reshape(-1)
        if flat.dtype != self.dtype:
            flat = flat.astype(self.dtype)   # C conversion to FTVL, wrapping integers
        await self.ioc.post(self.pv("ArrayData"), flat)


class StatsPlugin(Plugin):
    """NDStats: of each frame, what its Compute* records ask for: the basic statistics,
    the centroid and moments, the profiles and the histogram (NDPluginStats's order
    and formulas, :mod:`.stats`).

    As in NDPluginStats, the average and threshold profiles come from the centroid
    pass, so with ComputeCentroid No they are published as zeros; the centroid
    profiles then go through the centroid last published."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        for field in ("HistSize", "HistMin", "HistMax"):
            self.ioc.register(self.pv(field), self._histogram_x_on(field))

    async def boot(self) -> None:
        """HistogramX_RBV of the boot HistSize/Min/Max (their PINI puts in the real IOC)."""
        await self._post_histogram_x({})

    def _histogram_x_on(self, field):
        async def handler(value):
            await self._post_histogram_x({field: value})
            return value
        return handler

    async def _post_histogram_x(self, new: dict) -> None:
        size, low, high = (new.get(f, self.get(f)) for f in ("HistSize", "HistMin", "HistMax"))
        await self.post_arrays({"HistogramX_RBV": histogram_x(int(size), float(low), float(high))})


    async def handle(self, array):
        if array.data.ndim > 2:
            return await self._handle_nd(array)
        loop = asyncio.get_running_loop()
        frame = array.data
        values, arrays = {}, {}
        centroid = self.get("ComputeCentroid") == "Yes"
        profiles = self.get("ComputeProfiles") == "Yes"
        if self.get("ComputeStatistics") == "Yes":
            bgd = int(self.get("BgdWidth"))
            values.update(await loop.run_in_executor(
                None, lambda: frame_statistics(frame, bgd_width=bgd)))
        if centroid or profiles:
            ny, nx = frame.shape
            await self.post_changed({"ProfileSizeX_RBV": nx, "ProfileSizeY_RBV": ny})
        if centroid:
            threshold = float(self.get("CentroidThreshold"))
            scalars, averages = await loop.run_in_executor(
                None, lambda: centroid_and_profiles(frame, threshold=threshold))
            values.update(scalars)
        if profiles:
            if not centroid:
                averages = {name: np.zeros(n) for name, n in (
                    ("ProfileAverageX", nx), ("ProfileThresholdX", nx),
                    ("ProfileAverageY", ny), ("ProfileThresholdY", ny))}
            at = (values["CentroidX"], values["CentroidY"]) if centroid else (
                float(self.get("CentroidX_RBV")), float(self.get("CentroidY_RBV")))
            cursor = (int(self.get("CursorX")), int(self.get("CursorY")))
            lines = line_profiles(frame, centroid=at, cursor=cursor)
            await self.post({"CursorVal": lines.pop("CursorVal")})
            arrays.update({f"{name}_RBV": v for name, v in {**averages, **lines}.items()})
        await self._finish(array, values, arrays)

    async def _handle_nd(self, array):
        """A frame of more than two dimensions (a colour frame), as NDPluginStats
        takes it: the statistics and the histogram over every element; the centroid
        and the profiles are 2-D only (doComputeCentroidT/doComputeProfilesT return
        an error for ndims > 2), so their values are published as zeros, the
        profiles ProfileSizeX/Y long, those being the first two NDArray dims (for
        RGB1, 3 and the width), as the C plugin sizes them."""
        loop = asyncio.get_running_loop()
        data = array.data
        values, arrays = {}, {}
        if self.get("ComputeStatistics") == "Yes":
            bgd, x_size = int(self.get("BgdWidth")), array.sizes[0]
            values.update(await loop.run_in_executor(
                None, lambda: array_statistics(data, x_size=x_size, bgd_width=bgd)))
        centroid = self.get("ComputeCentroid") == "Yes"
        profiles = self.get("ComputeProfiles") == "Yes"
        if centroid or profiles:
            nx, ny = array.dims[0], array.dims[1]
            await self.post_changed({"ProfileSizeX_RBV": nx, "ProfileSizeY_RBV": ny})
        if centroid:
            values.update(dict.fromkeys(
                ("CentroidTotal", "CentroidX", "CentroidY", "SigmaX", "SigmaY", "SigmaXY",
                 "SkewX", "SkewY", "KurtosisX", "KurtosisY", "Eccentricity", "Orientation"),
                0.0))
        if profiles:
            for kind in ("Average", "Threshold", "Centroid", "Cursor"):
                arrays[f"Profile{kind}X_RBV"] = np.zeros(nx)
                arrays[f"Profile{kind}Y_RBV"] = np.zeros(ny)
            await self.post({"CursorVal": 0.0})
        await self._finish(array, values, arrays)

    async def _finish(self, array: NDArray, values: dict, arrays: dict) -> None:
        """The histogram if asked for (over every element, any number of dimensions),
        then the frame's readbacks, waveforms and time-series point."""
        if self.get("ComputeHistogram") == "Yes":
            size, low, high = (self.get(f) for f in ("HistSize", "HistMin", "HistMax"))
            hist = await asyncio.get_running_loop().run_in_executor(None, lambda: frame_histogram(
                array.data, size=int(size), low=float(low), high=float(high)))
            arrays["Histogram_RBV"] = hist.pop("Histogram")
            values.update(hist)
        await self.post_arrays(arrays)
        await self.post({f"{key}_RBV": value for key, value in values.items()})
        await self.publish_time_series(array, values)

    async def publish_time_series(self, array: NDArray, values: dict) -> None:
        """NDPluginStats' point of its time series (StatsN:TS): the 23 statistics of
        the frame, in NDStatTSType order, as a 1-D Float64 NDArray on address 1 of the
        port, whatever ArrayCallbacks says. What this frame did not compute is 0 (the
        C plugin's zeroed NDStats_t); Net is Total without a background width."""
        values = dict(values)
        values.setdefault("Net", values.get("Total", 0.0))
        values["Timestamp"] = array.timestamp - EPICS_EPOCH
        point = np.array([float(values.get(name, 0.0)) for name in STATS_SIGNALS])
        await self.chain.publish(self.port, NDArray(point, array.unique_id, array.timestamp), 1)
