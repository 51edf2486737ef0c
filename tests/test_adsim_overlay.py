"""Over1 (NDPluginOverlay) in a real ADSim IOC process, over Channel Access.

The IOC is one of the module's own (:class:`adsim_extra.ExtraADSimIOC`, image1 as
DOUBLE so every pixel reads back exactly). The frames are Peaks with no noise and
no peak variation, so the same camera settings give the same frame (checked): a
frame image1 reads from SIM1 is the input Over1 gets in the next acquisition, and
what image1 reads from OVER1 is compared with what the overlays must draw into it,
the expected pixels written out here from the shapes' meaning (not from the IOC's
drawing code) for crosses and rectangles.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC, noiseless_peak, read_image
from simbeamline_iocs.adsim.h5writer import EPICS_EPOCH
from simbeamline_iocs.adsim.overlay import Overlay, draw_overlays, overlay_pixels
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (48, 64)   # rows, columns
FIELDS = ("Shape", "DrawMode", "PositionX", "PositionY", "SizeX", "SizeY", "WidthX",
          "WidthY", "Green")


@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("over-ioc") / "ioc.log"
    with ExtraADSimIOC(["--image-ftvl", "DOUBLE"], prefix=f"ovl{uuid.uuid4().hex[:6]}:",
                       log_path=log) as ad:
        ad.camera(size=SHAPE[::-1], sim_mode="Peaks")
        noiseless_peak(ad)
        ad.plugin("image1")
        yield ad



def configure(ad, n: int, **values):
    """Put Over1:<n>:<Field> for each value (Field in CamelCase), Use Yes."""
    for field, value in values.items():
        ad.put(f"Over1:{n}:{field}", value)
    ad.put(f"Over1:{n}:Use", "Yes")


def off(ad):
    for n in range(1, 9):
        ad.put(f"Over1:{n}:Use", "No")


@pytest.fixture(scope="module")
def frame(ad):
    first, again = read_image(ad, "SIM1"), read_image(ad, "SIM1")
    np.testing.assert_array_equal(first, again)        # the frames repeat: a fair reference
    assert first.max() > 50 and len(np.unique(first)) > 10
    ad.plugin("Over1")
    return first


def test_no_overlay_passes_the_frame_on(ad, frame):
    off(ad)
    counter = ad.get("Over1:ArrayCounter_RBV")
    np.testing.assert_array_equal(read_image(ad, "OVER1"), frame)
    assert ad.get("Over1:ArrayCounter_RBV") == counter + 1
    assert (ad.get("Over1:MaxSizeX_RBV"), ad.get("Over1:MaxSizeY_RBV")) == SHAPE[::-1]
    wait_for(lambda: ad.get("Over1:3:MaxSizeX") == SHAPE[1], 10,
             "Over1:3:MaxSizeX to follow MaxSizeX_RBV")


def test_cross_and_rectangle_set_their_pixels_and_nothing_else(ad, frame):
    off(ad)
    configure(ad, 1, Shape="Cross", DrawMode="Set", PositionX=10, PositionY=6, SizeX=20,
              SizeY=16, WidthX=3, WidthY=1, Green=200)
    configure(ad, 2, Shape="Rectangle", DrawMode="Set", PositionX=40, PositionY=20, SizeX=15,
              SizeY=10, WidthX=2, WidthY=1, Green=7)
    out = read_image(ad, "OVER1")
    cross = np.zeros(SHAPE, dtype=bool)
    cross[14, 10:31] = True               # centre (20, 14): bar of row 14, x 10..30
    cross[6:23, 19:22] = True             # and columns 19..21 (WidthX 3), y 6..22
    box = np.zeros(SHAPE, dtype=bool)
    box[20:31, 40:56] = True              # corners (40, 20) and (55, 30) included
    box[21:30, 42:54] = False             # border: 1 row, 2 columns, growing inwards
    assert (out[cross] == 200).all() and (out[box] == 7).all()
    untouched = ~(cross | box)
    np.testing.assert_array_equal(out[untouched], frame[untouched])
    assert ad.get("Over1:ArrayCounter_RBV") > 0
    assert ad.string("image1:DataType_RBV") == ad.string("cam1:DataType_RBV")


def test_xor_flips_the_frame_bits(ad, frame):
    off(ad)
    configure(ad, 4, Shape="Rectangle", DrawMode="XOR", PositionX=5, PositionY=5, SizeX=50,
              SizeY=30, WidthX=4, WidthY=3, Green=0x55)
    out = read_image(ad, "OVER1")
    box = np.zeros(SHAPE, dtype=bool)
    box[5:36, 5:56] = True
    box[8:33, 9:52] = False
    expected = frame.copy()
    expected[box] = frame[box].astype(np.int64) ^ 0x55
    np.testing.assert_array_equal(out, expected)
    assert (out[box] != frame[box]).all()


def test_ellipse_text_and_clipped_shapes(ad, frame):
    """Shapes across and beyond the frame's edges: the IOC goes on, draws what is
    inside; the result is the module's drawing of the same settings (ellipse, text)."""
    off(ad)
    settings = {
        1: Overlay(shape="Ellipse", position_x=30, position_y=-10, size_x=50, size_y=40,
                   width_x=2, green=250),
        2: Overlay(shape="Rectangle", position_x=-20, position_y=40, size_x=200, size_y=30,
                   width_x=3, width_y=3, green=1),
        3: Overlay(shape="Cross", position_x=-100, position_y=-100, size_x=20, size_y=20,
                   width_x=1, width_y=1, green=2),
        5: Overlay(shape="Text", position_x=2, position_y=30, size_x=40, size_y=13,
                   text="Hi 42", font="6x13 Bold", draw_mode="XOR", green=0xF0),
    }
    for n, o in settings.items():
        configure(ad, n, Shape=o.shape, DrawMode=o.draw_mode, PositionX=o.position_x,
                  PositionY=o.position_y, SizeX=o.size_x, SizeY=o.size_y, WidthX=o.width_x,
                  WidthY=o.width_y, Green=o.green, DisplayText=o.text, Font=o.font,
                  TimeStampFormat="")
    counter = ad.get("Over1:ArrayCounter_RBV")
    out = read_image(ad, "OVER1")
    assert ad.get("Over1:ArrayCounter_RBV") == counter + 1
    assert ad.string("Over1:5:DisplayText_RBV") == "Hi 42"
    expected = draw_overlays(frame, [settings[n] for n in sorted(settings)])
    np.testing.assert_array_equal(out, expected)
    for n in (1, 2, 5):        # each of these drew something inside the frame
        assert overlay_pixels(settings[n], SHAPE).any()
    bottom = np.zeros(SHAPE, dtype=bool)
    bottom[40:43] = True       # the clipped rectangle's top border, all across
    assert (out[bottom] == 1).all()


def test_text_with_the_frames_time_stamp(ad, frame):
    """A Text overlay with a TimeStampFormat writes the frame's time (image1's
    TimeStamp_RBV is the same frame's, seconds past the EPICS epoch)."""
    off(ad)
    # "t HH:MM:SS": ten 6x13 cells, 60 columns
    o = Overlay(shape="Text", position_x=1, position_y=2, size_x=62, size_y=15, text="t ",
                timestamp_format="%H:%M:%S", font="6x13", green=255)
    configure(ad, 7, Shape="Text", DrawMode="Set", PositionX=1, PositionY=2, SizeX=62,
              SizeY=15, Green=255, DisplayText="t ", TimeStampFormat="%H:%M:%S", Font="6x13")
    out = read_image(ad, "OVER1")
    stamp = ad.get("image1:TimeStamp_RBV") + EPICS_EPOCH
    np.testing.assert_array_equal(out, draw_overlays(frame, [o], timestamp=stamp))
    drawn = overlay_pixels(o, SHAPE, stamp) > 0
    assert drawn[2:15, 1:61].sum() == drawn.sum() > 60      # inside its ten cells
    # a second later the text differs: the time is drawn, not a constant
    assert not np.array_equal(drawn, overlay_pixels(o, SHAPE, stamp + 1) > 0)


def test_position_and_center_follow_each_other(ad):
    n = 6

    def rbv(field):
        return ad.get(f"Over1:{n}:{field}_RBV")

    def both(field):
        return ad.get(f"Over1:{n}:{field}"), rbv(field)
    ad.put(f"Over1:{n}:SizeX", 10)
    ad.put(f"Over1:{n}:CenterX", 30)
    assert both("PositionX") == (25, 25) and both("CenterX") == (30, 30)
    ad.put(f"Over1:{n}:SizeX", 21)            # Center put last: it stays, Position moves
    assert both("PositionX") == (20, 20) and rbv("CenterX") == 30
    ad.put(f"Over1:{n}:PositionX", 5)
    assert both("CenterX") == (15, 15)
    ad.put(f"Over1:{n}:SizeX", 8)             # Position put last: it stays, Center moves
    assert both("CenterX") == (9, 9) and rbv("PositionX") == 5
    # Y alike, and the Link records write their field (OUT ... PP)
    ad.put(f"Over1:{n}:SizeY", 6)
    ad.put(f"Over1:{n}:CenterYLink", 12)
    assert both("CenterY") == (12, 12) and both("PositionY") == (9, 9)
    ad.put(f"Over1:{n}:PositionYLink", 2)
    assert both("PositionY") == (2, 2) and both("CenterY") == (5, 5)
    ad.put(f"Over1:{n}:WidthXLink", 4)
    assert both("WidthX") == (4, 4)
    # the drawing uses the linked Position
    off(ad)
    configure(ad, n, Shape="Rectangle", DrawMode="Set", WidthX=1, WidthY=1, Green=3)
    ad.put(f"Over1:{n}:CenterX", 40)         # SizeX 8 -> PositionX 36
    ad.put(f"Over1:{n}:CenterY", 20)         # SizeY 6 -> PositionY 17
    out = read_image(ad, "OVER1")
    box = np.zeros(SHAPE, dtype=bool)
    box[17:24, 36:45] = True                 # corners (36, 17) and (44, 23)
    box[18:23, 37:44] = False
    assert box.sum() == 2 * 9 + 2 * 5 and (out[box] == 3).all()
    off(ad)
