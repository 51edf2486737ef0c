"""``adsimdet`` in the session: built with apstools' ad_creator as in the APS example
when its IOC answers, counted into the persistent catalog, read back through
area-detector-handlers' AD_HDF5_SINGLE handler as the example reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_support import new_session, private_config
from simbeamline_iocs.adsim.paths import PathMap

pytestmark = pytest.mark.timeout(300)


def test_path_templates_read_where_the_ioc_writes(tmp_path):
    """The read template is the write template through the IOC's own path map: the
    longest mapped IOC directory wins, as in the IOC; empty items are skipped."""
    from simbeamline.devices.adsimdet import path_templates
    from simbeamline.control.config import BeamlineConfig

    spec = f",/tmp={tmp_path}/ioc_tmp,/tmp/simbeamline={tmp_path}/images"
    write, read = path_templates(BeamlineConfig(ad_path_map=spec))
    assert write == "/tmp/simbeamline/%Y/%m/%d/"
    assert read == f"{tmp_path}/images/%Y/%m/%d/" == PathMap.parse(spec).to_host(write)
    with pytest.raises(ValueError, match="IOCDIR=HOSTDIR"):
        path_templates(BeamlineConfig(ad_path_map="tmp=/x"))


@pytest.fixture(scope="module")
def ns(beamline, tmp_path_factory):
    return new_session(private_config(beamline, tmp_path_factory.mktemp("adsim-data")),
                       adsim=None)  # None: built because the IOC answers


def test_adsimdet_is_in_the_session_when_its_ioc_answers(ns):
    adsimdet = ns["adsimdet"]
    assert adsimdet.name == "adsimdet"
    assert adsimdet.missing_plugins() == []
    assert "hdf1" in adsimdet.read_attrs
    assert adsimdet.hdf1.stage_sigs["file_write_mode"] == "Single"
    assert adsimdet.cam.stage_sigs["acquire_time"] == 0.01


def test_count_and_read_back_as_the_example_does(ns):
    import hdf5plugin  # noqa: F401  (the example imports it to read compressed files)

    adsimdet, RE, bp = ns["adsimdet"], ns["RE"], ns["bp"]
    uids = RE(bp.count([adsimdet], md=dict(title="Area Detector, Single mode, HDF5 file",
                                             purpose="image")))
    run = ns["cat"][uids[0]]
    assert run.metadata["start"]["purpose"] == "image"
    frame = run.primary.read()[adsimdet.image.name][0][0]
    assert frame.ndim == 2 and frame.size > 0
    resource = run.primary._resources[0]
    assert resource["spec"] == "AD_HDF5_SINGLE"
    file_name = Path(resource["resource_kwargs"]["template"] % (
        f"{resource['root']}{resource['resource_path']}/",
        resource["resource_kwargs"]["filename"],
        resource["resource_kwargs"]["frame_per_point"] - 1))
    assert file_name.exists()
    path_map = PathMap.parse(ns["config"].ad_path_map)
    assert str(file_name).startswith(path_map.to_host(path_map.ioc_roots()[0]) + "/")
