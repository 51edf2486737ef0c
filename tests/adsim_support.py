"""Helpers for the ADSimDetector IOC tests: Channel Access puts/gets with pyepics,
a wait-for-condition, acquisition set-ups, and the host path of an IOC directory.
(An extra IOC process of a test's own: :mod:`adsim_extra`.)"""

from __future__ import annotations

from pathlib import Path

import epics
from simbeamline_iocs.adsim.paths import PathMap
from waiting import wait_for  # noqa: F401  (re-exported for the adsim tests)

TIMEOUT = 30.0


class AD:
    """The PVs of one ADSimDetector IOC (by prefix)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def name(self, suffix: str) -> str:
        return self.prefix + suffix

    def get(self, suffix: str, as_string: bool = False, **kw):
        value = self.pv(suffix).get(as_string=as_string, timeout=TIMEOUT, use_monitor=False, **kw)
        assert value is not None, f"no answer from {self.name(suffix)}"
        return value

    def pv(self, suffix: str) -> epics.PV:
        # form="native": PV objects of our own, apart from the ones ophyd caches
        pv = epics.get_pv(self.name(suffix), form="native")
        assert pv.wait_for_connection(TIMEOUT), f"no answer from {self.name(suffix)}"
        return pv

    def put(self, suffix: str, value, wait: bool = True, timeout: float = TIMEOUT):
        pv = self.pv(suffix)
        if isinstance(value, str) and pv.type.endswith("enum"):
            # pyepics sends a string to an enum only once it knows the states
            value = list(pv.get_ctrlvars()["enum_strs"]).index(value)
        status = pv.put(value, wait=wait, timeout=timeout)
        assert status in (1, None), f"put {self.name(suffix)}={value!r} failed ({status})"

    def put_refused(self, suffix: str, value) -> bool:
        """True if the IOC refuses the put (caproto's client reports the put's error)."""
        from caproto import ErrorResponseReceived
        from caproto.sync.client import write

        try:
            write(self.name(suffix), value, notify=True, timeout=TIMEOUT, repeater=False)
        except ErrorResponseReceived:
            return True
        return False

    def string(self, suffix: str) -> str:
        """The value as a string. Long strings (CHAR waveforms) are read with caproto's
        client, which asks for the current length (pyepics asks for the length its
        last monitor saw, which may be shorter)."""
        pv = self.pv(suffix)
        if pv.type.endswith("char"):
            from caproto.sync.client import read

            data = read(self.name(suffix), timeout=TIMEOUT, repeater=False).data
            return bytes(data).split(b"\0", 1)[0].decode()
        return self.get(suffix, as_string=True)

    def wait_for(self, suffix: str, predicate, timeout: float = TIMEOUT, as_string=True):
        read = self.string if as_string else self.get
        return wait_for(lambda: predicate(read(suffix)), timeout,
                        f"{self.name(suffix)}")

    # -- set-ups ---------------------------------------------------------------
    def camera(self, *, exposure=0.01, period=0.015, mode="Single", num_images=1,
               wait_for_plugins="Yes", sim_mode="Peaks", data_type="UInt8", size=(1024, 1024)):
        for suffix, value in (("cam1:Acquire", 0), ("cam1:ImageMode", mode),
                              ("cam1:NumImages", num_images), ("cam1:AcquireTime", exposure),
                              ("cam1:AcquirePeriod", period), ("cam1:ArrayCallbacks", "Enable"),
                              ("cam1:WaitForPlugins", wait_for_plugins),
                              ("cam1:SimMode", sim_mode), ("cam1:DataType", data_type),
                              ("cam1:MinX", 0), ("cam1:MinY", 0), ("cam1:BinX", 1), ("cam1:BinY", 1),
                              ("cam1:SizeX", size[0]), ("cam1:SizeY", size[1])):
            self.put(suffix, value)

    def hdf(self, ioc_dir: str, *, mode="Single", name="frame", template="%s%s_%6.6d.h5",
            compression="None", number=0, auto_save="Yes", num_capture=1, lazy_open="Yes",
            create_directory=-5, blocking="No"):
        for suffix, value in (("HDF1:EnableCallbacks", "Enable"), ("HDF1:NDArrayPort", "SIM1"),
                              ("HDF1:BlockingCallbacks", blocking),
                              ("HDF1:Capture", 0), ("HDF1:FileWriteMode", mode),
                              ("HDF1:CreateDirectory", create_directory),
                              ("HDF1:FilePath", ioc_dir), ("HDF1:FileName", name),
                              ("HDF1:FileTemplate", template), ("HDF1:FileNumber", number),
                              ("HDF1:AutoIncrement", "Yes"), ("HDF1:AutoSave", auto_save),
                              ("HDF1:Compression", compression), ("HDF1:NumCapture", num_capture),
                              ("HDF1:LazyOpen", lazy_open), ("HDF1:StorePerform", "No")):
            self.put(suffix, value)

    def plugin(self, name: str, enable=True):
        self.put(f"{name}:NDArrayPort", "SIM1")
        self.put(f"{name}:EnableCallbacks", "Enable" if enable else "Disable")
        self.put(f"{name}:BlockingCallbacks", "No")

    def acquire(self, timeout: float = TIMEOUT):
        """Acquire with put-completion: returns once Acquire_RBV is Done again."""
        self.put("cam1:Acquire", 1, wait=True, timeout=timeout)


def host_dir(config, ioc_dir: str) -> Path:
    """Where the test beamline's IOC writes what it calls *ioc_dir*."""
    path_map = PathMap.parse(config.ad_path_map)
    assert path_map.covers(ioc_dir), f"{ioc_dir} is outside the path map {path_map}"
    return Path(path_map.to_host(ioc_dir))
