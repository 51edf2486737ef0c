"""The PV surface as data: every record of the real simDetector IOC, from
``adcore_simdetector_pvs.tsv`` (expanded from ADCore's and ADSimDetector's
database templates), turned into :class:`PVSpec` rows.

Three files, all shipped in this package (nothing is read from outside it):
  adcore_simdetector_pvs.tsv  record name, record type, template, asyn parameter and
                              the template's fields (VAL, enum strings, NELM/FTVL,
                              PREC, EGU, links of soft records), prefix "ad:"
  common_plugins.tsv          the driver and plugins: record prefix, asyn port, type
  boot_values.tsv             values the driver/st.cmd gives at boot where they
                              differ from the template's VAL

The CA type of a record follows from its record type (the type of its VAL field):
ai/ao/calc/calcout/dfanout DOUBLE; bi/bo/busy/mbbi/mbbo ENUM; longin/longout/
fanout/seq/sseq LONG; stringin/stringout/asyn STRING; waveform/subArray their FTVL.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pickle
import re
import tempfile
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

TABLE = "adcore_simdetector_pvs.tsv"
PLUGINS = "common_plugins.tsv"
BOOT = "boot_values.tsv"
#: the IOC prefix the table's names and links carry
TABLE_PREFIX = "ad:"
#: ADCoreVersion_RBV/DriverVersion_RBV of the plugins
ADCORE_VERSION = "3.12.1"

DOUBLE_RECORDS = frozenset({"ai", "ao", "calc", "calcout", "dfanout"})
BINARY_RECORDS = frozenset({"bi", "bo", "busy"})
MBB_RECORDS = frozenset({"mbbi", "mbbo"})
LONG_RECORDS = frozenset({"longin", "longout", "fanout", "seq", "sseq"})
STRING_RECORDS = frozenset({"stringin", "stringout", "asyn"})
#: records whose value only the IOC sets: a client's put is refused
INPUT_RECORDS = frozenset({"ai", "bi", "longin", "mbbi", "stringin", "calc", "subArray"})
#: mbbi/mbbo state-string fields, in state order
MBB_STRING_FIELDS = ("ZRST", "ONST", "TWST", "THST", "FRST", "FVST", "SXST", "SVST",
                     "EIST", "NIST", "TEST", "ELST", "TVST", "TTST", "FTST", "FFST")


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
    units: str = ""
    asyn_param: str = ""
    #: the template's fields (links with the IOC prefix removed)
    fields: dict = dataclasses.field(default_factory=dict, compare=False, hash=False)
    read_only: bool = False

    @property
    def is_readback(self) -> bool:
        return self.suffix.endswith("_RBV")

    @property
    def plugin(self) -> str:
        """The record's top-level group, e.g. 'cam1', 'HDF1', 'Stats1'."""
        return self.suffix.split(":", 1)[0]

    @property
    def field(self) -> str:
        """The record name within its group, e.g. 'AcquireTime'."""
        return self.suffix.split(":", 1)[1]


def binary_strings(fields: dict) -> tuple:
    """State strings a bi/bo reports: both if ONAM is set, ZNAM alone, or none
    (as boRecord's get_enum_strs counts them)."""
    znam, onam = fields.get("ZNAM", ""), fields.get("ONAM", "")
    if onam:
        return (znam, onam)
    return (znam,) if znam else ()


def mbb_strings(fields: dict) -> tuple:
    """State strings an mbbi/mbbo reports: up to the last one that is set."""
    strings = [fields.get(f, "") for f in MBB_STRING_FIELDS]
    while strings and not strings[-1]:
        strings.pop()
    return tuple(strings)


def _int(text, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def parse_row(suffix: str, record: str, asyn_param: str, fields: dict,
              initial: str | None = None) -> PVSpec:
    """Turn one table row into a :class:`PVSpec` (*initial* overrides the VAL)."""
    value = fields.get("VAL", "") if initial is None else initial
    common = dict(initial=value, asyn_param=asyn_param, fields=fields,
                  units=fields.get("EGU", ""))
    scan = fields.get("SCAN", "")
    read_only = record in INPUT_RECORDS or (record == "waveform" and scan == "I/O Intr")
    common["read_only"] = read_only
    if record in DOUBLE_RECORDS:
        return PVSpec(suffix, record, "double", precision=_int(fields.get("PREC"), 0), **common)
    if record in BINARY_RECORDS:
        return PVSpec(suffix, record, "enum", enum_strings=binary_strings(fields), **common)
    if record in MBB_RECORDS:
        return PVSpec(suffix, record, "enum", enum_strings=mbb_strings(fields), **common)
    if record in LONG_RECORDS:
        return PVSpec(suffix, record, "long", **common)
    if record in STRING_RECORDS:
        return PVSpec(suffix, record, "string", **common)
    if record in ("waveform", "subArray"):
        ftvl = fields.get("FTVL", "")
        nelm = _int(fields.get("NELM"), 1)
        if asyn_param == "STD_ARRAY_DATA":
            return PVSpec(suffix, record, "image", length=nelm, ftvl=ftvl, **common)
        if ftvl == "CHAR":
            return PVSpec(suffix, record, "longstring", length=nelm, ftvl=ftvl, **common)
        return PVSpec(suffix, record, "array", length=nelm, ftvl=ftvl, **common)
    raise ValueError(f"{suffix}: no CA type known for record type {record!r}")


def _rows(name: str):
    """Header-keyed rows of a shipped TSV file (comment lines skipped)."""
    text = resources.files(__package__).joinpath(name).read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def _strip_prefix(text: str) -> str:
    return text.replace(TABLE_PREFIX, "") if isinstance(text, str) else text


@functools.lru_cache(maxsize=1)
def plugin_table() -> tuple:
    """(record prefix, port, type) of the driver and of every plugin."""
    return tuple((r["record_prefix"], r["port"], r["type"]) for r in _rows(PLUGINS))


def plugin_prefix(suffix: str) -> str:
    """The driver's or plugin's record prefix *suffix* belongs to (longest match),
    e.g. 'Stats1:TS:' for 'Stats1:TS:TSAcquire'."""
    best = ""
    for prefix, _, _ in plugin_table():
        if suffix.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return best


def boot_values() -> dict[str, str]:
    """Values the booted IOC shows where they differ from the templates' VAL.

    Plugin routing (each plugin's NDArrayPort) is not overridden here: it boots at
    the VAL the table gives, which is the NDARRAY_PORT macro ADCore's
    EXAMPLE_commonPlugins.cmd passes to that plugin's dbLoadRecords (SIM1 for every
    plugin, STATSn for Statsn:TS:, ATTR1 for Attr1:TS:). That is what the real IOC
    serves after iocInit, including for Stats2..Stats5: commonPlugins configures
    them with ``NDStatsConfigure("STATS2", ..., "ROI1", ...)`` (ROI1..ROI4), but
    loads their records with ``NDARRAY_PORT=$(PORT)``, and NDPluginBase.template's
    NDArrayPort record (PINI YES, no ``asyn:INITIAL_READBACK``) writes that VAL to
    the plugin at iocInit, which reconnects it to SIM1. So Stats2..5 read the driver
    at boot, as on a real simDetector IOC without autosave; putting
    ``Stats2:NDArrayPort`` = ``ROI1`` chains them to the ROI (the chain routes by
    port name, :mod:`.chain`). Checked against ADCore ee039d24 (R3-14-185), the
    version the table was expanded from.
    """
    values = {r["pv"]: r["value"] for r in _rows(BOOT)}
    for prefix, port, kind in plugin_table():
        values[prefix + "PortName_RBV"] = port
        if prefix != "cam1:":
            values[prefix + "PluginType_RBV"] = kind
            values.setdefault(prefix + "QueueSize", "20")
            values.setdefault(prefix + "QueueFree", "20")
            values[prefix + "ADCoreVersion_RBV"] = ADCORE_VERSION
            values[prefix + "DriverVersion_RBV"] = ADCORE_VERSION
    values["cam1:ADCoreVersion_RBV"] = ADCORE_VERSION
    return values


#: where the parsed table is kept between starts (see :func:`_load_specs`)
CACHE_DIR_ENV = "SIMBEAMLINE_CACHE_DIR"


def cache_dir() -> Path:
    """$SIMBEAMLINE_CACHE_DIR, else $XDG_CACHE_HOME/simbeamline, else ~/.cache/simbeamline."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "simbeamline"


def _table_key() -> str:
    """A digest of everything the specs are made from: the three shipped tables and
    this module's own source (a change to the parsing invalidates the cache too)."""
    digest = hashlib.sha256()
    for name in (TABLE, PLUGINS, BOOT):
        digest.update(resources.files(__package__).joinpath(name).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:24]


@functools.lru_cache(maxsize=1)
def _load_specs() -> tuple:
    """The specs, parsed once per table: the IOC starts from a pickle of them in
    :func:`cache_dir` (27 ms) instead of parsing 7,395 rows of JSON fields (80-100 ms).
    A cache that is missing, unreadable or damaged is parsed again and rewritten;
    one that cannot be written is simply not kept."""
    path = cache_dir() / f"adsim_table-{_table_key()}.pickle"
    try:
        specs = pickle.loads(path.read_bytes())
        if isinstance(specs, tuple) and all(isinstance(s, PVSpec) for s in specs):
            return specs
        log.info("%s holds no table; parsing the table again", path)
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 -- a damaged cache costs one parse, never the start
        log.info("cannot read the cached table %s (%s); parsing the table again", path, exc)
    specs = _parse_specs()
    try:
        _keep(path, pickle.dumps(specs, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError as exc:
        log.info("cannot keep the parsed table in %s: %s", path.parent, exc)
    return specs


def _keep(path: Path, data: bytes) -> None:
    """Write *path* whole or not at all (IOCs of a class start at once), then remove
    the caches of earlier tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    for old in path.parent.glob("adsim_table-*.pickle"):
        if old != path:
            old.unlink(missing_ok=True)


def _parse_specs() -> tuple:
    boot = boot_values()
    specs = []
    for row in _rows(TABLE):
        suffix = row["pv"][len(TABLE_PREFIX):] if row["pv"].startswith(TABLE_PREFIX) else row["pv"]
        fields = {k: _strip_prefix(v) for k, v in json.loads(row["fields"]).items()}
        specs.append(parse_row(suffix, row["record_type"], row["asyn_param"], fields,
                               boot.get(suffix)))
    return tuple(with_readback_initials(specs))


#: fields of records that clients read as PVs of their own (ophyd's
#: ``cam.data_type_disabled`` reads DataType_RBV.DISA), served beside the records
EXTRA_FIELDS = (PVSpec("cam1:DataType_RBV.DISA", "mbbi", "short", initial="0", read_only=True),)


def load_table() -> list[PVSpec]:
    """The PV specifications of every record, in the table's order, then the
    :data:`EXTRA_FIELDS`."""
    return list(_load_specs()) + list(EXTRA_FIELDS)


def with_readback_initials(specs: list[PVSpec]) -> list[PVSpec]:
    """A readback with no initial value of its own shows its setpoint's, as an
    asyn readback does once the output record has processed at boot."""
    initial = {s.suffix: s.initial for s in specs}
    return [dataclasses.replace(s, initial=initial.get(s.suffix[:-4], ""))
            if s.is_readback and not s.initial and initial.get(s.suffix[:-4]) else s
            for s in specs]


_INDEX = re.compile(r"Dim(\d)SA")


def subarray_index(suffix: str) -> int:
    """The element a DimNSA subArray record takes of its Dimensions array (its INDX)."""
    m = _INDEX.search(suffix)
    return int(m.group(1)) if m else 0
