"""The simulation clock: one time scale for every timed behaviour of an IOC process.

A time scale of 1 is real time; 0.01 runs the simulation a hundred times faster.
What is scaled is *waiting*: a 5 s exposure, a 0.8 s motor move, 10 minutes
between top-ups all last ``nominal * scale`` seconds of wall time. What they
produce is not: a camera counts as for its nominal exposure, a motor moves at its
nominal velocity through nominal time, the ring decays through nominal time.

Two times, kept apart:

- *nominal* time (:meth:`SimClock.now`), the simulation's own seconds, monotonic,
  which advance ``1 / scale`` times as fast as the wall clock;
- *wall* time, which is what the time stamps the IOCs post always are (clients,
  archivers and databroker need them).

The scale comes from ``$SIMBEAMLINE_TIME_SCALE`` at start (default 1) and can be
changed at run time (the beamline IOC serves it as ``{prefix}time_scale``; the
ADSim IOC follows that PV). A change applies from that moment on: nominal time
never jumps, and a wait in progress finishes at its nominal deadline under the
new scale.

Every IOC module uses the process's one clock, :data:`CLOCK`.

The beamline IOC serves the scale as ``{prefix}time_scale`` (:mod:`.timescale`).
This module imports nothing but the standard library, and asyncio only when a wait
starts: clients (the command line among them) share :func:`parse_time_scale` with the
IOCs, and asyncio's 40-50 ms would be a third of the command line's imports.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

TIME_SCALE_ENV = "SIMBEAMLINE_TIME_SCALE"
MIN_SCALE = 1e-4     #: 10 000 times faster than real time
MAX_SCALE = 100.0    #: 100 times slower


def parse_time_scale(value) -> float:
    """*value* (a number or its text) as a time scale, or ValueError saying what to use."""
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"time scale {value!r} is not a number: use e.g. 1 (real time) "
                         "or 0.01 (a hundred times faster)") from None
    if not (math.isfinite(scale) and MIN_SCALE <= scale <= MAX_SCALE):
        raise ValueError(f"time scale {value!r} must be between {MIN_SCALE:g} and "
                         f"{MAX_SCALE:g}: 1 is real time, 0.01 a hundred times faster")
    return scale


def scale_from_env(environ=None) -> float:
    """The time scale ``$SIMBEAMLINE_TIME_SCALE`` asks for (1 when unset or empty)."""
    text = (os.environ if environ is None else environ).get(TIME_SCALE_ENV, "")
    if not text.strip():
        return 1.0
    try:
        return parse_time_scale(text)
    except ValueError as exc:
        raise ValueError(f"${TIME_SCALE_ENV}: {exc}") from None


class SimClock:
    """Nominal time that runs ``1 / scale`` times as fast as *wall* (a monotonic clock)."""

    def __init__(self, scale: float = 1.0, wall=time.monotonic):
        self._wall = wall
        self._scale = parse_time_scale(scale)
        self._anchor_wall = wall()
        self._anchor_nominal = self._anchor_wall
        self._changed: asyncio.Event | None = None

    @property
    def scale(self) -> float:
        """Wall seconds per nominal second."""
        return self._scale

    def now(self) -> float:
        """Nominal time (s, monotonic, arbitrary origin)."""
        return self._anchor_nominal + (self._wall() - self._anchor_wall) / self._scale

    def set_scale(self, scale: float) -> float:
        """Change the scale from now on (nominal time continues without a jump)."""
        scale = parse_time_scale(scale)
        self._anchor_nominal = self.now()
        self._anchor_wall = self._wall()
        self._scale = scale
        if self._changed is not None:       # wake waits in progress: they rescale
            self._changed.set()
            self._changed = None
        return scale

    def wall_seconds(self, nominal: float) -> float:
        """Wall seconds that *nominal* seconds last at the present scale."""
        return max(nominal, 0.0) * self._scale

    async def sleep(self, nominal: float) -> None:
        """Wait *nominal* seconds of simulation time."""
        await self.wait(nominal)

    async def wait(self, nominal: float | None, event: asyncio.Event | None = None) -> bool:
        """Wait *nominal* seconds (None: for ever) or until *event* is set.

        Return True if *event* was set first (an abort), False when the time ran out.
        """
        import asyncio

        deadline = None if nominal is None else self.now() + max(nominal, 0.0)
        while True:
            if event is not None and event.is_set():
                return True
            remaining = None if deadline is None else deadline - self.now()
            if remaining is not None and remaining <= 0:
                return False
            if self._changed is None:
                self._changed = asyncio.Event()
            waits = [asyncio.ensure_future(self._changed.wait())]
            if event is not None:
                waits.append(asyncio.ensure_future(event.wait()))
            timeout = None if remaining is None else remaining * self._scale
            try:
                await asyncio.wait(waits, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()


#: The clock of this IOC process (``serve`` sets its scale from the environment).
CLOCK = SimClock()

