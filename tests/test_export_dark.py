"""Dark subtraction: values equal numpy's, no wrap-around, and a bad dark stops the
export before any file is written (in-process runs; see export_support)."""

from __future__ import annotations

import bluesky.plans as bp
import numpy as np
import pytest
import tifffile

from export_support import Session, listing
from simbeamline.export.darks import DarkFrameError, subtract_dark, subtracted_dtype
from simbeamline.export import SubtractedTiffExporter, TiffExporter, export_run
from simbeamline.plans import scan_with_dark


def dark_then_scan(session, num_dark=3):
    """The seed's flow: shutter closed, dark, shutter open, scan with dark_frame."""
    plan = bp.scan([session.spot], session.x, -10, 10, 3)
    return session.RE(scan_with_dark([session.spot], session.shutter, plan, dark_num=num_dark,
                                     closed=0, opened=1)).plan_result


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_dark_subtracted_values_equal_numpys(tmp_path, dtype):
    session = Session(tmp_path, dtype=dtype, exposure=0.01)   # weak spot: noise goes negative
    dark_uid, scan_uid = dark_then_scan(session)
    assert session.db[dark_uid].start["purpose"] == "dark"
    assert session.db[scan_uid].start["dark_frame"] == dark_uid
    assert session.shutter.readback.get() == 1                  # reopened

    live = TiffExporter("spot_img", "{event.seq_num}.tif", directory=tmp_path / "live", db=session.db)
    session.db.process(session.db[scan_uid], live)
    darks = session.frames(dark_uid)
    raws = session.frames(scan_uid)
    assert darks.dtype == raws.dtype == dtype
    expected = raws.astype(np.int64) - np.rint(darks.mean(axis=0)).astype(np.int64)
    assert (expected < 0).any()                                  # there is something to wrap
    for frame, path in zip(expected, live.written):
        written = tifffile.imread(path)
        assert written.dtype == subtracted_dtype(dtype)
        np.testing.assert_array_equal(written, frame)
        with tifffile.TiffFile(path) as tif:
            md = tif.shaped_metadata[0]
        assert md["dark_frame"] == dark_uid and md["dark_subtracted"] is True


def test_subtraction_never_wraps():
    frame = np.array([[0, 65535]], dtype=np.uint16)
    out = subtract_dark(frame, np.array([[5.4, 0.6]]))
    assert out.dtype == np.int32
    assert out.tolist() == [[-5, 65534]]
    assert subtract_dark(np.array([[1.5]], np.float32), np.array([[2.0]])).tolist() == [[-0.5]]
    with pytest.raises(DarkFrameError, match="shape"):
        subtract_dark(np.zeros((2, 3), np.uint16), np.zeros((3, 2)))


def test_missing_dark_run_stops_before_any_file(tmp_path):
    session = Session(tmp_path)
    out = tmp_path / "out"
    exporter = TiffExporter("spot_img", "{event.seq_num}.tif", directory=out, db=session.db)
    with pytest.raises(DarkFrameError, match="dark run 'no-such-run' cannot be found"):
        session.run(bp.count([session.spot], num=2), exporter, dark_frame="no-such-run")
    assert not out.exists()
    (uid,) = session.run(bp.count([session.spot], num=2), dark_frame="no-such-run")
    with pytest.raises(DarkFrameError):
        export_run(session.db.v2[uid], TiffExporter("spot_img", "{event.seq_num}.tif",
                                                    directory=out, db=session.db))
    assert not out.exists()
    # no catalog to find the dark in: said so, not silently skipped
    with pytest.raises(DarkFrameError, match="no catalog"):
        export_run(session.db.v2[uid], TiffExporter("spot_img", "{event.seq_num}.tif", directory=out))
    # SubtractedTiffExporter insists on a dark, as the seed's subclass
    (plain,) = session.run(bp.count([session.spot]))
    with pytest.raises(DarkFrameError, match="no dark_frame"):
        export_run(session.db.v2[plain], SubtractedTiffExporter("spot_img", "{event.seq_num}.tif",
                                                                directory=out, db=session.db))
    assert not out.exists()


def test_unreadable_dark_run_names_the_file_and_writes_nothing(tmp_path):
    session = Session(tmp_path)
    dark_uid, scan_uid = dark_then_scan(session, num_dark=2)
    resource = next(doc for name, doc in session.db[dark_uid].documents() if name == "resource")
    victim = tmp_path / "frames" / f"{resource['resource_path']}_1.npy"
    victim.unlink()
    out = tmp_path / "out"
    with pytest.raises(DarkFrameError, match=f"{dark_uid}.*cannot be read") as err:
        export_run(session.db.v2[scan_uid], TiffExporter("spot_img", "{event.seq_num}.tif",
                                                         directory=out, db=session.db))
    assert str(victim) in str(err.value)
    assert not out.exists() or listing(out) == []
    # turning subtraction off exports the raw frames
    written = export_run(session.db.v2[scan_uid], TiffExporter(
        "spot_img", "{event.seq_num}.tif", directory=out, db=session.db, dark=None))
    np.testing.assert_array_equal(tifffile.imread(written[0]), session.frames(scan_uid)[0])
