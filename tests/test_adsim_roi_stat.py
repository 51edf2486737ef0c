"""ROIStat1 (NDPluginROIStat): the region statistics by hand against the C plugin's
loops written out in Python (clamping, background bands), then on an ADSim IOC of
the module's own over Channel Access against numpy applied to the frame image1
received in the same acquisition."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC
from simbeamline_iocs.adsim.roi_stat import clamp_region, region_statistics
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)


def c_loops(frame, offset, size, bgd_width):
    """NDPluginROIStat::doComputeStatisticsT for a 2-D frame, loop for loop."""
    (ox, oy), (sx, sy) = offset, size
    values = [float(frame[y, x]) for y in range(oy, oy + sy) for x in range(ox, ox + sx)]
    total = sum(values)
    bgd, n_bgd = 0.0, 0
    if bgd_width > 0:
        bwx, bwy = min(bgd_width, sx), min(bgd_width, sy)
        rows = list(range(oy, oy + bwy)) + list(range(oy + sy - bwy, oy + sy))
        for y in rows:
            for x in range(ox, ox + sx):
                bgd += frame[y, x]
                n_bgd += 1
        for y in range(oy + bwy, oy + sy - bwy):
            for x in list(range(ox, ox + bwx)) + list(range(ox + sx - bwx, ox + sx)):
                bgd += frame[y, x]
                n_bgd += 1
    if n_bgd:
        bgd = bgd / n_bgd * sx * sy
    return {"MinValue": min(values), "MaxValue": max(values), "MeanValue": total / (sx * sy),
            "Total": total, "Net": total - bgd}


@pytest.mark.parametrize("offset,size,bgd", [((0, 0), (7, 5), 0), ((2, 1), (5, 4), 1),
                                             ((1, 1), (3, 3), 2), ((3, 0), (4, 6), 3)])
def test_region_statistics_as_the_c_loops(offset, size, bgd):
    frame = np.random.default_rng(1).integers(0, 1000, (6, 7)).astype(np.uint16)
    got = region_statistics(frame, offset, size, bgd)
    want = c_loops(frame, offset, size, bgd)
    assert got == pytest.approx(want)


def test_clamp_region():
    assert clamp_region(-3, 10, 8) == (0, 8)
    assert clamp_region(5, 10, 8) == (5, 3)
    assert clamp_region(20, 0, 8) == (7, 1)


def test_one_dimensional_region():
    line = np.arange(10.0)
    got = region_statistics(line, (2, 0), (6, 1), 1)        # 2..7, background 2 and 7
    assert got["Total"] == sum(range(2, 8)) and got["Net"] == pytest.approx(27 - 4.5 * 6)


@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("roistat-ioc") / "ioc.log"
    with ExtraADSimIOC(args=["--image-ftvl", "DOUBLE"], prefix=f"rs{uuid.uuid4().hex[:6]}:",
                       log_path=log) as ad:
        ad.camera(size=(40, 30), sim_mode="Peaks", data_type="UInt16")
        for plugin in ("image1", "ROIStat1"):
            ad.plugin(plugin)
            ad.put(f"{plugin}:BlockingCallbacks", "Yes")
        yield ad


def frame(ad) -> np.ndarray:
    ad.acquire()
    uid = ad.get("cam1:ArrayCounter_RBV")
    wait_for(lambda: ad.get("image1:UniqueId_RBV") == uid
             and ad.get("ROIStat1:UniqueId_RBV") == uid, 30, "image1 and ROIStat1 to take it")
    return np.asarray(ad.get("image1:ArrayData", count=0))[:40 * 30].reshape(30, 40)


def test_roistat_regions_over_ca(ad):
    regions = {1: (5, 4, 20, 10, 0), 2: (30, 25, 50, 50, 2), 3: (0, 0, 40, 30, 3)}
    for n, (mx, my, sx, sy, bgd) in regions.items():
        for field, value in (("MinX", mx), ("MinY", my), ("SizeX", sx), ("SizeY", sy),
                             ("BgdWidth", bgd), ("Use", "Yes")):
            ad.put(f"ROIStat1:{n}:{field}", value)
    ad.put("ROIStat1:4:Use", "No")
    ad.put("ROIStat1:4:Reset", 1)
    image = frame(ad)
    assert ad.get("ROIStat1:ArrayCounter_RBV") >= 1
    # region 2 clamped into the 40 x 30 frame
    assert (ad.get("ROIStat1:2:SizeX_RBV"), ad.get("ROIStat1:2:SizeY_RBV")) == (10, 5)
    assert (ad.get("ROIStat1:2:MaxSizeX_RBV"), ad.get("ROIStat1:2:MaxSizeY_RBV")) == (40, 30)
    for n, (mx, my, sx, sy, bgd) in regions.items():
        sx, sy = min(sx, 40 - mx), min(sy, 30 - my)
        want = c_loops(image, (mx, my), (sx, sy), bgd)
        for field, value in want.items():
            assert ad.get(f"ROIStat1:{n}:{field}_RBV") == pytest.approx(value), (n, field)
    assert ad.get("ROIStat1:1:Total_RBV") > 0
    assert ad.get("ROIStat1:4:Total_RBV") == 0                   # not in use
    ad.put("ROIStat1:1:Reset", 1)
    assert ad.get("ROIStat1:1:Total_RBV") == 0 and ad.get("ROIStat1:2:Total_RBV") > 0
    ad.put("ROIStat1:ResetAll", 1)
    assert all(ad.get(f"ROIStat1:{n}:Net_RBV") == 0 for n in regions)


def test_roistat_passes_frames_on(ad):
    ad.put("image1:NDArrayPort", "ROISTAT1")
    try:
        frame(ad)
        assert ad.get("image1:UniqueId_RBV") == ad.get("ROIStat1:UniqueId_RBV")
    finally:
        ad.put("image1:NDArrayPort", "SIM1")


def test_roistat_time_series(ad):
    for field, value in (("MinX", 5), ("MinY", 4), ("SizeX", 20), ("SizeY", 10),
                         ("BgdWidth", 0), ("Use", "Yes")):
        ad.put(f"ROIStat1:1:{field}", value)
    ad.put("ROIStat1:TSNumPoints", 3)
    ad.put("ROIStat1:TSControl", "Erase/Start")
    assert ad.string("ROIStat1:TSAcquiring") == "Acquiring"
    totals, times = [], []
    for gain in (1, 2, 3, 4):
        ad.put("cam1:Gain", gain)
        frame(ad)
        totals.append(ad.get("ROIStat1:1:Total_RBV"))
        times.append(ad.get("ROIStat1:TimeStamp_RBV"))
    # full after three points: stopped by itself, the fourth frame not taken
    assert ad.string("ROIStat1:TSAcquiring") == "Done"
    assert ad.get("ROIStat1:TSCurrentPoint") == 3
    np.testing.assert_allclose(ad.get("ROIStat1:1:TSTotal", count=0), totals[:3])
    np.testing.assert_allclose(ad.get("ROIStat1:1:TSTimestamp", count=0), times[:3], atol=1e-3)
    assert len(set(totals[:3])) == 3
    # Erase/Start, two frames, Stop: two points; Start when not full goes on
    ad.put("ROIStat1:TSNumPoints", 5)
    ad.put("ROIStat1:TSControl", "Erase/Start")
    frame(ad)
    frame(ad)
    ad.put("ROIStat1:TSControl", "Stop")
    assert ad.get("ROIStat1:TSCurrentPoint") == 2
    assert len(ad.get("ROIStat1:1:TSMeanValue", count=0)) == 2
    frame(ad)                                                   # stopped: not taken
    assert ad.get("ROIStat1:TSCurrentPoint") == 2
    ad.put("ROIStat1:TSControl", "Start")
    frame(ad)
    ad.put("ROIStat1:TSControl", "Read")
    assert len(ad.get("ROIStat1:1:TSMeanValue", count=0)) == 3
    ad.put("ROIStat1:TSControl", "Erase")
    assert ad.get("ROIStat1:TSCurrentPoint") == 0
    ad.put("ROIStat1:TSControl", "Stop")
