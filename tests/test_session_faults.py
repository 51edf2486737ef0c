"""Plans under scripted faults, in a session built as the profile builds it.

Faults are injected over CA (``simbeamline.control.faults``) at a chosen point of
a plan (from a document subscription) and the run's documents are read back from
the catalog: a beam dump suspends and resumes a scan with no event taken without
beam; a stuck shutter, a stalled motor and a hung detector end or pause the run
with a clear reason and lose nothing already recorded. The beamline runs on a
fast clock (time scale 0.01) for these tests.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from session_support import new_session, private_config
from simbeamline.control.faults import FaultClient, clear_puts, set_puts
from simbeamline.suspenders import CURRENT_FLOOR
from waiting import wait_for

pytestmark = pytest.mark.timeout(600)

SCALE = 0.01


@pytest.fixture(scope="module")
def faults(beamline):
    client = FaultClient(beamline)
    client.set_time_scale(SCALE)
    yield client
    client.write(clear_puts("all"))
    client.set_time_scale(1.0)


@pytest.fixture(scope="module")
def ns(beamline, faults, tmp_path_factory):
    session = new_session(private_config(beamline, tmp_path_factory.mktemp("fault-data")))
    RE, mv = session["RE"], session["mv"]
    RE(mv(session["shutter"], "Open"))
    yield session
    faults.write(clear_puts("all"))
    RE(mv(session["shutter"], "Open", session["mtr_dotx"], 0, session["mtr_spotx"], 0,
          session["mtr_spoty"], 0))


@pytest.fixture(scope="module")
def adsim_ns(beamline, faults, tmp_path_factory):
    """A second session, with ``adsimdet``."""
    return new_session(private_config(beamline, tmp_path_factory.mktemp("fault-adsim")),
                       adsim=True)


def at_event(RE, number, action, stream="primary"):
    """Run *action()* once, when event *number* of *stream* has been emitted."""
    descriptors = {}

    def callback(name, doc):
        if name == "descriptor":
            descriptors[doc["uid"]] = doc["name"]
        elif (name == "event" and descriptors.get(doc["descriptor"]) == stream
              and doc["seq_num"] == number):
            action()
    return RE.subscribe(callback)


def chain(exc: BaseException) -> str:
    """The messages of *exc* and its causes (bluesky's FailedStatus names only the
    status; the reason is its cause)."""
    messages = []
    while exc is not None:
        messages.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(messages)


def streams(run) -> dict[str, int]:
    """{stream name: number of events} of a catalog run."""
    return {name: len(run[name].read()["time"]) for name in run}


def test_beam_dump_suspends_a_30_point_scan_which_resumes_without_beamless_events(ns, faults):
    RE, db = ns["RE"], ns["db"]
    RE(ns["mv"](ns["dot"].exp, 1.0))
    token = at_event(RE, 10, lambda: faults.write(set_puts("beam_dump", duration=100.0)))
    try:
        uid, = RE(ns["scan"]([ns["dot"], ns["I"]], ns["mtr_dotx"], -10, 10, 30))
    finally:
        RE.unsubscribe(token)
    run = db.v2[uid]
    assert run.metadata["start"]["time_scale"] == SCALE
    assert run.metadata["stop"]["exit_status"] == "success"
    primary = run.primary.read()
    assert len(primary["time"]) == 30
    assert (primary["I"].values > CURRENT_FLOOR).all()        # none without beam
    resume = run.resume.read()                                # the resume is recorded
    assert len(resume["time"]) >= 1 and (resume["I"].values > CURRENT_FLOOR).all()
    assert primary["motor_dotx"].values.tolist() == pytest.approx(
        [-10 + 20 * i / 29 for i in range(30)], abs=1e-3)    # every point, once


@pytest.mark.parametrize("detector, point", [("dot", 1), ("dot", 5), ("adsimdet", 1)])
def test_beam_dump_between_a_points_reads_and_its_save_records_no_beamless_event(
        request, faults, detector, point):
    """The dump lands as a point's ``I`` is read, after its checkpoint and trigger: the
    read sees no beam and the suspender's monitor is still on its way. The point must
    be dropped, the run suspended, and the point taken again once the beam is back,
    its frame readable (at point 1 the dropped event carried the run's first Resource
    document, which bluesky discards with it)."""
    ns = request.getfixturevalue("adsim_ns" if detector == "adsimdet" else "ns")
    RE, db, I = ns["RE"], ns["db"], ns["I"]
    reads = []

    def dump_as_I_is_read(msg):
        if msg.command == "read" and msg.obj is I:
            reads.append(msg)
            if len(reads) == point:
                faults.write(set_puts("beam_dump", duration=100.0))

    RE.msg_hook, hook = dump_as_I_is_read, RE.msg_hook
    try:
        uid, = RE(ns["count"]([ns[detector], I], num=10))
    finally:
        RE.msg_hook = hook
    run = db.v2[uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    primary = run.primary.read()
    assert len(primary["time"]) == 10                         # the point taken again
    assert (primary["I"].values > CURRENT_FLOOR).all()        # none without beam
    assert len(run.resume.read()["time"]) >= 1                # the suspension is recorded
    frames = primary[f"{detector}_image" if detector == "adsimdet" else "dot_img"].values
    assert frames.shape[0] == 10 and (frames.reshape(10, -1).sum(axis=1) > 0).all()


def test_stuck_shutter_stops_scan_with_dark_before_a_beamlit_dark(ns, faults, beamline):
    from simbeamline.plans import scan_with_dark

    RE, db = ns["RE"], ns["db"]
    RE.clear_suspenders()          # without the interlock suspender: the plan itself sees it
    before = len(list(db.v2))
    faults.write(set_puts("shutter_stuck"))
    try:
        with pytest.raises(Exception) as failure:
            RE(scan_with_dark([ns["dot"]], ns["shutter"], ns["count"]([ns["dot"]], num=3)))
    finally:
        faults.write(clear_puts("shutter_stuck"))
        for suspender in ns["suspenders"]:
            RE.install_suspender(suspender)
    assert "shutter did not move to 'Closed'" in chain(failure.value)
    assert "interlock 'Tripped'" in chain(failure.value)
    assert len(list(db.v2)) == before          # no run recorded, nothing lost
    assert ns["shutter"].get() == "Open"


def test_interlock_trip_during_scan_with_dark_pauses_until_cleared(ns, faults):
    from simbeamline.plans import scan_with_dark

    RE, db = ns["RE"], ns["db"]
    interlock = next(s for s in ns["suspenders"] if "interlock" in repr(s))

    def trip_then_clear():
        faults.write(set_puts("shutter_stuck"))
        def clear():
            wait_for(lambda: interlock.tripped, what="the interlock suspender to trip")
            faults.write(clear_puts("shutter_stuck"))
        threading.Thread(target=clear, daemon=True).start()

    token = at_event(RE, 2, trip_then_clear)
    try:
        uids = RE(scan_with_dark([ns["dot"]], ns["shutter"], ns["count"]([ns["dot"]], num=5)))
    finally:
        RE.unsubscribe(token)
    dark, main = (db.v2[uid] for uid in uids)
    assert streams(dark)["primary"] == 1
    assert streams(main)["primary"] == 5 and streams(main)["resume"] >= 1
    assert main.metadata["stop"]["exit_status"] == "success"


def test_stalled_motor_ends_a_grid_scan_with_the_motor_named(ns, faults):
    RE, db = ns["RE"], ns["db"]
    token = at_event(RE, 4, lambda: faults.write(set_puts("stall", ["spotx"])))
    try:
        with pytest.raises(Exception) as failure:
            RE(ns["grid_scan"]([ns["spot"], ns["I"]], ns["mtr_spoty"], -10, 10, 3,
                               ns["mtr_spotx"], -10, 10, 3))
    finally:
        RE.unsubscribe(token)
        faults.write(clear_puts("stall", ["spotx"]))
    run = db.v2[-1]
    stop = run.metadata["stop"]
    assert stop["exit_status"] == "fail"
    assert "motor_spotx" in stop["reason"] + chain(failure.value)
    assert streams(run)["primary"] == 4                # what was recorded is kept
    frames = run.primary.read()["spot_img"]            # ... frames included
    assert frames.shape[0] == 4


def test_hung_detector_ends_the_run_with_a_reason_and_keeps_earlier_events(ns, faults):
    RE, db, dot = ns["RE"], ns["db"], ns["dot"]
    dot.acquire_margin = 2.0
    token = at_event(RE, 3, lambda: faults.write(set_puts("hang", ["dot"])))
    try:
        with pytest.raises(Exception) as failure:
            RE(ns["count"]([dot, ns["I"]], num=6))
    finally:
        RE.unsubscribe(token)
        faults.write(clear_puts("hang", ["dot"]))
        dot.acquire_margin = 30.0
    run = db.v2[-1]
    assert run.metadata["stop"]["exit_status"] == "fail"
    assert "did not finish" in chain(failure.value)
    assert "hung" in run.metadata["stop"]["reason"] + chain(failure.value)
    assert streams(run)["primary"] == 3
    assert dot.acquire.get(use_monitor=False) == 0      # the IOC's acquisition aborted
    uid, = RE(ns["count"]([dot], num=1))                # and the camera works again
    assert streams(db.v2[uid])["primary"] == 1


def test_a_schedule_replayed_from_the_command_line_gives_the_same_documents_twice(
        ns, faults, beamline, tmp_path):
    schedule = tmp_path / "dump.toml"
    schedule.write_text('[[step]]\nat = 20\nset = "beam_dump"\nfor = 30\n')
    RE, db = ns["RE"], ns["db"]
    RE(ns["mv"](ns["dot"].exp, 5.0))
    shapes = []
    for _ in range(2):
        replay = subprocess.Popen(
            [sys.executable, "-m", "simbeamline.cli", "fault", "run", str(schedule)],
            env={**__import__("os").environ, **beamline.as_env()},
            stdout=subprocess.PIPE, text=True)
        try:
            assert "replaying" in replay.stdout.readline()     # the clock starts now
            uid, = RE(ns["count"]([ns["dot"], ns["I"]], num=25))
            assert replay.wait(60) == 0
        finally:
            replay.kill()
            replay.stdout.close()
        run = db.v2[uid]
        # no event without beam, even one whose point was read as the beam dumped
        assert (run.primary.read()["I"].values > CURRENT_FLOOR).all()
        shapes.append({"streams": streams(run),
                       "keys": {s: sorted(run[s].read().data_vars) for s in run},
                       "exit": run.metadata["stop"]["exit_status"],
                       "time_scale": run.metadata["start"]["time_scale"]})
    assert shapes[0] == shapes[1]
    assert shapes[0]["streams"]["primary"] == 25 and shapes[0]["streams"]["resume"] == 1
