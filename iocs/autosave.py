"""Settings that survive an IOC restart, as EPICS autosave keeps them.

An IOC saves its settings (a flat ``{name: value}`` of numbers and strings) to
``$SIMBEAMLINE_RUN_DIR/autosave/<ioc>.sav`` (JSON) whenever they change, checked
every :data:`SAVE_PERIOD` seconds, and reads them back when it boots. The launcher
gives every IOC ``SIMBEAMLINE_RUN_DIR``; without it (an IOC run by hand) nothing is
saved. A write goes to a temporary file renamed over the old one, so a crash never
leaves half a file. A file that cannot be read is reported in the IOC's log, kept
aside as ``<ioc>.sav.bad``, and the IOC boots with its defaults: never fatal.

What an IOC saves, and how it puts the values back, is the IOC's business: it gives
:class:`Autosave` a function returning its settings and applies what :meth:`load`
returns (the beamline IOC through :mod:`.beamline_autosave`; the ADSim IOC records
the settings clients put, :class:`PutSettings`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import signal
from pathlib import Path

log = logging.getLogger(__name__)

#: Seconds between checks for changed settings.
SAVE_PERIOD = 0.5
#: Longest value text written to the log (log lines stay bounded).
LOG_VALUE_CHARS = 80
RUN_DIR_ENV = "SIMBEAMLINE_RUN_DIR"


#: areaDetector records a put acts on rather than configures: never autosaved.
AD_ACTIONS = ("cam1:Acquire", "cam1:ArrayCounter", "HDF1:Capture", "HDF1:WriteFile",
              "HDF1:ReadFile", "HDF1:FileNumber")


def is_ad_action(suffix: str) -> bool:
    """True for an areaDetector record that is an action (Acquire, Capture, Reset, ...)."""
    return (suffix in AD_ACTIONS
            or suffix.endswith(("ProcessPlugin", "Reset", ":TSAcquire", ":TSRead"))
            or ":Reset" in suffix)


def autosave_path(ioc: str, environ=None, prefix: str = "") -> Path | None:
    """``$SIMBEAMLINE_RUN_DIR/autosave/<ioc>[_<prefix>].sav``, or None when the variable is
    unset. The prefix is part of the name, so two IOCs sharing a run directory (a test's
    own IOC beside the beamline's) never restore each other's settings."""
    run_dir = (os.environ if environ is None else environ).get(RUN_DIR_ENV)
    if not run_dir:
        return None
    tag = re.sub(r"[^A-Za-z0-9_-]", "_", prefix)
    return Path(run_dir) / "autosave" / (f"{ioc}_{tag}.sav" if tag else f"{ioc}.sav")


def shorten(value, limit: int = LOG_VALUE_CHARS) -> str:
    """``repr(value)`` cut to *limit* characters, for log lines."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def plain(value):
    """*value* as a JSON-able number or string (numpy scalars, bytes, 1-element arrays)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        value = value.split(b"\0", 1)[0].decode(errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return None


class Autosave:
    """Save ``collect()`` to *path* when it changes; :meth:`load` what was saved."""

    def __init__(self, path: Path | None, collect):
        self.path = path
        self.collect = collect
        self._last: dict | None = None

    def load(self) -> dict:
        """The saved settings, or {} (no file, no run directory, or a bad file: logged)."""
        if self.path is None:
            print(f"autosave: {RUN_DIR_ENV} is not set: settings are not saved", flush=True)
            return {}
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            print(f"autosave: no saved settings at {self.path}: defaults", flush=True)
            return {}
        except OSError as exc:
            log.warning("autosave: cannot read %s (%s): booting with defaults", self.path, exc)
            return {}
        try:
            saved = json.loads(text.decode())
            if not isinstance(saved, dict):
                raise ValueError(f"expected an object of settings, found {type(saved).__name__}")
        except ValueError as exc:
            bad = self.path.with_name(self.path.name + ".bad")
            log.warning("autosave: %s is not a settings file (%s); kept as %s, booting "
                        "with defaults", self.path, shorten(str(exc)), bad)
            try:
                os.replace(self.path, bad)
            except OSError:
                pass
            return {}
        print(f"autosave: restoring {len(saved)} settings from {self.path}", flush=True)
        self._last = dict(saved)
        return saved

    def save_now(self) -> None:
        """Write the settings if they changed since the last save (atomically)."""
        if self.path is None:
            return
        settings = {name: plain(value) for name, value in self.collect().items()}
        settings = {name: value for name, value in settings.items() if value is not None}
        if settings == self._last:
            return
        partial = self.path.with_name(f".{self.path.name}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(settings, indent=1, sort_keys=True))
            os.replace(partial, self.path)
        except OSError as exc:
            log.warning("autosave: cannot save settings to %s: %s", self.path, exc)
            partial.unlink(missing_ok=True)
            return
        self._last = settings

    async def run(self, period: float = SAVE_PERIOD) -> None:
        """Save changed settings every *period* seconds, for ever (a task of the IOC),
        and once more when the IOC is stopped (SIGTERM, as supervisord stops it)."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._save_and_exit)
        except (NotImplementedError, RuntimeError):   # not the main thread, or no signals
            pass
        while True:
            try:
                self.save_now()
            except Exception:   # a bug in collect() must not stop the IOC
                log.exception("autosave: saving settings failed")
            await asyncio.sleep(period)


    def _save_and_exit(self) -> None:
        try:
            self.save_now()
        finally:   # then terminate as SIGTERM would have
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


class PutSettings:
    """The settings clients put, for an IOC whose puts all pass one place (ADSim).

    :meth:`remember` each successful put of a setting; at boot :meth:`restore` puts
    the saved values back through the IOC's own put path (*put(suffix, value)*), so
    they are checked and acted on as a client's would be. *skip(suffix)* names the
    records that are actions, not settings (Acquire, Capture, ...).
    """

    def __init__(self, ioc: str, skip, prefix: str = ""):
        self.values: dict = {}
        self.skip = skip
        self.autosave = Autosave(autosave_path(ioc, prefix=prefix), lambda: self.values)

    def remember(self, suffix: str, value) -> None:
        if not self.skip(suffix):
            self.values[suffix] = value

    async def restore(self, put) -> None:
        """Put back every saved setting; one refused is logged and left at its default."""
        for suffix, value in self.autosave.load().items():
            if self.skip(suffix):
                continue
            try:
                await put(suffix, value)
            except Exception as exc:
                log.warning("autosave: %s=%s not restored: %s", suffix, shorten(value),
                            shorten(str(exc)))
            else:
                self.values[suffix] = value
        asyncio.get_running_loop().create_task(self.autosave.run())
