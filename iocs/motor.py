"""A simulated EPICS motor record, as seen by ophyd's ``EpicsMotor``.

The PV ``{prefix}`` is a caproto ``motor`` record (``pvproperty(record='motor')``),
so every field ophyd touches exists: VAL, RBV, DMOV, MOVN, STOP, VELO, ACCL, HLM,
LLM, HLS, LLS, LVIO, EGU, DESC, PREC, OFF, DIR, SET, FOFF, MSTA, CNEN, TDIR, HOMF,
HOMR, SPMG, DRBV, DVAL, DHLM, DLLM, ...

Behaviour, as on a real motor record:

- a put to VAL starts a trapezoidal move (VELO, acceleration time ACCL); a put
  *with completion* returns only when the move is over (DMOV back to 1); RBV updates
  at about 20 Hz during the move; DMOV drops to 0 even for a zero-length move, since
  ophyd's move status waits for that 0 -> 1 edge; a put to VAL during a move takes
  over (the motor heads for the new target), and a put with completion it took over
  from completes when the motion ends, not before;
- STOP (or SPMG=Stop) halts the move where it is, and VAL becomes the stop position;
- a target outside LLM..HLM, or NaN/inf, is refused: the put fails with an error,
  LVIO=1, VAL shows a WRITE/MAJOR alarm, nothing moves. VAL's control limits
  mirror HLM/LLM, so ophyd's ``EpicsMotor.check_value`` refuses it client-side too;
- SET=Set then a put to VAL redefines the user position by changing OFF, with no
  motion (``EpicsMotor.set_current_position``). OFF and DIR map dial to user
  coordinates: ``user = dial * (+1 | -1) + OFF``; the dial limits stay fixed.

Moves run on the simulation clock (:mod:`.clock`): at time scale 0.01 a 0.8 s move
takes 8 ms of wall time, through the same positions.

Faults (set by :mod:`.faults`), as the real record reports them:

- stall: a move stops short of its target (at ``STALL_FRACTION`` of the way), DMOV
  goes to 1 with MSTA's slip/stall and problem bits set and a STATE/MAJOR alarm;
- limit switch: HLS (or LLS) reads 1 and a move towards it does not go, DMOV goes
  to 1 with a HWLIMIT/MAJOR alarm; moves away are allowed.

ophyd's ``EpicsMotor`` reports both as a failed move (it checks the limit switch
and RBV's alarm when DMOV returns to 1).

The hardware position is the *dial* position (``dial_position``): redefining user
coordinates never moves the beam. The motion physics are the plain functions
below, testable without the network.
"""

from __future__ import annotations

import asyncio
import math

from caproto import AlarmSeverity, AlarmStatus, SkipWrite
from caproto.server import PVGroup, SubGroup, pvproperty
from caproto.server.server import PvpropertyDouble

from .clock import CLOCK
from .validation import accept, non_negative_finite, positive_finite

#: RBV update period during a move (wall seconds): about 20 Hz.
TICK = 0.05
#: A stalled motor stops this fraction of the way to its target.
STALL_FRACTION = 0.5
#: The record's alarm after a move a fault ended, as the motor record sets it.
PROBLEM_ALARMS = {"stall": (AlarmStatus.STATE, AlarmSeverity.MAJOR_ALARM),
                  "limit": (AlarmStatus.HWLIMIT, AlarmSeverity.MAJOR_ALARM)}


# --- physics: plain functions --------------------------------------------------------

def move_duration(distance: float, velocity: float, accel_time: float) -> float:
    """Seconds a trapezoidal move of *distance* takes at *velocity* with ramp *accel_time*.

    The motor ramps up to *velocity* in *accel_time* seconds and down again. A move
    too short to reach full speed is triangular.
    """
    d = abs(distance)
    if d == 0:
        return 0.0
    if accel_time <= 0:
        return d / velocity
    accel = velocity / accel_time
    if d >= velocity * accel_time:            # reaches full speed
        return d / velocity + accel_time
    return 2.0 * math.sqrt(d / accel)         # triangular profile


def position_at(start: float, target: float, velocity: float, accel_time: float,
                t: float) -> float:
    """Position *t* seconds into the trapezoidal move from *start* to *target*."""
    distance = target - start
    d = abs(distance)
    total = move_duration(d, velocity, accel_time)
    if t <= 0 or d == 0:
        return start
    if t >= total:
        return target
    sign = 1.0 if distance > 0 else -1.0
    if accel_time <= 0:
        return start + sign * velocity * t
    accel = velocity / accel_time
    ramp = min(accel_time, total / 2.0)        # time spent accelerating
    peak = accel * ramp                        # top speed reached
    if t < ramp:
        travelled = 0.5 * accel * t * t
    elif t <= total - ramp:
        travelled = 0.5 * accel * ramp * ramp + peak * (t - ramp)
    else:
        left = total - t
        travelled = d - 0.5 * accel * left * left
    return start + sign * travelled


def user_from_dial(dial: float, offset: float, direction: int) -> float:
    """User coordinate of a dial position (*direction* 0 = Pos, 1 = Neg)."""
    return (-dial if direction else dial) + offset


def dial_from_user(user: float, offset: float, direction: int) -> float:
    """Dial coordinate of a user position (inverse of :func:`user_from_dial`)."""
    return -(user - offset) if direction else user - offset


def user_limits(dial_low: float, dial_high: float, offset: float,
                direction: int) -> tuple[float, float]:
    """(LLM, HLM) in user coordinates for dial limits (DLLM, DHLM)."""
    a = user_from_dial(dial_low, offset, direction)
    b = user_from_dial(dial_high, offset, direction)
    return min(a, b), max(a, b)


def target_problem(target: float, low: float, high: float) -> str | None:
    """Why *target* cannot be moved to, or None if it can (LLM == HLM: no limits)."""
    if not math.isfinite(target):
        return f"target {target!r} is not a finite number"
    if low != high and not low <= target <= high:
        return f"target {target} is outside the soft limits [{low}, {high}]"
    return None


def motor_status_word(*, positive: bool, done: bool, moving: bool,
                      high_limit: bool = False, low_limit: bool = False,
                      problem: bool = False, stalled: bool = False) -> int:
    """The MSTA bit field of a motor record (bits as in the motor module)."""
    return (positive << 0 | done << 1 | high_limit << 2 | stalled << 6 | problem << 9
            | moving << 10 | low_limit << 13 | 1 << 14)    # bit 14: homed


def faulted_end(start: float, target: float, *, stall: bool,
                limit_switch: str | None) -> tuple[float, str | None]:
    """Where a move from *start* to *target* ends under the faults, and which fault
    stopped it ("limit", "stall" or None). *limit_switch*: "high", "low" or None."""
    towards = "high" if target > start else "low" if target < start else None
    if limit_switch is not None and towards == limit_switch:
        return start, "limit"
    if stall and target != start:
        return start + STALL_FRACTION * (target - start), "stall"
    return target, None


# --- the record ---------------------------------------------------------------------

class MotorRefused(ValueError):
    """A move the motor refuses (out of limits, not finite)."""


class MotorValue(PvpropertyDouble):
    """VAL of the record: refuses a target outside HLM/LLM or not finite, with LVIO=1.

    Checked here, before caproto's own control-limit check and the putter, so the
    error names the problem; caproto then gives VAL a WRITE/MAJOR alarm and the
    client an ECA_PUTFAIL, and nothing changes.
    """

    async def verify_value(self, value):
        fields = self.field_inst
        problem = target_problem(value, fields.user_low_limit.value,
                                 fields.user_high_limit.value)
        if problem is not None:
            await fields.limit_violation.write(1)
            raise MotorRefused(f"{self.pvname}: {problem}; the motor did not move")
        return await super().verify_value(value)


def _is_set_mode(fields) -> bool:
    return fields.set_use_switch.value in (1, "Set")


def _direction(fields) -> int:
    return 1 if fields.user_direction.value in (1, "Neg") else 0


class MotorRecord(PVGroup):
    """One simulated motor: the record ``{prefix}`` with all its fields."""

    motor = pvproperty(value=0.0, name="", record="motor", dtype=MotorValue,
                       precision=3, doc="simulated motor")

    def __init__(self, *args, position=0.0, limits=(-100.0, 100.0), velocity=1.0,
                 accel_time=0.1, egu="mm", description="", precision=3, **kwargs):
        super().__init__(*args, **kwargs)
        self.dial_position = float(position)   #: the physical position (dial)
        self._settings = dict(limits=limits, velocity=velocity, accel_time=accel_time,
                              egu=egu, description=description, precision=precision,
                              # the record's configured VMAX: a restored (autosaved)
                              # VELO changes the speed, never the top speed
                              max_velocity=velocity * 10)
        self._move_id = 0                      # bumps on every new move
        self._stop_requested = False
        self.stall = False                     #: fault: moves stop short
        self.limit_switch = None               #: fault: "high" or "low" switch active
        self._problem = None                   # the fault that ended the last move
        self._at_rest = asyncio.Event()        #: set while no move is in progress
        self._at_rest.set()

    # .. helpers ..........................................................

    @property
    def fields(self):
        return self.motor.field_inst

    @property
    def user_position(self) -> float:
        f = self.fields
        return user_from_dial(self.dial_position, f.user_offset.value, _direction(f))

    async def _publish_position(self):
        f = self.fields
        await f.user_readback_value.write(self.user_position)
        await f.dial_readback_value.write(self.dial_position)
        res = f.motor_step_size.value or 1.0
        await f.raw_readback_value.write(int(round(self.dial_position / res)))

    async def _publish_status(self, *, moving: bool, positive: bool | None = None):
        f = self.fields
        if positive is None:
            positive = bool(f.direction_of_travel.value)
        high, low = self.limit_switch == "high", self.limit_switch == "low"
        await f.direction_of_travel.write(int(positive))
        await f.motor_is_moving.write(int(moving))
        await f.user_high_limit_switch.write(int(high))
        await f.user_low_limit_switch.write(int(low))
        await f.motor_status.write(motor_status_word(
            positive=positive, done=not moving, moving=moving, high_limit=high,
            low_limit=low, problem=self._problem is not None,
            stalled=self._problem == "stall"))
        await f.motion_in_progress.write(int(moving))
        if not moving and self._problem is not None:
            # after the other fields (each numeric write re-evaluates the fields'
            # shared alarm) and before DMOV, which ophyd answers by reading RBV's alarm
            await self._set_alarm(*PROBLEM_ALARMS[self._problem])
        await f.done_moving_to_value.write(int(not moving), verify_value=False)

    async def _apply_offset(self, offset: float):
        """Make *offset* the user offset: RBV, VAL, HLM, LLM shift; nothing moves.

        The dial limits stay fixed, so the user limits move with the offset.
        """
        f = self.fields
        shift = offset - f.user_offset.value
        await f.user_offset.write(offset, verify_value=False)
        low, high = user_limits(f.dial_low_limit.value, f.dial_high_limit.value,
                                offset, _direction(f))
        await f.user_low_limit.write(low, verify_value=False)
        await f.user_high_limit.write(high, verify_value=False)
        await self.motor.write_metadata(lower_ctrl_limit=low, upper_ctrl_limit=high)
        await self._publish_position()
        await self.motor.write(self.motor.value + shift, verify_value=False)

    async def _clear_alarm(self):
        await self._set_alarm(AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM)
        await self.fields.limit_violation.write(0)

    async def _set_alarm(self, status, severity):
        """The record's alarm, on VAL and on RBV (what ophyd checks after a move)."""
        for alarm in {id(a): a for a in (self.motor.alarm,
                                         self.fields.user_readback_value.alarm)}.values():
            await alarm.write(status=status, severity=severity)

    async def set_faults(self, *, stall: bool | None = None,
                         limit_switch: str | None | bool = False) -> None:
        """Inject or clear faults (*limit_switch* False: leave it as it is)."""
        if stall is not None:
            self.stall = bool(stall)
        if limit_switch is not False:
            self.limit_switch = limit_switch
            moving = bool(self.fields.motor_is_moving.value)
            await self._publish_status(moving=moving)

    async def _move(self, target_user: float) -> tuple[float, bool]:
        """Move to *target_user*.

        Return the user position where the move ended, and False if a newer move
        took over this one (that move then owns VAL and DMOV).
        """
        f = self.fields
        self._move_id += 1
        my_move = self._move_id
        self._stop_requested = False
        direction = _direction(f)
        start = self.dial_position
        target = dial_from_user(target_user, f.user_offset.value, direction)
        velocity, accel_time = f.velocity.value, f.seconds_to_velocity.value
        positive = (target_user >= self.user_position)
        await f.dial_desired_value.write(target)
        self._problem = None
        self._at_rest.clear()
        await self._publish_status(moving=True, positive=positive)
        end, fault = faulted_end(start, target, stall=self.stall,
                                 limit_switch=self.limit_switch)
        t0 = CLOCK.now()
        duration = move_duration(end - start, velocity, accel_time)
        while self._move_id == my_move:        # else a newer move took over
            t = CLOCK.now() - t0
            self.dial_position = position_at(start, end, velocity, accel_time, t)
            await self._publish_position()
            if t >= duration or self._stop_requested:
                break
            await asyncio.sleep(min(TICK, CLOCK.wall_seconds(duration - t)))
        superseded = self._move_id != my_move
        if not superseded:
            if not self._stop_requested:
                self._problem = fault
            await self._publish_status(moving=False, positive=positive)
            self._at_rest.set()
        return self.user_position, not superseded

    async def _stop(self):
        self._stop_requested = True

    # .. record behaviour .................................................

    @motor.startup
    async def motor(self, instance, async_lib):
        """Apply this motor's configuration: limits, speed, units, description."""
        f = self.fields
        s = self._settings
        low, high = s["limits"]
        await instance.write_metadata(precision=s["precision"], units=s["egu"],
                                      lower_ctrl_limit=low, upper_ctrl_limit=high)
        for field in (f.user_readback_value, f.dial_readback_value, f.user_offset,
                      f.user_high_limit, f.user_low_limit, f.dial_desired_value):
            await field.write_metadata(precision=s["precision"], units=s["egu"])
        await f.display_precision.write(s["precision"])
        await f.engineering_units.write(s["egu"])
        await f.description.write(s["description"] or self.name)
        await f.velocity.write(s["velocity"])
        await f.max_velocity.write(s["max_velocity"])
        await f.base_velocity.write(0.0)
        await f.seconds_to_velocity.write(s["accel_time"])
        await f.motor_step_size.write(1e-4)
        await f.dial_low_limit.write(low)
        await f.dial_high_limit.write(high)
        await f.enable_control.write("Enable")
        await f.user_direction.write(s.get("direction", "Pos"))
        await f.set_use_switch.write("Use")
        await f.offset_freeze_switch.write("Variable")
        await instance.write(self.user_position, verify_value=False)
        await self._apply_offset(s.get("offset", 0.0))   # offset, direction: autosaved
        await self._publish_status(moving=False, positive=True)

    @motor.putter
    async def motor(self, instance, value):
        """A put to VAL: refuse it, redefine the position (SET mode) or move."""
        f = self.fields
        if _is_set_mode(f):
            # redefine: the dial (hardware) position stays, the user offset changes
            await self._apply_offset(
                value - user_from_dial(self.dial_position, 0.0, _direction(f)))
            await self._clear_alarm()
            return value
        await self._clear_alarm()
        # VAL shows the target while moving, as on a real record
        await instance.write(value, verify_value=False)
        final, completed = await self._move(value)
        if not completed:
            # A newer put took over and owns VAL now. As on the motor record, this
            # put's completion still waits for the motion to end (DMOV back to 1).
            await self._at_rest.wait()
            raise SkipWrite()
        return final

    @motor.fields.stop.putter
    async def motor(fields, instance, value):
        """STOP=1 halts the move where it is; the field reads back 0."""
        if value:
            await fields.parent.group._stop()
        return 0

    @motor.fields.stop_pause_move_go.putter
    async def motor(fields, instance, value):
        """SPMG Stop or Pause halts the move (no motion resumes by itself)."""
        if value in ("Stop", "Pause", 0, 1):
            await fields.parent.group._stop()
        return value

    @motor.fields.velocity.putter
    async def motor(fields, instance, value):
        """VELO must be a positive, finite speed; above VMAX it is clamped to VMAX, as
        the motor record does."""
        value = positive_finite(value, "velocity", "units per second")
        vmax = fields.max_velocity.value
        return await accept(instance, min(value, vmax) if vmax > 0 else value)

    @motor.fields.seconds_to_velocity.putter
    async def motor(fields, instance, value):
        """ACCL must be a non-negative, finite time."""
        return await accept(instance, non_negative_finite(value, "acceleration time"))

    @motor.fields.user_high_limit.putter
    async def motor(fields, instance, value):
        """HLM: sets the dial high limit and VAL's upper control limit."""
        return await fields.parent.group._set_user_limit("high", value)

    @motor.fields.user_low_limit.putter
    async def motor(fields, instance, value):
        """LLM: sets the dial low limit and VAL's lower control limit."""
        return await fields.parent.group._set_user_limit("low", value)

    @motor.fields.user_offset.putter
    async def motor(fields, instance, value):
        """OFF: shifts user coordinates (RBV, VAL, HLM, LLM); nothing moves."""
        if not math.isfinite(value):
            raise MotorRefused(f"offset {value!r} is not a finite number")
        await fields.parent.group._apply_offset(value)
        return value

    async def _set_user_limit(self, which: str, value: float) -> float:
        f = self.fields
        if not math.isfinite(value):
            raise MotorRefused(f"limit {value!r} is not a finite number")
        other = f.user_low_limit.value if which == "high" else f.user_high_limit.value
        if (value < other) if which == "high" else (value > other):
            raise MotorRefused(
                f"{'HLM' if which == 'high' else 'LLM'} {value} would be "
                f"{'below LLM' if which == 'high' else 'above HLM'} {other}; "
                "move the other limit first")
        dial = dial_from_user(value, f.user_offset.value, _direction(f))
        # with DIR=Neg the user high limit is the dial low limit
        dial_field = {("high", 0): f.dial_high_limit, ("low", 0): f.dial_low_limit,
                      ("high", 1): f.dial_low_limit, ("low", 1): f.dial_high_limit}
        await dial_field[which, _direction(f)].write(dial)
        key = "upper_ctrl_limit" if which == "high" else "lower_ctrl_limit"
        await self.motor.write_metadata(**{key: value})
        return value


class BeamlineMotors(PVGroup):
    """The six motors of the beamline, ``{prefix}NAME`` (prefix ``sim:m:``)."""

    spotx = SubGroup(MotorRecord, prefix="spotx", limits=(-250, 250), velocity=100.0,
                     accel_time=0.1, description="spot camera x")
    spoty = SubGroup(MotorRecord, prefix="spoty", limits=(-250, 250), velocity=100.0,
                     accel_time=0.1, description="spot camera y")
    dotx = SubGroup(MotorRecord, prefix="dotx", limits=(-250, 250), velocity=100.0,
                    accel_time=0.1, description="dot camera x")
    doty = SubGroup(MotorRecord, prefix="doty", limits=(-250, 250), velocity=100.0,
                    accel_time=0.1, description="dot camera y")
    samx = SubGroup(MotorRecord, prefix="samx", limits=(-100, 100), velocity=20.0,
                    accel_time=0.1, position=50.0, description="sample x (parked at 50)")
    samy = SubGroup(MotorRecord, prefix="samy", limits=(-100, 100), velocity=20.0,
                    accel_time=0.1, description="sample y")
