"""Cost of drawing simulated frames: today's samplers against the previous ones, same run.

    python benchmarks/bench_frames.py [--repeat 40]

Spot camera (480 x 640 int32), three ways, each timed --repeat times, interleaved,
medians shown:

- ``numpy Poisson``: the previous model, two exact numpy Poisson draws per frame
  (background of mean 1000, then the spot's mean), as the IOC drew them before;
- ``spot_frame``: the IOC's sampler now (one corrected-normal draw of the summed mean,
  simbeamline_iocs.poisson);
- ``IOC acquire``: a whole acquisition inside the IOC process (the ``acquire`` putter
  of a SpotCamera PVGroup on an asyncio loop, exposure 1 ms: sleep, beam state, frame
  in the executor, the image/sum/frame_counter PV writes), once with each sampler;
- the frame's 307,200 standard normal deviates (most of spot_frame's cost, drawn
  during the exposure): numpy's ziggurat sampler against simbeamline_iocs.poisson's
  Box-Muller transform.

ADSim (1024 x 1024): compute_frame with the driver's FrameCache, UInt8, Noise 10, for
one peak and for a 5 x 5 grid with PeakVariation 5 %, against the previous drawing
(peaks summed one by one, integer cast through int64), also reproduced here.

Nothing is asserted; the ratios are the result.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np

from simbeamline_iocs import poisson, spotcam
from simbeamline_iocs.adsim import frames

SHAPE = (480, 640)


# --- the previous samplers, as they were ------------------------------------------------

def numpy_poisson_frame(rng, shape, x, y, exposure, current, shutter_open=True,
                        sample_in=False, normals=None):
    """The spot frame as drawn before: two exact numpy Poisson draws (the deviates the
    camera drew ahead for today's sampler go unused)."""
    frame = rng.poisson(spotcam.BACKGROUND, size=shape)
    if shutter_open:
        frame += rng.poisson(spotcam.expected_signal(shape, x, y, exposure, current, True,
                                                     sample_in))
    return frame.astype(np.int32)


def previous_peaks(p, x, y, rng):
    image = np.zeros((y.size, x.size))
    wx, wy = max(p.peak_width_x, 1), max(p.peak_width_y, 1)
    height = frames.PEAK_HEIGHT * p.gain * p.gain_x * p.gain_y
    for i in range(max(p.peak_num_x, 0)):
        gx = np.exp(-0.5 * ((x - (p.peak_start_x + i * p.peak_step_x + p.stage_dx)) / wx) ** 2)
        for j in range(max(p.peak_num_y, 0)):
            gy = np.exp(-0.5 * ((y - (p.peak_start_y + j * p.peak_step_y + p.stage_dy)) / wy) ** 2)
            amplitude = height * (1 + p.peak_variation / 100 * rng.standard_normal())
            image += amplitude * np.outer(gy, gx)
    return image.astype(np.float32)


def previous_convert(image, data_type):
    dtype = frames.NUMPY_TYPES[data_type]
    if dtype.kind == "f":
        return image.astype(dtype)
    wide = image.astype(np.int64)
    return wide.view(np.uint64) if dtype == np.uint64 else wide.astype(dtype)


class Previous:
    """Swap the ADSim drawing functions for the previous ones while in use."""

    def __enter__(self):
        self.saved = frames._peaks, frames.convert
        frames._peaks, frames.convert = previous_peaks, previous_convert

    def __exit__(self, *exc):
        frames._peaks, frames.convert = self.saved


# --- timing -----------------------------------------------------------------------------

def median_ms(times):
    return 1e3 * statistics.median(times)


def time_once(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def ioc_acquisitions(sampler, repeat: int) -> list[float]:
    """Seconds per acquire put (exposure 1 ms) in an in-process SpotCamera PVGroup."""
    saved = spotcam.spot_frame
    spotcam.spot_frame = sampler            # what the acquire putter calls
    try:
        camera = spotcam.SpotCamera(prefix="bench:")

        async def run():
            await camera.exp.write(0.001)
            await camera.acquire.write(1)   # warm-up
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                await camera.acquire.write(1)
                times.append(time.perf_counter() - start)
            return times

        return asyncio.run(run())
    finally:
        spotcam.spot_frame = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=40, help="timings per case (default 40)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    spot_cases = {
        "exposure 5 ms": (0, 0, 0.005, 500.0, True),
        "exposure 1 s": (0, 0, 1.0, 500.0, True),
        "shutter closed": (0, 0, 1.0, 500.0, False),
    }
    print(f"Spot camera frame, {SHAPE[0]} x {SHAPE[1]} int32, median of {args.repeat}:")
    print("| frame | numpy Poisson (before) ms | spot_frame (now) ms | speed-up |")
    print("|---|---|---|---|")
    for label, case in spot_cases.items():
        before, now = [], []
        for _ in range(args.repeat):
            before.append(time_once(lambda: numpy_poisson_frame(rng, SHAPE, *case)))
            now.append(time_once(lambda: spotcam.spot_frame(rng, SHAPE, *case)))
        print(f"| {label} | {median_ms(before):.2f} | {median_ms(now):.2f} | "
              f"{statistics.median(before) / statistics.median(now):.1f}x |")

    before, now = [], []
    for _ in range(args.repeat):
        before.append(time_once(lambda: rng.standard_normal(SHAPE, dtype=np.float32)))
        now.append(time_once(lambda: poisson.standard_normals(rng, SHAPE)))
    print(f"| the frame's normal deviates: numpy's ziggurat (before) / Box-Muller (now) | "
          f"{median_ms(before):.2f} | {median_ms(now):.2f} | "
          f"{statistics.median(before) / statistics.median(now):.1f}x |")

    before, now = [], []
    for _ in range(3):                      # interleaved blocks
        before += ioc_acquisitions(numpy_poisson_frame, args.repeat // 3 + 1)
        now += ioc_acquisitions(spotcam.spot_frame, args.repeat // 3 + 1)
    print(f"| IOC acquire, exposure 1 ms (whole putter) | {median_ms(before):.2f} | "
          f"{median_ms(now):.2f} | {statistics.median(before) / statistics.median(now):.1f}x |")

    print()
    print(f"ADSim compute_frame, 1024 x 1024 UInt8, Noise 10, FrameCache, median of {args.repeat}:")
    print("| frame | before ms | now ms | speed-up |")
    print("|---|---|---|---|")
    ad_cases = {
        "Peaks, one peak": frames.SimParams(noise=10.0),
        "Peaks, 5 x 5 grid, PeakVariation 5 %": frames.SimParams(
            noise=10.0, peak_num_x=5, peak_num_y=5, peak_start_x=112, peak_start_y=112,
            peak_step_x=200, peak_step_y=200, peak_variation=5.0),
        "Offset&Noise": frames.SimParams(sim_mode="Offset&Noise", noise=10.0, offset=5.0),
    }
    for label, p in ad_cases.items():
        before, now = [], []
        old_cache, new_cache = frames.FrameCache(), frames.FrameCache()
        for n in range(args.repeat):
            with Previous():
                before.append(time_once(lambda: frames.compute_frame(p, n, rng, old_cache)))
            now.append(time_once(lambda: frames.compute_frame(p, n, rng, new_cache)))
        print(f"| {label} | {median_ms(before):.2f} | {median_ms(now):.2f} | "
              f"{statistics.median(before) / statistics.median(now):.1f}x |")


if __name__ == "__main__":
    main()
