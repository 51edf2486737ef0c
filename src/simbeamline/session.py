"""The interactive beamline session: what the tutorials expect to find in IPython.

:func:`session_namespace` builds (once per process and configuration) ``RE``,
``bec``, ``db``, ``cat``, the devices, ``bp``, ``bps``, ``mv``, ``count``, ``np``,
``plt`` and friends. The IPython profile's startup file and both
``beamline_configuration.py`` files are the one line::

    from simbeamline.session import session_namespace; globals().update(session_namespace())

:func:`ipython_main` (``simbeamline ipython``) starts the IOCs if they are down and
opens IPython with that profile.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
from pathlib import Path

from .control import ca_env
from .devices.beamline import (BeamlineConnectFailed, BeamlineNotRunning, build_beamline,
                               how_to_start)
from .devices.ioc_loss import SessionIocs
from .catalog.paths import CatalogDirError
from .control.config import BeamlineConfig
from simbeamline_iocs.heap import hold_collector

#: The repository's IPython profile (copied into the run directory at start-up).
PROFILE_SOURCE = Path(__file__).resolve().parents[2] / "profiles" / "profile_simbeamline"
PROFILE_NAME = "simbeamline"
#: The startup line, written directly when the repository's profile folder is not there
#: (a non-editable install).
STARTUP_LINE = ("from simbeamline.session import session_namespace; "
                "globals().update(session_namespace())  # noqa: E702\n")

_sessions: dict[BeamlineConfig, dict] = {}


def new_run_engine():
    """``bluesky.RunEngine({})``, without importing ophyd-async.

    The RunEngine imports ``ophyd_async``, when it is installed, only to record its
    version in ``RE.md["versions"]``: 0.3 s and 13 MB of a session that drives no
    ophyd-async device (measured here: ``RunEngine({})`` 0.29-0.37 s against 0.01 s).
    A stand-in module holding just that version answers the import while the
    RunEngine is built, so the record is the same, and is removed at once: whoever
    imports ophyd-async afterwards gets the real package.
    """
    import types
    from importlib import metadata

    from bluesky import RunEngine

    try:
        version = metadata.version("ophyd-async")
    except metadata.PackageNotFoundError:
        version = None
    if version is None or "ophyd_async" in sys.modules:   # nothing to spare
        return RunEngine({})
    stand_in = types.ModuleType("ophyd_async")
    stand_in.__version__ = version
    sys.modules["ophyd_async"] = stand_in
    try:
        return RunEngine({})
    finally:
        if sys.modules.get("ophyd_async") is stand_in:
            del sys.modules["ophyd_async"]


def run_engine(catalog, *, progress: bool = True, table_and_plots: bool = True, config=None):
    """A RunEngine that stores every document in *catalog* (its
    :class:`~simbeamline.catalog.index.RunIndex` or writer, or its ``db`` or ``cat``) and in
    *config*'s Tiled server, if it has one (:mod:`simbeamline.catalog.tiled`), continues
    the catalog's scan_id,
    shows a LiveTable/LivePlot/grid picture (a BestEffortCallback whose redraws are
    paced so they never cost more than the plan: simbeamline.liveplots) and a
    progress bar on moves. Returns ``(RE, bec)``.

    Installs :mod:`simbeamline.plan_stacks` in this process: bluesky's plan stubs then
    format their creation stack only for the warning that needs it."""
    from bluesky.utils import ProgressBarManager

    from . import plan_stacks
    from .catalog.recording import record_runs
    from .catalog.tiled import record_runs_in_tiled
    from .liveplots import SessionCallback

    plan_stacks.install()
    RE = new_run_engine()
    record_runs(RE, catalog)
    record_runs_in_tiled(RE, config)
    bec = SessionCallback()
    if not table_and_plots:
        bec.disable_table()
        bec.disable_plots()
    RE.subscribe(bec)
    if progress:
        RE.waiting_hook = ProgressBarManager()
    return RE, bec


def _tools() -> dict:
    """The plans, plan stubs and libraries the tutorials use by their short names."""
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp
    import matplotlib.pyplot as plt
    import numpy as np
    from bluesky.plan_stubs import mv, mvr
    from bluesky.plans import count, grid_scan, rel_scan, scan, spiral_fermat

    return dict(bp=bp, bps=bps, mv=mv, mvr=mvr, count=count, scan=scan, rel_scan=rel_scan,
                grid_scan=grid_scan, spiral_fermat=spiral_fermat, np=np, plt=plt)


def build_session(config: BeamlineConfig | None = None, *, adsim: bool | None = None,
                  table_and_plots: bool = True, move_progress: bool = True,
                  suspenders: bool | None = None) -> dict:
    """Build a fresh session namespace; raises BeamlineNotRunning, BeamlineConnectFailed
    or CatalogDirError.

    *suspenders* (default: unless ``SIMBEAMLINE_SUSPENDERS=off``) installs the
    ring-current and shutter-interlock suspenders (:mod:`simbeamline.suspenders`).
    Every run records the simulation clock's ``time_scale``. Built with Python's
    cyclic garbage collector held off, then frozen (:mod:`simbeamline_iocs.heap`):
    an eighth to a fifth of the start-up was the collector walking the libraries
    and devices.
    """
    with hold_collector():
        return _build_session(config, adsim=adsim, table_and_plots=table_and_plots,
                              move_progress=move_progress, suspenders=suspenders)


def _build_session(config, *, adsim, table_and_plots, move_progress, suspenders) -> dict:
    from . import suspenders as standard

    config = ca_env.apply_client_env(config)
    # the catalog first: an unwritable catalog directory is reported before any CA work
    namespace = offline_session(config, table_and_plots=table_and_plots,
                                move_progress=move_progress)
    beamline = build_beamline(config, adsim=adsim)
    RE = namespace["RE"]
    # says once when an IOC is back after a restart; names a lost IOC in a failed run
    RE.preprocessors.append(SessionIocs(beamline.ioc_signals()).preprocessor)
    time_scale = beamline.time_scale
    standard.record_time_scale(RE, time_scale)
    if suspenders is None:
        suspenders = standard.suspenders_wanted()
    installed = (standard.install_suspenders(RE, beamline, time_scale=time_scale.get())
                 if suspenders else [])
    return dict(namespace, beamline=beamline, suspenders=installed,
                **beamline.namespace())


def offline_session(config: BeamlineConfig, *, table_and_plots: bool = True,
                    move_progress: bool = True) -> dict:
    """The session without devices: ``RE``, ``bec``, ``db``, ``cat`` and the tools, for
    browsing stored runs (or running plans of simulated devices) while the IOCs are down.
    Raises CatalogDirError.

    ``db`` and ``cat`` import databroker, and open the catalog, when first used
    (:mod:`simbeamline.catalog.on_first_use`); the RunEngine records into the catalog
    from the first run without them (:mod:`simbeamline.catalog.recording`)."""
    from .catalog.on_first_use import OnFirstUse
    from .catalog.recording import open_index
    from .catalog.writer import CatalogWriter

    writer = CatalogWriter(open_index(config))

    def open_db():
        from .catalog.store import open_db

        return open_db(config, insert=writer)   # db.insert: the RunEngine's own writer

    db = OnFirstUse(open_db)
    RE, bec = run_engine(writer, progress=move_progress, table_and_plots=table_and_plots,
                         config=config)
    return dict(_tools(), RE=RE, bec=bec, db=db, cat=OnFirstUse(lambda: db.v2), config=config)


def session_namespace(config: BeamlineConfig | None = None) -> dict:
    """The session of this process (built on first use), for ``globals().update(...)``.

    When the IOCs are down, prints ONE message saying what to do and returns the
    session without devices (``RE``, ``db``, ``cat``: stored runs need no IOC). When the
    catalog directory is unwritable, says so and returns only the libraries and plans.
    No traceback either way: this runs from IPython start-up files and ``%run``.
    """
    config = config or BeamlineConfig.from_env()
    if config in _sessions:
        return _sessions[config]
    try:
        namespace = build_session(config)
    except (BeamlineNotRunning, BeamlineConnectFailed) as err:
        print(f"simbeamline: {err}.\nStored runs are here meanwhile (db, cat); then reload "
              "the session: %run scripts/beamline_configuration.py (or restart IPython).",
              file=sys.stderr)
        try:
            namespace = offline_session(config)
        except CatalogDirError:
            return _tools()
        _matplotlib_interactive()
        return namespace
    except CatalogDirError as err:
        print(f"simbeamline: {err}.", file=sys.stderr)
        return _tools()
    _matplotlib_interactive()
    _sessions[config] = namespace
    return namespace


def _matplotlib_interactive() -> None:
    """In IPython, turn on interactive plotting; say once why no window can open when a
    display is there but matplotlib found no GUI toolkit for it."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    if get_ipython() is None:
        return
    import matplotlib.pyplot as plt

    hint = no_window_hint(plt.get_backend(), os.environ)
    if hint:
        print(f"simbeamline: {hint}", file=sys.stderr)
    plt.ion()


def no_window_hint(backend: str, environ) -> str | None:
    """Why ``plt.show()`` opens no window although a display is there, and what to do; None
    when there is nothing to say (a GUI backend, or no display at all, where files are
    the way: ``plt.savefig``)."""
    display = environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    if not display or backend.lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        return None
    if environ.get("MPLBACKEND"):
        return (f"MPLBACKEND={environ['MPLBACKEND']} makes matplotlib draw to files only, "
                "although a display is there; unset it to see plot windows")
    return ("a display is there, but matplotlib found no GUI toolkit, so plots open no "
            "window: install Tk for this Python (Debian/Ubuntu: apt install python3-tk) or "
            "`.venv/bin/pip install PyQt6`, then restart IPython; meanwhile plt.savefig works")


def _profile_dir(config: BeamlineConfig) -> Path:
    """The profile in ``<run_dir>/ipython`` (IPython writes history there, not in the repo)."""
    ipython_dir = config.run_dir / "ipython"
    target = ipython_dir / f"profile_{PROFILE_NAME}"
    startup = target / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    for old in startup.glob("*.py"):
        old.unlink()
    sources = sorted((PROFILE_SOURCE / "startup").glob("*.py"))
    for source in sources:
        shutil.copy2(source, startup / source.name)
    if not sources:
        (startup / "00-simbeamline.py").write_text(STARTUP_LINE)
    return ipython_dir


def ipython_main(argv: list[str]) -> int:
    """``simbeamline ipython [--no-start] [IPython options]``: the beamline in IPython."""
    from .cli import time_scale_argument
    from .control import launcher
    from .control.faults import FaultClient

    parser = argparse.ArgumentParser(
        prog="simbeamline ipython",
        description="Open IPython with the beamline session (RE, db, spot, dot, ...), "
                    "starting the IOCs first if they are down.")
    parser.add_argument("--no-start", action="store_true",
                        help="do not start the IOCs (the session says how if they are down)")
    time_scale_argument(parser)
    args, ipython_args = parser.parse_known_args(argv)
    config = BeamlineConfig.from_env()
    if args.time_scale is not None:
        config = dataclasses.replace(config, time_scale=args.time_scale)
    if not args.no_start:
        try:
            launcher.ensure_running(config)
        except launcher.LauncherError as err:
            print(f"simbeamline: the IOCs did not start: {err}", file=sys.stderr)
            return 1
    ca_env.apply_client_env(config)
    if args.time_scale is not None:    # the IOCs may have been running already
        try:
            FaultClient(config).set_time_scale(args.time_scale)
        except (TimeoutError, OSError) as err:
            print(f"simbeamline: cannot set the time scale ({err}); is the beamline "
                  "running? 'simbeamline start'", file=sys.stderr)
            return 1
    try:
        ipython_dir = _profile_dir(config)
    except OSError as err:
        print(f"simbeamline: cannot write the IPython profile under {config.run_dir}: {err}; "
              "set SIMBEAMLINE_RUN_DIR to a writable folder", file=sys.stderr)
        return 1
    from IPython import start_ipython

    start_ipython(argv=[f"--ipython-dir={ipython_dir}", f"--profile={PROFILE_NAME}",
                        *ipython_args])
    return 0


__all__ = ["build_session", "offline_session", "session_namespace", "ipython_main", "run_engine",
           "BeamlineNotRunning", "how_to_start"]
