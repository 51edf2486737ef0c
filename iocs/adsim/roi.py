"""NDPluginROI: a region of each frame, binned, reversed, scaled, converted.

:func:`roi_array` is the plain numpy part; :class:`ROIPlugin` reads its records,
posts the clamped region on the readbacks (as the C plugin does when it processes
a frame) and passes the region downstream, to every plugin whose NDArrayPort names
the ROI's port (e.g. Stats2:NDArrayPort = ROI1; commonPlugins' Stats2..5 boot reading
SIM1, see :func:`.table.boot_values`).

Colour frames as NDPluginROI.cpp takes them: the X and Y records (Min, Size, Bin,
Reverse, Enable, AutoSize) act on the image's x and y axes wherever the colour axis
is (RGB1 colour fastest, RGB2 between x and y, RGB3 slowest), the Z records on the
colour axis, and the output keeps the colour mode. A region of one colour (SizeZ 1,
or BinZ 3 summing the three) is made Mono: the C plugin then sets the ColorMode
attribute to Mono and collapses the size-1 dimension.

Not simulated: CollapseDims for other size-1 dimensions (a Mono region one pixel
high stays 2-D; the plugins downstream here take 2-D frames). ArraySizeX/Y/Z_RBV are
the output's sizes; for a colour frame made Mono the C plugin reads them through the
input's colour layout (for RGB1, ArraySizeX_RBV then shows the height).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .frames import NUMPY_TYPES
from .plugins import NDArray, Plugin

#: The numpy axes of (x, y, colour) in each layout (see :class:`.plugins.NDArray`).
LAYOUT_AXES = {"Mono": (1, 0, None), "RGB1": (1, 0, 2), "RGB2": (2, 0, 1), "RGB3": (2, 1, 0)}


@dataclasses.dataclass(frozen=True)
class Axis:
    """One dimension of the region, clamped to the input (NDPluginROI's rules)."""

    min: int
    size: int
    bin: int
    reverse: bool

    @classmethod
    def clamp(cls, n: int, enable: bool, minimum: int, size: int, binning: int,
              reverse: bool, auto_size: bool = False) -> "Axis":
        """The region of an input dimension *n* long: disabled, the whole of it,
        unbinned; AutoSize makes the size *n* before it is clamped to what is left
        after the offset."""
        if not enable:
            minimum, size, binning = 0, n, 1
        minimum = min(max(minimum, 0), n - 1)
        if enable and auto_size:
            size = n
        size = min(max(size, 1), n - minimum)
        binning = min(max(binning, 1), size)
        return cls(minimum, size, binning, reverse)

    @property
    def out(self) -> int:
        return self.size // self.bin


def layout_axes(data: np.ndarray, color_mode: str) -> tuple[int, int, int | None]:
    """The numpy axes of (x, y, colour) of a frame: a 2-D frame is Mono whatever its
    mode says; a 3-D frame in no RGB mode is taken as RGB3's order (NDArray::getInfo's
    default: x fastest, then y, then the third dimension)."""
    if data.ndim == 2:
        return LAYOUT_AXES["Mono"]
    if data.ndim != 3:
        raise ValueError(f"ROI takes 2-D and 3-D frames, not {data.ndim}-D")
    return LAYOUT_AXES.get(color_mode, LAYOUT_AXES["RGB3"])


def roi_array(data: np.ndarray, color_mode: str, x: Axis, y: Axis, z: Axis | None = None, *,
              scale: float | None = None, data_type: str | None = None
              ) -> tuple[np.ndarray, str]:
    """(the region of a Mono or colour frame, its colour mode). Binning sums
    elements, reverse flips, *scale* divides, *data_type* (an NDDataType name)
    converts as C casts. *z* is the colour axis's region (None: all three colours);
    a region of a single colour of an RGB frame comes back Mono and 2-D."""
    ax, ay, ac = layout_axes(data, color_mode)
    regions = {ax: x, ay: y}
    if ac is not None:
        regions[ac] = z or Axis.clamp(data.shape[ac], False, 0, 0, 1, False)
    ranked = [regions[a] for a in range(data.ndim)]
    region = data[tuple(slice(r.min, r.min + r.out * r.bin) for r in ranked)]
    out_dtype = NUMPY_TYPES[data_type] if data_type else data.dtype
    if any(r.bin > 1 for r in ranked):
        wide = np.float64 if data.dtype.kind == "f" else np.int64
        shape = [n for r in ranked for n in (r.out, r.bin)]
        region = region.astype(wide).reshape(shape).sum(axis=tuple(range(1, 2 * data.ndim, 2)))
    flips = tuple(slice(None, None, -1) if r.reverse else slice(None) for r in ranked)
    region = region[flips]
    if scale not in (None, 0, 1):
        region = region / scale
    if region.dtype != out_dtype:
        if out_dtype.kind in "iu" and region.dtype.kind == "f":
            region = np.nan_to_num(region)
        region = region.astype(out_dtype)
    mode = color_mode if data.ndim == 3 else "Mono"
    if ac is not None and region.shape[ac] == 1 and color_mode in ("RGB1", "RGB2", "RGB3"):
        region, mode = region.squeeze(axis=ac), "Mono"
    return np.ascontiguousarray(region), mode


def roi_frame(data: np.ndarray, x: Axis, y: Axis, *, scale: float | None = None,
              data_type: str | None = None) -> np.ndarray:
    """The region of a 2-D frame (rows are y): :func:`roi_array` of a Mono frame."""
    return roi_array(data, "Mono", x, y, scale=scale, data_type=data_type)[0]


class ROIPlugin(Plugin):
    def axis(self, name: str, n: int) -> Axis:
        """The region of dimension *name* (X, Y or Z) of an input *n* long."""
        return Axis.clamp(
            n, self.get(f"Enable{name}") == "Enable", int(self.get(f"Min{name}")),
            int(self.get(f"Size{name}")), int(self.get(f"Bin{name}")),
            self.get(f"Reverse{name}") == "Yes", self.get(f"AutoSize{name}") == "Yes")

    async def handle(self, array: NDArray) -> NDArray:
        nx, ny, nc = array.sizes
        x, y = self.axis("X", nx), self.axis("Y", ny)
        z = self.axis("Z", nc) if array.data.ndim == 3 else None
        data_type = self.get("DataTypeOut")
        scale = float(self.get("Scale")) if self.get("EnableScale") == "Enable" else None
        out, mode = roi_array(array.data, array.color_mode, x, y, z, scale=scale,
                              data_type=None if data_type == "Automatic" else data_type)
        result = NDArray(out, array.unique_id, array.timestamp, mode)
        ox, oy, oc = result.sizes
        # NDPluginROI.cpp: the region's readbacks of each enabled dimension the frame
        # has; ArraySizeX/Y/Z of the output. (NDimensions, Dimensions, DataType and
        # ColorMode describe the input, as NDPluginDriver posted them.)
        values = {"MaxSizeX_RBV": nx, "MaxSizeY_RBV": ny, "MaxSizeZ_RBV": nc,
                  "ArraySizeX_RBV": ox, "ArraySizeY_RBV": oy, "ArraySizeZ_RBV": oc}
        for name, axis in (("X", x), ("Y", y), ("Z", z)):
            if axis is not None and self.get(f"Enable{name}") == "Enable":
                values.update({f"Min{name}_RBV": axis.min, f"Size{name}_RBV": axis.size,
                               f"Bin{name}_RBV": axis.bin})
        await self.post(values)
        return result
