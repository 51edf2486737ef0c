"""Reading the catalog: no warning that is not the user's, no import it does not need, and
the run-file reader's handling of bad bytes (issues 13, 14 and 9). No IOC needed: runs
come from a real RunEngine with ophyd's simulated detector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from session_support import CHILD_TIMEOUT

WRITE_RUNS = r"""
from bluesky import RunEngine
from bluesky.plans import count
from ophyd.sim import det
from simbeamline.catalog.store import open_db, record_runs
from simbeamline.control.config import BeamlineConfig
db = open_db(BeamlineConfig.from_env())
RE = RunEngine({})
record_runs(RE, db)
for _ in range(3):
    RE(count([det], num=5))
"""


@pytest.fixture
def data_dir(tmp_path):
    env = {**os.environ, "SIMBEAMLINE_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-c", WRITE_RUNS], env=env, check=True,
                   timeout=CHILD_TIMEOUT, capture_output=True)
    return tmp_path / "data"


def test_primary_read_emits_no_dataset_dims_warning(data_dir):
    from simbeamline.catalog.store import BeamlineCatalog

    cat = BeamlineCatalog(data_dir=data_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = cat[-1].primary.read()
    assert list(data["det"].values) == [1.0] * 5
    assert not [w for w in caught if "Dataset.dims" in str(w.message)], \
        [str(w.message) for w in caught]


OPEN_AND_LIST = r"""
import json, sys
import databroker
cat = databroker.catalog["simbeamline"]
runs = list(cat)
run = cat[-1]
h = databroker.Broker.named("simbeamline")[3]
print(json.dumps({"runs": len(runs), "scan_id": h.start["scan_id"],
                  "imported": [m for m in ("ophyd", "h5py", "area_detector_handlers")
                               if m in sys.modules]}))
"""


def test_opening_the_catalog_loads_no_handler_package(data_dir):
    """Handlers (ophyd's NPY_SEQ, area-detector-handlers, h5py) load when a frame is read,
    not when the catalog is opened or a run is found."""
    env = {**os.environ, "SIMBEAMLINE_DATA_DIR": str(data_dir)}
    out = subprocess.run([sys.executable, "-c", OPEN_AND_LIST], env=env, check=True,
                         timeout=CHILD_TIMEOUT, capture_output=True, text=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found == {"runs": 3, "scan_id": 3, "imported": []}


def _documents(n_events=4):
    from event_model import compose_run

    run = compose_run(metadata={"scan_id": 7})
    stream = run.compose_descriptor(
        name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}})
    docs = [("start", run.start_doc), ("descriptor", stream.descriptor_doc)]
    for n in range(n_events):
        event = stream.compose_event(data={"x": float(n)}, timestamps={"x": 0.0}, seq_num=n + 1)
        docs.append(("event", event))
    docs.append(("stop", run.compose_stop()))
    return docs


def test_a_bad_byte_costs_one_document_when_recovered(tmp_path):
    from simbeamline.catalog import runfile

    docs = _documents()
    path = tmp_path / "run.msgpack"
    chunks = [runfile.encode(name, doc) for name, doc in docs]
    data = bytearray(b"".join(chunks))
    third = sum(len(c) for c in chunks[:3])  # the second event's pair starts here
    data[third + 1] = 0xC1  # its name's string marker: never used in msgpack
    path.write_bytes(bytes(data))

    report = runfile.scan(path)
    assert report.state == runfile.DAMAGED and f"byte {third}" in report.problem
    with pytest.raises(runfile.RunFileDamaged, match=str(path)):
        list(runfile.iter_documents(path))
    recovered, lost = runfile.recover_documents(path)
    assert [name for name, _ in recovered] == ["start", "descriptor", "event", "event",
                                              "event", "stop"]
    assert lost == [(third, third + len(chunks[3]))]


@pytest.mark.parametrize("cut", ["mid-document", "at a boundary"])
def test_a_file_cut_short_is_incomplete_unless_its_writer_lives(tmp_path, cut):
    from simbeamline.catalog import runfile

    chunks = [runfile.encode(name, doc) for name, doc in _documents()]
    data = b"".join(chunks[:-1])  # no stop document
    if cut == "mid-document":
        data += chunks[-1][:5]
    path = tmp_path / "run.msgpack"
    path.write_bytes(data)
    assert runfile.scan(path).state == runfile.INCOMPLETE
    assert runfile.scan(path, writer_alive=True).state == runfile.OPEN
    assert [name for name, _ in runfile.iter_documents(path)][-1] == "event"
