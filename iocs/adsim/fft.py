"""NDPluginFFT (FFT1): the Fourier transform of each 1-D or 2-D frame, its magnitude
averaged over frames, passed on as a Float64 array.

As NDPluginFFT does: the frame is zero-padded to powers of two (nTimeX x nTimeY),
transformed with Numerical Recipes' ``four1``/``fourn`` sign (exp(+2 pi i jk/n), so
the imaginary part is numpy's negated), and the first half of each axis kept
(nFreqX = nTimeX/2, nFreqY = max(nTimeY/2, 1)); the magnitude is divided by the
number of points. A 2-D frame is handed to ``fourn`` with the x size as its *slow*
dimension, so a frame that is not square is transformed as the real plugin does it,
which is not numpy's ``fft2`` of the image. FFTSuppressDC zeroes the first bin.
FFTNumAverage frames are averaged (a running mean, restarted by FFTResetAverage or a
new FFTNumAverage or frame size). The waveforms carry the first row: FFTTimeSeries
(the padded input), FFTReal, FFTImaginary, FFTAbsValue (averaged); FFTTimeAxis and
FFTFreqAxis follow FFTTimePerPoint. The output array has its own UniqueId, counted
from 0, and the time it was made.
"""

from __future__ import annotations

import time

import numpy as np

from .plugins import NDArray, Plugin


def next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def frame_fft(frame: np.ndarray, *, suppress_dc: bool = False) -> dict:
    """The padded time series and the kept half of the transform of a 1-D or 2-D
    *frame* (rows are y): ``time`` (nTimeY, nTimeX), ``real``, ``imag``, ``abs``
    (nFreqY, nFreqX)."""
    data = np.asarray(frame, dtype=np.float64)
    rank = data.ndim
    if rank not in (1, 2):
        raise ValueError(f"FFT1 takes 1-D or 2-D arrays, not {rank}-D")
    data = data.reshape(1, -1) if rank == 1 else data
    ny_in, nx_in = data.shape
    nx, ny = next_pow2(nx_in), next_pow2(ny_in)
    series = np.zeros((ny, nx))
    series[:ny_in, :nx_in] = data
    if rank == 1:
        spectrum = np.conj(np.fft.fft(series[0]))[None, :]
    else:   # fourn with nn = {nTimeX, nTimeY}: the buffer read as (nTimeX, nTimeY)
        spectrum = np.conj(np.fft.fft2(series.reshape(nx, ny))).reshape(ny, nx)
    fx, fy = nx // 2, max(ny // 2, 1)
    kept = spectrum[:fy, :fx]
    real, imag = kept.real.copy(), kept.imag.copy()
    magnitude = np.abs(kept) / (nx * ny)
    if suppress_dc:
        real[0, 0] = imag[0, 0] = magnitude[0, 0] = 0.0
    return {"time": series, "real": real, "imag": imag, "abs": magnitude}


def axes(n_time: int, n_freq: int, time_per_point: float) -> tuple[np.ndarray, np.ndarray]:
    """FFTTimeAxis (i * dt) and FFTFreqAxis (i * 0.5 / dt / (nFreqX - 1))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.float64(0.5) / np.float64(time_per_point) / np.float64(n_freq - 1)
        return np.arange(n_time) * time_per_point, np.arange(n_freq) * step


class FFTPlugin(Plugin):
    """FFT1: each frame's transform; the averaged magnitude passed downstream."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.average = None          # the running mean of the magnitudes
        self.num_average = 0
        self.in_shape = None
        self.time_per_point = 0.0
        self.unique_id = 0

    async def handle(self, array: NDArray):
        if array.data.ndim not in (1, 2):
            raise ValueError(f"{self.name}: number of array dimensions must be 1 or 2")
        suppress = self.get("FFTSuppressDC") == "Enable"
        out = frame_fft(array.data, suppress_dc=suppress)
        fy, fx = out["abs"].shape
        waveforms = {}
        time_per_point = float(self.get("FFTTimePerPoint"))
        if array.data.shape != self.in_shape or time_per_point != self.time_per_point:
            if array.data.shape != self.in_shape:
                self.average = np.zeros((fy, fx))
            self.in_shape, self.time_per_point = array.data.shape, time_per_point
            waveforms["FFTTimeAxis"], waveforms["FFTFreqAxis"] = axes(
                out["time"].shape[1], fx, time_per_point)
        averaged = int(self.get("FFTNumAveraged"))
        wanted = int(self.get("FFTNumAverage"))
        if self.get("FFTResetAverage") == "Reset":
            await self.post({"FFTResetAverage": "Done"})
            averaged = 1
        if wanted != self.num_average:
            self.num_average, averaged = wanted, 1
        averaged = max(averaged, 1)
        self.average = self.average * (1 - 1 / averaged) + out["abs"] / averaged
        if averaged < wanted:
            averaged += 1
        waveforms.update({"FFTTimeSeries": out["time"][0], "FFTReal": out["real"][0],
                          "FFTImaginary": out["imag"][0], "FFTAbsValue": self.average[0]})
        await self.post({"FFTNumAveraged": averaged})
        await self.post_arrays(waveforms)
        if self.get("ArrayCallbacks") != "Enable":
            return False
        result = NDArray(self.average.copy() if array.data.ndim == 2 else self.average[0].copy(),
                         self.unique_id, time.time())
        self.unique_id += 1
        return result
