"""A class of student beamlines: derived settings, and `simbeamline class` on real IOCs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from simbeamline.control import classroom, launcher

from test_launcher_cycles import CLASS_PORT, beamline_ports_free

#: Ports of this test's class: after the cycle test's beamline (CLASS_PORT, + 1).
BASE = CLASS_PORT + 10


def test_student_settings_derive_from_class_name_and_number(tmp_path):
    first, third = classroom.class_configs("xrd", 3, base_port=5700, root=tmp_path)[::2]
    assert (first.ca_port, first.repeater_port, third.ca_port) == (5700, 5701, 5704)
    assert (third.prefix, third.ad_prefix) == ("xrd03:", "xrd03ad:")
    assert third.run_dir == tmp_path / "xrd" / "03" / "run"
    assert third.data_dir == tmp_path / "xrd" / "03" / "data"
    assert str(third.data_dir) in third.ad_path_map


@pytest.mark.parametrize("name, students, base, message", [
    ("bad name", 2, 5700, "not a valid PV prefix"),
    ("xrd", 0, 5700, "1 student or more"),
    ("xrd", 10, 65530, "outside 1024-65534"),
])
def test_bad_class_is_named(name, students, base, message):
    with pytest.raises(ValueError, match=message):
        classroom.class_configs(name, students, base_port=base)


def simbeamline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simbeamline.cli", *args],
                          capture_output=True, text=True, timeout=900)


def test_class_start_status_stop(tmp_path):
    """Two students started at once answer on their own ports and prefixes, each with
    an env.sh that reproduces its beamline; stop leaves no port held."""
    common = ["xrd", "2", "--base-port", str(BASE), "--root", str(tmp_path)]
    configs = classroom.class_configs("xrd", 2, base_port=BASE, root=tmp_path)
    try:
        started = simbeamline("class", "start", *common)
        assert started.returncode == 0, started.stdout + started.stderr
        assert started.stdout.count("started") == 2
        status = simbeamline("class", "status", *common)
        assert status.returncode == 0 and status.stdout.count("answers") == 2, status.stdout
        for config in configs:
            assert launcher.answering(config) == {"beamline", "adsim"}
            env = dict(line.removeprefix("export ").split("=", 1)
                       for line in classroom.env_file(config).read_text().splitlines()
                       if line.startswith("export "))
            assert env["SIMBEAMLINE_CA_PORT"] == str(config.ca_port)
            assert env["SIMBEAMLINE_PREFIX"] == config.prefix
    finally:
        stopped = simbeamline("class", "stop", *common)
    assert stopped.returncode == 0 and stopped.stdout.count("stopped") == 2, stopped.stdout
    assert simbeamline("class", "status", *common).returncode == 1
    for config in configs:
        assert beamline_ports_free(config) == []
