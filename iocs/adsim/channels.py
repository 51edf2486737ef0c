"""caproto channels for the PV specifications of :mod:`.table`, with put hooks.

A put runs ``await on_put(channel, value)`` (value already validated: enums as
their string) and stores what the hook returns; a hook may raise to refuse the put
(the client sees a put failure) or return :data:`caproto.SkipWrite` to keep the
value it posted itself.
"""

from __future__ import annotations

import numpy as np
from caproto import (ChannelByte, ChannelChar, ChannelData, ChannelDouble, ChannelEnum,
                     ChannelFloat, ChannelInteger, ChannelShort, ChannelString)

from .table import PVSpec

#: Element type of image1:ArrayData (FTVL) -> caproto channel class and numpy dtype.
#: UCHAR is what the simDetector IOC's st_base.cmd loads by default (8-bit images).
IMAGE_FTVL = {
    "UCHAR": (ChannelByte, np.uint8),
    "SHORT": (ChannelShort, np.int16),
    "LONG": (ChannelInteger, np.int32),
    "FLOAT": (ChannelFloat, np.float32),
    "DOUBLE": (ChannelDouble, np.float64),
}
#: NELEMENTS of image1:ArrayData in st_base.cmd.
IMAGE_NELM = 12_000_000

_ARRAY_CLASSES = {"LONG": (ChannelInteger, 0), "DOUBLE": (ChannelDouble, 0.0),
                  "SHORT": (ChannelShort, 0), "FLOAT": (ChannelFloat, 0.0)}


class HookedMixin:
    """Calls ``on_put`` after the channel's own validation of a client's put."""

    on_put = None

    async def verify_value(self, value):
        value = await super().verify_value(value)
        if self.on_put is not None:
            value = await self.on_put(self, value)
        return value


class HookedEnum(HookedMixin, ChannelEnum):
    async def verify_value(self, value):
        # Puts arrive as an index or a string; anything else is refused, as
        # an mbbo/bo record refuses an out-of-range state.
        if isinstance(value, str):
            if value not in self.enum_strings:
                raise ValueError(f"{value!r} is not one of {list(self.enum_strings)}")
        else:
            index = int(value)
            if not 0 <= index < len(self.enum_strings):
                raise ValueError(f"state {index} out of range 0..{len(self.enum_strings) - 1}")
        return await super().verify_value(value)


def _hooked(cls):
    return type(f"Hooked{cls.__name__[len('Channel'):]}", (HookedMixin, cls), {})


_HOOKED = {cls: _hooked(cls) for cls in (ChannelByte, ChannelChar, ChannelDouble, ChannelFloat,
                                         ChannelInteger, ChannelShort, ChannelString)}


def _number(text: str, cast, default):
    try:
        return cast(float(text)) if text != "" else default
    except ValueError:
        return default


def make_channel(spec: PVSpec, *, image_ftvl: str = "UCHAR") -> ChannelData:
    """A caproto channel that serves *spec* with its initial value."""
    common = dict(reported_record_type=spec.record)
    if spec.kind == "enum" and spec.enum_strings:
        index = _number(spec.initial, int, 0)
        index = min(max(index, 0), len(spec.enum_strings) - 1)
        return HookedEnum(value=spec.enum_strings[index], enum_strings=spec.enum_strings, **common)
    if spec.kind == "enum":  # a bo with no state strings: plain numbers
        return _HOOKED[ChannelInteger](value=_number(spec.initial, int, 0), **common)
    if spec.kind == "double":
        return _HOOKED[ChannelDouble](value=_number(spec.initial, float, 0.0),
                                     precision=spec.precision, **common)
    if spec.kind == "long":
        return _HOOKED[ChannelInteger](value=_number(spec.initial, int, 0), **common)
    if spec.kind == "short":
        return _HOOKED[ChannelShort](value=_number(spec.initial, int, 0), **common)
    if spec.kind == "string":
        return _HOOKED[ChannelString](value=spec.initial, max_length=1, **common)
    if spec.kind == "longstring":
        # A CHAR waveform (not a 40-character DBR_STRING): long paths survive.
        return _HOOKED[ChannelChar](value=spec.initial, max_length=spec.length, **common)
    if spec.kind == "array":
        cls, zero = _ARRAY_CLASSES[spec.ftvl]
        return _HOOKED[cls](value=[zero] * spec.length, max_length=spec.length, **common)
    if spec.kind == "image":
        cls, dtype = IMAGE_FTVL[image_ftvl]
        return _HOOKED[cls](value=np.zeros(1, dtype=dtype), max_length=IMAGE_NELM, **common)
    raise ValueError(f"{spec.suffix}: unknown kind {spec.kind!r}")
