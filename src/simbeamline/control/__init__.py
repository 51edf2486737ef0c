"""Running the beamline: where it lives, how its processes talk, starting and stopping them.

- :mod:`.config`: :class:`~.config.BeamlineConfig`, the prefixes, ports, addresses and
  directories of one beamline (from ``SIMBEAMLINE_*`` variables or options);
- :mod:`.ca_env`: the Channel Access environment of the project's client processes;
- :mod:`.launcher`: the IOCs as supervisord programs: start, stop, status.

Light on purpose: the command line imports it before anything heavy.
"""
