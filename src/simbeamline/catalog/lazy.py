"""Opening the catalog without importing what it does not need.

databroker builds every catalog's handler registry by loading each
``databroker.handlers`` entry point, which imports ophyd (``NPY_SEQ``),
area-detector-handlers and h5py even to list runs. :func:`lazy_handler_registry` maps
each spec to a :class:`LazyHandler` class that loads its entry point when a frame of
that spec is first read.

(``databroker.core`` itself imports dask.array, and through it scipy.sparse, at import
time: the standard library's LazyLoader cannot defer a module that is then imported by
an ``import`` statement on Python 3.11, so that cost stays until databroker changes.)
"""

from __future__ import annotations

class LazyHandler:
    """Base of the handler classes :func:`lazy_handler_class` makes: an instance builds the
    real handler (loading its entry point the first time) and passes every call on.

    A real class, because event-model's Filler subclasses each registered handler class
    to coerce its output (``force_numpy``, ``delayed``).
    """

    _entry_point = None
    _loaded = None

    @classmethod
    def handler_class(cls):
        if cls._loaded is None:
            cls._loaded = cls._entry_point.load()
        return cls._loaded

    def __init__(self, *args, **kwargs):
        self._handler = self.handler_class()(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self._handler(*args, **kwargs)

    def get_file_list(self, datum_kwarg_gen):
        return self._handler.get_file_list(datum_kwarg_gen)

    def __getattr__(self, name):
        if name == "_handler":
            raise AttributeError(name)
        return getattr(self._handler, name)


def lazy_handler_class(entry_point) -> type:
    """A :class:`LazyHandler` class for one ``databroker.handlers`` entry point."""
    return type(f"Lazy_{entry_point.name}", (LazyHandler,), {"_entry_point": entry_point})


def lazy_handler_registry(group: str = "databroker.handlers") -> dict:
    """``spec -> LazyHandler`` for every installed handler entry point (the first of a name
    wins, as databroker's own discovery does)."""
    from importlib.metadata import entry_points

    registry: dict = {}
    for entry_point in entry_points(group=group):
        registry.setdefault(entry_point.name, lazy_handler_class(entry_point))
    return registry
