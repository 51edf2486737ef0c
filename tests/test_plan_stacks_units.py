"""The session's lazily formatted "plan was never iterated" warning
(``simbeamline.plan_stacks``): the same text as bluesky's own, and the stubs make it."""

from __future__ import annotations

import gc
import warnings

import bluesky.plan_stubs as bps
import bluesky.utils
import pytest
import bluesky.plans
from bluesky import RunEngine
from ophyd.sim import det

from simbeamline import plan_stacks


def _gen():
    yield from ()


def _make(cls):
    return cls(_gen)   # as @plan's wrapper would: this frame and __init__ are left out


def _never_iterated_warning(cls) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = _make(cls)
        del plan
        gc.collect()
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert len(messages) == 1, messages
    return messages[0]


@pytest.fixture
def installed():
    plan_stacks.install()
    yield
    plan_stacks.uninstall()


def test_the_warning_reads_as_bluesky_writes_it():
    """Same frames, same source lines, same last line as bluesky's eager Plan."""
    ours, theirs = [_never_iterated_warning(cls)     # one line for both
                    for cls in (plan_stacks.LazyStackPlan, bluesky.utils.Plan)]
    assert ours == theirs
    assert "plan = _make(cls)" in ours and ours.endswith(
        "RuntimeWarning: plan `_gen` was never iterated, did you mean to use `yield from`?")


def test_an_iterated_plan_gives_no_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_stacks.LazyStackPlan(_gen)
        assert list(plan) == []
        del plan
        gc.collect()
    assert not [w for w in caught if w.category is RuntimeWarning]


def test_bluesky_stubs_make_it_once_installed_and_plans_run(installed):
    stub = bps.trigger_and_read([det])
    assert type(stub) is plan_stacks.LazyStackPlan
    assert isinstance(stub, bluesky.utils.Plan)
    docs = []
    RunEngine({})(bluesky.plans.count([det], num=3), lambda name, doc: docs.append(name))
    assert docs.count("event") == 3
    stub.close()


def test_uninstall_gives_bluesky_its_own_plan_back(installed):
    plan_stacks.uninstall()
    stub = bps.trigger_and_read([det])
    assert type(stub) is bluesky.utils.Plan
    stub.close()


def test_a_session_run_engine_installs_it(tmp_path):
    """The session's RunEngine (``run_engine``, on a catalog of its own) installs it."""
    from simbeamline.catalog.index import RunIndex
    from simbeamline.session import run_engine

    plan_stacks.uninstall()
    try:
        RE, _ = run_engine(RunIndex(tmp_path), progress=False, table_and_plots=False)
        assert bluesky.utils.Plan is plan_stacks.LazyStackPlan
        RE(bluesky.plans.count([det], num=2))
    finally:
        plan_stacks.uninstall()
