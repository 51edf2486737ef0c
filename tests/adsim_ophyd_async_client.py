"""The ophyd-async side of tests/test_adsim_ophyd_async.py, run as a child process:
``python adsim_ophyd_async_client.py PREFIX DIRECTORY DOCUMENTS.json [NUM]``.

ophyd-async's own SimDetector (ophyd_async.epics.adsimdetector) with its HDF writer,
as a user sets it up: a StaticPathProvider naming DIRECTORY, a bluesky RunEngine,
``RE(bp.count([det], num=NUM))``. Nothing of the project is imported, and the IOC is
found by its prefix and the Channel Access address list only: the parent sets
EPICS_CA_ADDR_LIST/EPICS_CA_AUTO_ADDR_LIST in this process's environment, so they
are in place before aioca (libca from epicscorelibs) is imported and reads them.

Every document the RunEngine emits is written to DOCUMENTS.json as a list of
``[name, document]`` pairs, for the parent to check against the files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    prefix, directory, out = argv[0], argv[1], Path(argv[2])
    num = int(argv[3]) if len(argv) == 4 else 5
    if not os.environ.get("EPICS_CA_ADDR_LIST"):
        print("EPICS_CA_ADDR_LIST is not set: the IOC would be searched for by broadcast",
              file=sys.stderr)
        return 2

    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
    from ophyd_async.epics.adcore import ADWriterFactory
    from ophyd_async.epics.adsimdetector import SimDetector

    RE = RunEngine({})
    documents = []
    RE.subscribe(lambda name, doc: documents.append([name, doc]))
    path_provider = StaticPathProvider(StaticFilenameProvider("oasync"), Path(directory))
    with init_devices():
        det = SimDetector(prefix, ADWriterFactory.hdf(path_provider))
    RE(bp.count([det], num=num))
    out.write_text(json.dumps(documents, default=_jsonable))
    print(f"{len(documents)} documents written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
