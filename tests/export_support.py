"""In-process runs for the export tests: real RunEngine, real databroker catalog
(temporary), real NPY_SEQ frame files, frames from the spot camera's own model.

The detector is ophyd.sim's SynSignalWithRegistry (the device ophyd ships for
exactly this: it writes each frame to a .npy file and emits Resource/Datum
documents with spec NPY_SEQ, which databroker reads with ophyd's registered
handler), with the simulated spot camera's physics (simbeamline_iocs.spotcam)
producing the frames. Integration tests use the IOCs instead.
"""

from __future__ import annotations

import time

import databroker
import numpy as np
from bluesky import RunEngine
from ophyd.sim import SynAxis, SynSignalWithRegistry

from simbeamline_iocs import spotcam

SHAPE = (480, 640)


class Session:
    """A RunEngine subscribed to a temporary catalog, a spot-model detector, the
    spot motors, a shutter (SynAxis: 0 closed, 1 open) and the sample stage's samx.

    ``lifetime`` (s) makes the ring current decay from 500 mA during the test, for
    a drifting beam. ``exposure_time`` is the wall time (s) each frame's exposure
    takes, as ophyd.sim's detectors model it; with it the drift over a series has a
    floor that does not depend on how fast the machine computes frames.
    """

    def __init__(self, tmp_path, *, exposure=1.0, dtype=np.int32, seed=1, lifetime=None,
                 exposure_time=0.0):
        self.db = databroker.temp()
        self.RE = RunEngine({}, call_returns_result=True)
        self.RE.subscribe(self.db.insert)
        self.lifetime = lifetime
        self.t0 = time.time()
        self.x = SynAxis(name="motor_spotx")
        self.y = SynAxis(name="motor_spoty")
        self.shutter = SynAxis(name="shutter")
        self.shutter.set(1).wait()
        self.samx = SynAxis(name="motor_samx")
        self.samx.set(50).wait()
        rng = np.random.default_rng(seed)

        def frame():
            # ophyd.sim's own exposure_time runs in a thread that SynSignalWithRegistry
            # does not wait for (it would save the previous frame), so expose here
            time.sleep(exposure_time)
            counts = spotcam.spot_frame(
                rng, SHAPE, self.x.readback.get(), self.y.readback.get(), exposure,
                self.current(), shutter_open=self.shutter.readback.get() >= 0.5,
                sample_in=spotcam.sample_in_beam(self.samx.readback.get(), 0.0))
            return counts.astype(dtype)

        frames_dir = tmp_path / "frames"
        frames_dir.mkdir(exist_ok=True)
        self.spot = SynSignalWithRegistry(frame, name="spot_img", save_path=str(frames_dir))

    def current(self) -> float:
        if self.lifetime is None:
            return 500.0
        return 500.0 * float(np.exp(-(time.time() - self.t0) / self.lifetime))

    def run(self, plan, *subs, **md):
        """Run *plan*; return its uids (tuple)."""
        result = self.RE(plan, *subs, **md)
        return result.run_start_uids

    def frames(self, uid):
        """The run's spot frames as stored (numpy stack)."""
        return np.stack(list(self.db[uid].data("spot_img")))


def listing(directory):
    """Every file below *directory* (relative paths), sorted."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
