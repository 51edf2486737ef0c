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


def _waits_for_connection(monkeypatch) -> list[str]:
    """The names of the EPICS signals this thread waits for from now on, one entry a
    wait (ophyd's connection callbacks wait for some in its own threads meanwhile)."""
    import threading

    from ophyd.signal import EpicsSignalBase

    waited, wait, me = [], EpicsSignalBase._ensure_connected, threading.get_ident()

    def counted(self, *args, **kwargs):   # where both kinds of EPICS signal wait
        if threading.get_ident() == me:
            waited.append(self.name)
        return wait(self, *args, **kwargs)

    monkeypatch.setattr(EpicsSignalBase, "_ensure_connected", counted)
    return waited


def _plain_adsimdet(config, name: str):
    """The seed's detector from apstools' ``ad_creator`` alone, its lazy signals unmade."""
    from apstools.devices import ad_creator

    from simbeamline.control import ca_env
    from simbeamline.devices.adsimdet import path_templates

    ca_env.apply_client_env(config)
    write, read = path_templates(config)
    return ad_creator(config.ad_prefix, name=name, plugins=[
        {"cam": {"class": "apstools.devices.SimDetectorCam_V34"}},
        {"hdf1": {"write_path_template": write, "read_path_template": read}}, "image"])


def test_lazy_signals_are_made_at_once_without_waiting(beamline, monkeypatch):
    """``make_lazy_signals`` makes every signal of cam1 and HDF1 (all lazy in ophyd's
    area-detector classes) without waiting for one: their searches go out together,
    and then they all connect (one at a time, ``adsimdet`` took a session 8 s longer)."""
    from simbeamline.devices.connect import make_lazy_signals, wait_connected

    adsimdet = _plain_adsimdet(beamline, "adsimdet_together")
    try:
        waited = _waits_for_connection(monkeypatch)
        for plugin in (adsimdet.cam, adsimdet.hdf1):
            make_lazy_signals(plugin)
        assert waited == []
        made = [walk.item for plugin in (adsimdet.cam, adsimdet.hdf1)
                for walk in plugin.walk_signals()]
        assert len(made) == len(_lazy_names(adsimdet)) > 200
        wait_connected({"cam": adsimdet.cam, "hdf1": adsimdet.hdf1})
        assert all(signal.connected for signal in made)
    finally:
        adsimdet.destroy()


def test_ophyds_own_way_waits_for_each_lazy_signal_as_it_is_made(beamline, monkeypatch):
    """The measurement above can fail: walking the same plugins' lazy signals, ophyd
    waits for each one in turn."""
    from simbeamline.devices.connect import wait_connected

    adsimdet = _plain_adsimdet(beamline, "adsimdet_one_by_one")
    try:
        waited = _waits_for_connection(monkeypatch)
        lazy = _lazy_names(adsimdet)
        assert len(lazy) >= len(set(waited) & lazy) > 200
        wait_connected({"cam": adsimdet.cam, "hdf1": adsimdet.hdf1})  # nothing in flight
    finally:
        adsimdet.destroy()


def _lazy_names(adsimdet) -> set[str]:
    """The names of every signal of cam1 and HDF1, made by walking them (ophyd's way)."""
    return {walk.item.name for plugin in (adsimdet.cam, adsimdet.hdf1)
            for walk in plugin.walk_signals(include_lazy=True)}


@pytest.fixture(scope="module")
def ns(beamline, tmp_path_factory):
    return new_session(private_config(beamline, tmp_path_factory.mktemp("adsim-data")),
                       adsim=None)  # None: built because the IOC answers


def test_adsimdet_is_in_the_session_when_its_ioc_answers(ns):
    adsimdet = ns["adsimdet"]
    assert adsimdet.name == "adsimdet"
    assert adsimdet.missing_plugins() == []
    for plugin in (adsimdet.cam, adsimdet.hdf1):   # made together when it was built
        made = list(plugin.walk_signals())
        assert len(made) == len(list(plugin.walk_signals(include_lazy=True)))
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
