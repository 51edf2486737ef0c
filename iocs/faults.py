"""Scripted faults of the beamline IOC: inject them, and clear them, over CA.

Each fault is a PV under ``{prefix}fault:``; a put of ``On`` (1) injects it, ``Off``
(0) clears it. The behaviour itself lives with the hardware it breaks (ring.py,
shutter.py, motor.py, spotcam.py); this group only switches it.

PVs (prefix ``sim:`` by default):
    sim:fault:beam_dump           beam dump: the ring current drops to 0 and stays
                                  there until cleared, or until ...
    sim:fault:beam_dump:duration  ... this many seconds (simulation clock) have
                                  passed (0: until cleared); then the ring is
                                  refilled and the fault reads Off again
    sim:fault:topup_paused        no top-up injections; the beam keeps decaying
    sim:fault:shutter_stuck       the PSS interlock trips: shutter commands are
                                  ignored, readback unchanged, STATE/MAJOR alarm
    sim:fault:m:NAME:stall        motor NAME stops short of every target: DMOV=1
                                  with MSTA's problem bit, STATE/MAJOR alarm
    sim:fault:m:NAME:limit        None / High / Low: that limit switch reads 1
                                  (HLS or LLS); moves towards it do not go
    sim:fault:spot:hang, sim:fault:dot:hang, sim:fault:adsim:hang
                                  the camera never finishes an acquisition until
                                  aborted (the ADSim IOC follows its PV over CA)
    sim:fault:freeze              put N > 0: the whole IOC stops answering for N
                                  seconds (simulation clock), then recovers

NAME is one of spotx, spoty, dotx, doty, samx, samy.
"""

from __future__ import annotations

import asyncio
import time

from caproto import ChannelType
from caproto.server import PVGroup, SubGroup, pvproperty

from .clock import CLOCK
from .validation import accept, non_negative_finite

SWITCH = ("Off", "On")
LIMITS = ("None", "High", "Low")
DUMP_POLL = 0.1   #: wall seconds between checks that a timed beam dump is over


def is_on(value) -> bool:
    """True if *value* (enum string or index) means On."""
    return value in ("On", 1)


def _switch(name: str, doc: str):
    return pvproperty(value="Off", name=name, dtype=ChannelType.ENUM, enum_strings=SWITCH,
                      doc=doc)


class MotorFaults(PVGroup):
    """``fault:m:NAME:stall`` and ``fault:m:NAME:limit`` for the motor *motor*."""

    stall = _switch("stall", "motor stops short of its targets")
    limit = pvproperty(value="None", name="limit", dtype=ChannelType.ENUM,
                       enum_strings=LIMITS, doc="limit switch reading 1: None/High/Low")

    def __init__(self, *args, motor: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.motor_name = motor

    def _motor(self):
        return self.parent.parent.motors.groups[self.motor_name]

    @stall.putter
    async def stall(self, instance, value):
        await self._motor().set_faults(stall=is_on(value))
        return value

    @limit.putter
    async def limit(self, instance, value):
        switch = {"High": "high", "Low": "low"}.get(
            LIMITS[value] if isinstance(value, int) else value)
        await self._motor().set_faults(limit_switch=switch)
        return value


class CameraFault(PVGroup):
    """``fault:CAMERA:hang``: the camera never finishes an acquisition."""

    hang = _switch("hang", "acquisitions never finish until aborted")

    def __init__(self, *args, camera: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.camera_name = camera

    @hang.putter
    async def hang(self, instance, value):
        if self.camera_name is not None:   # else a camera in another IOC follows the PV
            getattr(self.parent.parent, self.camera_name).hang = is_on(value)
        return value


class Faults(PVGroup):
    """All faults of the beamline ``{prefix}fault:``; its parent is the Beamline group."""

    beam_dump = _switch("beam_dump", "ring current at 0 until cleared or the duration ends")
    dump_duration = pvproperty(value=0.0, name="beam_dump:duration", precision=1, units="s",
                               doc="seconds a beam dump lasts (0: until cleared)")
    topup_paused = _switch("topup_paused", "no top-up injections")
    shutter_stuck = _switch("shutter_stuck", "PSS interlock: shutter commands ignored")
    freeze = pvproperty(value=0.0, name="freeze", precision=1, units="s",
                        doc="put N: the IOC stops answering for N seconds")

    spotx = SubGroup(MotorFaults, prefix="m:spotx:", motor="spotx")
    spoty = SubGroup(MotorFaults, prefix="m:spoty:", motor="spoty")
    dotx = SubGroup(MotorFaults, prefix="m:dotx:", motor="dotx")
    doty = SubGroup(MotorFaults, prefix="m:doty:", motor="doty")
    samx = SubGroup(MotorFaults, prefix="m:samx:", motor="samx")
    samy = SubGroup(MotorFaults, prefix="m:samy:", motor="samy")
    spot = SubGroup(CameraFault, prefix="spot:", camera="spot")
    dot = SubGroup(CameraFault, prefix="dot:", camera="dot")
    adsim = SubGroup(CameraFault, prefix="adsim:")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._dump_watch: asyncio.Task | None = None   #: waits out a timed beam dump

    @property
    def ring(self):
        return self.parent.ring

    @beam_dump.putter
    async def beam_dump(self, instance, value):
        now = CLOCK.now()
        if is_on(value):
            duration = self.dump_duration.value
            self.ring.state.dump(now, duration if duration > 0 else float("inf"))
            if duration > 0 and (self._dump_watch is None or self._dump_watch.done()):
                self._dump_watch = asyncio.get_running_loop().create_task(
                    self._end_timed_dump())
        elif self.ring.state.dumped_at(now):
            self.ring.state.restore(now)
        await self.ring.publish()
        return value

    async def _end_timed_dump(self) -> None:
        """While a dump is on, look every DUMP_POLL wall seconds (the simulation clock's
        scale may change meanwhile) whether it is over: then the beam is back and the
        fault reads Off. Only while a dump is on: an idle IOC does not wake for it."""
        while is_on(self.beam_dump.value):
            if not self.ring.state.dumped_at(CLOCK.now()):
                await self.ring.publish()
                await self.beam_dump.write("Off", verify_value=False)
                return
            await asyncio.sleep(DUMP_POLL)

    @dump_duration.putter
    async def dump_duration(self, instance, value):
        return await accept(instance, non_negative_finite(value, "beam dump duration"))

    @topup_paused.putter
    async def topup_paused(self, instance, value):
        self.ring.state.topup_paused = is_on(value)
        return value

    @shutter_stuck.putter
    async def shutter_stuck(self, instance, value):
        await self.parent.shutter.set_stuck(is_on(value))
        return value

    @freeze.putter
    async def freeze(self, instance, value):
        seconds = non_negative_finite(value, "freeze time")
        if seconds > 0:
            asyncio.get_running_loop().create_task(self._freeze(seconds))
        return await accept(instance, seconds)

    async def _freeze(self, seconds: float) -> None:
        await asyncio.sleep(0.05)                 # let the put's reply go out first
        time.sleep(CLOCK.wall_seconds(seconds))   # block the event loop: no CA at all
        await self.freeze.write(0.0, verify_value=False)
