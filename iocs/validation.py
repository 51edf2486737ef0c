"""Checks shared by the IOCs' putters: refuse bad input, and leave no alarm behind.

caproto turns any exception raised in a putter into a failed put (ECA_PUTFAIL for
the client), leaving the value unchanged, and also puts the PV in WRITE/MAJOR alarm
until someone clears it. A real record refuses (or clamps) a bad put without any
alarm: :func:`refuse_quietly` makes every PV of an IOC do the same, and
:func:`accept` clears an alarm left by anything else on the next good put.
"""

from __future__ import annotations

import math

from caproto import AlarmSeverity, AlarmStatus, SkipWrite


def positive_finite(value: float, what: str, unit: str = "seconds") -> float:
    """Return *value* if it is a positive, finite number, else raise ValueError naming it."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} {value!r} must be a positive, finite number of {unit}")
    return value


def non_negative_finite(value: float, what: str, unit: str = "seconds") -> float:
    """Return *value* if it is a finite number >= 0, else raise ValueError naming it."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} {value!r} must be a non-negative, finite number of {unit}")
    return value


async def accept(instance, value):
    """Clear a previous refusal's alarm on *instance*, then let *value* be written."""
    if instance.alarm.severity != AlarmSeverity.NO_ALARM:
        await instance.alarm.write(status=AlarmStatus.NO_ALARM,
                                   severity=AlarmSeverity.NO_ALARM)
    return value


def refuse_quietly(pvdb: dict) -> None:
    """Make a refused put of any PV in *pvdb* fail for the client (ECA_PUTFAIL, the
    putter's message) with the PV's value *and alarm* unchanged, as a real record does.

    caproto's ``ChannelData.write`` raises the alarm when ``verify_value`` (the
    putter) raises; here the value is verified first, and only a value that passed is
    handed to caproto's write, unverified.
    """
    channels = {id(channel): channel for channel in pvdb.values()}
    for channel in list(channels.values()):     # and every field of a record
        fields = getattr(channel, "field_inst", None)
        for field in getattr(fields, "pvdb", {}).values():
            channels.setdefault(id(field), field)
    for channel in channels.values():
        channel.write = _quiet_write(channel, channel.write)


def _quiet_write(channel, write):
    async def quiet_write(value, *, verify_value=True, **kwargs):
        if verify_value:
            try:
                value = channel.preprocess_value(value)
                modified = await channel.verify_value(value)
            except SkipWrite:
                return None
            if modified is SkipWrite:
                return None
            if modified is not None:
                value = modified
        return await write(value, verify_value=False, **kwargs)
    return quiet_write
