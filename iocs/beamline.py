"""The whole simulated beamline in one IOC process: ring, motors, shutter, two cameras.

    python -m simbeamline_iocs.beamline [--prefix sim:] [--width 640] [--height 480]
                                        [--interfaces 127.0.0.2] [--list-pvs]

One process, because the physics is coupled: a camera's frame depends on its two
motors, the sample stage, the shutter and the ring current *at the moment the
exposure ends*. In one process the cameras read those values from memory, so a
frame is deterministic given the state, with no CA round trip, no stale monitor
and no start-up ordering between IOCs.

PVs (prefix ``sim:`` by default, or ``$SIMBEAMLINE_PREFIX``):

    sim:current, sim:current:topup_period, sim:current:lifetime   (ring.py)
    sim:m:spotx, sim:m:spoty, sim:m:dotx, sim:m:doty,
    sim:m:samx, sim:m:samy  -- motor records with their fields   (motor.py)
    sim:shutter, sim:shutter_RBV, sim:shutter:interlock          (shutter.py)
    sim:spot:{exp,acquire,image,sum,width,height,frame_counter}  (spotcam.py)
    sim:dot:{...}  -- the same, driven by dotx/doty
    sim:time_scale -- the simulation clock's time scale          (timescale.py)
    sim:fault:...  -- scripted faults, inject and clear          (faults.py)
"""

from __future__ import annotations

import argparse

from caproto.server import PVGroup, SubGroup

from .timescale import TimeScale
from .faults import Faults
from . import beamline_autosave
from .motor import BeamlineMotors
from .ring import RingCurrent
from .server import serve
from .shutter import Shutter
from .spotcam import BeamState, SpotCamera, sample_in_beam
from .validation import refuse_quietly


class Beamline(PVGroup):
    """The simulated beamline ``{prefix}``: every group shares one memory."""

    ring = SubGroup(RingCurrent, prefix="")
    motors = SubGroup(BeamlineMotors, prefix="m:")
    shutter = SubGroup(Shutter, prefix="")
    spot = SubGroup(SpotCamera, prefix="spot:", x_motor="spotx", y_motor="spoty")
    dot = SubGroup(SpotCamera, prefix="dot:", x_motor="dotx", y_motor="doty")
    clock = SubGroup(TimeScale, prefix="")
    faults = SubGroup(Faults, prefix="fault:")

    def beam_state(self, x_motor: str, y_motor: str) -> BeamState:
        """What a camera on motors *x_motor*, *y_motor* sees right now.

        Motor positions are the hardware (dial) positions: redefining a motor's user
        coordinates (SET/OFF) does not move the beam.
        """
        motors = self.motors.groups
        return BeamState(
            x=motors[x_motor].dial_position,
            y=motors[y_motor].dial_position,
            current=self.ring.current_now(),
            shutter_open=self.shutter.open,
            sample_in=sample_in_beam(motors["samx"].dial_position,
                                     motors["samy"].dial_position),
        )


def beamline_class(width: int = 640, height: int = 480) -> type[Beamline]:
    """:class:`Beamline` with camera frames of *height* rows x *width* columns."""
    camera = SpotCamera.sized(width, height)
    if camera is SpotCamera:
        return Beamline
    return type("Beamline", (Beamline,), {
        "spot": SubGroup(camera, prefix="spot:", x_motor="spotx", y_motor="spoty"),
        "dot": SubGroup(camera, prefix="dot:", x_motor="dotx", y_motor="doty"),
    })


def make_beamline(*, width: int = 640, height: int = 480, autosave: bool = False,
                  **ioc_options) -> Beamline:
    """Build the beamline group (``ioc_options``: prefix, macros, ...); with *autosave*,
    configured from its saved settings (:mod:`.beamline_autosave`)."""
    beamline = beamline_class(width, height)(**ioc_options)
    refuse_quietly(beamline.pvdb)   # a refused put leaves no alarm, as on a real record
    if autosave:
        beamline_autosave.prepare(beamline)
    return beamline


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 8192:
        raise argparse.ArgumentTypeError(f"{value} must be between 1 and 8192 pixels")
    return value


def _frame_size_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--width", type=_positive_int, default=640,
                        help="camera frame width in pixels (columns), default 640")
    parser.add_argument("--height", type=_positive_int, default=480,
                        help="camera frame height in pixels (rows), default 480")


def main() -> None:
    serve(make_beamline, default_prefix="sim:", prefix_env="SIMBEAMLINE_PREFIX",
          description=__doc__.split("\n\n")[0], extra_arguments=_frame_size_arguments,
          group_kwargs=dict(autosave=True),
          startup=lambda group, _address: beamline_autosave.keep_saving(group))


if __name__ == "__main__":
    main()
