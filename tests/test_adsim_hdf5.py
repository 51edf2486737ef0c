"""The ADSimDetector IOC's HDF5 writer against the IOC launched the user's way:
NeXus layout, compressions, Single/Capture/Stream, failures, and ophyd's own
SimDetector + HDF5 plugin classes (no apstools)."""

from __future__ import annotations

import os
import uuid

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc/LZ4/Bitshuffle filters)
import numpy as np
import pytest

from adsim_support import AD, host_dir

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ad(beamline):
    ad = AD(beamline.ad_prefix)
    ad.camera()
    ad.plugin("image1")
    yield ad
    ad.put("cam1:Acquire", 0)
    ad.put("HDF1:Capture", 0)
    ad.put("HDF1:AutoSave", "No")


@pytest.fixture
def ioc_dir():
    """A fresh directory as the IOC names it (it does not exist yet)."""
    return f"/tmp/adsim-tests/{uuid.uuid4().hex[:8]}/"


def image1_frame(ad, shape=(1024, 1024)):
    return np.asarray(ad.get("image1:ArrayData", count=shape[0] * shape[1]),
                      dtype=np.uint8).reshape(shape)


def test_single_mode_layout(ad, beamline, ioc_dir):
    ad.camera()
    ad.hdf(ioc_dir, name="layout")
    ad.put("HDF1:StorePerform", "Yes")
    ad.acquire()
    assert ad.string("HDF1:FilePathExists_RBV") == "Yes"
    full = ad.string("HDF1:FullFileName_RBV")
    assert full == f"{ioc_dir}layout_000000.h5"           # as the IOC names it
    path = host_dir(beamline, full)
    frame = image1_frame(ad)
    with h5py.File(path, "r") as f:
        assert f["/entry"].attrs["NX_class"] == "NXentry"
        assert f["/entry/instrument"].attrs["NX_class"] == "NXinstrument"
        assert f["/entry/instrument/detector"].attrs["NX_class"] == "NXdetector"
        assert f["/entry/data"].attrs["NX_class"] == "NXdata"
        data = f["/entry/instrument/detector/data"]
        assert data.attrs["signal"] == 1
        assert data.shape == (1024, 1024) and data.dtype == np.uint8
        assert isinstance(f["/entry/data"].get("data", getlink=True), h5py.HardLink)
        assert f["/entry/data/data"] == data                 # the same object
        attrs = f["/entry/instrument/NDAttributes"]
        assert attrs.attrs["NX_class"] == "NXcollection"
        for name in ("NDArrayUniqueId", "NDArrayTimeStamp", "NDArrayEpicsTSSec", "NDArrayEpicsTSnSec"):
            assert name in attrs
        assert attrs["NDArrayUniqueId"][0] == ad.get("cam1:ArrayCounter_RBV")
        assert "performance" in f["/entry/instrument"]
        np.testing.assert_array_equal(data[()], frame)       # image1 carries the same frame
    assert ad.get("HDF1:FileNumber_RBV") == 1
    assert ad.string("HDF1:WriteStatus") == "Write OK"
    ad.put("HDF1:StorePerform", "No")


@pytest.mark.parametrize("compression", ["None", "zlib", "Blosc", "LZ4", "BSLZ4"])
def test_each_compression_round_trips_bit_exactly(ad, beamline, ioc_dir, compression):
    ad.camera(sim_mode="Peaks")
    ad.hdf(ioc_dir, name=compression, compression=compression)
    if compression == "Blosc":
        ad.put("HDF1:BloscCompressor", "ZSTD")
        ad.put("HDF1:BloscShuffle", "Bit")
    ad.acquire()
    path = host_dir(beamline, ad.string("HDF1:FullFileName_RBV"))
    with h5py.File(path, "r") as f:
        stored = f["/entry/data/data"][()]
        filters = f["/entry/data/data"]._filters
    np.testing.assert_array_equal(stored, image1_frame(ad))
    if compression == "None":
        assert not filters
    else:
        assert filters


@pytest.mark.parametrize("mode", ["Capture", "Stream"])
def test_capture_and_stream_write_one_multi_frame_file(ad, beamline, ioc_dir, mode):
    ad.camera(mode="Multiple", num_images=4, exposure=0.01, period=0.02)
    ad.hdf(ioc_dir, name=mode.lower(), mode=mode, num_capture=4, compression="zlib")
    number = ad.get("HDF1:FileNumber")
    ad.put("HDF1:Capture", 1, wait=False)
    ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Capturing")
    ad.acquire()
    ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Done")
    assert ad.get("HDF1:NumCaptured_RBV") == 4
    full = ad.string("HDF1:FullFileName_RBV")
    assert full == f"{ioc_dir}{mode.lower()}_{number:06d}.h5"
    with h5py.File(host_dir(beamline, full), "r") as f:
        data = f["/entry/data/data"]
        assert data.shape == (4, 1024, 1024)
        assert len(f["/entry/instrument/NDAttributes/NDArrayUniqueId"]) == 4
        ids = f["/entry/instrument/NDAttributes/NDArrayUniqueId"][()]
        np.testing.assert_array_equal(np.diff(ids), [1, 1, 1])
        np.testing.assert_array_equal(data[3], image1_frame(ad))   # the last frame
    assert sorted(os.listdir(host_dir(beamline, ioc_dir))) == [f"{mode.lower()}_{number:06d}.h5"]
    ad.camera()


def test_stream_in_swmr_mode_is_read_while_open_after_flush_now(ad, beamline, ioc_dir):
    """What ophyd-async's HDF writer relies on: SWMRMode On, NumFramesChunks (0 is
    taken as 1 when the file opens, as NDFileHDF5 does), and FlushNow, a busy record
    whose put completes once the open file is flushed and which then reads Done, so
    a SWMR reader sees every frame written while the capture goes on."""
    ad.camera(mode="Multiple", num_images=3, exposure=0.01, period=0.02)
    ad.hdf(ioc_dir, name="swmr", mode="Stream", num_capture=0)   # until Capture=0
    ad.put("HDF1:FlushNow", 1)                  # no file open: nothing to flush
    assert ad.string("HDF1:FlushNow") == "Done"
    ad.put("HDF1:SWMRMode", "On")
    ad.put("HDF1:NumFramesChunks", 0)
    try:
        ad.put("HDF1:Capture", 1, wait=False)
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Capturing")
        ad.acquire()
        ad.wait_for("HDF1:NumCaptured_RBV", lambda v: v == "3")
        ad.put("HDF1:FlushNow", 1)              # completes after the flush
        assert ad.string("HDF1:FlushNow") == "Done"
        assert ad.get("HDF1:NumFramesChunks_RBV") == 1
        assert ad.string("HDF1:Capture_RBV") == "Capturing"      # the file is still open
        path = host_dir(beamline, ad.string("HDF1:FullFileName_RBV"))
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            data = f["/entry/data/data"]
            assert data.shape == (3, 1024, 1024) and data.chunks == (1, 1024, 1024)
            np.testing.assert_array_equal(data[2], image1_frame(ad))
        ad.put("HDF1:Capture", 0)
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Done")
        assert ad.string("HDF1:WriteStatus") == "Write OK"
    finally:
        ad.put("HDF1:Capture", 0)
        ad.put("HDF1:SWMRMode", "Off")
        ad.camera()


def test_chunk_sizes_and_num_frames_flush(ad, beamline, ioc_dir):
    """ChunkSizeAuto No with NumRowChunks/NumColChunks chunks each frame (cut to the
    frame); ChunkSizeAuto Yes chunks whole frames; NumFramesFlush below NumFramesChunks
    and chunking changed while a file is open are refused, as NDFileHDF5 refuses them;
    with NumFramesFlush 2 a SWMR reader sees the frames two at a time."""
    ad.camera(mode="Multiple", num_images=2, exposure=0.01, period=0.02, size=(64, 48))
    ad.hdf(ioc_dir, name="chunks", mode="Stream", num_capture=0)
    ad.put("HDF1:SWMRMode", "On")
    ad.put("HDF1:NumFramesChunks", 1)
    ad.put("HDF1:ChunkSizeAuto", "No")
    ad.put("HDF1:NumRowChunks", 16)
    ad.put("HDF1:NumColChunks", 500)                      # more than the frame: cut to 64
    ad.put("HDF1:NumFramesFlush", 2)
    assert ad.put_refused("HDF1:NumFramesFlush", 0)       # below NumFramesChunks
    assert ad.get("HDF1:NumFramesFlush") == 2
    try:
        ad.put("HDF1:Capture", 1, wait=False)
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Capturing")
        ad.acquire()
        ad.wait_for("HDF1:NumCaptured_RBV", lambda v: v == "2")
        assert (ad.get("HDF1:NumRowChunks_RBV"), ad.get("HDF1:NumColChunks_RBV")) == (16, 64)
        assert ad.get("HDF1:NumFramesFlush_RBV") == 2
        assert ad.put_refused("HDF1:NumRowChunks", 8)     # a file is open
        assert ad.get("HDF1:NumRowChunks") == 16
        path = host_dir(beamline, ad.string("HDF1:FullFileName_RBV"))
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            data = f["/entry/data/data"]
            assert data.chunks == (1, 16, 64)
            assert data.shape[0] == 2                       # flushed after the 2nd frame
        ad.put("HDF1:Capture", 0)
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Done")
        ad.put("HDF1:ChunkSizeAuto", "Yes")
        ad.hdf(ioc_dir, name="whole", mode="Capture", num_capture=2)
        ad.put("HDF1:Capture", 1, wait=False)
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Capturing")
        ad.acquire()
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Done")
        with h5py.File(host_dir(beamline, ad.string("HDF1:FullFileName_RBV")), "r") as f:
            assert f["/entry/data/data"].chunks == (1, 48, 64)
        assert (ad.get("HDF1:NumRowChunks_RBV"), ad.get("HDF1:NumColChunks_RBV")) == (48, 64)
    finally:
        ad.put("HDF1:Capture", 0)
        ad.put("HDF1:SWMRMode", "Off")
        ad.put("HDF1:ChunkSizeAuto", "Yes")
        ad.put("HDF1:NumFramesFlush", 0)
        ad.camera()


def test_uncreatable_file_path_reports_and_ophyd_stage_raises(ad, beamline, ioc_dir):
    from ophyd import Component as Cpt
    from ophyd.areadetector import SimDetector, SingleTrigger
    from ophyd.areadetector.filestore_mixins import FileStoreHDF5SingleIterativeWrite
    from ophyd.areadetector.plugins import HDF5Plugin

    # an earlier file, which must stay untouched
    ad.camera()
    ad.hdf(ioc_dir, name="earlier")
    ad.acquire()
    earlier = host_dir(beamline, ad.string("HDF1:FullFileName_RBV"))
    before = (earlier.stat().st_mtime_ns, earlier.read_bytes())

    bad = f"{ioc_dir}a/b/c/d/"                 # 4 missing levels
    ad.put("HDF1:CreateDirectory", -2)          # allowed to create only 2
    ad.put("HDF1:FilePath", bad)
    assert ad.string("HDF1:FilePath_RBV") == bad
    assert ad.string("HDF1:FilePathExists_RBV") == "No"
    assert ad.string("HDF1:WriteStatus") == "Write error"
    assert "a/b/c/d" in ad.string("HDF1:WriteMessage")
    assert not host_dir(beamline, f"{ioc_dir}a/b").exists()

    class Hdf(FileStoreHDF5SingleIterativeWrite, HDF5Plugin):
        pass

    class Det(SingleTrigger, SimDetector):
        hdf1 = Cpt(Hdf, "HDF1:", write_path_template=bad,
                   read_path_template=str(host_dir(beamline, bad)) + "/")

    det = Det(beamline.ad_prefix, name="det")
    det.wait_for_connection(timeout=30)
    with pytest.raises(IOError):
        det.stage()
    det.unstage()
    assert (earlier.stat().st_mtime_ns, earlier.read_bytes()) == before
    assert sorted(os.listdir(earlier.parent)) == [earlier.name]


def test_write_failing_mid_acquisition_ends_it_and_keeps_earlier_files(ad, beamline, ioc_dir):
    ad.camera(mode="Multiple", num_images=6, exposure=0.01, period=0.3)
    ad.hdf(ioc_dir, name="fail")
    ad.put("HDF1:FilePath", ioc_dir)            # created now (CreateDirectory=-5)
    host = host_dir(beamline, ioc_dir)
    (host / "fail_000002.h5").mkdir()           # the third file cannot be written
    ad.acquire()
    assert ad.string("HDF1:WriteStatus") == "Write error"
    assert "fail_000002.h5" in ad.string("HDF1:WriteMessage")
    assert ad.get("cam1:NumImagesCounter_RBV") < 6        # the acquisition ended early
    assert ad.string("cam1:DetectorState_RBV") == "Aborted"
    for n in (0, 1):
        with h5py.File(host / f"fail_{n:06d}.h5", "r") as f:
            assert f["/entry/data/data"].shape == (1024, 1024)
    assert (host / "fail_000002.h5").is_dir()
    ad.camera()


def test_ophyd_simdetector_with_hdf5_stream_plugin(ad, beamline, ioc_dir):
    """ophyd's own classes (the ophyd tutorial's HDF5PluginWithFileStore, Stream
    mode with Capture) acquire, write and read back through databroker."""
    import bluesky
    import bluesky.plans as bp
    import databroker
    from ophyd import Component as Cpt
    from ophyd.areadetector import SimDetector, SingleTrigger
    from ophyd.areadetector.filestore_mixins import FileStoreHDF5IterativeWrite
    from ophyd.areadetector.plugins import HDF5Plugin

    class HDF5PluginWithFileStore(HDF5Plugin, FileStoreHDF5IterativeWrite):
        pass

    ad.put("HDF1:CreateDirectory", -5)
    ad.put("HDF1:FilePath", ioc_dir)       # create the directory
    assert ad.string("HDF1:FilePathExists_RBV") == "Yes"

    class Det(SingleTrigger, SimDetector):
        hdf5 = Cpt(HDF5PluginWithFileStore, "HDF1:", write_path_template=ioc_dir,
                   read_path_template=str(host_dir(beamline, ioc_dir)) + "/")

    det = Det(beamline.ad_prefix, name="det")
    det.wait_for_connection(timeout=30)
    # Connect the lazy signals trigger() touches (ADTriggerStatus subscribes to the
    # cam's array_counter): otherwise the first trigger() connects them and takes
    # ~100 ms, so a 10 ms acquisition's 1 -> 0 edge can finish ophyd's status before
    # trigger() returns it, and trigger() returns None (the SingleTrigger race in
    # DESIGN.md's pitfalls; a client-side race, not the IOC's).
    for signal in (det.cam.array_counter, det.cam.num_images, det.cam.acquire):
        signal.wait_for_connection(timeout=30)
    det.read_attrs = ["hdf5"]
    # 0.2 s exposures: ophyd's SingleTrigger returns None if the acquisition's 1 -> 0
    # edge is processed before trigger() returns (its dispatch takes a few ms, more on
    # a loaded machine); this test is about Stream files, not about that race
    det.cam.stage_sigs.update(acquire_time=0.2, acquire_period=0.25, num_images=1)
    ad.put("cam1:WaitForPlugins", "Yes")    # ophyd's SimDetectorCam has no such component
    ad.put("HDF1:Compression", "None")
    ad.put("HDF1:LazyOpen", "No")           # ophyd names the file when it stages
    ad.put("HDF1:AutoSave", "No")           # warming up writes no file
    det.hdf5.warmup()
    RE = bluesky.RunEngine()
    db = databroker.temp()
    RE.subscribe(db.insert)
    uids = RE(bp.count([det], num=3))
    header = db[uids[0]]
    images = list(header.data("det_image"))
    assert len(images) == 3
    assert all(np.asarray(i).shape[-2:] == (1024, 1024) for i in images)
    files = os.listdir(host_dir(beamline, ioc_dir))
    assert len(files) == 1                      # one Stream file holding every frame
    with h5py.File(host_dir(beamline, ioc_dir) / files[0], "r") as f:
        assert f["/entry/data/data"].shape[0] == 3
        np.testing.assert_array_equal(f["/entry/data/data"][2], np.asarray(images[2]).reshape(1024, 1024))
