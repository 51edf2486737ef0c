"""The spot camera IOC's frames, read over Channel Access, are statistically the model's.

The same checks as tests/test_frame_statistics.py, on frames taken and read as a
client does (put with completion on ``acquire``, then ``image``) from the IOC started
by the ``beamline`` fixture: per-pixel mean, variance and third moment against the
model at the motors' positions and the ring's current, the spot's centroid and
width, and a goodness-of-fit test of closed-shutter frames against Poisson(1000).
The IOC's generator is unseeded: a correct IOC fails the goodness-of-fit test with
probability ALPHA (0.1 %), the moment checks far less often.
"""

from __future__ import annotations

import numpy as np
import pytest
from ophyd import EpicsMotor, EpicsSignal, EpicsSignalRO
from simbeamline_iocs import spotcam
from statistics_support import (ALPHA, PixelMoments, centroid_and_width, check_pixel_moments,
                                poisson_goodness_of_fit)

TIMEOUT = 30.0
SHAPE = (480, 640)
X, Y = 30.0, -20.0           # spot motors: the spot off-centre, at column 290, row 260
EXPOSURE = 0.02              # s: a peak of about 2000 counts over the background


class Camera:
    """``sim:spot:`` as a client sees it: acquire with completion, then read the frame."""

    def __init__(self, prefix: str):
        self.exposure = EpicsSignal(f"{prefix}spot:exp", name="exp")
        self.acquire = EpicsSignal(f"{prefix}spot:acquire", name="acquire", put_complete=True)
        self.image = EpicsSignalRO(f"{prefix}spot:image", name="image")
        self.current = EpicsSignalRO(f"{prefix}current", name="I")
        self.shutter = EpicsSignal(f"{prefix}shutter", name="shutter", put_complete=True,
                                   string=True)
        for s in (self.exposure, self.acquire, self.image, self.current, self.shutter):
            s.wait_for_connection(timeout=TIMEOUT)

    def frames(self, count: int) -> np.ndarray:
        out = np.empty((count, *SHAPE), np.int32)
        for i in range(count):
            self.acquire.set(1, timeout=TIMEOUT).wait(TIMEOUT)
            out[i] = np.asarray(self.image.get(use_monitor=False)).reshape(SHAPE)
        return out


@pytest.fixture(scope="module")
def camera(beamline):
    cam = Camera(beamline.prefix)
    motors = [EpicsMotor(f"{beamline.prefix}m:{name}", name=name) for name in ("spotx", "spoty")]
    for m in motors:
        m.wait_for_connection(timeout=TIMEOUT)
    saved = cam.exposure.get()
    try:
        for m, target in zip(motors, (X, Y)):
            m.move(target, wait=True, timeout=TIMEOUT)
        cam.exposure.put(EXPOSURE, wait=True)
        yield cam
    finally:
        cam.shutter.set("Open").wait(TIMEOUT)
        cam.exposure.put(saved, wait=True)
        for m in motors:
            m.move(0, wait=True, timeout=TIMEOUT)


def bright_frames(camera: Camera, count: int) -> tuple[np.ndarray, float]:
    """*count* frames and the ring current they saw (read before and after; taken
    again if a top-up happened in between, when the current is not known)."""
    for _ in range(3):
        before = camera.current.get(use_monitor=False)
        frames = camera.frames(count)
        after = camera.current.get(use_monitor=False)
        if abs(after - before) < 0.5:          # decay alone: ~0.01 mA/s
            return frames, (before + after) / 2
    raise AssertionError(f"the ring current kept jumping: {before} -> {after} mA")


def test_ioc_frames_follow_the_model_pixel_by_pixel(camera):
    frames, current = bright_frames(camera, 30)
    model = spotcam.expected_frame(SHAPE, X, Y, EXPOSURE, current)
    moments = PixelMoments(model)
    for frame in frames:
        moments.add(frame)
    check_pixel_moments(moments, label="all pixels")
    spot = model > 1000.0 + 0.5 * (model.max() - 1000.0)
    check_pixel_moments(moments, spot, label="the bright half of the spot")
    check_pixel_moments(moments, model < 1000.0 + 1e-3, label="background")
    # the spot's centroid and width, from the mean frame
    cx, cy, sx, sy = centroid_and_width(frames.mean(axis=0) - spotcam.BACKGROUND)
    mx, my, msx, msy = centroid_and_width(model - spotcam.BACKGROUND)
    assert (mx, my) == pytest.approx((320 - X, 240 - Y), abs=1.0)
    assert (cx, cy) == pytest.approx((mx, my), abs=0.5)
    assert (sx, sy) == pytest.approx((msx, msy), abs=1.0)


def test_ioc_dark_frames_pass_a_poisson_goodness_of_fit_test(camera):
    camera.shutter.set("Closed").wait(TIMEOUT)
    try:
        dark = camera.frames(5)                       # 1.5 million pixels
    finally:
        camera.shutter.set("Open").wait(TIMEOUT)
    _, p = poisson_goodness_of_fit(dark, spotcam.BACKGROUND)
    assert p > ALPHA
