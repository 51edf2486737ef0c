"""``{prefix}time_scale``: the simulation clock's scale, read and set over CA.

    {prefix}time_scale   wall seconds per simulated second (writable; 1e-4 .. 100):
                         1 is real time, 0.01 a hundred times faster
"""

from __future__ import annotations

from caproto.server import PVGroup, pvproperty

from .clock import CLOCK
from .validation import accept


class TimeScale(PVGroup):
    """``{prefix}time_scale``: read and set :data:`CLOCK`'s scale over CA.

    A value outside 1e-4 .. 100 (or not finite) is refused: the put fails, the PV
    shows a WRITE/MAJOR alarm and keeps its value.
    """

    time_scale = pvproperty(value=1.0, name="time_scale", precision=4,
                            doc="simulation time scale: 1 real time, 0.01 100x faster")

    @time_scale.startup
    async def time_scale(self, instance, async_lib):
        await instance.write(CLOCK.scale)

    @time_scale.putter
    async def time_scale(self, instance, value):
        return await accept(instance, CLOCK.set_scale(value))
