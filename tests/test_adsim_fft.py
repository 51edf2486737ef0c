"""FFT1 (NDPluginFFT): the numpy part against numpy's FFT (with Numerical Recipes'
sign), then on an ADSim IOC of the module's own over Channel Access: the averaged
magnitude passed downstream and the waveforms, DC suppression and averaging."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC, noiseless_peak, read_image
from simbeamline_iocs.adsim.fft import axes, frame_fft, next_pow2

pytestmark = pytest.mark.timeout(300)

N = 32   # a square frame, a power of two: no padding, and x/y order does not matter


def test_one_dimensional_transform_is_numpys_with_the_opposite_sign():
    rng = np.random.default_rng(7)
    series = rng.normal(size=50)                          # padded to 64
    out = frame_fft(series)
    padded = np.concatenate([series, np.zeros(14)])
    expected = np.fft.fft(padded)[:32]
    np.testing.assert_allclose(out["time"][0], padded)
    np.testing.assert_allclose(out["real"][0], expected.real, atol=1e-9)
    np.testing.assert_allclose(out["imag"][0], -expected.imag, atol=1e-9)
    np.testing.assert_allclose(out["abs"][0], np.abs(expected) / 64)
    assert frame_fft(series, suppress_dc=True)["abs"][0, 0] == 0


def test_square_image_transform_and_a_sine_peak():
    y, x = np.indices((N, N))
    image = 3 + np.cos(2 * np.pi * 5 * x / N)            # 5 periods along x
    out = frame_fft(image)
    assert out["abs"].shape == (N // 2, N // 2)
    np.testing.assert_allclose(out["abs"], np.abs(np.fft.fft2(image))[:N // 2, :N // 2] / N ** 2,
                               atol=1e-12)
    assert out["abs"][0, 0] == pytest.approx(3.0)          # the mean
    assert out["abs"][0, 5] == pytest.approx(0.5)          # half the cosine's amplitude
    assert next_pow2(1) == 1 and next_pow2(33) == 64 and next_pow2(64) == 64
    t, f = axes(8, 4, 0.5)
    np.testing.assert_allclose(t, np.arange(8) * 0.5)
    np.testing.assert_allclose(f, np.arange(4) * (1.0 / 3))


@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("fft-ioc") / "ioc.log"
    with ExtraADSimIOC(["--image-ftvl", "DOUBLE"], prefix=f"ft{uuid.uuid4().hex[:6]}:",
                       log_path=log) as ad:
        ad.camera(size=(N, N), sim_mode="Peaks")
        noiseless_peak(ad, start=(10, 12), width=(4, 3))
        ad.plugin("image1")
        ad.plugin("FFT1")
        ad.put("FFT1:BlockingCallbacks", "Yes")
        yield ad



def test_fft1_passes_the_magnitude_on_and_fills_its_waveforms(ad):
    ad.put("FFT1:FFTNumAverage", 1)
    ad.put("FFT1:FFTSuppressDC", "Disable")
    ad.put("FFT1:FFTTimePerPoint", 0.001)
    frame = read_image(ad, "SIM1")
    np.testing.assert_array_equal(frame, read_image(ad, "SIM1"))   # the frames repeat
    assert frame.max() > 50
    got = read_image(ad, "FFT1")
    expected = frame_fft(frame)
    assert got.shape == (N // 2, N // 2) and ad.string("image1:DataType_RBV") == "Float64"
    np.testing.assert_allclose(got, expected["abs"], rtol=1e-9)
    np.testing.assert_allclose(ad.get("FFT1:FFTAbsValue")[:N // 2], expected["abs"][0], rtol=1e-9)
    np.testing.assert_allclose(ad.get("FFT1:FFTReal")[:N // 2], expected["real"][0], rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(ad.get("FFT1:FFTTimeSeries")[:N], frame[0])
    np.testing.assert_allclose(ad.get("FFT1:FFTFreqAxis")[:N // 2],
                               np.arange(N // 2) * 0.5 / 0.001 / (N // 2 - 1))
    ad.put("FFT1:FFTSuppressDC", "Enable")
    assert read_image(ad, "FFT1")[0, 0] == 0 and ad.get("FFT1:FFTAbsValue")[0] == 0


def test_fft1_averages_fftnumaverage_frames(ad):
    ad.put("FFT1:FFTSuppressDC", "Disable")
    ad.put("FFT1:FFTNumAverage", 4)
    ad.put("FFT1:FFTResetAverage", "Reset")
    ad.put("cam1:Gain", 1)
    ad.put("cam1:DataType", "Float32")               # gain 3 does not saturate
    offset = ad.get("cam1:Offset")
    ad.put("cam1:Offset", 0)                          # the whole frame scales with the gain
    try:
        first = read_image(ad, "FFT1")
        ad.put("cam1:Gain", 3)
        second = read_image(ad, "FFT1")
        np.testing.assert_allclose(second, 2 * first, rtol=1e-5,      # (1 + 3) / 2
                                   atol=1e-5 * first.max())   # Float32 frames
        assert ad.get("FFT1:FFTNumAveraged") == 3
    finally:
        ad.put("cam1:Gain", 1)
        ad.put("cam1:DataType", "UInt8")
        ad.put("cam1:Offset", offset)
        ad.put("FFT1:FFTNumAverage", 1)
