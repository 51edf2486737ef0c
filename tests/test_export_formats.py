"""HDF5 (NeXus) and EDF export, read back by h5py and fabio; the export command."""

from __future__ import annotations

import json

import bluesky.plans as bp
import fabio
import h5py
import numpy as np
import pytest
import tifffile

from export_support import Session, listing
from simbeamline.export import EdfExporter, NexusExporter, export_run
from simbeamline.export.cli import main
from simbeamline.plans import scan_with_dark


@pytest.fixture
def session(tmp_path):
    return Session(tmp_path, exposure=0.05)


def test_hdf5_export_is_nexus_and_h5py_reads_it(session, tmp_path):
    live = NexusExporter("{start.scan_id}.h5", field="spot_img", directory=tmp_path / "live")
    (uid,) = session.run(bp.scan([session.spot], session.x, -5, 5, 3), live, sample="kapton")
    later = NexusExporter("{start.scan_id}.h5", field="spot_img", directory=tmp_path / "later")
    export_run(session.db.v2[uid], later)
    frames = session.frames(uid)
    table = session.db[uid].table()
    for path in (live.written[0], later.written[0]):
        with h5py.File(path, "r") as f:
            assert f.attrs["default"] == "entry"
            entry = f["entry"]
            assert entry.attrs["NX_class"] == "NXentry"
            assert entry.attrs["uid"] == uid and entry.attrs["sample"] == "kapton"
            assert entry.attrs["exit_status"] == "success"
            assert json.loads(entry.attrs["plan_args"])["num"] == 3
            data = entry["primary"]
            assert data.attrs["NX_class"] == "NXdata" and data.attrs["signal"] == "spot_img"
            assert data["spot_img"].dtype == np.int32
            np.testing.assert_array_equal(data["spot_img"][()], frames)
            np.testing.assert_allclose(data["motor_spotx"][()], table["motor_spotx"].to_numpy())
            assert list(data["seq_num"][()]) == [1, 2, 3]
            assert "motor_spotx" in json.loads(data.attrs["configuration"])


def test_hdf5_export_subtracts_the_dark_and_refuses_to_overwrite(session, tmp_path):
    plan = bp.count([session.spot], num=2)
    dark, scan = session.RE(scan_with_dark([session.spot], session.shutter, plan, dark_num=2,
                                           closed=0, opened=1)).plan_result
    exporter = NexusExporter("{start.scan_id}.h5", field="spot_img", directory=tmp_path, db=session.db)
    (path,) = export_run(session.db.v2[scan], exporter)
    expected = session.frames(scan).astype(np.int64) - np.rint(session.frames(dark).mean(axis=0)).astype(np.int64)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["entry/primary/spot_img"][()], expected)
        assert f["entry/primary/spot_img"].attrs["dark_frame"] == dark
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        export_run(session.db.v2[scan], NexusExporter("{start.scan_id}.h5", field="spot_img",
                                                      directory=tmp_path, db=session.db))
    assert path.read_bytes() == before
    with pytest.raises(Exception, match="start fields only"):
        NexusExporter("{event.seq_num}.h5", directory=tmp_path)


def test_edf_export_fabio_reads_frames_and_header(session, tmp_path):
    exporter = EdfExporter("spot_img", "{start.scan_id}_{event.seq_num:04d}.edf", directory=tmp_path / "edf")
    (uid,) = session.run(bp.scan([session.spot], session.x, -5, 5, 3), exporter, sample="a;b{c}")
    frames = session.frames(uid)
    for frame, path in zip(frames, exporter.written):
        with fabio.open(str(path)) as image:
            np.testing.assert_array_equal(image.data, frame)
            assert image.data.dtype == np.int32
            header = image.header
            assert header["run_uid"] == uid and header["start.sample"] == "a,b(c)"
    assert float(fabio.open(str(exporter.written[2])).header["reading.motor_spotx"]) == pytest.approx(5)
    with fabio.open_series(first_filename=str(exporter.written[0])) as series:
        assert series.nframes == 3


def test_export_command_any_run_any_format(session, tmp_path, capsys):
    plan = bp.scan([session.spot], session.x, -5, 5, 2)
    dark, scan = session.RE(scan_with_dark([session.spot], session.shutter, plan,
                                           closed=0, opened=1)).plan_result
    cat = session.db.v2
    out = tmp_path / "out"
    assert main(["-1", "--out", str(out), "--no-progress"], catalog=cat) == 0
    assert listing(out) == ["2_primary_00001.tif", "2_primary_00002.tif"]
    assert "exported 2 files" in capsys.readouterr().out
    # subtracted with the run's own dark_frame by default
    expected = session.frames(scan)[0].astype(np.int64) - np.rint(session.frames(dark)[0]).astype(np.int64)
    np.testing.assert_array_equal(tifffile.imread(out / "2_primary_00001.tif"), expected)

    assert main([scan[:8], "--format", "hdf5", "--out", str(out), "--no-progress"], catalog=cat) == 0
    assert main(["2", "--format", "edf", "--dark", "none", "--template", "{event.seq_num}.edf",
                 "--out", str(out / "edf"), "--no-progress"], catalog=cat) == 0
    with h5py.File(out / f"2_{scan[:8]}.h5", "r") as f:
        assert f["entry/primary/spot_img"].shape == (2, 480, 640)
    np.testing.assert_array_equal(fabio.open(str(out / "edf" / "1.edf")).data, session.frames(scan)[0])
    capsys.readouterr()

    # bad input: one line naming the problem, exit status 2, nothing written
    assert main(["-1", "--out", str(out), "--no-progress"], catalog=cat) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["99", "--out", str(tmp_path / "none")], catalog=cat) == 2
    assert "no run '99'" in capsys.readouterr().err
    assert main(["-1", "--template", "../{event.seq_num}.tif", "--out", str(tmp_path / "none")], catalog=cat) == 2
    assert "outside the export directory" in capsys.readouterr().err
    assert main(["-1", "--dark", "77", "--out", str(tmp_path / "none")], catalog=cat) == 2
    assert "--dark 77" in capsys.readouterr().err
    assert main(["-1", "--field", "dot_img", "--out", str(tmp_path / "none")], catalog=cat) == 2
    assert "'dot_img'" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


# -- the progress bar's total without num_events; --stream all -------------------------

def _with_baseline(session, num):
    import bluesky.preprocessors as bpp

    return bpp.baseline_wrapper(bp.count([session.spot], num=num), [session.x])


def test_progress_total_counts_the_events_when_the_stop_has_no_num_events(session, tmp_path, capsys):
    import databroker

    (uid,) = session.run(_with_baseline(session, 3))
    copy = databroker.temp()
    for name, doc in session.db.v2[uid].documents(fill="no"):
        if name == "stop":
            doc = {k: v for k, v in doc.items() if k != "num_events"}
        copy.insert(name, doc)
    stripped = copy.v2[uid]
    assert "num_events" not in stripped.metadata["stop"]
    capsys.readouterr()
    export_run(stripped, EdfExporter("spot_img", "{event.seq_num}.edf", directory=tmp_path / "e"),
               progress=True)
    assert "3/3" in capsys.readouterr().err
    export_run(stripped, NexusExporter("{start.scan_id}.h5", directory=tmp_path / "h"), progress=True)
    assert "5/5" in capsys.readouterr().err             # every stream goes into the file
    run = session.db.v2[uid]
    for streams, n in (({"primary"}, 3), ({"baseline"}, 2), (None, 5)):
        from simbeamline.export import count_exported_events

        assert count_exported_events(stripped, streams) == count_exported_events(run, streams) == n


def test_export_command_stream_all_writes_every_stream_into_one_nexus_file(session, tmp_path, capsys):
    (uid,) = session.run(_with_baseline(session, 2))
    out = tmp_path / "out"
    assert main([uid, "--format", "hdf5", "--stream", "all", "--out", str(out), "--no-progress"],
                catalog=session.db.v2) == 0
    (path,) = out.iterdir()
    with h5py.File(path, "r") as f:
        assert sorted(f["entry"]) == ["baseline", "primary"]
        assert f["entry/primary/spot_img"].shape == (2, 480, 640)
        assert f["entry/baseline/motor_spotx"].shape == (2,)
        assert f["entry"].attrs["default"] == "primary"
    # the frame formats write one stream: one line, exit 2, nothing written
    assert main([uid, "--stream", "all", "--out", str(tmp_path / "t"), "--no-progress"],
                catalog=session.db.v2) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format hdf5" in err, err
    assert not (tmp_path / "t").exists()
    # and the command's help says so
    from simbeamline.export.cli import build_parser

    assert "'all' writes every stream" in " ".join(build_parser().format_help().split())
