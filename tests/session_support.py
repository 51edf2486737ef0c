"""Helpers of the session tests: a session on its own temporary catalog, child processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from simbeamline.control.config import BeamlineConfig

#: Seconds a child Python process (reading or writing the catalog) may take.
CHILD_TIMEOUT = 300


def private_config(config: BeamlineConfig, data_dir: Path) -> BeamlineConfig:
    """*config* (the running test beamline) with its own catalog and frame directory."""
    return dataclasses.replace(config, data_dir=data_dir)


def new_session(config: BeamlineConfig, **kwargs) -> dict:
    """A session namespace as the profile builds it, quiet (no table, plots or bars)."""
    from simbeamline.session import build_session

    kwargs.setdefault("adsim", False)
    return build_session(config, table_and_plots=False, move_progress=False, **kwargs)


def run_child(code: str, config: BeamlineConfig, *args: str) -> dict:
    """Run *code* in a fresh Python process with *config*'s environment; return the JSON
    object it prints on its last line of output."""
    env = {**os.environ, **config.as_env()}
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                            text=True, timeout=CHILD_TIMEOUT)
    assert result.returncode == 0, f"child failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])
