"""The ADSimDetector IOC's PV surface and driver, over Channel Access, against the
IOC launched the user's way (the session's ``beamline`` fixture)."""

from __future__ import annotations

import csv
import os
import threading
import time
from pathlib import Path

import epics
import numpy as np
import pytest

from adsim_support import AD, TIMEOUT, wait_for

pytestmark = pytest.mark.timeout(300)

# the project's shared reference data, beside the repository (as in CI)
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "adsim_pvs.tsv"
PACKAGE_TABLE = Path(__file__).resolve().parents[1] / "iocs" / "adsim" / "pvs.tsv"


@pytest.fixture(scope="module")
def ad(beamline):
    ad = AD(beamline.ad_prefix)
    ad.camera()
    yield ad
    ad.put("cam1:Acquire", 0)


def _table_rows():
    with open(PACKAGE_TABLE) as f:
        lines = [l for l in f if not l.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def test_every_pv_of_the_table_answers_with_its_record_type(ad):
    rows = _table_rows()
    assert len(rows) >= 539
    names = [ad.name(r["pv"]) for r in rows]
    pvs = [epics.get_pv(n, form="native") for n in names]
    for pv in pvs:
        assert pv.wait_for_connection(30), pv.pvname
    by_name = {r["pv"]: r for r in rows}
    # spot checks of types: enums carry their strings, long strings are CHAR waveforms
    acquire = epics.get_pv(ad.name("cam1:Acquire"), form="native")
    assert acquire.get_ctrlvars()["enum_strs"] == ("Done", "Acquire")
    full = epics.get_pv(ad.name("HDF1:FullFileName_RBV"), form="native")
    full.wait_for_connection(30)
    assert full.type in ("char", "time_char", "ctrl_char") and full.nelm == 512
    assert by_name["HDF1:FullFileName_RBV"]["type"].startswith("waveform FTVL=CHAR")
    # a bo whose template names no states is still DBR_ENUM, with no strings, at its VAL
    for suffix in ("HDF1:ProcessPlugin", "image1:ProcessPlugin", "cam1:ReadStatus"):
        bare = epics.get_pv(ad.name(suffix), form="ctrl")
        assert bare.wait_for_connection(30), suffix
        assert bare.type == "ctrl_enum" and not bare.get_ctrlvars().get("enum_strs"), suffix
        assert bare.get(use_monitor=False) == 1, suffix


#: CA field type (as pyepics names it) each kind of reference record is served with
REFERENCE_CA_TYPES = {"DBR_DOUBLE": "double", "DBR_ENUM": "enum", "DBR_LONG": "long",
                      "DBR_STRING": "string", "field": "int", "subArray": "long"}


def _reference_ca_type(detail: str) -> str:
    if detail.startswith("waveform"):
        if "FTVL=$(FTVL)" in detail:
            return "char"                 # image1:ArrayData: UCHAR unless --image-ftvl
        return "char" if "FTVL=CHAR" in detail else "long"
    return REFERENCE_CA_TYPES[detail.split()[0]]


def test_all_539_reference_pvs_are_served(ad):
    """The live IOC answers every PV of the shared reference table over CA, with the
    reference's field type."""
    if not REFERENCE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference table {REFERENCE} missing (CI is set)")
        pytest.skip("reference table not available")
    with open(REFERENCE) as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    assert len(rows) == 539
    pvs = {r[0]: epics.get_pv(ad.name(r[0]), form="native") for r in rows}
    deadline = time.monotonic() + TIMEOUT       # searches run in parallel; one deadline
    missing = [suffix for suffix, pv in pvs.items()
               if not pv.wait_for_connection(max(deadline - time.monotonic(), 0.1))]
    assert missing == []
    types = {r[0]: _reference_ca_type(r[7]) for r in rows}
    wrong = {suffix: (pv.type, types[suffix]) for suffix, pv in pvs.items()
             if pv.type.split("_")[-1] != types[suffix]}
    assert wrong == {}


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
