"""``simbeamline catalog sync|check --tiled``: the Tiled catalog beside the embedded one.

    simbeamline catalog sync              copy every run missing from Tiled (or only
                                          partly there) from the embedded catalog
    simbeamline catalog check --tiled     per run: same documents and frame values?

Also the ``--tiled`` option of ``simbeamline start|restart``. Light at import: the
command line imports this module on every call.
"""

from __future__ import annotations

import argparse
import os
import sys

TILED_HELP = ("catalog service: off, postgres (a private PostgreSQL and Tiled), sqlite "
              "(Tiled on SQLite), postgresql://... (Tiled on that PostgreSQL) or "
              "http(s)://... (an existing Tiled; writer key in SIMBEAMLINE_TILED_API_KEY); "
              "default SIMBEAMLINE_TILED, else off")


def add_tiled_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiled", metavar="SERVICE", help=TILED_HELP)


def apply_tiled_option(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Check ``--tiled`` (or SIMBEAMLINE_TILED) and export it for the launcher's children."""
    from ..control.catalog_service import CatalogService, CatalogServiceError

    value = getattr(args, "tiled", None)
    if value is None and args.command not in ("start", "restart"):
        return
    try:
        service = CatalogService.parse(value if value is not None else os.environ.get("SIMBEAMLINE_TILED"))
    except CatalogServiceError as err:
        parser.error(str(err))
    os.environ.update(service.as_env())


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="simbeamline catalog",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sync = sub.add_parser("sync", help="copy runs missing from Tiled (idempotent)")
    sync.add_argument("--quiet", action="store_true", help="print only the summary")
    check = sub.add_parser("check", help="compare Tiled with the embedded catalog, run by run")
    check.add_argument("--tiled", action="store_true", required=True,
                       help="compare with the Tiled server (documents and frame values)")
    for p in (sync, check):
        p.add_argument("--scan-id", type=int, action="append", dest="scan_ids",
                       help="only this scan_id (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    from ..control.config import BeamlineConfig
    from . import tiled_sync

    config = BeamlineConfig.from_env()
    try:
        if args.action == "sync":
            report = tiled_sync.sync(config, scan_ids=args.scan_ids,
                                     progress=None if args.quiet else print)
            print(f"simbeamline catalog sync: {report.copied} copied, {report.replaced} "
                  f"replaced (partial in Tiled), {report.present} already there")
            return 0
        results = tiled_sync.check(config, scan_ids=args.scan_ids)
    except tiled_sync.SyncError as err:
        print(f"simbeamline catalog: {err}", file=sys.stderr)
        return 2
    bad = 0
    for uid, (scan_id, problems) in results.items():
        state = "ok" if not problems else "DIFFERS: " + "; ".join(problems)
        bad += bool(problems)
        print(f"{uid[:8]}  scan {scan_id:<5} {state}")
    print(f"simbeamline catalog check: {len(results) - bad} of {len(results)} runs the same in Tiled")
    return 1 if bad else 0


def sync_main(argv: list[str]) -> int:
    """``simbeamline catalog sync [--quiet] [--scan-id N]``."""
    return main(["sync", *argv])


def check_main(argv: list[str]) -> int:
    """``simbeamline catalog check --tiled [--scan-id N]``."""
    return main(["check", *argv])
