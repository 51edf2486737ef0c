"""What the beamline IOC keeps across a restart (see :mod:`.autosave`).

Saved: every motor's dial position, VELO, ACCL, dial limits, OFF and DIR; the
shutter setpoint; each camera's exposure; the ring's top-up period and lifetime.

Restored at boot before the server answers anyone, as autosave's passes run before
iocInit ends: motors are configured before they start (a motor comes up where it
was, with no motion, as a motor record restores DVAL); the other settings are put
through their own putters (so each is checked like a client's put, and a Closed
shutter really closes). A saved value that is refused is logged and left at its
default. Once the server runs, changes are saved (:meth:`.Autosave.run`).
"""

from __future__ import annotations

import asyncio
import logging
import math

from .autosave import Autosave, autosave_path, shorten
from .validation import non_negative_finite, positive_finite

log = logging.getLogger(__name__)

IOC_NAME = "beamline"


def _finite(value, what):
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"{what} {value!r} is not a finite number")
    return float(value)


#: Motor settings: saved name suffix -> (read from the motor, check of a saved value).
_MOTOR = {
    "position": (lambda m: m.dial_position, _finite),
    "VELO": (lambda m: m.fields.velocity.value,
             lambda v, what: positive_finite(_finite(v, what), what, "units per second")),
    "ACCL": (lambda m: m.fields.seconds_to_velocity.value,
             lambda v, what: non_negative_finite(_finite(v, what), what)),
    "DLLM": (lambda m: m.fields.dial_low_limit.value, _finite),
    "DHLM": (lambda m: m.fields.dial_high_limit.value, _finite),
    "OFF": (lambda m: m.fields.user_offset.value, _finite),
    "DIR": (lambda m: m.fields.user_direction.value,
            lambda v, what: v if v in ("Pos", "Neg") else _finite(None, what)),
}


def _pv_settings(beamline) -> dict:
    """Saved name -> the PV whose putter restores it."""
    return {"shutter": beamline.shutter.setpoint,
            "spot:exp": beamline.spot.exp, "dot:exp": beamline.dot.exp,
            "current:topup_period": beamline.ring.topup_period,
            "current:lifetime": beamline.ring.lifetime}


def collect(beamline) -> dict:
    """The beamline's settings now, by saved name."""
    settings = {name: pv.value for name, pv in _pv_settings(beamline).items()}
    for axis, motor in beamline.motors.groups.items():
        for key, (read, _) in _MOTOR.items():
            settings[f"m:{axis}.{key}"] = read(motor)
    return settings


def _restore_motors(beamline, saved: dict) -> None:
    """Configure the motors from *saved* before the server starts (no motion)."""
    for axis, motor in beamline.motors.groups.items():
        values = {}
        for key, (_, check) in _MOTOR.items():
            name = f"m:{axis}.{key}"
            if name in saved:
                try:
                    values[key] = check(saved[name], name)
                except ValueError as exc:
                    log.warning("autosave: %s not restored: %s", name, shorten(str(exc)))
        settings = motor._settings
        low, high = settings["limits"]
        low, high = values.get("DLLM", low), values.get("DHLM", high)
        if low <= high:
            settings["limits"] = (low, high)
        else:
            log.warning("autosave: m:%s limits DLLM %s > DHLM %s not restored", axis, low, high)
        for key, setting in (("VELO", "velocity"), ("ACCL", "accel_time"), ("OFF", "offset"),
                             ("DIR", "direction")):
            if key in values:
                settings[setting] = values[key]
        if "position" in values:
            motor.dial_position = values["position"]


def prepare(beamline) -> None:
    """Before serving: load the saved settings and apply them (no client sees defaults)."""
    beamline.autosave = Autosave(autosave_path(IOC_NAME, prefix=beamline.prefix), lambda: collect(beamline))
    saved = beamline.autosave.load()
    _restore_motors(beamline, saved)
    asyncio.run(_restore_pvs(beamline, saved))


async def _restore_pvs(beamline, saved: dict) -> None:
    for name, pv in _pv_settings(beamline).items():
        if name in saved and saved[name] != pv.value:
            try:
                await pv.write(saved[name])
            except Exception as exc:
                log.warning("autosave: %s=%s not restored: %s", name, shorten(saved[name]),
                            shorten(str(exc)))


async def keep_saving(beamline) -> None:
    """Inside the server: save changed settings for ever (the IOC's startup task)."""
    await beamline.autosave.run()
