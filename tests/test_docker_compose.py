"""docker-compose.yml, checked statically (no Docker engine runs here): it must
describe the same beamline as the launcher: the same IOC modules, prefixes and
loopback addresses."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

from simbeamline.control import launcher
from simbeamline.control.catalog_service import CatalogService
from simbeamline.control.config import BeamlineConfig

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def test_compose_services_match_the_launcher():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    defaults = BeamlineConfig()
    catalog = CatalogService.parse("postgres", {})
    assert set(services) == {ioc.name for ioc in launcher.iocs(defaults)} | set(catalog.programs)
    for ioc in launcher.iocs(defaults):
        service = services[ioc.name]
        module = re.search(r"python -m ([\w.]+)", service["command"]).group(1)
        assert importlib.util.find_spec(module) is not None, f"{module} is not importable"
        env = service["environment"]
        assert env["EPICS_CAS_INTF_ADDR_LIST"] == ioc.host
        assert env["SIMBEAMLINE_PREFIX"] == defaults.prefix
        assert service["network_mode"] == "host"
    adsim_env = services["adsim"]["environment"]
    assert adsim_env["SIMBEAMLINE_AD_PREFIX"] == defaults.ad_prefix
    assert adsim_env["EPICS_CA_ADDR_LIST"].split() == [defaults.beamline_host, defaults.adsim_host]


def test_compose_catalog_service_matches_the_supervisor_programs():
    """The catalog containers run the supervisord programs' own commands, on the
    launcher's default ports, bound to loopback."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    defaults = CatalogService.parse("postgres", {})
    supervisor = COMPOSE.parent / "supervisor" / "catalog"
    for name in defaults.programs:
        conf = (supervisor / f"{name.split('-')[1]}.conf").read_text()
        program_args = re.search(r"-m (simbeamline\.[\w.]+ \w+)", conf).group(1)
        service = services[name]
        assert program_args in service["command"]
        env = service["environment"]
        assert CatalogService.parse(env["SIMBEAMLINE_TILED"], env) == defaults
        assert service["network_mode"] == "host"
    assert services["catalog-tiled"]["depends_on"] == ["catalog-postgres"]
