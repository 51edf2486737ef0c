"""An ADSimDetector IOC process of a test's own, on CA port 5082, talked to with
caproto's synchronous client.

The shared beamline (conftest) runs on the session's port; some tests need an IOC
started differently (its own path map, a file-size limit). pyepics reads the
address list once, when its context starts, so it cannot be pointed at a port
chosen later; caproto's synchronous client reads EPICS_CA_ADDR_LIST at every
search, so the fixture adds ``127.0.0.1:5082`` to it while the IOC runs. (No
caproto-repeater is spawned: the tests leave no process behind.)

Its searches are resent as libca resends them (:mod:`ca_search`, installed by conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
from caproto import ChannelType
from caproto.sync.client import read, write

from adsim_support import AD
from waiting import wait_for

TIMEOUT = 30.0
#: The port of these extra IOCs (the tests' second port).
EXTRA_PORT = int(os.environ.get("SIMBEAMLINE_EXTRA_CA_PORT", "5082"))
HOST = "127.0.0.1"


class CaprotoAD(AD):
    """The :class:`adsim_support.AD` helpers over caproto's synchronous client."""

    def _read(self, suffix: str, data_type="native"):
        return read(self.name(suffix), data_type=data_type, timeout=TIMEOUT, repeater=False)

    def get(self, suffix: str, as_string: bool = False, count=None, **kw):
        if as_string:
            return self.string(suffix)
        data = self._read(suffix).data
        if count is None and len(data) == 1:
            return data[0]
        return data

    def string(self, suffix: str) -> str:
        response = self._read(suffix)
        if response.data_type in (ChannelType.ENUM, ChannelType.TIME_ENUM,
                                  ChannelType.CTRL_ENUM):
            response = self._read(suffix, data_type=ChannelType.STRING)
        data = response.data
        if response.data_type in (ChannelType.CHAR, ChannelType.TIME_CHAR):
            return bytes(data).split(b"\0", 1)[0].decode()
        value = data[0]
        return value.decode() if isinstance(value, bytes) else str(value)

    def put(self, suffix: str, value, wait: bool = True, timeout: float = TIMEOUT):
        if isinstance(value, str) and self._read(suffix).data_type == ChannelType.CHAR:
            value = value.encode() + b"\0"       # a long string (CHAR waveform)
        write(self.name(suffix), value, notify=wait, timeout=timeout, repeater=False)


class ExtraADSimIOC:
    """``python -m simbeamline_iocs.adsim`` on 127.0.0.1:5082 with its own arguments
    and environment; a context manager that yields a :class:`CaprotoAD`.

    *env* updates the inherited environment (a value of None removes a variable);
    *preexec_fn* runs in the child before the IOC starts (e.g. a resource limit).
    """

    def __init__(self, args=(), *, env=None, preexec_fn=None, log_path: Path | None = None,
                 prefix: str | None = None):
        self.prefix = prefix or f"x{uuid.uuid4().hex[:6]}:"
        self.args = list(args)
        self.env = env or {}
        self.preexec_fn = preexec_fn
        self.log_path = log_path
        self.proc = None
        self._old_addr_list = None

    def __enter__(self) -> CaprotoAD:
        env = dict(os.environ)
        env.update({"EPICS_CA_SERVER_PORT": str(EXTRA_PORT), "EPICS_CAS_SERVER_PORT": str(EXTRA_PORT),
                    "EPICS_CAS_INTF_ADDR_LIST": HOST, "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
                    "EPICS_CAS_BEACON_ADDR_LIST": "127.255.255.255",
                    # no shutter/stage to follow: this IOC stands alone
                    "SIMBEAMLINE_PREFIX": "standalone5082:"})
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simbeamline_iocs.adsim", "--prefix", self.prefix, *self.args],
            env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=self.preexec_fn)
        if log is not subprocess.DEVNULL:
            log.close()
        self._old_addr_list = os.environ.get("EPICS_CA_ADDR_LIST")
        address = f"{HOST}:{EXTRA_PORT}"
        if address not in (self._old_addr_list or "").split():
            os.environ["EPICS_CA_ADDR_LIST"] = f"{self._old_addr_list or ''} {address}".strip()
        ad = CaprotoAD(self.prefix)
        try:
            wait_for(lambda: self.proc.poll() is not None or self._answers(ad), 60,
                     f"the extra IOC {self.prefix} on port {EXTRA_PORT} to answer")
            assert self.proc.poll() is None, f"the extra IOC exited with {self.proc.returncode}"
        except BaseException:
            self.__exit__()
            raise
        return ad

    @staticmethod
    def _answers(ad: CaprotoAD) -> bool:
        try:
            read(ad.name("cam1:Acquire_RBV"), timeout=1.0, repeater=False)
            return True
        except Exception:
            return False

    def __exit__(self, *exc):
        if self._old_addr_list is None:
            os.environ.pop("EPICS_CA_ADDR_LIST", None)
        else:
            os.environ["EPICS_CA_ADDR_LIST"] = self._old_addr_list
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def noiseless_peak(ad, *, start=(20, 14), width=(9, 5)) -> None:
    """One Peaks-mode peak at *start* (x, y), *width* (x, y) wide, with no noise and no
    peak variation: the same camera settings give the same frame, so a frame read from
    SIM1 in one acquisition is a plugin's input in the next."""
    for suffix, value in (("cam1:Noise", 0), ("cam1:PeakVariation", 0), ("cam1:Gain", 1),
                          ("cam1:PeakStartX", start[0]), ("cam1:PeakStartY", start[1]),
                          ("cam1:PeakWidthX", width[0]), ("cam1:PeakWidthY", width[1]),
                          ("cam1:PeakNumX", 1), ("cam1:PeakNumY", 1)):
        ad.put(suffix, value)


def read_image(ad, port: str) -> np.ndarray:
    """One acquisition with image1 reading *port*: the array it got, shaped as its dims
    say (rows x columns for Mono; the colour axis where RGB1/2/3 put it).
    (Put-completion returns after every plugin took the frame, WaitForPlugins.)"""
    ad.put("image1:NDArrayPort", port)
    before = ad.get("image1:ArrayCounter_RBV")
    ad.acquire()
    wait_for(lambda: ad.get("image1:ArrayCounter_RBV") == before + 1, TIMEOUT,
             f"image1 to take a frame from {port}")
    n = ad.get("image1:NDimensions_RBV")
    dims = [int(d) for d in ad.get("image1:Dimensions_RBV")[:n]]
    count = int(np.prod(dims))
    return np.asarray(ad.get("image1:ArrayData", count=count))[:count].reshape(dims[::-1])
