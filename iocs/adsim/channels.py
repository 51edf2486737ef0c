"""caproto channels for the PV specifications of :mod:`.table`, with put hooks.

A put runs ``await on_put(channel, value)`` (value already validated: enums as
their string) and stores what the hook returns; a hook may raise to refuse the put
(the client sees a put failure) or return :data:`caproto.SkipWrite` to keep the
value it posted itself.
"""

from __future__ import annotations

import numpy as np
from caproto import (AccessRights, ChannelByte, ChannelChar, ChannelData, ChannelDouble, ChannelEnum,
                     ChannelFloat, ChannelInteger, ChannelShort, ChannelString, ChannelType,
                     native_type)
from caproto._dbr import DBR_TYPES

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

#: FTVL of numeric waveforms -> caproto channel class and numpy element type
_ARRAY_CLASSES = {"LONG": (ChannelInteger, np.int32), "DOUBLE": (ChannelDouble, np.float64),
                  "SHORT": (ChannelShort, np.int16), "FLOAT": (ChannelFloat, np.float32),
                  "UCHAR": (ChannelByte, np.uint8)}


class HookedMixin:
    """Calls ``on_put`` after the channel's own validation of a client's put, and
    ``after_write`` once any new value is stored (client put or IOC post).

    ``read_only`` channels (input records: ai, bi, longin, mbbi, stringin, calc,
    I/O Intr waveforms) refuse every client put. A refused put leaves the value
    and the alarm as they were: caproto raises a WRITE/MAJOR alarm on any refusal,
    which the real record does not, so it is cleared again here.
    """

    on_put = None
    after_write = None
    read_only = False

    def check_access(self, hostname, username):
        return AccessRights.READ if self.read_only else super().check_access(hostname, username)

    async def verify_value(self, value):
        value = await super().verify_value(value)
        if self.on_put is not None:
            value = await self.on_put(self, value)
        return value

    async def write(self, value, **kwargs):
        before = (self.alarm.status, self.alarm.severity)
        try:
            await super().write(value, **kwargs)
        except Exception:
            if (self.alarm.status, self.alarm.severity) != before:
                await self.alarm.write(status=before[0], severity=before[1])
            raise
        if self.after_write is not None:
            await self.after_write(self)


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


class BareEnum(ChannelEnum):
    """A bo whose template names no states (ZNAM/ONAM empty), e.g. ProcessPlugin.

    The real record still reports DBR_ENUM over CA, with no state strings in its
    GR/CTRL metadata and an empty string for DBR_STRING reads; its VAL is the state
    number 0 or 1. The value is kept as that number (``ioc.get`` gives an int).
    """

    #: a bo has two states whether or not they are named
    STATES = 2
    _CTRL_TYPES = (DBR_TYPES[ChannelType.GR_ENUM], DBR_TYPES[ChannelType.CTRL_ENUM])

    def __init__(self, *, value=0, **kwargs):
        kwargs.pop("enum_strings", None)
        # one (empty) name per state, so the wire conversions accept indices 0..1;
        # the metadata the client sees names none (see _read_metadata)
        super().__init__(value=int(value), enum_strings=("",) * self.STATES, **kwargs)

    def _read_metadata(self, dbr_metadata):
        if isinstance(dbr_metadata, self._CTRL_TYPES):
            dbr_metadata.enum_strings = []
        return ChannelData._read_metadata(self, dbr_metadata)

    async def verify_value(self, value):
        # a state number (or its text, as a DBR_STRING put of a bo parses it)
        if isinstance(value, (bytes, str)):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            text = text.split("\0", 1)[0]
            try:
                value = int(float(text.strip() or "0"))
            except ValueError:
                raise ValueError(f"{text!r} is not a state number of an unnamed bo") from None
        index = int(value)
        if not 0 <= index < self.STATES:
            raise ValueError(f"state {index} out of range 0..{self.STATES - 1}")
        return index

    async def write_from_dbr(self, data, data_type, metadata, *, flags=0):
        if native_type(data_type) == ChannelType.STRING:
            # no state names to look up: the text is the state number
            text = data[0] if isinstance(data, (list, tuple)) else data
            return await self.write(text, flags=flags)
        return await super().write_from_dbr(data, data_type, metadata, flags=flags)


class HookedBareEnum(HookedMixin, BareEnum):
    pass


class HookedLongString(HookedMixin, ChannelChar):
    """A long string: a CHAR waveform of NELM characters (FilePath, FileName, ...).

    An all-NUL put (pyepics ``caput(pv, "")``, ophyd ``set("")``) stores the empty
    string, as the real record does (caproto's conversion refuses it). A string
    longer than NELM is refused, naming the limit (the record would cut it, and a
    cut path is a different directory)."""

    async def write_from_dbr(self, data, data_type, metadata, *, flags=0):
        if native_type(data_type) == ChannelType.CHAR:
            raw = data[0] if isinstance(data, list) else data
            raw = raw.tobytes() if hasattr(raw, "tobytes") else bytes(raw)
            if not raw.split(b"\0", 1)[0]:
                return await self.write("", flags=flags)
        elif native_type(data_type) == ChannelType.STRING:
            # text sent as a DBR_STRING (caproto-put): stored as the text it is
            raw = data[0] if isinstance(data, (list, tuple)) else data
            if isinstance(raw, bytes):
                raw = raw.split(b"\0", 1)[0].decode(self.string_encoding)
            return await self.write(raw, flags=flags)
        return await super().write_from_dbr(data, data_type, metadata, flags=flags)

    async def verify_value(self, value):
        text = value if isinstance(value, str) else ""
        if len(text) > self.max_length:
            raise ValueError(f"{len(text)} characters do not fit this record: it holds "
                             f"{self.max_length} (NELM); use a shorter value")
        return await super().verify_value(value)

    def preprocess_value(self, value):
        if isinstance(value, str):
            return value       # text: checked against NELM in verify_value
        return super().preprocess_value(value)


def _hooked(cls):
    return type(f"Hooked{cls.__name__[len('Channel'):]}", (HookedMixin, cls), {})


_HOOKED = {cls: _hooked(cls) for cls in (ChannelByte, ChannelChar, ChannelDouble, ChannelFloat,
                                         ChannelInteger, ChannelShort, ChannelString)}


def _number(text: str, cast, default):
    try:
        return cast(float(text)) if text != "" else default
    except ValueError:
        return default


#: characters a DBR_STRING record holds (MAX_STRING_SIZE 40, with its NUL)
STRING_CHARS = 39


def fit_text(spec: PVSpec, value):
    """*value* as the record of *spec* holds it: text longer than the record cuts
    to what it keeps (39 characters for a DBR_STRING record, NELM - 1 for a
    long-string CHAR waveform, as asyn's readOctet leaves room for the NUL);
    anything else is unchanged."""
    if not isinstance(value, str):
        return value
    if spec.kind == "string":
        return value[:STRING_CHARS]
    if spec.kind == "longstring":
        return value[:max(spec.length - 1, 0)]
    return value


#: frames a slow monitor of an image channel may fall behind before older ones are
#: dropped (caproto's default is 1000 per subscription: a 1 MB frame each)
IMAGE_BACKLOG = 4


def make_channel(spec: PVSpec, *, image_ftvl: str = "UCHAR") -> ChannelData:
    """A caproto channel that serves *spec* with its initial value."""
    channel = _make_channel(spec, image_ftvl)
    channel.read_only = spec.read_only
    return channel


def initial_value(spec: PVSpec, *, image_ftvl: str = "UCHAR"):
    """The value the channel of *spec* starts with (what ``make_channel(spec).value``
    is): a record not made a channel yet is read as this (:mod:`.records`)."""
    if spec.kind == "enum" and spec.enum_strings:
        index = min(max(_number(spec.initial, int, 0), 0), len(spec.enum_strings) - 1)
        return spec.enum_strings[index]
    if spec.kind == "enum":     # a bo with no state strings: the state number
        return min(max(_number(spec.initial, int, 0), 0), 1)
    if spec.kind == "double":
        return _number(spec.initial, float, 0.0)
    if spec.kind in ("long", "short"):
        return _number(spec.initial, int, 0)
    if spec.kind in ("string", "longstring"):
        return spec.initial
    if spec.kind == "array":      # one element: caproto holds the scalar
        zeros = np.zeros(spec.length, dtype=_ARRAY_CLASSES[spec.ftvl][1])
        return zeros[0] if spec.length == 1 else zeros
    if spec.kind == "image":
        return np.zeros(1, dtype=IMAGE_FTVL[image_ftvl][1])
    raise ValueError(f"{spec.suffix}: unknown kind {spec.kind!r}")


def _make_channel(spec: PVSpec, image_ftvl: str) -> ChannelData:
    common = dict(value=initial_value(spec, image_ftvl=image_ftvl),
                  reported_record_type=spec.record)
    if spec.kind == "enum" and spec.enum_strings:
        return HookedEnum(enum_strings=spec.enum_strings, **common)
    if spec.kind == "enum":  # a bo with no state strings: DBR_ENUM, no names
        return HookedBareEnum(**common)
    if spec.kind == "double":
        return _HOOKED[ChannelDouble](precision=spec.precision, units=spec.units, **common)
    if spec.kind == "long":
        return _HOOKED[ChannelInteger](units=spec.units, **common)
    if spec.kind == "short":
        return _HOOKED[ChannelShort](**common)
    if spec.kind == "string":
        return _HOOKED[ChannelString](max_length=1, **common)
    if spec.kind == "longstring":
        # A CHAR waveform (not a 40-character DBR_STRING): long paths survive.
        return HookedLongString(max_length=spec.length, **common)
    if spec.kind == "array":
        cls, _ = _ARRAY_CLASSES[spec.ftvl]
        return _HOOKED[cls](max_length=spec.length, **common)
    if spec.kind == "image":
        cls, _ = IMAGE_FTVL[image_ftvl]
        return _HOOKED[cls](max_length=spec.length or IMAGE_NELM,
                            max_subscription_backlog=IMAGE_BACKLOG, **common)
    raise ValueError(f"{spec.suffix}: unknown kind {spec.kind!r}")
