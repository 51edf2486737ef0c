"""NDStats beyond the basic statistics: the centroid's higher moments, the profiles,
the cursor and the histogram.

The numpy parts (:mod:`simbeamline_iocs.adsim.stats`) are checked against plain
weighted-moment formulas and against np.bincount; then Stats1 of an ADSim IOC of the
module's own (:class:`adsim_extra.ExtraADSimIOC`, image1 as DOUBLE) is driven over
Channel Access, and what it publishes is compared with numpy applied to the frame
image1 received in the same acquisition (the same UniqueId).
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC
from simbeamline_iocs.adsim.stats import (centroid_and_profiles, frame_histogram, histogram_x,
                                          line_profiles)
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (48, 64)   # rows, columns


def weighted_moments(weights: np.ndarray, axis_values: np.ndarray) -> dict:
    """Mean, variance, skewness and excess kurtosis of *axis_values* weighted by *weights*."""
    total = weights.sum()
    mean = (weights * axis_values).sum() / total
    var = (weights * (axis_values - mean) ** 2).sum() / total
    skew = (weights * (axis_values - mean) ** 3).sum() / total / var ** 1.5
    kurt = (weights * (axis_values - mean) ** 4).sum() / total / var ** 2 - 3
    return {"mean": mean, "var": var, "skew": skew, "kurt": kurt}


def gaussian(shape, cx, cy, sx, sy, angle_deg=0.0):
    y, x = np.indices(shape, dtype=np.float64)
    t = np.radians(angle_deg)
    u = (x - cx) * np.cos(t) + (y - cy) * np.sin(t)
    v = -(x - cx) * np.sin(t) + (y - cy) * np.cos(t)
    return 1000.0 * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


# -- numpy -----------------------------------------------------------------------
def test_centroid_moments_are_the_weighted_moments_of_the_thresholded_pixels():
    rng = np.random.default_rng(5)
    frame = gaussian((60, 90), 30.3, 22.7, 9.0, 4.0) + rng.exponential(5, (60, 90))
    frame[5:9, 70:80] += 400          # a lump that makes the distribution skewed
    threshold = 20.0
    out, profiles = centroid_and_profiles(frame, threshold=threshold)
    w = np.where(frame >= threshold, frame, 0)
    y, x = np.indices(frame.shape)
    mx, my = weighted_moments(w, x), weighted_moments(w, y)
    assert out["CentroidTotal"] == pytest.approx(w.sum())
    assert (out["CentroidX"], out["CentroidY"]) == pytest.approx((mx["mean"], my["mean"]))
    assert (out["SigmaX"], out["SigmaY"]) == pytest.approx((mx["var"] ** 0.5, my["var"] ** 0.5))
    assert (out["SkewX"], out["SkewY"]) == pytest.approx((mx["skew"], my["skew"]), rel=1e-6)
    assert (out["KurtosisX"], out["KurtosisY"]) == pytest.approx((mx["kurt"], my["kurt"]),
                                                                 rel=1e-6)
    cov = (w * (x - mx["mean"]) * (y - my["mean"])).sum() / w.sum()
    assert out["SigmaXY"] == pytest.approx(cov / (mx["var"] * my["var"]) ** 0.5)
    assert abs(out["SkewY"]) > 0.1            # the lump shows: the check above can fail
    np.testing.assert_allclose(profiles["ProfileAverageX"], frame.mean(axis=0))
    np.testing.assert_allclose(profiles["ProfileAverageY"], frame.mean(axis=1))
    np.testing.assert_allclose(profiles["ProfileThresholdX"], w.sum(axis=0) / frame.shape[0])
    np.testing.assert_allclose(profiles["ProfileThresholdY"], w.sum(axis=1) / frame.shape[1])


@pytest.mark.parametrize("angle", [0.0, 30.0, -50.0])
def test_orientation_is_the_angle_of_a_rotated_elongated_spot(angle):
    out, _ = centroid_and_profiles(gaussian((200, 200), 100, 100, 20, 5, angle))
    assert out["Orientation"] == pytest.approx(angle, abs=0.5)
    assert out["KurtosisX"] == pytest.approx(0.0, abs=0.05) or angle != 0.0   # a Gaussian


def test_eccentricity_of_an_axis_aligned_ellipse_and_of_a_circle():
    a, b = 12.0, 4.0
    out, _ = centroid_and_profiles(gaussian((150, 150), 75, 75, a, b))
    assert out["Eccentricity"] == pytest.approx(((a * a - b * b) / (a * a + b * b)) ** 2, rel=1e-3)
    round_spot, _ = centroid_and_profiles(gaussian((150, 150), 75, 75, 8, 8))
    assert round_spot["Eccentricity"] == pytest.approx(0.0, abs=1e-6)


def test_no_pixel_over_the_threshold_gives_zeros_not_nan():
    out, profiles = centroid_and_profiles(np.ones((10, 12)), threshold=5)
    assert set(out.values()) == {0.0}
    np.testing.assert_array_equal(profiles["ProfileThresholdX"], np.zeros(12))


def test_line_profiles_through_the_centroid_and_the_clamped_cursor():
    frame = np.arange(6 * 8, dtype=np.float64).reshape(6, 8)
    lines = line_profiles(frame, centroid=(2.6, 1.4), cursor=(50, -3))
    np.testing.assert_array_equal(lines["ProfileCentroidX"], frame[1])      # row round(1.4)
    np.testing.assert_array_equal(lines["ProfileCentroidY"], frame[:, 3])   # column round(2.6)
    np.testing.assert_array_equal(lines["ProfileCursorX"], frame[0])        # y clamped to 0
    np.testing.assert_array_equal(lines["ProfileCursorY"], frame[:, 7])     # x clamped to 7
    assert lines["CursorVal"] == frame[0, 7]


def test_histogram_of_integer_frames_with_one_bin_per_level_is_bincount():
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    hist = frame_histogram(frame, size=256, low=0, high=255)
    np.testing.assert_array_equal(hist["Histogram"], np.bincount(frame.ravel(), minlength=256))
    assert hist["HistBelow"] == hist["HistAbove"] == 0
    counts = np.maximum(hist["Histogram"], 1)
    assert hist["HistEntropy"] == pytest.approx(-(counts * np.log(counts)).sum() / frame.size)


def test_histogram_bins_round_to_the_nearest_centre_and_count_outliers():
    # 5 bins over [10, 20]: centres 10, 12.5, 15, 17.5, 20 (11.2 -> 0.98 -> bin 0, 11.3 -> 1)
    values = np.array([[9.99, 10.0, 11.2, 11.3, 14.0, 15.5, 16.3, 19.9, 20.0, 20.01, np.nan]])
    hist = frame_histogram(values, size=5, low=10, high=20)
    np.testing.assert_array_equal(hist["Histogram"], [2, 1, 2, 1, 2])
    assert (hist["HistBelow"], hist["HistAbove"]) == (2, 1)      # 9.99 and NaN; 20.01
    np.testing.assert_allclose(histogram_x(5, 10, 20), [10, 12, 14, 16, 18])


# -- the IOC ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("stats-ioc") / "ioc.log"
    with ExtraADSimIOC(["--image-ftvl", "DOUBLE"], prefix=f"sts{uuid.uuid4().hex[:6]}:",
                       log_path=log) as ad:
        ad.camera(size=SHAPE[::-1], sim_mode="Peaks")
        for suffix, value in (("cam1:PeakStartX", 20), ("cam1:PeakStartY", 14),
                              ("cam1:PeakWidthX", 9), ("cam1:PeakWidthY", 5),
                              ("cam1:PeakNumX", 1), ("cam1:PeakNumY", 1)):
            ad.put(suffix, value)
        ad.plugin("image1")
        ad.plugin("Stats1")
        for compute in ("Statistics", "Centroid", "Profiles", "Histogram"):
            ad.put(f"Stats1:Compute{compute}", "Yes")
        yield ad


def acquire_frame(ad) -> np.ndarray:
    """One acquisition; the frame image1 took, once Stats1 has taken the same one."""
    ad.acquire()
    uid = ad.get("image1:UniqueId_RBV")
    wait_for(lambda: ad.get("Stats1:UniqueId_RBV") == uid, 30, "Stats1 to take the frame")
    nx, ny = ad.get("image1:ArraySizeX_RBV"), ad.get("image1:ArraySizeY_RBV")
    return np.asarray(ad.get("image1:ArrayData", count=nx * ny))[:nx * ny].reshape(ny, nx)


def test_stats1_histogram_and_its_x_axis(ad):
    assert ad.get("Stats1:HistSize_RBV") == 256
    np.testing.assert_allclose(ad.get("Stats1:HistogramX_RBV"), np.arange(256) * 255 / 256)
    frame = acquire_frame(ad)
    assert frame.max() > 50                         # a spot: not a flat frame
    hist = np.asarray(ad.get("Stats1:Histogram_RBV"))
    np.testing.assert_array_equal(hist, np.bincount(frame.astype(np.int64).ravel(), minlength=256))
    assert ad.get("Stats1:HistBelow_RBV") == 0 and ad.get("Stats1:HistAbove_RBV") == 0

    ad.put("Stats1:HistSize", 10)
    ad.put("Stats1:HistMin", 30)
    ad.put("Stats1:HistMax", 120)
    np.testing.assert_allclose(ad.get("Stats1:HistogramX_RBV")[:10], 30 + np.arange(10) * 9)
    try:
        frame = acquire_frame(ad)
        expected = frame_histogram(frame, size=10, low=30, high=120)
        np.testing.assert_array_equal(ad.get("Stats1:Histogram_RBV")[:10], expected["Histogram"])
        assert ad.get("Stats1:HistBelow_RBV") == np.count_nonzero(frame < 30) > 0
        assert ad.get("Stats1:HistAbove_RBV") == np.count_nonzero(frame > 120)
        assert ad.get("Stats1:HistEntropy_RBV") == pytest.approx(expected["HistEntropy"])
    finally:
        for field, value in (("HistSize", 256), ("HistMin", 0), ("HistMax", 255)):
            ad.put(f"Stats1:{field}", value)


def test_stats1_profiles_cursor_and_moments(ad):
    ad.put("Stats1:CursorX", 25)
    ad.put("Stats1:CursorY", 1000)                  # beyond the frame: clamped to the last row
    ad.put("Stats1:CentroidThreshold", 0)
    frame = acquire_frame(ad).astype(np.float64)
    ny, nx = frame.shape
    assert (ad.get("Stats1:ProfileSizeX_RBV"), ad.get("Stats1:ProfileSizeY_RBV")) == (nx, ny)
    np.testing.assert_allclose(ad.get("Stats1:ProfileAverageX_RBV")[:nx], frame.mean(axis=0))
    np.testing.assert_allclose(ad.get("Stats1:ProfileAverageY_RBV")[:ny], frame.mean(axis=1))
    np.testing.assert_array_equal(ad.get("Stats1:ProfileCursorX_RBV")[:nx], frame[ny - 1])
    np.testing.assert_array_equal(ad.get("Stats1:ProfileCursorY_RBV")[:ny], frame[:, 25])
    assert ad.get("Stats1:CursorVal") == frame[ny - 1, 25]
    y, x = np.indices(frame.shape)
    mx, my = weighted_moments(frame, x), weighted_moments(frame, y)
    cx, cy = ad.get("Stats1:CentroidX_RBV"), ad.get("Stats1:CentroidY_RBV")
    assert (cx, cy) == pytest.approx((mx["mean"], my["mean"]))
    np.testing.assert_array_equal(ad.get("Stats1:ProfileCentroidX_RBV")[:nx],
                                  frame[int(cy + 0.5)])
    np.testing.assert_array_equal(ad.get("Stats1:ProfileCentroidY_RBV")[:ny],
                                  frame[:, int(cx + 0.5)])
    assert ad.get("Stats1:SkewX_RBV") == pytest.approx(mx["skew"], rel=1e-6, abs=1e-9)
    assert ad.get("Stats1:KurtosisY_RBV") == pytest.approx(my["kurt"], rel=1e-6, abs=1e-9)
