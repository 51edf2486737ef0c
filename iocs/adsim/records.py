"""The ADSim IOC's records, each made a caproto channel the first time it is asked for.

The real simDetector IOC has 7,395 records, and a client uses a few hundred of them.
Building every channel up front took 75 ms of the IOC's start and 19 MB for channels
nobody reads. Here a record becomes a channel when a client searches for it or the
IOC posts to it; until then it is only its :class:`~.table.PVSpec`, and reading it
(the soft records' boot computation reads two thousand) gives the value its channel
would start with. ``in``, ``len`` and iteration see every record, built or not, so to
a client and to the IOC's code the database is complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping

from caproto import ChannelData

from .table import PVSpec


class Records(Mapping):
    """Record name (without the IOC prefix) -> its channel, built on first use."""

    def __init__(self, specs: Iterable[PVSpec], build: Callable[[PVSpec], ChannelData],
                 initial: Callable[[PVSpec], object]):
        self.specs = {spec.suffix: spec for spec in specs}
        self._build = build
        self._initial = initial
        self._built: dict[str, ChannelData] = {}

    def __getitem__(self, suffix: str) -> ChannelData:
        channel = self._built.get(suffix)
        if channel is None:     # setdefault: a record built in two threads at once is one
            channel = self._built.setdefault(suffix, self._build(self.specs[suffix]))
        return channel

    def __contains__(self, suffix) -> bool:
        return suffix in self.specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def built(self) -> int:
        """How many records have been made channels so far."""
        return len(self._built)

    def value(self, suffix: str):
        """The record's value, without making it a channel: a record nobody has used
        holds the value its channel would start with (*initial* of its spec)."""
        channel = self._built.get(suffix)
        return channel.value if channel is not None else self._initial(self.specs[suffix])

    def enum_strings(self, suffix: str) -> tuple:
        """The record's state strings (empty for a record that is not an enum)."""
        channel = self._built.get(suffix)
        if channel is not None:
            return tuple(getattr(channel, "enum_strings", None) or ())
        spec = self.specs[suffix]
        return spec.enum_strings if spec.kind == "enum" else ()


class PrefixedRecords(MutableMapping):
    """caproto's ``pvdb`` over :class:`Records`: full PV names -> the same channels.

    caproto's server also stores ``record.FIELD`` channels it resolved in its pvdb;
    those are kept beside the records. A record's own name cannot be rebound.
    """

    #: None of these channels has caproto's server_startup/server_scan/server_shutdown
    #: hooks (plain ChannelData has none); the server looks for them only where a
    #: database may have them, so it need not build every record to find none
    #: (see simbeamline_iocs.server).
    has_hooks = False

    def __init__(self, prefix: str, records: Records):
        self.prefix = prefix
        self.records = records
        self._fields: dict[str, ChannelData] = {}

    def _suffix(self, name: str) -> str | None:
        if isinstance(name, str) and name.startswith(self.prefix):
            suffix = name[len(self.prefix):]
            if suffix in self.records:
                return suffix
        return None

    def __getitem__(self, name: str) -> ChannelData:
        suffix = self._suffix(name)
        return self.records[suffix] if suffix is not None else self._fields[name]

    def __setitem__(self, name: str, channel: ChannelData) -> None:
        if self._suffix(name) is not None:
            raise TypeError(f"{name} is a record of this IOC; its channel cannot be replaced")
        self._fields[name] = channel

    def __delitem__(self, name: str) -> None:
        del self._fields[name]

    def __contains__(self, name) -> bool:
        return self._suffix(name) is not None or name in self._fields

    def __iter__(self) -> Iterator[str]:
        yield from (self.prefix + suffix for suffix in self.records)
        yield from self._fields

    def __len__(self) -> int:
        return len(self.records) + len(self._fields)
