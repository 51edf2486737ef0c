"""Attr1 (NDPluginAttribute) on an ADSim IOC of the module's own, over Channel Access:
each frame's named attributes and their running sums, the names every NDArray
carries and the driver's ColorMode; unknown names left alone; Reset."""

from __future__ import annotations

import uuid

import pytest

from adsim_extra import ExtraADSimIOC
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("attr-ioc") / "ioc.log"
    with ExtraADSimIOC(prefix=f"at{uuid.uuid4().hex[:6]}:", log_path=log) as ad:
        ad.camera(size=(40, 30))
        ad.plugin("Attr1")
        ad.put("Attr1:BlockingCallbacks", "Yes")
        yield ad


def frame(ad) -> int:
    """One acquisition; its UniqueId, once Attr1 has taken it."""
    ad.acquire()
    uid = ad.get("cam1:ArrayCounter_RBV")
    wait_for(lambda: ad.get("Attr1:UniqueId_RBV") == uid, 30, "Attr1 to take the frame")
    return uid


def test_attr1_follows_named_attributes_and_sums_them(ad):
    names = {1: "NDArrayUniqueId", 2: "NDArrayEpicsTSSec", 3: "NDArrayTimeStamp",
             4: "ColorMode", 5: "NoSuchAttribute"}
    for n, name in names.items():
        ad.put(f"Attr1:{n}:AttrName", name)
        assert ad.string(f"Attr1:{n}:AttrName_RBV") == name
    ad.put("Attr1:Reset", 1)
    assert ad.get("Attr1:1:ValueSum_RBV") == 0.0
    uids = [frame(ad) for _ in range(3)]
    assert ad.get("Attr1:1:Value_RBV") == uids[-1]
    assert ad.get("Attr1:1:ValueSum_RBV") == sum(uids)
    assert ad.get("Attr1:2:Value_RBV") == ad.get("Attr1:EpicsTSSec_RBV")
    assert ad.get("Attr1:3:Value_RBV") == pytest.approx(ad.get("Attr1:TimeStamp_RBV"), abs=1e-3)
    assert ad.get("Attr1:4:Value_RBV") == 0 and ad.get("Attr1:4:ValueSum_RBV") == 0   # Mono
    assert ad.get("Attr1:5:Value_RBV") == 0 and ad.get("Attr1:5:ValueSum_RBV") == 0   # unknown
    ad.put("Attr1:Reset", 1)
    assert (ad.get("Attr1:1:Value_RBV"), ad.get("Attr1:1:ValueSum_RBV")) == (0.0, 0.0)
    uid = frame(ad)
    assert ad.get("Attr1:1:ValueSum_RBV") == uid


def test_attr1_reads_the_colour_mode_a_frame_carries(ad):
    ad.put("Attr1:4:AttrName", "ColorMode")
    ad.plugin("CC1")
    ad.put("CC1:ColorModeOut", "RGB1")
    ad.put("Attr1:NDArrayPort", "CC1")
    try:
        frame(ad)
        assert ad.get("Attr1:4:Value_RBV") == 2            # NDColorModeRGB1
    finally:
        ad.put("Attr1:NDArrayPort", "SIM1")
        ad.put("CC1:EnableCallbacks", "Disable")
