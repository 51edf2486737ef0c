"""The beamline the detector sits on: shutter and sample stage, read over CA.

Monitors ``{prefix}shutter_RBV`` (enum Closed/Open) and the sample stage readbacks
``{prefix}m:samx.RBV``, ``{prefix}m:samy.RBV`` with caproto's asyncio client in
the IOC's own event loop. Nothing here ever waits for the beamline IOC: until it
answers (or when it is absent) the shutter counts as open and the stage as at 0.
It also follows the beamline's ``{prefix}time_scale`` (into this process's
simulation clock; until it answers, ``$SIMBEAMLINE_TIME_SCALE``) and the fault
``{prefix}fault:adsim:hang``.
"""

from __future__ import annotations

import logging
import os

from ..clock import CLOCK

log = logging.getLogger(__name__)

BEAMLINE_PREFIX_ENV = "SIMBEAMLINE_PREFIX"
#: Seconds between caproto's checks for subscriptions to renew (its default, 0.1 s,
#: wakes an idle IOC ten times a second for ever); a reconnection asks at once.
RESUBSCRIBE_PERIOD = 2.0


def shutter_is_open(value) -> bool:
    """Interpret a shutter readback (enum index, or its string)."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return value.strip().lower() == "open"
    return int(value) == 1


class BeamlineLink:
    """Latest shutter state and stage position (defaults until the beamline answers)."""

    def __init__(self, prefix: str | None = None):
        self.prefix = prefix if prefix is not None else os.environ.get(BEAMLINE_PREFIX_ENV, "sim:")
        self.shutter_open = True
        self.samx = 0.0
        self.samy = 0.0
        self.hang = False
        self.connected: set[str] = set()
        self._context = None
        self._subscriptions = []

    @property
    def names(self) -> dict[str, str]:
        return {"shutter": f"{self.prefix}shutter_RBV",
                "samx": f"{self.prefix}m:samx.RBV",
                "samy": f"{self.prefix}m:samy.RBV",
                "time_scale": f"{self.prefix}time_scale",
                "hang": f"{self.prefix}fault:adsim:hang"}

    async def start(self) -> None:
        """Start monitoring in the background; returns at once, never raises."""
        try:
            from caproto.asyncio.client import Context
            from caproto.client import common

            # read by the context's loop at each turn: this process has no other client
            common.RESTART_SUBS_PERIOD = RESUBSCRIBE_PERIOD
            self._context = Context()
            names = self.names
            pvs = await self._context.get_pvs(*names.values(),
                                              connection_state_callback=self._on_connection)
            for key, pv in zip(names, pvs):
                sub = pv.subscribe(data_type="native")
                callback = self._callback(key)
                # caproto holds callbacks weakly: keep them (and the subscriptions) alive
                self._subscriptions.append((sub, callback))
                sub.add_callback(callback)
        except Exception as exc:  # the detector works without a beamline
            log.warning("beamline link unavailable (%s); shutter open, stage at 0", exc)

    def _on_connection(self, pv, state):
        if state == "connected":
            self.connected.add(pv.name)
            # caproto queues the PV's subscriptions for renewal right after this
            # callback; have them renewed now rather than at the next period
            if self._context is not None:
                self._context.activate_subscriptions_now.set()
        else:
            self.connected.discard(pv.name)
            # a beamline IOC that went away: fall back to the defaults
            for key, name in self.names.items():
                if name == pv.name:
                    self._set(key, None)

    def _callback(self, key):
        def update(sub, response):
            try:
                self._set(key, response.data[0])
            except Exception as exc:
                log.warning("ignoring %s update %r: %s", key, getattr(response, "data", None), exc)
        return update

    def _set(self, key, value):
        if key == "shutter":
            self.shutter_open = True if value is None else shutter_is_open(value)
        elif key == "samx":
            self.samx = 0.0 if value is None else float(value)
        elif key == "samy":
            self.samy = 0.0 if value is None else float(value)
        elif key == "time_scale" and value is not None:   # gone: keep the last scale
            CLOCK.set_scale(float(value))
        elif key == "hang":
            self.hang = value is not None and int(value) == 1   # enum Off/On
