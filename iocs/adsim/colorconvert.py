"""NDPluginColorConvert: frames converted between Mono and the RGB layouts.

:func:`convert_color` is the plain numpy part; :class:`ColorConvertPlugin` (CC1, CC2)
reads ColorModeOut and passes the converted frame to the plugins reading its port.

As NDPluginColorConvert.cpp converts: Mono to RGB1/RGB2/RGB3 copies the value into
the three colours; RGB1/2/3 to Mono is the mean (R + G + B) / 3, cast to the data type
(integers truncate); between RGB layouts the colours are only rearranged. Any other
pair (the same mode, Bayer, YUV) passes the frame unchanged, as the C plugin does
when it has no conversion for it. The numpy layouts are those of
:class:`.plugins.NDArray`: Mono (y, x), RGB1 (y, x, 3), RGB2 (y, 3, x), RGB3 (3, y, x).

FalseColor (Rainbow, Iron) as the C plugin applies it: to Mono frames of Int8 or
UInt8 made RGB1/RGB2/RGB3, each value (as an unsigned byte) looked up in the colour
map of colorMaps.h (:mod:`.color_maps`); the output keeps the input's data type.
Other data types, and every other conversion, ignore FalseColor, as in the C plugin.
"""

from __future__ import annotations

import numpy as np

from .color_maps import TABLES
from .plugins import NDArray, Plugin

#: The colour axis of each RGB layout in the numpy array.
COLOR_AXIS = {"RGB1": 2, "RGB2": 1, "RGB3": 0}


def false_color_map(name: str) -> np.ndarray | None:
    """The (256, 3) uint8 table of FalseColor *name* (Rainbow, Iron), None for None."""
    table = TABLES.get(name)
    return None if table is None else np.frombuffer(table, np.uint8).reshape(256, 3)


def convert_color(data: np.ndarray, mode_in: str, mode_out: str,
                  false_color: str = "None") -> tuple[np.ndarray, str]:
    """(*data* converted from *mode_in* to *mode_out*, the mode it is in): unchanged,
    and in *mode_in*, when there is no such conversion or the array's rank does not
    fit *mode_in* (a Mono frame is 2-D, an RGB one 3-D with 3 colours). *false_color*
    (None, Rainbow, Iron) colours 8-bit Mono frames made RGB."""
    if mode_in == mode_out:
        return data, mode_in
    lut = false_color_map(false_color)
    if (mode_in == "Mono" and mode_out in COLOR_AXIS and data.ndim == 2
            and lut is not None and data.dtype in (np.uint8, np.int8)):
        rgb_last = lut[data.view(np.uint8)].view(data.dtype)      # (y, x, 3)
        return np.ascontiguousarray(np.moveaxis(rgb_last, 2, COLOR_AXIS[mode_out])), mode_out
    if mode_in == "Mono" and mode_out in COLOR_AXIS and data.ndim == 2:
        out = np.repeat(np.expand_dims(data, COLOR_AXIS[mode_out]), 3, axis=COLOR_AXIS[mode_out])
        return np.ascontiguousarray(out), mode_out
    if mode_in in COLOR_AXIS and data.ndim == 3 and data.shape[COLOR_AXIS[mode_in]] == 3:
        rgb_last = np.moveaxis(data, COLOR_AXIS[mode_in], 2)      # (y, x, 3)
        if mode_out == "Mono":
            wide = np.float64
            mean = rgb_last.astype(wide).sum(axis=2) / 3.0
            if data.dtype.kind in "iu":
                mean = np.trunc(mean)
            return np.ascontiguousarray(mean.astype(data.dtype)), "Mono"
        if mode_out in COLOR_AXIS:
            out = np.moveaxis(rgb_last, 2, COLOR_AXIS[mode_out])
            return np.ascontiguousarray(out), mode_out
    return data, mode_in


class ColorConvertPlugin(Plugin):
    """CC1/CC2: each frame converted to ColorModeOut (FalseColor for 8-bit Mono)."""

    async def handle(self, array: NDArray) -> NDArray:
        out, mode = convert_color(array.data, array.color_mode, self.get("ColorModeOut"),
                                  self.get("FalseColor"))
        if out is array.data:
            return None
        return NDArray(out, array.unique_id, array.timestamp, mode)
