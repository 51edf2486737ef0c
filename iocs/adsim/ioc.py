"""The PV database of the ADSimDetector IOC and the dispatch of client puts.

Every record of :mod:`.table` (the real IOC's 7,395) is served as a caproto
channel, built from the data, not from classes, when it is first used
(:mod:`.records`). A put on a record runs the behaviour registered for it (if any:
the driver and the plugins register theirs), then updates its ``_RBV`` twin, so
every put shows on its readback. Soft records (:mod:`.soft`) follow the records they
link to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor

from caproto import SkipWrite

from ..autosave import PutSettings, is_ad_action
from .beamline import BeamlineLink
from .channels import fit_text, initial_value, make_channel
from .driver import Driver
from .paths import PathMap
from .chain import PluginChain
from .records import PrefixedRecords, Records
from .soft import SoftRecords
from .table import load_table

log = logging.getLogger(__name__)

#: PVSpec kinds whose value is one scalar (compared as such by post_changed)
SCALAR_KINDS = frozenset({"double", "long", "short", "enum", "string", "longstring"})


def checked_value(spec, value):
    """*value* as the record of *spec* takes it from a client: a number must be
    finite (an infinite or NaN exposure would never end), and an ao/longout clamps
    to DRVL..DRVH when DRVH > DRVL, as the record's own processing does."""
    if spec.kind in ("double", "long", "short") and not isinstance(value, (str, bytes)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{spec.suffix} takes a finite number, not {value!r}")
        low, high = spec.fields.get("DRVL"), spec.fields.get("DRVH")
        if low is not None and high is not None and float(high) > float(low):
            clamped = min(max(number, float(low)), float(high))
            if clamped != number:
                value = type(value)(clamped) if spec.kind == "double" else int(clamped)
    return value


def same_state(setpoint, readback, value):
    """*value* of an enum *setpoint* as its *readback* names the same state
    (Capture -> Capturing, Acquire -> Acquiring); anything else unchanged."""
    strings = getattr(setpoint, "enum_strings", None)
    names = getattr(readback, "enum_strings", None)
    if isinstance(value, str) and strings and names and value in strings:
        index = list(strings).index(value)
        if index < len(names) and names[index]:
            return names[index]
    return value


class ADSimIOC:
    """The IOC: ``pvdb`` for caproto's server, plus driver and plugin chain."""

    def __init__(self, prefix: str, macros=None, *, path_map: PathMap | None = None,
                 image_ftvl: str = "UCHAR", beamline: BeamlineLink | None = None,
                 stage_scale: float = 4.0, **_):
        self.prefix = prefix
        self.image_ftvl = image_ftvl
        specs = load_table()
        self.soft = SoftRecords(self, specs)
        #: suffix -> caproto channel, each made on first use (see .records)
        self.channels = Records(specs, self._make_channel,
                                functools.partial(initial_value, image_ftvl=image_ftvl))
        self.pvdb = PrefixedRecords(prefix, self.channels)
        self.handlers = {}
        self.path_map = path_map or PathMap()
        self.beamline = beamline or BeamlineLink()
        #: file writing and frame maths run here, off the event loop
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="adsim")
        self.plugins = PluginChain(self)
        self.driver = Driver(self, stage_scale=stage_scale)
        self.plugins.on_write_error = self.driver.abort
        #: settings clients put, kept across restarts (autosave)
        self.settings = PutSettings("adsim", is_ad_action, prefix)

    def _make_channel(self, spec):
        """The channel serving *spec*, hooked to this IOC's puts and soft records."""
        channel = make_channel(spec, image_ftvl=self.image_ftvl)
        channel.suffix = spec.suffix
        channel.spec = spec
        if not spec.read_only:
            channel.on_put = self._on_put
        if spec.suffix in self.soft.dependents:
            channel.after_write = self.soft.on_write
        return channel

    # -- state ---------------------------------------------------------------
    def get(self, suffix: str):
        """Current value of a record (enums as their string)."""
        return self.channels.value(suffix)

    def numeric(self, suffix: str):
        """Current value of a record as a number (enums as their state index)."""
        value = self.channels.value(suffix)
        if isinstance(value, str):
            strings = self.channels.enum_strings(suffix)
            if strings:
                return strings.index(value) if value in strings else 0
        return value

    def has(self, suffix: str) -> bool:
        return suffix in self.channels

    async def post(self, suffix: str, value) -> None:
        """Update a record from the IOC side (no put behaviour runs). Text is cut
        only to what the record holds (see :func:`.channels.fit_text`)."""
        channel = self.channels[suffix]
        await channel.write(fit_text(channel.spec, value), verify_value=False)

    async def post_many(self, values: dict) -> None:
        for suffix, value in values.items():
            if suffix in self.channels:
                await self.post(suffix, value)

    async def post_changed(self, values: dict) -> None:
        """Post only the scalar values that differ from what the records hold, as
        asynPortDriver does: its set*Param marks a parameter changed only when the
        value differs, and callParamCallbacks calls back (processes the I/O Intr
        readback, posts a monitor) for changed parameters only. For the per-frame
        readbacks that mostly repeat (array sizes, data type): each post costs a
        caproto write and a monitor update to every subscriber."""
        for suffix, value in values.items():
            spec = self.channels.specs.get(suffix)
            if spec is None:
                continue
            value = fit_text(spec, value)
            if spec.kind in SCALAR_KINDS and self.channels.value(suffix) == value:
                continue
            await self.channels[suffix].write(value, verify_value=False)

    def register(self, suffix: str, handler) -> None:
        """``await handler(value)`` on each client put of *suffix*; it returns the
        value to store (possibly clamped), or SkipWrite, or raises to refuse."""
        self.handlers[suffix] = handler

    # -- puts ----------------------------------------------------------------
    async def _on_put(self, channel, value):
        suffix = channel.suffix
        value = checked_value(channel.spec, value)
        handler = self.handlers.get(suffix)
        if handler is not None:
            value = await handler(value)
            if value is SkipWrite:
                return SkipWrite
        readback = self.channels.get(suffix + "_RBV")
        if readback is not None:
            await self.post(readback.suffix, same_state(channel, readback, value))
        self.settings.remember(suffix, value)
        return value

    async def startup(self, address: tuple[str, int] | None = None) -> None:
        """Run inside the server's event loop once it serves; *address* is the
        ``(host, port)`` its CA server binds (Pva1 serves PV Access beside it)."""
        for host_dir in self.path_map.host_roots():
            try:
                os.makedirs(host_dir, exist_ok=True)
            except OSError as exc:
                log.warning("cannot create mapped directory %s: %s", host_dir, exc)
        await self.soft.compute_all()
        self._rate_task = asyncio.get_running_loop().create_task(self.soft.run_rates())
        await self.beamline.start()
        if address is not None:
            await self.plugins.start(*address)
        await self.settings.restore(lambda suffix, value: self.channels[suffix].write(value))
