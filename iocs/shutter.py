"""The beamline shutter: a setpoint and a readback that follows it.

PVs:
    {prefix}shutter      setpoint, enum "Closed" / "Open" (default Open)
    {prefix}shutter_RBV  readback, the shutter's actual state

A put to the setpoint takes ``ACTUATION_TIME`` to act; a put with completion
returns once the readback shows the new state. Detectors look at the readback:
a closed shutter means they see only their dark signal.
"""

from __future__ import annotations

import asyncio

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

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
                          enum_strings=STATES, read_only=True, doc="shutter state")

    @setpoint.putter
    async def setpoint(self, instance, value):
        """Actuate, then show the new state on the readback before completing."""
        await asyncio.sleep(ACTUATION_TIME)
        await self.readback.write(value)
        return value

    @property
    def open(self) -> bool:
        """Whether the shutter is open now (from the readback)."""
        return is_open(self.readback.value)
