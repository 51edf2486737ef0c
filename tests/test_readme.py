"""The README's commands, run as written against the test beamline.

The shell block of "Processes and Channel Access" and the Python block of "Talking to
the IOCs" are read from README.md itself, so a README that drifts from what works
fails here. They run in a plain environment: no EPICS variable but the server port
(the test beamline is not on the default 5064) and the repeater port of a repeater
the beamline runs, so no repeater outlives the test.
"""

from __future__ import annotations

import os
import re
import selectors
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
VENV_BIN = Path(sys.executable).parent


def fenced_blocks(section: str, language: str) -> list[str]:
    """The ``language`` code blocks under the README heading *section*."""
    text = README.read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(rf"```{language}\n(.*?)```", text[start:end if end > 0 else None], re.S)
    assert blocks, f"no {language} block under '## {section}' in README.md"
    return blocks


@pytest.fixture(scope="module")
def plain_env(beamline):
    """A plain user's environment (the venv's bin on PATH, as the README says) with the
    test beamline's server port and its CA repeater's port (a client run with no repeater
    to find would spawn one that outlives the test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["EPICS_CA_SERVER_PORT"] = str(beamline.ca_port)
    env["EPICS_CA_REPEATER_PORT"] = str(beamline.repeater_port)
    return env


def first_line(process: subprocess.Popen, timeout: float) -> str:
    """The first line *process* prints, waiting at most *timeout* seconds for it."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"{process.args} printed nothing within {timeout} s")
    return process.stdout.readline()


def shell_commands() -> list[str]:
    block, = fenced_blocks("Processes and Channel Access", "bash")
    return [line.strip() for line in block.splitlines() if line.strip().startswith("caproto-")]


def test_readme_names_the_three_shell_commands():
    assert [shlex.split(c)[0] for c in shell_commands()] == [
        "caproto-get", "caproto-put", "caproto-monitor"]


def test_readme_shell_commands_run_as_written(beamline, plain_env):
    get, put, monitor = shell_commands()
    result = subprocess.run(shlex.split(get), env=plain_env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert 300 < float(result.stdout.split("[")[1].rstrip("]\n ")) < 700

    target = float(shlex.split(put)[-1])
    result = subprocess.run(shlex.split(put), env=plain_env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    # caproto-put prints an error (a timeout waiting for completion) and still exits 0
    assert result.stdout.splitlines()[-1].startswith("New"), result.stdout
    # the put waited for completion: the motor is there when the command returns
    result = subprocess.run(["caproto-get", shlex.split(monitor)[-1]], env=plain_env,
                            capture_output=True, text=True, timeout=60)
    if abs(float(result.stdout.split("[")[1].rstrip("]\n ")) - target) >= 1e-6:
        record = shlex.split(put)[-2]    # say what the record shows: a stall, a newer move
        fields = subprocess.run(["caproto-get", *(f"{record}.{f}" for f in (
            "VAL", "RBV", "DMOV", "MSTA", "VELO"))], env=plain_env, capture_output=True,
            text=True, timeout=60)
        pytest.fail(f"{put!r} returned before the move ended:\n{fields.stdout}")

    with subprocess.Popen(shlex.split(monitor), env=plain_env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as process:
        try:
            first = first_line(process, timeout=60)
        finally:
            process.terminate()
    assert shlex.split(monitor)[-1] in first
    assert float(first.split("[")[1].rstrip("]\n ")) == target
    subprocess.run(["caproto-put", "--notify", shlex.split(put)[-2], "0"], env=plain_env,
                   capture_output=True, timeout=60, check=True)


def test_readme_python_blocks_run_as_written(beamline, plain_env):
    """The pyepics block, then the ophyd block, each in a fresh Python as a user types it."""
    with_pyepics, with_ophyd = fenced_blocks("Talking to the IOCs", "python")
    checks = ("\nassert abs(epics.caget('sim:m:spotx.RBV') - 10) < 1e-6\n",
              "\nassert abs(m.position - 20) < 1e-6, m.position\nprint('current', I.get())\n")
    for code, check in zip((with_pyepics, with_ophyd), checks):
        result = subprocess.run([sys.executable, "-c", code + check], env=plain_env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    assert 300 < float(result.stdout.split("current")[-1]) < 700
    subprocess.run(["caproto-put", "--notify", f"{beamline.prefix}m:spotx", "0"],
                   env=plain_env, capture_output=True, timeout=60, check=True)
