"""Imports a session makes without setuptools (0.3 s and 16 MB of every session).

Nothing in a session uses setuptools, yet two libraries pull it in:

- ophyd imports ``epicscorelibs.path`` (to give pyepics epicscorelibs' libca), which
  needs two functions of ``setuptools_dso.runtime``; that package's ``__init__``
  imports setuptools and pkg_resources. :func:`ophyd_without_setuptools` imports
  ``epicscorelibs.path.pyepics`` first, under the stand-in of
  :mod:`simbeamline_iocs.epics_libraries` (which the ADSim IOC uses for p4p).
- databroker imports intake, whose ``intake.container.dataframe`` imports
  ``distutils.version`` for ``LooseVersion``. setuptools' ``_distutils_hack`` answers
  ``import distutils`` with setuptools' own copy, importing all of setuptools and
  pkg_resources first. :func:`databroker_without_setuptools` gives intake the
  standard library's ``distutils`` (Python 3.11 still has it) and imports databroker.

Either leaves the world as a plain import would for whoever imports setuptools later:
setuptools then replaces ``distutils`` with its own copy, as it does whenever distutils
was imported first (it says so in a warning).
"""

from __future__ import annotations

import importlib
import sys
import warnings

from simbeamline_iocs.epics_libraries import import_without_setuptools


def ophyd_without_setuptools() -> None:
    """Import what ophyd needs of epicscorelibs without setuptools (before ophyd)."""
    if "epics.ca" in sys.modules:       # as ophyd: only before pyepics loads libca
        return
    try:
        import_without_setuptools("epicscorelibs.path.pyepics")
    except ImportError:                 # no epicscorelibs: pyepics uses its own libca
        pass


def databroker_without_setuptools() -> None:
    """Import databroker, giving intake the standard library's ``distutils.version``."""
    if "distutils" not in sys.modules:
        shims = [finder for finder in sys.meta_path
                 if type(finder).__module__ == "_distutils_hack"]
        for shim in shims:
            sys.meta_path.remove(shim)
        try:
            with warnings.catch_warnings():     # "distutils is deprecated" (from 3.10)
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module("distutils.version")
        except ImportError:             # Python 3.12+: none in the standard library
            pass
        finally:
            sys.meta_path[0:0] = shims
    importlib.import_module("databroker")
