"""``simbeamline fault``: the command's parsing (plain functions) and the command run
as a user runs it, against the test beamline's IOC."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from simbeamline.control.faults import FaultClient, FaultError, Put, clear_puts, load_schedule, set_puts


def test_fault_words_become_pv_writes():
    assert set_puts("beam_dump", duration=10) == [Put("fault:beam_dump:duration", 10),
                                                  Put("fault:beam_dump", 1)]
    assert set_puts("stall", ["samx"]) == [Put("fault:m:samx:stall", 1)]
    assert set_puts("limit", ["dotx", "low"]) == [Put("fault:m:dotx:limit", 2)]
    assert set_puts("hang", ["adsim"]) == [Put("fault:adsim:hang", 1)]
    assert set_puts("freeze", ["2.5"]) == [Put("fault:freeze", 2.5)]
    assert clear_puts("limit", ["dotx"]) == [Put("fault:m:dotx:limit", 0)]
    assert Put("fault:shutter_stuck", 0) in clear_puts("all")


@pytest.mark.parametrize("name, words, problem", [
    ("stall", [], "needs one of spotx"),
    ("stall", ["tth"], "got 'tth'"),
    ("limit", ["samx", "up"], "needs one of high, low"),
    ("hang", ["spot", "now"], "unexpected 'now'"),
    ("freeze", ["-1"], "positive number of seconds"),
    ("melt", [], "unknown fault 'melt'"),
])
def test_bad_fault_words_are_named(name, words, problem):
    with pytest.raises(FaultError, match=problem):
        set_puts(name, words)


def test_schedule_steps_are_ordered_and_timed_faults_cleared(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[[step]]\nat = 8\nset = "stall samx"\nfor = 4\n'
                    '[[step]]\nat = 5\nset = "beam_dump"\nfor = 10\n')
    steps = load_schedule(path)
    assert [(s.at, s.text) for s in steps] == [
        (5.0, "set beam_dump"), (8.0, "set stall samx"), (12.0, "clear stall samx")]
    assert steps[0].puts[0] == Put("fault:beam_dump:duration", 10.0)   # the IOC ends it


@pytest.mark.parametrize("text, problem", [
    ('[[step]]\nset = "beam_dump"\n', "'at'"),
    ('[[step]]\nat = 1\n', "exactly one of 'set' or 'clear'"),
    ('[[step]]\nat = 1\nset = "stall"\n', "step 1: fault 'stall' needs"),
    ('at = [', "not valid TOML"),
    ('', "no \\[\\[step\\]\\] entries"),
])
def test_bad_schedules_are_named(tmp_path, text, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(FaultError, match=problem):
        load_schedule(path)


def fault_command(beamline, *args):
    return subprocess.run([sys.executable, "-m", "simbeamline.cli", "fault", *args],
                          env={**os.environ, **beamline.as_env()}, capture_output=True,
                          text=True, timeout=120)


def test_fault_command_sets_lists_and_clears(beamline):
    pv = f"{beamline.prefix}fault:m:samy:limit"
    result = fault_command(beamline, "set", "limit", "samy", "low")
    assert result.returncode == 0, result.stderr
    try:
        assert FaultClient(beamline).read("fault:m:samy:limit") == "Low"
        listing = fault_command(beamline, "list")
        assert listing.returncode == 0, listing.stderr
        assert any(line.split()[:2] == [pv, "Low"] for line in listing.stdout.splitlines())
        assert f"{beamline.prefix}time_scale" in listing.stdout
    finally:
        result = fault_command(beamline, "clear", "all")
    assert result.returncode == 0, result.stderr
    assert FaultClient(beamline).read("fault:m:samy:limit") == "None"


def test_fault_command_refuses_bad_input_with_what_to_do(beamline, tmp_path):
    result = fault_command(beamline, "set", "stall", "tth")
    assert result.returncode == 2
    assert "needs one of spotx" in result.stderr
    result = fault_command(beamline, "run", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "cannot read the schedule" in result.stderr
