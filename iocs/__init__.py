"""simbeamline_iocs: caproto IOCs that stand in for the beamline's hardware.

This package never imports the client stack (ophyd, bluesky, databroker, apstools):
it runs in its own processes, and could run on other hosts.

caproto's server holds the tail of a burst of monitor updates for
``CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC`` (default 10 ms), waiting for more to batch
with it: a camera posting its frame, then its sum and frame counter, delivered the
last two 10 ms late, every frame. The IOCs here post bursts per frame, not floods, so
they wait 1 ms (set here, before any caproto import; a value in the environment
wins). benchmarks/README.md, "Beamline session", has the figures.
"""

import os

os.environ.setdefault("CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC", "0.001")
