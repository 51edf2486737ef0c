"""NDPluginProcess: background subtraction, flat field, offset/scale, clipping, the
recursive filter, and conversion to DataTypeOut.

The order of operations is NDPluginProcess.cpp's: each pixel (as a double) has the
saved background subtracted, is flat-field normalised (``value * ScaleFlatField /
flat``; ``ScaleFlatField`` where the flat field is 0), offset and scaled
(``(value + Offset) * Scale``), clipped high (above HighClipThresh it becomes
HighClipValue) then low (below LowClipThresh it becomes LowClipValue); the filter
then combines the frame with its filter array; the result is converted (a C cast)
to DataTypeOut (Automatic: the input's type). With nothing enabled the input is only
converted.

:func:`process_frame`, :class:`RecursiveFilter` and :func:`convert` are the plain
numpy parts; :class:`ProcessPlugin` holds the saved background, flat field and filter
state, reads its records and passes the result to the plugins reading its port
(PROC1).

SaveBackground / SaveFlatField store (as doubles) the last array the plugin passed
on, as the C plugin stores its ``pArrays[0]``: to save the raw frame, acquire one
with the processing disabled first. ValidBackground_RBV / ValidFlatField_RBV say,
at each frame, whether a saved array of that frame's size exists.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from caproto import SkipWrite

from .frames import NUMPY_TYPES
from .plugins import NDArray, Plugin

#: FilterType's coefficient sets (OC1..OC4, FC1..FC4, RC1, RC2), written to those
#: records when FilterType is put, as NDProcess.template's sequence records do (the
#: equations in ADCore's NDPluginProcess documentation). "1/NumFilter" is the
#: reciprocal of NumFilter (the template's NumFilterRecip): Average adds each frame
#: divided by NumFilter, so after NumFilter frames its output is their mean.
FILTER_TYPES = {
    "RecursiveAve": dict(OC1=1, OC2=-1, OC3=0, OC4=1, FC1=1, FC2=-1, FC3=0, FC4=1, RC1=0, RC2=1),
    "Average": dict(OC1=1, OC2=0, OC3="1/NumFilter", OC4=0, FC1=1, FC2=0, FC3="1/NumFilter",
                    FC4=0, RC1=0, RC2=0),
    "Sum": dict(OC1=1, OC2=0, OC3=1, OC4=0, FC1=1, FC2=0, FC3=1, FC4=0, RC1=0, RC2=0),
    "Difference": dict(OC1=-1, OC2=0, OC3=1, OC4=0, FC1=0, FC2=0, FC3=1, FC4=0, RC1=0, RC2=1),
    "RecursiveAveDiff": dict(OC1=-1, OC2=0, OC3=1, OC4=0, FC1=1, FC2=-1, FC3=0, FC4=1,
                             RC1=0, RC2=1),
    "CopyToFilter": dict(OC1=0, OC2=0, OC3=1, OC4=0, FC1=0, FC2=0, FC3=1, FC4=0, RC1=0, RC2=1),
}


def filter_coefficients(kind: str, num_filter: int) -> dict[str, float]:
    """The coefficient records FilterType *kind* sets, for this NumFilter."""
    if kind not in FILTER_TYPES:
        raise ValueError(f"unknown FilterType {kind!r}: one of {', '.join(FILTER_TYPES)}")
    recip = 1.0 / max(int(num_filter), 1)
    return {field: recip if value == "1/NumFilter" else float(value)
            for field, value in FILTER_TYPES[kind].items()}


#: The filter's coefficient records (Proc1:<name>), read at each filtered frame.
FILTER_FIELDS = ("OOffset", "OScale", "OC1", "OC2", "OC3", "OC4", "FOffset", "FScale",
                 "FC1", "FC2", "FC3", "FC4", "ROffset", "RC1", "RC2")


def process_frame(data: np.ndarray, *, background: np.ndarray | None = None,
                  flat_field: np.ndarray | None = None, scale_flat_field: float = 255.0,
                  offset_scale: tuple[float, float] | None = None,
                  high_clip: tuple[float, float] | None = None,
                  low_clip: tuple[float, float] | None = None) -> np.ndarray:
    """The per-pixel steps before the filter, on *data* as float64 (a new array).
    *offset_scale* is (Offset, Scale); each clip is (threshold, value); None skips."""
    value = np.array(data, dtype=np.float64)
    if background is not None:
        value -= background
    if flat_field is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(flat_field != 0, value * (scale_flat_field / flat_field),
                             scale_flat_field)
    if offset_scale is not None:
        offset, scale = offset_scale
        value = (value + offset) * scale
    if high_clip is not None:
        value = np.where(value > high_clip[0], high_clip[1], value)
    if low_clip is not None:
        value = np.where(value < low_clip[0], low_clip[1], value)
    return value


@dataclasses.dataclass
class RecursiveFilter:
    """NDPluginProcess's filter: one float64 filter array and the count of frames
    filtered since the last reset (NumFiltered_RBV).

    At a reset, ``filter = ROffset + RC1*filter + RC2*data``. Then, with n the count
    (incremented up to NumFilter), ``O1 = OScale*(OC1 + OC2/n)``, ``O2 = OScale*(OC3 +
    OC4/n)``, ``F1 = FScale*(FC1 + FC2/n)``, ``F2 = FScale*(FC3 + FC4/n)``; the output is
    ``OOffset + O1*filter + O2*data`` and the filter becomes ``FOffset + F1*filter +
    F2*data`` (both from the filter before this frame)."""

    filter: np.ndarray | None = None
    num_filtered: int = 0

    def apply(self, data: np.ndarray, coefficients: dict, num_filter: int, *,
              reset: bool = False, auto_reset: bool = False) -> np.ndarray:
        c = {name: float(coefficients.get(name, 0.0)) for name in FILTER_FIELDS}
        num_filter = max(int(num_filter), 1)
        if self.filter is not None and self.filter.shape != data.shape:
            self.filter = None
        if self.filter is None:
            self.filter = data.copy()
            reset = True
        if self.num_filtered >= num_filter and auto_reset:
            reset = True
        if reset:
            self.filter = c["ROffset"] + c["RC1"] * self.filter + c["RC2"] * data
            self.num_filtered = 0
        if self.num_filtered < num_filter:
            self.num_filtered += 1
        n = self.num_filtered
        o1 = c["OScale"] * (c["OC1"] + c["OC2"] / n)
        o2 = c["OScale"] * (c["OC3"] + c["OC4"] / n)
        f1 = c["FScale"] * (c["FC1"] + c["FC2"] / n)
        f2 = c["FScale"] * (c["FC3"] + c["FC4"] / n)
        out = c["OOffset"] + o1 * self.filter + o2 * data
        self.filter = c["FOffset"] + f1 * self.filter + f2 * data
        return out


def convert(data: np.ndarray, data_type: str | None) -> np.ndarray:
    """*data* converted to the NDDataType *data_type* (None: unchanged) as
    NDArrayPool::convert does, a C cast (integers truncate toward zero)."""
    if data_type is None or data.dtype == NUMPY_TYPES[data_type]:
        return np.ascontiguousarray(data)
    dtype = NUMPY_TYPES[data_type]
    if dtype.kind in "iu" and data.dtype.kind == "f":
        data = np.trunc(np.nan_to_num(data))
        if dtype.kind == "u":          # negative doubles to unsigned: via the signed type
            data = data.astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(data.astype(dtype))


class ProcessPlugin(Plugin):
    """Proc1: the processing steps above on each frame, with its saved arrays."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.background: np.ndarray | None = None
        self.flat_field: np.ndarray | None = None
        self.filter = RecursiveFilter()
        self.last: np.ndarray | None = None       # the last array passed on (pArrays[0])
        self.reset_requested = False
        self.auto_requested = False
        self.ioc.register(self.pv("SaveBackground"), self._saver("background", "Background"))
        self.ioc.register(self.pv("SaveFlatField"), self._saver("flat_field", "FlatField"))
        self.ioc.register(self.pv("ResetFilter"), self._put_reset)
        self.ioc.register(self.pv("AutoOffsetScale"), self._put_auto)
        self.ioc.register(self.pv("FilterType"), self._put_filter_type)
        self.ioc.register(self.pv("NumFilter"), self._put_num_filter)

    def _saver(self, attribute: str, what: str):
        async def handler(value):
            if value not in ("Yes", 1):
                return value
            saved = None if self.last is None else self.last.astype(np.float64)
            setattr(self, attribute, saved)
            await self.ioc.channels[self.pv(f"Save{what}")].write(value, verify_value=False)
            await self.post({f"Save{what}_RBV": "No",
                             f"Valid{what}_RBV": "Invalid" if saved is None else "Valid"})
            return SkipWrite
        return handler

    async def _put_reset(self, value):
        self.reset_requested = value in ("Yes", 1)
        return value

    async def _put_auto(self, value):
        self.auto_requested = value in ("Calculating", 1)
        return value

    async def _put_filter_type(self, value):
        if not isinstance(value, str):          # a client's enum index
            value = self.ioc.channels[self.pv("FilterType")].enum_strings[int(value)]
        await self._write_coefficients(filter_coefficients(value, int(self.get("NumFilter"))))
        return value

    async def _put_num_filter(self, value):
        """NumFilter: in the template its reciprocal's record processes FilterType
        again, so a type that uses 1/NumFilter (Average) follows the new value."""
        value = max(int(value), 1)
        kind = self.get("FilterType")
        if "1/NumFilter" in FILTER_TYPES.get(kind, {}).values():
            await self._write_coefficients(filter_coefficients(kind, value))
        return value

    async def _write_coefficients(self, coefficients: dict) -> None:
        for field, number in coefficients.items():
            await self.ioc.channels[self.pv(field)].write(number, verify_value=False)
            await self.post({f"{field}_RBV": number})

    def _enabled(self, field: str) -> bool:
        return self.get(field) == "Enable"

    def _float(self, field: str) -> float:
        return float(self.get(field))

    async def handle(self, array: NDArray):
        data = array.data
        data_type = self.get("DataTypeOut")
        out_type = array.data_type if data_type == "Automatic" else data_type
        valid_bg = self.background is not None and self.background.shape == data.shape
        valid_ff = self.flat_field is not None and self.flat_field.shape == data.shape
        use_bg = valid_bg and self._enabled("EnableBackground")
        use_ff = valid_ff and self._enabled("EnableFlatField")
        offset_scale = ((self._float("Offset"), self._float("Scale"))
                        if self._enabled("EnableOffsetScale") else None)
        high = ((self._float("HighClipThresh"), self._float("HighClipValue"))
                if self._enabled("EnableHighClip") else None)
        low = ((self._float("LowClipThresh"), self._float("LowClipValue"))
               if self._enabled("EnableLowClip") else None)
        use_filter = self._enabled("EnableFilter")
        auto = self.auto_requested
        reset, self.reset_requested = self.reset_requested, False
        values = {"ValidBackground_RBV": "Valid" if valid_bg else "Invalid",
                  "ValidFlatField_RBV": "Valid" if valid_ff else "Invalid"}
        out = None
        if not (use_bg or use_ff or offset_scale or high or low or use_filter or auto):
            out = convert(data, out_type)
        else:
            value = process_frame(
                data, background=self.background if use_bg else None,
                flat_field=self.flat_field if use_ff else None,
                scale_flat_field=self._float("ScaleFlatField"), offset_scale=offset_scale,
                high_clip=high, low_clip=low)
            send = True
            if use_filter:
                num_filter = int(self.get("NumFilter"))
                value = self.filter.apply(
                    value, {f: self.get(f) for f in FILTER_FIELDS}, num_filter, reset=reset,
                    auto_reset=self.get("AutoResetFilter") == "Yes")
                send = not (self.filter.num_filtered != num_filter
                            and self.get("FilterCallbacks") == "Array N only")
            if send:
                out = convert(value, out_type)
            if auto and out is not None:
                await self._auto_offset_scale(data, out)
        if reset:
            values["ResetFilter_RBV"] = "No"
        values["NumFiltered_RBV"] = self.filter.num_filtered
        await self.post(values)
        if out is None:
            return False
        self.last = out
        return NDArray(out, array.unique_id, array.timestamp, array.color_mode)

    async def _auto_offset_scale(self, data: np.ndarray, out: np.ndarray) -> None:
        """AutoOffsetScale: from this frame's input range, the Offset and Scale that
        map it onto the output type's full range (2**bits - 1), with both clips on at
        0 and that maximum; then AutoOffsetScale goes back to Done."""
        max_scale = 2.0 ** (out.dtype.itemsize * 8) - 1
        low, high = float(data.min()), float(data.max())
        scale = max_scale / (high - low) if high != low else 1.0
        settings = {"Scale": scale, "Offset": -low, "LowClipThresh": 0.0, "LowClipValue": 0.0,
                    "HighClipThresh": max_scale, "HighClipValue": max_scale,
                    "EnableOffsetScale": "Enable", "EnableLowClip": "Enable",
                    "EnableHighClip": "Enable", "AutoOffsetScale": "Done"}
        for field, value in settings.items():
            await self.ioc.channels[self.pv(field)].write(value, verify_value=False)
        await self.post({f"{f}_RBV": v for f, v in settings.items() if f != "AutoOffsetScale"})
        self.auto_requested = False

