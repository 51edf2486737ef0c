"""A class of private beamlines: one per student, started and stopped at once.

Student *n* (1 to N) of class NAME gets, derived from NAME and *n* only, so a trainer
needs to remember nothing else:

- CA port ``base_port + 2 * (n - 1)`` (its repeater on the next port; default base 5600);
- prefixes ``NAMEnn:`` and ``NAMEnnad:`` (``nn`` = two digits), so even a broadcast
  search from a plain shell never reaches another student's IOC;
- run and data directories ``<root>/NAME/nn/run`` and ``<root>/NAME/nn/data`` (root
  default: ``$XDG_STATE_HOME/simbeamline/classes`` for both), the IOC's /tmp mapped
  into the data directory.

:func:`start`, :func:`stop` and :func:`status` act on all students at once (one thread
each: the launcher mostly waits on processes). Each student's environment is written
to ``<root>/NAME/nn/env.sh``: ``source`` it, then ``simbeamline ipython``.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import launcher
from .config import BeamlineConfig, _state_home, check_prefix

#: CA port of student 1 (student n: + 2 (n - 1); the repeater takes the odd ports).
BASE_PORT = 5600
#: Seconds each beamline of a class may take to answer (a class loads the machine).
TIMEOUT = 600.0


def default_root() -> Path:
    return _state_home() / "simbeamline" / "classes"


def student_config(name: str, number: int, *, base_port: int = BASE_PORT,
                   root: Path | None = None) -> BeamlineConfig:
    """The beamline of student *number* (from 1) of class *name*."""
    check_prefix(name, "class name")
    if number < 1:
        raise ValueError(f"student number {number} is not 1 or more")
    port = base_port + 2 * (number - 1)
    if not 1024 <= port < 65535:
        raise ValueError(f"student {number} would use port {port}, outside 1024-65534: "
                         "choose a lower --base-port or fewer students")
    home = (root or default_root()) / name / f"{number:02d}"
    return BeamlineConfig(
        prefix=f"{name}{number:02d}:", ad_prefix=f"{name}{number:02d}ad:", ca_port=port,
        run_dir=home / "run", data_dir=home / "data",
        ad_path_map=f"/tmp={home / 'data' / 'ioc_tmp'}",
    )


def class_configs(name: str, students: int, **kwargs) -> list[BeamlineConfig]:
    """Students 1 to *students* of class *name*."""
    if students < 1:
        raise ValueError(f"a class needs 1 student or more, not {students}")
    return [student_config(name, n, **kwargs) for n in range(1, students + 1)]


def env_file(config: BeamlineConfig) -> Path:
    """The student's ``env.sh`` (beside its run and data directories)."""
    return config.run_dir.parent / "env.sh"


def write_env_file(config: BeamlineConfig) -> Path:
    path = env_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export {key}={shlex.quote(value)}" for key, value in config.as_env().items()]
    path.write_text("# simbeamline: this student's beamline (source it)\n" + "\n".join(lines) + "\n")
    return path


def _each(function, configs: list[BeamlineConfig]) -> list:
    """``function(config)`` for every config at once; results (or exceptions) in order."""
    def call(config):
        try:
            return function(config)
        except Exception as err:  # reported per student, the others carry on
            return err

    with ThreadPoolExecutor(max_workers=len(configs)) as pool:
        return list(pool.map(call, configs))


def start(configs: list[BeamlineConfig], timeout: float = TIMEOUT) -> list:
    """Start every beamline at once; per student True/False (started/already running)
    or the LauncherError that stopped it."""
    def one(config):
        write_env_file(config)
        return launcher.start(config, timeout=timeout)

    return _each(one, configs)


def stop(configs: list[BeamlineConfig]) -> list:
    """Stop every beamline at once; per student True/False (stopped/was not running)."""
    return _each(launcher.stop, configs)


def status(configs: list[BeamlineConfig]) -> list:
    """Every beamline's :func:`.launcher.status`, asked at once."""
    return _each(launcher.status, configs)


def describe(config: BeamlineConfig) -> str:
    """One line: port, prefixes and where its environment is."""
    return (f"port {config.ca_port:<5}  {config.prefix:<12} {config.ad_prefix:<14} "
            f"source {env_file(config)}")
