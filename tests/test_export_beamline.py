"""Export and flat-field against the real IOCs: the seed recipe's flow end to end.

Uses the ``beamline`` fixture (all IOCs started through the launcher on the test
port), the session's devices (``build_beamline``), its persistent catalog and
RunEngine. Frames travel IOC -> Channel Access -> NPY_SEQ files -> catalog.
"""

from __future__ import annotations


import bluesky.plans as bp
import bluesky.preprocessors as bpp
import numpy as np
import pytest
import tifffile
from ophyd import EpicsSignal

from simbeamline.devices.beamline import build_beamline
from simbeamline.catalog.store import open_db, record_runs
from simbeamline.export import TiffExporter, export_run
from simbeamline.export.cli import main
from simbeamline.plans import flatfield_series, scan_with_dark
from simbeamline.processing import FlatFieldCorrector, FrameSet, correct_run
from simbeamline_iocs import spotcam
from waiting import wait_for_value

EXPOSURE = 0.2


@pytest.fixture(scope="module")
def bl(beamline):
    return build_beamline(beamline, adsim=False)


@pytest.fixture(scope="module")
def db(beamline):
    return open_db(beamline)


@pytest.fixture(scope="module")
def RE(db):
    from bluesky import RunEngine

    RE = RunEngine({})
    record_runs(RE, db)                      # as the session does: scan_id keeps counting
    return RE


@pytest.fixture
def spot(bl):
    before = bl.spot.exp.get()
    bl.spot.exp.set(EXPOSURE).wait(10)
    bl.mtr_spotx.move(0, wait=True)
    bl.mtr_spoty.move(0, wait=True)
    bl.mtr_samy.move(0, wait=True)
    yield bl.spot
    bl.spot.exp.set(before).wait(10)
    bl.shutter.set("Open").wait(10)
    bl.mtr_samx.move(50, wait=True)


class Ring:
    """Set the ring's lifetime and top-up period, starting from a fresh fill."""

    def __init__(self, config):
        p = config.prefix
        self.current = EpicsSignal(f"{p}current", name="current")
        self.lifetime = EpicsSignal(f"{p}current:lifetime", name="lifetime")
        self.topup = EpicsSignal(f"{p}current:topup_period", name="topup")
        for s in (self.current, self.lifetime, self.topup):
            s.wait_for_connection(10)
        self.saved = (self.lifetime.get(), self.topup.get())

    def fill_then(self, lifetime, topup_period):
        """Top up at once (a very short period), then apply the settings."""
        self.topup.set(0.2).wait(10)
        self.lifetime.set(lifetime).wait(10)
        wait_for_value(self.current, lambda v: v > 495)
        self.topup.set(topup_period).wait(10)

    def restore(self):
        self.fill_then(*self.saved)


@pytest.fixture
def ring(beamline):
    ring = Ring(beamline)
    yield ring
    ring.restore()


def test_seed_flow_dark_with_the_shutter_then_scan_then_export(bl, db, RE, spot, tmp_path, ring):
    ring.fill_then(1e9, 1e9)               # a steady beam
    template = "{start.sample}_{start.scan_id}_step{event.seq_num}.tif"
    live = TiffExporter("spot_img", template, directory=tmp_path / "live", db=db)
    scan = bpp.subs_wrapper(bp.grid_scan([spot, bl.I], bl.mtr_spotx, -20, 20, 3,
                                         bl.mtr_spoty, -10, 10, 3), live)
    dark_uid, scan_uid = RE(scan_with_dark([spot], bl.shutter, scan, dark_num=3), sample="UO2")
    assert bl.shutter.get() == "Open"

    dark_header, scan_header = db[dark_uid], db[scan_uid]
    assert dark_header.start["purpose"] == "dark" and scan_header.start["dark_frame"] == dark_uid
    darks = np.stack(list(dark_header.data("spot_img")))
    raws = np.stack(list(scan_header.data("spot_img")))
    # the dark really is dark: background only, no spot where the beam would be
    assert abs(darks.mean() - spotcam.BACKGROUND) < 1
    assert abs(darks[:, 215:265, 270:370].mean() - darks.mean()) < 3
    assert raws[4, 215:265, 270:370].mean() > spotcam.BACKGROUND + 1000

    # live export == export of the finished run (v1 process and v2)
    later = TiffExporter("spot_img", template, directory=tmp_path / "later", db=db)
    db.process(scan_header, later)
    assert [p.name for p in live.written] == [p.name for p in later.written]
    assert len(live.written) == 9
    for a, b in zip(live.written, later.written):
        assert a.read_bytes() == b.read_bytes()

    # dark-subtracted values equal numpy's
    expected = raws.astype(np.int64) - np.rint(darks.mean(axis=0)).astype(np.int64)
    for frame, path in zip(expected, live.written):
        np.testing.assert_array_equal(tifffile.imread(path), frame)

    # the command finds the run in the persistent catalog by scan_id and by index
    scan_id = scan_header.start["scan_id"]
    out = tmp_path / "cmd"
    assert main([str(scan_id), "--out", str(out), "--no-progress"]) == 0
    assert main(["-1", "--format", "hdf5", "--out", str(out), "--no-progress"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 10 and f"{scan_id}_{scan_uid[:8]}.h5" in names
    np.testing.assert_array_equal(tifffile.imread(out / f"{scan_id}_primary_00001.tif"), expected[0])


def _bright(current):
    return spotcam.expected_signal((480, 640), 0, 0, EXPOSURE, current) > 5000


def test_flat_field_recovers_the_transmission_on_the_real_detector(bl, db, RE, spot, ring):
    ring.fill_then(1e9, 1e9)
    uids = RE(flatfield_series([spot], bl.shutter, bl.mtr_samx, num_dark=4, num_flat=4,
                               num_raw=4))
    dark, before, raw, after = uids
    assert db[raw].start["dark_frame"] == dark and db[raw].start["flat_before"] == before
    corrected = [c for _, c in correct_run(db, raw, "spot_img", dark=dark, flat_before=before)]
    mean = np.ma.mean(np.ma.stack(corrected), axis=0)
    truth = spotcam.sample_transmission((480, 640))
    bright = _bright(500.0)
    residual = (mean - truth)[bright]
    # Poisson noise of the mean of 4 raw frames over a 4-frame flat, at >= 5000 counts
    assert abs(float(np.ma.mean(residual))) < 0.003
    assert float(np.ma.std(residual)) < 0.03
    # every feature of the sample comes out at its transmission
    for value in (0.3, 0.5, 0.6, 0.9):
        region = bright & (truth == value)
        assert float(np.ma.median(mean[region])) == pytest.approx(value, abs=0.01)


def test_interpolated_flats_beat_either_end_on_a_decaying_beam(bl, db, RE, spot, ring):
    ring.fill_then(20.0, 1e9)              # the beam decays with a 20 s lifetime, no top-up
    dark, before_uid, raw, after_uid = RE(flatfield_series(
        [spot], bl.shutter, bl.mtr_samx, num_dark=3, num_flat=3, num_raw=6))
    dark_set = FrameSet.from_run(db, dark, "spot_img")
    before = FrameSet.from_run(db, before_uid, "spot_img", index=0)
    after = FrameSet.from_run(db, after_uid, "spot_img", index=5)
    truth = spotcam.sample_transmission((480, 640))
    bright = _bright(200.0)
    drift = (before.frame - dark_set.frame)[bright].sum() / (after.frame - dark_set.frame)[bright].sum()
    assert drift > 1.1, f"the beam should decay during the series (ratio {drift:.3f})"

    header = db[raw]
    events = list(header.events())
    frames = list(header.data("spot_img"))

    def error(corrector):
        return float(np.mean([
            abs(np.ma.median((corrector.correct(f, time=e["time"], index=i) / truth)[bright]) - 1)
            for i, (e, f) in enumerate(zip(events, frames))]))

    only_before = error(FlatFieldCorrector(dark_set, before))
    only_after = error(FlatFieldCorrector(dark_set, after))
    by_time = error(FlatFieldCorrector(dark_set, before, after, by="time"))
    assert by_time < 0.5 * min(only_before, only_after), (by_time, only_before, only_after)


def test_an_escaping_sample_name_is_refused_on_a_real_run(bl, db, RE, spot, tmp_path):
    (uid,) = RE(bp.count([spot], num=2), sample="../../escape")
    exporter = TiffExporter("spot_img", "{start.sample}_{event.seq_num}.tif", directory=tmp_path / "o")
    with pytest.raises(ValueError, match="outside the export directory"):
        export_run(db[uid], exporter)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    assert not (tmp_path.parent / "escape_1.tif").exists()
