"""NDPluginBadPixel (BadPix1): pixels named in a JSON file, fixed in each frame.

``BadPix1:FileName`` names the file (an IOC path, through the path map); a put reads
it. Its form is NDPluginBadPixel's::

    {"Bad pixels": [{"Pixel": [x, y], "Set": 0},
                    {"Pixel": [x, y], "Replace": [dx, dy]},
                    {"Pixel": [x, y], "Median": [nx, ny]}]}

Set writes a value (converted to the frame's type); Replace copies the pixel
(dx, dy) away; Median takes the median of the (2nx+1) x (2ny+1) neighbourhood,
without the pixel itself, other bad pixels or pixels off the frame. Coordinates are
the sensor's: as the real plugin does, they are mapped into the frame through its
region offset and binning (``(x - offset) / binning``), here those of cam1 (MinX/MinY,
BinX/BinY) for frames read straight from the driver (SIM1), none for others. A file
that cannot be read or parsed leaves the list as it was and logs why; a parsed file
without "Bad pixels" clears it, as the real plugin's JSON reader does.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from .plugins import NDArray, Plugin

log = logging.getLogger(__name__)


def read_bad_pixels(path: str) -> list[dict]:
    """The bad-pixel entries of the JSON file at *path* (OSError/ValueError if unreadable)."""
    with open(path) as f:
        document = json.load(f)
    entries = []
    for entry in document.get("Bad pixels") or []:
        x, y = (int(v) for v in entry["Pixel"])
        fixed = {"pixel": (x, y), "mode": None}
        for mode in ("Median", "Set", "Replace"):      # the last one present wins, as in C
            if mode in entry:
                fixed.update(mode=mode, arg=entry[mode])
        entries.append(fixed)
    return entries


def fix_bad_pixels(frame: np.ndarray, entries: list[dict], *, offset=(0, 0),
                   binning=(1, 1)) -> np.ndarray:
    """A copy of the 2-D *frame* (rows are y) with *entries* fixed."""
    out = frame.copy()
    ny, nx = out.shape
    bad = {e["pixel"] for e in entries}

    def index(x, y):
        ix, iy = int((x - offset[0]) / binning[0]), int((y - offset[1]) / binning[1])
        return (iy, ix) if 0 <= ix < nx and 0 <= iy < ny else None

    for entry in sorted(entries, key=lambda e: (e["pixel"][1], e["pixel"][0])):
        (x, y), mode = entry["pixel"], entry["mode"]
        at = index(x, y)
        if at is None or mode is None:
            continue
        if mode == "Set":
            out[at] = np.array(entry["arg"]).astype(out.dtype)
        elif mode == "Replace":
            source = (x + int(entry["arg"][0]) * binning[0], y + int(entry["arg"][1]) * binning[1])
            src = index(*source)
            if source not in bad and src is not None:
                out[at] = out[src]
        elif mode == "Median":
            mx, my = (int(v) for v in entry["arg"])
            values = []
            for i in range(-my, my + 1):
                for j in range(-mx, mx + 1):
                    near = (x + j * binning[0], y + i * binning[1])
                    if (i, j) == (0, 0) or near in bad or index(*near) is None:
                        continue
                    values.append(float(out[index(*near)]))
            if values:
                out[at] = np.array(np.median(values)).astype(out.dtype)
    return out


class BadPixelPlugin(Plugin):
    """BadPix1: each Mono frame with the file's bad pixels fixed, passed on."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.entries: list[dict] = []
        self.ioc.register(self.pv("FileName"), self._read_file)

    async def _read_file(self, value):
        name = value if isinstance(value, str) else bytes(value).split(b"\0", 1)[0].decode()
        if name:
            path = self.ioc.path_map.to_host(name)
            try:
                self.entries = read_bad_pixels(path)
                log.info("%s: %d bad pixels from %s", self.name, len(self.entries), path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("%s: cannot read the bad pixel file %s (%s); the list is unchanged",
                          self.name, path, exc)
        return value

    async def handle(self, array: NDArray):
        self.require_mono(array)
        if not self.entries:
            return None
        offset, binning = (0, 0), (1, 1)
        if self.get("NDArrayPort") == "SIM1":
            offset = (int(self.ioc.get("cam1:MinX")), int(self.ioc.get("cam1:MinY")))
            binning = (max(int(self.ioc.get("cam1:BinX")), 1), max(int(self.ioc.get("cam1:BinY")), 1))
        fixed = fix_bad_pixels(array.data, self.entries, offset=offset, binning=binning)
        return NDArray(fixed, array.unique_id, array.timestamp, array.color_mode)
