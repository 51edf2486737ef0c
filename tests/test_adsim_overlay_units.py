"""The drawing of NDPluginOverlay (iocs/adsim/overlay.py), as plain numpy.

Two kinds of check: small frames whose expected pixels are written out by hand from
NDOverlayN's meaning (a cross's bars, a rectangle's border), and a literal,
pixel-by-pixel transcription of the loops of ADCore's NDPluginOverlay.cpp
(doOverlayT: addPixel drops what is outside the frame, the address list keeps
duplicates except for the ellipse) compared with the vectorised drawing over many
positions, sizes and widths, inside, across and outside the frame's edges.
"""

from __future__ import annotations

import dataclasses
import math
import random
import string
import time

import numpy as np
import pytest

from simbeamline_iocs.adsim.overlay import (FONTS, GLYPHS, Overlay, draw_overlays,
                                            overlay_pixels, overlay_text, text_bitmap)


def dataclass_replace(o, **kw):
    return dataclasses.replace(o, **kw)


def cross(**kw):
    return Overlay(shape="Cross", **kw)


def rect(**kw):
    return Overlay(shape="Rectangle", **kw)


# -- hand-written expectations ------------------------------------------------------
def test_cross_pixels_by_hand():
    # centre (2+4/2, 1+4/2) = (4, 3); arms 2 long; widths 1 -> bars one pixel thick
    o = cross(position_x=2, position_y=1, size_x=4, size_y=4, width_x=1, width_y=1, green=9)
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[3, 2:7] = 9          # horizontal bar, row ycent, x 2..6
    expected[1:6, 4] = 9          # vertical bar, column xcent, y 1..5
    np.testing.assert_array_equal(draw_overlays(np.zeros((8, 8), np.uint8), [o]), expected)


def test_cross_width_thickens_both_bars():
    # WidthX 3 -> columns xcent-1..xcent+1; WidthY 5 -> rows ycent-2..ycent+2
    o = cross(position_x=10, position_y=10, size_x=10, size_y=10, width_x=3, width_y=5)
    count = overlay_pixels(o, (30, 30))
    expected = np.zeros((30, 30), dtype=int)
    expected[13:18, 10:21] = 1
    expected[10:21, 14:17] = 1
    np.testing.assert_array_equal(count, expected)


def test_rectangle_pixels_by_hand():
    # corners (1, 1) and (5, 4) included; border one pixel
    o = rect(position_x=1, position_y=1, size_x=4, size_y=3, width_x=1, width_y=1, green=7)
    expected = np.zeros((6, 7), dtype=np.uint16)
    expected[1, 1:6] = expected[4, 1:6] = 7
    expected[1:5, 1] = expected[1:5, 5] = 7
    np.testing.assert_array_equal(draw_overlays(np.zeros((6, 7), np.uint16), [o]), expected)


def test_rectangle_border_grows_inwards_and_width_zero_draws_nothing():
    o = rect(position_x=2, position_y=3, size_x=9, size_y=7, width_x=2, width_y=3)
    count = overlay_pixels(o, (20, 20))
    inside = np.zeros((20, 20), dtype=bool)
    inside[3:11, 2:12] = True                  # the whole box, rows 3..10, columns 2..11
    hole = np.zeros((20, 20), dtype=bool)
    hole[6:8, 4:10] = True                     # minus 3 rows top/bottom, 2 columns each side
    np.testing.assert_array_equal(count > 0, inside & ~hole)
    assert not overlay_pixels(rect(position_x=2, position_y=3, size_x=9, size_y=7), (20, 20)).any()


def test_set_is_a_c_cast_and_xor_flips_bits():
    frame = np.arange(64, dtype=np.uint8).reshape(8, 8)
    o = rect(position_x=0, position_y=0, size_x=7, size_y=7, width_x=1, width_y=1)
    border = overlay_pixels(o, frame.shape) > 0
    out = draw_overlays(frame, [dataclass_replace(o, green=300)])       # 300 -> 44 in UInt8
    assert (out[border] == 44).all() and (out[~border] == frame[~border]).all()
    xored = draw_overlays(frame, [dataclass_replace(o, draw_mode="XOR", green=0xFF)])
    np.testing.assert_array_equal(xored[border], frame[border] ^ 0xFF)
    np.testing.assert_array_equal(xored[~border], frame[~border])
    # XOR twice gives the frame back; the input is never changed
    again = draw_overlays(xored, [dataclass_replace(o, draw_mode="XOR", green=0xFF)])
    np.testing.assert_array_equal(again, frame)
    assert frame[0, 0] == 0 and frame[7, 7] == 63


def test_xor_of_float_frames_truncates_to_int():
    frame = np.full((4, 4), 5.75)
    o = rect(position_x=0, position_y=0, size_x=3, size_y=3, width_x=1, width_y=1,
             draw_mode="XOR", green=3)
    out = draw_overlays(frame, [o])
    assert out.dtype == np.float64
    assert out[0, 0] == float(5 ^ 3) and out[1, 1] == 5.75


def test_xor_works_on_the_c_int_of_the_pixel():
    """(int)pixel ^ Green: a 64-bit pixel loses its high 32 bits, as in C; a UInt32
    pixel above 2**31 comes back as the 32-bit XOR."""
    o = rect(position_x=0, position_y=0, size_x=2, size_y=2, width_x=1, width_y=1,
             draw_mode="XOR", green=3)
    assert draw_overlays(np.full((2, 2), 2**40 + 5, np.int64), [o])[0, 0] == 6
    assert draw_overlays(np.full((2, 2), 0xFFFFFFF0, np.uint32), [o])[0, 0] == 0xFFFFFFF3


def test_xor_of_a_pixel_listed_twice_leaves_it():
    """2*WidthX >= SizeX+2: the left and right borders share a column, listed twice
    by the C loops, so XOR flips it back (a quirk of the real plugin, kept)."""
    o = rect(position_x=0, position_y=0, size_x=10, size_y=10, width_x=6, width_y=1,
             draw_mode="XOR", green=1)
    count = overlay_pixels(o, (12, 12))
    assert count[5, 5] == 2 and count[5, 4] == 1 and count[5, 6] == 1
    out = draw_overlays(np.zeros((12, 12), np.uint8), [o])
    assert out[5, 5] == 0 and out[5, 4] == 1 and out[0, 5] == 1


def test_overlays_draw_in_order():
    frame = np.zeros((10, 10), dtype=np.uint8)
    a = rect(position_x=0, position_y=0, size_x=9, size_y=9, width_x=1, width_y=1, green=6)
    b = dataclass_replace(a, draw_mode="XOR", green=3)
    out = draw_overlays(frame, [a, b])
    assert out[0, 0] == 6 ^ 3 and out[5, 5] == 0
    out = draw_overlays(frame, [b, a])
    assert out[0, 0] == 6


def test_clipped_shapes_draw_only_inside_the_frame():
    frame = np.full((16, 20), 100, dtype=np.int16)
    shapes = [
        cross(position_x=-30, position_y=-30, size_x=80, size_y=80, width_x=3, width_y=3),
        rect(position_x=-5, position_y=12, size_x=40, size_y=10, width_x=2, width_y=2),
        Overlay(shape="Ellipse", position_x=10, position_y=-8, size_x=30, size_y=20, width_x=2),
        Overlay(shape="Text", position_x=15, position_y=10, size_x=50, size_y=20, text="clipped"),
        rect(position_x=100, position_y=100, size_x=5, size_y=5, width_x=1, width_y=1),
        rect(position_x=-100, position_y=-100, size_x=5, size_y=5, width_x=1, width_y=1),
        cross(position_x=5, position_y=5, size_x=-4, size_y=-4, width_x=-1, width_y=-1),
        Overlay(shape="Ellipse", position_x=3, position_y=3, size_x=-6, size_y=4, width_x=1),
    ]
    for o in shapes:
        out = draw_overlays(frame, [dataclass_replace(o, green=-1)])
        assert out.shape == frame.shape
        assert set(np.unique(out)) <= {100, -1}, o
    # a shape wholly outside changes nothing; the ones across the edges draw something
    np.testing.assert_array_equal(draw_overlays(frame, [shapes[4], shapes[5]]), frame)
    for o in shapes[:4]:
        assert overlay_pixels(o, frame.shape).any(), o


# -- against a literal transcription of doOverlayT's loops ---------------------------
def reference_pixels(o: Overlay, ny: int, nx: int) -> list[tuple[int, int]]:
    """(y, x) of every addPixel call of NDPluginOverlay.cpp that lands inside the
    frame, in the C loops' order and with their duplicates (the ellipse's removed)."""
    half = lambda n: int(n / 2)  # noqa: E731  (C integer division)
    out = []

    def add(ix, iy):
        if 0 <= ix < nx and 0 <= iy < ny:
            out.append((iy, ix))
    px, py, sx, sy, wx, wy = (o.position_x, o.position_y, o.size_x, o.size_y,
                              o.width_x, o.width_y)
    if o.shape == "Cross":
        xcent, ycent = px + half(sx), py + half(sy)
        xmin, xmax = xcent - half(sx), xcent + half(sx)
        ymin, ymax = ycent - half(sy), ycent + half(sy)
        xwide, ywide = half(wx), half(wy)
        for iy in range(ymin, ymax + 1):
            if ycent - ywide <= iy <= ycent + ywide:
                for ix in range(xmin, xmax + 1):
                    add(ix, iy)
            else:
                for ix in range(xcent - xwide, xcent + xwide + 1):
                    add(ix, iy)
    elif o.shape == "Rectangle":
        xmin, xmax, ymin, ymax = px, px + sx, py, py + sy
        xwide, ywide = min(wx, sx - 1), min(wy, sy - 1)
        for iy in range(ymin, ymax + 1):
            if iy < ymin + ywide or iy > ymax - ywide:
                for ix in range(xmin, xmax + 1):
                    add(ix, iy)
            else:
                for ix in range(xmin, xmin + xwide):
                    add(ix, iy)
                for ix in range(xmax - xwide + 1, xmax + 1):
                    add(ix, iy)
    elif o.shape == "Ellipse":
        xwide = min(wx, sx - 1)
        xcent, ycent = px + half(sx), py + half(sy)
        xsize, ysize = half(sx), half(sy)
        steps = 2 * (xsize + ysize)
        step = math.pi / 2.0 / steps if steps else math.inf
        theta = 0.0
        for _ in range(steps + 1):
            for jj in range(xwide):
                ix = int((xsize - jj) * math.cos(theta) + 0.5)
                iy = int((ysize - jj) * math.sin(theta) + 0.5)
                add(xcent + ix, ycent + iy)
                add(xcent + ix, ycent - iy)
                add(xcent - ix, ycent + iy)
                add(xcent - ix, ycent - iy)
            theta += step
        out = sorted(set(out))
    return out


def counts_of(pixels, ny, nx):
    count = np.zeros((ny, nx), dtype=int)
    for y, x in pixels:
        count[y, x] += 1
    return count


@pytest.mark.parametrize("shape", ["Cross", "Rectangle", "Ellipse"])
def test_shapes_match_the_c_loops(shape):
    rng = random.Random(f"overlay-{shape}")
    ny, nx = 23, 31
    for _ in range(300):
        o = Overlay(shape=shape, position_x=rng.randint(-25, 35), position_y=rng.randint(-20, 28),
                    size_x=rng.randint(-3, 45), size_y=rng.randint(-3, 40),
                    width_x=rng.randint(-1, 12), width_y=rng.randint(-1, 12))
        np.testing.assert_array_equal(overlay_pixels(o, (ny, nx)),
                                      counts_of(reference_pixels(o, ny, nx), ny, nx), err_msg=str(o))


def test_ellipse_is_symmetric_and_on_the_curve():
    o = Overlay(shape="Ellipse", position_x=5, position_y=4, size_x=40, size_y=24, width_x=1)
    count = overlay_pixels(o, (40, 60))
    assert count.max() == 1                     # duplicates removed
    ys, xs = np.nonzero(count)
    xc, yc = 5 + 20, 4 + 12
    np.testing.assert_array_equal(count[:, xc - 20:xc + 21], count[:, xc - 20:xc + 21][:, ::-1])
    np.testing.assert_array_equal(count[yc - 12:yc + 13], count[yc - 12:yc + 13][::-1])
    r = ((xs - xc) / 20.0) ** 2 + ((ys - yc) / 12.0) ** 2
    assert np.all(np.abs(r - 1) < 0.15)
    assert {(yc, xc + 20), (yc, xc - 20), (yc + 12, xc), (yc - 12, xc)} <= set(zip(ys, xs))
    # two rings: the inner one has both radii one pixel shorter
    inner = overlay_pixels(dataclass_replace(o, width_x=2), (40, 60)) - count
    assert inner[yc, xc + 19] == 1 and inner[yc + 11, xc] == 1


# -- text --------------------------------------------------------------------------
def test_the_font_covers_printable_ascii():
    assert set(GLYPHS) == set(string.printable[:95])
    for char, rows in GLYPHS.items():
        rows = rows.split()
        assert len(rows) == 7 and all(len(r) == 5 and set(r) <= {".", "#"} for r in rows), char
    assert len({GLYPHS[c] for c in string.ascii_letters + string.digits}) == 62  # all differ


def test_text_cells_have_the_real_fonts_sizes():
    for font, (width, height, *_rest) in FONTS.items():
        bitmap = text_bitmap("AB\x01C", font)
        assert bitmap.shape == (height, 4 * width), font
        assert not bitmap[:, 2 * width:3 * width].any()           # a control char: blank cell
        assert bitmap[:, :width].any() and bitmap[:, 3 * width:].any()
    assert text_bitmap("I", "6x13 Bold").sum() > text_bitmap("I", "6x13").sum()
    with pytest.raises(ValueError, match="Font"):
        text_bitmap("x", "12x24")


def test_text_is_cut_at_the_box():
    o = Overlay(shape="Text", position_x=2, position_y=1, size_x=14, size_y=100,
                text="HHHH", font="6x13", green=1)
    count = overlay_pixels(o, (20, 40))
    full = text_bitmap("HHHH", "6x13")
    np.testing.assert_array_equal(count[1:14, 2:16] > 0, full[:, :14])   # 2 cells + 2 columns
    assert not count[:, 16:].any() and not count[14:].any()              # height: one cell
    short = overlay_pixels(dataclass_replace(o, size_y=6), (20, 40))
    np.testing.assert_array_equal(short[1:7, 2:16] > 0, full[:6, :14])
    assert not short[7:].any()


def test_text_time_stamp():
    # fractions exact in binary, so the float time stamp holds them exactly
    stamp = time.mktime((2026, 3, 4, 5, 6, 7, 0, 0, -1)) + 0.125
    o = Overlay(shape="Text", text="t=", timestamp_format="%Y-%m-%d %H:%M:%S.%03f")
    assert overlay_text(o, stamp) == "t=2026-03-04 05:06:07.125"
    assert overlay_text(dataclass_replace(o, timestamp_format="%H%M %06f"), stamp) == "t=0506 125000"
    assert overlay_text(dataclass_replace(o, timestamp_format="%09f %S"), stamp) == "t=125000000 07"
    # truncated, not rounded: .5009765625 to 3 digits is 500
    assert overlay_text(dataclass_replace(o, timestamp_format="%03f"), stamp + 0.3759765625) == "t=500"
    assert overlay_text(dataclass_replace(o, timestamp_format=""), stamp) == "t="


# -- colour ------------------------------------------------------------------------
@pytest.mark.parametrize("mode,axis", [("RGB1", 2), ("RGB2", 1), ("RGB3", 0)])
def test_rgb_frames_get_red_green_blue(mode, axis):
    ny, nx = 9, 11
    shape = [ny, nx]
    shape.insert(axis, 3)
    frame = np.zeros(shape, dtype=np.uint8)
    o = cross(position_x=2, position_y=2, size_x=6, size_y=4, width_x=1, width_y=1,
              red=10, green=20, blue=30)
    out = np.moveaxis(draw_overlays(frame, [o], mode), axis, 2)
    mask = overlay_pixels(o, (ny, nx)) > 0
    for colour, value in enumerate((10, 20, 30)):
        assert (out[..., colour][mask] == value).all() and not out[..., colour][~mask].any()
