#!/usr/bin/env bash
# Start, stop or inspect the simulated beamline's IOCs under supervisord.
#   supervisor/start_supervisor.sh [start|stop|status|restart]   (default: start)
# `start` does nothing if the beamline is already running, and returns once
# every IOC answers over Channel Access. Same as `simbeamline start|stop|...`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$here/.venv/bin/python" ]; then
    python="$here/.venv/bin/python"
else
    python="${PYTHON:-python3}"
fi
exec "$python" -m simbeamline.cli "${1:-start}" "${@:2}"
