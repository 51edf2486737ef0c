"""Exports and processing that fail part way, or are asked what they cannot do:
no partial file left, the dark read as asked, one-line errors (in-process runs;
see export_support)."""

from __future__ import annotations

from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import databroker
import h5py
import numpy as np
import pytest
from ophyd.sim import SynSignalWithRegistry

from export_support import Session, listing
from simbeamline.export.darks import DarkFrameError
from simbeamline.export import EdfExporter, NexusExporter, TiffExporter, export_run
from simbeamline.export.cli import main
from simbeamline.export.base import ExportError
from simbeamline.plans import flatfield_series
from simbeamline.catalog.runs import FrameReadError
from simbeamline.processing import FlatFieldCorrector, FrameSet, correct_run


@pytest.fixture
def session(tmp_path):
    return Session(tmp_path, exposure=0.05)


def frame_files(session, uid):
    """The run's frame files, in order."""
    resource = next(doc for name, doc in session.db[uid].documents() if name == "resource")
    n = session.db[uid].stop["num_events"]["primary"]
    return [Path(resource["root"]) / f"{resource['resource_path']}_{i}.npy" for i in range(n)]


def open_h5_files() -> int:
    return len(h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE))


def small_detector(tmp_path, shape):
    """A detector with the session spot's data key, but frames of *shape*."""
    return SynSignalWithRegistry(lambda: np.full(shape, 7, np.int32), name="spot_img",
                                 save_path=str(tmp_path / "frames"))


# -- 1. a NeXus export failing part way leaves no file; earlier files stay -----------

def test_nexus_missing_frame_file_removes_the_partial_file_keeps_earlier_ones(session, tmp_path):
    (first,) = session.run(bp.count([session.spot], num=2))
    (second,) = session.run(bp.count([session.spot], num=3))
    frame_files(session, second)[1].unlink()            # the middle frame of the second run
    out = tmp_path / "out"
    exporter = NexusExporter("{start.scan_id}.h5", field="spot_img", directory=out)
    (good,) = export_run(session.db.v2[first], exporter)
    good_bytes = good.read_bytes()
    missing = frame_files(session, second)[1]
    with pytest.raises(FrameReadError) as raised:
        export_run(session.db.v2[second], exporter)
    message = str(raised.value)
    assert str(missing) in message and "missing" in message and "restore" in message, message
    assert "unable to load the data" not in message and "event 2 of run" in message, message
    assert listing(out) == [good.name]                  # no 2.h5, half written
    assert good.read_bytes() == good_bytes
    assert open_h5_files() == 0                         # closed, not just forgotten
    with h5py.File(good, "r") as f:
        assert f["entry/primary/spot_img"].shape == (2, 480, 640)


@pytest.mark.parametrize("exporter_class", [TiffExporter, EdfExporter])
def test_frame_export_missing_frame_file_names_it(session, tmp_path, exporter_class):
    (uid,) = session.run(bp.count([session.spot], num=3))
    missing = frame_files(session, uid)[1]
    missing.unlink()
    out = tmp_path / "out"
    exporter = exporter_class("spot_img", "{event.seq_num}" + exporter_class.suffix, directory=out)
    with pytest.raises(FrameReadError) as raised:
        export_run(session.db.v2[uid], exporter)
    message = str(raised.value)
    assert str(missing) in message and "restore" in message and "overwrite" in message, message
    assert "unable to load the data" not in message
    assert listing(out) == ["1" + exporter_class.suffix]   # the frame before it, nothing half-written


def test_export_command_missing_frame_file_is_one_line(session, tmp_path, capsys):
    (uid,) = session.run(bp.count([session.spot], num=2))
    missing = frame_files(session, uid)[0]
    missing.unlink()
    for fmt in ("tiff", "hdf5", "edf"):
        out = tmp_path / fmt
        assert main([uid, "--format", fmt, "--out", str(out), "--no-progress"],
                    catalog=session.db.v2) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert str(missing) in err and "unable to load" not in err, err
        assert not out.exists() or listing(out) == []


# -- overwrite: a run failing part way keeps the file it was replacing -----------------

def test_nexus_overwrite_failing_part_way_keeps_the_old_file(session, tmp_path):
    (first,) = session.run(bp.count([session.spot], num=2))
    (second,) = session.run(bp.count([session.spot], num=3))
    (third,) = session.run(bp.count([session.spot], num=1))
    frame_files(session, second)[2].unlink()
    out = tmp_path / "out"
    (old,) = export_run(session.db.v2[first], NexusExporter("run.h5", field="spot_img", directory=out))
    old_bytes = old.read_bytes()
    exporter = NexusExporter("run.h5", field="spot_img", directory=out, overwrite=True)
    with pytest.raises(FrameReadError, match="untouched"):
        export_run(session.db.v2[second], exporter)
    assert listing(out) == ["run.h5"]                   # no temporary file left
    assert old.read_bytes() == old_bytes                # the old file, whole
    assert open_h5_files() == 0
    # and a run that completes does replace it
    assert export_run(session.db.v2[third], exporter) == [old]
    assert listing(out) == ["run.h5"]
    with h5py.File(old, "r") as f:
        assert f["entry"].attrs["uid"] == third and f["entry/primary/spot_img"].shape[0] == 1


class FailingTiff(TiffExporter):
    """Writes part of the file for event 2, then fails as a full disk would."""

    def write(self, fh, frame, metadata, event):
        if event["seq_num"] == 2:
            fh.write(b"II*\x00half a file")
            raise OSError(28, "No space left on device")
        super().write(fh, frame, metadata, event)


def test_frame_overwrite_failing_part_way_keeps_the_old_files(session, tmp_path):
    import tifffile

    (first,) = session.run(bp.count([session.spot], num=3))
    (second,) = session.run(bp.count([session.spot], num=3))
    out = tmp_path / "out"
    export_run(session.db.v2[first], TiffExporter("spot_img", "{event.seq_num}.tif", directory=out))
    before = {name: (out / name).read_bytes() for name in listing(out)}
    exporter = FailingTiff("spot_img", "{event.seq_num}.tif", directory=out, overwrite=True)
    with pytest.raises(OSError, match="No space"):
        export_run(session.db.v2[second], exporter)
    assert listing(out) == ["1.tif", "2.tif", "3.tif"]  # no temporary file left
    np.testing.assert_array_equal(tifffile.imread(out / "1.tif"), session.frames(second)[0])
    assert (out / "2.tif").read_bytes() == before["2.tif"]   # the failed one: the old file, whole
    assert (out / "3.tif").read_bytes() == before["3.tif"]


def test_nexus_dark_of_another_shape_leaves_no_file(session, tmp_path):
    small = small_detector(tmp_path, (4, 5))
    (dark,) = session.run(bp.count([small], num=2), purpose="dark")
    (scan,) = session.run(bp.count([session.spot], num=2), dark_frame=dark)
    out = tmp_path / "out"
    with pytest.raises(DarkFrameError, match="shape"):
        export_run(session.db.v2[scan], NexusExporter("{start.scan_id}.h5", field="spot_img",
                                                      directory=out, db=session.db))
    assert not out.exists() or listing(out) == []
    assert open_h5_files() == 0


def test_live_nexus_export_of_a_field_changing_shape_leaves_no_file(session, tmp_path):
    shapes = iter([(4, 5), (4, 5), (6, 5)])
    det = SynSignalWithRegistry(lambda: np.zeros(next(shapes), np.int32), name="spot_img",
                                save_path=str(tmp_path / "frames"))
    out = tmp_path / "out"
    earlier = NexusExporter("{start.scan_id}.h5", directory=out)
    session.run(bp.count([session.spot], num=1), earlier)
    (kept,) = earlier.written
    exporter = NexusExporter("{start.scan_id}.h5", field="spot_img", directory=out)
    with pytest.raises(ExportError, match="changed shape"):
        session.run(bp.count([det], num=3), exporter)
    assert listing(out) == [kept.name]
    assert open_h5_files() == 0
    # the exporter is not stuck: the next run exports
    session.run(bp.count([session.spot], num=1), exporter)
    assert [p.name for p in exporter.written] == ["3.h5"]


# -- 6. the NeXus dark: require_dark and the stream, as for the frame exporters --------

def test_nexus_require_dark_refuses_a_run_without_one(session, tmp_path):
    (plain,) = session.run(bp.count([session.spot]))
    out = tmp_path / "out"
    for exporter in (NexusExporter("{start.scan_id}.h5", field="spot_img", directory=out,
                                   db=session.db, require_dark=True),
                     TiffExporter("spot_img", "{event.seq_num}.tif", directory=out,
                                  db=session.db, require_dark=True)):
        with pytest.raises(DarkFrameError, match="no dark_frame"):
            export_run(session.db.v2[plain], exporter)
    assert not out.exists()
    with pytest.raises(ValueError, match="require_dark"):
        NexusExporter("{start.scan_id}.h5", directory=out, require_dark=True)


def _in_stream(dets, stream, num):
    @bpp.stage_decorator(dets)
    @bpp.run_decorator()
    def plan():
        for _ in range(num):
            yield from bps.trigger_and_read(dets, name=stream)
    return plan()


def test_nexus_reads_the_dark_from_the_exported_stream(session, tmp_path):
    (dark,) = session.run(_in_stream([session.spot], "fast", 2), purpose="dark")
    (scan,) = session.run(_in_stream([session.spot], "fast", 2), dark_frame=dark)
    darks = np.stack(list(session.db[dark].data("spot_img", stream_name="fast")))
    raws = np.stack(list(session.db[scan].data("spot_img", stream_name="fast")))
    expected = raws.astype(np.int64) - np.rint(darks.mean(axis=0)).astype(np.int64)
    exporter = NexusExporter("{start.scan_id}.h5", field="spot_img", stream="fast",
                             directory=tmp_path, db=session.db)
    (path,) = export_run(session.db.v2[scan], exporter)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["entry/fast/spot_img"][()], expected)
        assert f["entry/fast/spot_img"].attrs["dark_frame"] == dark
    # the export command passes --stream on to the dark as well
    out = tmp_path / "cli"
    assert main([scan, "--format", "hdf5", "--stream", "fast", "--out", str(out),
                 "--no-progress"], catalog=session.db.v2) == 0
    (written,) = out.iterdir()
    with h5py.File(written, "r") as f:
        np.testing.assert_array_equal(f["entry/fast/spot_img"][()], expected)


# -- 3. an unwritable --out: one line, exit 2 ----------------------------------------

def test_export_command_unwritable_out_is_one_line(session, tmp_path, capsys):
    session.run(bp.count([session.spot], num=2))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for fmt in ("tiff", "hdf5", "edf"):
        out = blocker / "export"
        assert main(["-1", "--format", fmt, "--out", str(out), "--no-progress"],
                    catalog=session.db.v2) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert str(blocker) in err and "--out" in err, err
    assert blocker.read_text() == "not a directory"


# -- 4. processing: a uid without a catalog; a run whose stop has no num_events --------

def test_frameset_from_a_uid_without_a_catalog_says_so(session):
    (uid,) = session.run(bp.count([session.spot]))
    with pytest.raises(ValueError, match="db/catalog is needed.*look up"):
        FrameSet.from_run(None, uid, "spot_img")
    with pytest.raises(ValueError, match="db/catalog is needed"):
        FrameSet.from_run(None, -1, "spot_img")
    with pytest.raises(ValueError, match="db/catalog is needed"):
        next(correct_run(None, uid, "spot_img", dark=uid, flat_before=uid))
    # a run object needs no catalog
    assert FrameSet.from_run(None, session.db[uid], "spot_img").count == 1


def test_flats_by_index_without_num_events_count_the_events(tmp_path):
    session = Session(tmp_path, exposure=1.0, lifetime=1.0)
    uids = session.RE(flatfield_series([session.spot], session.shutter, session.samx,
                                       num_dark=2, num_flat=2, num_raw=4,
                                       closed=0, opened=1)).plan_result
    # the raw run again, in a catalog of its own, its stop document without num_events
    # (a run that never finished, or written by other software)
    copy = databroker.temp()
    for name, doc in session.db.v2[uids["raw"]].documents(fill="no"):
        if name == "stop":
            doc = {k: v for k, v in doc.items() if k != "num_events"}
        copy.insert(name, doc)
    stripped = copy.v2[uids["raw"]]
    assert "num_events" not in stripped.metadata["stop"]
    flats = dict(dark=uids["dark"], flat_before=uids["flat_before"], flat_after=uids["flat_after"])
    expected = [c for _, c in correct_run(session.db, uids["raw"], "spot_img", by="index", **flats)]
    got = [c for _, c in correct_run(session.db, stripped, "spot_img", by="index", **flats)]
    assert len(got) == len(expected) == 4
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a.filled(0), b.filled(0))
    # and it is the after-flat that the last frame uses
    db = session.db
    dark = FrameSet.from_run(db, uids["dark"], "spot_img")
    after = FrameSet.from_run(db, uids["flat_after"], "spot_img", index=3)
    last_raw = session.frames(uids["raw"])[-1]
    np.testing.assert_allclose(
        got[-1].filled(0), FlatFieldCorrector(dark, after).correct(last_raw).filled(0), rtol=1e-6)
