"""Plain-function tests of the ADSimDetector IOC's logic (no network): the PV
table, frames, statistics, paths, and the HDF5 writer."""

from __future__ import annotations

import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest

from simbeamline_iocs.adsim import frames, h5writer, paths, stats, table


def test_table_declares_every_group_and_readbacks_start_at_setpoints():
    specs = {s.suffix: s for s in table.load_table()}
    assert len(specs) == 7395 + len(table.EXTRA_FIELDS)
    assert {table.plugin_prefix(s) for s in specs} == {p for p, _, _ in table.plugin_table()}
    assert table.plugin_prefix("Stats1:TS:TSAcquire") == "Stats1:TS:"
    assert specs["Stats2:PortName_RBV"].initial == "STATS2"
    assert specs["Stats1:TS:NDArrayPort"].initial == "STATS1"
    assert specs["cam1:Acquire_RBV"].read_only and not specs["cam1:Acquire"].read_only
    assert specs["cam1:AcquireTime"].precision == 3 and specs["cam1:Temperature"].precision == 1
    assert specs["cam1:ImageMode"].enum_strings == ("Single", "Multiple", "Continuous")
    assert specs["HDF1:FilePath"].kind == "longstring" and specs["HDF1:FilePath"].length == 256
    assert specs["HDF1:NDArrayPort_RBV"].initial == specs["HDF1:NDArrayPort"].initial == "SIM1"
    assert specs["HDF1:PluginType_RBV"].initial.startswith("NDFileHDF5")


def test_calc_expressions_compile_as_epics_evaluates_them():
    from simbeamline_iocs.adsim.soft import compile_calc

    values = dict.fromkeys("ABCDEFGHIJKL", 0.0)
    assert compile_calc("A-B")({**values, "A": 20, "B": 3}) == 17
    assert compile_calc("A=0?0:1.0/A")({**values, "A": 0}) == 0
    assert compile_calc("A=0?0:1.0/A")({**values, "A": 0.25}) == 4
    assert compile_calc("(D*E)/C+MAX(0,B-A)*(1-E)/C")({**values, "A": 5, "B": 9, "C": 2}) == 2
    assert compile_calc("1./A")({**values, "A": 0}) == float("inf")
    assert compile_calc("__import__('os')") is None


def test_region_clamps_into_the_sensor():
    assert frames.clamp_region(0, 5000, 1, 1024) == (0, 1024, 1)
    assert frames.clamp_region(1000, 1024, 1, 1024) == (1000, 24, 1)
    assert frames.clamp_region(-5, 10, 0, 1024) == (0, 10, 1)
    p = frames.SimParams(size_x=512, size_y=256, bin_x=2, bin_y=4)
    assert frames.frame_shape(p) == (64, 256)
    assert frames.compute_frame(p, 0, np.random.default_rng(0)).shape == (64, 256)


def test_closed_shutter_is_offset_and_noise_only():
    p = frames.SimParams(offset=8, noise=10, shutter_open=False)
    f = frames.compute_frame(p, 0, np.random.default_rng(1))
    assert f.min() >= 8 and f.max() < 18
    bright = frames.compute_frame(frames.SimParams(offset=8, noise=10), 0, np.random.default_rng(1))
    assert bright.max() > 100


def test_peaks_follow_the_stage():
    rng = np.random.default_rng(2)
    a = frames.compute_frame(frames.SimParams(), 0, rng)
    b = frames.compute_frame(frames.SimParams(stage_dx=100), 0, rng)
    assert np.argmax(b.sum(axis=0)) - np.argmax(a.sum(axis=0)) == pytest.approx(100, abs=2)


@pytest.mark.parametrize("name", frames.DATA_TYPES)
def test_every_data_type_wraps_like_c(name):
    image = np.array([[-1.7, 300.9, 70000.2]])
    got = frames.convert(image, name)
    assert got.dtype == frames.NUMPY_TYPES[name]
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, image.astype(got.dtype))
    else:
        expected = np.array([-1, 300, 70000], dtype=np.int64).astype(got.dtype)
        np.testing.assert_array_equal(got, [expected])


def test_statistics_equal_numpy():
    f = frames.compute_frame(frames.SimParams(offset=5, noise=3), 0, np.random.default_rng(3))
    s = stats.frame_statistics(f)
    d = f.astype(float)
    assert s["Total"] == d.sum() and s["MinValue"] == d.min() and s["MaxValue"] == d.max()
    assert s["MeanValue"] == pytest.approx(d.mean()) and s["Sigma"] == pytest.approx(d.std())
    c = stats.frame_centroid(f)
    y, x = np.indices(d.shape)
    assert c["CentroidX"] == pytest.approx((d * x).sum() / d.sum())
    assert c["CentroidY"] == pytest.approx((d * y).sum() / d.sum())


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_statistics_equal_the_float_ones(dtype):
    """The histogram path of UInt8/UInt16 frames gives what the float64 path gives,
    Net with a background border included."""
    rng = np.random.default_rng(4)
    top = np.iinfo(dtype).max
    f = rng.integers(0, top, (96, 130), dtype=dtype, endpoint=True)
    f[7, 9], f[50, 100] = 0, top
    for width in (0, 4):
        fast = stats.frame_statistics(f, bgd_width=width)
        general = stats.frame_statistics(f.astype(np.float64), bgd_width=width)
        assert fast.keys() == general.keys()
        for key in general:
            assert fast[key] == pytest.approx(general[key], rel=1e-12), key


def test_path_map_and_create_directory(tmp_path):
    m = paths.PathMap.parse(f"/tmp={tmp_path}/ioc_tmp,/data={tmp_path}/data")
    assert m.to_host("/tmp/a/b/") == f"{tmp_path}/ioc_tmp/a/b/"
    assert m.to_host("/tmpx/a") == "/tmpx/a"
    assert m.to_host("/data") == f"{tmp_path}/data"
    with pytest.raises(ValueError):
        paths.PathMap.parse("relative=/x")
    assert m.ioc_roots() == ["/tmp", "/data"]                 # in the order given
    assert m.covers("/tmp/a") and m.covers("/data") and not m.covers("/tmpx/a")
    nested = paths.PathMap.parse("/tmp=/a,/tmp/x/=/b/")     # longest IOC directory wins
    assert nested.to_host("/tmp/x/y/") == "/b/y/" and nested.to_host("/tmp/y") == "/a/y"
    (tmp_path / "ioc_tmp").mkdir()
    with pytest.raises(OSError):
        paths.create_file_path("/tmp/a/b/c/", -2, m)        # 3 levels missing, 2 allowed
    assert not (tmp_path / "ioc_tmp" / "a").exists()
    paths.create_file_path("/tmp/a/b/c/", -3, m)
    assert (tmp_path / "ioc_tmp" / "a" / "b" / "c").is_dir()
    with pytest.raises(OSError):
        paths.create_file_path("/tmp/x/y/", 3, m)           # /tmp/x must exist for depth 3
    paths.create_file_path("/tmp/x/y/", 1, m)             # only /tmp must exist
    assert (tmp_path / "ioc_tmp" / "x" / "y").is_dir()
    assert paths.normalize_file_path("/tmp/a") == "/tmp/a/"
    assert paths.format_file_name("%s%s_%6.6d.h5", "/tmp/", "n", 7) == "/tmp/n_000007.h5"


def test_writer_failure_leaves_no_partial_file(tmp_path):
    target = tmp_path / "f.h5"
    frame = np.zeros((4, 4), np.uint8)
    info = h5writer.FrameInfo(1, 1.7e9)
    with pytest.raises(ValueError):
        h5writer.write_frames(str(target), [frame], [info],
                              h5writer.WriteOptions(compression="JPEG"), multi=False)
    assert not target.exists()
    h5writer.write_frames(str(target), [frame, frame + 1], [info, info],
                          h5writer.WriteOptions(compression="BSLZ4"), multi=True)
    with h5py.File(target, "r") as f:
        assert f["/entry/data/data"].shape == (2, 4, 4)
        np.testing.assert_array_equal(f["/entry/data/data"][1], frame + 1)


def test_the_driver_boots_showing_the_sensor_size_as_its_frame_size():
    """simDetector's constructor sets NDArraySizeX/Y to the sensor size, so
    cam1:ArraySizeX/Y_RBV show it before any frame (ophyd-async describes its
    frames from them before it acquires)."""
    specs = {s.suffix: s for s in table.load_table()}
    for axis in "XY":
        assert specs[f"cam1:ArraySize{axis}_RBV"].initial == specs[f"cam1:MaxSize{axis}_RBV"].initial == "1024"
        assert specs[f"cam1:Size{axis}"].initial == "1024"


def test_swmr_file_is_read_while_written_and_chunks_num_frames_chunks(tmp_path):
    """SWMRMode On: a reader in another process (h5py swmr=True) follows the frames
    of an open Stream file after each flush; NumFramesChunks frames make a chunk, and
    the performance dataset (made when the file opens) is filled at close."""
    import subprocess
    import sys

    target = tmp_path / "swmr.h5"
    reader = f"""
import sys, h5py
with h5py.File({str(target)!r}, "r", libver="latest", swmr=True) as f:
    ds = f["/entry/data/data"]
    print(ds.shape[0], ds.chunks[0], int(ds[-1].max()) if ds.shape[0] else -1)
"""

    def read_open_file():
        out = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return [int(v) for v in out.stdout.split()]

    opts = h5writer.WriteOptions(swmr=True, frames_per_chunk=3, store_perform=True)
    writer = h5writer.NeXusWriter(str(target), (8, 8), np.uint8, opts, multi=True)
    try:
        for i in range(2):
            writer.add(np.full((8, 8), i + 1, np.uint8), h5writer.FrameInfo(i + 1, 1.7e9 + i))
        writer.flush()
        assert read_open_file() == [2, 3, 2]
        writer.add(np.full((8, 8), 3, np.uint8), h5writer.FrameInfo(3, 1.7e9 + 2))
        writer.flush()
        assert read_open_file() == [3, 3, 3]
    finally:
        writer.close()
    with h5py.File(target, "r") as f:
        assert f["/entry/data/data"].shape == (3, 8, 8)
        assert f["/entry/data/data"].chunks == (3, 8, 8)
        assert f["/entry/instrument/performance/timestamp"].shape == (3, 5)
        np.testing.assert_array_equal(f["/entry/instrument/NDAttributes/NDArrayUniqueId"][()],
                                      [1, 2, 3])
    # SWMRMode Off (the default): chunks of one frame unless NumFramesChunks says more
    plain = tmp_path / "plain.h5"
    h5writer.write_frames(str(plain), [np.zeros((4, 4), np.uint8)] * 2,
                          [h5writer.FrameInfo(1, 1.7e9)] * 2, h5writer.WriteOptions(), multi=True)
    with h5py.File(plain, "r") as f:
        assert f["/entry/data/data"].chunks == (1, 4, 4)


def test_frame_cache_reuses_the_pattern_only_while_its_parameters_hold():
    cache = frames.FrameCache()
    still = frames.SimParams(sim_mode="Peaks", noise=0, offset=3)
    first = frames.compute_frame(still, 0, np.random.default_rng(0), cache)
    np.testing.assert_array_equal(first, frames.compute_frame(still, 0, np.random.default_rng(0)))
    again = frames.compute_frame(still, 1, np.random.default_rng(0), cache)
    assert again is not first and again.flags.writeable        # a new frame each time
    np.testing.assert_array_equal(again, first)
    moved = frames.compute_frame(frames.SimParams(sim_mode="Peaks", noise=0, offset=3, stage_dx=100),
                                 2, np.random.default_rng(0), cache)
    np.testing.assert_array_equal(moved, frames.compute_frame(
        frames.SimParams(sim_mode="Peaks", noise=0, offset=3, stage_dx=100), 2, np.random.default_rng(0)))
    assert not np.array_equal(moved, first)                     # the stage move is seen
    dark = frames.compute_frame(frames.SimParams(sim_mode="Peaks", noise=0, offset=3,
                                                 shutter_open=False), 3, np.random.default_rng(0), cache)
    assert (dark == 3).all()


@pytest.mark.parametrize("shape,dtype,store_attr", [
    ((1024, 1024), np.uint8, True), ((240, 320), np.uint16, True), ((7, 5), np.float64, True),
    ((64, 64), np.int32, False)])
def test_single_mode_file_from_the_template_is_the_writers_file(tmp_path, shape, dtype, store_attr):
    """An uncompressed Single-mode file written from the template is byte for byte
    the file NeXusWriter writes for the same frame and NDAttributes, and reads back."""
    opts = h5writer.WriteOptions(store_attr=store_attr)
    assert h5writer.single_template(shape, dtype, opts) is not None
    rng = np.random.default_rng(11)
    frame = (rng.random(shape) * 200).astype(dtype)
    info = h5writer.FrameInfo(4242, 1.7654321e9 + 0.5)
    fast = tmp_path / "fast_000000.h5"
    h5writer.write_frames(str(fast), [frame], [info], opts, multi=False)
    slow = tmp_path / "slow.h5"
    writer = h5writer.NeXusWriter(str(slow), shape, np.dtype(dtype), opts, multi=False)
    writer.add(frame, info)
    writer.close()
    assert fast.read_bytes() == slow.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast_000000.h5", "slow.h5"]
    with h5py.File(fast, "r") as f:
        np.testing.assert_array_equal(f["/entry/data/data"][()], frame)
        if store_attr:
            attrs = f["/entry/instrument/NDAttributes"]
            assert attrs["NDArrayUniqueId"][()].tolist() == [4242]
            assert attrs["NDArrayTimeStamp"][0] == 1.7654321e9 + 0.5
            assert attrs["NDArrayEpicsTSSec"][0] == int(1.7654321e9) - h5writer.EPICS_EPOCH
            assert attrs["NDArrayEpicsTSnSec"][0] == 500_000_000
        else:
            assert "NDAttributes" not in f["/entry/instrument"]


def test_single_mode_files_that_have_no_template_are_written_by_the_writer(tmp_path):
    """Compressed or StorePerform files have no template (their bytes vary), and are
    still written; a template write that fails leaves no partial file."""
    for opts in (h5writer.WriteOptions(compression="zlib"), h5writer.WriteOptions(store_perform=True)):
        assert h5writer.single_template((8, 8), np.uint8, opts) is None
        target = tmp_path / f"{opts.compression}-{opts.store_perform}.h5"
        h5writer.write_frames(str(target), [np.ones((8, 8), np.uint8)], [h5writer.FrameInfo(1, 1.7e9)],
                              opts, multi=False)
        with h5py.File(target, "r") as f:
            assert f["/entry/data/data"][()].sum() == 64
    (tmp_path / "dir.h5").mkdir()            # a directory where the file should go
    with pytest.raises(OSError):
        h5writer.write_frames(str(tmp_path / "dir.h5"), [np.ones((8, 8), np.uint8)],
                              [h5writer.FrameInfo(1, 1.7e9)], h5writer.WriteOptions(), multi=False)
    assert not list(tmp_path.glob(".*.part"))


def test_noisy_frames_through_the_cache_are_the_generators_own():
    """With the driver's cache (scratch buffer, kept pattern) a noisy frame is
    exactly the one computed without it from the same generator state."""
    p = frames.SimParams(noise=10, offset=8, size_x=256, size_y=128)
    cache = frames.FrameCache()
    cached, plain = np.random.default_rng(21), np.random.default_rng(21)
    for n in range(3):
        np.testing.assert_array_equal(frames.compute_frame(p, n, cached, cache),
                                      frames.compute_frame(p, n, plain))


def test_multi_frame_file_failing_part_way_keeps_its_frames(tmp_path):
    """write_frames under a file-size limit (a child process, so the limit stays
    there): the Capture file is closed with the frames that fitted."""
    import subprocess
    import sys

    target = tmp_path / "capture.h5"
    code = f"""
import resource, sys, numpy as np
from simbeamline_iocs.adsim import h5writer
resource.setrlimit(resource.RLIMIT_FSIZE, ({int(2.5 * 2**20)}, {int(2.5 * 2**20)}))
frames = [np.full((1024, 1024), i + 1, np.uint8) for i in range(5)]
infos = [h5writer.FrameInfo(i + 1, 1.7e9 + i) for i in range(5)]
try:
    h5writer.write_frames({str(target)!r}, frames, infos, h5writer.WriteOptions(), multi=True)
except h5writer.WriteFailed as exc:
    print(exc.written, exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    written = int(out.stdout.split()[0])
    assert 0 < written < 5 and "File too large" in out.stdout
    assert target.stat().st_size <= 2.5 * 2**20
    with h5py.File(target, "r") as f:
        data = f["/entry/data/data"]
        assert data.shape == (written, 1024, 1024)
        for i in range(written):
            assert (data[i] == i + 1).all()
        np.testing.assert_array_equal(f["/entry/instrument/NDAttributes/NDArrayUniqueId"][()],
                                      np.arange(1, written + 1))


def test_a_failed_acquisition_keeps_error_state_and_its_message():
    """An acquisition that raises ends with DetectorState=Error and the exception's
    message, not Idle / "Acquisition completed" (the client must not see success)."""
    import asyncio

    from simbeamline_iocs.adsim.ioc import ADSimIOC

    async def scenario():
        ioc = ADSimIOC("unit:")
        try:
            async def broken_publish(port, array):
                raise RuntimeError("plugin exploded")

            ioc.plugins.publish = broken_publish
            await ioc.post_many({"cam1:AcquireTime": 0.0, "cam1:AcquirePeriod": 0.0,
                                 "cam1:ArrayCallbacks": "Enable", "cam1:ImageMode": "Single",
                                 "cam1:SizeX": 16, "cam1:SizeY": 16})
            done = asyncio.Event()
            await asyncio.wait_for(ioc.driver._acquire(done), 30)
            assert done.is_set()
            return {s: ioc.get(s) for s in ("cam1:DetectorState_RBV", "cam1:StatusMessage_RBV",
                                            "cam1:Acquire_RBV", "cam1:AcquireBusy")}
        finally:
            ioc.executor.shutdown(wait=True)

    state = asyncio.run(scenario())
    assert state["cam1:DetectorState_RBV"] == "Error"
    assert "plugin exploded" in str(state["cam1:StatusMessage_RBV"])
    assert state["cam1:Acquire_RBV"] == "Done" and state["cam1:AcquireBusy"] == "Done"


def test_a_failed_queue_free_update_is_logged_as_a_warning(caplog):
    """A plugin whose QueueFree update fails after a frame says so at warning level
    (it was swallowed silently)."""
    import asyncio
    import logging

    from simbeamline_iocs.adsim.ioc import ADSimIOC
    from simbeamline_iocs.adsim.plugins import NDArray

    async def scenario():
        ioc = ADSimIOC("unit:")
        try:
            plugin = ioc.plugins["Stats1"]
            await ioc.post_many({"Stats1:EnableCallbacks": "Enable",
                                 "Stats1:BlockingCallbacks": "No"})
            posts = []
            real_post = plugin.post

            async def post(values):
                if "QueueFree" in values:
                    posts.append(values)
                    if len(posts) == 2:          # the update after the frame is processed
                        raise RuntimeError("channel gone")
                await real_post(values)

            async def process(array):
                pass

            plugin.post, plugin._process = post, process
            await plugin.receive(NDArray(np.zeros((4, 4), np.uint8), 1, 0.0))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while len(posts) < 2 and loop.time() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)               # let the worker finish its except block
            plugin.worker.cancel()
        finally:
            ioc.executor.shutdown(wait=True)

    with caplog.at_level(logging.DEBUG, logger="simbeamline_iocs.adsim"):
        asyncio.run(scenario())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and "QueueFree" in r.getMessage()]
    assert warnings and "channel gone" in warnings[0].getMessage()


def test_a_bad_beamline_update_is_logged_as_a_warning(caplog):
    """An update of the sample stage that cannot be used is ignored, with a warning
    (it was a debug message only)."""
    import logging
    from types import SimpleNamespace

    from simbeamline_iocs.adsim.beamline import BeamlineLink

    link = BeamlineLink("unit:")
    with caplog.at_level(logging.DEBUG, logger="simbeamline_iocs.adsim"):
        link._callback("samx")(None, SimpleNamespace(data=["not a number"]))
    assert link.samx == 0.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "samx" in warnings[0].getMessage()


#: the reference's rows for bo records whose template names no states
_REFERENCE_BARE_BO = {"cam1:ReadStatus": 1, "HDF1:ProcessPlugin": 1, "HDF1:EmptyFreeList": 0,
                      "image1:ProcessPlugin": 1, "image1:EmptyFreeList": 0}


def test_a_bo_without_state_names_is_an_enum_with_no_strings():
    """A bo with empty ZNAM/ONAM (ProcessPlugin, EmptyFreeList, ReadStatus) reports
    DBR_ENUM with no state strings, as the real IOC does (it was a plain integer),
    starts at its template's VAL, takes state numbers 0/1 (also as text) and
    refuses others."""
    import asyncio

    from caproto import ChannelType

    from simbeamline_iocs.adsim.channels import make_channel

    specs = {s.suffix: s for s in table.load_table()}
    bare = [s for s in specs.values() if s.kind == "enum" and not s.enum_strings]
    assert set(_REFERENCE_BARE_BO) <= {s.suffix for s in bare}

    async def scenario():
        seen = {}
        for spec in bare:
            ch = make_channel(spec)
            metadata, value = await ch.read(ChannelType.CTRL_ENUM)
            _, text = await ch.read(ChannelType.STRING)
            seen[spec.suffix] = (ch.data_type, tuple(metadata.enum_strings), metadata.no_str,
                                 list(value), list(text))
        ch = make_channel(specs["HDF1:EmptyFreeList"])
        await ch.write_from_dbr([1], ChannelType.ENUM, None)
        after_enum = ch.value
        await ch.write_from_dbr([b"0"], ChannelType.STRING, None)
        after_text = ch.value
        try:
            await ch.write_from_dbr([2], ChannelType.LONG, None)
            refused = False
        except Exception:
            refused = True
        return seen, after_enum, after_text, refused, ch.value

    seen, after_enum, after_text, refused, final = asyncio.run(scenario())
    for suffix, (dtype, strings, no_str, value, text) in seen.items():
        assert dtype == ChannelType.ENUM, suffix
        assert strings == () and no_str == 0, suffix
        assert text == [b""], suffix
        if suffix in _REFERENCE_BARE_BO:
            assert value == [_REFERENCE_BARE_BO[suffix]], suffix
    assert seen["Stats1:ProcessPlugin"][3] == [1]      # same NDPluginBase template
    assert (after_enum, after_text, refused, final) == (1, 0, True, 0)


def test_status_messages_fill_long_string_records_and_cut_only_dbr_strings():
    """A failed acquisition's message reaches cam1:StatusMessage_RBV (a 256-element
    CHAR waveform) whole (it was cut to 39 characters); text is cut only to what
    the record holds: NELM - 1 for long strings, 39 for DBR_STRING records."""
    import asyncio

    from simbeamline_iocs.adsim.ioc import ADSimIOC

    message = "detector exploded: " + "x" * 100 + " (see the IOC log)"
    assert 39 < len(message) < 255

    async def scenario():
        ioc = ADSimIOC("unit:")
        try:
            async def broken_publish(port, array):
                raise RuntimeError(message)

            ioc.plugins.publish = broken_publish
            await ioc.post_many({"cam1:AcquireTime": 0.0, "cam1:AcquirePeriod": 0.0,
                                 "cam1:ArrayCallbacks": "Enable", "cam1:ImageMode": "Single",
                                 "cam1:SizeX": 16, "cam1:SizeY": 16})
            await asyncio.wait_for(ioc.driver._acquire(asyncio.Event()), 30)
            status = ioc.get("cam1:StatusMessage_RBV")
            await ioc.plugins["HDF1"].status(False, "w" * 400)
            write_message = ioc.get("HDF1:WriteMessage")
            await ioc.post("cam1:Model_RBV", "m" * 60)
            return status, write_message, ioc.get("cam1:Model_RBV")
        finally:
            ioc.executor.shutdown(wait=True)

    status, write_message, model = asyncio.run(scenario())
    assert status == message
    assert write_message == "w" * 255
    assert model == "m" * 39


def test_roi_region_binning_reverse_and_type():
    from simbeamline_iocs.adsim.roi import Axis, roi_frame

    data = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8)
    x = Axis.clamp(8, True, 2, 100, 2, False)       # size clamps to 6, 3 bins
    y = Axis.clamp(6, True, 1, 4, 1, True)
    assert (x.min, x.size, x.bin, x.out) == (2, 6, 2, 3)
    out = roi_frame(data, x, y, data_type="Float64")
    expected = data[1:5, 2:8].astype(float).reshape(4, 3, 2).sum(axis=2)[::-1]
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float64
    full = roi_frame(data, Axis.clamp(8, False, 5, 1, 3, False), Axis.clamp(6, False, 0, 1, 1, False))
    np.testing.assert_array_equal(full, data)


def test_enum_setpoints_show_the_same_state_on_readbacks_named_differently():
    from simbeamline_iocs.adsim.ioc import same_state

    specs = {s.suffix: s for s in table.load_table()}
    from simbeamline_iocs.adsim.channels import make_channel

    capture, capture_rbv = (make_channel(specs[s]) for s in ("CB1:Capture", "CB1:Capture_RBV"))
    assert same_state(capture, capture_rbv, "Capture") == "Capturing"
    assert same_state(capture, capture_rbv, "Done") == "Done"
