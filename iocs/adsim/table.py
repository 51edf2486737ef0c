"""The PV surface as data: parse ``pvs.tsv`` into :class:`PVSpec` rows."""

from __future__ import annotations

import ast
import dataclasses
import re
from importlib import resources

TABLE = "pvs.tsv"


@dataclasses.dataclass(frozen=True)
class PVSpec:
    """One record of the surface (its name without the IOC prefix)."""

    suffix: str          #: e.g. "cam1:AcquireTime"
    record: str          #: EPICS record type, e.g. "ao", "mbbi", "waveform"
    kind: str            #: "enum", "double", "long", "short", "string", "longstring", "array", "image"
    enum_strings: tuple = ()
    precision: int = 0
    length: int = 1      #: NELM of waveforms / long strings
    ftvl: str = ""       #: element type of numeric waveforms
    initial: str = ""

    @property
    def is_readback(self) -> bool:
        return self.suffix.endswith("_RBV")

    @property
    def plugin(self) -> str:
        """The record's group: 'cam1', 'HDF1', 'image1' or 'Stats1'."""
        return self.suffix.split(":", 1)[0]

    @property
    def field(self) -> str:
        """The record name within its group, e.g. 'AcquireTime'."""
        return self.suffix.split(":", 1)[1]


def _nelm(detail: str, default: int = 1) -> int:
    m = re.search(r"NELM=(?:\$\(\w+=)?(\d+)", detail)
    return int(m.group(1)) if m else default


def parse_row(suffix: str, record: str, detail: str, initial: str) -> PVSpec:
    """Turn one table row into a :class:`PVSpec`."""
    if detail.startswith("DBR_ENUM"):
        strings = tuple(ast.literal_eval(detail[len("DBR_ENUM"):].strip()))
        return PVSpec(suffix, record, "enum", enum_strings=strings, initial=initial)
    if detail.startswith("DBR_DOUBLE"):
        m = re.search(r"PREC=(\d+)", detail)
        return PVSpec(suffix, record, "double", precision=int(m.group(1)) if m else 0,
                      initial=initial)
    if detail.startswith("DBR_STRING"):
        return PVSpec(suffix, record, "string", initial=initial)
    if detail == "DBR_LONG":
        return PVSpec(suffix, record, "long", initial=initial)
    if "DBR_SHORT" in detail:
        return PVSpec(suffix, record, "short", initial=initial)
    if "long string" in detail:
        return PVSpec(suffix, record, "longstring", length=_nelm(detail, 256), initial=initial)
    if detail.startswith("subArray"):
        return PVSpec(suffix, record, "array", length=1, ftvl="LONG", initial=initial)
    if "FTVL=$(FTVL)" in detail:
        return PVSpec(suffix, record, "image", initial=initial)
    m = re.search(r"FTVL=(\w+)", detail)
    if m:
        return PVSpec(suffix, record, "array", length=_nelm(detail), ftvl=m.group(1),
                      initial=initial)
    raise ValueError(f"{suffix}: cannot interpret record description {detail!r}")


def load_table(text: str | None = None) -> list[PVSpec]:
    """The PV specifications of the shipped table (or of *text*)."""
    if text is None:
        text = resources.files(__package__).joinpath(TABLE).read_text()
    specs = []
    header_seen = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            continue
        suffix, record, detail, initial = (line.split("\t") + [""] * 4)[:4]
        specs.append(parse_row(suffix, record, detail, initial))
    return with_readback_initials(specs)


def with_readback_initials(specs: list[PVSpec]) -> list[PVSpec]:
    """A readback with no initial value of its own shows its setpoint's, as an
    asyn readback does once the output record has processed at boot."""
    initial = {s.suffix: s.initial for s in specs}
    return [dataclasses.replace(s, initial=initial.get(s.suffix[:-4], ""))
            if s.is_readback and not s.initial else s for s in specs]
