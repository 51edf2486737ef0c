"""Unit tests of the session's pieces that need no IOC: the spot cameras' frame
store, the configuration from the environment, the document helpers."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from simbeamline.control.config import BeamlineConfig
from simbeamline.catalog import frame_store
from simbeamline.catalog.frame_store import FrameStore, write_npy


def frame():
    return np.arange(12, dtype=np.int32).reshape(3, 4)


def test_documents_of_an_aborted_run_are_not_emitted_in_the_next(tmp_path):
    store = FrameStore(tmp_path)
    store.new_resource()                       # stage of run 1
    store.write(frame())                       # trigger ... and the run aborts before read
    store.close_resource()                     # unstage
    store.new_resource()                       # stage of run 2
    datum_id = store.write(frame())
    docs = list(store.collect_asset_docs())
    assert [name for name, _ in docs] == ["resource", "datum"]
    resource, datum = docs[0][1], docs[1][1]
    assert datum["resource"] == resource["uid"] and datum["datum_id"] == datum_id
    assert datum["datum_kwargs"] == {"index": 0}
    assert (tmp_path / f"{resource['resource_path']}_0.npy").exists()
    assert list(store.collect_asset_docs()) == []


def test_a_frame_saved_while_the_next_run_stages_is_not_emitted_in_it(tmp_path, monkeypatch):
    store = FrameStore(tmp_path)
    store.new_resource()
    list(store.collect_asset_docs())

    def slow_save(file, array):
        store.close_resource()                 # the run aborts and the next one stages
        store.new_resource()                   # while this frame is being written
        write_npy(file, array)

    monkeypatch.setattr(frame_store, "write_npy", slow_save)
    store.write(frame())
    docs = list(store.collect_asset_docs())
    assert [name for name, _ in docs] == ["resource"]


def test_a_failed_save_leaves_no_part_file(tmp_path, monkeypatch):
    store = FrameStore(tmp_path)
    store.new_resource()

    def disk_full(file, array):
        file.write(b"\x93NUMPY half a frame")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(frame_store, "write_npy", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.write(frame())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    store.write(frame())                       # the store goes on
    assert [name for name, _ in store.collect_asset_docs()] == ["resource", "datum"]


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.int32).reshape(3, 4),       # a frame
    np.zeros((480, 640), np.int32),                     # a spot camera's frame
    np.arange(6, dtype=">f8").reshape(2, 3),            # another byte order and type
])
def test_frames_are_written_as_the_bytes_np_save_writes(tmp_path, array):
    """The frame files are written from the array's memory, without np.save's copies:
    byte for byte the same file, which np.load reads back."""
    import io

    expected = io.BytesIO()
    np.save(expected, array, allow_pickle=False)
    path = tmp_path / "frame.npy"
    with open(path, "wb") as file:
        write_npy(file, array)
    assert path.read_bytes() == expected.getvalue()
    assert np.array_equal(np.load(path), array)


@pytest.mark.parametrize("variable,attribute", [("SIMBEAMLINE_DATA_DIR", "data_dir"),
                                                ("SIMBEAMLINE_RUN_DIR", "run_dir")])
def test_an_empty_directory_variable_means_unset(variable, attribute):
    default = getattr(BeamlineConfig(), attribute)
    assert getattr(BeamlineConfig.from_env({variable: ""}), attribute) == default
    assert getattr(BeamlineConfig.from_env({}), attribute) == default
    assert getattr(BeamlineConfig.from_env({variable: "/x/y"}), attribute) == Path("/x/y")
    assert default != Path(".")


def test_document_helpers():
    """One definition each, shared by the catalog driver, exporters and run access."""
    import simbeamline.catalog.store  # noqa: F401  (imports databroker, then the driver)
    from simbeamline.catalog import driver as catalog_driver, runs as run_access
    from simbeamline.export import base as frame_export, nexus as hdf5_export
    from simbeamline.catalog.runs import failing_file, plain_doc

    assert catalog_driver.plain_doc is frame_export.plain_doc is plain_doc
    assert not hasattr(hdf5_export, "plain_dict") and not hasattr(frame_export, "plain_dict")
    assert not hasattr(catalog_driver, "_missing_file") and run_access.failing_file is failing_file
    nested = {"a": [{"b": 1}, 2], "c": {"d": np.zeros(2)}}
    plain = plain_doc(nested)
    assert plain == {"a": [{"b": 1}, 2], "c": {"d": plain["c"]["d"]}}
    assert plain["a"] is not nested["a"] and plain["c"]["d"] is nested["c"]["d"]
    try:
        try:
            open("/no/such/file.npy")
        except OSError as inner:
            raise KeyError("wrapped") from inner
    except KeyError as outer:
        assert failing_file(outer).filename == "/no/such/file.npy"
    cycle = RuntimeError("a")
    cycle.__context__ = RuntimeError("b")
    cycle.__context__.__context__ = cycle
    assert failing_file(cycle) is None


@pytest.mark.parametrize("backend, environ, says", [
    ("TkAgg", {"DISPLAY": ":0"}, None),                      # a window opens: nothing to say
    ("agg", {}, None),                                       # no display: files are the way
    ("agg", {"DISPLAY": ":0"}, "python3-tk"),                # display, no GUI toolkit
    ("agg", {"WAYLAND_DISPLAY": "wayland-0"}, "PyQt6"),
    ("agg", {"DISPLAY": ":0", "MPLBACKEND": "Agg"}, "unset it"),
])
def test_no_window_hint_says_why_plots_open_no_window(backend, environ, says):
    from simbeamline.session import no_window_hint

    hint = no_window_hint(backend, environ)
    assert (hint is None) if says is None else (says in hint)


def test_sessions_read_with_ophyd_budgets_that_survive_a_busy_host(tmp_path):
    """A fresh process that builds the beamline gives its signals the patient budgets
    (checked on a signal made afterwards, so no IOC is needed)."""
    import subprocess
    import sys

    code = ("from simbeamline.devices.beamline import patient_ophyd_defaults, READ_TIMEOUT\n"
            "patient_ophyd_defaults()\n"
            "from ophyd import EpicsSignalRO\n"
            "s = EpicsSignalRO('nobody:x', name='x')\n"
            "patient_ophyd_defaults()  # a second call, after a signal exists, is harmless\n"
            "assert s.timeout == READ_TIMEOUT, s.timeout\n"
            "print(s.timeout, s.connection_timeout)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["30.0", "5.0"]     # ophyd's own: 2 s and 1 s


class _Tag:
    """An object a message can carry and a weak reference can watch."""


def _drive(plan, respond):
    """Run *plan* as the RunEngine would: send each message's response back in, or
    throw it in when it is an exception. Returns the commands seen."""
    seen, response = [], None
    while True:
        try:
            msg = plan.throw(response) if isinstance(response, Exception) else plan.send(response)
        except StopIteration:
            return seen
        seen.append(msg.command)
        response = respond(msg)


def test_suspension_guard_holds_a_tripped_event_routes_responses_and_keeps_no_messages():
    import types
    import weakref

    from bluesky import Msg
    from bluesky.suspenders import SuspendFloor
    from ophyd import Signal

    from simbeamline.suspenders import RunState, suspension_guard

    current = Signal(name="I", value=500.0)
    runs = RunState()
    RE = types.SimpleNamespace(suspenders=[SuspendFloor(current, 100.0)])
    tags, got, caught, alive = [], [], [], []

    def plan():
        for n in range(200):
            tag = _Tag()
            tags.append(weakref.ref(tag))
            yield Msg("create", name="primary")
            got.append((yield Msg("read", tag)))
            try:
                yield Msg("save", tag)
            except RuntimeError as exc:          # an exception the RunEngine throws in
                caught.append(str(exc))
        del tag
        alive.append(sum(ref() is not None for ref in tags))    # while the plan runs

    held = []

    def respond(msg):
        if msg.command == "read":
            beam = 0.0 if len(got) == 7 else 500.0      # point 7 is read without beam
            return {"I": {"value": beam, "timestamp": 0.0}, "n": {"value": len(got)}}
        if msg.command == "sleep":                      # the hold, until the resume
            held.append(len(got))
            if len(held) == 3:
                runs.resumes += 1
        if msg.command == "save" and len(caught) < 3:
            return RuntimeError("save failed")
        return None

    seen = _drive(suspension_guard(RE, runs)(plan()), respond)
    assert held == [8, 8, 8]        # only the beamless 8th point was held, until resumed
    assert seen.count("save") == 200 and seen.count("read") == 200
    assert got[3]["n"]["value"] == 3          # each read got its own response
    assert caught == ["save failed"] * 3      # thrown into the plan
    assert alive[0] <= 1                      # no message kept alive (plan_mutator: 200)


# --- the suspension guard on a real RunEngine, with soft signals ----------------------

def _guarded_run_engine():
    """A RunEngine with the session's suspenders and guard on soft ``I`` and interlock
    signals; returns (RE, I, documents, the current suspender)."""
    import types

    from bluesky import RunEngine
    from ophyd import Signal

    from simbeamline.suspenders import install_suspenders

    I = Signal(name="I", value=500.0)
    beamline = types.SimpleNamespace(I=I, shutter_interlock=Signal(name="interlock", value=0))
    RE = RunEngine({})
    RE.record_interruptions = True         # suspensions as events of 'interruptions'
    docs: list = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    floor, _ = install_suspenders(RE, beamline, time_scale=0.01)
    return RE, I, docs, floor


def _put_while_the_run_engine_waits(signal, value):
    """Put *value* from another thread (its subscribers, the suspender among them, run
    there) while the RunEngine's thread waits for the put to end: the suspender's
    request meets a busy loop, as when a device read or a subscriber holds it."""
    import threading

    putter = threading.Thread(target=signal.put, args=(value,))
    putter.start()
    putter.join()


def _events(docs, stream):
    names = {d["uid"]: d["name"] for n, d in list(docs) if n == "descriptor"}
    return [d for n, d in list(docs) if n == "event" and names[d["descriptor"]] == stream]


def test_a_suspension_bluesky_loses_on_a_busy_loop_is_requested_by_the_guard():
    """bluesky's suspender asks the RunEngine's loop for an asyncio event and waits
    0.1 s for it; with the loop busy the request is lost ("Could not create the
    suspender event") and the point would be saved without beam after the guard's
    hold. The guard hands the suspender the value from the loop's own thread."""
    import threading

    from bluesky.plans import count
    from waiting import wait_for

    RE, I, docs, floor = _guarded_run_engine()
    dumped = []

    def dump_as_I_is_read(msg):          # runs in the RunEngine's thread
        if msg.command == "read" and msg.obj is I and len(dumped) == 0 and _events(docs, "primary"):
            dumped.append(True)
            _put_while_the_run_engine_waits(I, 0.0)
            assert floor.tripped and floor._ev is None   # bluesky lost its request

    def beam_back_once_suspended():
        try:
            wait_for(lambda: _events(docs, "interruptions"), 15, "the suspension")
        finally:
            I.put(500.0)

    RE.msg_hook = dump_as_I_is_read
    restorer = threading.Thread(target=beam_back_once_suspended)
    restorer.start()
    try:
        RE(count([I], num=4))
    finally:
        restorer.join()
    assert dumped
    assert [e["data"]["I"] for e in _events(docs, "primary")] == [500.0] * 4
    assert len(_events(docs, "resume")) == 1


def test_a_point_read_without_beam_is_retaken_when_the_beam_is_back_before_the_hold():
    """The beam dumps and returns around a point's read of ``I`` while the loop is
    busy: the suspender saw both and never suspended; the point, read without beam,
    is taken again (the guard's own suspension, after LAND_GRACE)."""
    from bluesky.plans import count
    from ophyd import Signal

    RE, I, docs, floor = _guarded_run_engine()
    after = Signal(name="after_I", value=1.0)    # read after I: the beam comes back here
    dumped = []

    def dump_around_the_read(msg):
        if msg.command == "read" and msg.obj is I and len(dumped) == 0 and _events(docs, "primary"):
            dumped.append(True)
            _put_while_the_run_engine_waits(I, 0.0)
        elif msg.command == "read" and msg.obj is after and len(dumped) == 1:
            dumped.append(True)
            _put_while_the_run_engine_waits(I, 500.0)
            assert not floor.tripped and floor._ev is None   # no suspension on its way

    RE.msg_hook = dump_around_the_read
    RE(count([I, after], num=3))
    assert len(dumped) == 2
    assert [e["data"]["I"] for e in _events(docs, "primary")] == [500.0] * 3
    assert len(_events(docs, "resume")) == 1


def fresh_process_output(code: str, cwd, env: dict | None = None) -> list[str]:
    """The words *code* prints in a fresh interpreter (nothing imported before it; this
    process's environment updated with *env*), which must exit 0."""
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=cwd, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_session_run_engine_records_ophyd_async_without_importing_it(tmp_path):
    """bluesky's RunEngine imports ophyd_async only for its version: the session's
    RunEngine records the same version, leaves the package unimported, and a later
    import gets the real package (a fresh process: nothing imported it before)."""
    code = ("import sys\n"
            "from importlib import metadata\n"
            "from simbeamline.session import new_run_engine\n"
            "RE = new_run_engine()\n"
            "assert RE.md['versions']['ophyd_async'] == metadata.version('ophyd-async')\n"
            "assert not any(m.startswith('ophyd_async') for m in sys.modules), sys.modules\n"
            "import ophyd_async.core\n"
            "print(ophyd_async.core.Device.__name__)\n")
    assert fresh_process_output(code, tmp_path) == ["Device"]


def test_a_session_imports_its_libraries_without_setuptools(tmp_path):
    """ophyd (through epicscorelibs.path's setuptools_dso) and databroker (through
    intake's distutils.version) would each import setuptools and pkg_resources: the
    session's modules import them without, pyepics gets the same libca a plain ophyd
    import gives it, intake gets a working LooseVersion, and setuptools_dso and
    setuptools import as usual afterwards (a fresh process: nothing imported before)."""
    libca, = fresh_process_output("import ophyd, os\nprint(os.environ['PYEPICS_LIBCA'])",
                                  tmp_path)
    code = ("import os, sys\n"
            "import simbeamline.session, simbeamline.devices.cameras, simbeamline.catalog.store\n"
            "print('setuptools' in sys.modules, 'pkg_resources' in sys.modules)\n"
            "from intake.container.dataframe import LooseVersion\n"
            "print(LooseVersion('1.10') > LooseVersion('1.9'))\n"
            "import epics\n"
            "print(epics.ca.find_libca() == os.environ['PYEPICS_LIBCA'])\n"
            "print(os.environ['PYEPICS_LIBCA'])\n"
            "import setuptools_dso, setuptools\n"
            "print(hasattr(setuptools_dso, 'DSO'), hasattr(setuptools, 'setup'))\n")
    assert fresh_process_output(code, tmp_path) == ["False", "False", "True", "True",
                                                    libca, "True", "True"]


def test_a_session_is_built_without_the_collector_and_leaves_it_on(beamline, tmp_path):
    """The session is built with Python's cyclic garbage collector held off, then its
    objects frozen out of later collections (a fifth of the start-up, measured in
    benchmarks/README.md): afterwards the collector is on again, also after a build
    that failed, and a reference cycle made later is collected (a fresh process
    against the test beamline)."""
    code = ("import dataclasses, gc, weakref\n"
            "from simbeamline.control.config import BeamlineConfig\n"
            "from simbeamline.devices.beamline import BeamlineNotRunning\n"
            "from simbeamline.session import build_session\n"
            "config = BeamlineConfig.from_env()\n"
            "try:\n"
            "    build_session(dataclasses.replace(config, prefix='nobody:'), adsim=False)\n"
            "except BeamlineNotRunning:\n"
            "    print('refused', gc.isenabled())\n"
            "frozen = gc.get_freeze_count()\n"
            "ns = build_session(config, adsim=False, table_and_plots=False, move_progress=False)\n"
            "print(ns['spot'].connected, gc.isenabled(), gc.get_freeze_count() > frozen)\n"
            "class Node: pass\n"
            "a, b = Node(), Node()\n"
            "a.other, b.other = b, a\n"
            "gone = weakref.ref(a)\n"
            "del a, b\n"
            "gc.collect()\n"
            "print(gone() is None)\n")
    env = {**beamline.as_env(), "SIMBEAMLINE_DATA_DIR": str(tmp_path / "data")}
    assert fresh_process_output(code, tmp_path, env) == ["refused", "True", "True", "True",
                                                         "True", "True"]


def test_a_session_records_runs_before_it_imports_databroker(beamline, tmp_path):
    """Opening the catalog imports databroker, and with it pandas, xarray and dask, half
    of a session's start: a session records its runs (files, index, scan_ids) without
    it, and ``db`` and ``cat`` open the catalog at their first use, where every run is;
    a tutorial's ``RE.subscribe(db.insert)`` then records nothing twice (a fresh process
    against the test beamline)."""
    code = ("import sys\n"
            "from simbeamline.session import build_session\n"
            "ns = build_session(adsim=False, table_and_plots=False, move_progress=False)\n"
            "RE = ns['RE']\n"
            "RE(ns['mv'](ns['spot'].exp, 0.005))\n"
            "uids = [RE(ns['count']([ns['spot'], ns['I']], num=2))[0] for _ in range(2)]\n"
            "seen = ['databroker' in sys.modules, 'xarray' in sys.modules]\n"
            "h = ns['db'][-1]\n"
            "first = ns['cat'][uids[0]].metadata['start']\n"
            "seen += ['databroker' in sys.modules, h.start['uid'] == uids[1],\n"
            "         first['scan_id'] + 1 == h.start['scan_id'] == RE.md['scan_id'],\n"
            "         len(list(h.data('spot_img'))), isinstance(ns['db'], type(ns['cat'].v1))]\n"
            # the tutorials' own line: the session's writer again, not a second one
            "RE.subscribe(ns['db'].insert)\n"
            "uid, = RE(ns['count']([ns['spot']], num=1))\n"
            "seen += [ns['db'][-1].start['uid'] == uid, len(ns['cat'])]\n"
            "print(*seen)\n")
    env = {**beamline.as_env(), "SIMBEAMLINE_DATA_DIR": str(tmp_path / "data")}
    words = fresh_process_output(code, tmp_path, env)   # the RunEngine prints before
    assert words[-9:] == ["False", "False", "True", "True", "True", "2", "True",
                          "True", "3"], words
