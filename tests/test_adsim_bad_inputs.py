"""Inputs that used to wedge the ADSimDetector IOC or let it write where no one
asked, as one table, against a real IOC process of the test's own (its own path
map): each bad input is refused or clamped as stated, the refused put leaves no
alarm behind, the IOC still answers, and the next acquisition writes its file
where it should. Also the empty long strings, C-formatted FileTemplates and
FilePath '/' of issue 8."""

from __future__ import annotations

import math
import os

import h5py
import pytest
from caproto.sync.client import read

from adsim_extra import ExtraADSimIOC
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

IOC_ROOT = "/simbeamline-bad-inputs"
GOOD_DIR = f"{IOC_ROOT}/good/"

#: (record, value put, what happens: "refused", or ("reads", value after the put))
CASES = [
    ("cam1:AcquireTime", math.nan, "refused"),
    ("cam1:AcquireTime", math.inf, "refused"),
    ("cam1:AcquirePeriod", math.inf, "refused"),
    ("cam1:AcquirePeriod", -math.inf, "refused"),
    ("cam1:AcquireTime", -1.0, ("reads", 0.0)),            # clamped, as before
    ("cam1:Acquire_RBV", 1, "refused"),                    # a bi: read-only
    ("cam1:ArrayCounter_RBV", 5, "refused"),               # a longin: read-only
    ("cam1:ImageMode", 7, "refused"),                      # no such state
    ("HDF1:FilePath", "/tmp/" + "d" * 10_000 + "/", "refused"),   # NELM 256
    ("HDF1:FileName", "n" * 300, "refused"),               # NELM 256
    ("HDF1:JPEGQuality", 500, ("reads", 100)),             # DRVH 100
    ("HDF1:JPEGQuality", -5, ("reads", 1)),                # DRVL 1
    ("Stats1:TS:TSNumPoints", 0, ("reads", 1)),            # DRVL 1
    ("HDF1:FileName", "", ("reads", "")),                  # an empty long string is stored
    ("HDF1:FileTemplate", "", ("reads", "")),
    ("HDF1:FilePath", "/", ("reads", "/")),                # stored, but does not exist (below)
]


def _case_id(case):
    suffix, value, _ = case
    text = repr(value)
    return f"{suffix}={text[:20]}{'...' if len(text) > 20 else ''}"


@pytest.fixture(scope="module")
def ioc(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-inputs")
    with ExtraADSimIOC([f"--path-map={IOC_ROOT}={root}"], log_path=root / "ioc.log") as ad:
        ad.root = root
        ad.camera(size=(32, 24))
        yield ad


def _alarm(ad, suffix):
    md = read(ad.name(suffix), data_type="time", timeout=30, repeater=False).metadata
    return int(md.status), int(md.severity)


def _acquire_and_write(ad, template="%s%s_%3.3d.h5", name="frame"):
    """A good set-up, one acquisition: the file it writes (host path)."""
    ad.camera(size=(32, 24))
    ad.hdf(GOOD_DIR, name=name, template=template)
    counter = ad.get("HDF1:ArrayCounter_RBV")
    ad.acquire()
    wait_for(lambda: ad.get("HDF1:ArrayCounter_RBV") > counter, 30, "HDF1 to take the frame")
    assert ad.string("HDF1:WriteStatus") == "Write OK", ad.string("HDF1:WriteMessage")
    full = ad.string("HDF1:FullFileName_RBV")
    assert full.startswith(GOOD_DIR)
    host = ad.root / full[len(IOC_ROOT) + 1:]
    with h5py.File(host, "r") as f:
        assert f["/entry/data/data"].shape[-2:] == (24, 32)
    return host


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_bad_input_is_refused_or_clamped_and_the_ioc_carries_on(ioc, case):
    suffix, value, expected = case
    now = ioc.string if isinstance(value, str) else ioc.get
    if expected == "refused":
        before = now(suffix)
        wire = value.encode() + b"\0" if isinstance(value, str) else value
        assert ioc.put_refused(suffix, wire), f"{suffix}={value!r} was accepted"
        assert now(suffix) == before
    else:
        ioc.put(suffix, value)
        got = ioc.string(suffix) if isinstance(expected[1], str) else ioc.get(suffix)
        assert got == expected[1]
        readback = suffix + "_RBV"
        if not isinstance(expected[1], str) and _has(ioc, readback):
            assert ioc.get(readback) == expected[1]
    assert _alarm(ioc, suffix) == (0, 0), "a refused put left an alarm behind"
    _acquire_and_write(ioc)


def _has(ad, suffix):
    try:
        read(ad.name(suffix), timeout=2, repeater=False)
        return True
    except Exception:
        return False


def test_file_path_root_and_missing_directories_do_not_exist(ioc):
    ioc.put("HDF1:CreateDirectory", 0)
    for path in ("/", f"{IOC_ROOT}/no/such/dir/", "/tmp/../dev/shm/simbeamline-x/",
                 f"{IOC_ROOT}/../escape/"):
        ioc.put("HDF1:FilePath", path)
        assert ioc.string("HDF1:FilePathExists_RBV") == "No", path
    # with CreateDirectory, a path outside the map is still not made
    ioc.put("HDF1:CreateDirectory", -5)
    ioc.put("HDF1:FilePath", "/tmp/../dev/shm/simbeamline-x/")
    assert ioc.string("HDF1:FilePathExists_RBV") == "No"
    assert "outside the directories" in ioc.string("HDF1:WriteMessage")
    assert not os.path.exists("/dev/shm/simbeamline-x")
    assert not (ioc.root.parent / "escape").exists()
    _acquire_and_write(ioc)


def test_file_name_cannot_leave_file_path(ioc):
    ioc.camera(size=(32, 24))
    ioc.hdf(GOOD_DIR, name="../escaped", template="%s%s_%3.3d.h5")
    ioc.acquire()
    wait_for(lambda: ioc.string("HDF1:WriteStatus") == "Write error", 30, "the write to fail")
    assert "not inside FilePath" in ioc.string("HDF1:WriteMessage")
    assert not list(ioc.root.glob("escaped*"))
    _acquire_and_write(ioc)


@pytest.mark.parametrize("template,name", [("%s%s.h5", "plain"), ("%s%s", "bare.h5")])
def test_file_template_is_formatted_as_c_does(ioc, template, name):
    """Unused arguments are ignored, as epicsSnprintf ignores them."""
    host = _acquire_and_write(ioc, template=template, name=name)
    expected = "plain.h5" if name == "plain" else "bare.h5"
    assert host.name == expected


def test_absurd_file_template_width_does_not_stall_the_ioc(ioc):
    ioc.camera(size=(32, 24))
    ioc.hdf(GOOD_DIR, name="wide", template="%s%s%50000000d.h5")
    ioc.acquire()
    wait_for(lambda: ioc.string("HDF1:WriteStatus") == "Write error", 30, "the write to fail")
    message = ioc.string("HDF1:WriteMessage")
    assert "width 50000000" in message and len(message) < 256
    assert not list(ioc.root.rglob("wide*"))
    _acquire_and_write(ioc)
    log = (ioc.root / "ioc.log").read_text()
    assert max(len(line) for line in log.splitlines()) < 2200
