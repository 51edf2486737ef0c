"""Spot cameras: a beam spot that moves as two motors move (the NSLS-II tutorial model).

Physics (plain functions below, testable without the network), for a frame of
``height`` rows x ``width`` columns of int32 counts:

- background: Poisson with mean ``BACKGROUND`` (1000) per pixel, independent of
  exposure: the dark signal, all a closed shutter lets through;
- spot: Poisson with mean ``200 * exposure * I * G``, where I is the ring current
  (mA) and G a Gaussian of sigma 50 px along x (columns) and 25 px along y (rows),
  peak 1, centred at column ``320 - x``, row ``240 - y`` (x, y the two motors'
  positions), times ``exp(-(x^2 + y^2) / 100^2)`` so the spot dims off-centre;
- for flat-field work: the spot signal (never the background) is multiplied by a
  fixed, seeded pixel-response map (:func:`pixel_response`, smooth, within
  1 +/- 0.1, with no gradient steep enough to move the spot's centroid), and,
  when the sample stage is in the beam (``|samx| <= 5`` and ``|samy| <= 5``), by the
  sample's transmission map (:func:`sample_transmission`: stripes, a disc and a
  square, 0.3 .. 0.9). samx parks at 50, so by default the sample is out. Both
  cameras sit behind the same sample stage.

Drawing a frame (:func:`spot_frame`, a few milliseconds for 480 x 640): background
and spot are independent Poisson counts, so each pixel is one Poisson count of their
summed mean (:func:`frame_mean`, at least 1000, the spot computed only in the rows
and columns it reaches), drawn by :func:`simbeamline_iocs.poisson.poisson_counts`
in the normal limit with its Poisson corrections (statistically indistinguishable
from an exact draw; tests/test_frame_statistics.py). The normal deviates (Box-Muller,
about 2.5 ms of 4.5 for 480 x 640) do not depend on the beam: a camera draws each
frame's during its exposure (the next frame's right after the last).

A frame shows the beam at the midpoint of its exposure (motor positions, current,
shutter, sample): for a spot moving at constant speed that is the centroid of the
smeared spot a real exposure records, and for a decaying current its mean over the
exposure (to second order). It is drawn during the exposure's second half, so an
acquisition of more than twice a frame's drawing time (1.5 to 3 ms for 480 x 640)
ends with its exposure.

PVs of one camera (prefix ``sim:spot:`` or ``sim:dot:``):
    exp            exposure time (s), default 1; must be positive, finite and at
                   most MAX_EXPOSURE (3600 s)
    acquire        put 1 with completion: returns after the exposure, once the new
                   frame (the beam at mid-exposure) is in ``image``, ``sum`` and
                   ``frame_counter``; reads 1
                   while acquiring, 0 otherwise; acquisitions are serialised.
                   Put 0 during an acquisition to abort it: its put fails
                   ("aborted"), no frame is taken
    image          the frame, int32 waveform of width*height elements, row-major
    sum            total counts of the frame
    width, height  frame size (columns, rows)
    frame_counter  frames acquired since the IOC started

The exposure waits on the simulation clock (:mod:`.clock`): at time scale 0.01 a
5 s exposure takes 50 ms, and its counts are those of a 5 s exposure. Fault (set
by :mod:`.faults`): a hung camera never finishes an acquisition until it is
aborted (as a real hung detector needs an abort, clearing the fault does not
release the acquisition in progress; it lets the next one finish).
"""

from __future__ import annotations

import asyncio
import functools
import math
from dataclasses import dataclass

import numpy as np
from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from .clock import CLOCK
from .poisson import poisson_counts, standard_normals
from .validation import accept, positive_finite

BACKGROUND = 1000.0      #: mean dark counts per pixel, independent of exposure
GAIN = 200.0             #: counts per (s * mA) at the spot's peak
SIGMA_X = 50.0           #: px, spot width along columns
SIGMA_Y = 25.0           #: px, spot width along rows
CENTRE_COLUMN = 320.0    #: column of the spot for x = 0
CENTRE_ROW = 240.0       #: row of the spot for y = 0
FALLOFF = 100.0          #: motor units: the spot dims as exp(-(x^2+y^2)/FALLOFF^2)
SAMPLE_HALF_WIDTH = 5.0  #: |samx|, |samy| within this put the sample in the beam
PIXEL_RESPONSE_SEED = 20240917
DEFAULT_SHAPE = (480, 640)  #: (rows, columns)
FRAME_BACKLOG = 10       #: frames queued per image subscriber before old ones drop
MAX_EXPOSURE = 3600.0    #: s, the longest exposure the camera accepts


# --- physics: plain functions --------------------------------------------------------

def _spot_axes(shape: tuple[int, int], x: float, y: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The spot's separable factors: G along rows, G along columns, and the dimming."""
    rows, columns = shape
    gx = np.exp(-0.5 * ((np.arange(columns) - (CENTRE_COLUMN - x)) / SIGMA_X) ** 2)
    gy = np.exp(-0.5 * ((np.arange(rows) - (CENTRE_ROW - y)) / SIGMA_Y) ** 2)
    return gy, gx, math.exp(-(x * x + y * y) / FALLOFF ** 2)


def spot_profile(shape: tuple[int, int], x: float, y: float) -> np.ndarray:
    """G * exp(-(x^2+y^2)/100^2): the spot's shape (peak <= 1) for motor positions x, y."""
    gy, gx, dim = _spot_axes(shape, x, y)
    return np.outer(gy, gx) * dim


@functools.lru_cache(maxsize=8)
def _pixel_response(shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(PIXEL_RESPONSE_SEED)
    rows, columns = np.mgrid[0:shape[0], 0:shape[1]].astype(float)

    def ripples(count, shortest, longest):
        field = np.zeros(shape)
        for _ in range(count):
            k = 2 * np.pi / rng.uniform(shortest, longest)
            angle, phase = rng.uniform(0.0, 2 * np.pi, size=2)
            field += np.cos(k * (np.cos(angle) * columns + np.sin(angle) * rows) + phase)
        field -= field.mean()
        return field / max(np.abs(field).max(), 1e-12)   # -1 .. 1

    # A gentle large-scale shading (wavelengths of several frame widths) and a fine
    # texture (20..40 px), both smooth. Nothing in between: a gain gradient across
    # the spot (sigma 25..50 px) would shift its centroid, which must stay at
    # 320 - x, 240 - y within a pixel or two.
    response = 1.0 + 0.06 * ripples(3, 3000.0, 6000.0) + 0.04 * ripples(8, 20.0, 40.0)
    response.setflags(write=False)
    return response


def pixel_response(shape: tuple[int, int] = DEFAULT_SHAPE) -> np.ndarray:
    """The detector's fixed pixel-response (gain) map: smooth, read-only, within
    1 +/- 0.1 (a shading of amplitude 0.06 plus a texture of amplitude 0.04; on a
    480 x 640 frame it spans about 0.93 .. 1.08).

    Deterministic (seeded) and defined per absolute pixel, so every frame of the same
    shape, every camera and every test sees the same map.
    """
    return _pixel_response(tuple(shape))


@functools.lru_cache(maxsize=8)
def _sample_transmission(shape: tuple[int, int]) -> np.ndarray:
    rows, columns = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    t = np.full(shape, 0.9)
    # a band of vertical stripes, 10 px wide, just above the beam centre
    band = (rows >= CENTRE_ROW - 40) & (rows < CENTRE_ROW - 5)
    stripes = (columns // 10) % 2 == 1
    t[band & stripes] = 0.6
    # a dense disc, radius 30 px, just below and left of the centre
    disc = (columns - (CENTRE_COLUMN - 40)) ** 2 + (rows - (CENTRE_ROW + 20)) ** 2 <= 30 ** 2
    t[disc] = 0.3
    # a medium square, 40 px wide, right of the centre
    square = (np.abs(columns - (CENTRE_COLUMN + 50)) <= 20) & (np.abs(rows - (CENTRE_ROW + 20)) <= 20)
    t[square] = 0.5
    t.setflags(write=False)
    return t


def sample_transmission(shape: tuple[int, int] = DEFAULT_SHAPE) -> np.ndarray:
    """The sample's transmission map (read-only), for a sample in the beam.

    0.9 everywhere except, around the beam centre (column 320, row 240): a band
    of vertical stripes of 0.6 (rows 200..234, every other 10 px column block), a
    disc of 0.3 (radius 30 px at column 280, row 260) and a square of 0.5 (40 px,
    centred at column 370, row 260).
    """
    return _sample_transmission(tuple(shape))


def sample_in_beam(samx: float, samy: float) -> bool:
    """True when the sample stage puts the sample in the beam."""
    return abs(samx) <= SAMPLE_HALF_WIDTH and abs(samy) <= SAMPLE_HALF_WIDTH


def expected_signal(shape: tuple[int, int], x: float, y: float, exposure: float,
                    current: float, shutter_open: bool = True,
                    sample_in: bool = False) -> np.ndarray:
    """Mean spot counts per pixel above the background (float64, rows x columns)."""
    if not shutter_open:
        return np.zeros(shape)
    signal = GAIN * exposure * current * spot_profile(shape, x, y) * pixel_response(shape)
    if sample_in:
        signal *= sample_transmission(shape)
    return signal


def expected_frame(shape, x, y, exposure, current, shutter_open=True, sample_in=False):
    """Mean counts per pixel, background included."""
    return BACKGROUND + expected_signal(shape, x, y, exposure, current, shutter_open,
                                        sample_in)


#: Spot counts per pixel below which :func:`frame_mean` leaves a pixel at the
#: background: a float32 mean near 1000 cannot hold less than 6e-5 anyway.
SIGNAL_FLOOR = 1e-6


def frame_mean(shape: tuple[int, int], x: float, y: float, exposure: float,
               current: float, shutter_open: bool = True,
               sample_in: bool = False) -> np.ndarray:
    """:func:`expected_frame` as float32, for drawing frames: the spot is computed
    only in the rows and columns where it reaches SIGNAL_FLOOR counts (outside,
    every pixel gets less than 1.1 * SIGNAL_FLOOR, a float32 1000 could not hold it)."""
    mean = np.full(shape, BACKGROUND, dtype=np.float32)
    if not shutter_open:
        return mean
    gy, gx, dim = _spot_axes(shape, x, y)
    peak = GAIN * exposure * current * dim
    # any pixel of a dropped row or column has at most peak * g * response < 1.1 floor
    rows = np.flatnonzero(peak * gy >= SIGNAL_FLOOR)
    columns = np.flatnonzero(peak * gx >= SIGNAL_FLOOR)
    if rows.size == 0 or columns.size == 0:
        return mean
    box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    signal = np.multiply.outer((peak * gy[box[0]]).astype(np.float32),
                               gx[box[1]].astype(np.float32))
    signal *= _float32(pixel_response, shape)[box]
    if sample_in:
        signal *= _float32(sample_transmission, shape)[box]
    mean[box] += signal
    return mean


@functools.lru_cache(maxsize=8)
def _float32(model, shape: tuple[int, int]) -> np.ndarray:
    """A read-only float32 copy of a fixed map (pixel response, transmission)."""
    values = model(shape).astype(np.float32)
    values.setflags(write=False)
    return values


def spot_frame(rng: np.random.Generator, shape: tuple[int, int], x: float, y: float,
               exposure: float, current: float, shutter_open: bool = True,
               sample_in: bool = False, normals: np.ndarray | None = None) -> np.ndarray:
    """One frame of int32 counts: Poisson background plus Poisson spot signal.

    The two are independent Poisson counts, so each pixel is one Poisson count of
    their summed mean (at least 1000), drawn by :func:`poisson.poisson_counts`
    (from *normals*, deviates drawn ahead, if given).
    """
    if not shutter_open:
        return poisson_counts(rng, BACKGROUND, shape, normals=normals)
    return poisson_counts(rng, frame_mean(shape, x, y, exposure, current, True, sample_in),
                          normals=normals)


@dataclass(frozen=True)
class BeamState:
    """What a camera sees at the moment a frame is taken."""

    x: float = 0.0
    y: float = 0.0
    current: float = 500.0
    shutter_open: bool = True
    sample_in: bool = False


# --- the PV group -------------------------------------------------------------------

class SpotCamera(PVGroup):
    """One spot camera. Its beam comes from ``parent.beam_state(x_motor, y_motor)``.

    Without a parent (a camera on its own) the beam is centred, 500 mA, shutter open.
    Use :meth:`sized` for a frame size other than 640 x 480.
    """

    shape = DEFAULT_SHAPE

    width = pvproperty(value=DEFAULT_SHAPE[1], name="width", read_only=True,
                       doc="frame width (columns)")
    height = pvproperty(value=DEFAULT_SHAPE[0], name="height", read_only=True,
                        doc="frame height (rows)")
    exp = pvproperty(value=1.0, name="exp", precision=3, units="s", lower_ctrl_limit=0.0,
                     upper_ctrl_limit=MAX_EXPOSURE,
                     doc="exposure time (s)")
    acquire = pvproperty(value=0, name="acquire",
                         doc="put 1 with completion to take one frame")
    image = pvproperty(value=np.zeros(DEFAULT_SHAPE[0] * DEFAULT_SHAPE[1], np.int32),
                       name="image", dtype=ChannelType.LONG, read_only=True,
                       max_length=DEFAULT_SHAPE[0] * DEFAULT_SHAPE[1],
                       max_subscription_backlog=FRAME_BACKLOG,
                       doc="last frame, row-major int32")
    sum = pvproperty(value=0.0, name="sum", read_only=True, precision=0,
                     units="counts", doc="total counts of the last frame")
    frame_counter = pvproperty(value=0, name="frame_counter", read_only=True,
                               doc="frames acquired")

    @classmethod
    def sized(cls, width: int, height: int) -> type["SpotCamera"]:
        """This camera class with frames of *height* rows x *width* columns."""
        if (height, width) == cls.shape:
            return cls
        if width < 1 or height < 1:
            raise ValueError(f"frame size {width} x {height} must be at least 1 x 1")
        n = width * height
        return type(f"{cls.__name__}{width}x{height}", (cls,), {
            "shape": (height, width),
            "width": pvproperty(value=width, name="width", read_only=True,
                                doc="frame width (columns)"),
            "height": pvproperty(value=height, name="height", read_only=True,
                                 doc="frame height (rows)"),
            "image": pvproperty(value=np.zeros(n, np.int32), name="image",
                                dtype=ChannelType.LONG, read_only=True, max_length=n,
                                max_subscription_backlog=FRAME_BACKLOG,
                                doc="last frame, row-major int32"),
        })

    def __init__(self, *args, x_motor="spotx", y_motor="spoty", seed=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.x_motor, self.y_motor = x_motor, y_motor
        self.rng = np.random.default_rng(seed)
        self._busy = asyncio.Lock()
        self._normals = None                    #: the next frame's deviates, being drawn
        self._abort = asyncio.Event()
        self.hang = False                       #: fault: acquisitions never finish

    def beam_state(self) -> BeamState:
        """The beam as this camera sees it now."""
        if self.parent is None or not hasattr(self.parent, "beam_state"):
            return BeamState()
        return self.parent.beam_state(self.x_motor, self.y_motor)

    @exp.putter
    async def exp(self, instance, value):
        value = positive_finite(value, "exposure")
        if value > MAX_EXPOSURE:
            raise ValueError(f"exposure {value!r} s is longer than the camera's "
                             f"{MAX_EXPOSURE:g} s maximum")
        return await accept(instance, value)

    @acquire.putter
    async def acquire(self, instance, value):
        """Expose; the frame is drawn from the beam at the exposure's midpoint, during
        its second half, and published when the exposure ends."""
        if not value:
            self._abort.set()                   # abort the acquisition in progress
            return 0
        async with self._busy:                  # one acquisition at a time
            await accept(instance, 1)           # clear a previous abort's alarm
            self._abort.clear()
            await instance.write(1, verify_value=False)
            loop = asyncio.get_running_loop()
            if self._normals is None:           # drawn during the exposure
                self._draw_normals(loop)
            exposure = self.exp.value
            end = CLOCK.now() + exposure
            half = None if self.hang else exposure / 2      # a hung camera: for ever
            aborted = await CLOCK.wait(half, self._abort)
            drawing = None
            if not aborted:                     # the beam at mid-exposure
                drawing = asyncio.ensure_future(
                    self._draw_frame(loop, exposure, self.beam_state()))
                # to the exposure's end (a timer's lateness in the first half not added)
                aborted = await CLOCK.wait(end - CLOCK.now(), self._abort)
            if aborted:
                if drawing is not None:
                    await drawing               # its deviates are spent: draw new ones
                    self._draw_normals(loop)
                await instance.write(0, verify_value=False)
                raise RuntimeError(f"{instance.pvname}: acquisition aborted before the "
                                   "exposure ended; no frame was taken")
            frame = await drawing
            await self.image.write(frame.ravel())
            await self.sum.write(float(frame.sum(dtype=np.int64)))
            await self.frame_counter.write(self.frame_counter.value + 1)
            # the next frame's deviates, drawn while the client reads this one and
            # during the next exposure (most of a frame's cost)
            self._draw_normals(loop)
        return 0

    async def _draw_frame(self, loop, exposure: float, state: BeamState) -> np.ndarray:
        """A frame of *exposure* s of the beam in *state*, drawn in a worker thread
        from the deviates drawn ahead (each set used once)."""
        normals, self._normals = await self._normals, None
        return await loop.run_in_executor(
            None, functools.partial(spot_frame, self.rng, self.shape, state.x, state.y,
                                    exposure, state.current, state.shutter_open,
                                    state.sample_in, normals=normals))

    def _draw_normals(self, loop) -> None:
        """Start drawing a frame's normal deviates in a worker thread (``self._normals``)."""
        self._normals = loop.run_in_executor(None, standard_normals, self.rng, self.shape)
