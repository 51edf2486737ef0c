"""Checks shared by the IOCs' putters: refuse bad input, clear the alarm on good input.

caproto turns any exception raised in a putter into a failed put (ECA_PUTFAIL for
the client) and a WRITE/MAJOR alarm on the PV, leaving its value unchanged. The
alarm stays until someone clears it; :func:`accept` does so on the next good put.
"""

from __future__ import annotations

import math

from caproto import AlarmSeverity, AlarmStatus


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
