"""Colour frames (RGB1/RGB2/RGB3) through ROI, Stats and the file plugins, as
ADCore's NDPluginROI, NDPluginStats, NDFileTIFF and NDFileHDF5 take them.

The numpy parts are tested against references written out plainly (loops over
the C plugins' index rules); then against an ADSim IOC of the module's own
(:class:`adsim_extra.ExtraADSimIOC`, image1 as DOUBLE): CC1 makes colour frames
from the driver's Mono Peaks frame, the plugin under test reads CC1, and image1
(or the file written) is compared with numpy applied to the CC1 frame.
"""

from __future__ import annotations

import uuid

import h5py
import numpy as np
import pytest
import tifffile

from adsim_extra import ExtraADSimIOC, noiseless_peak, read_image
from simbeamline_iocs.adsim.colorconvert import COLOR_AXIS, convert_color
from simbeamline_iocs.adsim.file_plugins import tiff_layout
from simbeamline_iocs.adsim.h5writer import FrameInfo, WriteOptions, write_frames
from simbeamline_iocs.adsim.roi import Axis, roi_array
from simbeamline_iocs.adsim.stats import array_statistics, frame_histogram
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (24, 40)   # rows, columns


def rgb_last(ny=5, nx=7, dtype=np.uint16) -> np.ndarray:
    """(y, x, 3) with every element different: value = 100 y + 10 x + colour."""
    y, x, c = np.meshgrid(np.arange(ny), np.arange(nx), np.arange(3), indexing="ij")
    return (100 * y + 10 * x + c).astype(dtype)


def as_layout(canonical: np.ndarray, mode: str) -> np.ndarray:
    """A (y, x, 3) frame in *mode*'s numpy layout."""
    return np.ascontiguousarray(np.moveaxis(canonical, 2, COLOR_AXIS[mode]))


def reference_region(canonical, x: Axis, y: Axis, z: Axis) -> np.ndarray:
    """The region of a (y, x, 3) frame with plain loops: out[j, i, k] is the sum over
    the bin of in[y.min + j*by + b, x.min + i*bx + a, z.min + k*bz + d], then the
    reversed axes flipped."""
    out = np.zeros((y.out, x.out, z.out), dtype=np.int64)
    for j in range(y.out):
        for i in range(x.out):
            for k in range(z.out):
                out[j, i, k] = sum(
                    int(canonical[y.min + j * y.bin + b, x.min + i * x.bin + a,
                                  z.min + k * z.bin + d])
                    for b in range(y.bin) for a in range(x.bin) for d in range(z.bin))
    if x.reverse:
        out = out[:, ::-1, :]
    if y.reverse:
        out = out[::-1, :, :]
    if z.reverse:
        out = out[:, :, ::-1]
    return out


# -- ROI: numpy -------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RGB1", "RGB2", "RGB3"])
def test_roi_region_acts_on_x_and_y_wherever_the_colour_axis_is(mode):
    canonical = rgb_last()
    data = as_layout(canonical, mode)
    x = Axis.clamp(7, True, 1, 5, 2, True)         # columns 1..4 in 2 bins, reversed
    y = Axis.clamp(5, True, 2, 100, 1, False)      # rows 2..4 (size clamped to 3)
    z = Axis.clamp(3, True, 0, 3, 1, True)         # all colours, reversed (b, g, r)
    out, out_mode = roi_array(data, mode, x, y, z)
    assert out_mode == mode and out.dtype == data.dtype
    expected = reference_region(canonical, x, y, z)
    assert expected.shape == (3, 2, 3)
    np.testing.assert_array_equal(out, as_layout(expected, mode))
    # Z disabled: the whole colour axis whatever its Min/Size/Bin say
    off = Axis.clamp(3, False, 2, 1, 3, False)
    out, _ = roi_array(data, mode, x, y, off)
    np.testing.assert_array_equal(out, as_layout(
        reference_region(canonical, x, y, Axis(0, 3, 1, False)), mode))


@pytest.mark.parametrize("mode", ["RGB1", "RGB2", "RGB3"])
def test_roi_of_one_colour_is_mono(mode):
    """NDPluginROI.cpp: an output whose colour dimension is 1 long gets ColorMode Mono
    and its size-1 dimension collapsed; BinZ 3 sums the three colours into it."""
    canonical = rgb_last()
    data = as_layout(canonical, mode)
    whole = Axis.clamp(7, False, 0, 0, 1, False), Axis.clamp(5, False, 0, 0, 1, False)
    green, out_mode = roi_array(data, mode, *whole, Axis.clamp(3, True, 1, 1, 1, False))
    assert out_mode == "Mono" and green.shape == (5, 7)
    np.testing.assert_array_equal(green, canonical[:, :, 1])
    summed, out_mode = roi_array(data, mode, *whole, Axis.clamp(3, True, 0, 3, 3, False),
                                 data_type="Float64")
    assert out_mode == "Mono" and summed.dtype == np.float64
    np.testing.assert_array_equal(summed, canonical.sum(axis=2))


def test_roi_mono_unchanged_and_auto_size():
    mono = np.arange(42, dtype=np.uint8).reshape(6, 7)
    x = Axis.clamp(7, True, 2, 3, 1, False)
    out, mode = roi_array(mono, "Mono", x, Axis.clamp(6, True, 1, 2, 1, False))
    assert mode == "Mono"
    np.testing.assert_array_equal(out, mono[1:3, 2:5])
    # AutoSize: the size is the input's, clamped to what the offset leaves
    assert Axis.clamp(7, True, 2, 3, 1, False, auto_size=True).size == 5
    assert Axis.clamp(7, False, 2, 3, 1, False, auto_size=True) == Axis(0, 7, 1, False)


# -- Stats: numpy -----------------------------------------------------------------
def c_statistics(data: np.ndarray, x_size: int, bgd_width: int) -> dict:
    """NDPluginStats::doComputeStatisticsT and the background loop, element by element
    in memory order (its C loops, transcribed)."""
    flat = [float(v) for v in data.ravel()]
    imin = min(range(len(flat)), key=lambda i: (flat[i], i))
    imax = min(range(len(flat)), key=lambda i: (-flat[i], i))
    total, squares, n = sum(flat), sum(v * v for v in flat), len(flat)
    out = {"Total": total, "MinValue": flat[imin], "MaxValue": flat[imax],
           "MeanValue": total / n, "Sigma": (squares / n - (total / n) ** 2) ** 0.5,
           "MinX": imin % x_size, "MinY": imin // x_size,
           "MaxX": imax % x_size, "MaxY": imax // x_size, "Net": total}
    if bgd_width:
        counts, pixels = 0.0, 0
        for dim, size in enumerate(data.shape):
            for offset in (0, max(0, size - bgd_width)):
                width = min(bgd_width, size - offset)
                index = [slice(None)] * data.ndim
                index[dim] = slice(offset, offset + width)
                part = data[tuple(index)]
                counts += float(part.sum())
                pixels += part.size
        out["Net"] = total - counts / pixels * n
    return out


@pytest.mark.parametrize("mode", ["RGB1", "RGB2", "RGB3"])
def test_array_statistics_of_colour_frames(mode):
    rng = np.random.default_rng(3)
    canonical = rng.integers(0, 250, size=(6, 9, 3)).astype(np.uint8)
    canonical[4, 7, 2] = 255           # a unique maximum
    canonical[1, 2, 0] = 0
    canonical[canonical == 0] = 1
    canonical[1, 2, 0] = 0             # a unique minimum
    data = as_layout(canonical, mode)
    for bgd in (0, 1, 2):
        got = array_statistics(data, x_size=9, bgd_width=bgd)
        expected = c_statistics(data, 9, bgd)
        assert got == pytest.approx(expected, rel=1e-12), (mode, bgd)
    # the positions are the memory index modulo / divided by the width (not pixels)
    imax = int(np.argmax(data))
    assert (got["MaxX"], got["MaxY"]) == (imax % 9, imax // 9)
    if mode == "RGB3":           # colour slowest: the y is the plane's rows after it
        assert (got["MaxX"], got["MaxY"]) == (7, 2 * 6 + 4)


def test_histogram_counts_every_colour_element():
    data = as_layout(rgb_last(2, 2, np.uint8), "RGB2")
    hist = frame_histogram(data, size=256, low=0, high=255)
    assert hist["Histogram"].sum() == data.size == 12
    assert hist["Histogram"][112] == 1 and hist["HistAbove"] == 0


# -- file formats: numpy ----------------------------------------------------------
@pytest.mark.parametrize("mode,planar", [("RGB1", "CONTIG"), ("RGB2", "SEPARATE"),
                                         ("RGB3", "SEPARATE")])
def test_tiff_layout_is_ndfiletiff_s(tmp_path, mode, planar):
    canonical = rgb_last(4, 6, np.uint16)
    pixels, photometric, config = tiff_layout(as_layout(canonical, mode), mode)
    path = tmp_path / f"{mode}.tif"
    tifffile.imwrite(path, pixels, photometric=photometric, planarconfig=config)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.RGB
        assert page.planarconfig == getattr(tifffile.PLANARCONFIG, planar)
        assert (page.imagewidth, page.imagelength, page.samplesperpixel) == (6, 4, 3)
        read = page.asarray()
    np.testing.assert_array_equal(read if planar == "CONTIG" else np.moveaxis(read, 0, 2),
                                  canonical)
    with pytest.raises(ValueError, match="unsupported array structure"):
        tiff_layout(np.zeros((4, 6, 2), np.uint8), "RGB1")


def test_hdf5_colour_frame_dims_and_color_mode(tmp_path):
    frame = as_layout(rgb_last(4, 6, np.uint8), "RGB2")
    path = tmp_path / "rgb2.h5"
    write_frames(str(path), [frame, frame + 1], [FrameInfo(1, 1.7e9), FrameInfo(2, 1.7e9)],
                 WriteOptions(), multi=True, color_mode="RGB2")
    with h5py.File(path, "r") as f:
        data = f["/entry/instrument/detector/data"]
        assert data.shape == (2, 4, 3, 6)          # frames, then the NDArray dims reversed
        np.testing.assert_array_equal(data[1], frame + 1)
        assert data.attrs["NDArrayNumDims"] == 3
        assert f["/entry/instrument/detector/NDAttributes/ColorMode"][()] == 3
    single = tmp_path / "rgb1.h5"
    frame1 = as_layout(rgb_last(4, 6, np.uint8), "RGB1")
    write_frames(str(single), [frame1], [FrameInfo(5, 1.7e9)], WriteOptions(), multi=False,
                 color_mode="RGB1")
    with h5py.File(single, "r") as f:
        np.testing.assert_array_equal(f["/entry/instrument/detector/data"][()], frame1)
        assert f["/entry/instrument/detector/NDAttributes/ColorMode"][()] == 2


# -- the IOC ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("colour-ioc") / "ioc.log"
    with ExtraADSimIOC(["--image-ftvl", "DOUBLE"], prefix=f"col{uuid.uuid4().hex[:6]}:",
                       env={"SIMBEAMLINE_AD_PATH_MAP": None}, log_path=log) as ad:
        ad.camera(size=SHAPE[::-1], sim_mode="Peaks")
        noiseless_peak(ad, start=(12, 9), width=(6, 4))
        ad.plugin("image1")
        ad.plugin("CC1")
        ad.put("CC1:BlockingCallbacks", "Yes")
        yield ad



def colour_frame(ad, mode: str) -> np.ndarray:
    """CC1's output in *mode*: the driver's frame in three equal colours."""
    ad.put("CC1:ColorModeOut", mode)
    frame = read_image(ad, "CC1")
    assert ad.string("image1:ColorMode_RBV") == mode
    return frame


def roi_settings(ad, **values):
    defaults = {"EnableX": "Enable", "EnableY": "Enable", "EnableZ": "Enable",
                "MinX": 0, "SizeX": 10000, "BinX": 1, "ReverseX": "No",
                "MinY": 0, "SizeY": 10000, "BinY": 1, "ReverseY": "No",
                "MinZ": 0, "SizeZ": 10000, "BinZ": 1, "ReverseZ": "No",
                "DataTypeOut": "Automatic", "EnableScale": "Disable"}
    for suffix, value in {**defaults, **values}.items():
        ad.put(f"ROI1:{suffix}", value)


@pytest.mark.parametrize("mode", ["RGB1", "RGB2", "RGB3"])
def test_roi1_takes_colour_frames(ad, mode):
    ny, nx = SHAPE
    frame = colour_frame(ad, mode)
    ad.plugin("ROI1")
    ad.put("ROI1:NDArrayPort", "CC1")
    ad.put("ROI1:BlockingCallbacks", "Yes")
    try:
        roi_settings(ad, MinX=5, SizeX=20, BinX=2, ReverseX="Yes", MinY=3, SizeY=15)
        out = read_image(ad, "ROI1")
        assert ad.string("image1:ColorMode_RBV") == mode
        canonical = np.moveaxis(frame, COLOR_AXIS[mode], 2)
        expected = reference_region(canonical, Axis(5, 20, 2, True), Axis(3, 15, 1, False),
                                    Axis(0, 3, 1, False))
        np.testing.assert_array_equal(out, as_layout(expected, mode))
        assert (ad.get("ROI1:MaxSizeX_RBV"), ad.get("ROI1:MaxSizeY_RBV"),
                ad.get("ROI1:MaxSizeZ_RBV")) == (nx, ny, 3)
        assert (ad.get("ROI1:ArraySizeX_RBV"), ad.get("ROI1:ArraySizeY_RBV"),
                ad.get("ROI1:ArraySizeZ_RBV")) == (10, 15, 3)
        assert (ad.get("ROI1:SizeZ_RBV"), ad.get("ROI1:MinZ_RBV")) == (3, 0)
        assert ad.string("ROI1:ColorMode_RBV") == mode          # its input's
        # one colour: a Mono frame (the driver's frame, every colour being equal)
        roi_settings(ad, MinZ=2, SizeZ=1)
        out = read_image(ad, "ROI1")
        assert ad.string("image1:ColorMode_RBV") == "Mono" and out.shape == SHAPE
        np.testing.assert_array_equal(out, canonical[:, :, 2])
        # BinZ 3: the three colours summed, still one Mono frame
        roi_settings(ad, BinZ=3, DataTypeOut="Float64")
        out = read_image(ad, "ROI1")
        assert ad.string("image1:ColorMode_RBV") == "Mono"
        np.testing.assert_array_equal(out, canonical.sum(axis=2))
        assert ad.get("ROI1:BinZ_RBV") == 3
    finally:
        roi_settings(ad)
        ad.put("ROI1:NDArrayPort", "SIM1")
        ad.put("ROI1:EnableCallbacks", "Disable")


@pytest.mark.parametrize("mode", ["RGB1", "RGB3"])
def test_stats1_takes_colour_frames(ad, mode):
    frame = colour_frame(ad, mode)
    ad.plugin("Stats1")
    ad.put("Stats1:NDArrayPort", "CC1")
    ad.put("Stats1:BlockingCallbacks", "Yes")
    for suffix, value in (("ComputeStatistics", "Yes"), ("ComputeCentroid", "Yes"),
                          ("ComputeProfiles", "Yes"), ("ComputeHistogram", "Yes"),
                          ("BgdWidth", 2), ("HistSize", 64), ("HistMin", 0),
                          ("HistMax", 255)):
        ad.put(f"Stats1:{suffix}", value)
    try:
        before = ad.get("Stats1:ArrayCounter_RBV")
        again = colour_frame(ad, mode)
        wait_for(lambda: ad.get("Stats1:ArrayCounter_RBV") > before, 30, "Stats1 to take a frame")
    finally:
        ad.put("Stats1:NDArrayPort", "SIM1")
        ad.put("Stats1:EnableCallbacks", "Disable")
    np.testing.assert_array_equal(again, frame)
    assert frame.max() > 50
    expected = c_statistics(frame, SHAPE[1], 2)
    for name in ("Total", "Net", "MinValue", "MaxValue", "MeanValue", "Sigma",
                 "MinX", "MinY", "MaxX", "MaxY"):
        assert ad.get(f"Stats1:{name}_RBV") == pytest.approx(expected[name], rel=1e-9), name
    # 3-D: no centroid and no profiles (NDPluginStats returns before computing them)
    for name in ("CentroidX", "CentroidY", "SigmaX", "CentroidTotal"):
        assert ad.get(f"Stats1:{name}_RBV") == 0.0, name
    dims = frame.shape[::-1]
    assert (ad.get("Stats1:ProfileSizeX_RBV"), ad.get("Stats1:ProfileSizeY_RBV")) == dims[:2]
    profile = np.asarray(ad.get("Stats1:ProfileAverageX_RBV", count=dims[0]))
    assert len(profile) >= dims[0] and not profile[:dims[0]].any()
    hist = np.asarray(ad.get("Stats1:Histogram_RBV", count=64))[:64]
    np.testing.assert_array_equal(hist, frame_histogram(frame, size=64, low=0,
                                                        high=255)["Histogram"])
    assert hist.sum() == frame.size
    assert ad.string("Stats1:ColorMode_RBV") == mode


@pytest.mark.parametrize("mode", ["RGB1", "RGB2"])
def test_tiff1_and_hdf1_write_colour_frames(ad, tmp_path, mode):
    directory = str(tmp_path) + "/"
    for plugin, template in (("TIFF1", "%s%s_%3.3d.tif"), ("HDF1", "%s%s_%3.3d.h5")):
        for suffix, value in (("NDArrayPort", "CC1"), ("EnableCallbacks", "Enable"),
                              ("BlockingCallbacks", "Yes"), ("FilePath", directory),
                              ("FileName", mode), ("FileTemplate", template),
                              ("FileNumber", 1), ("AutoIncrement", "Yes"),
                              ("FileWriteMode", "Single"), ("AutoSave", "Yes")):
            ad.put(f"{plugin}:{suffix}", value)
    try:
        frame = colour_frame(ad, mode)
        for plugin, name in (("TIFF1", f"{mode}_001.tif"), ("HDF1", f"{mode}_001.h5")):
            wait_for(lambda: ad.string(f"{plugin}:FullFileName_RBV").endswith(name), 30,
                     f"{plugin} to write {name}")
            assert ad.string(f"{plugin}:WriteStatus") == "Write OK", \
                ad.string(f"{plugin}:WriteMessage")
    finally:
        for plugin in ("TIFF1", "HDF1"):
            ad.put(f"{plugin}:AutoSave", "No")
            ad.put(f"{plugin}:NDArrayPort", "SIM1")
            ad.put(f"{plugin}:EnableCallbacks", "Disable")
    canonical = np.moveaxis(frame, COLOR_AXIS[mode], 2).astype(np.uint8)
    with tifffile.TiffFile(tmp_path / f"{mode}_001.tif") as tif:
        page = tif.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.RGB
        separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
        assert separate == (mode != "RGB1")
        read = page.asarray()
    np.testing.assert_array_equal(np.moveaxis(read, 0, 2) if separate else read, canonical)
    with h5py.File(tmp_path / f"{mode}_001.h5", "r") as f:
        data = f["/entry/instrument/detector/data"][()]
        assert data.shape == frame.shape and data.dtype == np.uint8
        np.testing.assert_array_equal(data, frame)
        assert f["/entry/instrument/detector/NDAttributes/ColorMode"][()] == \
            {"RGB1": 2, "RGB2": 3}[mode]


def test_convert_color_reference_for_these_tests():
    """The CC1 frames these tests take: three equal colours of the Mono frame."""
    mono = np.arange(6, dtype=np.uint8).reshape(2, 3)
    for mode in COLOR_AXIS:
        out, _ = convert_color(mono, "Mono", mode)
        np.testing.assert_array_equal(np.moveaxis(out, COLOR_AXIS[mode], 2)[:, :, 1], mono)


# -- FalseColor ---------------------------------------------------------------------
#: Entries of colorMaps.h (ADCore ee039d24), read from its R, G and B tables.
COLOR_MAP_ENTRIES = {
    "Rainbow": {0: (0, 0, 0), 1: (0, 0, 4), 11: (0, 0, 45), 128: (4, 255, 251),
                200: (255, 219, 0), 255: (255, 255, 255)},
    "Iron": {0: (0, 0, 0), 1: (1, 0, 1), 11: (16, 5, 18), 128: (192, 64, 64),
             200: (192, 172, 64), 255: (255, 255, 255)},
}


@pytest.mark.parametrize("name", ["Rainbow", "Iron"])
def test_false_color_looks_up_colormaps_h(name):
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb1, mode = convert_color(ramp, "Mono", "RGB1", name)
    assert mode == "RGB1" and rgb1.shape == (16, 16, 3) and rgb1.dtype == np.uint8
    for value, colour in COLOR_MAP_ENTRIES[name].items():
        assert tuple(rgb1.reshape(256, 3)[value]) == colour, value
    for mode in ("RGB2", "RGB3"):
        out, got = convert_color(ramp, "Mono", mode, name)
        assert got == mode
        np.testing.assert_array_equal(np.moveaxis(out, COLOR_AXIS[mode], 2), rgb1)
    # Int8: the byte as unsigned indexes the table; the output stays Int8
    signed, _ = convert_color(np.array([[-1, 1]], np.int8), "Mono", "RGB1", name)
    assert signed.dtype == np.int8
    np.testing.assert_array_equal(signed.view(np.uint8)[0], [COLOR_MAP_ENTRIES[name][255],
                                                             COLOR_MAP_ENTRIES[name][1]])
    # other types, and RGB -> Mono, ignore FalseColor
    wide, _ = convert_color(np.array([[1, 11]], np.uint16), "Mono", "RGB1", name)
    np.testing.assert_array_equal(wide[0], [[1, 1, 1], [11, 11, 11]])
    mono, mode = convert_color(rgb1, "RGB1", "Mono", name)
    assert mode == "Mono" and mono.shape == (16, 16)


def test_cc1_false_color_over_ca(ad):
    ad.put("CC1:ColorModeOut", "Mono")
    mono = read_image(ad, "CC1").astype(np.uint8)         # Mono -> Mono: the frame
    assert len(np.unique(mono)) > 10
    try:
        for name, mode in (("Rainbow", "RGB1"), ("Iron", "RGB3")):
            ad.put("CC1:FalseColor", name)
            assert ad.string("CC1:FalseColor_RBV") == name
            out = colour_frame(ad, mode)
            table = np.array([COLOR_MAP_ENTRIES[name].get(v, (-1, -1, -1))
                              for v in range(256)])
            known = np.isin(mono, list(COLOR_MAP_ENTRIES[name]))
            assert known.any()
            np.testing.assert_array_equal(np.moveaxis(out, COLOR_AXIS[mode], 2)[known],
                                          table[mono[known]])
            np.testing.assert_array_equal(out, convert_color(mono, "Mono", mode, name)[0])
            assert not np.array_equal(out, convert_color(mono, "Mono", mode)[0])
    finally:
        ad.put("CC1:FalseColor", "None")
