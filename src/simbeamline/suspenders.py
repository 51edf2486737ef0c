"""The session's standard suspenders and the run metadata of the simulation clock.

:func:`install_suspenders` gives the RunEngine the two suspenders a beamline runs
with:

- ring current: a :class:`bluesky.suspenders.SuspendFloor` on ``I``. Below
  ``CURRENT_FLOOR`` mA (a beam dump) the plan suspends at once, rewinds to its last
  checkpoint and waits; when the current is back above ``CURRENT_RESUME`` mA and has
  stayed there for the settle time it resumes, re-taking the point it was on. No
  event is recorded without beam.
- shutter interlock: a :class:`bluesky.suspenders.SuspendBoolHigh` on
  ``{prefix}shutter:interlock`` (the PSS interlock; not the shutter itself, which
  plans close on purpose for darks).

On resume each one records the ring current in a ``resume`` stream of the run in
progress, so the suspension is visible in the documents.

Turn them off with ``SIMBEAMLINE_SUSPENDERS=off`` before the session starts, or
in the session with ``RE.clear_suspenders()``; ``RE.install_suspender(s)`` puts one
back (``suspenders`` in the session lists them).

:func:`record_time_scale` adds ``time_scale`` (read from ``{prefix}time_scale`` as
each plan starts) to every run's start document.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time

CURRENT_FLOOR = 100.0    #: mA: below this the beam is lost
CURRENT_RESUME = 400.0   #: mA: above this (after the settle time) the beam is back
SETTLE = 5.0             #: seconds of the simulation clock to wait before resuming
SUSPENDERS_ENV = "SIMBEAMLINE_SUSPENDERS"
#: Wall seconds an event waits, at most, for the suspension its suspender's own fresh
#: reading calls for (the monitor that requests it is on its way).
LAND_LIMIT = 5.0
LAND_POLL = 0.005
#: Wall seconds after which an event read without beam, when the beam is back and no
#: suspension came, is retaken by a suspension of the guard's own (a suspender's own
#: request lands within milliseconds).
LAND_GRACE = 0.5


def suspenders_wanted(environ=None) -> bool:
    """False when ``$SIMBEAMLINE_SUSPENDERS`` is off/0/no/false."""
    value = (os.environ if environ is None else environ).get(SUSPENDERS_ENV, "on")
    return value.strip().lower() not in ("off", "0", "no", "false")


class RunState:
    """A RunEngine subscriber that knows whether a run is open (start without stop);
    the resume plan of :func:`standard_suspenders` counts the suspensions ended."""

    def __init__(self):
        self.open = set()
        self.resumes = 0

    def __call__(self, name, doc):
        if name == "start":
            self.open.add(doc["uid"])
        elif name == "stop":
            self.open.discard(doc["run_start"])


def _resume_plan(current, runs: RunState):
    """A plan recording the current in the ``resume`` stream, if a run is open."""
    def plan():
        from bluesky import plan_stubs as bps

        runs.resumes += 1
        if runs.open:
            yield from bps.trigger_and_read([current], name="resume")
    return plan


def standard_suspenders(beamline, *, time_scale: float = 1.0, runs: RunState | None = None):
    """The ring-current and shutter-interlock suspenders of *beamline* (not installed)."""
    from bluesky.suspenders import SuspendBoolHigh, SuspendFloor

    interlock = beamline.shutter_interlock
    settle = SETTLE * time_scale
    post = {} if runs is None else {"post_plan": _resume_plan(beamline.I, runs)}
    return [
        SuspendFloor(beamline.I, CURRENT_FLOOR, resume_thresh=CURRENT_RESUME, sleep=settle,
                     tripped_message=f"ring current below {CURRENT_FLOOR:g} mA (beam lost)",
                     **post),
        SuspendBoolHigh(interlock, sleep=settle,
                        tripped_message="shutter PSS interlock tripped", **post),
    ]


def suspensions_called_for(suspenders, recorded: dict) -> list[tuple]:
    """``(suspender, value)`` for each of *suspenders* that calls for a suspension,
    judged on the value the event recorded for its signal (*recorded*: name -> value),
    else on its signal read afresh over CA."""
    calling = []
    for suspender in suspenders:
        signal = getattr(suspender, "_sig", None)
        if signal is None:
            continue
        if signal.name in recorded:
            value = recorded[signal.name]
        else:
            try:
                value = signal.get(use_monitor=False)
            except Exception:  # a lost IOC: its own failure ends the plan, not this check
                continue
        if suspender._should_suspend(value):
            calling.append((suspender, value))
    return calling


def suspension_guard(RE, runs: RunState | None = None):
    """A plan preprocessor: no event of *RE*'s plans is saved while a suspender says no.

    A suspender learns of a beam dump from a CA monitor, and its request reaches the
    RunEngine several event-loop turns later, so a point read just after the dump
    could be saved (with no beam) before the suspension lands. Before each ``save``
    this holds the event, yielding to the RunEngine (up to :data:`LAND_LIMIT` s),
    while a reading of the event trips a suspender, or the suspender's signal read
    afresh does: the suspension lands during the hold, and the RunEngine drops the
    unsaved event, rewinds to the point's checkpoint and takes the point again when
    the beam is back. *runs* (the suspenders' :class:`RunState`) tells the hold that
    the suspension has ended. It costs one CA read per event for each suspender whose
    signal the event did not read (the interlock, in most plans).

    While it holds, it hands each such suspender the value that trips it, from the
    RunEngine's own thread. bluesky's suspender makes its request from the thread
    that delivered the monitor, and there waits 0.1 s for the RunEngine's loop to
    create an asyncio event; when the loop is busy longer (a device read, a slow
    subscriber, a loaded machine) the request is lost ("Could not create the
    suspender event", logged by ophyd) and nothing would suspend the plan. From the
    loop's thread the event is made at once; a request already pending is left alone.
    If no suspension has landed after :data:`LAND_GRACE` s (the beam came back before
    the hold, so the suspender has nothing to request), the guard asks for one of its
    own, which ends when the suspender resumes, or after its settle time if the beam
    is back already, and so retakes the point.

    (bluesky's ``plan_mutator`` would insert the hold too, but it keeps every message
    it has seen until the plan ends: about 2 kB an event, 20 MB over a 10,000-event
    count. This wrapper keeps none; exceptions the RunEngine throws in go to the plan.)
    """
    from bluesky import Msg
    from bluesky.utils import ensure_generator

    def hold(recorded: dict):
        # a signal the event read is judged on the value recorded, not read again
        start = time.monotonic()
        resumes = runs.resumes if runs is not None else None
        retaking = False
        while time.monotonic() - start < LAND_LIMIT and (runs is None or runs.resumes == resumes):
            calling = suspensions_called_for(RE.suspenders, recorded)
            if not calling:
                return
            for suspender, read_as in calling:
                # still so now? (a value the event recorded is read again; a fresh one was)
                now = (suspensions_called_for([suspender], {})
                       if suspender._sig.name in recorded else [(suspender, read_as)])
                if now:                       # let the suspender request it from here,
                    suspender(value=now[0][1])          # unless its request is pending
                if not retaking and time.monotonic() - start > LAND_GRACE:
                    # no suspension came (a suspender's own lands within milliseconds):
                    # one of the guard's own retakes the point once the suspender
                    # resumes, or after its settle time if the beam is back already
                    retaking = True
                    futures = suspender.get_futures()[0] if now else []
                    RE.request_suspend(
                        futures[0] if futures else functools.partial(asyncio.sleep, suspender._sleep),
                        post_plan=suspender._post_plan,
                        justification=f"{suspender._sig.name} was read as {read_as!r}: "
                                      "retaking the point")
            yield Msg("sleep", None, LAND_POLL)   # the suspension lands here

    def guard(plan):
        plan = ensure_generator(plan)
        send, value, recorded = plan.send, None, {}
        while True:
            try:
                msg = send(value)
            except StopIteration as stop:
                return stop.value
            try:
                if msg.command == "create":
                    recorded = {}
                elif msg.command == "save":
                    yield from hold(recorded)
                value, send = (yield msg), plan.send
                if msg.command == "read" and isinstance(value, dict):
                    watched = {getattr(getattr(s, "_sig", None), "name", None)
                               for s in RE.suspenders}
                    recorded.update((name, reading["value"]) for name, reading in value.items()
                                    if name in watched)
            except GeneratorExit:
                plan.close()
                raise
            except BaseException as exc:     # the plan's to handle, as without the guard
                value, send = exc, plan.throw

    return guard


def install_suspenders(RE, beamline, *, time_scale: float = 1.0) -> list:
    """Install :func:`standard_suspenders` on *RE*; return them."""
    runs = RunState()
    RE.subscribe(runs)
    RE.preprocessors.append(suspension_guard(RE, runs))
    suspenders = standard_suspenders(beamline, time_scale=time_scale, runs=runs)
    for suspender in suspenders:
        RE.install_suspender(suspender)
    return suspenders


#: Seconds a plan's start waits for ``time_scale`` to (re)connect.
TIME_SCALE_CONNECT_TIMEOUT = 15.0


def record_time_scale(RE, signal) -> None:
    """Every plan's runs record ``time_scale`` (the value of *signal* as it starts)."""
    from bluesky.preprocessors import inject_md_wrapper

    def with_time_scale(plan):
        # a just-restarted beamline IOC takes a few seconds to reconnect
        value = signal.get(connection_timeout=TIME_SCALE_CONNECT_TIMEOUT)
        return inject_md_wrapper(plan, {"time_scale": float(value)})

    RE.preprocessors.append(with_time_scale)
