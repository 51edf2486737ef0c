"""The beamline's ophyd devices and their assembly.

- :mod:`.cameras`: the spot cameras (``spot``, ``dot``), ring current, motors, shutter;
- :mod:`.adsimdet`: the ADSimDetector built with apstools' ``ad_creator`` (the APS example);
- :mod:`.beamline`: :func:`~.beamline.build_beamline`, the one place devices are created
  and connected.

Before ophyd is imported, ``epicscorelibs.path.pyepics`` (which ophyd imports to give
pyepics epicscorelibs' libca) is imported without setuptools
(:mod:`simbeamline_iocs.epics_libraries`): 0.24 s less of every session's start.
"""

import sys

from simbeamline_iocs.epics_libraries import import_without_setuptools

if "epics.ca" not in sys.modules:       # as ophyd does: only before pyepics loads libca
    try:
        import_without_setuptools("epicscorelibs.path.pyepics")
    except ImportError:                 # no epicscorelibs: pyepics uses its own libca
        pass
