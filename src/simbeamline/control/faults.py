"""``simbeamline fault``: inject, clear, list and replay the beamline's scripted faults.

    simbeamline fault list                     every fault PV and its state
    simbeamline fault set beam_dump [--for S]  the beam is lost (for S seconds, else
                                               until cleared)
    simbeamline fault set topup_paused         no top-up injections
    simbeamline fault set shutter_stuck        PSS interlock: shutter commands ignored
    simbeamline fault set stall MOTOR          MOTOR stops short of its targets
    simbeamline fault set limit MOTOR high|low that limit switch is hit
    simbeamline fault set hang CAMERA          spot, dot or adsim never finishes
    simbeamline fault set freeze SECONDS       the beamline IOC stops answering
    simbeamline fault clear NAME [MOTOR|CAMERA] | all
    simbeamline fault run SCHEDULE.toml        replay a timed schedule of faults

Times are seconds of the simulation clock: at time scale 0.01 a 10 s beam dump
lasts 0.1 s of wall time. The faults themselves are PVs of the beamline IOC under
``{prefix}fault:`` (see ``iocs/faults.py``); this module only writes them.

A schedule file (TOML) lists steps; ``at`` is seconds after the replay starts,
``for`` (optional) how long the fault lasts before it is cleared::

    [[step]]
    at = 5
    set = "beam_dump"
    for = 10

    [[step]]
    at = 20
    set = "stall samx"

    [[step]]
    at = 40
    clear = "all"
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import tomllib
from pathlib import Path

from simbeamline_iocs.clock import parse_time_scale

from .config import BeamlineConfig

MOTORS = ("spotx", "spoty", "dotx", "doty", "samx", "samy")
CAMERAS = ("spot", "dot", "adsim")
SWITCHES = ("beam_dump", "topup_paused", "shutter_stuck")
NAMES = (*SWITCHES, "stall", "limit", "hang", "freeze")


class FaultError(ValueError):
    """A fault command or schedule that cannot be carried out (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Put:
    """One write to a beamline PV: ``{prefix}{suffix}`` = *value*."""

    suffix: str
    value: object


def _target(name: str, words: list[str], choices: tuple[str, ...]) -> str:
    if not words or words[0] not in choices:
        raise FaultError(f"fault {name!r} needs one of {', '.join(choices)}"
                         + (f" (got {words[0]!r})" if words else ""))
    return words[0]


def set_puts(name: str, words: list[str] = (), duration: float | None = None) -> list[Put]:
    """The PV writes that inject fault *name* with its arguments *words*."""
    words = list(words)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise FaultError(f"fault duration {duration!r} must be a positive number of seconds")
    if name == "beam_dump":
        _no_more(name, words, 0)
        return [Put("fault:beam_dump:duration", duration or 0.0), Put("fault:beam_dump", 1)]
    if name in SWITCHES:
        _no_more(name, words, 0)
        return [Put(f"fault:{name}", 1)]
    if name == "stall":
        motor = _target(name, words, MOTORS)
        _no_more(name, words, 1)
        return [Put(f"fault:m:{motor}:stall", 1)]
    if name == "limit":
        motor = _target(name, words, MOTORS)
        side = _target("limit " + motor, words[1:], ("high", "low"))
        _no_more(name, words, 2)
        return [Put(f"fault:m:{motor}:limit", {"high": 1, "low": 2}[side])]
    if name == "hang":
        camera = _target(name, words, CAMERAS)
        _no_more(name, words, 1)
        return [Put(f"fault:{camera}:hang", 1)]
    if name == "freeze":
        try:
            seconds = float(words[0]) if words else duration
        except ValueError:
            raise FaultError(f"freeze needs a number of seconds, got {words[0]!r}") from None
        if seconds is None or not (math.isfinite(seconds) and seconds > 0):
            raise FaultError("freeze needs a positive number of seconds: "
                             "'simbeamline fault set freeze 5'")
        return [Put("fault:freeze", seconds)]
    raise FaultError(f"unknown fault {name!r}: use one of {', '.join(NAMES)}")


def clear_puts(name: str, words: list[str] = ()) -> list[Put]:
    """The PV writes that clear fault *name* (``all``: every fault)."""
    words = list(words)
    if name == "all":
        return [put for suffix, _ in all_fault_pvs() for put in [Put(suffix, 0)]
                if suffix != "fault:freeze"]
    if name == "freeze":
        raise FaultError("a freeze cannot be cleared: the IOC answers again by itself")
    if name == "limit" and len(words) == 1:
        words = [*words, "high"]        # either switch: clearing needs only the motor
    return [Put(put.suffix, 0) for put in set_puts(name, words)
            if not put.suffix.endswith(":duration")]


def all_fault_pvs() -> list[tuple[str, str]]:
    """(PV suffix, description) of every fault, for ``fault list``."""
    rows = [("fault:beam_dump", "beam dump"),
            ("fault:beam_dump:duration", "seconds a beam dump lasts (0: until cleared)"),
            ("fault:topup_paused", "top-up paused"),
            ("fault:shutter_stuck", "shutter stuck (PSS interlock)")]
    rows += [(f"fault:m:{m}:{kind}", f"{m} {text}") for m in MOTORS
             for kind, text in (("stall", "stalls"), ("limit", "limit switch hit"))]
    rows += [(f"fault:{c}:hang", f"{c} never finishes an acquisition") for c in CAMERAS]
    rows.append(("fault:freeze", "seconds the IOC stops answering (0: answering)"))
    return rows


def _no_more(name: str, words: list[str], count: int) -> None:
    if len(words) > count:
        raise FaultError(f"fault {name!r}: unexpected {' '.join(words[count:])!r}")


# --- schedules ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Step:
    """At *at* seconds (simulation clock) after the start, write *puts*."""

    at: float
    puts: tuple[Put, ...]
    text: str


def load_schedule(path: Path) -> list[Step]:
    """The timed writes of a schedule file, in order; FaultError naming any bad step."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise FaultError(f"cannot read the schedule {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FaultError(f"schedule {path} is not valid TOML: {exc}") from None
    steps = []
    for number, entry in enumerate(data.get("step", []), 1):
        where = f"{path}, step {number}"
        try:
            at = float(entry["at"])
        except (KeyError, TypeError, ValueError):
            raise FaultError(f"{where}: 'at' (seconds from the start) is missing or "
                             "not a number") from None
        if not (math.isfinite(at) and at >= 0):
            raise FaultError(f"{where}: 'at' = {at} must be 0 or more seconds")
        if ("set" in entry) == ("clear" in entry):
            raise FaultError(f"{where}: give exactly one of 'set' or 'clear'")
        words = str(entry.get("set") or entry.get("clear")).split()
        duration = entry.get("for")
        try:
            if "set" in entry:
                duration = None if duration is None else float(duration)
                steps.append(Step(at, tuple(set_puts(words[0], words[1:], duration)),
                                  f"set {' '.join(words)}"))
                if duration is not None and words[0] not in ("beam_dump", "freeze"):
                    steps.append(Step(at + duration, tuple(clear_puts(words[0], words[1:])),
                                      f"clear {' '.join(words)}"))
            else:
                steps.append(Step(at, tuple(clear_puts(words[0], words[1:])),
                                  f"clear {' '.join(words)}"))
        except (FaultError, ValueError) as exc:
            raise FaultError(f"{where}: {exc}") from None
    if not steps:
        raise FaultError(f"schedule {path} has no [[step]] entries")
    return sorted(steps, key=lambda step: step.at)


# --- Channel Access -------------------------------------------------------------------

class FaultClient:
    """Writes and reads the fault PVs of the beamline *config* describes."""

    def __init__(self, config: BeamlineConfig, timeout: float = 5.0):
        from ..control import ca_env

        self.config = ca_env.apply_client_env(config)
        self.timeout = timeout

    def name(self, suffix: str) -> str:
        return f"{self.config.prefix}{suffix}"

    def write(self, puts) -> None:
        from caproto.sync.client import write

        for put in puts:
            write(self.name(put.suffix), put.value, notify=True, timeout=self.timeout,
                  repeater=False)

    def read(self, suffix: str):
        from caproto.sync.client import read

        response = read(self.name(suffix), data_type="control", timeout=self.timeout,
                        repeater=False)
        value = response.data[0]
        strings = getattr(response.metadata, "enum_strings", None)
        if strings:
            return strings[int(value)].decode()
        return float(value)

    def time_scale(self) -> float:
        return self.read("time_scale")

    def set_time_scale(self, scale: float) -> None:
        self.write([Put("time_scale", parse_time_scale(scale))])

    def replay(self, steps: list[Step], log=print) -> None:
        """Carry out *steps* at their times (simulation clock at the present scale)."""
        scale = self.time_scale()
        log(f"replaying {len(steps)} steps at time scale {scale:g}", flush=True)
        start = time.monotonic()
        for step in steps:
            delay = start + step.at * scale - time.monotonic()
            if delay > 0:
                time.sleep(delay)   # waiting for the schedule's next moment
            self.write(step.puts)
            log(f"t={step.at:g} s: {step.text}", flush=True)


# --- command line ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simbeamline fault", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="every fault PV and its state")
    inject = sub.add_parser("set", help="inject a fault")
    inject.add_argument("name", choices=NAMES)
    inject.add_argument("words", nargs="*", help="MOTOR, CAMERA, high|low or SECONDS")
    inject.add_argument("--for", dest="duration", type=float,
                        help="seconds the beam dump lasts (default: until cleared)")
    clear = sub.add_parser("clear", help="clear a fault (or all)")
    clear.add_argument("name", choices=(*NAMES, "all"))
    clear.add_argument("words", nargs="*", help="MOTOR or CAMERA")
    run = sub.add_parser("run", help="replay a schedule file (TOML)")
    run.add_argument("schedule", type=Path)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    config = BeamlineConfig.from_env()
    try:
        if args.action == "set":
            if args.duration is not None and args.name not in ("beam_dump",):
                raise FaultError("--for applies to beam_dump only; clear other faults "
                                 "with 'simbeamline fault clear', or use a schedule file")
            puts = set_puts(args.name, args.words, args.duration)
        elif args.action == "clear":
            puts = clear_puts(args.name, args.words)
        elif args.action == "run":
            steps = load_schedule(args.schedule)
        client = FaultClient(config)
        if args.action == "list":
            for suffix, text in all_fault_pvs():
                print(f"{client.name(suffix):<32} {client.read(suffix)!s:<8} {text}")
            print(f"{client.name('time_scale'):<32} {client.time_scale():<8g} time scale")
        elif args.action == "run":
            client.replay(steps)
        else:
            client.write(puts)
    except FaultError as exc:
        print(f"simbeamline fault: {exc}", file=sys.stderr)
        return 2
    except (TimeoutError, OSError) as exc:
        print(f"simbeamline fault: the beamline IOC ({config.prefix}) does not answer "
              f"({exc}); start it with 'simbeamline start'", file=sys.stderr)
        return 1
    return 0
