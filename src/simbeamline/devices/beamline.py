"""Assemble the beamline's ophyd devices from a :class:`BeamlineConfig`.

:func:`build_beamline` is the one place the devices are created: the IPython
profile, ``beamline_configuration.py``, the ``simbeamline`` command, the tests and
the benchmarks all call it.
"""

from __future__ import annotations

import dataclasses
import sys

from ..control import ca_env
from ..catalog.paths import check_writable
from ..control.config import BeamlineConfig

#: Seconds to wait for the beamline IOC's PVs to connect.
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for the ADSimDetector to answer before leaving it out.
ADSIM_PROBE_TIMEOUT = 3.0
#: ophyd's time budgets for one read and one connection (its defaults: 2 s and 1 s).
READ_TIMEOUT = 10.0
SIGNAL_CONNECT_TIMEOUT = 5.0


class BeamlineNotRunning(RuntimeError):
    """The beamline IOC does not answer; the message says how to start it."""


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
    adsimdet: object | None = None

    def namespace(self) -> dict[str, object]:
        """``{session name: device}``; ``adsimdet`` only when it was built."""
        names = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.name != "config"}
        if names["adsimdet"] is None:
            del names["adsimdet"]
        return names


def _connect(devices: dict, config: BeamlineConfig, timeout: float) -> None:
    for name, device in devices.items():
        try:
            device.wait_for_connection(timeout=timeout)
        except TimeoutError as err:
            raise BeamlineNotRunning(
                f"the beamline IOC does not answer ({name}: {err}; prefix {config.prefix!r} "
                f"at {config.beamline_host}:{config.ca_port}): {how_to_start(config)}"
            ) from None


def adsim_answers(config: BeamlineConfig, timeout: float = ADSIM_PROBE_TIMEOUT) -> bool:
    """True if the ADSimDetector IOC answers Channel Access (the launcher's readiness PV)."""
    from ..control.launcher import iocs, pv_answers

    ready = next(ioc.ready_pv for ioc in iocs(config) if ioc.name == "adsim")
    return pv_answers(ready, timeout=timeout)


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
    start the IOCs) when the beamline IOC does not answer.
    """
    config = ca_env.apply_client_env(config)  # before ophyd/pyepics connect
    patient_ophyd_defaults()
    from . import cameras

    frames_root = check_writable(config.data_dir, "data directory")
    prefix = config.prefix
    parts = dict(
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
    )
    _connect(parts, config, timeout)
    adsimdet = None
    if adsim or (adsim is None and adsim_answers(config)):
        from .adsimdet import make_adsimdet

        try:
            adsimdet = make_adsimdet(config)
        except Exception as err:
            if adsim:
                raise
            print(f"simbeamline: adsimdet left out ({config.ad_prefix} answers, but "
                  f"building it failed: {err})", file=sys.stderr)
    return Beamline(config=config, adsimdet=adsimdet, **parts)
