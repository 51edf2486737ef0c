"""simbeamline_iocs.heap: a start-up built without the cyclic collector (pure logic,
in this process)."""

from __future__ import annotations

import gc

import pytest

from simbeamline_iocs.heap import hold_collector


@pytest.fixture
def collector_restored():
    """Leave the test process's collector as it found it (on, nothing frozen)."""
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable() if was_enabled else gc.disable()


def test_the_collector_is_off_in_the_block_and_on_after(collector_restored):
    gc.enable()
    with hold_collector():
        inside = gc.isenabled()
        built = [{"n": n} for n in range(10_000)]   # long-lived containers
    assert inside is False
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_a_collector_that_was_off_stays_off(collector_restored):
    gc.disable()
    with hold_collector():
        pass
    assert not gc.isenabled()


def test_a_failing_block_turns_the_collector_back_on(collector_restored):
    gc.enable()
    with pytest.raises(RuntimeError, match="build failed"):
        with hold_collector():
            raise RuntimeError("build failed")
    assert gc.isenabled()
