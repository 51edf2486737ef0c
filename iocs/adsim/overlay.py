"""NDPluginOverlay: crosses, rectangles, ellipses and text drawn into each frame.

:func:`draw_overlays` is the plain numpy part: it draws the enabled overlays, in
order, into a copy of a frame. :class:`OverlayPlugin` (Over1) reads its records
``Over1:1:`` .. ``Over1:8:`` (NDOverlayN.template) at each frame and passes the drawn
frame downstream, to every plugin whose NDArrayPort names its port (OVER1).

The pixels each shape covers follow ADCore's NDPluginOverlay.cpp (doOverlayT), with
x the column and y the row of the frame, and every pixel outside the frame dropped
(a shape partly or wholly outside the frame is clipped, never an error):

  Cross      centre (PositionX + SizeX/2, PositionY + SizeY/2), arms SizeX/2 and
             SizeY/2 long each side; the horizontal bar is 2*(WidthY/2)+1 rows
             thick, the vertical bar 2*(WidthX/2)+1 columns (integer halves, as C).
  Rectangle  corners (PositionX, PositionY) and (PositionX+SizeX, PositionY+SizeY),
             both included; the border grows inwards, WidthX columns on the left and
             right, WidthY rows top and bottom (each at most Size-1). Width 0 draws
             nothing. Where the left and right borders overlap (2*WidthX >= SizeX+2)
             the shared column is listed twice, so XOR flips it back, as in C.
  Ellipse    the parametric ellipse of radii SizeX/2, SizeY/2 about the centre,
             2*(SizeX/2 + SizeY/2) + 1 angles per quadrant, rounded to pixels,
             WidthX rings drawn inwards (both radii shrink by one per ring); each
             pixel once (C removes duplicates so XOR works).
  Text       DisplayText, then the frame's time stamp formatted with TimeStampFormat
             (when it is not empty), in a box from (PositionX, PositionY), SizeX wide
             and at most one character cell high (SizeY caps the height), one cell
             per character (a control character leaves its cell blank), cut at the
             box's right edge.

Draw modes, per pixel: Set gives a Mono frame the Green value (a C cast to the
frame's type, so 300 in a UInt8 frame is 44); XOR gives ``(int)pixel ^ Green``
(floats truncated towards zero first). An RGB1/RGB2/RGB3 frame gets Red, Green and
Blue in its three colours.

Approximation: the fonts. ADCore draws the X11 fonts 6x13, 6x13 Bold, 9x15 and
9x15 Bold (NDPluginOverlayTextFont.cpp). Here every Font draws the same 5x7 glyphs
(:data:`GLYPHS`, printable ASCII; anything else is a blank cell) inside a cell of
the real font's size (6x13 or 9x15), so the text's extent, its clipping and the
character pitch are the real ones but the glyph shapes are not; a Bold font draws
each glyph a second time one pixel to the right.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import time

import numpy as np

from .plugins import NDArray, Plugin

#: Over1:N:Shape and DrawMode enum strings (NDOverlayN.template)
SHAPES = ("Cross", "Rectangle", "Ellipse", "Text")
DRAW_MODES = ("Set", "XOR")

#: Font -> (cell width, cell height, bold, glyph column, glyph row in the cell)
FONTS = {
    "6x13": (6, 13, False, 0, 3),
    "6x13 Bold": (6, 13, True, 0, 3),
    "9x15": (9, 15, False, 2, 4),
    "9x15 Bold": (9, 15, True, 2, 4),
}

#: A 5x7 bitmap font of printable ASCII, drawn for this module: seven rows of five
#: pixels each, '#' set.
GLYPHS = {
    " ": "..... ..... ..... ..... ..... ..... .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    '"': ".#.#. .#.#. ..... ..... ..... ..... .....",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "$": "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "'": "..#.. ..#.. ..... ..... ..... ..... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    ";": "..... .##.. .##.. ..... .##.. ..#.. .#...",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    "=": "..... ..... ##### ..... ##### ..... .....",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "@": ".###. #...# ....# .##.# #.#.# #.#.# .###.",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "[": ".###. .#... .#... .#... .#... .#... .###.",
    "\\": "..... #.... .#... ..#.. ...#. ....# .....",
    "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    "^": "..#.. .#.#. #...# ..... ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "`": ".#... ..#.. ..... ..... ..... ..... .....",
    "a": "..... ..... .###. ....# .#### #...# .####",
    "b": "#.... #.... #.##. ##..# #...# #...# ####.",
    "c": "..... ..... .###. #.... #.... #...# .###.",
    "d": "....# ....# .##.# #..## #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.",
    "f": "..##. .#..# .#... ###.. .#... .#... .#...",
    "g": "..... .#### #...# #...# .#### ....# .###.",
    "h": "#.... #.... #.##. ##..# #...# #...# #...#",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    "j": "...#. ..... ..##. ...#. ...#. #..#. .##..",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
    "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "m": "..... ..... ##.#. #.#.# #.#.# #...# #...#",
    "n": "..... ..... #.##. ##..# #...# #...# #...#",
    "o": "..... ..... .###. #...# #...# #...# .###.",
    "p": "..... ..... ####. #...# ####. #.... #....",
    "q": "..... ..... .##.# #..## .#### ....# ....#",
    "r": "..... ..... #.##. ##..# #.... #.... #....",
    "s": "..... ..... .###. #.... .###. ....# ####.",
    "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
    "u": "..... ..... #...# #...# #...# #..## .##.#",
    "v": "..... ..... #...# #...# #...# .#.#. ..#..",
    "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    "y": "..... ..... #...# #...# .#### ....# .###.",
    "z": "..... ..... ##### ...#. ..#.. .#... #####",
    "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
    "~": "..... ..... .#... #.#.# ...#. ..... .....",
}


@dataclasses.dataclass(frozen=True)
class Overlay:
    """One overlay's settings (the records Over1:N:...; Use is whether it is drawn)."""

    shape: str = "Rectangle"
    draw_mode: str = "Set"
    position_x: int = 0
    position_y: int = 0
    size_x: int = 1
    size_y: int = 0
    width_x: int = 0
    width_y: int = 0
    red: int = 1
    green: int = 1
    blue: int = 1
    text: str = ""
    timestamp_format: str = ""
    font: str = "6x13"


def _half(n: int) -> int:
    """n/2 as C's integer division: truncated towards zero."""
    return int(n / 2) if n < 0 else n // 2


@dataclasses.dataclass
class _Canvas:
    """How many times each pixel of a ny x nx frame is listed by one overlay (the
    C plugin's address list); pixels outside the frame are never counted."""

    ny: int
    nx: int

    def __post_init__(self):
        self.count = np.zeros((self.ny, self.nx), dtype=np.int32)

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """The rows y0..y1 (both included) inside the frame."""
        return np.arange(max(y0, 0), min(y1, self.ny - 1) + 1)

    def add(self, rows: np.ndarray, x0: int, x1: int) -> None:
        """List the pixels x0..x1 (both included) of each of *rows* once more."""
        x0, x1 = max(x0, 0), min(x1, self.nx - 1)
        if len(rows) and x1 >= x0:
            self.count[np.ix_(rows, np.arange(x0, x1 + 1))] += 1


def _cross(c: _Canvas, o: Overlay) -> None:
    hx, hy = _half(o.size_x), _half(o.size_y)
    xcent, ycent = o.position_x + hx, o.position_y + hy
    xwide, ywide = _half(o.width_x), _half(o.width_y)
    rows = c.rows(ycent - hy, ycent + hy)
    bar = (rows >= ycent - ywide) & (rows <= ycent + ywide)
    c.add(rows[bar], xcent - hx, xcent + hx)
    c.add(rows[~bar], xcent - xwide, xcent + xwide)


def _rectangle(c: _Canvas, o: Overlay) -> None:
    xmin, ymin = o.position_x, o.position_y
    xmax, ymax = xmin + o.size_x, ymin + o.size_y
    xwide, ywide = min(o.width_x, o.size_x - 1), min(o.width_y, o.size_y - 1)
    rows = c.rows(ymin, ymax)
    band = (rows < ymin + ywide) | (rows > ymax - ywide)
    c.add(rows[band], xmin, xmax)
    c.add(rows[~band], xmin, xmin + xwide - 1)
    c.add(rows[~band], xmax - xwide + 1, xmax)


def _ellipse(c: _Canvas, o: Overlay) -> None:
    xwide = min(o.width_x, o.size_x - 1)
    xsize, ysize = _half(o.size_x), _half(o.size_y)
    xcent, ycent = o.position_x + xsize, o.position_y + ysize
    steps = 2 * (xsize + ysize)
    if xwide <= 0 or steps < 0:
        return
    step = math.pi / 2.0 / steps if steps else math.inf
    thetas, theta = [], 0.0
    for _ in range(steps + 1):            # accumulated as the C loop does
        thetas.append(theta)
        theta += step
    cos = np.array([math.cos(t) for t in thetas])
    sin = np.array([math.sin(t) for t in thetas])
    rings = np.arange(xwide)[:, None]
    # (int)(r * cos + 0.5): truncation towards zero, as the C cast
    ix = np.trunc((xsize - rings) * cos + 0.5).astype(np.int64).ravel()
    iy = np.trunc((ysize - rings) * sin + 0.5).astype(np.int64).ravel()
    xs = np.concatenate([xcent + ix, xcent + ix, xcent - ix, xcent - ix])
    ys = np.concatenate([ycent + iy, ycent - iy, ycent + iy, ycent - iy])
    inside = (xs >= 0) & (xs < c.nx) & (ys >= 0) & (ys < c.ny)
    c.count[ys[inside], xs[inside]] = 1       # each pixel once


def overlay_text(o: Overlay, timestamp: float | None) -> str:
    """What a Text overlay writes: DisplayText, then the frame's *timestamp* (POSIX
    seconds, local time) formatted with TimeStampFormat when that is not empty.
    ``%0<n>f`` is the fractional seconds to n digits (1..9), truncated, as EPICS 7's
    epicsTimeToStrftime gives them (older bases rounded); the rest is strftime's."""
    if not o.timestamp_format or timestamp is None:
        return o.text
    whole = math.floor(timestamp)
    nanoseconds = min(round((timestamp - whole) * 1e9), 999_999_999)   # as epicsTimeStamp

    def digits(m):
        n = min(max(int(m.group(1)), 1), 9)
        return f"{nanoseconds // 10 ** (9 - n):0{n}d}"
    fmt = re.sub(r"%0(\d+)f", digits, o.timestamp_format)
    stamp = time.strftime(fmt, time.localtime(whole))[:63]
    return o.text + stamp


def text_bitmap(text: str, font: str = "6x13") -> np.ndarray:
    """The pixels *text* sets, one cell of *font*'s size per character: a boolean
    array (cell height, cell width * len(text))."""
    if font not in FONTS:
        raise ValueError(f"unknown Font {font!r}: one of {', '.join(FONTS)}")
    width, height, bold, gx, gy = FONTS[font]
    out = np.zeros((height, width * len(text)), dtype=bool)
    for i, char in enumerate(text):
        glyph = _glyph(char)
        if glyph is None:
            continue
        x = i * width + gx
        out[gy:gy + 7, x:x + 5] |= glyph
        if bold:
            out[gy:gy + 7, x + 1:x + 6] |= glyph
    return out


def _glyph(char: str):
    rows = GLYPHS.get(char)
    if rows is None:
        return None
    return np.array([[p == "#" for p in row] for row in rows.split()], dtype=bool)


def _text(c: _Canvas, o: Overlay, timestamp: float | None) -> None:
    bitmap = text_bitmap(overlay_text(o, timestamp), o.font)
    height = min(o.size_y, bitmap.shape[0])
    width = min(o.size_x, bitmap.shape[1])
    if height <= 0 or width <= 0:
        return
    bitmap = bitmap[:height, :width]
    ys, xs = np.nonzero(bitmap)
    ys, xs = ys + o.position_y, xs + o.position_x
    inside = (xs >= 0) & (xs < c.nx) & (ys >= 0) & (ys < c.ny)
    c.count[ys[inside], xs[inside]] += 1


_DRAW = {"Cross": _cross, "Rectangle": _rectangle, "Ellipse": _ellipse}


def overlay_pixels(o: Overlay, shape: tuple[int, int],
                   timestamp: float | None = None) -> np.ndarray:
    """How many times overlay *o* lists each pixel of a frame of *shape* (rows,
    columns): 0 where it does not draw; 2 where C lists a pixel twice (XOR then
    leaves it as it was)."""
    if o.shape not in SHAPES:
        raise ValueError(f"unknown overlay Shape {o.shape!r}: one of {', '.join(SHAPES)}")
    canvas = _Canvas(*shape)
    if o.shape == "Text":
        _text(canvas, o, timestamp)
    else:
        _DRAW[o.shape](canvas, o)
    return canvas.count


#: The colour axis of the numpy array in each RGB layout (see :class:`.plugins.NDArray`).
_COLOR_AXIS = {"RGB1": 2, "RGB2": 1, "RGB3": 0}


def _c_cast(values: np.ndarray, dtype) -> np.ndarray:
    """int32 *values* converted to *dtype* as a C cast does (integers wrap)."""
    return values.astype(dtype)


def _as_c_int(values: np.ndarray) -> np.ndarray:
    """``(int)value`` of C: floats truncated towards zero, integers cut to 32 bits."""
    if values.dtype.kind == "f":
        values = np.trunc(values).astype(np.int64)
    return values.astype(np.int64).astype(np.int32)


def _paint(plane: np.ndarray, count: np.ndarray, mode: str, value: int) -> None:
    """Set or XOR *value* into the pixels of *plane* (a writable view) that *count*
    lists (XOR: those listed an odd number of times)."""
    value = np.array(value, dtype=np.int64).astype(np.int32)
    if mode == "Set":
        plane[count > 0] = _c_cast(value, plane.dtype)
    elif mode == "XOR":
        where = (count % 2) == 1
        plane[where] = _c_cast(_as_c_int(plane[where]) ^ value, plane.dtype)
    else:
        raise ValueError(f"unknown overlay DrawMode {mode!r}: one of {', '.join(DRAW_MODES)}")


def draw_overlays(data: np.ndarray, overlays, color_mode: str = "Mono",
                  timestamp: float | None = None) -> np.ndarray:
    """A copy of *data* (rows are y; an RGB frame in the layout *color_mode* names)
    with each of *overlays* (:class:`Overlay`, in order) drawn into it. *timestamp*
    (POSIX seconds) is the frame's, for Text overlays with a TimeStampFormat."""
    out = np.array(data, copy=True)
    axis = _COLOR_AXIS.get(color_mode) if out.ndim == 3 else None
    image = out if axis is None else np.moveaxis(out, axis, 2)       # view: (y, x[, c])
    for o in overlays:
        count = overlay_pixels(o, image.shape[:2], timestamp)
        if axis is None:
            _paint(image, count, o.draw_mode, o.green)
        else:
            for colour, value in enumerate((o.red, o.green, o.blue)):
                _paint(image[..., colour], count, o.draw_mode, value)
    return out


class OverlayPlugin(Plugin):
    """Over1: the overlays whose Use is Yes drawn into each frame.

    Position and Center are linked as NDPluginOverlay::writeInt32 links them: a put
    of CenterX sets PositionX = CenterX - SizeX/2, a put of PositionX sets CenterX =
    PositionX + SizeX/2 (both records and their readbacks), and a put of SizeX keeps
    whichever of the two was put last (Position at boot, as PositionX processes at
    iocInit) and moves the other; likewise in Y. The ``...Link`` records write
    their field as the template's OUT link (``PP``) does.
    """

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.numbers = []
        n = 1
        while self.ioc.has(self.pv(f"{n}:Use")):
            self.numbers.append(n)
            n += 1
        #: per overlay and axis: was Position put last (True) or Center (False)
        self.freeze = {(n, axis): True for n in self.numbers for axis in "XY"}
        for n in self.numbers:
            for axis in "XY":
                for field in ("Position", "Center", "Size"):
                    handler = self._linker(n, axis, field)
                    self.ioc.register(self.pv(f"{n}:{field}{axis}"), handler)
                    self.ioc.register(self.pv(f"{n}:{field}{axis}Link"),
                                      self._link_record(n, f"{field}{axis}", handler))
                self.ioc.register(self.pv(f"{n}:Width{axis}Link"),
                                  self._link_record(n, f"Width{axis}", None))

    def _linker(self, n: int, axis: str, field: str):
        async def handler(value):
            value = int(value)
            size = int(self.get(f"{n}:Size{axis}"))
            if field == "Center":
                self.freeze[n, axis] = False
                await self._set(n, f"Position{axis}", value - _half(size))
            elif field == "Position":
                self.freeze[n, axis] = True
                await self._set(n, f"Center{axis}", value + _half(size))
            elif self.freeze[n, axis]:
                await self._set(n, f"Center{axis}",
                                int(self.get(f"{n}:Position{axis}")) + _half(value))
            else:
                await self._set(n, f"Position{axis}",
                                int(self.get(f"{n}:Center{axis}")) - _half(value))
            return value
        return handler

    def _link_record(self, n: int, field: str, handler):
        """A put of ``N:<field>Link`` processes ``N:<field>`` with that value."""
        async def put(value):
            value = int(value)
            stored = value if handler is None else await handler(value)
            await self._set(n, field, stored)
            return value
        return put

    async def _set(self, n: int, field: str, value: int) -> None:
        await self.post({f"{n}:{field}": value, f"{n}:{field}_RBV": value})

    def overlay(self, n: int) -> Overlay:
        """Overlay *n*'s settings as its records hold them now."""
        g = lambda field: self.get(f"{n}:{field}")  # noqa: E731
        text = g("DisplayText")
        if isinstance(text, bytes):
            text = text.split(b"\0", 1)[0].decode("latin-1")
        return Overlay(shape=g("Shape"), draw_mode=g("DrawMode"),
                       position_x=int(g("PositionX")), position_y=int(g("PositionY")),
                       size_x=int(g("SizeX")), size_y=int(g("SizeY")),
                       width_x=int(g("WidthX")), width_y=int(g("WidthY")),
                       red=int(g("Red")), green=int(g("Green")), blue=int(g("Blue")),
                       text=str(text), timestamp_format=str(g("TimeStampFormat")),
                       font=g("Font"))

    async def handle(self, array: NDArray) -> NDArray:
        nx, ny, _ = array.sizes
        await self.post_changed({"MaxSizeX_RBV": nx, "MaxSizeY_RBV": ny})
        overlays = [self.overlay(n) for n in self.numbers if self.get(f"{n}:Use") == "Yes"]
        # the settings are read here, on the IOC's loop; the drawing (a frame's copy
        # and a pixel count per overlay) runs off it, as Stats's maths does
        out = await asyncio.get_running_loop().run_in_executor(
            None, draw_overlays, array.data, overlays, array.color_mode, array.timestamp)
        return NDArray(out, array.unique_id, array.timestamp, array.color_mode)
