"""The plugin chain of commonPlugins against the IOC launched the user's way:
routing by NDArrayPort (ROI1 -> Stats2), ROI region/binning, per-plugin counters
and dims, TIFF1 writing real files in Single and Capture modes, netCDF1 refusing
with a WriteMessage, and CB1's soft trigger."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import tifffile

from adsim_support import AD, host_dir, wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (240, 320)   # rows, columns


@pytest.fixture(scope="module")
def ad(beamline):
    ad = AD(beamline.ad_prefix)
    ad.camera(size=SHAPE[::-1])
    ad.plugin("image1")
    yield ad
    for name in ("ROI1", "Stats2", "TIFF1", "netCDF1", "CB1"):
        ad.put(f"{name}:EnableCallbacks", "Disable")
    ad.put("Stats2:NDArrayPort", "SIM1")
    ad.put("TIFF1:AutoSave", "No")
    ad.camera()


def frame(ad):
    return np.asarray(ad.get("image1:ArrayData", count=SHAPE[0] * SHAPE[1]),
                      dtype=np.uint8).reshape(SHAPE)


#: The input port each plugin is loaded with in ADCore's EXAMPLE_commonPlugins.cmd
#: (ee039d24): the NDARRAY_PORT macro of its dbLoadRecords, which its NDArrayPort
#: record (PINI YES) writes to the plugin at iocInit. Stats2..Stats5 are configured
#: with ROI1..ROI4 (NDStatsConfigure's argument) but loaded with NDARRAY_PORT=$(PORT),
#: so the real IOC's Stats2..5 read SIM1 once booted.
COMMON_PLUGINS_INPUT = {
    **{name: "SIM1" for name in (
        "image1", "netCDF1", "TIFF1", "JPEG1", "Nexus1", "HDF1", "ROI1", "ROI2", "ROI3",
        "ROI4", "ROIStat1", "Proc1", "Proc1:TIFF", "Scatter1", "Gather1", "Stats1",
        "Stats2", "Stats3", "Stats4", "Stats5", "Trans1", "Over1", "CC1", "CC2", "CB1",
        "Attr1", "FFT1", "Codec1", "Codec2", "BadPix1", "Pva1")},
    **{f"Gather1:NDArrayPort_{n}": "SIM1" for n in range(1, 9)},
    **{f"Stats{n}:TS": f"STATS{n}" for n in range(1, 6)},
    "Attr1:TS": "ATTR1",
}


def test_boot_routing_is_what_common_plugins_loads(beamline):
    """Every plugin's NDArrayPort (and its readback) at boot: no test before this
    one in the module routes a plugin elsewhere."""
    ad = AD(beamline.ad_prefix)
    seen = {}
    for name in COMMON_PLUGINS_INPUT:
        pv = name if name.startswith("Gather1:NDArrayPort_") else f"{name}:NDArrayPort"
        seen[name] = (ad.string(pv), ad.string(pv + "_RBV"))
    assert seen == {name: (port, port) for name, port in COMMON_PLUGINS_INPUT.items()}


def test_roi_feeds_stats2_with_its_region(ad):
    ad.plugin("ROI1")
    for suffix, value in (("MinX", 100), ("SizeX", 200), ("BinX", 2), ("MinY", 50),
                          ("SizeY", 400), ("BinY", 1), ("EnableX", "Enable"),
                          ("EnableY", "Enable"), ("DataTypeOut", "Float64")):
        ad.put(f"ROI1:{suffix}", value)
    ad.put("Stats2:NDArrayPort", "ROI1")
    assert ad.string("Stats2:NDArrayPort_RBV") == "ROI1"
    ad.put("Stats2:EnableCallbacks", "Enable")
    ad.put("Stats2:ComputeStatistics", "Yes")
    counters = {p: ad.get(f"{p}:ArrayCounter_RBV") for p in ("ROI1", "Stats2", "Stats3")}
    ad.acquire()
    wait_for(lambda: ad.get("Stats2:ArrayCounter_RBV") == counters["Stats2"] + 1, 30,
             "Stats2 to take ROI1's frame")
    full = frame(ad).astype(np.float64)
    region = full[50:240, 100:300]                 # SizeY clamps to what remains (190)
    binned = region.reshape(190, 100, 2).sum(axis=2)
    assert ad.get("ROI1:ArrayCounter_RBV") == counters["ROI1"] + 1
    assert ad.get("Stats3:ArrayCounter_RBV") == counters["Stats3"]     # not enabled
    assert (ad.get("ROI1:MaxSizeX_RBV"), ad.get("ROI1:MaxSizeY_RBV")) == (320, 240)
    assert (ad.get("ROI1:SizeY_RBV"), ad.get("ROI1:ArraySizeX_RBV"),
            ad.get("ROI1:ArraySizeY_RBV")) == (190, 100, 190)
    assert (ad.get("Stats2:ArraySize0_RBV"), ad.get("Stats2:ArraySize1_RBV")) == (100, 190)
    assert ad.string("Stats2:DataType_RBV") == "Float64"
    assert ad.get("Stats2:Total_RBV") == pytest.approx(binned.sum())
    assert ad.get("Stats2:MaxValue_RBV") == pytest.approx(binned.max())
    assert ad.get("Stats2:UniqueId_RBV") == ad.get("cam1:ArrayCounter_RBV")
    assert ad.get("ROI1:QueueFree") == ad.get("ROI1:QueueSize")


def test_tiff1_writes_each_frame_in_single_and_capture_modes(ad, beamline):
    ioc_dir = f"/tmp/adsim-tiff/{uuid.uuid4().hex[:8]}/"
    for suffix, value in (("NDArrayPort", "SIM1"), ("EnableCallbacks", "Enable"),
                          ("CreateDirectory", -3), ("FilePath", ioc_dir),
                          ("FileName", "img"), ("FileTemplate", "%s%s_%3.3d.tif"),
                          ("FileNumber", 1), ("AutoIncrement", "Yes"),
                          ("FileWriteMode", "Single"), ("AutoSave", "Yes")):
        ad.put(f"TIFF1:{suffix}", value)
    assert ad.string("TIFF1:FilePathExists_RBV") == "Yes"
    ad.acquire()
    wait_for(lambda: ad.string("TIFF1:FullFileName_RBV").endswith("img_001.tif"), 30,
             "TIFF1 to write its file")
    host = host_dir(beamline, ioc_dir)
    np.testing.assert_array_equal(tifffile.imread(host / "img_001.tif"), frame(ad))
    assert ad.get("TIFF1:FileNumber_RBV") == 2
    # Capture: NumCapture frames, one file each, written when the capture completes
    ad.put("TIFF1:FileWriteMode", "Capture")
    ad.put("TIFF1:NumCapture", 3)
    ad.put("TIFF1:Capture", 1, wait=False)
    ad.wait_for("TIFF1:Capture_RBV", lambda v: v == "Capturing")
    ad.camera(size=SHAPE[::-1], mode="Multiple", num_images=3)
    ad.acquire()
    ad.wait_for("TIFF1:Capture_RBV", lambda v: v == "Done")
    assert ad.string("TIFF1:WriteStatus") == "Write OK"
    names = sorted(p.name for p in host.iterdir())
    assert names == ["img_001.tif", "img_002.tif", "img_003.tif", "img_004.tif"]
    last = tifffile.imread(host / "img_004.tif")
    np.testing.assert_array_equal(last, frame(ad))
    ad.put("TIFF1:AutoSave", "No")
    ad.put("TIFF1:EnableCallbacks", "Disable")
    ad.camera(size=SHAPE[::-1])


def test_netcdf1_says_it_does_not_write(ad):
    ioc_dir = "/tmp/adsim-netcdf/"
    for suffix, value in (("NDArrayPort", "SIM1"), ("EnableCallbacks", "Enable"),
                          ("CreateDirectory", -3), ("FilePath", ioc_dir),
                          ("FileName", "n"), ("FileTemplate", "%s%s_%3.3d.nc"),
                          ("FileWriteMode", "Single"), ("AutoSave", "Yes")):
        ad.put(f"netCDF1:{suffix}", value)
    ad.put("cam1:WaitForPlugins", "Yes")
    try:
        ad.acquire()
    finally:
        ad.put("netCDF1:AutoSave", "No")
        ad.put("netCDF1:EnableCallbacks", "Disable")
    ad.wait_for("netCDF1:WriteStatus", lambda v: v == "Write error")
    assert "not written by this simulated IOC" in ad.string("netCDF1:WriteMessage")


def test_cb1_soft_trigger_passes_frames_and_ends(ad):
    ad.plugin("CB1")
    ad.put("CB1:PreCount", 2)
    ad.put("CB1:PostCount", 1)
    ad.put("CB1:Capture", 1)
    assert ad.string("CB1:Capture_RBV") == "Capturing"
    ad.camera(size=SHAPE[::-1], mode="Multiple", num_images=3)
    ad.acquire()
    wait_for(lambda: ad.get("CB1:CurrentQty_RBV") == 2, 30, "CB1 to hold PreCount frames")
    ad.put("CB1:Trigger", 1, wait=False)
    ad.wait_for("CB1:Trigger_RBV", lambda v: v == "Triggered")
    ad.camera(size=SHAPE[::-1])
    ad.acquire()             # the one post-trigger frame ends the trigger
    ad.wait_for("CB1:Trigger_RBV", lambda v: v == "Done")
    assert ad.get("CB1:ActualTriggerCount_RBV") == 1
    ad.put("CB1:Capture", 0)
    ad.put("CB1:EnableCallbacks", "Disable")
