"""NDPluginTimeSeries (Stats1..5:TS, Attr1:TS): per-frame values accumulated into
time-series waveforms.

NDPluginStats sends, for every frame, one 1-D Float64 NDArray of its 23 statistics
(:data:`STATS_SIGNALS`, the order of NDPluginStats' ``NDStatTSType``) on address 1
of its port; NDPluginAttribute sends its eight attribute values the same way. The
time-series plugin of that port (NDArrayPort STATS1, NDArrayAddress 1) takes each
such array as one time point of every signal while ``TSAcquire`` is Acquire:

* ``TSAcquire`` = 1 erases and starts (a busy record: a put with completion returns
  when the acquisition ends), = 0 stops; ``TSAcquiring`` follows.
* ``TSAcquireMode`` Fixed length stops by itself after ``TSNumPoints`` points;
  Circ. buffer wraps around and runs until stopped.
* ``TSNumAverage`` = round(``TSAveragingTime`` / ``TSTimePerPoint``) input points are
  averaged into one time point (1 at boot: 0.1 s / 0.1 s).
* The waveforms (``Stats1:TSTotal``, ... ``Stats1:TSTimestamp``;
  ``Attr1:N:TSArrayValue``) are published on stop and on each ``TSRead``, which the
  real IOC scans every second while acquiring (disabled otherwise, so a put of TSRead
  while Done does nothing). Fixed length publishes the points so far; Circ. buffer
  all TSNumPoints points, oldest first.

``TS:TSTimestamp`` (TS_TIMESTAMP) stays empty, as in NDPluginTimeSeries, whose
code fills its timestamp buffer but never publishes it; the per-frame timestamps are
the ``Stats1:TSTimestamp`` signal.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from caproto import SkipWrite

from ..clock import CLOCK
from .h5writer import EPICS_EPOCH
from .plugins import NDArray, Plugin
from .stats import STATS_SIGNALS

log = logging.getLogger(__name__)

#: NDPluginAttribute's attributes (NDAttrConfigure maxAttributes of commonPlugins)
ATTRIBUTE_SIGNALS = 8
FIXED, CIRCULAR = "Fixed length", "Circ. buffer"
#: the period of TSRead's "1 second" scan while acquiring
READ_PERIOD = 1.0


def num_average(averaging_time: float, time_per_point: float) -> tuple[int, float]:
    """(points averaged per time point, the actual averaging time) as
    NDPluginTimeSeries::computeNumAverage: the nearest whole number of points, at
    least one; a TimePerPoint of 0 averages nothing and keeps the time asked for."""
    if time_per_point == 0:
        return 1, averaging_time
    n = max(int(averaging_time / time_per_point + 0.5), 1)
    return n, time_per_point * n


class TimeSeries:
    """The buffer of NDPluginTimeSeries: ``num_points`` time points of up to
    ``max_signals`` signals, filled in order (Fixed length, which stops when full) or
    round and round (Circ. buffer). Plain numpy, no IOC."""

    def __init__(self, max_signals: int, num_points: int = 2048):
        self.max_signals = max(int(max_signals), 1)
        self.num_signals = self.max_signals
        self.signals_in = 0
        self.num_points = max(int(num_points), 1)
        self.mode = FIXED
        self.num_average = 1
        self.allocate()

    def allocate(self, num_points: int | None = None) -> None:
        """New (zeroed) buffers of *num_points* (default: the current number)."""
        if num_points is not None:
            self.num_points = max(int(num_points), 1)
        self.data = np.zeros((self.num_signals, self.num_points))
        self.timestamps = np.zeros(self.num_points)
        self.reset()

    def reset(self) -> None:
        """Erase: every point 0, the next one the first (acquireReset)."""
        self.data[:] = 0.0
        self.timestamps[:] = 0.0
        self.current = 0
        self._sum = np.zeros(self.num_signals)
        self._summed = 0
        self.started = time.monotonic()

    def take_shape(self, signals_in: int) -> bool:
        """Follow the number of values per input point; a change reallocates (erases),
        as the C plugin does when the input array's first dimension changes. True
        when it changed."""
        if signals_in == self.signals_in:
            return False
        self.signals_in = signals_in
        self.num_signals = min(signals_in, self.max_signals)
        self.allocate()
        return True

    def add(self, points: np.ndarray, timestamp: float) -> bool:
        """Append *points* (one input point of ``signals_in`` values, or a 2-D
        (times, signals_in) block), averaged ``num_average`` at a time. True when
        Fixed length has just filled (the caller then stops acquiring); the rest of
        a block is then dropped."""
        rows = np.atleast_2d(np.asarray(points, dtype=np.float64))
        for row in rows:
            self._sum += row[:self.num_signals]
            self._summed += 1
            if self._summed < self.num_average:
                continue
            self.data[:, self.current] = self._sum / self._summed
            self._sum[:] = 0.0
            self._summed = 0
            self.timestamps[self.current] = timestamp
            self.current += 1
            if self.current >= self.num_points:
                if self.mode == FIXED:
                    return True
                self.current = 0
        return False

    def series(self) -> np.ndarray:
        """(num_signals, n): what the time-series waveforms show. Fixed length: the
        points so far; Circ. buffer: all points, the oldest first."""
        if self.mode == FIXED:
            return self.data[:, :self.current].copy()
        return np.concatenate((self.data[:, self.current:], self.data[:, :self.current]), axis=1)

    def full(self) -> np.ndarray:
        """(num_signals, num_points): the NDArray passed on, ordered as :meth:`series`
        but every point (Fixed length's unfilled ones are 0)."""
        if self.mode == FIXED:
            return self.data.copy()
        return self.series()

    def time_axis(self, averaging_time: float) -> np.ndarray:
        """TSTimeAxis: from 0 up (Fixed length), or up to 0 (Circ. buffer, the newest
        point at 0)."""
        i = np.arange(self.num_points, dtype=np.float64)
        if self.mode == FIXED:
            return i * averaging_time
        return -(self.num_points - 1 - i) * averaging_time


class TimeSeriesPlugin(Plugin):
    """StatsN:TS and Attr1:TS: :class:`TimeSeries` driven by the TS records."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        source = name.split(":")[0]                   # "Stats1:TS" -> "Stats1"
        if source.startswith("Attr"):
            self.signal_pvs = [f"{source}:{n}:TSArrayValue" for n in range(1, ATTRIBUTE_SIGNALS + 1)]
        else:
            self.signal_pvs = [f"{source}:TS{signal}" for signal in STATS_SIGNALS]
        self.series = TimeSeries(len(self.signal_pvs), int(self.get("TSNumPoints") or 2048))
        self.acquiring = False
        self.done = asyncio.Event()
        self.done.set()
        self.stop_reading = asyncio.Event()
        self.time_per_point = 0.1          # TSTimePerPointLink's DOL, put at boot
        self.averaging_time = 0.1          # TSAveragingTime's VAL (PINI)
        self.averaging_actual = 0.1
        self.unique_id = 0
        reg = self.ioc.register
        reg(self.pv("TSAcquire"), self._put_acquire)
        reg(self.pv("TSRead"), self._put_read)
        reg(self.pv("TSNumPoints"), self._put_num_points)
        reg(self.pv("TSAcquireMode"), self._put_mode)
        reg(self.pv("TSTimePerPoint"), self._put_timing("time_per_point"))
        reg(self.pv("TSAveragingTime"), self._put_timing("averaging_time"))

    async def boot(self) -> None:
        """What the real IOC shows after its PINI records: TimePerPoint and
        AveragingTime 0.1 s (so 1 point averaged), the time axis, point 0."""
        await self.post({"TSTimePerPoint": self.time_per_point,
                         "TSTimePerPoint_RBV": self.time_per_point,
                         "TSAcquireMode_RBV": self.series.mode, "TSAcquiring": "Done",
                         "TSCurrentPoint": 0})
        await self._post_averaging()

    # -- puts ----------------------------------------------------------------
    async def _put_acquire(self, value):
        if value not in (1, "Acquire"):
            if self.acquiring:
                await self._stop()
            return "Done"
        self.series.reset()
        await self.post({"TSCurrentPoint": 0, "TSElapsedTime": 0.0})
        if not self.acquiring:
            self.acquiring = True
            self.done = asyncio.Event()
            self.stop_reading = asyncio.Event()
            await self.ioc.channels[self.pv("TSAcquire")].write("Acquire", verify_value=False)
            await self.post({"TSAcquiring": "Acquiring"})
            asyncio.get_running_loop().create_task(self._read_while_acquiring(self.stop_reading))
        await self.done.wait()          # busy record: put with completion held until Done
        return SkipWrite

    async def _stop(self) -> None:
        """End the acquisition (a put of 0, or Fixed length full): Done, and the
        waveforms published (doTimeSeriesCallbacks)."""
        self.acquiring = False
        self.stop_reading.set()
        await self.ioc.channels[self.pv("TSAcquire")].write("Done", verify_value=False)
        await self.post({"TSAcquiring": "Done"})
        await self.publish_series()
        self.done.set()

    async def _read_while_acquiring(self, stop: asyncio.Event) -> None:
        """TSRead's "1 second" scan, enabled while TSAcquiring is Acquiring."""
        while not await CLOCK.wait(READ_PERIOD, stop):
            try:
                await self.publish_series()
            except Exception:
                log.exception("%s could not publish its time series", self.name)

    async def _put_read(self, value):
        if self.acquiring:           # SDIS: TSRead is disabled while not acquiring
            await self.publish_series()
        return value

    async def _put_num_points(self, value):
        self.series.allocate(max(int(value), 1))
        await self.post({"TSCurrentPoint": 0})
        await self._post_axis()
        return self.series.num_points

    async def _put_mode(self, value):
        modes = (FIXED, CIRCULAR)
        self.series.mode = modes[value] if isinstance(value, int) else value
        if self.series.mode not in modes:
            raise ValueError(f"{self.name}:TSAcquireMode is one of {modes}, not {value!r}")
        self.series.reset()
        await self.post({"TSCurrentPoint": 0})
        await self._post_axis()
        return value

    def _put_timing(self, attr):
        field = "TSTimePerPoint" if attr == "time_per_point" else "TSAveragingTime"

        async def handler(value):
            setattr(self, attr, float(value))
            # the setpoint as put; its readback the actual averaging time
            await self.ioc.channels[self.pv(field)].write(float(value), verify_value=False)
            self.ioc.settings.remember(self.pv(field), float(value))
            if field == "TSTimePerPoint":
                await self.post({"TSTimePerPoint_RBV": float(value)})
            await self._post_averaging()
            return SkipWrite
        return handler

    async def _post_averaging(self) -> None:
        n, self.averaging_actual = num_average(self.averaging_time, self.time_per_point)
        self.series.num_average = n
        self.series._summed = 0
        await self.post({"TSAveragingTime_RBV": self.averaging_actual, "TSNumAverage": n})
        await self._post_axis()

    async def _post_axis(self) -> None:
        await self.post_arrays({"TSTimeAxis": self.series.time_axis(self.averaging_actual)})

    # -- frames --------------------------------------------------------------
    async def publish_series(self) -> None:
        """doTimeSeriesCallbacks: each signal's waveform; with ArrayCallbacks, the
        (signals x points) NDArray on address num_signals and each signal's 1-D one
        on its own address, as NDPluginTimeSeries passes them on."""
        series = self.series.series()
        await self.post_arrays({pv: series[i] for i, pv in
                                enumerate(self.signal_pvs[:self.series.num_signals])})
        if self.get("ArrayCallbacks") != "Enable":
            return
        full = self.series.full()
        now = time.time()
        uid, self.unique_id = self.unique_id, self.unique_id + 1
        await self.chain.publish(self.port, NDArray(full, uid, now), self.series.num_signals)
        for signal in range(self.series.num_signals):
            await self.chain.publish(self.port, NDArray(full[signal].copy(), uid, now), signal)

    async def handle(self, array: NDArray):
        data = array.data
        if data.ndim not in (1, 2):
            log.error("%s: the number of array dimensions must be 1 or 2, not %d",
                      self.name, data.ndim)
            return False
        # NDArray dims[0] (the signals) is numpy's last axis
        if self.series.take_shape(data.shape[-1]):
            await self.post({"TSCurrentPoint": 0})
            await self._post_axis()
        if self.acquiring:
            full = self.series.add(data, array.timestamp - EPICS_EPOCH)
            await self.post({"TSCurrentPoint": self.series.current,
                             "TSElapsedTime": time.monotonic() - self.series.started})
            if full:
                await self._stop()
        return False                      # NDPluginTimeSeries passes no input frame on
