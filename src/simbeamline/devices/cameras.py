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

import threading
from pathlib import Path

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, EpicsMotor, EpicsSignal, EpicsSignalRO, Signal
from ophyd.status import DeviceStatus

from ..catalog.frame_store import FrameStore

#: Seconds allowed on top of the exposure for an acquisition and its frame read-back.
ACQUIRE_MARGIN = 30.0


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


class SpotCamera(Device):
    """A camera of the beamline IOC (``sim:spot:``, ``sim:dot:``).

    ``trigger()`` puts ``acquire`` with completion (the IOC returns after the
    exposure, with the frame computed at that moment), reads the frame over
    Channel Access, writes it as a file under the data directory and records a
    Datum; ``read()`` gives ``<name>_img`` (the datum id; external, shape
    (rows, columns)) and ``<name>_sum`` (hinted). ``exp`` is configuration.
    """

    exp = Cpt(EpicsSignal, "exp", kind="config")
    acquire = Cpt(EpicsSignal, "acquire", put_complete=True, kind="omitted")
    image = Cpt(EpicsSignalRO, "image", auto_monitor=False, kind="omitted")
    width = Cpt(EpicsSignalRO, "width", kind="omitted")
    height = Cpt(EpicsSignalRO, "height", kind="omitted")
    frame_counter = Cpt(EpicsSignalRO, "frame_counter", auto_monitor=False, kind="omitted")
    img = Cpt(ExternalFrame, value="", kind="normal")
    sum = Cpt(EpicsSignalRO, "sum", auto_monitor=False, kind="hinted")

    def __init__(self, prefix: str = "", *, name: str, data_dir: Path | str, **kwargs):
        super().__init__(prefix, name=name, **kwargs)
        self.store = FrameStore(Path(data_dir))
        self._shape: tuple[int, int] | None = None

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(rows, columns) of a frame, as the IOC reports them."""
        if self._shape is None:
            self._shape = (int(self.height.get()), int(self.width.get()))
        return self._shape

    def stage(self):
        self._shape = None  # a restarted IOC may serve another frame size
        self.store.new_resource()
        return super().stage()

    def unstage(self):
        self.store.close_resource()
        return super().unstage()

    def trigger(self) -> DeviceStatus:
        status = DeviceStatus(self, timeout=float(self.exp.get()) + ACQUIRE_MARGIN)
        threading.Thread(target=self._acquire, args=(status,), daemon=True,
                         name=f"{self.name}-acquire").start()
        return status

    def _acquire(self, status: DeviceStatus) -> None:
        """Acquire one frame, store it, point ``img`` at it; finish *status* either way."""
        try:
            timeout = float(self.exp.get()) + ACQUIRE_MARGIN
            self.acquire.set(1, timeout=timeout).wait(timeout)
            rows, columns = self.frame_shape
            flat = self.image.get(timeout=ACQUIRE_MARGIN)
            if flat is None or np.size(flat) != rows * columns:
                raise RuntimeError(
                    f"{self.image.pvname} gave {np.size(flat)} values, expected "
                    f"{rows} x {columns}; is EPICS_CA_MAX_ARRAY_BYTES large enough "
                    "(simbeamline.control.ca_env.apply_client_env sets it)?"
                )
            frame = np.asarray(flat, dtype=np.int32).reshape(rows, columns)
            self.img.put(self.store.write(frame))
        except Exception as exc:  # reported through the status, to the RunEngine
            status.set_exception(exc)
        else:
            status.set_finished()

    def collect_asset_docs(self):
        yield from self.store.collect_asset_docs()


def current(prefix: str) -> EpicsSignalRO:
    """The ring current ``I`` (mA): hinted, as in the tutorials (``I.kind = 'normal'`` un-hints it)."""
    return EpicsSignalRO(f"{prefix}current", name="I", kind="hinted")


def motor(prefix: str, axis: str) -> EpicsMotor:
    """The motor record ``<prefix>m:<axis>``, named ``motor_<axis>``."""
    return EpicsMotor(f"{prefix}m:{axis}", name=f"motor_{axis}")


def shutter(prefix: str) -> EpicsSignal:
    """The shutter: set ``'Open'``/``'Closed'`` (completes when done), read back ``shutter_RBV``."""
    return EpicsSignal(f"{prefix}shutter_RBV", write_pv=f"{prefix}shutter",
                       put_complete=True, string=True, name="shutter")


def spot_camera(prefix: str, which: str, data_dir: Path) -> SpotCamera:
    """The camera ``<prefix><which>:`` named *which*, its frames under *data_dir*."""
    return SpotCamera(f"{prefix}{which}:", name=which, data_dir=data_dir)
