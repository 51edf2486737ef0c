"""Inputs that used to wedge the beamline IOC, as one table (issue 9).

Each bad put is refused (ECA_PUTFAIL, value unchanged) or clamped as the real record
would clamp it; no alarm is left behind; the IOC stays alive and the next
acquisition works. An exposure can always be aborted (acquire=0), and an ophyd
``mv`` of a refused exposure fails at once with a clear error instead of hanging.
"""

from __future__ import annotations

import math
import threading
import time

import pytest
from caproto import AlarmSeverity, ErrorResponseReceived
from caproto.sync.client import read as ca_read
from caproto.sync.client import write as ca_write

from session_support import new_session, private_config
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

REFUSED = object()

#: (PV suffix, bad value, expected: REFUSED or the clamped value read back, good value)
CASES = [
    ("spot:exp", -1.0, REFUSED, 0.01),
    ("spot:exp", 0.0, REFUSED, 0.01),
    ("spot:exp", math.nan, REFUSED, 0.01),
    ("spot:exp", math.inf, REFUSED, 0.01),
    ("spot:exp", 1e9, REFUSED, 0.01),            # longer than the camera's maximum
    ("dot:exp", 1e9, REFUSED, 0.01),
    ("m:spotx.VELO", 1e300, 1000.0, 100.0),      # clamped to VMAX, as the record does
    ("m:spotx.VELO", -1.0, REFUSED, 100.0),
    ("m:spotx.ACCL", math.inf, REFUSED, 0.1),
    ("m:spotx.HLM", -300.0, REFUSED, 250.0),     # below LLM
    ("m:spotx.LLM", 300.0, REFUSED, -250.0),     # above HLM
    ("m:spotx", 1e9, REFUSED, 0.0),              # outside the soft limits
    ("m:spotx", math.nan, REFUSED, 0.0),
    ("current:topup_period", 0.0, REFUSED, 600.0),
    ("current:lifetime", math.inf, REFUSED, 36000.0),
]


def read(pv: str):
    response = ca_read(pv, data_type="time", timeout=10, repeater=False)
    return response.data[0], AlarmSeverity(response.metadata.severity)


def put(pv: str, value, timeout: float = 30):
    ca_write(pv, value, notify=True, timeout=timeout, repeater=False)


def acquire_one(prefix: str) -> None:
    """One acquisition of the spot camera at a short exposure; it must add a frame."""
    before, _ = read(f"{prefix}spot:frame_counter")
    put(f"{prefix}spot:exp", 0.01)
    put(f"{prefix}spot:acquire", 1)
    assert read(f"{prefix}spot:frame_counter")[0] == before + 1


@pytest.mark.parametrize("suffix,bad,expected,good", CASES,
                         ids=[f"{c[0]}={c[1]!r}" for c in CASES])
def test_bad_input_is_refused_or_clamped_and_the_ioc_carries_on(beamline, suffix, bad,
                                                                expected, good):
    pv = f"{beamline.prefix}{suffix}"
    put(pv, good)
    if expected is REFUSED:
        with pytest.raises(ErrorResponseReceived):
            put(pv, bad)
        value, severity = read(pv)
        assert value == good
    else:
        put(pv, bad)
        value, severity = read(pv)
        assert value == expected
    assert severity == AlarmSeverity.NO_ALARM
    assert 300 < read(f"{beamline.prefix}current")[0] < 700      # the IOC is alive
    acquire_one(beamline.prefix)                                  # and acquires
    put(pv, good)


def test_acquire_0_aborts_a_long_exposure(beamline):
    p = beamline.prefix
    before, _ = read(f"{p}spot:frame_counter")
    put(f"{p}spot:exp", 3000.0)
    finished = threading.Event()

    import epics   # caproto's sync client is not for threads

    acquire = epics.get_pv(f"{p}spot:acquire", form="native")   # apart from ophyd's
    assert acquire.wait_for_connection(30)

    def long_acquisition():
        try:
            acquire.put(1, wait=True, timeout=120)
        finally:
            finished.set()

    threading.Thread(target=long_acquisition, daemon=True).start()
    from waiting import wait_for

    wait_for(lambda: read(f"{p}spot:acquire")[0] == 1, 30, "the acquisition to start")
    put(f"{p}spot:acquire", 0)
    assert finished.wait(60), "acquire=0 did not end the acquisition"
    assert read(f"{p}spot:frame_counter")[0] == before          # no frame: aborted
    assert read(f"{p}spot:acquire")[0] == 0
    acquire_one(p)


def test_acquire_0_in_the_second_half_of_an_exposure_takes_no_frame(beamline):
    """An abort while the frame is being drawn (the exposure's second half) still
    fails the put and publishes nothing; the next acquisition gets a frame."""
    import epics   # caproto's sync client is not for threads

    p = beamline.prefix
    put(f"{p}spot:exp", 4.0)
    before, _ = read(f"{p}spot:frame_counter")
    acquire = epics.get_pv(f"{p}spot:acquire", form="native")
    assert acquire.wait_for_connection(30)
    finished = threading.Event()
    outcome = {}

    def acquisition():
        outcome["started"] = time.monotonic()
        try:
            acquire.put(1, wait=True, timeout=60)
        finally:
            outcome["ended"] = time.monotonic()
            finished.set()

    threading.Thread(target=acquisition, daemon=True).start()
    wait_for(lambda: read(f"{p}spot:acquire")[0] == 1, 30, "the acquisition to start")
    time.sleep(2.8)          # the moment of the abort, 2.8 s into the 4 s exposure
    put(f"{p}spot:acquire", 0)
    assert finished.wait(60), "acquire=0 did not end the acquisition"
    assert outcome["ended"] - outcome["started"] < 4.0, "the abort came after the exposure"
    assert read(f"{p}spot:frame_counter")[0] == before          # no frame: aborted
    assert read(f"{p}spot:acquire")[0] == 0
    acquire_one(p)                                              # fresh deviates drawn


def test_mv_of_a_refused_exposure_fails_clearly_and_the_next_mv_works(beamline,
                                                                      tmp_path):
    ns = new_session(private_config(beamline, tmp_path))
    RE, mv, spot = ns["RE"], ns["mv"], ns["spot"]
    with pytest.raises(ValueError, match="positive, finite number of seconds"):
        RE(mv(spot.exp, -1))
    with pytest.raises(ValueError, match="longer than the camera's maximum"):
        RE(mv(spot.exp, 1e9))
    RE(mv(spot.exp, 0.02))
    assert spot.exp.get(use_monitor=False) == 0.02
    RE(ns["count"]([spot], num=1))
    RE(mv(spot.exp, 1.0))


def test_a_hostile_put_leaves_a_bounded_log_line(beamline):
    """3,000 strings put to the read-only image: refused, and the IOC's log line for it
    (caproto logs the whole request) is cut, so one put cannot rotate the log away."""
    from caproto import ChannelType

    from simbeamline_iocs.logs import MAX_MESSAGE

    log = beamline.log_dir / "beamline.log"
    before = log.stat().st_size
    with pytest.raises(ErrorResponseReceived):
        ca_write(f"{beamline.prefix}spot:image", [b"x" * 39] * 3000,
                 data_type=ChannelType.STRING, notify=True, timeout=30, repeater=False)

    def added() -> str:
        with log.open("rb") as file:
            file.seek(before)
            return file.read().decode(errors="replace")

    # the refusal is logged, cut (supervisord copies the IOC's output to the file)
    wait_for(lambda: "more characters cut" in added(), 30, "the refused put in the IOC's log")
    added = added()
    assert max(len(line) for line in added.splitlines()) < MAX_MESSAGE + 200
    acquire_one(beamline.prefix)                              # and the IOC carries on
