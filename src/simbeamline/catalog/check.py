"""``simbeamline catalog check [--repair]``: read every run file, report, repair.

Without ``--repair`` it reads each run file of the catalog whole and reports those that
are damaged (bytes that do not decode), empty, or incomplete (cut short, or left without
a stop document by a session that died), and scan_ids shared by several runs. Exit
status 1 when any file has a problem.

With ``--repair`` it also mends each such file, keeping the original bytes:

- the original is first copied to ``<catalog>/quarantine/<file>.<UTC time>``;
- every document that still decodes is kept (reading resumes after bad bytes), a lost
  start document is put back from the catalog's index, and a run whose end is missing
  or whose documents were lost gets a stop document with ``exit_status`` ``'fail'`` and a
  reason saying what was lost: it is never shown as a clean run;
- a file with nothing to recover (empty, or no start document anywhere) is moved to the
  quarantine folder instead;
- the index is rebuilt from the files.
No databroker import: it runs in a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

from . import runfile
from .index import RunIndex, sync

QUARANTINE = "quarantine"
#: The states ``check`` reports as problems.
PROBLEMS = (runfile.DAMAGED, runfile.EMPTY, runfile.INCOMPLETE)


def quarantine_path(directory: Path, name: str) -> Path:
    """Where the original bytes of *name* are kept (a new name each time)."""
    folder = directory / QUARANTINE
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{name}.{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{name}.{stamp}-{n}"
    return path


def _closing_stop(start: dict, docs: list, original_stop: dict | None, why: str) -> dict:
    """A stop document for a repaired run: exit_status 'fail', the reason saying what was lost."""
    streams = {doc["uid"]: doc.get("name", "primary") for name, doc in docs if name == "descriptor"}
    counts: Counter = Counter()
    for name, doc in docs:
        if name == "event_page":
            counts[streams.get(doc["descriptor"], "?")] += len(doc["seq_num"])
        elif name == "event":
            counts[streams.get(doc["descriptor"], "?")] += 1
    if original_stop:
        why += (f"; the run had ended with exit_status {original_stop.get('exit_status')!r}"
                + (f" ({original_stop['reason']})" if original_stop.get("reason") else ""))
    return {
        "uid": (original_stop or {}).get("uid") or str(uuid.uuid4()),
        "time": (original_stop or {}).get("time") or time.time(),
        "run_start": start["uid"],
        "exit_status": "fail",
        "reason": why,
        "num_events": dict(counts),
    }


def repair(index: RunIndex, report: runfile.FileReport) -> str:
    """Repair or quarantine one problem file (see the module docstring); say what was done."""
    path = report.path
    known = index.by_file(path.name)
    docs, lost = ([], []) if report.state == runfile.EMPTY else runfile.recover_documents(path)
    start = next((doc for name, doc in docs if name == "start"), None)
    restored = ""
    if start is None and known is not None and known.start is not None:
        start, restored = known.start, "; its start document was restored from the index"
    if start is None:
        kept = quarantine_path(index.directory, path.name)
        os.replace(path, kept)
        index.forget(path.name)
        return f"quarantined {path} ({report.problem}): nothing to recover; moved to {kept}"
    body = [(name, doc) for name, doc in docs if name not in ("start", "stop")]
    stop = next((doc for name, doc in docs if name == "stop"), None)
    lost_bytes = sum(b - a for a, b in lost)
    kept = quarantine_path(index.directory, path.name)
    if stop is None or lost:
        original = stop or (known.stop if known is not None else None)
        what = (f"{lost_bytes} bytes at {', '.join(f'{a}-{b}' for a, b in lost)} could not be "
                "read (the documents in them are lost)" if lost
                else "the run file ended without a stop document")
        stop = _closing_stop(start, body, original,
                             f"repaired by `simbeamline catalog check --repair`: {what}; "
                             f"original file kept as {kept}")
    temp = path.with_name(f".{path.name}.repair")
    with open(temp, "wb") as file:
        for name, doc in [("start", start), *body, ("stop", stop)]:
            file.write(runfile.encode(name, doc))
    shutil.copy2(path, kept)
    os.replace(temp, path)
    index.record_report(runfile.scan(path))
    return (f"repaired {path} ({report.problem}): kept {len(body) + 2} documents"
            + (f", lost {lost_bytes} bytes" if lost else "") + restored
            + f"; closed with exit_status {stop['exit_status']!r}; original bytes kept in {kept}")


def check(directory: Path, repair_files: bool = False, out=print) -> int:
    """Check (and with *repair_files*, repair) the catalog in *directory*; return the
    number of problem files left."""
    if not directory.is_dir():
        out(f"no catalog at {directory} (no run recorded there yet)")
        return 0
    index = RunIndex(directory)
    reports = sync(index, full=True)
    problems = [r for r in reports if r.state in PROBLEMS]
    left = 0
    for report in problems:
        if repair_files:
            out(repair(index, report))
        else:
            out(f"{report.state}: {report.path}: {report.problem}")
            left += 1
    states = Counter(r.state for r in reports)
    out(f"{len(reports)} run files in {directory}: "
        + ", ".join(f"{n} {state}" for state, n in sorted(states.items())))
    for scan_id, count in index.shared_scan_ids():
        runs = index.by_scan_id(scan_id)
        out(f"scan_id {scan_id} is shared by {count} runs (give a uid to read one):\n"
            + "\n".join(f"  {row.describe()}" for row in runs))
    if problems and not repair_files:
        out("run `simbeamline catalog check --repair` to repair them (original bytes kept "
            f"in {directory / QUARANTINE})")
    return left


def main(argv: list[str] | None = None) -> int:
    from .paths import configured_catalog_dir

    if argv and "--tiled" in argv:   # the Tiled comparison has a command of its own
        from .tiled_cli import check_main

        return check_main(argv)
    parser = argparse.ArgumentParser(
        prog="simbeamline catalog check",
        description="Read every run file of the catalog and report damaged, empty and "
                    "incomplete ones; with --repair, repair or quarantine them (the original "
                    "bytes are kept under <catalog>/quarantine) and rebuild the index.")
    parser.add_argument("--repair", action="store_true",
                        help="repair or quarantine the files with problems")
    args = parser.parse_args(argv)
    return 1 if check(configured_catalog_dir(), args.repair) else 0
