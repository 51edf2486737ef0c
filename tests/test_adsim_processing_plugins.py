"""The processing plugins of commonPlugins: Trans1 (NDPluginTransform), Proc1
(NDPluginProcess) and CC1 (NDPluginColorConvert).

The numpy parts are tested alone; then against an ADSim IOC of the module's own
(:class:`adsim_extra.ExtraADSimIOC`, image1 as DOUBLE so every output type reads back
exactly): the plugin is driven over Channel Access, image1 reads its output port,
and the result is compared with numpy applied to the driver's frame. The frames are
Peaks with no noise and no peak variation, so the same camera settings give the
same frame (checked), and a frame read from SIM1 in one acquisition is the input of
the plugin in the next.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC, noiseless_peak, read_image
from simbeamline_iocs.adsim.colorconvert import convert_color
from simbeamline_iocs.adsim.process import (RecursiveFilter, convert, filter_coefficients,
                                            process_frame)
from simbeamline_iocs.adsim.transform import TRANSFORM_TYPES, transform_frame
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (48, 64)   # rows, columns: small, and not square so the rotations show


# -- numpy -----------------------------------------------------------------------
def test_transform_frame_matches_ndplugintransform_index_maps():
    """Each Type against the index map of NDPluginTransform.cpp's mono loops: Rot90
    puts in[y, x] at out[x, ny-1-y]; Rot270 at out[nx-1-x, y]; Rot90Mirror at
    out[x, y]; Rot270Mirror at out[nx-1-x, ny-1-y]; Mirror at out[y, nx-1-x];
    Rot180 at out[ny-1-y, nx-1-x]; Rot180Mirror at out[ny-1-y, x]."""
    ny, nx = 3, 5
    a = np.arange(ny * nx, dtype=np.uint16).reshape(ny, nx)
    where = {
        "None": lambda y, x: (y, x), "Rot90": lambda y, x: (x, ny - 1 - y),
        "Rot180": lambda y, x: (ny - 1 - y, nx - 1 - x), "Rot270": lambda y, x: (nx - 1 - x, y),
        "Mirror": lambda y, x: (y, nx - 1 - x), "Rot90Mirror": lambda y, x: (x, y),
        "Rot180Mirror": lambda y, x: (ny - 1 - y, x),
        "Rot270Mirror": lambda y, x: (nx - 1 - x, ny - 1 - y),
    }
    assert set(where) == set(TRANSFORM_TYPES)
    for kind, index in where.items():
        out = transform_frame(a, kind)
        swapped = kind.startswith(("Rot90", "Rot270"))
        assert out.shape == ((nx, ny) if swapped else (ny, nx)), kind
        assert out.dtype == a.dtype and out.flags.c_contiguous
        expected = np.empty_like(out)
        for y in range(ny):
            for x in range(nx):
                expected[index(y, x)] = a[y, x]
        np.testing.assert_array_equal(out, expected, err_msg=kind)
    with pytest.raises(ValueError, match="Rot45"):
        transform_frame(a, "Rot45")


def test_process_frame_order_of_operations():
    data = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    background = np.array([[5, 5], [5, 50]], dtype=np.float64)
    flat = np.array([[1, 2], [0, 4]], dtype=np.float64)
    out = process_frame(data, background=background, flat_field=flat, scale_flat_field=8,
                        offset_scale=(1, 0.5), high_clip=(20, 99), low_clip=(0, 50))
    # (10-5)*8/1=40 -> (41)*.5=20.5 -> >20: 99 ; (20-5)*8/2=60 -> 30.5 -> 99
    # flat 0 -> 8 -> 4.5 ; (40-50)*8/4=-20 -> -9.5 -> <0: 50 (high clip came first)
    np.testing.assert_array_equal(out, [[99, 99], [4.5, 50]])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(process_frame(data), data)


def test_convert_is_a_c_cast():
    values = np.array([-1.7, 0.4, 2.9, 300.2])
    np.testing.assert_array_equal(convert(values, "Int16"), [-1, 0, 2, 300])
    np.testing.assert_array_equal(convert(values, "UInt8"), [255, 0, 2, 44])
    assert convert(values, None) is not None and convert(values, None).dtype == np.float64


def filtered(kind, frames, num_filter, **kw):
    f = RecursiveFilter()
    coefficients = {"OScale": 1, "FScale": 1, **filter_coefficients(kind, num_filter)}
    return [f.apply(np.asarray(x, dtype=float), coefficients, num_filter, **kw) for x in frames], f


def test_filter_types():
    frames = [np.full((2, 2), v, dtype=float) for v in (2.0, 4.0, 9.0, 1.0)]
    outs, f = filtered("Average", frames[:3], 3)
    assert [o[0, 0] for o in outs] == pytest.approx([2 / 3, 2, 5]) and f.num_filtered == 3
    outs, f = filtered("Sum", frames[:3], 3)
    assert [o[0, 0] for o in outs] == [2, 6, 15]
    outs, _ = filtered("RecursiveAve", frames, 2)        # n stops at NumFilter
    assert [o[0, 0] for o in outs] == [2, 3, 6, 3.5]
    outs, _ = filtered("Difference", frames[:2], 1)      # each frame minus the one before
    assert [o[0, 0] for o in outs] == [0, 2]
    outs, f = filtered("Average", frames, 2, auto_reset=True)   # restarts after 2
    assert [o[0, 0] for o in outs] == [1, 3, 4.5, 5] and f.num_filtered == 2
    outs, _ = filtered("RecursiveAveDiff", frames[:3], 2)      # frame minus the average
    assert [o[0, 0] for o in outs] == [0, 2, 6]
    outs, _ = filtered("CopyToFilter", frames[:2], 5)
    assert [o[0, 0] for o in outs] == [2, 4]
    with pytest.raises(ValueError, match="Median"):
        filter_coefficients("Median", 3)


def test_convert_color_layouts_and_mean():
    mono = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb1, mode = convert_color(mono, "Mono", "RGB1")
    assert mode == "RGB1" and rgb1.shape == (2, 3, 3)
    assert (rgb1 == mono[:, :, None]).all()
    rgb2, _ = convert_color(mono, "Mono", "RGB2")
    rgb3, _ = convert_color(mono, "Mono", "RGB3")
    assert rgb2.shape == (2, 3, 3) and (rgb2 == mono[:, None, :]).all()
    assert rgb3.shape == (3, 2, 3) and (rgb3 == mono[None]).all()
    # NDArray memory order: RGB1 pixel by pixel (r, g, b), RGB2 row by row, RGB3 plane by plane
    assert list(rgb1.ravel()[:6]) == [0, 0, 0, 1, 1, 1]
    assert list(rgb2.ravel()[:6]) == [0, 1, 2, 0, 1, 2]
    colour = np.zeros((2, 3, 3), dtype=np.uint8)      # RGB1: red 10, green 20, blue 1
    colour[..., 0], colour[..., 1], colour[..., 2] = 10, 20, 1
    grey, mode = convert_color(colour, "RGB1", "Mono")
    assert mode == "Mono" and grey.dtype == np.uint8 and (grey == 10).all()   # 31/3 truncated
    as3, mode = convert_color(colour, "RGB1", "RGB3")
    assert mode == "RGB3" and (as3[0] == 10).all() and (as3[2] == 1).all()
    back, _ = convert_color(as3, "RGB3", "RGB2")
    assert (back[:, 1, :] == 20).all()
    same, mode = convert_color(mono, "Mono", "Bayer")        # no such conversion: unchanged
    assert same is mono and mode == "Mono"


# -- the IOC ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ioc_log(tmp_path_factory):
    return tmp_path_factory.mktemp("proc-ioc") / "ioc.log"


@pytest.fixture(scope="module")
def ad(ioc_log):
    with ExtraADSimIOC(["--image-ftvl", "DOUBLE"], prefix=f"prc{uuid.uuid4().hex[:6]}:",
                       log_path=ioc_log) as ad:
        ad.camera(size=SHAPE[::-1], sim_mode="Peaks")
        noiseless_peak(ad)
        ad.plugin("image1")
        yield ad



def driver_frame(ad, gain=1.0) -> np.ndarray:
    ad.put("cam1:Gain", gain)
    return read_image(ad, "SIM1")


def test_trans1_transforms_the_frame(ad):
    first, again = driver_frame(ad), driver_frame(ad)
    np.testing.assert_array_equal(first, again)       # the frames repeat: a fair reference
    assert first.max() > 50 and not np.array_equal(first, first[::-1, ::-1])
    ad.plugin("Trans1")
    for kind in TRANSFORM_TYPES:
        ad.put("Trans1:Type", kind)
        assert ad.string("Trans1:Type") == kind
        out = read_image(ad, "TRANS1")
        np.testing.assert_array_equal(out, transform_frame(first, kind), err_msg=kind)
        # the plugin's own size readbacks describe its input, as NDPluginDriver's do
        assert (ad.get("Trans1:ArraySizeX_RBV"), ad.get("Trans1:ArraySizeY_RBV")) == SHAPE[::-1]
    ad.put("Trans1:EnableCallbacks", "Disable")


PROC_OFF = (("EnableBackground", "Disable"), ("EnableFlatField", "Disable"),
            ("EnableOffsetScale", "Disable"), ("EnableLowClip", "Disable"),
            ("EnableHighClip", "Disable"), ("EnableFilter", "Disable"),
            ("DataTypeOut", "Float64"), ("FilterCallbacks", "Every array"),
            ("AutoResetFilter", "No"))


def proc(ad, *settings):
    ad.plugin("Proc1")
    for suffix, value in PROC_OFF + settings:
        ad.put(f"Proc1:{suffix}", value)


def test_proc1_background_flat_field_offset_scale_clip_and_type(ad):
    frame1, frame2 = driver_frame(ad, 1.0), driver_frame(ad, 2.0)
    proc(ad)
    ad.put("cam1:Gain", 1.0)
    np.testing.assert_array_equal(read_image(ad, "PROC1"), frame1)   # nothing on: a copy
    ad.put("Proc1:SaveBackground", 1)
    assert ad.string("Proc1:ValidBackground_RBV") == "Valid"
    assert ad.string("Proc1:SaveBackground_RBV") == "No"
    ad.put("Proc1:EnableBackground", "Enable")
    ad.put("cam1:Gain", 2.0)
    np.testing.assert_array_equal(read_image(ad, "PROC1"), frame2 - frame1)

    # flat field: the gain-2 frame, saved from an unprocessed pass
    ad.put("Proc1:EnableBackground", "Disable")
    read_image(ad, "PROC1")
    ad.put("Proc1:SaveFlatField", 1)
    assert ad.string("Proc1:ValidFlatField_RBV") == "Valid"
    # the input now: the peak moved, so background and flat field differ from it
    ad.put("Proc1:EnableCallbacks", "Disable")
    ad.put("cam1:PeakStartX", 28)
    try:
        moved = driver_frame(ad, 1.0)
        # clip thresholds inside the range of the unclipped result, so both clips act
        unclipped = process_frame(moved, background=frame1, flat_field=frame2,
                                  scale_flat_field=30.0, offset_scale=(3.0, 2.5))
        low, high = (float(np.round(np.percentile(unclipped, q), 1)) for q in (20, 80))
        assert high - low > 5
        settings = (("EnableBackground", "Enable"), ("EnableFlatField", "Enable"),
                    ("ScaleFlatField", 30.0), ("EnableOffsetScale", "Enable"), ("Offset", 3.0),
                    ("Scale", 2.5), ("EnableHighClip", "Enable"), ("HighClipThresh", high),
                    ("HighClipValue", 251.0), ("EnableLowClip", "Enable"),
                    ("LowClipThresh", low), ("LowClipValue", 2.0), ("DataTypeOut", "UInt8"),
                    ("EnableCallbacks", "Enable"))
        for suffix, value in settings:
            ad.put(f"Proc1:{suffix}", value)
        out = read_image(ad, "PROC1")
    finally:
        ad.put("cam1:PeakStartX", 20)
    expected = convert(process_frame(moved, background=frame1, flat_field=frame2,
                                     scale_flat_field=30.0, offset_scale=(3.0, 2.5),
                                     high_clip=(high, 251.0), low_clip=(low, 2.0)), "UInt8")
    np.testing.assert_array_equal(out, expected)
    assert ad.string("image1:DataType_RBV") == "UInt8"
    # both clips act, and values between them remain
    assert {2, 251}.issubset(set(out.ravel())) and len(np.unique(out)) > 5

    # Automatic keeps the input's type; a size change makes the saved arrays invalid
    proc(ad, ("DataTypeOut", "Automatic"), ("EnableBackground", "Enable"))
    ad.put("cam1:Gain", 2.0)
    np.testing.assert_array_equal(read_image(ad, "PROC1"), convert(frame2 - frame1, "UInt8"))
    assert ad.string("image1:DataType_RBV") == "UInt8"
    ad.put("cam1:SizeX", SHAPE[1] - 8)
    try:
        read_image(ad, "PROC1")
        assert ad.string("Proc1:ValidBackground_RBV") == "Invalid"
        assert ad.string("Proc1:ValidFlatField_RBV") == "Invalid"
    finally:
        ad.put("cam1:SizeX", SHAPE[1])
    assert ad.get("Proc1:ArrayCounter_RBV") > 0


@pytest.mark.parametrize("kind", ["Average", "Sum", "RecursiveAve"])
def test_proc1_filter(ad, kind):
    gains = (1.0, 2.0, 3.0, 1.5)
    frames = [driver_frame(ad, g) for g in gains]
    proc(ad, ("FilterType", kind), ("NumFilter", 3), ("EnableFilter", "Enable"))
    if kind == "Sum":      # as an enum index too (RecursiveAve, Average, Sum, ...)
        ad.put("Proc1:FilterType", 2)
        assert ad.string("Proc1:FilterType") == "Sum"
    written = {f: ad.get(f"Proc1:{f}_RBV") for f in ("OC1", "OC3", "FC3", "RC1", "RC2")}
    assert written == pytest.approx({f: v for f, v in filter_coefficients(kind, 3).items()
                                     if f in written})             # FilterType wrote them
    ad.put("Proc1:ResetFilter", 1)
    model = RecursiveFilter()
    coefficients = {"OScale": 1, "FScale": 1, **filter_coefficients(kind, 3)}
    outs = []
    for i, (gain, frame) in enumerate(zip(gains, frames)):
        ad.put("cam1:Gain", gain)
        outs.append(read_image(ad, "PROC1"))
        expected = model.apply(frame.astype(float), coefficients, 3, reset=(i == 0))
        np.testing.assert_allclose(outs[-1], expected, rtol=1e-12, err_msg=f"{kind} frame {i}")
        assert ad.get("Proc1:NumFiltered_RBV") == min(i + 1, 3)
    # what the filter is for, from numpy directly
    named = {"Average": np.mean(frames[:3], axis=0), "Sum": np.sum(frames[:3], axis=0),
             "RecursiveAve": np.mean(frames[:3], axis=0)}[kind]
    np.testing.assert_allclose(outs[2], named, rtol=1e-12)
    ad.put("Proc1:EnableFilter", "Disable")



def test_cc1_mono_to_rgb1_and_cc2_back(ad):
    frame = driver_frame(ad, 1.0)
    ny, nx = SHAPE
    ad.plugin("CC1")
    ad.put("CC1:ColorModeOut", "RGB1")
    rgb = read_image(ad, "CC1")
    assert rgb.shape == (ny, nx, 3)
    assert ad.string("image1:ColorMode_RBV") == "RGB1"
    assert (ad.get("image1:ArraySizeX_RBV"), ad.get("image1:ArraySizeY_RBV"),
            ad.get("image1:ArraySizeZ_RBV")) == (nx, ny, 3)
    np.testing.assert_array_equal(rgb, convert_color(frame, "Mono", "RGB1")[0])
    ad.put("CC1:ColorModeOut", "RGB3")
    np.testing.assert_array_equal(read_image(ad, "CC1"), np.stack([frame] * 3))
    assert ad.string("image1:ColorMode_RBV") == "RGB3"
    # CC2 reads CC1 (RGB3) and makes it Mono again: the mean of three equal colours
    ad.plugin("CC2")
    ad.put("CC2:NDArrayPort", "CC1")
    ad.put("CC2:ColorModeOut", "Mono")
    np.testing.assert_array_equal(read_image(ad, "CC2"), frame)
    assert ad.string("CC2:ColorMode_RBV") == "RGB3"          # what CC2 received
    assert ad.string("image1:ColorMode_RBV") == "Mono"
    # a colour frame through Trans1: rotated, colours kept in their layout
    ad.put("CC1:ColorModeOut", "RGB2")
    ad.plugin("Trans1")
    ad.put("Trans1:NDArrayPort", "CC1")
    ad.put("Trans1:Type", "Rot90")
    try:
        out = read_image(ad, "TRANS1")
    finally:
        ad.put("Trans1:NDArrayPort", "SIM1")
        for name in ("Trans1", "CC1", "CC2"):
            ad.put(f"{name}:EnableCallbacks", "Disable")
    assert out.shape == (nx, 3, ny) and ad.string("image1:ColorMode_RBV") == "RGB2"
    np.testing.assert_array_equal(out[:, 1, :], transform_frame(frame, "Rot90"))


def test_proc1_auto_offset_scale(ad):
    frame = driver_frame(ad, 1.0)
    proc(ad, ("DataTypeOut", "UInt8"))
    ad.put("Proc1:AutoOffsetScale", 1, wait=False)
    wait_for(lambda: ad.string("Proc1:AutoOffsetScale") == "Calculating", 10,
             "AutoOffsetScale to read Calculating")
    # the frame that computes them is not yet scaled
    np.testing.assert_array_equal(read_image(ad, "PROC1"), frame)
    assert ad.string("Proc1:AutoOffsetScale") == "Done"
    low, high = float(frame.min()), float(frame.max())
    assert high > low
    assert ad.get("Proc1:Scale_RBV") == pytest.approx(255.0 / (high - low))
    assert ad.get("Proc1:Offset_RBV") == pytest.approx(-low)
    assert [ad.string(f"Proc1:{f}_RBV") for f in
            ("EnableOffsetScale", "EnableLowClip", "EnableHighClip")] == ["Enable"] * 3
    assert (ad.get("Proc1:HighClipThresh"), ad.get("Proc1:LowClipThresh")) == (255.0, 0.0)
    out = read_image(ad, "PROC1")     # the next frames fill the UInt8 range
    expected = convert(process_frame(frame, offset_scale=(-low, 255.0 / (high - low)),
                                     high_clip=(255.0, 255.0), low_clip=(0.0, 0.0)), "UInt8")
    np.testing.assert_array_equal(out, expected)
    # the range filled: 255 up to the rounding of Scale, truncated as a C cast does
    assert out.min() == 0 and out.max() >= 254


def test_proc1_sum_of_each_pair_with_array_n_only(ad):
    gains = (1.0, 2.0, 3.0, 1.5)
    frames = [driver_frame(ad, g) for g in gains]
    proc(ad, ("FilterType", "Sum"), ("NumFilter", 2), ("FilterCallbacks", "Array N only"),
         ("AutoResetFilter", "Yes"), ("DataTypeOut", "UInt16"), ("EnableFilter", "Enable"))
    ad.put("Proc1:ResetFilter", 1)
    ad.put("image1:NDArrayPort", "PROC1")
    seen = []
    for gain in gains:
        ad.put("cam1:Gain", gain)
        before = ad.get("image1:ArrayCounter_RBV")
        ad.acquire()      # returns after the plugins drained (WaitForPlugins)
        passed = ad.get("image1:ArrayCounter_RBV") - before
        seen.append(passed)
        if passed:
            nx, ny = ad.get("image1:ArraySizeX_RBV"), ad.get("image1:ArraySizeY_RBV")
            out = np.asarray(ad.get("image1:ArrayData", count=nx * ny))[:nx * ny]
            n = len(seen)
            np.testing.assert_array_equal(out.reshape(ny, nx),
                                          frames[n - 2].astype(float) + frames[n - 1])
    assert seen == [0, 1, 0, 1]      # only every second frame (NumFiltered = NumFilter)
    assert ad.string("image1:DataType_RBV") == "UInt16"
    assert ad.get("Proc1:NumFiltered_RBV") == 2
    ad.put("Proc1:EnableFilter", "Disable")


def test_colour_frames_into_a_mono_only_plugin_leave_the_chain_working(ad, ioc_log):
    """BadPix1 (2-D only here) on CC1's RGB1 frames: it counts them and says their colour
    mode, fixes nothing (the IOC's log says colour frames are not simulated), and CC1
    and image1 go on. (Stats and ROI take colour frames: tests/test_adsim_colour.py.)"""
    frame = driver_frame(ad, 1.0)
    ad.plugin("CC1")
    ad.put("CC1:ColorModeOut", "RGB1")
    ad.plugin("BadPix1")
    ad.put("BadPix1:NDArrayPort", "CC1")
    counter = ad.get("BadPix1:ArrayCounter_RBV")
    try:
        for _ in range(2):
            rgb = read_image(ad, "CC1")
            np.testing.assert_array_equal(rgb[..., 2], frame)
        wait_for(lambda: ad.get("BadPix1:ArrayCounter_RBV") == counter + 2, 30,
                 "BadPix1 to count both colour frames")
        assert ad.string("BadPix1:ColorMode_RBV") == "RGB1"
        assert ad.get("BadPix1:NDimensions_RBV") == 3
        wait_for(lambda: "BadPix1: RGB1 frames are not simulated" in ioc_log.read_text(), 10,
                 "the IOC's log to name the refused colour frame")
    finally:
        ad.put("BadPix1:NDArrayPort", "SIM1")
        for name in ("BadPix1", "CC1"):
            ad.put(f"{name}:EnableCallbacks", "Disable")
