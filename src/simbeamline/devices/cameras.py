"""ophyd devices of the simulated beamline.

- :class:`SpotCamera` (``spot``, ``dot``): a triggered camera whose frames are
  stored as files with Resource/Datum documents in ophyd's ``NPY_SEQ`` spec,
  which ophyd itself registers as a databroker handler (``ophyd.sim.NumpySeqHandler``,
  entry point ``databroker.handlers``), so ``fill=True`` and ``h.data(...)`` need no
  handler code of ours. That handler returns the 2-D (rows, columns) frame, matching
  the data key's shape; area-detector-handlers' AD_* handlers return a stacked
  (1, rows, columns) array, which breaks ``out += im / cur`` with a (480, 640)
  ``out`` and databroker v2's ``primary.read()``.
- ``I`` (ring current), six :class:`ophyd.EpicsMotor`, ``shutter``.
- ``adsimdet``: the ADSimDetector built with apstools' ``ad_creator`` exactly as in
  the APS "Area Detector, Single mode, HDF5 file" example.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, EpicsMotor, EpicsSignal, EpicsSignalRO, Signal
from ophyd.utils import InvalidState
from ophyd.status import DeviceStatus

from ..catalog.frame_store import FrameStore
from .ioc_loss import ExplainedStatus, IocLost, IocWatch

#: Seconds allowed on top of the exposure for an acquisition and its frame read-back.
ACQUIRE_MARGIN = 30.0
#: Seconds an exposure ``set`` may take before failing (it takes milliseconds).
SET_TIMEOUT = 10.0
#: Seconds stage() waits for the IOC's PVs to connect again after it restarted.
RECONNECT_TIMEOUT = 30.0


class ExternalFrame(Signal):
    """The datum id of the camera's latest frame, described as an external array."""

    def describe(self):
        description = super().describe()
        description[self.name].update(
            dtype="array",
            shape=list(self.parent.frame_shape),
            dtype_numpy=np.dtype(np.int32).str,  # the frame files' dtype (Tiled reads it)
            external="FILESTORE:",
            source=f"PV:{self.parent.image.pvname}",
        )
        return description


class Exposure(EpicsSignal):
    """The exposure time: a value the IOC would refuse fails at once, with a clear
    error (an ophyd ``set`` of a refused value would wait for ever for the readback,
    and every later ``set`` fail with "Another set() call is still in progress")."""

    def check_value(self, value, **kwargs):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{self.name}: exposure {value!r} must be a positive, finite "
                             "number of seconds")
        low, high = self.limits
        if high > low and value > high:
            raise ValueError(f"{self.name}: exposure {value!r} s is longer than the "
                             f"camera's maximum, {high:g} s")
        super().check_value(value, **kwargs)

    def set(self, value, **kwargs):
        self.check_value(value)     # in the caller's thread: RE(mv(...)) raises it
        kwargs.setdefault("timeout", SET_TIMEOUT)
        return super().set(value, **kwargs)


class SpotCamera(Device):
    """A camera of the beamline IOC (``sim:spot:``, ``sim:dot:``).

    ``trigger()`` puts ``acquire`` with completion (the IOC returns after the
    exposure, with the frame computed at that moment), takes the frame, writes it as
    a file under the data directory and records a Datum; ``read()`` gives
    ``<name>_img`` (the datum id; external, shape (rows, columns)) and ``<name>_sum``
    (hinted). ``exp`` is configuration.

    The frame, its sum and the frame counter arrive as CA monitors, which the IOC
    sends as it posts them, while it finishes the acquisition: no read after it.
    The IOC posts the image, then the sum, then the counter, and CA keeps a
    circuit's monitors in order (so does ophyd, which delivers them all from one
    thread), so once the monitored counter shows a frame, ``image`` and ``sum`` hold
    that frame's. One CA read of the counter after the put tells a finished
    acquisition from an aborted one (pyepics completes a put the IOC refused).

    If the IOC dies during an acquisition, the trigger fails at once with a reason
    naming it (:class:`~.ioc_loss.IocWatch`); after it restarted, ``stage()`` waits
    for the camera's PVs to connect again.
    """

    exp = Cpt(Exposure, "exp", auto_monitor=True, kind="config")
    acquire = Cpt(EpicsSignal, "acquire", put_complete=True, kind="omitted")
    image = Cpt(EpicsSignalRO, "image", auto_monitor=True, kind="omitted")
    width = Cpt(EpicsSignalRO, "width", kind="omitted")
    height = Cpt(EpicsSignalRO, "height", kind="omitted")
    frame_counter = Cpt(EpicsSignalRO, "frame_counter", auto_monitor=True, kind="omitted")
    img = Cpt(ExternalFrame, value="", kind="normal")
    sum = Cpt(EpicsSignalRO, "sum", auto_monitor=True, kind="hinted")

    def __init__(self, prefix: str = "", *, name: str, data_dir: Path | str, **kwargs):
        super().__init__(prefix, name=name, **kwargs)
        self.store = FrameStore(Path(data_dir))
        self._shape: tuple[int, int] | None = None
        #: seconds allowed on top of the exposure before a hung acquisition is aborted
        self.acquire_margin = ACQUIRE_MARGIN
        self.ioc_watch = IocWatch(self.acquire, f"the beamline IOC serving {prefix}")
        #: (monitor updates of the frame counter so far, the last one's value); the
        #: image and sum monitors of that frame came before it
        self._delivered = (0, None)
        self._frames_arrived = threading.Condition()
        self.frame_counter.subscribe(self._frame_arrived, run=False)

    def _frame_arrived(self, *, value, **kwargs):
        with self._frames_arrived:
            self._delivered = (self._delivered[0] + 1, value)
            self._frames_arrived.notify_all()

    def _wait_for_frame(self, number: int, after: int, timeout: float) -> None:
        """Wait until a frame counter monitor later than update *after* has delivered
        frame *number* or a later one.

        Not ``frame_counter.get()``: pyepics' cache of a monitored PV also takes the
        value of a plain CA read, which runs ahead of the monitors.
        """
        def arrived():
            updates, value = self._delivered
            return updates > after and value is not None and value >= number

        with self._frames_arrived:
            if not self._frames_arrived.wait_for(arrived, timeout):
                raise RuntimeError(
                    f"{self.frame_counter.pvname}: frame {number} was taken but its "
                    f"monitor did not arrive within {timeout:g} s; is the client's CA "
                    "connection to the beamline IOC stalled?")

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(rows, columns) of a frame, as the IOC reports them."""
        if self._shape is None:
            self._shape = (int(self.height.get()), int(self.width.get()))
        return self._shape

    def stage(self):
        if not self.connected:
            self.wait_for_connection(timeout=RECONNECT_TIMEOUT)
        self._shape = None  # a restarted IOC may serve another frame size
        self.store.new_resource()
        return super().stage()

    def unstage(self):
        self.store.close_resource()
        return super().unstage()

    def pause(self):
        """Called by the RunEngine as it pauses or suspends (see ``restart_resource``)."""
        self.store.restart_resource()
        super().pause()

    def trigger(self) -> ExplainedStatus:
        # the acquiring thread's own time-out (which says why) comes first
        exposure = float(self.exp.get())     # the monitored value: no CA read an event
        status = ExplainedStatus(self, timeout=exposure + 2 * self.acquire_margin)
        self.ioc_watch.track(status)
        threading.Thread(target=self._acquire, args=(status, exposure), daemon=True,
                         name=f"{self.name}-acquire").start()
        return status

    def _acquire(self, status: ExplainedStatus, exposure: float) -> None:
        """Acquire one frame of *exposure* s, store it, point ``img`` at it; finish
        *status* either way."""
        try:
            timeout = exposure + self.acquire_margin
            frames_before = self.frame_counter.get()
            updates_before = self._delivered[0]
            try:
                self.acquire.set(1, timeout=timeout).wait(timeout)
            except Exception as exc:
                self.stop()             # a hung acquisition: abort it on the IOC
                raise RuntimeError(
                    f"{self.name}: the {exposure:g} s acquisition did not finish within "
                    f"{timeout:g} s and was aborted ({exc or type(exc).__name__}); is the "
                    "camera hung? ('simbeamline fault list' shows injected faults)") from exc
            frames_now = self.frame_counter.get(use_monitor=False)
            if frames_now == frames_before:
                raise RuntimeError(f"{self.acquire.pvname}: the acquisition was aborted "
                                   "(acquire=0) before its frame was taken")
            self._wait_for_frame(frames_now, updates_before, self.acquire_margin)
            rows, columns = self.frame_shape
            flat = self.image.get()
            if flat is None or np.size(flat) != rows * columns:
                raise RuntimeError(
                    f"{self.image.pvname} gave {np.size(flat)} values, expected "
                    f"{rows} x {columns}; is EPICS_CA_MAX_ARRAY_BYTES large enough "
                    "(simbeamline.control.ca_env.apply_client_env sets it)?"
                )
            frame = np.asarray(flat, dtype=np.int32).reshape(rows, columns)
            self.img.put(self.store.write(frame))
        except Exception as exc:  # reported through the status, to the RunEngine
            if not self.acquire.connected:
                exc = IocLost(self.ioc_watch.message())
            try:
                status.set_exception(exc)
            except InvalidState:    # the IOC watch failed it first
                pass
        else:
            status.set_finished()

    def stop(self, *, success: bool = False):
        """Abort an acquisition in progress (the IOC fails its put: no frame)."""
        self.acquire.put(0, use_complete=False)
        super().stop(success=success)

    def collect_asset_docs(self):
        yield from self.store.collect_asset_docs()


def current(prefix: str) -> EpicsSignalRO:
    """The ring current ``I`` (mA): hinted, as in the tutorials (``I.kind = 'normal'`` un-hints it)."""
    return EpicsSignalRO(f"{prefix}current", name="I", kind="hinted")


class BeamlineMotor(EpicsMotor):
    """ophyd's ``EpicsMotor`` whose move fails at once, naming the IOC, if the IOC
    dies during the move (an ``EpicsMotor`` move status would wait for ever)."""

    def __init__(self, prefix="", **kwargs):
        super().__init__(prefix, **kwargs)
        self.ioc_watch = IocWatch(self.user_readback, f"the beamline IOC serving {prefix}")

    def move(self, position, wait=True, **kwargs):
        status = super().move(position, wait=False, **kwargs)
        self.ioc_watch.track(status)
        try:
            if wait:
                status.wait()
        except KeyboardInterrupt:
            self.stop()
            raise
        return status


def motor(prefix: str, axis: str) -> EpicsMotor:
    """The motor record ``<prefix>m:<axis>``, named ``motor_<axis>``."""
    return BeamlineMotor(f"{prefix}m:{axis}", name=f"motor_{axis}")


class Shutter(EpicsSignal):
    """An EpicsSignal whose ``set`` fails unless the readback shows the new state.

    The IOC completes the put once the blade has moved, so the readback is checked
    right then: a shutter held by its PSS interlock ignores the command, and the
    move fails saying so rather than letting a plan take "darks" with the beam on.
    """

    def set(self, value, **kwargs):
        inner = super().set(value, **kwargs)
        status = DeviceStatus(self)

        def check(done):
            if done.exception() is not None:
                status.set_exception(done.exception())
                return
            readback = self._read_pv.get(as_string=True, use_monitor=False)
            if readback == value:
                status.set_finished()
                return
            interlock = self._interlock.get(as_string=True, use_monitor=False)
            status.set_exception(RuntimeError(
                f"shutter did not move to {value!r}: it reads {readback!r} (PSS interlock "
                f"{interlock!r}); clear the interlock ('simbeamline fault clear "
                "shutter_stuck' on the simulator) and try again"))

        inner.add_callback(check)
        return status

    def __init__(self, prefix: str, **kwargs):
        import epics

        super().__init__(f"{prefix}shutter_RBV", write_pv=f"{prefix}shutter",
                         put_complete=True, string=True, **kwargs)
        self._interlock = epics.get_pv(f"{prefix}shutter:interlock", form="native")


def shutter(prefix: str) -> Shutter:
    """The shutter: set ``'Open'``/``'Closed'`` (completes when done, fails if the
    readback does not follow), read back ``shutter_RBV``."""
    return Shutter(prefix, name="shutter")


def shutter_interlock(prefix: str) -> EpicsSignalRO:
    """The shutter's PSS interlock (1: tripped), which the session's suspender watches."""
    return EpicsSignalRO(f"{prefix}shutter:interlock", name="shutter_interlock")


def time_scale(prefix: str) -> EpicsSignal:
    """The simulation clock's time scale (1: real time), recorded in every run."""
    return EpicsSignal(f"{prefix}time_scale", name="time_scale")


def spot_camera(prefix: str, which: str, data_dir: Path) -> SpotCamera:
    """The camera ``<prefix><which>:`` named *which*, its frames under *data_dir*."""
    return SpotCamera(f"{prefix}{which}:", name=which, data_dir=data_dir)
