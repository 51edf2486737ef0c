"""The beamline shutter: a setpoint and a readback that follows it.

PVs:
    {prefix}shutter            setpoint, enum "Closed" / "Open" (default Open)
    {prefix}shutter_RBV        readback, the shutter's actual state
    {prefix}shutter:interlock  the PSS interlock, enum "OK" / "Tripped"

A put to the setpoint takes ``ACTUATION_TIME`` (simulation clock) to act; a put
with completion returns once the readback shows the new state. Detectors look at
the readback: a closed shutter means they see only their dark signal.

Fault (set by :mod:`.faults`): a stuck shutter, as a tripped PSS interlock shows
it: the interlock reads Tripped, the readback and the interlock (one alarm) carry
a STATE/MAJOR alarm, and commands are ignored: the put completes, setpoint and
readback keep their values.
"""

from __future__ import annotations

from caproto import AlarmSeverity, AlarmStatus, ChannelType
from caproto.server import PVGroup, pvproperty

from .clock import CLOCK

STATES = ("Closed", "Open")
ACTUATION_TIME = 0.05  #: seconds for the blade to move


def is_open(state) -> bool:
    """True if *state* (an enum string or index) means open."""
    return state in ("Open", 1)


class Shutter(PVGroup):
    """``{prefix}shutter`` setpoint and ``{prefix}shutter_RBV`` readback."""

    setpoint = pvproperty(value="Open", name="shutter", dtype=ChannelType.ENUM,
                          enum_strings=STATES, doc="shutter setpoint")
    readback = pvproperty(value="Open", name="shutter_RBV", dtype=ChannelType.ENUM,
                          enum_strings=STATES, read_only=True, alarm_group="pss",
                          doc="shutter state")
    interlock = pvproperty(value="OK", name="shutter:interlock", dtype=ChannelType.ENUM,
                           enum_strings=("OK", "Tripped"), read_only=True, alarm_group="pss",
                           doc="PSS interlock: Tripped while the shutter is stuck")

    @setpoint.putter
    async def setpoint(self, instance, value):
        """Actuate, then show the new state on the readback before completing."""
        if self.stuck:
            return instance.value           # interlocked: the command is ignored
        await CLOCK.sleep(ACTUATION_TIME)
        await self.readback.write(value)
        return value

    @property
    def stuck(self) -> bool:
        """Whether the interlock holds the shutter where it is."""
        return self.interlock.value in ("Tripped", 1)

    async def set_stuck(self, stuck: bool) -> None:
        """Trip (or reset) the interlock: the readback and interlock show the alarm."""
        status, severity = ((AlarmStatus.STATE, AlarmSeverity.MAJOR_ALARM) if stuck
                            else (AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM))
        await self.interlock.write("Tripped" if stuck else "OK",
                                   status=status, severity=severity)

    @property
    def open(self) -> bool:
        """Whether the shutter is open now (from the readback)."""
        return is_open(self.readback.value)
