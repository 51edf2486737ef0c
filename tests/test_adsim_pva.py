"""Pva1 (NDPluginPva) publishing frames as NTNDArrays over PV Access, against real IOC
processes: an ADSim IOC of the module's own (caproto on 127.0.0.1:EXTRA_PORT, its PVA
server on the ports derived from that) and the test beamline's, found the way the
README says.

Checked with p4p's client reaching only the IOC under test: each frame received over
PVA equals image1:ArrayData of the same UniqueId (UInt8, UInt16, Float32; image1 is a
FLOAT waveform here, which holds all three exactly), with its dims, time, codec and
ColorMode attribute, and Pva1's CA counters follow; a disabled Pva1 publishes nothing;
a client killed mid-acquisition or stopped (SIGSTOP) leaves the IOC acquiring, the
stopped one costing the IOC a bounded amount of memory; SIGTERM and SIGINT end the
IOC promptly with PVA clients connected.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import uuid
import warnings

import numpy as np
import pytest
from p4p.client.thread import Context

from adsim_extra import EXTRA_PORT, HOST, ExtraADSimIOC
from simbeamline_iocs.adsim.pva_address import client_conf, pva_ports
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (48, 64)        # rows, columns
BIG = (1024, 1024)      # 2 MB a frame in UInt16: the stalled-client test
TIMEOUT = 30.0
#: Most the IOC's resident memory may grow while a stopped PVA client is sent 60 frames
#: of 2 MB (120 MB if the IOC kept them all; a few frames per subscription if bounded).
STALL_GROWTH_MB = 40


@pytest.fixture(scope="class")
def ioc():
    """The ADSim IOC of :class:`TestPva1`; image1 as FLOAT so it holds UInt16 and Float32
    frames. Class-scoped: stopped before the signal tests start their own on its port."""
    server = ExtraADSimIOC(["--image-ftvl", "FLOAT"], prefix=f"pva{uuid.uuid4().hex[:6]}:")
    with server as ad:
        server.ad = ad
        ad.plugin("image1")
        ad.plugin("Pva1")
        yield server


@pytest.fixture(scope="class")
def pva(ioc):
    """A p4p client that searches only that IOC's PVA server (raw Values)."""
    with Context("pva", conf=client_conf(HOST, EXTRA_PORT), useenv=False, nt=False) as ctx:
        yield ctx


def image_name(ad) -> str:
    return ad.name("Pva1:Image")


def shaped(value) -> np.ndarray:
    """The pixels of an NTNDArray Value as numpy rows x columns (dims are x first)."""
    return np.asarray(value.value).reshape([d.size for d in reversed(value.dimension)])


def single_frames(ad, data_type, n=2):
    ad.camera(size=SHAPE[::-1], data_type=data_type)
    for _ in range(n):
        ad.acquire()   # put-completion after every plugin took the frame (WaitForPlugins)
        yield ad.get("cam1:ArrayCounter_RBV")


def test_pva_address_is_derived_from_the_ca_port():
    assert pva_ports(5064) == (15064, 15065)
    assert client_conf("127.0.0.3", 5064)["EPICS_PVA_NAME_SERVERS"] == "127.0.0.3:15064"
    # a class of beamlines (CA ports 5600 + 2(n-1), repeaters odd) keeps its PVA ports apart
    ca = {port + k for port in range(5600, 5660, 2) for k in (0, 1)}
    pvas = [p for port in range(5600, 5660, 2) for p in pva_ports(port)]
    assert len(set(pvas)) == len(pvas) and not ca & set(pvas)


CLIENT = """
import json, sys, threading
from p4p.client.thread import Context
ctx = Context("pva", conf=json.loads(sys.argv[1]), useenv=False, nt=False)
ctx.monitor(sys.argv[2], lambda v: print(getattr(v, "uniqueId", type(v).__name__), flush=True))
threading.Event().wait()
"""


def start_client(ad) -> subprocess.Popen:
    """A PVA monitor of Pva1:Image in a process of its own; returns once it has
    received a value (it prints each uniqueId)."""
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, json.dumps(client_conf(HOST, EXTRA_PORT)),
                             image_name(ad)], stdout=subprocess.PIPE, text=True)
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(TIMEOUT):
            proc.kill()
            proc.wait()
            raise AssertionError(f"the PVA client received nothing within {TIMEOUT} s")
    assert proc.stdout.readline().strip().isdigit()
    return proc


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class TestPva1:
    """Pva1 of an IOC of the class's own, seen by a p4p client."""

    def test_each_frame_over_pva_equals_image1(self, ioc, pva):
        ad = ioc.ad
        assert ad.string("Pva1:PvName_RBV") == image_name(ad)
        received = {}
        sub = pva.monitor(image_name(ad), lambda v: received.setdefault(v.uniqueId, v)
                          if not isinstance(v, Exception) else None)
        try:
            for data_type, dtype in (("UInt8", np.uint8), ("UInt16", np.uint16),
                                     ("Float32", np.float32)):
                before = ad.get("Pva1:ArrayCounter_RBV")
                for n, uid in enumerate(single_frames(ad, data_type), 1):
                    assert ad.get("image1:UniqueId_RBV") == uid
                    image = np.asarray(ad.get("image1:ArrayData", count=SHAPE[0] * SHAPE[1]))
                    value = wait_for(lambda: received.get(uid), TIMEOUT,
                                     f"frame {uid} ({data_type}) over PVA")
                    frame = shaped(value)
                    assert frame.dtype == dtype and frame.shape == SHAPE
                    np.testing.assert_array_equal(frame.astype(np.float32), image.reshape(SHAPE))
                    assert [(d.size, d.offset, d.fullSize, d.binning) for d in value.dimension] \
                        == [(SHAPE[1], 0, SHAPE[1], 1), (SHAPE[0], 0, SHAPE[0], 1)]
                    assert value.codec.name == "" and value.uncompressedSize == frame.nbytes
                    assert {a.name: a.value for a in value.attribute} == {"ColorMode": 0}
                    stamp = value.dataTimeStamp.secondsPastEpoch + value.dataTimeStamp.nanoseconds * 1e-9
                    assert stamp == pytest.approx(ad.get("Pva1:TimeStamp_RBV") + 631152000, abs=1e-6)
                    # Pva1's CA side counts the frame as every plugin does
                    assert ad.get("Pva1:ArrayCounter_RBV") == before + n
                    assert ad.get("Pva1:UniqueId_RBV") == uid
                    assert ad.string("Pva1:DataType_RBV") == data_type
                    assert (ad.get("Pva1:ArraySizeX_RBV"), ad.get("Pva1:ArraySizeY_RBV")) == SHAPE[::-1]
                assert len({v.uniqueId for v in received.values()}) >= 2
            # the frames differ (Peaks with noise), so equality above compared real data
            first, last = sorted(received)[0], sorted(received)[-1]
            assert not np.array_equal(shaped(received[first]).astype(np.float32),
                                      shaped(received[last]).astype(np.float32))
        finally:
            sub.close()


    def test_disabled_pva1_publishes_nothing(self, ioc, pva):
        ad = ioc.ad
        ad.camera(size=SHAPE[::-1])
        ad.acquire()
        latest = pva.get(image_name(ad), timeout=TIMEOUT).uniqueId
        assert latest == ad.get("cam1:ArrayCounter_RBV")
        counter = ad.get("Pva1:ArrayCounter_RBV")
        ad.put("Pva1:EnableCallbacks", "Disable")
        try:
            uids = list(single_frames(ad, "UInt8"))
            assert ad.get("image1:UniqueId_RBV") == uids[-1]   # the frames went to image1
            assert pva.get(image_name(ad), timeout=TIMEOUT).uniqueId == latest
            assert ad.get("Pva1:ArrayCounter_RBV") == counter
        finally:
            ad.put("Pva1:EnableCallbacks", "Enable")
        uid, = single_frames(ad, "UInt8", n=1)
        wait_for(lambda: pva.get(image_name(ad), timeout=TIMEOUT).uniqueId == uid, TIMEOUT,
                 "a re-enabled Pva1 to publish again")


    def test_client_killed_mid_acquisition_leaves_the_ioc_acquiring(self, ioc, pva):
        ad = ioc.ad
        ad.camera(size=SHAPE[::-1], mode="Continuous", wait_for_plugins="No")
        client = start_client(ad)
        ad.put("cam1:Acquire", 1, wait=False)
        try:
            start = ad.get("Pva1:ArrayCounter_RBV")
            wait_for(lambda: ad.get("Pva1:ArrayCounter_RBV") >= start + 3, TIMEOUT, "Pva1 to publish")
            client.kill()                      # gone without a goodbye, mid-acquisition
            client.wait()
            gone = ad.get("Pva1:ArrayCounter_RBV")
            wait_for(lambda: ad.get("Pva1:ArrayCounter_RBV") >= gone + 10, TIMEOUT,
                     "Pva1 to go on publishing after its client died")
            assert ad.string("cam1:Acquire_RBV") == "Acquiring"
        finally:
            ad.put("cam1:Acquire", 0)
            if client.poll() is None:
                client.kill()
                client.wait()
        ad.wait_for("cam1:Acquire_RBV", lambda v: v == "Done")
        uid, = single_frames(ad, "UInt8", n=1)
        wait_for(lambda: pva.get(image_name(ad), timeout=TIMEOUT).uniqueId == uid, TIMEOUT,
                 "Pva1 to publish the next acquisition")


    def test_stopped_client_costs_the_ioc_bounded_memory(self, ioc):
        ad = ioc.ad
        ad.put("image1:EnableCallbacks", "Disable")    # PVA traffic only
        ad.camera(size=BIG[::-1], data_type="UInt16", mode="Multiple", num_images=60,
                  exposure=0.001, period=0.005)
        try:
            ad.acquire(timeout=300)                     # warm-up: the IOC's steady state
            baseline = rss_mb(ioc.proc.pid)
            client = start_client(ad)
            os.kill(client.pid, signal.SIGSTOP)        # connected, reading nothing
            try:
                before = ad.get("Pva1:ArrayCounter_RBV") + ad.get("Pva1:DroppedArrays")
                ad.acquire(timeout=300)
                assert ad.get("Pva1:ArrayCounter_RBV") + ad.get("Pva1:DroppedArrays") == before + 60
                growth = rss_mb(ioc.proc.pid) - baseline
                assert growth < STALL_GROWTH_MB, \
                    f"the IOC grew {growth:.0f} MB while a stopped client was sent 120 MB"
            finally:
                client.kill()
                client.wait()
        finally:
            ad.put("image1:EnableCallbacks", "Enable")
            ad.camera(size=SHAPE[::-1])


def test_readme_address_and_the_beamline_ioc(beamline):
    """The README's PVA address is the default beamline's; the test beamline's ADSim
    IOC (on 127.0.0.3, not 127.0.0.1) serves its Pva1:Image where the project's client
    environment looks (conftest applied it: EPICS_PVA_NAME_SERVERS, no UDP search)."""
    from pathlib import Path

    from simbeamline.control.config import BeamlineConfig

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    default = BeamlineConfig().pva_client_env()
    assert f"EPICS_PVA_NAME_SERVERS={default['EPICS_PVA_NAME_SERVERS']}" in readme
    assert os.environ["EPICS_PVA_NAME_SERVERS"] == f"{beamline.adsim_host}:{beamline.pva_port}"
    from adsim_support import AD

    ad = AD(beamline.ad_prefix)
    ad.camera(size=SHAPE[::-1])
    ad.plugin("Pva1")
    try:
        ad.acquire()
        uid = ad.get("cam1:ArrayCounter_RBV")
        out = subprocess.run([sys.executable, "-m", "p4p.client.cli", "--raw", "-r",
                              "field(uniqueId)", "get", f"{beamline.ad_prefix}Pva1:Image"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"int32_t uniqueId = {uid}" in out.stdout
    finally:
        ad.put("Pva1:EnableCallbacks", "Disable")
        ad.camera()


IMPORT_CHECK = r"""
import sys
import simbeamline_iocs.adsim.ioc
print("setuptools" in sys.modules)
import setuptools_dso          # the real package again, for anyone who needs it
print(hasattr(setuptools_dso, "DSO"))
"""


def test_ioc_imports_p4p_without_setuptools():
    """The IOC's start does not pay for setuptools (0.45 s, most of p4p's import), and
    leaves the setuptools_dso package importable as it is."""
    result = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"], result.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ioc_ends_promptly_with_pva_clients(signum, tmp_path):
    """SIGINT (exit 0) and SIGTERM end the IOC within seconds, with a PVA monitor
    connected: the PVA server's threads keep nothing alive. (Last: ends its own IOC.)
    An IOC that does not end is asked for its threads' stacks (SIGUSR1), shown in the
    failure."""
    log = tmp_path / "ioc.log"
    server = ExtraADSimIOC(prefix=f"pvx{uuid.uuid4().hex[:6]}:", log_path=log)
    with server as ad:
        with Context("pva", conf=client_conf(HOST, EXTRA_PORT), useenv=False) as ctx:
            ctx.get(image_name(ad), timeout=TIMEOUT)
            sub = ctx.monitor(image_name(ad), lambda v: None)
            server.proc.send_signal(signum)
            try:
                code = server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.send_signal(signal.SIGUSR1)
                wait_for(lambda: "most recent call first" in log.read_text(errors="replace"),
                         10, "the IOC's stack dump")
                raise AssertionError(f"the IOC still runs 10 s after signal {signum}; its "
                                     f"log ends:\n{log.read_text(errors='replace')[-6000:]}") from None
            finally:
                sub.close()
        assert code == (0 if signum == signal.SIGINT else -signal.SIGTERM)
    text = log.read_text(errors="replace")
    grace = text.find("IOC still running")     # ended by its exit grace, not by itself
    if grace >= 0:
        warnings.warn("the ADSim IOC's shutdown hung until its exit grace:\n"
                      + text[grace:grace + 6000])
