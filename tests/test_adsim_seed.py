"""The APS training seed (adsim-hdf5-single-mode) against the ADSimDetector IOC
launched the user's way: its recapitulation block, unmodified apart from the two
mount paths (this test beamline's path map) and plotting."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from simbeamline_iocs.adsim.paths import PathMap

pytestmark = pytest.mark.timeout(300)


def host_mount(config) -> pathlib.Path:
    """The host directory the IOC calls /tmp (the test beamline's path map)."""
    path_map = PathMap.parse(config.ad_path_map)
    assert path_map.covers("/tmp")
    return pathlib.Path(path_map.to_host("/tmp"))


def recapitulation(IOC, BLUESKY_MOUNT_PATH, NUM_FRAMES=1, count_num=1):
    """The seed's "Recapitulation" block, verbatim except: the bluesky mount path is
    an argument, plotting is left out, count's ``num`` is an argument, and the
    seed's ``cam.stage_sigs["num_frames"]`` reads ``num_images`` (see
    test_seed_num_frames_line_is_a_client_side_error)."""
    from apstools.devices import ad_creator
    from apstools.devices import ensure_AD_plugin_primed
    from apstools.devices import SimDetectorCam_V34
    import hdf5plugin  # required for LZ4, Blosc, and other compression codecs
    from ophyd import ADComponent
    from ophyd.areadetector.filestore_mixins import FileStoreHDF5SingleIterativeWrite
    from ophyd.areadetector.plugins import HDF5Plugin_V34 as HDF5Plugin
    import bluesky
    import bluesky.plans as bp
    import databroker
    import pathlib
    import warnings

    RE = bluesky.RunEngine()
    cat = databroker.temp().v2
    RE.subscribe(cat.v1.insert)

    # These paths are specific to how this IOC is implemented.
    AD_IOC_MOUNT_PATH = pathlib.Path("/tmp")
    BLUESKY_MOUNT_PATH = pathlib.Path(BLUESKY_MOUNT_PATH)

    IMAGE_DIR = "example/%Y/%m/%d"  # our choice for file arrangement

    # MUST end with a `/`, pathlib will NOT provide it
    WRITE_PATH_TEMPLATE = f"{AD_IOC_MOUNT_PATH / IMAGE_DIR}/"
    READ_PATH_TEMPLATE = f"{BLUESKY_MOUNT_PATH / IMAGE_DIR}/"

    class TheDetectorCam(SimDetectorCam_V34):
        """Add settings for staging."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stage_sigs.update(
                dict(
                    acquire_time=0.01,
                    acquire_period=0.015,  # a wee bit longer than acquire_time
                    num_images=1,
                    num_exposures=1,  # Exp./image
                    wait_for_plugins="Yes",
                    array_callbacks="Enable",
                )
            )

    class CustomHDF5Plugin(FileStoreHDF5SingleIterativeWrite, HDF5Plugin):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stage_sigs.update(
                dict(
                    array_callbacks="Disable",
                    auto_increment="Yes",
                    auto_save="Yes",
                    blocking_callbacks="No",
                    compression="zlib",
                    lazy_open="Yes",
                    store_perform="No",
                    zlevel=6,
                )
            )
            remove_these = """
                capture
                array_counter
                parent.cam.array_callbacks
                create_directory
            """.split()
            for k in remove_these:
                if k in self.stage_sigs:
                    self.stage_sigs.pop(k)

        def stage(self):
            # Again, do not press the Capture button in the HDF plugin
            if "capture" in self.stage_sigs:
                warnings.warn("Do not use capture with file_write_mode='Single'")
                self.stage_sigs.pop("capture")
            super().stage()

    plugins = []
    plugins.append({"cam": {"class": TheDetectorCam}})
    plugins.append(
        {
            "hdf1": {
                "class": CustomHDF5Plugin,
                "write_path_template": WRITE_PATH_TEMPLATE,
                "read_path_template": READ_PATH_TEMPLATE,
            }
        }
    )
    plugins.append("image")

    adsimdet = ad_creator(IOC, name="adsimdet", plugins=plugins)
    adsimdet.wait_for_connection(timeout=15)
    missing = adsimdet.missing_plugins()
    adsimdet.read_attrs.append("hdf1")
    adsimdet.hdf1.create_directory.put(-5)
    adsimdet.cam.stage_sigs["num_images"] = NUM_FRAMES

    # this step is needed for ophyd
    ensure_AD_plugin_primed(adsimdet.hdf1, True)

    uids = RE(
        bp.count([adsimdet], num=count_num,
        md=dict(
            title="Area Detector, Single mode, HDF5 file",
            purpose="image")
        )
    )

    run = cat.v2[uids[0]]
    frame = run.primary.read()[adsimdet.image.name][0][0]
    return dict(adsimdet=adsimdet, missing=missing, run=run, frame=frame, cat=cat, uids=uids)


@pytest.fixture(scope="module")
def seed_one(beamline):
    return recapitulation(beamline.ad_prefix, host_mount(beamline))


def test_missing_plugins_is_empty(seed_one):
    assert seed_one["missing"] == []


def test_frame_read_back_through_the_handler(seed_one):
    frame = seed_one["frame"]
    assert frame.shape == (1024, 1024)
    assert frame.dtype == np.uint8
    assert int(frame.max()) > int(frame.min())   # a real image, not a constant


def test_resource_file_is_the_file_the_ioc_wrote(seed_one, beamline):
    import h5py
    import hdf5plugin  # noqa: F401
    from apstools.devices import AD_full_file_name_local

    run = seed_one["run"]
    rsrc = run.primary._resources[0]
    assert rsrc["spec"] == "AD_HDF5_SINGLE"
    file_name = pathlib.Path(
        rsrc["resource_kwargs"]["template"] % (
            f"{rsrc['root']}{rsrc['resource_path']}/",
            rsrc["resource_kwargs"]["filename"],
            rsrc["resource_kwargs"]["frame_per_point"] - 1,
        )
    )
    assert file_name.exists()
    assert str(file_name).startswith(str(host_mount(beamline)))
    local_file_name = AD_full_file_name_local(seed_one["adsimdet"].hdf1)
    assert local_file_name == file_name
    with h5py.File(file_name, "r") as f:
        stored = f["/entry/data/data"][()]
        assert f["/entry/data/data"].compression == "gzip"
    np.testing.assert_array_equal(stored, np.asarray(seed_one["frame"]))


def test_count_of_several_frames(beamline):
    out = recapitulation(beamline.ad_prefix, host_mount(beamline), count_num=5)
    run = out["run"]
    images = run.primary.read()[out["adsimdet"].image.name]
    assert images.shape == (5, 1, 1024, 1024)
    # five distinct frames (noise differs), each from its own file
    frames = np.asarray(images)
    assert len({frames[i].tobytes() for i in range(5)}) == 5
    assert out["adsimdet"].hdf1.file_number.get() == 5


def test_several_images_per_point(beamline):
    from apstools.devices import AD_full_file_name_local  # noqa: F401

    import bluesky.plans as bp
    out = recapitulation(beamline.ad_prefix, host_mount(beamline))
    det = out["adsimdet"]
    det.cam.stage_sigs["num_images"] = 3
    import bluesky
    RE = bluesky.RunEngine()
    cat = out["cat"]
    RE.subscribe(cat.v1.insert)
    uids = RE(bp.count([det], num=2))
    run = cat.v2[uids[0]]
    images = run.primary.read()[det.image.name]
    assert images.shape == (2, 3, 1024, 1024)
    assert run.primary._resources[0]["resource_kwargs"]["frame_per_point"] == 3
    assert det.hdf1.file_number.get() == 6


def test_seed_num_frames_line_is_a_client_side_error():
    """The seed's ``adsimdet.cam.stage_sigs["num_frames"] = NUM_FRAMES`` names an
    attribute SimDetectorCam_V34 (apstools 1.7.12) does not have, so staging raises
    AttributeError in ophyd before any PV is touched, whatever the IOC: this pins
    that fact, so the substitution in :func:`recapitulation` stays justified."""
    from apstools.devices import SimDetectorCam_V34
    from ophyd.device import Staged

    assert "num_frames" not in SimDetectorCam_V34.component_names
    assert "num_images" in SimDetectorCam_V34.component_names
    # the seed's line, on a camera no IOC serves: staging fails naming the attribute
    cam = SimDetectorCam_V34("simbeamline-no-such-ioc:cam1:", name="cam")
    try:
        cam.stage_sigs["num_frames"] = 1
        with pytest.raises(AttributeError, match="num_frames"):
            cam.stage()
        cam.unstage()            # the failed stage left it partially staged
        assert cam._staged == Staged.no
    finally:
        cam.destroy()
