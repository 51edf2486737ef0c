"""NDPluginTimeSeries (Stats1:TS, Attr1:TS): the time-series buffer by hand (Fixed
length, Circ. buffer, averaging, the time axis), then on an ADSim IOC of the module's
own over Channel Access: Stats1's per-frame statistics and Attr1's attribute values
accumulated into Stats1:TS<statistic> and Attr1:N:TSArrayValue while TSAcquire is
Acquire, compared with the per-frame readbacks of the same frames."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest
from caproto.threading.client import Context

from adsim_extra import ExtraADSimIOC
from simbeamline_iocs.adsim.timeseries import CIRCULAR, FIXED, TimeSeries, num_average
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)


# -- the buffer by hand ------------------------------------------------------------

def test_fixed_length_fills_in_order_and_reports_full():
    ts = TimeSeries(max_signals=3, num_points=3)
    ts.take_shape(3)
    assert not ts.add([1, 10, 100], 0.5)
    assert not ts.add([2, 20, 200], 1.5)
    np.testing.assert_array_equal(ts.series(), [[1, 2], [10, 20], [100, 200]])
    assert ts.add([3, 30, 300], 2.5)                  # the third of three: full
    assert ts.current == 3
    np.testing.assert_array_equal(ts.series()[0], [1, 2, 3])
    np.testing.assert_array_equal(ts.timestamps, [0.5, 1.5, 2.5])
    ts.reset()
    assert ts.current == 0 and ts.series().shape == (3, 0) and not ts.data.any()


def test_circular_buffer_wraps_oldest_first():
    ts = TimeSeries(max_signals=1, num_points=3)
    ts.mode = CIRCULAR
    ts.take_shape(1)
    ts.add([1], 0)
    ts.add([2], 0)
    np.testing.assert_array_equal(ts.series()[0], [0, 1, 2])     # unfilled points first
    for value in (3, 4, 5):
        assert not ts.add([value], 0)                            # never full
    np.testing.assert_array_equal(ts.series()[0], [3, 4, 5])
    assert ts.current == 2


def test_a_block_of_points_and_signals_beyond_the_maximum():
    ts = TimeSeries(max_signals=2, num_points=4)
    assert ts.take_shape(3) and ts.num_signals == 2              # the third signal dropped
    ts.add(np.array([[1, 2, 3], [4, 5, 6]]), 0)                  # two time points at once
    np.testing.assert_array_equal(ts.series(), [[1, 4], [2, 5]])
    assert not ts.take_shape(3)
    assert ts.take_shape(2) and ts.current == 0                  # new shape: erased


def test_averaging_and_the_time_axis():
    assert num_average(0.1, 0.1) == (1, 0.1)
    assert num_average(0.36, 0.1)[0] == 4 and num_average(0.34, 0.1)[0] == 3
    assert num_average(0.01, 0.1) == (1, 0.1)                     # at least one point
    assert num_average(0.5, 0.0) == (1, 0.5)
    ts = TimeSeries(max_signals=1, num_points=4)
    ts.take_shape(1)
    ts.num_average = 2
    for value in (1, 3, 5, 7, 9):
        ts.add([value], 0)
    np.testing.assert_array_equal(ts.series()[0], [2, 6])        # 9 waits for its pair
    np.testing.assert_allclose(ts.time_axis(0.2), [0, 0.2, 0.4, 0.6])
    ts.mode = CIRCULAR
    np.testing.assert_allclose(ts.time_axis(0.2), [-0.6, -0.4, -0.2, 0])
    assert FIXED != CIRCULAR


# -- over Channel Access -----------------------------------------------------------

@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("ts-ioc") / "ioc.log"
    with ExtraADSimIOC(prefix=f"ts{uuid.uuid4().hex[:6]}:", log_path=log) as ad:
        ad.camera(size=(40, 30), sim_mode="LinearRamp", data_type="Float64")
        for plugin in ("Stats1", "Attr1"):
            ad.plugin(plugin)
            ad.put(f"{plugin}:BlockingCallbacks", "Yes")
        for plugin in ("Stats1:TS", "Attr1:TS"):
            ad.put(f"{plugin}:EnableCallbacks", "Enable")
            ad.put(f"{plugin}:BlockingCallbacks", "Yes")
        ad.put("Stats1:ComputeStatistics", "Yes")
        ad.put("Stats1:ComputeCentroid", "Yes")
        ad.put("Attr1:1:AttrName", "NDArrayUniqueId")
        yield ad


def frames(ad, gains) -> list[dict]:
    """One acquisition per gain (so each frame's total differs); per frame what
    Stats1 and Attr1 read back, once both took it."""
    seen = []
    for gain in gains:
        ad.put("cam1:Gain", gain)
        ad.acquire()
        uid = ad.get("cam1:ArrayCounter_RBV")
        wait_for(lambda: ad.get("Stats1:UniqueId_RBV") == uid
                 and ad.get("Attr1:UniqueId_RBV") == uid, 30, "Stats1 and Attr1 to take it")
        seen.append({"uid": uid, "total": ad.get("Stats1:Total_RBV"),
                     "cx": ad.get("Stats1:CentroidX_RBV"),
                     "mean": ad.get("Stats1:MeanValue_RBV"),
                     "time": ad.get("Stats1:TimeStamp_RBV")})
    return seen


def series(ad, pv) -> np.ndarray:
    return np.atleast_1d(np.asarray(ad.get(pv, count=0)))


def start(ad, plugin="Stats1:TS", *, points, mode="Fixed length"):
    ad.put(f"{plugin}:TSAcquire", 0)
    ad.put(f"{plugin}:TSAcquireMode", mode)
    ad.put(f"{plugin}:TSNumPoints", points)
    ad.put(f"{plugin}:TSAcquire", 1, wait=False)
    ad.wait_for(f"{plugin}:TSAcquiring", lambda v: v == "Acquiring")


def test_stats_time_series_fixed_length_until_stopped(ad):
    start(ad, points=5)
    seen = frames(ad, (1, 2, 3))
    assert ad.get("Stats1:TS:TSCurrentPoint") == 3
    assert ad.string("Stats1:TS:TSAcquiring") == "Acquiring"
    # what reaches the TS port is Stats1's 23 statistics, not its frames
    assert ad.get("Stats1:TS:ArraySizeX_RBV") == 23
    assert ad.string("Stats1:TS:DataType_RBV") == "Float64"
    ad.put("Stats1:TS:TSAcquire", 0)
    assert ad.string("Stats1:TS:TSAcquiring") == "Done"
    np.testing.assert_allclose(series(ad, "Stats1:TSTotal"), [s["total"] for s in seen])
    assert len(set(s["total"] for s in seen)) == 3               # distinct, so order shows
    np.testing.assert_allclose(series(ad, "Stats1:TSMeanValue"), [s["mean"] for s in seen])
    np.testing.assert_allclose(series(ad, "Stats1:TSCentroidX"), [s["cx"] for s in seen])
    np.testing.assert_allclose(series(ad, "Stats1:TSTimestamp"), [s["time"] for s in seen],
                               atol=1e-3)
    np.testing.assert_allclose(series(ad, "Stats1:TS:TSTimeAxis")[:5], [0, .1, .2, .3, .4])
    # stopped: further frames are not taken
    frames(ad, (4,))
    assert ad.get("Stats1:TS:TSCurrentPoint") == 3


def test_fixed_length_stops_by_itself_and_completes_the_put(ad):
    ad.put("Stats1:TS:TSAcquire", 0)
    ad.put("Stats1:TS:TSAcquireMode", "Fixed length")
    ad.put("Stats1:TS:TSNumPoints", 2)
    # the held put on a client of its own (the synchronous client's circuit is
    # shared, so it cannot wait on one put while reading)
    context = Context()
    try:
        pv, = context.get_pvs(ad.name("Stats1:TS:TSAcquire"))
        pv.wait_for_connection(timeout=30)
        done = threading.Event()
        pv.write([1], wait=False, notify=True, callback=lambda *_: done.set())
        ad.wait_for("Stats1:TS:TSAcquiring", lambda v: v == "Acquiring")
        seen = frames(ad, (1,))
        assert not done.is_set()                       # busy: held while acquiring
        seen += frames(ad, (2, 3))
        assert done.wait(30), "the put of TSAcquire=1 never completed"
    finally:
        context.disconnect()
    assert ad.string("Stats1:TS:TSAcquire") == "Done"
    assert ad.string("Stats1:TS:TSAcquiring") == "Done"
    assert ad.get("Stats1:TS:TSCurrentPoint") == 2
    np.testing.assert_allclose(series(ad, "Stats1:TSTotal"), [s["total"] for s in seen[:2]])


def test_circular_buffer_keeps_the_last_points_and_reads_while_acquiring(ad):
    start(ad, points=3, mode="Circ. buffer")
    try:
        seen = frames(ad, (1, 2))
        ad.put("Stats1:TS:TSRead", 1)                  # read while acquiring
        np.testing.assert_allclose(series(ad, "Stats1:TSTotal"),
                                   [0] + [s["total"] for s in seen])
        seen += frames(ad, (3, 4, 5))
        want = [s["total"] for s in seen[-3:]]
        # TSRead's 1 second scan publishes without a put
        wait_for(lambda: np.allclose(series(ad, "Stats1:TSTotal"), want), 10,
                 "the scanned TSRead to publish the last three totals")
        assert ad.get("Stats1:TS:TSCurrentPoint") == 2
        np.testing.assert_allclose(series(ad, "Stats1:TS:TSTimeAxis")[:3], [-.2, -.1, 0])
    finally:
        ad.put("Stats1:TS:TSAcquire", 0)
    np.testing.assert_allclose(series(ad, "Stats1:TSTotal"), want)


def test_averaging_points(ad):
    ad.put("Stats1:TS:TSAveragingTime", 0.2)
    try:
        assert ad.get("Stats1:TS:TSNumAverage") == 2
        assert ad.get("Stats1:TS:TSAveragingTime_RBV") == pytest.approx(0.2)
        start(ad, points=10)
        seen = frames(ad, (1, 2, 3, 4))
        ad.put("Stats1:TS:TSAcquire", 0)
        totals = [s["total"] for s in seen]
        np.testing.assert_allclose(series(ad, "Stats1:TSTotal"),
                                   [(totals[0] + totals[1]) / 2, (totals[2] + totals[3]) / 2])
    finally:
        ad.put("Stats1:TS:TSAveragingTime", 0.1)
    assert ad.get("Stats1:TS:TSNumAverage") == 1


def test_attribute_time_series(ad):
    start(ad, "Attr1:TS", points=4)
    seen = frames(ad, (1, 1, 1))
    assert ad.get("Attr1:TS:ArraySizeX_RBV") == 8
    ad.put("Attr1:TS:TSAcquire", 0)
    np.testing.assert_array_equal(series(ad, "Attr1:1:TSArrayValue"), [s["uid"] for s in seen])
    np.testing.assert_array_equal(series(ad, "Attr1:2:TSArrayValue"), [0, 0, 0])  # no name
