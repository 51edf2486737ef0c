"""Two writers of one catalog given the same run (two subscriptions of one catalog,
as ``RE.subscribe(databroker.catalog['simbeamline'].v1.insert)`` in a session makes):
the run is recorded once, whole, and the second writer says it left the run alone.
Real run files and index in a temporary directory; documents from event-model."""

from __future__ import annotations

import event_model
import numpy as np
import pytest

from simbeamline.catalog.index import RunIndex
from simbeamline.catalog.runfile import iter_documents
from simbeamline.catalog.writer import CatalogWriter, RunAlreadyRecorded


def documents(scan_id: int) -> list[tuple[str, dict]]:
    run = event_model.compose_run(metadata={"scan_id": scan_id})
    stream = run.compose_descriptor(name="primary", data_keys={
        "I": {"dtype": "number", "shape": [], "source": "PV:sim:current"}})
    events = [stream.compose_event(data={"I": 500.0 - n}, timestamps={"I": 0.0}, seq_num=n + 1)
              for n in range(3)]
    return ([("start", run.start_doc), ("descriptor", stream.descriptor_doc)]
            + [("event", event) for event in events] + [("stop", run.compose_stop())])


def test_a_second_writer_of_the_same_catalog_leaves_the_run_to_the_first(tmp_path):
    index = RunIndex(tmp_path)
    first, second = CatalogWriter(index), CatalogWriter(RunIndex(tmp_path))
    scan_id = index.allocate_scan_id()
    docs = documents(scan_id)
    with pytest.warns(RunAlreadyRecorded, match="already being recorded"):
        for name, doc in docs:
            first(name, doc)
            second(name, doc)
    uid = docs[0][1]["uid"]
    recorded = list(iter_documents(str(tmp_path / f"{uid}.msgpack")))
    assert [name for name, _ in recorded] == ["start", "descriptor"] + ["event_page"] * 3 + ["stop"]
    currents = [value for name, doc in recorded if name == "event_page" for value in doc["data"]["I"]]
    assert np.allclose(currents, [500.0, 499.0, 498.0])         # each document once
    assert [row.uid for row in index.listed()] == [uid]
    assert index.allocate_scan_id() == scan_id + 1     # its scan_id was not given back
