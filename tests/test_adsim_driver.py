"""The ADSimDetector IOC's PV surface and driver, over Channel Access, against the
IOC launched the user's way (the session's ``beamline`` fixture)."""

from __future__ import annotations

import threading
import time

import epics
import numpy as np
import pytest

from adsim_support import AD, TIMEOUT, wait_for

pytestmark = pytest.mark.timeout(300)

@pytest.fixture(scope="module")
def ad(beamline):
    ad = AD(beamline.ad_prefix)
    ad.camera()
    yield ad
    ad.put("cam1:Acquire", 0)


def test_records_answer_with_their_types(ad):
    """Spot checks (every record: test_adsim_surface): enums carry their strings,
    long strings are CHAR waveforms, fields clients read are served."""
    acquire = epics.get_pv(ad.name("cam1:Acquire"), form="native")
    assert acquire.wait_for_connection(30)
    assert acquire.get_ctrlvars()["enum_strs"] == ("Done", "Acquire")
    full = epics.get_pv(ad.name("HDF1:FullFileName_RBV"), form="native")
    full.wait_for_connection(30)
    assert full.type in ("char", "time_char", "ctrl_char") and full.nelm == 512
    # ophyd's cam.data_type_disabled
    assert ad.get("cam1:DataType_RBV.DISA") == 0
    # a bo whose template names no states is still DBR_ENUM, with no strings, at its VAL
    for suffix in ("HDF1:ProcessPlugin", "image1:ProcessPlugin", "cam1:ReadStatus"):
        bare = epics.get_pv(ad.name(suffix), form="ctrl")
        assert bare.wait_for_connection(30), suffix
        assert bare.type == "ctrl_enum" and not bare.get_ctrlvars().get("enum_strs"), suffix
        assert bare.get(use_monitor=False) == 1, suffix


def test_puts_update_readbacks_and_enums_take_index_or_string(ad):
    ad.put("cam1:Gain", 2.5)
    assert ad.get("cam1:Gain_RBV") == pytest.approx(2.5)
    ad.put("cam1:Gain", 1.0)
    ad.put("cam1:ImageMode", 1)
    assert ad.string("cam1:ImageMode_RBV") == "Multiple"
    ad.put("cam1:ImageMode", "Single")
    assert ad.get("cam1:ImageMode_RBV") == 0
    long_path = "/tmp/" + "a_rather_long_directory_name/" * 6
    ad.put("HDF1:FileName", long_path)       # a CHAR waveform keeps > 40 characters
    assert ad.string("HDF1:FileName_RBV") == long_path


def test_out_of_range_enum_is_refused(ad):
    before = ad.string("cam1:ImageMode")
    assert ad.put_refused("cam1:ImageMode", 7)
    assert ad.string("cam1:ImageMode") == before
    assert ad.string("cam1:ImageMode_RBV") == before


def test_negative_times_clamp_to_zero_and_size_clamps_to_sensor(ad):
    ad.put("cam1:AcquireTime", -1.0)
    assert ad.get("cam1:AcquireTime_RBV") == 0.0
    assert ad.get("cam1:AcquireTime") == 0.0
    ad.put("cam1:SizeX", 5000)
    assert ad.get("cam1:SizeX_RBV") == ad.get("cam1:MaxSizeX_RBV") == 1024
    ad.put("cam1:MinX", 1000)
    assert ad.get("cam1:SizeX_RBV") == 24          # size shrinks to what remains
    ad.camera()                                     # restore


def test_multiple_images_take_acquire_period_and_count(ad):
    ad.camera(exposure=0.02, period=0.1, mode="Multiple", num_images=5)
    counter = ad.get("cam1:ArrayCounter_RBV")
    t0 = time.monotonic()
    ad.acquire()
    elapsed = time.monotonic() - t0
    assert elapsed >= 4 * 0.1 + 0.02 - 0.01      # AcquirePeriod honoured in real time
    assert ad.get("cam1:ArrayCounter_RBV") == counter + 5
    assert ad.get("cam1:NumImagesCounter_RBV") == 5
    assert ad.string("cam1:Acquire_RBV") == "Done"
    assert ad.string("cam1:AcquireBusy") == "Done"
    assert ad.string("cam1:DetectorState_RBV") == "Idle"
    ad.camera()


def test_acquire_zero_aborts_continuous_acquisition(ad):
    ad.camera(exposure=0.05, period=0.1, mode="Continuous")
    ad.put("cam1:Acquire", 1, wait=False)
    ad.wait_for("cam1:Acquire_RBV", lambda v: v == "Acquiring")
    ad.wait_for("cam1:NumImagesCounter_RBV", lambda v: int(v) >= 2, as_string=False)
    ad.put("cam1:Acquire", 0)
    ad.wait_for("cam1:AcquireBusy", lambda v: v == "Done", timeout=10)   # posted last
    assert ad.string("cam1:Acquire_RBV") == "Done"
    assert ad.string("cam1:DetectorState_RBV") == "Aborted"
    n = ad.get("cam1:ArrayCounter_RBV")
    # nothing more arrives after the abort: a monitor on the frame counter sees its
    # current value, then no update during 3 acquire periods
    updates = _monitor_updates(ad, "cam1:ArrayCounter_RBV",
                               window=3 * ad.get("cam1:AcquirePeriod"))
    assert updates == [n]
    ad.camera()


def _monitor_updates(ad, suffix, window):
    """The values a fresh monitor of *suffix* delivers: its first (current) value,
    waited for with a deadline, then every update within *window* seconds after it.
    The window ends early, failing, at the first update."""
    values, first, more = [], threading.Event(), threading.Event()

    def on_update(value=None, **kw):
        values.append(value)
        (more if first.is_set() else first).set()

    pv = epics.PV(ad.name(suffix), form="native", auto_monitor=True, callback=on_update)
    try:
        assert first.wait(TIMEOUT), f"no monitor update from {ad.name(suffix)}"
        more.wait(window)
        return list(values)
    finally:
        pv.clear_callbacks()
        pv.disconnect()


def _frame_via_image1(ad, shape=(1024, 1024)):
    ad.plugin("image1")
    ad.acquire()
    data = ad.get("image1:ArrayData", count=shape[0] * shape[1])
    return np.asarray(data, dtype=np.uint8).reshape(shape)


def test_image1_carries_each_frame_and_stats_match_numpy(ad):
    ad.camera(sim_mode="Peaks")
    ad.plugin("Stats1")
    ad.put("Stats1:ComputeStatistics", "Yes")
    ad.put("Stats1:ComputeCentroid", "Yes")
    ad.put("Stats1:CentroidThreshold", 0)
    frames = []
    for _ in range(2):
        frame = _frame_via_image1(ad)
        frames.append(frame)
        assert ad.get("image1:UniqueId_RBV") == ad.get("cam1:ArrayCounter_RBV")
        assert ad.get("Stats1:UniqueId_RBV") == ad.get("cam1:ArrayCounter_RBV")
        data = frame.astype(np.float64)
        assert ad.get("Stats1:Total_RBV") == pytest.approx(data.sum())
        assert ad.get("Stats1:MinValue_RBV") == data.min()
        assert ad.get("Stats1:MaxValue_RBV") == data.max()
        assert ad.get("Stats1:MeanValue_RBV") == pytest.approx(data.mean())
        assert ad.get("Stats1:Sigma_RBV") == pytest.approx(data.std())
        y, x = np.indices(data.shape)
        cx = (data * x).sum() / data.sum()
        cy = (data * y).sum() / data.sum()
        assert ad.get("Stats1:CentroidX_RBV") == pytest.approx(cx)
        assert ad.get("Stats1:CentroidY_RBV") == pytest.approx(cy)
        assert ad.get("Stats1:SigmaX_RBV") == pytest.approx(np.sqrt((data * (x - cx) ** 2).sum() / data.sum()))
        assert ad.get("Stats1:SigmaY_RBV") == pytest.approx(np.sqrt((data * (y - cy) ** 2).sum() / data.sum()))
    assert not np.array_equal(frames[0], frames[1])   # each frame, not a stale one
    ad.plugin("Stats1", enable=False)


def test_data_types_wrap_as_the_driver_does(ad):
    ad.camera(sim_mode="LinearRamp", data_type="UInt8", size=(300, 4))
    ad.put("cam1:GainX", 1.0)
    ad.put("cam1:GainY", 0.0)
    frame = _frame_via_image1(ad, shape=(4, 300))
    # the ramp passes 255 and wraps to 0 within a row, like a C cast to epicsUInt8
    row = frame[0].astype(int)
    steps = np.diff(row)
    assert set(steps) <= {1, -255}
    assert (steps == -255).any()
    assert ad.string("cam1:DataType_RBV") == "UInt8"
    ad.put("cam1:GainY", 1.0)
    ad.camera()


def test_closed_shutter_gives_a_dark_frame_and_peak_follows_stage(ad, beamline):
    shutter = beamline.prefix + "shutter"
    ad.camera(sim_mode="Peaks")
    offset, noise = ad.get("cam1:Offset"), ad.get("cam1:Noise")
    try:
        assert epics.caput(shutter, "Closed", wait=True, timeout=30) == 1
        wait_for(lambda: epics.caget(shutter + "_RBV", as_string=True) == "Closed")
        # the IOC sees the beamline's readback over CA (monitor): wait until a frame is dark
        def dark():
            f = _frame_via_image1(ad)
            return f.max() <= offset + noise
        wait_for(dark, 30, "a dark frame with the shutter closed")
    finally:
        assert epics.caput(shutter, "Open", wait=True, timeout=30) == 1
    def bright():
        f = _frame_via_image1(ad)
        return f.max() > offset + noise + 20
    wait_for(bright, 30, "a bright frame with the shutter open")


def test_peak_follows_the_sample_stage(ad, beamline):
    samx = beamline.prefix + "m:samx"
    ad.camera(sim_mode="Peaks")

    def peak_column():
        frame = _frame_via_image1(ad).astype(float)
        return int(np.argmax(frame.sum(axis=0)))

    start = epics.caget(samx + ".RBV", timeout=30)
    try:
        assert epics.caput(samx, start + 20, wait=True, timeout=60) == 1
        first = peak_column()
        assert epics.caput(samx, start - 20, wait=True, timeout=60) == 1
        # the IOC follows the readback's monitor: wait until the peak has moved
        wait_for(lambda: peak_column() < first - 100, 30, "the peak to follow samx")
    finally:
        epics.caput(samx, start, wait=True, timeout=60)
