"""The `simbeamline` command: run the beamline's IOCs, a demo session, IPython, exports.

    simbeamline start | stop | restart | status     the IOCs, under supervisord
    simbeamline class start|stop|status NAME N      N student beamlines at once
    simbeamline start --time-scale 0.01             ... on a clock 100 times faster
    simbeamline demo [--out DIR]                    a short session, PNGs and run uids
    simbeamline ipython [--time-scale S]            the beamline profile (starts the IOCs)
    simbeamline export RUN --format tiff ...        export a run from the catalog
    simbeamline fault list | set | clear | run      scripted faults (beam dump, ...)

Options before the sub-command choose which beamline (default: the environment's
SIMBEAMLINE_* variables, else `sim:`/`ad:` on loopback).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
from pathlib import Path

from .catalog.tiled_cli import add_tiled_option, apply_tiled_option
from .control import classroom, launcher
from .control.config import BeamlineConfig, check_prefix
from .control.faults import FaultClient
from simbeamline_iocs.clock import parse_time_scale

#: Sub-commands implemented in other modules: name -> (module, function(argv) -> int, help).
DELEGATED = {
    "demo": ("simbeamline.demo", "main", "run a short demo session; write PNGs and print run uids"),
    "ipython": ("simbeamline.session", "ipython_main", "open IPython with the beamline profile"),
    "export": ("simbeamline.export.cli", "main", "export a run as TIFF, HDF5 or EDF files"),
    "fault": ("simbeamline.control.faults", "main",
              "inject, clear, list or replay faults (beam dump, stuck shutter, ...)"),
    "catalog": ("simbeamline.catalog.cli", "main", "check (--repair, --tiled) the run catalog, sync it into Tiled"),
}


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1024 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1024-65535")
    return port


def _prefix(text: str) -> str:
    try:
        return check_prefix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def time_scale_argument(parser: argparse.ArgumentParser) -> None:
    """``--time-scale S``: the simulation clock's scale (shared by start and ipython)."""
    def scale(text: str) -> float:
        try:
            return parse_time_scale(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parser.add_argument("--time-scale", type=scale, metavar="S",
                        help="simulation time scale: 1 real time (default), 0.01 a hundred "
                             "times faster (exposures count as at 1); applied to running "
                             "IOCs too")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simbeamline", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n  simbeamline start\n  simbeamline status\n  caproto-get sim:current",
    )
    parser.add_argument("--prefix", type=_prefix, help="beamline IOC prefix (default sim:)")
    parser.add_argument("--ad-prefix", type=_prefix, help="ADSimDetector prefix (default ad:)")
    parser.add_argument("--port", type=_port, help="Channel Access server port (default 5064)")
    parser.add_argument("--run-dir", type=Path, help="supervisord state and logs")
    parser.add_argument("--data-dir", type=Path, help="catalog and frame files")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = sub.add_parser("start", help="start the IOCs; return when every one answers")
    start.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    time_scale_argument(start)
    add_tiled_option(start)
    sub.add_parser("stop", help="stop the IOCs and supervisord")
    restart = sub.add_parser("restart", help="stop, then start")
    restart.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    time_scale_argument(restart)
    add_tiled_option(restart)
    sub.add_parser("status", help="show each IOC's state; exit 1 unless all answer")
    group = sub.add_parser(
        "class", help="start, stop or show N student beamlines at once",
        description="Student n of class NAME: CA port BASE + 2(n-1), prefixes NAMEnn: and "
                    "NAMEnnad:, directories ROOT/NAME/nn/run and .../data, its environment "
                    "in ROOT/NAME/nn/env.sh. All students are started (stopped) at once.",
        epilog="Example: simbeamline class start xrd 30; then each student: "
               "source <root>/xrd/NN/env.sh && simbeamline ipython")
    group.add_argument("action", choices=("start", "stop", "status"))
    group.add_argument("name", help="class name (letters, digits, _ -), part of every prefix")
    group.add_argument("students", type=int, help="number of students (1 to N)")
    group.add_argument("--base-port", type=_port, default=classroom.BASE_PORT,
                       help=f"CA port of student 1 (default {classroom.BASE_PORT}; student n: + 2(n-1))")
    group.add_argument("--root", type=Path, help="run and data directories "
                       f"(default {classroom.default_root()})")
    group.add_argument("--timeout", type=float, default=classroom.TIMEOUT,
                       help=f"seconds each beamline may take to answer (default {classroom.TIMEOUT:.0f})")
    for name, (_, _, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def config_from_args(args: argparse.Namespace) -> BeamlineConfig:
    """The environment's configuration with the command-line options applied."""
    config = BeamlineConfig.from_env()
    overrides = {
        "prefix": args.prefix, "ad_prefix": args.ad_prefix, "ca_port": args.port,
        "run_dir": args.run_dir, "data_dir": args.data_dir,
        "time_scale": getattr(args, "time_scale", None),
    }
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def print_status(config: BeamlineConfig) -> bool:
    """Print one line per IOC; return True when every IOC answers."""
    states = launcher.status(config)
    for name, s in states.items():
        answer = "answers" if s["answers"] else "no answer"
        pid = f"pid {s['pid']}" if s["pid"] else ""
        print(f"{name:<16} {s['state']:<12} {pid:<11} {s['address']:<17} {s['ready_pv']}: {answer}")
    return all(s["answers"] for s in states.values())


def class_main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``simbeamline class start|stop|status NAME N``: one line per student."""
    try:
        configs = classroom.class_configs(args.name, args.students, base_port=args.base_port,
                                          root=args.root)
    except ValueError as exc:
        parser.error(str(exc))
    ok = True
    if args.action == "status":
        for n, (config, states) in enumerate(zip(configs, classroom.status(configs)), 1):
            answers = not isinstance(states, Exception) and all(s["answers"] for s in states.values())
            ok &= answers
            print(f"student {n:02d}  {'answers' if answers else 'DOWN':<9} {classroom.describe(config)}")
        return 0 if ok else 1
    act = classroom.start if args.action == "start" else classroom.stop
    results = act(configs, args.timeout) if args.action == "start" else act(configs)
    words = {"start": ("started", "already running"), "stop": ("stopped", "was not running")}
    for n, (config, result) in enumerate(zip(configs, results), 1):
        if isinstance(result, Exception):
            ok = False
            print(f"student {n:02d}  FAILED: {result}", file=sys.stderr)
        else:
            print(f"student {n:02d}  {words[args.action][0 if result else 1]:<15} "
                  f"{classroom.describe(config)}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command not in DELEGATED and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    # sub-commands run in this process and in its children: export the choice
    os.environ.update(config.as_env())
    apply_tiled_option(args, parser)
    try:
        if args.command == "class":
            return class_main(args, parser)
        if args.command in DELEGATED:
            module, function, _ = DELEGATED[args.command]
            return getattr(importlib.import_module(module), function)(rest)
        if args.command in ("start", "restart"):
            if args.command == "restart":
                launcher.stop(config)
            started = launcher.start(config, timeout=args.timeout)
            print("simbeamline: IOCs started" if started else "simbeamline: already running")
            if args.time_scale is not None and not started:
                FaultClient(config).set_time_scale(args.time_scale)
                print(f"simbeamline: time scale {args.time_scale:g}")
            print_status(config)
            return 0
        if args.command == "stop":
            stopped = launcher.stop(config)
            print("simbeamline: stopped" if stopped else "simbeamline: was not running")
            return 0
        if args.command == "status":
            return 0 if print_status(config) else 1
    except launcher.LauncherError as exc:
        print(f"simbeamline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
