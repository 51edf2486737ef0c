"""ophyd-async's own SimDetector (ophyd_async.epics.adsimdetector, 0.21.3) with its
HDF writer, run unmodified against the project's ADSim IOC: a bluesky ``count`` of
5 frames, read back from the file its documents name.

The IOC is started on the tests' extra port with no path map, so the directory
ophyd-async's PathProvider names (a pytest tmp directory) is where the IOC writes
on this host. ophyd-async talks Channel Access through aioca (libca), which reads
EPICS_CA_ADDR_LIST once, when it is imported; this process already has pyepics and
caproto contexts, so the ophyd-async side runs in a child process
(tests/adsim_ophyd_async_client.py) whose environment points at the IOC by address
only, and hands back every document it collected. The checks are made here: the
documents' shapes and names, the HDF5 file they name, and its frames against what
the IOC produced (image1 carries every frame; the last one is compared pixel for
pixel, and the file's NDArrayUniqueId against the driver's array counter).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import h5py
import numpy as np
import pytest

from adsim_extra import EXTRA_PORT, HOST, ExtraADSimIOC
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

CLIENT = Path(__file__).with_name("adsim_ophyd_async_client.py")
NUM = 5


def _run_client(prefix: str, directory: Path, documents: Path) -> subprocess.CompletedProcess:
    """The client, pointed at the IOC by address only. A PYEPICS_LIBCA is left out:
    bluesky's RunEngine imports ophyd, which points pyepics at epicscorelibs' libca,
    the one aioca loads, unless PYEPICS_LIBCA names another; with two copies of libca
    in one process aioca connects to nothing."""
    env = dict(os.environ, EPICS_CA_ADDR_LIST=f"{HOST}:{EXTRA_PORT}",
               EPICS_CA_AUTO_ADDR_LIST="NO")
    env.pop("PYEPICS_LIBCA", None)
    command = [sys.executable, str(CLIENT), prefix, str(directory), str(documents), str(NUM)]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"the ophyd-async client did not finish in 180 s:\n{(out or '')[-3000:]}\n"
                    f"{(err or '')[-5000:]}")


def test_ophyd_async_simdetector_count_reads_back_from_the_files_its_documents_name(tmp_path):
    import ophyd_async

    assert ophyd_async.__version__ == "0.21.3", ophyd_async.__version__
    directory = tmp_path / "data"
    directory.mkdir()
    documents_path = tmp_path / "documents.json"
    started = time.monotonic()
    with ExtraADSimIOC(env={"SIMBEAMLINE_AD_PATH_MAP": None},
                       log_path=tmp_path / "ioc.log") as ad:
        ad.plugin("image1")           # image1 carries each frame the driver makes
        run = _run_client(ad.prefix, directory, documents_path)
        assert run.returncode == 0, (f"ophyd-async client failed ({run.returncode}):\n"
                                     f"{run.stdout[-3000:]}\n{run.stderr[-5000:]}")
        ny, nx = int(ad.get("cam1:ArraySizeY_RBV")), int(ad.get("cam1:ArraySizeX_RBV"))
        dtype = np.dtype(ad.string("cam1:DataType_RBV").lower())
        wait_for(lambda: int(ad.get("image1:ArrayCounter_RBV")) == NUM, 30,
                 f"image1 to have received the {NUM} frames")
        last_frame = np.asarray(ad.get("image1:ArrayData"))[:ny * nx].reshape(ny, nx)
        last_id = int(ad.get("image1:UniqueId_RBV"))
        array_counter = int(ad.get("cam1:ArrayCounter_RBV"))
        ioc_file_name = ad.string("HDF1:FullFileName_RBV")
        after = {s: ad.string(s) for s in ("HDF1:Capture_RBV", "HDF1:FlushNow",
                                           "HDF1:WriteStatus", "cam1:DetectorState_RBV")}
    documents = json.loads(documents_path.read_text())
    names = [name for name, _ in documents]
    by_name = {}
    for name, doc in documents:
        by_name.setdefault(name, []).append(doc)

    # the run: one stream of NUM events, each with its frame in the file
    assert names[0] == "start" and names[-1] == "stop", names
    assert by_name["stop"][0]["exit_status"] == "success", by_name["stop"][0]
    assert len(by_name["event"]) == NUM and len(by_name["stream_datum"]) == NUM, names
    (descriptor,) = by_name["descriptor"]
    key = descriptor["data_keys"]["det"]
    assert key["shape"] == [1, ny, nx], key          # the frame size cam1 reports
    assert key["dtype_numpy"] == dtype.str and key["external"] == "STREAM:", key

    # the resource names the file the IOC wrote (no path map: the same path here)
    (resource,) = by_name["stream_resource"]
    assert resource["mimetype"] == "application/x-hdf5" and resource["data_key"] == "det"
    uri = urlparse(resource["uri"])
    assert uri.scheme == "file", resource["uri"]
    path = Path(uri.path)
    assert path.parent == directory and path.is_file(), (path, os.listdir(directory))
    assert str(path) == ioc_file_name
    params = resource["parameters"]
    datums = by_name["stream_datum"]
    assert all(d["stream_resource"] == resource["uid"] for d in datums)
    indices = [i for d in datums for i in range(d["indices"]["start"], d["indices"]["stop"])]
    assert indices == list(range(NUM)), datums

    # the frames: NUM of cam1's size and type, each a real frame, the last one image1's
    with h5py.File(path, "r") as f:
        data = f[params["dataset"]]
        assert data.shape == (NUM, ny, nx) and data.dtype == dtype, (data.shape, data.dtype)
        assert data.chunks == tuple(params["chunk_shape"]), (data.chunks, params)
        frames = [data[i] for i in indices]
        ids = f["/entry/instrument/NDAttributes/NDArrayUniqueId"][()]
    for i, frame in enumerate(frames):
        assert frame.max() > 0, f"frame {i} is all zero"
    for i in range(NUM - 1):
        assert not np.array_equal(frames[i], frames[i + 1]), f"frames {i} and {i + 1} are equal"
    np.testing.assert_array_equal(frames[-1], last_frame)
    np.testing.assert_array_equal(ids, np.arange(array_counter - NUM + 1, array_counter + 1))
    assert ids[-1] == last_id

    # the IOC is left as the real one would be: capture ended, flushes done, no error
    assert after == {"HDF1:Capture_RBV": "Done", "HDF1:FlushNow": "Done",
                     "HDF1:WriteStatus": "Write OK", "cam1:DetectorState_RBV": "Idle"}, after
    print(f"\nophyd-async {ophyd_async.__version__} SimDetector: count of {NUM} frames "
          f"({ny}x{nx} {dtype}) read back from {path.name} in "
          f"{time.monotonic() - started:.1f} s (IOC start included)")
