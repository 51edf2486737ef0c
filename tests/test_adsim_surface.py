"""The live ADSimDetector IOC against the real simDetector IOC's record table
(iocs/adsim/adcore_simdetector_pvs.tsv, in the repository): every record name,
its CA type (from its record type, worked out here independently of the IOC's
code) and its enum strings, over Channel Access."""

from __future__ import annotations

import json
import time
from pathlib import Path

import epics
import pytest

from adsim_support import AD, TIMEOUT

pytestmark = pytest.mark.timeout(600)

TABLE = Path(__file__).resolve().parents[1] / "iocs" / "adsim" / "adcore_simdetector_pvs.tsv"
TABLE_PREFIX = "ad:"

#: the CA type of a record's VAL field, as pyepics names it (waveforms: their FTVL)
CA_TYPE = {**dict.fromkeys(("ai", "ao", "calc", "calcout", "dfanout"), "double"),
           **dict.fromkeys(("bi", "bo", "busy", "mbbi", "mbbo"), "enum"),
           **dict.fromkeys(("longin", "longout", "fanout", "seq", "sseq"), "long"),
           **dict.fromkeys(("stringin", "stringout", "asyn"), "string")}
FTVL_TYPE = {"CHAR": "char", "UCHAR": "char", "LONG": "long", "DOUBLE": "double",
             "SHORT": "short", "FLOAT": "float"}
MBB = ("ZRST", "ONST", "TWST", "THST", "FRST", "FVST", "SXST", "SVST",
       "EIST", "NIST", "TEST", "ELST", "TVST", "TTST", "FTST", "FFST")


def reference_rows() -> list[tuple[str, str, dict]]:
    rows = []
    with open(TABLE) as f:
        lines = [line.rstrip("\n") for line in f if not line.startswith("#")]
    for line in lines[1:]:
        name, record, _template, _param, fields = line.split("\t")
        rows.append((name[len(TABLE_PREFIX):], record, json.loads(fields)))
    return rows


def expected_type(record: str, fields: dict) -> str:
    if record in ("waveform", "subArray"):
        return FTVL_TYPE[fields["FTVL"]]
    return CA_TYPE[record]


def expected_enum_strings(record: str, fields: dict) -> tuple:
    if record in ("bi", "bo", "busy"):
        znam, onam = fields.get("ZNAM", ""), fields.get("ONAM", "")
        return (znam, onam) if onam else ((znam,) if znam else ())
    strings = [fields.get(f, "") for f in MBB]
    while strings and not strings[-1]:
        strings.pop()
    return tuple(strings)


def test_the_table_is_the_real_iocs_7395_records():
    rows = reference_rows()
    assert len(rows) == len({r[0] for r in rows}) == 7395


def test_every_record_of_the_real_ioc_is_served_with_its_type_and_enum_strings(beamline):
    ad = AD(beamline.ad_prefix)
    rows = reference_rows()
    pvs = {suffix: epics.get_pv(ad.name(suffix), form="native", auto_monitor=False)
           for suffix, _, _ in rows}
    deadline = time.monotonic() + 4 * TIMEOUT     # searches run in parallel; one deadline
    missing = [s for s, pv in pvs.items()
               if not pv.wait_for_connection(max(deadline - time.monotonic(), 0.1))]
    wrong_type, wrong_enums, good = {}, {}, 0
    for suffix, record, fields in rows:
        pv = pvs[suffix]
        if suffix in missing:
            continue
        ok = True
        want = expected_type(record, fields)
        if pv.type.split("_")[-1] != want:
            wrong_type[suffix] = (pv.type, want)
            ok = False
        elif want == "enum":
            strings = tuple(epics.ca.get_enum_strings(pv.chid) or ())
            if strings != expected_enum_strings(record, fields):
                wrong_enums[suffix] = (strings, expected_enum_strings(record, fields))
                ok = False
        good += ok
    print(f"\n{good} of {len(rows)} records of the real simDetector IOC served with "
          "their name, CA type and enum strings")
    assert missing == []
    assert wrong_type == {}
    assert wrong_enums == {}
    assert good == len(rows) == 7395


def test_readbacks_refuse_puts_and_keep_no_alarm(beamline):
    """An input record (cam1:Acquire_RBV, a bi) refuses a client's put; the refused
    put leaves the value and no alarm behind. A refused put on a setpoint neither."""
    from caproto.sync.client import read

    ad = AD(beamline.ad_prefix)
    before = ad.get("cam1:Acquire_RBV")
    assert ad.put_refused("cam1:Acquire_RBV", 1)
    assert ad.get("cam1:Acquire_RBV") == before
    assert ad.put_refused("cam1:ImageMode", 9)
    for suffix in ("cam1:Acquire_RBV", "cam1:ImageMode"):
        response = read(ad.name(suffix), data_type="time", timeout=TIMEOUT, repeater=False)
        assert (response.metadata.status, response.metadata.severity) == (0, 0), suffix


def test_soft_records_follow_what_they_link(beamline):
    """ArraySizeN_RBV from Dimensions_RBV (through DimNSA_RBV), QueueUse =
    QueueSize - QueueFree, MaxArrayRate_RBV = 1/MinCallbackTime."""
    ad = AD(beamline.ad_prefix)
    ad.camera(size=(320, 200))
    ad.plugin("Stats1")
    ad.acquire()
    assert list(ad.get("Stats1:Dimensions_RBV")[:2]) == [320, 200]
    assert (ad.get("Stats1:ArraySize0_RBV"), ad.get("Stats1:ArraySize1_RBV")) == (320, 200)
    assert (ad.get("cam1:ArraySize0_RBV"), ad.get("cam1:ArraySize1_RBV")) == (320, 200)
    ad.put("Stats1:QueueSize", 30)
    assert ad.get("Stats1:QueueUse") == ad.get("Stats1:QueueSize") - ad.get("Stats1:QueueFree")
    ad.put("Stats1:MinCallbackTime", 0.5)
    assert ad.get("Stats1:MaxArrayRate_RBV") == pytest.approx(2.0)
    ad.put("Stats1:MinCallbackTime", 0.0)
    assert ad.get("Stats1:MaxArrayRate_RBV") == 0.0
    ad.put("Stats1:QueueSize", 20)
    ad.plugin("Stats1", enable=False)
    ad.camera()
