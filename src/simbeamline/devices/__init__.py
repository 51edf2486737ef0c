"""The beamline's ophyd devices and their assembly.

- :mod:`.cameras`: the spot cameras (``spot``, ``dot``), ring current, motors, shutter;
- :mod:`.adsimdet`: the ADSimDetector built with apstools' ``ad_creator`` (the APS example);
- :mod:`.beamline`: :func:`~.beamline.build_beamline`, the one place devices are created
  and connected.
"""
