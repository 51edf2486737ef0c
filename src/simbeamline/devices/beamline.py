"""Assemble the beamline's ophyd devices from a :class:`BeamlineConfig`.

:func:`build_beamline` is the one place the devices are created: the IPython
profile, ``beamline_configuration.py``, the ``simbeamline`` command, the tests and
the benchmarks all call it.
"""

from __future__ import annotations

import dataclasses
import sys

from . import connect
from . import ca_gets
from .dispatcher import calm_dispatcher
from ..control import ca_env, ca_probe
from ..catalog.paths import check_writable
from ..control.config import BeamlineConfig

#: Seconds without one more signal connecting before a retry in a fresh CA context.
CONNECT_TIMEOUT = connect.PATIENCE
#: Seconds an IOC has to answer (create a channel) before it counts as busy (if it
#: accepted the connection) or down (if nothing listens).
PROBE_TIMEOUT = 5.0
#: The same, asked after a stall: an IOC slower than this is busy, so waited for.
STALL_PROBE_TIMEOUT = 2.0
#: Seconds to wait for the ADSimDetector to answer before leaving it out.
ADSIM_PROBE_TIMEOUT = 3.0
#: ophyd's time budgets for one read and one connection (its defaults: 2 s and 1 s).
#: A read's answer waits behind every callback queued before it in ophyd's dispatcher:
#: ten sessions built at once on two cores (each with 134 connection callbacks to run)
#: saw reads of sim:time_scale take over 10 s (2 of 10 sessions failed, twice in this
#: project's full runs). A lost IOC is reported by its disconnection, not by this budget.
READ_TIMEOUT = 30.0
SIGNAL_CONNECT_TIMEOUT = 5.0


class BeamlineNotRunning(RuntimeError):
    """The beamline IOC does not answer; the message says how to start it."""


class BeamlineConnectFailed(RuntimeError):
    """The beamline IOC answers, but its devices did not connect (retried in fresh
    Channel Access contexts); the message says what did not connect."""


def how_to_start(config: BeamlineConfig) -> str:
    """The one-line advice for IOCs that are down."""
    port = "" if config.ca_port == 5064 else f" --port {config.ca_port}"
    return (f"start them with `simbeamline{port} start` (or `./run start` from the "
            "repository), or open the session with `simbeamline ipython`, which starts them")


@dataclasses.dataclass
class Beamline:
    """The devices of one beamline, by their session names."""

    config: BeamlineConfig
    I: object  # noqa: E741  (the tutorials' name for the ring current)
    mtr_spotx: object
    mtr_spoty: object
    mtr_dotx: object
    mtr_doty: object
    mtr_samx: object
    mtr_samy: object
    shutter: object
    spot: object
    dot: object
    shutter_interlock: object
    time_scale: object
    adsimdet: object | None = None

    def ioc_signals(self) -> dict[str, object]:
        """One signal per IOC, by the IOC's description (for :class:`~.ioc_loss.SessionIocs`)."""
        signals = {f"the beamline IOC ({self.config.prefix})": self.I}
        if self.adsimdet is not None:
            signals[f"the ADSimDetector IOC ({self.config.ad_prefix})"] = \
                self.adsimdet.cam.acquire_busy
        return signals

    def namespace(self) -> dict[str, object]:
        """``{session name: device}``; ``adsimdet`` only when it was built."""
        names = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.name != "config"}
        if names["adsimdet"] is None:
            del names["adsimdet"]
        return names


def ioc_state(config: BeamlineConfig, name: str, timeout: float = PROBE_TIMEOUT) -> str:
    """What the IOC *name* ("beamline" or "adsim") says when asked for a channel of its
    ready PV (:meth:`..control.ca_probe.Channel.state`; the launcher's own test)."""
    from ..control.launcher import ioc_state as launcher_ioc_state

    return launcher_ioc_state(config, name, timeout)


def adsim_answers(config: BeamlineConfig, timeout: float = ADSIM_PROBE_TIMEOUT) -> bool:
    """True if the ADSimDetector IOC answers Channel Access."""
    return ioc_state(config, "adsim", timeout) == ca_probe.SERVES


def _connect(config: BeamlineConfig, name: str, build, timeout: float) -> dict:
    """*build()*'s devices of the IOC *name*, connected (see :mod:`.connect`)."""
    from ..control.launcher import iocs

    ioc = next(ioc for ioc in iocs(config) if ioc.name == name)
    what = f"the {name} IOC (prefix {ioc.prefix!r} at {ioc.host}:{config.ca_port})"
    down = BeamlineNotRunning(f"{what} does not answer: {how_to_start(config)}")
    if ioc_state(config, name) in (ca_probe.DOWN, ca_probe.LACKS):  # SILENT: busy, not down
        raise down
    try:
        return connect.connect(
            build, lambda: ioc_state(config, name, STALL_PROBE_TIMEOUT), what,
            refused=lambda pvs: ca_probe.refused(pvs, ioc.host, config.ca_port, PROBE_TIMEOUT),
            patience=timeout)
    except connect.IocDown:
        raise down from None
    except connect.MissingPVs as err:
        raise BeamlineConnectFailed(
            f"{err}: it is not the IOC these devices were made for (another version, or "
            f"another IOC serving that prefix); point the session at this project's IOCs "
            f"(`simbeamline start`) or at an IOC that serves these PVs") from None
    except connect.ConnectFailed as err:
        raise BeamlineConnectFailed(f"{err}; try again, or restart the IOCs with "
                                    "`simbeamline restart`") from None


def patient_ophyd_defaults() -> None:
    """Give ophyd's reads and connections time to answer on a busy host.

    ophyd's 2 s read budget fails reads (``ReadTimeoutError``) when a small machine
    runs many beamlines or sessions at once, as a classroom does; worse, EpicsMotor
    reads its limit switches inside the end-of-move callback, and a read that times
    out there leaves the move's status unfinished forever. Takes effect only before
    the process's first EPICS signal: a user who made signals earlier keeps theirs.
    """
    from ophyd.signal import EpicsSignalBase

    try:
        EpicsSignalBase.set_defaults(timeout=READ_TIMEOUT,
                                     connection_timeout=SIGNAL_CONNECT_TIMEOUT)
    except RuntimeError:
        pass   # signals exist already; their defaults stay


def build_beamline(config: BeamlineConfig | None = None, *, adsim: bool | None = None,
                   timeout: float = CONNECT_TIMEOUT) -> Beamline:
    """Create and connect every device of *config*'s beamline.

    ``adsim=None`` builds ``adsimdet`` only when its IOC answers; True requires
    it; False leaves it out. Raises :class:`BeamlineNotRunning` (saying how to
    start the IOCs) when the beamline IOC does not answer, and
    :class:`BeamlineConnectFailed` when it answers but its devices do not connect,
    each build retried in a fresh CA context (:mod:`.connect`). *timeout* is the
    seconds without one more signal connecting that make a build stall.
    """
    config = ca_env.apply_client_env(config)  # before ophyd/pyepics connect
    patient_ophyd_defaults()
    calm_dispatcher()
    ca_gets.install()
    from . import cameras

    frames_root = check_writable(config.data_dir, "data directory")
    prefix = config.prefix
    parts = _connect(config, "beamline", lambda: dict(
        I=cameras.current(prefix),
        mtr_spotx=cameras.motor(prefix, "spotx"),
        mtr_spoty=cameras.motor(prefix, "spoty"),
        mtr_dotx=cameras.motor(prefix, "dotx"),
        mtr_doty=cameras.motor(prefix, "doty"),
        mtr_samx=cameras.motor(prefix, "samx"),
        mtr_samy=cameras.motor(prefix, "samy"),
        shutter=cameras.shutter(prefix),
        spot=cameras.spot_camera(prefix, "spot", frames_root),
        dot=cameras.spot_camera(prefix, "dot", frames_root),
        shutter_interlock=cameras.shutter_interlock(prefix),
        time_scale=cameras.time_scale(prefix),
    ), timeout)
    adsimdet = None
    if adsim or (adsim is None and adsim_answers(config)):
        from .adsimdet import create_adsimdet, prepare_adsimdet

        try:
            adsimdet = _connect(config, "adsim", lambda: {"adsimdet": create_adsimdet(config)},
                                timeout)["adsimdet"]
            prepare_adsimdet(adsimdet)
        except Exception as err:
            if adsim:
                raise
            print(f"simbeamline: adsimdet left out ({config.ad_prefix} answers, but "
                  f"building it failed: {err})", file=sys.stderr)
    return Beamline(config=config, adsimdet=adsimdet, **parts)
