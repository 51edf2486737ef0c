"""The beamline's ophyd devices and their assembly.

- :mod:`.cameras`: the spot cameras (``spot``, ``dot``), ring current, motors, shutter;
- :mod:`.adsimdet`: the ADSimDetector built with apstools' ``ad_creator`` (the APS example);
- :mod:`.beamline`: :func:`~.beamline.build_beamline`, the one place devices are created
  and connected.

Before ophyd is imported, what it needs of epicscorelibs is imported without
setuptools (:mod:`simbeamline.lean_imports`).
"""

from ..lean_imports import ophyd_without_setuptools

ophyd_without_setuptools()
