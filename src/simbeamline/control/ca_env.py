"""The one place that sets the Channel Access environment of the project's processes.

Several IOCs on one host are found reliably when clients are told where to look
(each IOC on its own loopback address) instead of broadcasting, and when servers
bind and send beacons on loopback only, so the simulator never answers for a real
beamline's PVs on a facility network. Users never export these variables: the
command line, the profile and the tests call :func:`apply_client_env` first.
"""

from __future__ import annotations

import os

from .config import BeamlineConfig

#: Large enough for a 1024 x 1024 float64 frame from image1:ArrayData over pyepics/libca.
MAX_ARRAY_BYTES = str(64 * 1024 * 1024)


def client_env(config: BeamlineConfig, environ: dict | None = None) -> dict[str, str]:
    """EPICS client variables that reach this beamline's IOCs (keeping any other addresses)."""
    env = os.environ if environ is None else environ
    ours = config.ioc_addresses
    others = [a for a in env.get("EPICS_CA_ADDR_LIST", "").split() if a not in ours]
    return {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": " ".join(ours + others),
        "EPICS_CA_MAX_ARRAY_BYTES": MAX_ARRAY_BYTES,
        # the beamline's own repeater (a supervisord program): libca finds it running
        # and spawns none; beacons of other beamlines never reach this client
        "EPICS_CA_REPEATER_PORT": str(config.repeater_port),
        # a search lost to a busy IOC is tried again within a minute (libca's least),
        # not five
        "EPICS_CA_MAX_SEARCH_PERIOD": "60",
        # PV Access (the ADSimDetector's Pva1:Image): its IOC only, on its derived ports
        **config.pva_client_env(),
    }


def server_env(config: BeamlineConfig, host: str) -> dict[str, str]:
    """EPICS server variables for an IOC of this beamline bound to *host*."""
    return {
        "EPICS_CAS_INTF_ADDR_LIST": host,
        "EPICS_CA_SERVER_PORT": str(config.ca_port),   # caproto's server reads this one
        "EPICS_CAS_SERVER_PORT": str(config.ca_port),
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.255.255.255",
        "EPICS_CAS_BEACON_PORT": str(config.repeater_port),
        # an IOC that is itself a client (the ADSimDetector reads the shutter)
        **client_env(config, environ={}),
    }


def apply_client_env(config: BeamlineConfig | None = None) -> BeamlineConfig:
    """Set this process's EPICS client variables; call before ophyd/pyepics connect."""
    config = config or BeamlineConfig.from_env()
    os.environ.update(client_env(config))
    return config
