"""simbeamline_iocs: caproto IOCs that stand in for the beamline's hardware.

This package never imports the client stack (ophyd, bluesky, databroker, apstools):
it runs in its own processes, and could run on other hosts.
"""
