"""TIFF export: live == from the catalog, tags, templates, refusals (in-process runs).

Runs come from a real RunEngine into a temporary databroker catalog, with frames in
NPY_SEQ files computed by the spot camera's model (see export_support).
"""

from __future__ import annotations

import os

import bluesky.plans as bp
import numpy as np
import pytest
import tifffile

from export_support import Session, listing
from simbeamline.export import TiffExporter, export_run
from simbeamline.export.paths import PathEscapeError, TemplateError
from simbeamline.export.base import ExportError

TEMPLATE = "{start.sample}/{start.scan_id}_step{event.seq_num:03d}_x{event.data.motor_spotx:+.1f}.tif"


@pytest.fixture
def session(tmp_path):
    return Session(tmp_path)


def grid(session, n=3):
    return bp.grid_scan([session.spot], session.x, -20, 20, n, session.y, -10, 10, 2)


def test_live_export_during_grid_scan_equals_export_of_finished_run(session, tmp_path):
    live = TiffExporter("spot_img", TEMPLATE, directory=tmp_path / "live")
    (uid,) = session.run(grid(session), live, sample="kapton")
    assert len(live.written) == 6

    v1 = TiffExporter("spot_img", TEMPLATE, directory=tmp_path / "v1")
    session.db.process(session.db[uid], v1)                    # the seed recipe's call
    v2 = TiffExporter("spot_img", TEMPLATE, directory=tmp_path / "v2")
    export_run(session.db.v2[uid], v2)                         # the v2 equivalent

    names = listing(tmp_path / "live")
    assert names == listing(tmp_path / "v1") == listing(tmp_path / "v2")
    assert names[0] == "kapton/1_step001_x-20.0.tif"
    for name in names:
        data = (tmp_path / "live" / name).read_bytes()
        assert data == (tmp_path / "v1" / name).read_bytes() == (tmp_path / "v2" / name).read_bytes()

    stored = session.frames(uid)
    for frame, path in zip(stored, live.written):
        written = tifffile.imread(path)
        assert written.dtype == stored.dtype == np.int32
        np.testing.assert_array_equal(written, frame)


def test_tiff_tags_carry_the_run_metadata(session, tmp_path):
    exporter = TiffExporter("spot_img", "{start.scan_id}_{event.seq_num}.tif", directory=tmp_path / "out")
    (uid,) = session.run(bp.scan([session.spot], session.x, 0, 10, 2), exporter,
                         sample="silicon", operator="ada")
    event = list(session.db[uid].events())[1]
    with tifffile.TiffFile(exporter.written[1]) as tif:
        page = tif.pages[0]
        assert page.tags["DocumentName"].value == uid
        assert page.tags["PageName"].value == "primary:2"
        assert page.tags["Software"].value == "simbeamline"
        assert page.tags["DateTime"].value.replace(":", "").replace(" ", "") == \
            __import__("datetime").datetime.fromtimestamp(event["time"]).strftime("%Y%m%d%H%M%S")
        md = tif.shaped_metadata[0]
    assert md["run_uid"] == uid and md["scan_id"] == 1 and md["seq_num"] == 2
    assert md["plan_name"] == "scan" and md["stream"] == "primary"
    assert md["start"]["sample"] == "silicon" and md["start"]["operator"] == "ada"
    assert md["readings"]["motor_spotx"] == pytest.approx(10.0)
    assert md["dark_subtracted"] is False and md["dark_frame"] is None


@pytest.mark.parametrize("sample", ["../../x", "/etc/x", "a/../../b"])
def test_path_escape_is_refused_with_nothing_written(session, tmp_path, sample):
    out = tmp_path / "out"
    out.mkdir()
    live = TiffExporter("spot_img", "{start.sample}_{event.seq_num}.tif", directory=out)
    with pytest.raises(PathEscapeError, match="outside the export directory"):
        session.run(bp.count([session.spot], num=2), live, sample=sample)
    assert listing(tmp_path / "out") == []
    assert not (tmp_path / "x_1.tif").exists() and not (tmp_path.parent / "x_1.tif").exists()
    assert not os.path.exists("/etc/x_1.tif")

    (uid,) = session.run(bp.count([session.spot], num=2), sample=sample)
    later = TiffExporter("spot_img", "{start.sample}_{event.seq_num}.tif", directory=out)
    with pytest.raises(PathEscapeError):
        export_run(session.db.v2[uid], later)
    assert listing(out) == []


def test_a_template_climbing_out_after_a_field_is_refused_before_any_file(session, tmp_path):
    (uid,) = session.run(bp.scan([session.spot], session.x, 0, 1, 2))
    # '../' in the template's own text, after an event field: caught per file name
    exporter = TiffExporter("spot_img", "{event.seq_num}/../../../x{event.seq_num}.tif",
                            directory=tmp_path / "out")
    with pytest.raises(PathEscapeError):
        export_run(session.db.v2[uid], exporter)
    assert not (tmp_path / "out").exists() or listing(tmp_path / "out") == []


def test_missing_field_names_it_and_the_fields_that_exist(session, tmp_path):
    exporter = TiffExporter("spot_img", "{start.sampel}_{event.seq_num}.tif", directory=tmp_path / "o")
    with pytest.raises(TemplateError) as err:
        session.run(bp.count([session.spot]), exporter, sample="kapton")
    message = str(err.value)
    assert "start.sampel" in message and "sample" in message and "scan_id" in message
    assert not (tmp_path / "o").exists()

    (uid,) = session.run(bp.count([session.spot], num=2))
    bad_event = TiffExporter("spot_img", "{event.data.motor_spotz}_{event.seq_num}.tif", directory=tmp_path / "o")
    with pytest.raises(TemplateError, match=r"event\.data\.motor_spotz.*spot_img"):
        export_run(session.db.v2[uid], bad_event)
    wrong_field = TiffExporter("spot_image", "{event.seq_num}.tif", directory=tmp_path / "o")
    with pytest.raises(ExportError, match="'spot_image'.*spot_img"):
        export_run(session.db.v2[uid], wrong_field)
    not_a_document = TiffExporter("spot_img", "{scan_id}.tif", directory=tmp_path / "o")
    with pytest.raises(TemplateError, match="start, descriptor, event"):
        export_run(session.db.v2[uid], not_a_document)
    assert not (tmp_path / "o").exists()


def test_never_overwrites_unless_asked(session, tmp_path):
    (uid,) = session.run(bp.count([session.spot], num=3))
    out = tmp_path / "out"
    export_run(session.db.v2[uid], TiffExporter("spot_img", "{event.seq_num}.tif", directory=out))
    (out / "3.tif").unlink()
    before = {name: (out / name).read_bytes() for name in listing(out)}
    with pytest.raises(FileExistsError, match="1.tif.*overwrite"):
        export_run(session.db.v2[uid], TiffExporter("spot_img", "{event.seq_num}.tif", directory=out))
    assert listing(out) == ["1.tif", "2.tif"]           # the missing one was not written either
    assert {name: (out / name).read_bytes() for name in listing(out)} == before

    (other,) = session.run(bp.count([session.spot], num=3))
    export_run(session.db.v2[other], TiffExporter("spot_img", "{event.seq_num}.tif",
                                                  directory=out, overwrite=True))
    np.testing.assert_array_equal(tifffile.imread(out / "1.tif"), session.frames(other)[0])


def test_a_template_giving_one_name_for_two_events_is_refused(session, tmp_path):
    (uid,) = session.run(bp.count([session.spot], num=2))
    with pytest.raises(ExportError, match="same file.*seq_num"):
        export_run(session.db.v2[uid], TiffExporter("spot_img", "{start.scan_id}.tif",
                                                    directory=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_absolute_template_as_in_the_seed(session, tmp_path):
    template = os.path.join(str(tmp_path), "tiff_base", "{start.sa_name}_{start.scan_id}_step{event.seq_num}.tif")
    exporter = TiffExporter("spot_img", template)
    session.run(bp.count([session.spot], num=2), exporter, sa_name="UO2")
    assert listing(tmp_path / "tiff_base") == ["UO2_1_step1.tif", "UO2_1_step2.tif"]
