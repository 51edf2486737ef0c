"""``adsimdet``: the ADSimDetector, built exactly as the APS example
"Area Detector, Single mode, HDF5 file" builds it (apstools ``ad_creator``, an HDF5
plugin in Single mode, one file per frame, read back by area-detector-handlers'
``AD_HDF5_SINGLE``).

The IOC writes under its own directories and this host sees them elsewhere:
``BeamlineConfig.ad_path_map`` ("IOCDIR=HOSTDIR", by default ``/tmp`` =
``/tmp/docker_ioc/iocad/tmp`` as in the example) gives the write and read path
templates.
"""

from __future__ import annotations

import pathlib
import threading
import warnings

from apstools.devices import SimDetectorCam_V34, ad_creator, ensure_AD_plugin_primed
from ophyd.areadetector.filestore_mixins import FileStoreHDF5SingleIterativeWrite
from ophyd.areadetector.plugins import HDF5Plugin_V34 as HDF5Plugin
from simbeamline_iocs.adsim.paths import PathMap

from ..control.config import BeamlineConfig

#: Our choice of file arrangement under the IOC's mapped directory.
IMAGE_DIR = "simbeamline/%Y/%m/%d"
#: Seconds allowed for priming the HDF5 plugin (apstools polls with no time limit).
PRIME_TIMEOUT = 60.0


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
    """The HDF5 plugin in Single mode: one file per frame (stage/unstage/generate_datum
    from ``FileStoreHDF5SingleIterativeWrite``)."""

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
        # capture is not used with Single mode; parent.cam.array_callbacks is staged
        # once in the cam; create_directory must be set before file_path.
        for k in ("capture", "array_counter", "parent.cam.array_callbacks", "create_directory"):
            self.stage_sigs.pop(k, None)

    def stage(self):
        # Do not press the Capture button in the HDF plugin.
        if "capture" in self.stage_sigs:
            warnings.warn("Do not use capture with file_write_mode='Single'")
            self.stage_sigs.pop("capture")
        super().stage()


def path_templates(config: BeamlineConfig) -> tuple[str, str]:
    """(write, read) path templates: the IOC's view of IMAGE_DIR under the first
    mapped IOC directory, and where this host sees it (the IOC's own path map)."""
    try:
        path_map = PathMap.parse(config.ad_path_map)
    except ValueError as exc:
        raise ValueError(f"SIMBEAMLINE_AD_PATH_MAP={config.ad_path_map!r}: {exc}") from None
    if not path_map.pairs:
        raise ValueError(
            f"SIMBEAMLINE_AD_PATH_MAP={config.ad_path_map!r} is not IOCDIR=HOSTDIR with "
            "absolute paths, for example /tmp=/tmp/docker_ioc/iocad/tmp"
        )
    # MUST end with a `/`, pathlib will NOT provide it
    write = f"{pathlib.PurePosixPath(path_map.ioc_roots()[0]) / IMAGE_DIR}/"
    return write, path_map.to_host(write)


def create_adsimdet(config: BeamlineConfig):
    """Build ``adsimdet`` (not yet connected: :func:`..beamline.build_beamline` waits for
    its signals, then calls :func:`prepare_adsimdet`)."""
    write_template, read_template = path_templates(config)
    plugins = [
        {"cam": {"class": TheDetectorCam}},
        {
            "hdf1": {
                "class": CustomHDF5Plugin,
                "write_path_template": write_template,
                "read_path_template": read_template,
            }
        },
        "image",
    ]
    return ad_creator(config.ad_prefix, name="adsimdet", plugins=plugins)


def prepare_adsimdet(adsimdet):
    """Check the connected ``adsimdet``'s plugins, record HDF1 and prime it."""
    missing = adsimdet.missing_plugins()
    if missing:
        warnings.warn(f"adsimdet: the IOC has plugins this device does not describe: {missing}")
    adsimdet.read_attrs.append("hdf1")
    adsimdet.hdf1.create_directory.put(-5)
    _prime(adsimdet)
    return adsimdet


def _prime(adsimdet) -> None:
    """``ensure_AD_plugin_primed`` with a time limit (it polls forever on a silent IOC)."""
    errors: list[BaseException] = []

    def prime():
        try:
            ensure_AD_plugin_primed(adsimdet.hdf1, True)
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=prime, daemon=True, name="adsimdet-prime")
    worker.start()
    worker.join(PRIME_TIMEOUT)
    if worker.is_alive():
        raise TimeoutError(
            f"adsimdet: priming the HDF5 plugin ({adsimdet.hdf1.prefix}) did not finish "
            f"within {PRIME_TIMEOUT:.0f} s; check the ADSimDetector IOC's log"
        )
    if errors:
        raise errors[0]
