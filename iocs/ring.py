"""The storage ring's beam current: about 500 mA, slow decay, periodic top-up.

Physics (plain functions below): the current decays exponentially with the beam
lifetime, ``I(t) = I_0 * exp(-(t - t_0) / lifetime)`` from an anchor ``(t_0, I_0)``:
the last top-up, or the last change of lifetime (a new lifetime applies from the
moment it is set, never to the decay before it); every ``topup_period``
seconds an injection brings it back to 500 mA; a little Gaussian noise
is added to what is published. With the defaults (lifetime 10 h, top-up every
10 min) the current stays between about 491.7 and 500 mA. All of it runs on the
simulation clock (:mod:`.clock`): at time scale 0.01 a top-up comes every 6 s.

Faults (driven by :mod:`.faults`): a beam dump puts the current at exactly 0 until
it is restored, when an injection refills to 500 mA; with top-up paused no
injection happens and the beam keeps decaying.

PVs:
    {prefix}current               beam current (mA), updated twice a second
    {prefix}current:topup_period  seconds between top-up injections (writable, > 0)
    {prefix}current:lifetime      beam lifetime in seconds (writable, > 0)

A non-positive, NaN or infinite period or lifetime is refused: the put fails, the
PV shows a WRITE/MAJOR alarm and keeps its value.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from caproto.server import PVGroup, pvproperty

from .clock import CLOCK
from .validation import accept, positive_finite

FILL_CURRENT = 500.0        #: mA after a top-up injection
DEFAULT_LIFETIME = 36000.0  #: s (10 h)
DEFAULT_TOPUP_PERIOD = 600.0  #: s
NOISE_SIGMA = 0.05          #: mA, standard deviation of the published noise
UPDATE_PERIOD = 0.5         #: s between published updates


# --- physics: plain functions --------------------------------------------------------

def decayed_current(fill_current: float, elapsed: float, lifetime: float) -> float:
    """Current *elapsed* seconds after a fill at *fill_current*, for a beam *lifetime*."""
    return fill_current * math.exp(-max(elapsed, 0.0) / lifetime)


@dataclasses.dataclass
class RingState:
    """The ring between top-ups.

    Two clocks, kept apart: the top-up schedule (``last_fill``, when the last
    injection happened) and the decay's anchor (``anchor_time``, ``anchor_current``:
    a moment and the current then, from which the present lifetime applies). A
    top-up moves both; a change of lifetime moves only the anchor, so the new
    lifetime applies from that moment on and never rewrites the decay before it.
    """

    last_fill: float                      #: time of the last top-up (s, nominal)
    anchor_current: float = FILL_CURRENT  #: current at ``anchor_time`` (mA)
    anchor_time: float | None = None      #: start of the present decay (default: last_fill)
    topup_paused: bool = False            #: fault: no injections
    dumped_until: float | None = None     #: fault: beam dumped until then (inf: until restored)

    def __post_init__(self):
        if self.anchor_time is None:
            self.anchor_time = self.last_fill

    def current(self, now: float, lifetime: float, topup_period: float) -> float:
        """The noiseless current at *now*, topping up first if a top-up is due."""
        if self.dumped_until is not None:
            if now < self.dumped_until:
                return 0.0
            self.restore(self.dumped_until)
        if not self.topup_paused and now - self.last_fill >= topup_period:
            self.fill(now)
        return decayed_current(self.anchor_current, now - self.anchor_time, lifetime)

    def fill(self, now: float) -> None:
        """An injection at *now*: back to the fill current, the top-up period restarts."""
        self.last_fill = now
        self.anchor_time = now
        self.anchor_current = FILL_CURRENT

    def dump(self, now: float, duration: float = math.inf) -> None:
        """Lose the beam at *now* for *duration* seconds (inf: until :meth:`restore`)."""
        self.dumped_until = now + duration

    def restore(self, now: float) -> None:
        """End a beam dump at *now*: the ring is refilled."""
        self.dumped_until = None
        self.fill(now)

    def dumped_at(self, now: float) -> bool:
        """Whether a beam dump is in force at *now*."""
        return self.dumped_until is not None and now < self.dumped_until

    def reanchor(self, now: float, lifetime: float) -> None:
        """Before the lifetime changes: fix the decay so far (under *lifetime*, the
        one that held until *now*) as the starting point of the next one."""
        self.anchor_current = decayed_current(self.anchor_current, now - self.anchor_time,
                                              lifetime)
        self.anchor_time = now


def noisy(current: float, rng: np.random.Generator, sigma: float = NOISE_SIGMA) -> float:
    """*current* plus Gaussian noise of standard deviation *sigma* (mA)."""
    return float(current + rng.normal(0.0, sigma))


# --- the PV group -------------------------------------------------------------------

class RingCurrent(PVGroup):
    """Beam current ``{prefix}current`` and its two settings."""

    current = pvproperty(value=FILL_CURRENT, name="current", read_only=True,
                         precision=2, units="mA", doc="storage ring beam current")
    topup_period = pvproperty(value=DEFAULT_TOPUP_PERIOD, name="current:topup_period",
                              precision=1, units="s", doc="seconds between top-ups")
    lifetime = pvproperty(value=DEFAULT_LIFETIME, name="current:lifetime",
                          precision=1, units="s", doc="beam lifetime (s)")

    def __init__(self, *args, seed=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.state = RingState(last_fill=CLOCK.now())
        self.rng = np.random.default_rng(seed)

    def current_now(self) -> float:
        """The current at this moment (mA), noise included: what detectors see."""
        current = self.state.current(CLOCK.now(), self.lifetime.value,
                                     self.topup_period.value)
        return noisy(current, self.rng) if current > 0 else 0.0

    @current.scan(period=UPDATE_PERIOD)
    async def current(self, instance, async_lib):
        await self.publish()

    async def publish(self) -> None:
        """Post the current now (also at once when a fault changes it)."""
        await self.current.write(self.current_now())

    @topup_period.putter
    async def topup_period(self, instance, value):
        return await accept(instance, positive_finite(value, "top-up period"))

    @lifetime.putter
    async def lifetime(self, instance, value):
        value = positive_finite(value, "lifetime")
        # the old lifetime governed the decay until now; the new one applies from now
        self.state.reanchor(CLOCK.now(), instance.value)
        return await accept(instance, value)
