"""Simulated frames as the simDetector driver computes them (plain numpy, no I/O).

All image maths is vectorised: a 1024 x 1024 frame costs a few milliseconds, a grid
of peaks as much as one peak.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

#: NDDataType_t order (the DataType enum strings).
DATA_TYPES = ("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32",
              "Int64", "UInt64", "Float32", "Float64")
NUMPY_TYPES = {name: np.dtype(name.lower()) for name in DATA_TYPES}
SIM_MODES = ("LinearRamp", "Peaks", "Sine", "Offset&Noise")
#: Height of a Peaks-mode peak at Gain = GainX = GainY = 1 (counts).
PEAK_HEIGHT = 100.0
#: Amplitude of the Sine mode at Gain = 1 (counts).
SINE_AMPLITUDE = 100.0


@dataclasses.dataclass
class SimParams:
    """The driver parameters a frame depends on."""

    sim_mode: str = "Peaks"
    data_type: str = "UInt8"
    max_size_x: int = 1024
    max_size_y: int = 1024
    min_x: int = 0
    min_y: int = 0
    size_x: int = 1024
    size_y: int = 1024
    bin_x: int = 1
    bin_y: int = 1
    reverse_x: bool = False
    reverse_y: bool = False
    gain: float = 1.0
    gain_x: float = 1.0
    gain_y: float = 1.0
    offset: float = 0.0
    noise: float = 0.0
    peak_start_x: int = 512
    peak_start_y: int = 512
    peak_width_x: int = 60
    peak_width_y: int = 30
    peak_num_x: int = 1
    peak_num_y: int = 1
    peak_step_x: int = 100
    peak_step_y: int = 100
    peak_variation: float = 0.0
    #: Beamline coupling: a closed shutter gives a dark frame; the peaks follow
    #: the sample stage by (stage_dx, stage_dy) pixels.
    shutter_open: bool = True
    stage_dx: float = 0.0
    stage_dy: float = 0.0


def clamp_region(minimum: int, size: int, binning: int, max_size: int) -> tuple[int, int, int]:
    """(min, size, bin) clamped into the sensor as ADDriver does: min within
    0..max-1, size within 1..max-min, bin within 1..size."""
    minimum = min(max(int(minimum), 0), max_size - 1)
    size = min(max(int(size), 1), max_size - minimum)
    binning = min(max(int(binning), 1), size)
    return minimum, size, binning


def frame_shape(p: SimParams) -> tuple[int, int]:
    """(rows, columns) of the frames *p* produces."""
    _, sx, bx = clamp_region(p.min_x, p.size_x, p.bin_x, p.max_size_x)
    _, sy, by = clamp_region(p.min_y, p.size_y, p.bin_y, p.max_size_y)
    return sy // by, sx // bx


def _axes(p: SimParams) -> tuple[np.ndarray, np.ndarray]:
    mx, sx, bx = clamp_region(p.min_x, p.size_x, p.bin_x, p.max_size_x)
    my, sy, by = clamp_region(p.min_y, p.size_y, p.bin_y, p.max_size_y)
    x = mx + bx * np.arange(sx // bx, dtype=np.float64) + (bx - 1) / 2
    y = my + by * np.arange(sy // by, dtype=np.float64) + (by - 1) / 2
    return x, y


def _peaks(p: SimParams, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The PeakNumX x PeakNumY grid of Gaussian peaks (float32, rows x columns).

    Every peak is separable, ``a_ij * gy_j(row) * gx_i(column)``, so the grid is one
    matrix product ``GY^T A^T GX`` of the per-axis profiles and the amplitudes:
    a 5 x 5 grid costs what one peak does, not 25 full-frame passes."""
    nx, ny = max(p.peak_num_x, 0), max(p.peak_num_y, 0)
    if nx == 0 or ny == 0:
        return np.zeros((y.size, x.size), np.float32)
    wx, wy = max(p.peak_width_x, 1), max(p.peak_width_y, 1)
    cx = p.peak_start_x + p.peak_step_x * np.arange(nx) + p.stage_dx
    cy = p.peak_start_y + p.peak_step_y * np.arange(ny) + p.stage_dy
    gx = np.exp(-0.5 * ((x[np.newaxis, :] - cx[:, np.newaxis]) / wx) ** 2)   # nx x columns
    gy = np.exp(-0.5 * ((y[np.newaxis, :] - cy[:, np.newaxis]) / wy) ** 2)   # ny x rows
    amplitudes = np.full((nx, ny), PEAK_HEIGHT * p.gain * p.gain_x * p.gain_y)
    if p.peak_variation:                # random heights, drawn peak by peak (x outer)
        amplitudes *= 1 + p.peak_variation / 100 * rng.standard_normal((nx, ny))
    rows = (gy.T @ amplitudes.T).astype(np.float32)                          # rows x nx
    if nx == 1:                         # one column of peaks: an outer product is faster
        return np.multiply.outer(rows[:, 0], gx[0].astype(np.float32))
    return rows @ gx.astype(np.float32)


def _signal(p: SimParams, n: int, x: np.ndarray, y: np.ndarray,
            rng: np.random.Generator) -> np.ndarray | None:
    """The noiseless signal of frame number *n* (None in Offset&Noise mode)."""
    if p.sim_mode == "LinearRamp":
        return p.gain_x * x[np.newaxis, :] + p.gain_y * y[:, np.newaxis] + p.gain * n
    if p.sim_mode == "Peaks":
        return _peaks(p, x, y, rng)
    if p.sim_mode == "Sine":
        phase = 0.1 * n
        sx = np.sin(2 * math.pi * x / max(x.size / 4, 1) + phase)
        sy = np.sin(2 * math.pi * y / max(y.size / 4, 1) + phase)
        return SINE_AMPLITUDE * p.gain * (0.5 + 0.25 * p.gain_x * sx[np.newaxis, :]
                                          + 0.25 * p.gain_y * sy[:, np.newaxis])
    return None


def convert(image: np.ndarray, data_type: str) -> np.ndarray:
    """Cast to the DataType as C does: integers truncate and wrap modulo 2**bits."""
    dtype = NUMPY_TYPES[data_type]
    if dtype.kind == "f":
        return image.astype(dtype)
    # float -> integer truncates toward zero (C), then a narrower integer type wraps
    # modulo 2**bits like a C integer conversion. The intermediate is the narrowest
    # signed type holding every value (int16 is 8x less to write than int64).
    wide = np.int64
    if dtype.itemsize < 8 and image.size:
        low, high = image.min(), image.max()
        for candidate in (np.int16, np.int32):
            info = np.iinfo(candidate)
            if info.min - 1 < low and high < info.max + 1:
                wide = candidate
                break
    wide = image.astype(wide)
    return wide.view(np.uint64) if dtype == np.uint64 else wide.astype(dtype, copy=False)


def _key(p: SimParams) -> tuple:
    """Every parameter of *p*, as a comparable tuple (``dataclasses.astuple`` deep-
    copies field by field: ten times slower, and asked for every frame)."""
    return tuple(p.__dict__.values())


class FrameCache:
    """What a driver keeps from frame to frame. Like simDetector, which computes its
    peak pattern again only when a parameter changes, the noiseless Peaks pattern
    of the current parameters is kept (float32, read-only), and so is a whole
    noiseless frame that does not change (:func:`is_constant`); the frame is made in
    a scratch buffer that is reused instead of allocated for every frame. One
    cache serves one driver, whose frames are computed one at a time."""

    def __init__(self):
        self._key = None
        self._signal = None
        self._scratch = None
        self._frame_key = None
        self._frame = None

    def peaks(self, p: SimParams, x: np.ndarray, y: np.ndarray, rng) -> np.ndarray:
        if p.peak_variation:
            return _peaks(p, x, y, rng)     # random heights: a new pattern each frame
        key = dataclasses.astuple(dataclasses.replace(
            p, data_type="", offset=0.0, noise=0.0, reverse_x=False, reverse_y=False))
        if key != self._key:
            signal = _peaks(p, x, y, rng)
            signal.flags.writeable = False
            self._key, self._signal = key, signal
        return self._signal

    def constant_frame(self, p: SimParams):
        """The last frame computed for exactly *p*, if *p* gives the same frame
        every time (see :func:`is_constant`); None otherwise."""
        return self._frame if self._frame_key == _key(p) else None

    def known_constant(self, p: SimParams) -> np.ndarray | None:
        """The kept frame of *p* itself (read-only, shared: the driver hands it to
        plugins, which only read frames) when *p* gives a constant frame
        (:func:`is_constant`) already computed; None otherwise."""
        return self.constant_frame(p) if is_constant(p) else None

    def keep_frame(self, p: SimParams, frame: np.ndarray) -> None:
        kept = frame.copy()
        kept.flags.writeable = False
        self._frame_key, self._frame = _key(p), kept

    def scratch(self, shape: tuple[int, int]) -> np.ndarray:
        if self._scratch is None or self._scratch.shape != shape:
            self._scratch = np.empty(shape, dtype=np.float32)
        return self._scratch


def is_constant(p: SimParams) -> bool:
    """Whether every frame of *p* is the same whatever its number: no noise, and
    no signal that changes from frame to frame (Peaks without PeakVariation,
    Offset&Noise, or a closed shutter; LinearRamp and Sine move with the number)."""
    if p.noise:
        return False
    if not p.shutter_open or p.sim_mode == "Offset&Noise":
        return True
    return p.sim_mode == "Peaks" and not p.peak_variation


def compute_frame(p: SimParams, n: int, rng: np.random.Generator,
                  cache: FrameCache | None = None) -> np.ndarray:
    """Frame number *n* (0, 1, ... since the IOC started) as a (rows, columns) array.

    With a *cache* (the driver's), the Peaks pattern is reused while its
    parameters stay the same, and a noiseless frame that does not change from
    frame to frame (:func:`is_constant`) is computed once and copied while its
    parameters hold; the frame returned is always a new array."""
    constant = cache is not None and is_constant(p)
    if constant:
        kept = cache.constant_frame(p)
        if kept is not None:
            return kept.copy()
    frame = _compute_frame(p, n, rng, cache)
    if constant:
        cache.keep_frame(p, frame)
    return frame


def _compute_frame(p: SimParams, n: int, rng: np.random.Generator,
                   cache: FrameCache | None) -> np.ndarray:
    x, y = _axes(p)
    if not p.shutter_open:
        signal = None
    elif cache is not None and p.sim_mode == "Peaks":
        signal = cache.peaks(p, x, y, rng)
    else:
        signal = _signal(p, n, x, y, rng)
    if p.sim_mode == "LinearRamp" and signal is not None:
        image = signal  # the ramp carries no offset or noise, as in the driver
    else:
        # float32 keeps a 1024 x 1024 frame at a few milliseconds
        shape = (y.size, x.size)
        image = cache.scratch(shape) if cache is not None else np.empty(shape, np.float32)
        if p.noise:
            rng.random(shape, dtype=np.float32, out=image)
            image *= np.float32(p.noise)
            image += np.float32(p.offset)
        else:
            image.fill(p.offset)
        if signal is not None:
            image += signal.astype(np.float32, copy=False)
    if p.reverse_x:
        image = image[:, ::-1]
    if p.reverse_y:
        image = image[::-1, :]
    return np.ascontiguousarray(convert(image, p.data_type))
