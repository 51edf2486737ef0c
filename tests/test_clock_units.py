"""The simulation clock and the fault physics, as plain functions (no network)."""

from __future__ import annotations

import asyncio
import math

import pytest

from simbeamline_iocs import motor, ring
from simbeamline_iocs.clock import SimClock, parse_time_scale, scale_from_env


class FakeWall:
    """A wall clock the test moves by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_nominal_time_runs_one_over_scale_as_fast_as_the_wall():
    wall = FakeWall()
    clock = SimClock(0.01, wall=wall)
    start = clock.now()
    wall.t += 0.05
    assert clock.now() - start == pytest.approx(5.0)
    assert clock.wall_seconds(5.0) == pytest.approx(0.05)


def test_changing_the_scale_does_not_jump_nominal_time():
    wall = FakeWall()
    clock = SimClock(1.0, wall=wall)
    start = clock.now()
    wall.t += 2.0
    clock.set_scale(0.1)
    assert clock.now() - start == pytest.approx(2.0)
    wall.t += 1.0
    assert clock.now() - start == pytest.approx(12.0)


@pytest.mark.parametrize("bad", ["fast", "", None, 0, -1, math.nan, math.inf, 1e-5, 1000])
def test_bad_time_scales_are_refused_with_what_to_use(bad):
    with pytest.raises(ValueError, match="time scale .* (not a number|between)"):
        parse_time_scale(bad)


def test_scale_from_env_defaults_to_real_time_and_names_the_variable():
    assert scale_from_env({}) == 1.0
    assert scale_from_env({"SIMBEAMLINE_TIME_SCALE": "0.01"}) == 0.01
    with pytest.raises(ValueError, match="SIMBEAMLINE_TIME_SCALE"):
        scale_from_env({"SIMBEAMLINE_TIME_SCALE": "zero"})


def test_wait_is_scaled_and_an_event_ends_it_early():
    async def scenario():
        clock = SimClock(0.01)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await clock.wait(2.0) is False            # 2 s nominal, 20 ms wall
        waited = loop.time() - t0
        stop = asyncio.Event()
        loop.call_later(0.01, stop.set)
        assert await clock.wait(None, stop) is True      # for ever, until the event
        return waited

    waited = asyncio.run(scenario())
    assert waited < 1.0                                  # far less than 2 s


def test_a_scale_change_during_a_wait_applies_to_the_rest_of_it():
    async def scenario():
        clock = SimClock(10.0)                           # 1 s nominal would be 10 s
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, clock.set_scale, 0.001)
        t0 = loop.time()
        await clock.sleep(1.0)
        return loop.time() - t0

    assert asyncio.run(scenario()) < 5.0


# --- ring faults -----------------------------------------------------------------

def test_beam_dump_drops_the_current_to_zero_and_a_timed_one_refills():
    state = ring.RingState(last_fill=0.0)
    state.dump(100.0, 10.0)
    assert state.dumped_at(105.0)
    assert state.current(105.0, 3600.0, 600.0) == 0.0
    assert not state.dumped_at(110.0)
    assert state.current(111.0, 3600.0, 600.0) == pytest.approx(
        ring.decayed_current(ring.FILL_CURRENT, 1.0, 3600.0))
    assert state.last_fill == 110.0                      # refilled when the dump ended


def test_an_open_ended_dump_lasts_until_restored():
    state = ring.RingState(last_fill=0.0)
    state.dump(10.0)
    assert state.current(1e6, 3600.0, 600.0) == 0.0
    state.restore(2e6)
    assert state.current(2e6, 3600.0, 600.0) == ring.FILL_CURRENT


def test_paused_topup_lets_the_beam_decay_past_the_period():
    state = ring.RingState(last_fill=0.0, topup_paused=True)
    assert state.current(1200.0, 3600.0, 600.0) == pytest.approx(
        ring.decayed_current(ring.FILL_CURRENT, 1200.0, 3600.0))
    state.topup_paused = False
    assert state.current(1200.0, 3600.0, 600.0) == ring.FILL_CURRENT


# --- motor faults ----------------------------------------------------------------

def test_a_stalled_move_stops_short_and_a_limit_switch_blocks_only_its_side():
    assert motor.faulted_end(0.0, 40.0, stall=False, limit_switch=None) == (40.0, None)
    assert motor.faulted_end(0.0, 40.0, stall=True, limit_switch=None) == (
        40.0 * motor.STALL_FRACTION, "stall")
    assert motor.faulted_end(5.0, 40.0, stall=False, limit_switch="high") == (5.0, "limit")
    assert motor.faulted_end(5.0, -40.0, stall=False, limit_switch="high") == (-40.0, None)
    assert motor.faulted_end(5.0, -40.0, stall=False, limit_switch="low") == (5.0, "limit")


def test_motor_status_word_problem_and_stall_bits():
    word = motor.motor_status_word(positive=True, done=True, moving=False, problem=True,
                                   stalled=True)
    assert word & (1 << 9) and word & (1 << 6) and word & (1 << 1)
    assert not motor.motor_status_word(positive=True, done=True, moving=False) & (1 << 9)


# --- configuration and command line ------------------------------------------------

def test_config_carries_the_time_scale_to_the_iocs_environment():
    from simbeamline.control.config import BeamlineConfig

    config = BeamlineConfig.from_env({"SIMBEAMLINE_TIME_SCALE": "0.01"})
    assert config.time_scale == 0.01
    assert BeamlineConfig.from_env(config.as_env()) == config
    assert BeamlineConfig.from_env({}).time_scale == 1.0
    with pytest.raises(ValueError, match="SIMBEAMLINE_TIME_SCALE"):
        BeamlineConfig.from_env({"SIMBEAMLINE_TIME_SCALE": "-1"})


def test_time_scale_flag_is_checked_by_the_command_line(capsys):
    from simbeamline import cli

    args, _ = cli.build_parser().parse_known_args(["start", "--time-scale", "0.1"])
    assert cli.config_from_args(args).time_scale == 0.1
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_known_args(["start", "--time-scale", "0"])
    assert exit_.value.code == 2
    assert "time scale" in capsys.readouterr().err
