"""Where the beamline lives: PV prefixes, IOC addresses, data and state directories.

Every process of the project (command line, profile, tests, benchmarks) builds one
``BeamlineConfig`` with :func:`BeamlineConfig.from_env` and derives everything else
from it, so a second copy of the beamline (a test run, a student's copy) is just a
different set of ``SIMBEAMLINE_*`` variables.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from simbeamline_iocs.clock import scale_from_env
from simbeamline_iocs.adsim.pva_address import client_conf, pva_ports
from simbeamline_iocs.names import check_prefix as ioc_check_prefix


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))


def check_prefix(prefix: str, what: str = "prefix") -> str:
    """Return *prefix* if it is a valid PV prefix, else raise ValueError naming *what*.

    The rule is the IOCs' own (simbeamline_iocs.names.check_prefix), so the command
    line refuses exactly what an IOC would.
    """
    try:
        return ioc_check_prefix(prefix)
    except ValueError as exc:
        raise ValueError(str(exc).replace("prefix", what, 1)) from None


@dataclasses.dataclass(frozen=True)
class BeamlineConfig:
    """One simulated beamline: its prefixes, addresses and directories."""

    prefix: str = "sim:"                 #: beamline IOC (ring, motors, shutter, cameras)
    ad_prefix: str = "ad:"               #: ADSimDetector IOC
    beamline_host: str = "127.0.0.2"     #: loopback address the beamline IOC binds
    adsim_host: str = "127.0.0.3"        #: loopback address the ADSimDetector IOC binds
    ca_port: int = 5064                  #: Channel Access server port of both IOCs
    run_dir: Path = dataclasses.field(default_factory=lambda: _state_home() / "simbeamline")
    data_dir: Path = dataclasses.field(default_factory=lambda: _data_home() / "simbeamline")
    catalog_name: str = "simbeamline"
    #: How directories the ADSimDetector IOC names map to this host's directories
    #: ("IOCDIR=HOSTDIR[,...]"): by default the IOC's /tmp is /tmp/docker_ioc/iocad/tmp,
    #: as with the Docker IOC of the APS training material, so its path templates work.
    ad_path_map: str = "/tmp=/tmp/docker_ioc/iocad/tmp"
    #: IOC and supervisord logs, if not ``run_dir/logs``.
    log_dir_override: Path | None = None
    #: The simulation clock's scale the IOCs start with (1 real time, 0.01 100x faster);
    #: at run time the beamline's ``{prefix}time_scale`` PV holds the scale in force.
    time_scale: float = 1.0

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "BeamlineConfig":
        """Build the configuration from ``SIMBEAMLINE_*`` variables (defaults otherwise)."""
        env = os.environ if environ is None else environ
        default = cls()
        port = env.get("SIMBEAMLINE_CA_PORT", str(default.ca_port))
        try:
            port_number = int(port)
        except ValueError:
            raise ValueError(f"SIMBEAMLINE_CA_PORT={port!r} is not a port number") from None
        config = cls(
            prefix=check_prefix(env.get("SIMBEAMLINE_PREFIX", default.prefix), "SIMBEAMLINE_PREFIX"),
            ad_prefix=check_prefix(env.get("SIMBEAMLINE_AD_PREFIX", default.ad_prefix), "SIMBEAMLINE_AD_PREFIX"),
            beamline_host=env.get("SIMBEAMLINE_HOST", default.beamline_host),
            adsim_host=env.get("SIMBEAMLINE_AD_HOST", default.adsim_host),
            ca_port=port_number,
            # empty means unset (``SIMBEAMLINE_DATA_DIR= cmd``), not the current directory
            run_dir=Path(env.get("SIMBEAMLINE_RUN_DIR") or default.run_dir).expanduser(),
            data_dir=Path(env.get("SIMBEAMLINE_DATA_DIR") or default.data_dir).expanduser(),
            catalog_name=env.get("SIMBEAMLINE_CATALOG", default.catalog_name),
            ad_path_map=env.get("SIMBEAMLINE_AD_PATH_MAP", default.ad_path_map),
            log_dir_override=Path(env["SIMBEAMLINE_LOG_DIR"]).expanduser()
            if env.get("SIMBEAMLINE_LOG_DIR") else None,
            time_scale=scale_from_env(env),
        )
        return config

    @property
    def log_dir(self) -> Path:
        """IOC and supervisord logs."""
        return self.log_dir_override or self.run_dir / "logs"

    @property
    def repeater_port(self) -> int:
        """UDP port of this beamline's CA repeater: the CA port + 1 (5065 for 5064, as in
        EPICS), so each beamline's clients hear only its own IOCs' beacons."""
        return self.ca_port + 1

    @property
    def pva_port(self) -> int:
        """TCP port of the ADSimDetector IOC's PV Access server (Pva1:Image), at
        adsim_host: the CA port + 10000 (the rule is simbeamline_iocs.adsim.pva_address's)."""
        return pva_ports(self.ca_port)[0]

    def pva_client_env(self) -> dict[str, str]:
        """EPICS_PVA_* that make a PVA client (p4p, pvget) find this beamline's
        ADSimDetector IOC, and no other server."""
        return client_conf(self.adsim_host, self.ca_port)

    @property
    def ioc_addresses(self) -> list[str]:
        """``host:port`` of every IOC, for EPICS_CA_ADDR_LIST."""
        return [f"{host}:{self.ca_port}" for host in (self.beamline_host, self.adsim_host)]

    def as_env(self) -> dict[str, str]:
        """The ``SIMBEAMLINE_*`` variables that reproduce this configuration in a child
        process, and the repeater port its EPICS clients use."""
        env = {
            "SIMBEAMLINE_PREFIX": self.prefix,
            "SIMBEAMLINE_AD_PREFIX": self.ad_prefix,
            "SIMBEAMLINE_HOST": self.beamline_host,
            "SIMBEAMLINE_AD_HOST": self.adsim_host,
            "SIMBEAMLINE_CA_PORT": str(self.ca_port),
            "SIMBEAMLINE_RUN_DIR": str(self.run_dir),
            "SIMBEAMLINE_DATA_DIR": str(self.data_dir),
            "SIMBEAMLINE_CATALOG": self.catalog_name,
            "SIMBEAMLINE_AD_PATH_MAP": self.ad_path_map,
            "SIMBEAMLINE_TIME_SCALE": repr(self.time_scale),
        }
        if self.log_dir_override is not None:
            env["SIMBEAMLINE_LOG_DIR"] = str(self.log_dir_override)
        # any EPICS client started with this environment uses the beamline's repeater
        # (libca would otherwise try to spawn caRepeater and complain that it cannot)
        env["EPICS_CA_REPEATER_PORT"] = str(self.repeater_port)
        return env
