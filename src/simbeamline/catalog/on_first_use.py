"""A session's ``db`` and ``cat``, opened when first used.

Opening the catalog imports databroker, and with it pandas, xarray and dask: 1.7 s of
a session's 3 s start (benchmarks/README.md, "Beamline session"). A session records
its runs without them (:mod:`.recording` writes through the catalog's index), so the
databroker objects are built only when the user first reads a run (``db[-1]``,
``cat[uid]``, ``h.data(...)``). Until then ``db`` and ``cat`` are :class:`OnFirstUse`
stand-ins that pass every use on to the real object, built once.
"""

from __future__ import annotations

import threading
from typing import Callable


class OnFirstUse:
    """Stands for the object *build()* returns, built at its first use.

    Attribute access, item access, calls, iteration, ``len``, ``in``, ``repr`` and
    ``isinstance`` all act on the real object (``obj.__class__`` is its class). The real
    object is ``obj.__wrapped__``, as for other proxies (``functools.wraps``, wrapt).
    """

    __slots__ = ("_build", "_built", "_lock")

    def __init__(self, build: Callable[[], object]):
        object.__setattr__(self, "_build", build)
        object.__setattr__(self, "_built", None)
        object.__setattr__(self, "_lock", threading.Lock())

    @property
    def __wrapped__(self):
        built = object.__getattribute__(self, "_built")
        if built is None:
            with object.__getattribute__(self, "_lock"):
                built = object.__getattribute__(self, "_built")
                if built is None:
                    built = object.__getattribute__(self, "_build")()
                    object.__setattr__(self, "_built", built)
        return built

    @property
    def __class__(self):
        return type(self.__wrapped__)

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)

    def __setattr__(self, name, value):
        setattr(self.__wrapped__, name, value)

    def __dir__(self):
        return dir(self.__wrapped__)

    def __repr__(self):
        return repr(self.__wrapped__)

    def __getitem__(self, key):
        return self.__wrapped__[key]

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)

    def __iter__(self):
        return iter(self.__wrapped__)

    def __len__(self):
        return len(self.__wrapped__)

    def __contains__(self, item):
        return item in self.__wrapped__

    def __bool__(self):
        return bool(self.__wrapped__)
