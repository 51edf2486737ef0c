"""Scatter1 and Gather1 on an ADSim IOC of the module's own, over Channel Access:
Scatter1 deals frames to the plugins reading it in turn; Gather1 merges the frames
of the ports it names; NDArrayPort and NDArrayPort_1 of Gather1 are one setting."""

from __future__ import annotations

import uuid

import pytest

from adsim_extra import ExtraADSimIOC
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (32, 40)   # rows, columns


@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("scatter-ioc") / "ioc.log"
    with ExtraADSimIOC(prefix=f"sg{uuid.uuid4().hex[:6]}:", log_path=log) as ad:
        ad.camera(size=SHAPE[::-1])
        yield ad


def counters(ad, names):
    return {name: ad.get(f"{name}:ArrayCounter_RBV") for name in names}


def test_scatter1_deals_frames_to_its_readers_in_turn(ad):
    readers = ("Stats2", "Stats3", "Stats4")
    ad.plugin("Scatter1")
    for name in readers:
        ad.plugin(name)
        ad.put(f"{name}:NDArrayPort", "SCATTER1")
    try:
        before = counters(ad, readers)
        uids = []
        for _ in range(6):
            ad.acquire()
            uids.append(ad.get("cam1:ArrayCounter_RBV"))
            uid = uids[-1]
            wait_for(lambda: any(ad.get(f"{n}:UniqueId_RBV") == uid for n in readers), 30,
                     f"one of {readers} to take frame {uid}")
            holders = [n for n in readers if ad.get(f"{n}:UniqueId_RBV") == uid]
            assert len(holders) == 1, f"frame {uid} went to {holders}"
        after = counters(ad, readers)
        assert {n: after[n] - before[n] for n in readers} == dict.fromkeys(readers, 2)
        assert ad.get("Scatter1:ArrayCounter_RBV") >= 6
    finally:
        for name in (*readers, "Scatter1"):
            ad.put(f"{name}:EnableCallbacks", "Disable")
            ad.put(f"{name}:NDArrayPort", "SIM1")


def test_scatter1_with_array_callbacks_disabled_passes_nothing(ad):
    ad.plugin("Scatter1")
    ad.plugin("Stats2")
    ad.put("Stats2:NDArrayPort", "SCATTER1")
    ad.put("Scatter1:ArrayCallbacks", "Disable")
    try:
        before = counters(ad, ("Scatter1", "Stats2"))
        ad.acquire()
        wait_for(lambda: ad.get("Scatter1:ArrayCounter_RBV") == before["Scatter1"] + 1, 30,
                 "Scatter1 to take the frame")
        ad.plugin("Stats3")                 # a frame later that Stats3 (on SIM1) has taken
        stats3 = ad.get("Stats3:ArrayCounter_RBV")
        ad.acquire()
        wait_for(lambda: ad.get("Stats3:ArrayCounter_RBV") == stats3 + 1, 30, "Stats3's frame")
        assert ad.get("Stats2:ArrayCounter_RBV") == before["Stats2"]
    finally:
        ad.put("Scatter1:ArrayCallbacks", "Enable")
        for name in ("Scatter1", "Stats2", "Stats3"):
            ad.put(f"{name}:EnableCallbacks", "Disable")
        ad.put("Stats2:NDArrayPort", "SIM1")


def test_gather1_merges_the_ports_it_names(ad):
    assert ad.string("Gather1:NDArrayPort_1") == "SIM1"         # commonPlugins' boot value
    ad.put("Gather1:NDArrayPort", "SIM1")
    for n in range(2, 9):
        ad.put(f"Gather1:NDArrayPort_{n}", "")
    ad.put("Gather1:NDArrayPort_3", "TRANS1")
    ad.plugin("Trans1")
    ad.put("Gather1:EnableCallbacks", "Enable")
    ad.put("Gather1:BlockingCallbacks", "Yes")
    ad.put("Stats5:NDArrayPort", "GATHER1")
    ad.put("Stats5:EnableCallbacks", "Enable")
    ad.put("Stats5:BlockingCallbacks", "Yes")
    try:
        before = counters(ad, ("Gather1", "Stats5", "Trans1"))
        ad.acquire()
        wait_for(lambda: ad.get("Stats5:ArrayCounter_RBV") == before["Stats5"] + 2, 30,
                 "Stats5 to take both of Gather1's frames (SIM1 and TRANS1)")
        assert ad.get("Gather1:ArrayCounter_RBV") == before["Gather1"] + 2
        assert ad.get("Trans1:ArrayCounter_RBV") == before["Trans1"] + 1
        # NDArrayPort and NDArrayPort_1 are one setting
        ad.put("Gather1:NDArrayPort_1", "")
        assert ad.string("Gather1:NDArrayPort") == "" and ad.string("Gather1:NDArrayPort_RBV") == ""
        gathered = ad.get("Gather1:ArrayCounter_RBV")
        ad.acquire()
        wait_for(lambda: ad.get("Gather1:ArrayCounter_RBV") == gathered + 1, 30,
                 "Gather1 to take TRANS1's frame only")
        ad.put("Gather1:NDArrayPort", "SIM1")
        assert ad.string("Gather1:NDArrayPort_1_RBV") == "SIM1"
    finally:
        for name in ("Gather1", "Stats5", "Trans1"):
            ad.put(f"{name}:EnableCallbacks", "Disable")
        ad.put("Stats5:NDArrayPort", "SIM1")
