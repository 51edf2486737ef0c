"""Soft records: records with no asyn parameter whose value the database computes
from other records, as the real IOC's links do.

  subArray  DimNSA(_RBV) takes element N of its Dimensions(_RBV) waveform
  longin/ai with a LINK copies its source (ArraySizeN(_RBV) from DimNSA(_RBV))
  calc      evaluates its CALC on its INPx inputs whenever one of them changes
            (QueueUse, PoolUsedBuffers, MaxArrayRate_RBV, ...); the "1 second"
            ArrayRate_RBV calcs are computed by :meth:`SoftRecords.run_rates`
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import defaultdict

from .table import PVSpec, subarray_index

log = logging.getLogger(__name__)

_INPUTS = "ABCDEFGHIJKL"
_TERNARY = re.compile(r"^(?P<cond>[^?]+)\?(?P<yes>[^:]+):(?P<no>.+)$")
_EQUALS = re.compile(r"(?<![<>!=])=(?!=)")


def compile_calc(expression: str):
    """A Python function of the inputs A..L for an EPICS CALC *expression*, or None
    if it uses more than arithmetic, comparisons, MAX/MIN and one ``?:``."""
    if re.search(r"[^A-L0-9.+\-*/()<>=!?:, ]", expression.replace("MAX", "").replace("MIN", "")):
        return None
    text = expression.replace("MAX", "max").replace("MIN", "min")
    m = _TERNARY.match(text)
    if m:
        text = f"(({m['yes']}) if ({m['cond']}) else ({m['no']}))"
    text = _EQUALS.sub("==", text)
    try:
        code = compile(text, f"<CALC {expression}>", "eval")
    except SyntaxError:
        return None

    def evaluate(values: dict) -> float:
        try:
            return float(eval(code, {"__builtins__": {}, "max": max, "min": min}, values))
        except ZeroDivisionError:
            return math.inf
    return evaluate


def _link_target(link: str) -> tuple[str, str]:
    """(record, field) a database link names, e.g. ('cam1:Dimensions', 'VAL')."""
    name = link.split()[0] if link.strip() else ""
    record, _, field = name.partition(".")
    return record, field or "VAL"


def _first(value):
    try:
        return value[0]
    except (TypeError, IndexError):
        return value


class SoftRecords:
    """The soft records of the IOC and the records they follow."""

    def __init__(self, ioc, specs: list[PVSpec]):
        self.ioc = ioc
        #: source record -> soft records computed from it
        self.dependents: dict[str, list[PVSpec]] = defaultdict(list)
        self.calcs: dict[str, tuple] = {}      # suffix -> (function, {letter: source})
        self.rates: list[tuple[str, str]] = []  # (ArrayRate_RBV, its counter)
        self._last_count: dict[str, float] = {}
        known = {s.suffix for s in specs}
        for spec in specs:
            if spec.asyn_param:
                continue
            fields = spec.fields
            if spec.record == "subArray" or (spec.record in ("longin", "ai") and "LINK" in fields):
                source, field = _link_target(fields.get("LINK", ""))
                if source in known and field == "VAL":
                    self.dependents[source].append(spec)
            elif spec.record == "calc" and "CALC" in fields:
                inputs = {letter: _link_target(fields[f"INP{letter}"])
                          for letter in _INPUTS if fields.get(f"INP{letter}")}
                if fields.get("SCAN") == "1 second" and "B" in inputs:
                    self.rates.append((spec.suffix, inputs["B"][0]))
                    continue
                function = compile_calc(fields["CALC"])
                if function is None or not all(r in known and f == "VAL"
                                               for r, f in inputs.values()):
                    continue
                self.calcs[spec.suffix] = (function, {k: r for k, (r, _) in inputs.items()})
                for record, _ in inputs.values():
                    self.dependents[record].append(spec)

    def value_of(self, spec: PVSpec):
        """The value *spec* computes from the records it follows now."""
        if spec.record == "subArray":
            source, _ = _link_target(spec.fields["LINK"])
            data = self.ioc.get(source)
            index = subarray_index(spec.suffix)
            try:
                return int(data[index])
            except (TypeError, IndexError):
                return 0
        if spec.record in ("longin", "ai"):
            source, _ = _link_target(spec.fields["LINK"])
            return _first(self.ioc.get(source))
        function, inputs = self.calcs[spec.suffix]
        values = {letter: 0.0 for letter in _INPUTS}
        for letter, record in inputs.items():
            value = _first(self.ioc.numeric(record))
            values[letter] = float(value)
        return function(values)

    async def on_write(self, channel) -> None:
        """A followed record changed: recompute what depends on it."""
        await self.recompute(channel.suffix)

    async def recompute(self, source: str) -> None:
        """Post each record computed from *source* whose value is not what it holds."""
        for spec in self.dependents.get(source, ()):
            try:
                value = self.value_of(spec)
            except Exception as exc:   # a soft record never breaks its source's write
                log.warning("cannot compute %s: %s", spec.suffix, exc)
                continue
            if value != self.ioc.numeric(spec.suffix):
                await self.ioc.post(spec.suffix, value)

    async def compute_all(self) -> None:
        """Give every soft record its value from the boot values (at startup)."""
        for source in list(self.dependents):
            await self.recompute(source)

    async def run_rates(self, period: float = 1.0) -> None:
        """Every *period* seconds, ArrayRate_RBV = frames counted since the last time
        per second (the "1 second" calc of every driver and plugin)."""
        while True:
            await asyncio.sleep(period)
            for suffix, counter in self.rates:
                count = float(_first(self.ioc.numeric(counter)))
                last = self._last_count.get(suffix, count)
                self._last_count[suffix] = count
                rate = max(0.0, count - last) / period
                if rate != self.ioc.numeric(suffix):
                    await self.ioc.post(suffix, rate)
