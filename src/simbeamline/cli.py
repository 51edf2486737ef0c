"""The `simbeamline` command: run the beamline's IOCs, a demo session, IPython, exports.

    simbeamline start | stop | restart | status     the IOCs, under supervisord
    simbeamline demo [--out DIR]                    a short session, PNGs and run uids
    simbeamline ipython                             the beamline profile (starts the IOCs)
    simbeamline export RUN --format tiff ...        export a run from the catalog

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
from .control import launcher
from .control.config import BeamlineConfig, check_prefix

#: Sub-commands implemented in other modules: name -> (module, function(argv) -> int, help).
DELEGATED = {
    "demo": ("simbeamline.demo", "main", "run a short demo session; write PNGs and print run uids"),
    "ipython": ("simbeamline.session", "ipython_main", "open IPython with the beamline profile"),
    "export": ("simbeamline.export.cli", "main", "export a run as TIFF, HDF5 or EDF files"),
    "catalog": ("simbeamline.catalog.tiled_cli", "main",
                "sync runs into Tiled, check Tiled against the embedded catalog"),
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
    add_tiled_option(start)
    sub.add_parser("stop", help="stop the IOCs and supervisord")
    restart = sub.add_parser("restart", help="stop, then start")
    restart.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    add_tiled_option(restart)
    sub.add_parser("status", help="show each IOC's state; exit 1 unless all answer")
    for name, (_, _, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def config_from_args(args: argparse.Namespace) -> BeamlineConfig:
    """The environment's configuration with the command-line options applied."""
    config = BeamlineConfig.from_env()
    overrides = {
        "prefix": args.prefix, "ad_prefix": args.ad_prefix, "ca_port": args.port,
        "run_dir": args.run_dir, "data_dir": args.data_dir,
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
        if args.command in DELEGATED:
            module, function, _ = DELEGATED[args.command]
            return getattr(importlib.import_module(module), function)(rest)
        if args.command in ("start", "restart"):
            if args.command == "restart":
                launcher.stop(config)
            started = launcher.start(config, timeout=args.timeout)
            print("simbeamline: IOCs started" if started else "simbeamline: already running")
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
