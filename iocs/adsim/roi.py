"""NDPluginROI: a region of each frame, binned, reversed, scaled, converted.

:func:`roi_frame` is the plain numpy part; :class:`ROIPlugin` reads its records,
posts the clamped region on the readbacks (as the C plugin does when it processes
a frame) and passes the region downstream, to every plugin whose NDArrayPort names
the ROI's port (e.g. Stats2:NDArrayPort = ROI1; commonPlugins' Stats2..5 boot reading
SIM1, see :func:`.table.boot_values`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .frames import NUMPY_TYPES
from .plugins import NDArray, Plugin


@dataclasses.dataclass(frozen=True)
class Axis:
    """One dimension of the region, clamped to the input (NDPluginROI's rules)."""

    min: int
    size: int
    bin: int
    reverse: bool

    @classmethod
    def clamp(cls, n: int, enable: bool, minimum: int, size: int, binning: int,
              reverse: bool) -> "Axis":
        if not enable:
            minimum, size, binning = 0, n, 1
        minimum = min(max(minimum, 0), n - 1)
        size = min(max(size, 1), n - minimum)
        binning = min(max(binning, 1), size)
        return cls(minimum, size, binning, reverse)

    @property
    def out(self) -> int:
        return self.size // self.bin


def roi_frame(data: np.ndarray, x: Axis, y: Axis, *, scale: float | None = None,
              data_type: str | None = None) -> np.ndarray:
    """The region of a 2-D frame (rows are y): binning sums pixels, reverse flips,
    *scale* divides, *data_type* (an NDDataType name) converts as C casts."""
    region = data[y.min:y.min + y.out * y.bin, x.min:x.min + x.out * x.bin]
    out_dtype = NUMPY_TYPES[data_type] if data_type else data.dtype
    if x.bin > 1 or y.bin > 1:
        wide = np.float64 if data.dtype.kind == "f" else np.int64
        region = region.astype(wide).reshape(y.out, y.bin, x.out, x.bin).sum(axis=(1, 3))
    if x.reverse:
        region = region[:, ::-1]
    if y.reverse:
        region = region[::-1, :]
    if scale not in (None, 0, 1):
        region = region / scale
    if region.dtype != out_dtype:
        if out_dtype.kind in "iu" and region.dtype.kind == "f":
            region = np.nan_to_num(region)
        region = region.astype(out_dtype)
    return np.ascontiguousarray(region)


class ROIPlugin(Plugin):
    def axes(self, shape) -> tuple[Axis, Axis]:
        ny, nx = shape
        axes = []
        for axis, n in (("X", nx), ("Y", ny)):
            axes.append(Axis.clamp(
                n, self.get(f"Enable{axis}") == "Enable", int(self.get(f"Min{axis}")),
                int(self.get(f"Size{axis}")), int(self.get(f"Bin{axis}")),
                self.get(f"Reverse{axis}") == "Yes"))
        return axes[0], axes[1]

    async def handle(self, array: NDArray) -> NDArray:
        self.require_mono(array)
        ny, nx = array.data.shape
        x, y = self.axes(array.data.shape)
        data_type = self.get("DataTypeOut")
        scale = float(self.get("Scale")) if self.get("EnableScale") == "Enable" else None
        out = roi_frame(array.data, x, y, scale=scale,
                        data_type=None if data_type == "Automatic" else data_type)
        result = NDArray(out, array.unique_id, array.timestamp)
        oy, ox = out.shape
        await self.post({
            "MaxSizeX_RBV": nx, "MaxSizeY_RBV": ny, "MaxSizeZ_RBV": 0,
            "MinX_RBV": x.min, "SizeX_RBV": x.size, "BinX_RBV": x.bin,
            "MinY_RBV": y.min, "SizeY_RBV": y.size, "BinY_RBV": y.bin,
            "ArraySizeX_RBV": ox, "ArraySizeY_RBV": oy, "ArraySize_RBV": out.nbytes,
            "Dimensions_RBV": [ox, oy] + [0] * 8, "DataType_RBV": result.data_type,
        })
        return result
