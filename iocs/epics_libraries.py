"""Import the EPICS libraries' Python packages without setuptools.

``epicscorelibs.path`` (which ophyd imports to point pyepics at its libca) and p4p
(through ``pvxslibs.path``) need two functions of ``setuptools_dso.runtime``. Importing
that module runs the ``setuptools_dso`` package's ``__init__`` first, which imports
setuptools, pkg_resources and Cython's compiler, for building extensions: 0.24 s of
an ophyd import and 0.45 s of p4p's, on every IOC and every session start.
:func:`import_without_setuptools` imports modules while the package is a bare
stand-in holding just those two functions; afterwards the real package imports as
usual (its ``runtime`` module is the one already loaded).

Used by both sides (the ADSim IOC for p4p, the session's devices for ophyd): plain
Python, no EPICS client library of its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def import_without_setuptools(*modules: str) -> None:
    """Import *modules* (dotted names) with ``setuptools_dso`` as a stand-in holding
    ``dylink_prepare_dso`` and ``find_dso``. An ImportError of a module propagates, as
    a plain import's would. Where ``setuptools_dso`` is missing or already imported,
    the modules are imported plainly."""
    spec = (None if "setuptools_dso" in sys.modules
            else importlib.util.find_spec("setuptools_dso"))
    if spec is None or not spec.submodule_search_locations:
        for module in modules:
            importlib.import_module(module)
        return
    stand_in = types.ModuleType("setuptools_dso")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["setuptools_dso"] = stand_in
    try:
        runtime = importlib.import_module("setuptools_dso.runtime")
        stand_in.dylink_prepare_dso = runtime.dylink_prepare_dso
        stand_in.find_dso = runtime.find_dso
        for module in modules:
            importlib.import_module(module)
    finally:
        if sys.modules.get("setuptools_dso") is stand_in:
            del sys.modules["setuptools_dso"]
