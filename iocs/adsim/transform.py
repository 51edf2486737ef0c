"""NDPluginTransform: rotations by multiples of 90 degrees and mirror reflections.

:func:`transform_frame` is the plain numpy part; :class:`TransformPlugin` reads its
Type record and passes the transformed frame downstream, to every plugin whose
NDArrayPort names the plugin's port (TRANS1).

The eight choices of ``Trans1:Type`` (NDTransform.template, values 0..7) as ADCore's
NDPluginTransform documentation defines them, for a frame whose row 0 is displayed at
the top (numpy rows are y, columns x): RotN rotates clockwise by N degrees; Mirror
reflects about the central column; RotNMirror is RotN followed by Mirror (so
Rot90Mirror is the transpose and Rot180Mirror the reflection about the central row).
The 90 and 270 degree choices swap the output's X and Y sizes.
"""

from __future__ import annotations

import numpy as np

from .plugins import NDArray, Plugin

#: Trans1:Type's enum strings, in the order of their values (0..7).
TRANSFORM_TYPES = ("None", "Rot90", "Rot180", "Rot270", "Mirror", "Rot90Mirror",
                   "Rot180Mirror", "Rot270Mirror")


#: The colour axis of the numpy array in each RGB layout (see :class:`.plugins.NDArray`).
_COLOR_AXIS = {"RGB1": 2, "RGB2": 1, "RGB3": 0}


def transform_frame(data: np.ndarray, kind: str, color_mode: str = "Mono") -> np.ndarray:
    """*data* (rows are y; an RGB frame in the layout *color_mode* names) transformed as
    Trans1:Type *kind* says, the colours kept in their layout; a new contiguous array
    of the same dtype."""
    if kind not in TRANSFORM_TYPES:
        raise ValueError(f"unknown transform type {kind!r}: one of {', '.join(TRANSFORM_TYPES)}")
    axis = _COLOR_AXIS.get(color_mode) if data.ndim == 3 else None
    image = data if axis is None else np.moveaxis(data, axis, 2)       # (y, x[, colour])
    rotation = {"None": 0, "Rot90": 1, "Rot180": 2, "Rot270": 3}[kind.replace("Mirror", "") or "None"]
    out = np.rot90(image, k=-rotation, axes=(0, 1))      # negative k: clockwise
    if kind.endswith("Mirror"):
        out = out[:, ::-1]
    if axis is not None:
        out = np.moveaxis(out, 2, axis)
    return np.ascontiguousarray(out)


class TransformPlugin(Plugin):
    """Trans1: each frame transformed as its Type record says."""

    async def handle(self, array: NDArray) -> NDArray:
        # The plugin's own size readbacks describe its input (NDPluginDriver sets
        # them from the array it receives); the output's sizes are those of the
        # plugins downstream.
        out = transform_frame(array.data, self.get("Type"), array.color_mode)
        return NDArray(out, array.unique_id, array.timestamp, array.color_mode)
