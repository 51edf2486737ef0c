"""A session's start-up and memory, with the libraries imported, the RunEngine built,
the garbage collector run and the catalog opened as they ship (baseline), and as the
session does it: ophyd and databroker imported without setuptools
(:mod:`simbeamline.lean_imports`), a RunEngine that records ophyd-async's version
without importing it (``simbeamline.session.new_run_engine``), the session built with
the cyclic garbage collector held off, then frozen (:mod:`simbeamline_iocs.heap`), and
the catalog (databroker) opened when ``db`` or ``cat`` is first used
(:mod:`simbeamline.catalog.on_first_use`). Two cases between show the last two parts
alone: "catalog at start" is the session with its ``db`` used at once (what the
session cost before, and what a first ``db[-1]`` adds); "collector" is that with the
collector as Python runs it.

    python benchmarks/bench_session_start.py --repeat 5

With ``--adsim``, the session as the profile builds it while the ADSimDetector IOC
answers (with ``adsimdet``), two ways: "adsimdet together", as the session does it,
every lazy signal of the detector made at once (``connect.make_lazy_signals``), and
"adsimdet one by one", ophyd's way, each made and waited for in turn as the first
walk over it reaches it; beside the session without it.

Each case is a fresh interpreter that imports the session and runs ``build_session``
(no ADSim, table and plots on, as the classroom's students do) against the running
beamline of the environment's configuration; the cases alternate. Printed: the
median wall time from the first import to the session built, and the peak resident
size, for each, and their ratios. The IOCs must be running (``simbeamline start``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CHILD = r"""
import contextlib, resource, sys, time
t = time.perf_counter()
if sys.argv[1] == "shipped":
    import ophyd                   # epicscorelibs.path through the real setuptools_dso
    import databroker              # intake's distutils through setuptools' own
import simbeamline.session as session
if sys.argv[1] == "shipped":
    from bluesky import RunEngine
    session.new_run_engine = lambda: RunEngine({})
if sys.argv[1] in ("shipped", "collector"):
    session.hold_collector = contextlib.nullcontext
if sys.argv[1] == "adsimdet one by one":
    import simbeamline.devices.adsimdet as adsimdet
    adsimdet.make_lazy_signals = lambda device: None
ns = session.build_session(adsim=sys.argv[1].startswith("adsimdet"), table_and_plots=True)
if sys.argv[1] in ("shipped", "collector", "catalog at start"):
    ns["db"].__wrapped__    # the catalog opened (databroker imported) at start
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--adsim", action="store_true",
                        help="sessions with adsimdet, its signals made together or one by one")
    args = parser.parse_args()
    cases = (("adsimdet one by one", "adsimdet together", "session") if args.adsim
             else ("shipped", "collector", "catalog at start", "session"))
    results: dict[str, list[tuple[float, float]]] = {case: [] for case in cases}
    for n in range(args.repeat):
        for case in results:
            out = subprocess.run([sys.executable, "-c", CHILD, case], capture_output=True,
                                 text=True, timeout=300, check=True).stdout.split()
            results[case].append((float(out[-2]), float(out[-1])))
            print(f"  {n + 1}/{args.repeat} {case}: {out[-2][:5]} s, {out[-1][:5]} MB",
                  flush=True)
    med = {case: (statistics.median(t for t, _ in r), statistics.median(m for _, m in r))
           for case, r in results.items()}
    for case, (seconds, mb) in med.items():
        print(f"{case:19s}: session built in {seconds:.2f} s, peak RSS {mb:.0f} MB")
    ratios = ((("adsimdet together", "adsimdet one by one"), ("adsimdet together", "session"))
              if args.adsim else (("session", "shipped"), ("catalog at start", "collector"),
                                  ("session", "catalog at start")))
    for case, baseline in ratios:
        print(f"ratio {case} / {baseline}: time {med[case][0] / med[baseline][0]:.2f}x, "
              f"memory {med[case][1] / med[baseline][1]:.2f}x")


if __name__ == "__main__":
    main()
