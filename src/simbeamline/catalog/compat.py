"""databroker 1.2 with the newer xarray it runs on: one warning that is not the user's.

``cat[-1].primary.read()`` goes through databroker's ``DataSourceMixin._get_schema``,
which reads ``dict(Dataset.dims)``; xarray 2023.12+ warns there (FutureWarning: the
return type of ``Dataset.dims`` will change) on every read, about databroker's code, not
the user's. :func:`quiet_dataset_dims` wraps that one method so that this one warning,
raised from that call, is not shown; the values are unchanged (today's ``dims`` mapping
is what ``sizes`` gives) and every other warning passes as before.
"""

from __future__ import annotations

import functools
import warnings

#: The start of xarray's message.
DIMS_WARNING = "The return type of `Dataset.dims` will be changed"


def quiet_dataset_dims() -> None:
    """Wrap databroker's ``DataSourceMixin._get_schema`` (once) as the docstring says."""
    from databroker.intake_xarray_core.base import DataSourceMixin

    original = DataSourceMixin._get_schema
    if getattr(original, "_quiet_dims", False):
        return

    @functools.wraps(original)
    def _get_schema(self):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=DIMS_WARNING, category=FutureWarning)
            return original(self)

    _get_schema._quiet_dims = True
    DataSourceMixin._get_schema = _get_schema
