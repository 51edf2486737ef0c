"""``simbeamline catalog COMMAND``: the catalog's maintenance commands.

Each command is a module's ``main(argv)``, imported only when run (the command line
stays light); add one with one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib

#: command -> (module, function, help)
COMMANDS = {
    "check": ("simbeamline.catalog.check", "main",
              "read every run file, report damaged/empty/incomplete ones; --repair mends them; "
              "--tiled compares with the Tiled server instead"),
    "sync": ("simbeamline.catalog.tiled_cli", "sync_main",
             "copy runs missing from the Tiled server (idempotent; migrates a msgpack catalog)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simbeamline catalog",
                                     description="Maintain the run catalog.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, _, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module, function, _ = COMMANDS[args.command]
    return getattr(importlib.import_module(module), function)(rest)
