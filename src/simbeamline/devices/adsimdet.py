"""``adsimdet``: the ADSimDetector, built exactly as the APS example
"Area Detector, Single mode, HDF5 file" builds it (apstools ``ad_creator``, an HDF5
plugin in Single mode, one file per frame, read back by area-detector-handlers'
``AD_HDF5_SINGLE``).

The IOC writes under its own directories and this host sees them elsewhere:
``BeamlineConfig.ad_path_map`` ("IOCDIR=HOSTDIR", by default ``/tmp`` =
``/tmp/docker_ioc/iocad/tmp`` as in the example) gives the write and read path
templates.

The project's detector class differs from the example's in its trigger mixin only
(:class:`ReliableSingleTrigger`, ``bases=`` of ``ad_creator``): it never loses a
trigger to a fast IOC, a dead IOC ends the run instead of hanging it, and after the
IOC restarted the next stage sets the HDF5 plugin up again (directory creation,
priming) with no manual step.
"""

from __future__ import annotations

import pathlib
import threading
import time
import warnings

from apstools.devices import (
    AD_plugin_primed, SimDetectorCam_V34, SingleTrigger_V34, ad_creator,
    ensure_AD_plugin_primed,
)
from ophyd.areadetector.detectors import DetectorBase
from ophyd.areadetector.filestore_mixins import FileStoreHDF5SingleIterativeWrite
from ophyd.areadetector.plugins import HDF5Plugin_V34 as HDF5Plugin
from ophyd.areadetector.trigger_mixins import ADTriggerStatus
from ophyd.device import Staged
from ophyd.utils import InvalidState
from simbeamline_iocs.adsim.paths import PathMap

from ..control.config import BeamlineConfig
from .connect import make_lazy_signals
from .ioc_loss import Explained, IocLost, IocWatch

#: Our choice of file arrangement under the IOC's mapped directory.
IMAGE_DIR = "simbeamline/%Y/%m/%d"
#: Seconds allowed for priming the HDF5 plugin (apstools polls with no time limit).
PRIME_TIMEOUT = 60.0
#: Times priming is tried before giving up.
PRIME_ATTEMPTS = 3
#: HDF1:CreateDirectory as the example sets it: create up to 5 missing levels.
CREATE_DIRECTORY = -5
#: Seconds a trigger may take beyond AcquireTime and AcquirePeriod.
TRIGGER_MARGIN = 30.0
#: Seconds stage() waits for a restarted IOC's PVs to connect again.
RECONNECT_TIMEOUT = 30.0


def _gone(watch, settle: float = 2.0) -> bool:
    """Whether *watch*'s IOC is lost, giving Channel Access *settle* seconds to notice
    (another PV of a dead IOC may fail before the watched one reports it)."""
    deadline = time.monotonic() + settle
    while watch.alive:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)   # polling CA's view of the connection
    return True


def _forget_staging(device) -> None:
    """Mark *device* and its children unstaged, with no settings left to restore."""
    device._staged = Staged.no
    device._original_vals.clear()
    for attr in device._sub_devices:
        _forget_staging(getattr(device, attr))


def describe_write_error(message: str) -> str:
    """The IOC's WriteMessage, saying "disk full" when it is one."""
    if "No space left" in message or "ENOSPC" in message or "Errno 28" in message:
        return f"disk full (ENOSPC): {message}"
    return message or "no message from the IOC"


class ExplainedTriggerStatus(Explained, ADTriggerStatus):
    """ophyd's trigger status, whose failure reason reaches the stop document."""


class ReliableSingleTrigger(SingleTrigger_V34):
    """apstools' ``SingleTrigger_V34`` (AcquireBusy ends each trigger), made reliable.

    - ``trigger()`` returns the status it created. ophyd's returns ``self._status``,
      which the AcquireBusy 1 -> 0 callback may already have finished and cleared to
      None when the IOC is fast (HDF1 Compression None), and bluesky then aborts.
    - The status fails (naming the IOC) when the IOC disconnects, or after
      AcquireTime + AcquirePeriod + ``TRIGGER_MARGIN`` seconds, instead of never.
    - ``stage()`` waits for the IOC's PVs to connect again after it restarted, then
      re-applies CreateDirectory and primes the HDF5 plugin if it needs it (a
      restarted IOC has no array size yet: UnprimedPlugin).
    - ``unstage()`` of a detector whose IOC is gone forgets the staged settings
      (there is nothing to restore them on) instead of failing: the run's reason
      stays the lost IOC, and the next stage starts clean.
    """

    _status_type = ExplainedTriggerStatus

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ioc_watch = IocWatch(self._acquisition_busy_signal,
                                  f"the ADSimDetector IOC ({self.prefix})")

    def stage(self):
        if not self.connected:
            self.wait_for_connection(timeout=RECONNECT_TIMEOUT)
        if self.ioc_watch.restarted:
            self.ioc_watch.restarted = False
            self.hdf1.create_directory.put(CREATE_DIRECTORY)
        if not AD_plugin_primed(self.hdf1):     # a restarted IOC, or a failed priming
            _prime(self)
        return super().stage()

    def unstage(self):
        try:
            return super().unstage()
        except Exception:
            if not _gone(self.ioc_watch):
                raise
            self._acquisition_busy_signal.clear_sub(self._acquire_changed)
            _forget_staging(self)
            return [self]

    def pause(self):
        """The RunEngine pauses or suspends: it drops the event it was bundling, and
        with it the Resource document the event had collected (the run's first event
        carries it); a new Resource lets the retaken frames' events be read."""
        if self._staged == Staged.yes:
            self.hdf1.restart_resource()
        super().pause()

    def trigger(self):
        if self._staged != Staged.yes:
            raise RuntimeError("This detector is not ready to trigger. "
                               "Call the stage() method before triggering.")
        try:
            timeout = (float(self.cam.acquire_time.get()) + float(self.cam.acquire_period.get())
                       + TRIGGER_MARGIN)
        except Exception as exc:   # ECA_DISCONN (192), or not connected: the IOC is gone
            if "192" in str(exc) or "connect" in str(exc).lower():
                raise IocLost(self.ioc_watch.message()) from exc
            raise
        status = self._status_type(self, timeout=timeout)
        self._status = status
        self.ioc_watch.track(status)
        self._acquisition_signal.put(1, wait=False)
        self.generate_datum(self._image_name, time.time(), {})
        return status

    def _acquire_changed(self, value=None, old_value=None, **kwargs):
        status = self._status
        if status is None:
            return
        if old_value == 1 and value == 0:   # an acquisition just finished
            self._status = None
            if not status.done:   # CA reads do not belong in a CA callback: a thread
                threading.Thread(target=self._finish, args=(status,), daemon=True,
                                 name=f"{self.name}-written").start()

    def _finish(self, status) -> None:
        """Finish *status*, or fail it when HDF1 could not write the frame's file (disk
        full, ...): no event may point at a file that was never written."""
        try:
            failed = self.hdf1.write_status.get(as_string=True, use_monitor=False) != "Write OK"
            message = self.hdf1.write_message.get(as_string=True, use_monitor=False) if failed else ""
        except Exception as exc:   # the IOC is gone: the IOC watch names it
            failed, message = True, f"could not read HDF1's WriteStatus ({exc})"
        try:
            if failed:
                status.set_exception(OSError(
                    f"{self.name}: the HDF5 plugin ({self.hdf1.prefix}) did not write the "
                    f"frame's file: {describe_write_error(message)}"))
            else:
                status.set_finished()
        except InvalidState:       # the time limit or the IOC watch failed it first
            pass


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

    def restart_resource(self) -> None:
        """Start a new Resource for the frames still to come (same files, same
        numbering: ``FileStoreHDF5Single.stage``'s keywords)."""
        self._generate_resource({
            "template": self.file_template.get(),
            "filename": self.file_name.get(),
            "frame_per_point": self.get_frames_per_point(),
        })

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
    """Build ``adsimdet`` with every signal of cam1 and HDF1 made, none yet connected
    (:func:`..beamline.build_beamline` waits for them all, then calls
    :func:`prepare_adsimdet`)."""
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
    adsimdet = ad_creator(config.ad_prefix, name="adsimdet", plugins=plugins,
                          bases=(ReliableSingleTrigger, DetectorBase))
    # what prepare_adsimdet uses, made now so that their searches go out at once (the
    # image plugin's stay lazy: its shaped image fails to derive before a first frame)
    for plugin in (adsimdet.cam, adsimdet.hdf1):
        make_lazy_signals(plugin)
    return adsimdet


def prepare_adsimdet(adsimdet):
    """Check the connected ``adsimdet``'s plugins, record HDF1 and prime it."""
    missing = adsimdet.missing_plugins()
    if missing:
        warnings.warn(f"adsimdet: the IOC has plugins this device does not describe: {missing}")
    adsimdet.read_attrs.append("hdf1")
    adsimdet.hdf1.create_directory.put(CREATE_DIRECTORY)
    # priming reads and sets signals of cam1 and HDF1 that ophyd connects lazily, each
    # within its 1 s default in a process whose first signals predate the session's
    # defaults: connect them all now, within our own budget
    for device in (adsimdet.cam, adsimdet.hdf1):
        device.wait_for_connection(all_signals=True, timeout=PRIME_TIMEOUT)
    _prime(adsimdet)
    return adsimdet


def _prime(adsimdet) -> None:
    """``ensure_AD_plugin_primed`` with a time limit (it polls forever on a silent IOC),
    checked and repeated until the plugin is primed."""
    errors: list[BaseException] = []

    def prime():
        # apstools primes with a 1 s exposure and gives it 2 s: on a loaded machine
        # that may end before the frame reaches the plugin, so check and try again
        try:
            for _ in range(PRIME_ATTEMPTS):
                ensure_AD_plugin_primed(adsimdet.hdf1, True)
                if AD_plugin_primed(adsimdet.hdf1):
                    return
            raise RuntimeError(
                f"adsimdet: the HDF5 plugin ({adsimdet.hdf1.prefix}) is still not primed "
                f"after {PRIME_ATTEMPTS} attempts; check the ADSimDetector IOC's log")
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
