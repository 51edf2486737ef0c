"""The ADSimDetector IOC on the beamline's simulation clock, and its hang fault.

The ADSim IOC is a separate process: it follows ``sim:time_scale`` and
``sim:fault:adsim:hang`` over CA. Durations come from the time stamps the IOC
posts on ``cam1:AcquireBusy`` (Acquiring -> Done).
"""

from __future__ import annotations

import os
import signal

import pytest
from ophyd import EpicsSignal, EpicsSignalRO

from adsim_support import TIMEOUT, wait_for
from simbeamline.control import launcher
from test_ioc_crash import wait_restarted
from test_adsim_driver import ad  # noqa: F401 (fixture)
from test_time_scale_ioc import Transitions

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def busy(ad):
    signal = EpicsSignalRO(ad.name("cam1:AcquireBusy"), name="busy")
    signal.wait_for_connection(timeout=TIMEOUT)
    return signal


@pytest.fixture
def beamline_pv(beamline):
    def make(suffix):
        signal = EpicsSignal(f"{beamline.prefix}{suffix}", name=suffix.replace(":", "_"))
        signal.wait_for_connection(timeout=TIMEOUT)
        return signal
    return make


def acquisition_seconds(ad, busy) -> float:
    """Wall seconds of one acquisition with put completion, from the IOC's stamps."""
    transitions = Transitions(busy)
    try:
        ad.acquire(timeout=60)
        wait_for(lambda: transitions.durations(1, 0), what="AcquireBusy Done")
    finally:
        transitions.close()
    return transitions.durations(1, 0)[-1]


def test_adsim_follows_the_beamline_time_scale(ad, busy, beamline_pv):
    """Three 2 s frames, 2 s apart: 6 s nominal, well under a second at 0.01."""
    scale = beamline_pv("time_scale")
    ad.camera(exposure=2.0, period=2.0, mode="Multiple", num_images=3)
    counter = ad.get("cam1:ArrayCounter_RBV")
    scale.put(0.01, wait=True)
    try:
        # the ADSim sees the new scale through a CA monitor: wait for it to apply
        wait_for(lambda: acquisition_seconds(ad, busy) < 3.0, timeout=120,
                 what="a 6 s nominal acquisition to be fast")
    finally:
        scale.put(1.0, wait=True)
        ad.camera()
    assert ad.get("cam1:ArrayCounter_RBV") >= counter + 3


def test_hung_adsim_never_finishes_until_aborted(ad, beamline_pv):
    hangs_until_aborted(ad, beamline_pv)


def hangs_until_aborted(ad, beamline_pv) -> None:
    """Put the beamline's ``fault:adsim:hang``: an acquisition of the ADSim IOC then never
    finishes until aborted, and takes no frame; cleared, acquisitions finish again."""
    hang = beamline_pv("fault:adsim:hang")
    ad.camera(exposure=0.01)
    counter = ad.get("cam1:ArrayCounter_RBV")
    hang.put(1, wait=True)
    try:
        # the IOC follows the fault over CA: wait until an acquisition hangs
        def hung():     # a put with completion that does not complete in 1 s
            return ad.pv("cam1:Acquire").put(1, wait=True, timeout=1.0) == -1
        wait_for(hung, timeout=60, what="an acquisition that never finishes")
        assert ad.string("cam1:AcquireBusy") == "Acquiring"   # 100 x its exposure
        assert ad.get("cam1:ArrayCounter_RBV") >= counter
        frames = ad.get("cam1:ArrayCounter_RBV")
        _abort(ad)
        assert ad.string("cam1:DetectorState_RBV") == "Aborted"
        assert ad.get("cam1:ArrayCounter_RBV") == frames                # no frame
    finally:
        hang.put(0, wait=True)
    wait_for(lambda: _acquires(ad), timeout=60, what="acquisitions to finish again")


def _abort(ad) -> None:
    ad.put("cam1:Acquire", 0)
    ad.wait_for("cam1:AcquireBusy", lambda v: v == "Done", timeout=10)


def _acquires(ad) -> bool:
    """One acquisition finishes by itself (else it is aborted and False returned)."""
    if ad.pv("cam1:Acquire").put(1, wait=True, timeout=5.0) == -1:
        _abort(ad)
        return False
    return ad.string("cam1:DetectorState_RBV") == "Idle"


def test_adsim_follows_the_beamline_again_after_its_ioc_restarts(ad, beamline, beamline_pv):
    """The ADSim IOC's link renews its subscriptions when the beamline IOC comes back
    (SIGKILL, restarted by supervisord): the hang fault put on the new IOC reaches it."""
    rpc = launcher._rpc(beamline)
    pid = rpc.supervisor.getProcessInfo("beamline")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_restarted(beamline, "beamline", pid)
    hangs_until_aborted(ad, beamline_pv)
