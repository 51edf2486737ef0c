"""A write that fails in the middle of a multi-frame (Capture or Stream) file keeps
every frame written before it, on an IOC of the test's own (CA port 5082).

How the failure is provoked: the IOC process is started with a file-size limit
(RLIMIT_FSIZE, ``ulimit -f``) of about 3.6 MB, so writing the fourth 1 MiB frame
of a file fails with EFBIG ("File too large"), exactly as a full disk fails a
write with ENOSPC, part way through the file. The limit is chosen because it
really fails for root too (root ignores file permissions, so a read-only
directory would not fail in CI containers that run as root), needs no mount, no
privileges and no special filesystem, and is POSIX (Linux and macOS). Python
ignores SIGXFSZ, so the IOC sees the error instead of being killed. A directory
standing where the file should go cannot serve here: it fails the opening of a
file, not a write in the middle of one (test_adsim_hdf5 covers that case).
"""

from __future__ import annotations

import resource

import h5py
import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC

pytestmark = pytest.mark.timeout(180)

FRAMES = 8
FRAME_BYTES = 1024 * 1024                  # 1024 x 1024 UInt8
LIMIT = int(3.6 * FRAME_BYTES)             # room for three frames and the file's metadata


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.mark.parametrize("mode", ["Stream", "Capture"])
def test_failure_mid_file_keeps_the_frames_written_before_it(tmp_path, mode):
    host_root = tmp_path / "ioc_tmp"
    ioc_dir = "/tmp/partial/"
    with ExtraADSimIOC([f"--path-map=/tmp={host_root}"], preexec_fn=limit_file_size,
                       log_path=tmp_path / "ioc.log") as ad:
        # an earlier file, in Single mode, which must stay as it is
        ad.camera()
        ad.hdf(ioc_dir, name="earlier")
        ad.acquire()
        earlier = host_root / "partial" / "earlier_000000.h5"
        before = earlier.read_bytes()

        ad.camera(mode="Multiple", num_images=FRAMES, exposure=0.01, period=0.02)
        ad.hdf(ioc_dir, name=mode.lower(), mode=mode, num_capture=FRAMES, blocking="Yes")
        ad.put("HDF1:Capture", 1, wait=False)
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Capturing")
        ad.acquire()                                         # returns: acquisition ended
        ad.wait_for("HDF1:Capture_RBV", lambda v: v == "Done")

        status, message = ad.string("HDF1:WriteStatus"), ad.string("HDF1:WriteMessage")
        written = int(ad.get("HDF1:NumCaptured_RBV"))
        full = ad.string("HDF1:FullFileName_RBV")
        images = int(ad.get("cam1:NumImagesCounter_RBV"))
        state = ad.string("cam1:DetectorState_RBV")
        assert ad.string("cam1:Acquire_RBV") == "Done"
        assert ad.string("cam1:AcquireBusy") == "Done"

    assert status == "Write error"
    assert "File too large" in message, message
    assert f"{mode.lower()}_000000.h5" in message, message
    assert 0 < written < FRAMES, (written, message)
    assert f"closed with {written} frame" in message, message
    assert full == f"{ioc_dir}{mode.lower()}_000000.h5"
    if mode == "Stream":
        # frames are written as they come: the failure stops the acquisition
        assert state == "Aborted"
        assert images < FRAMES
    path = host_root / "partial" / f"{mode.lower()}_000000.h5"
    assert path.stat().st_size <= LIMIT
    with h5py.File(path, "r") as f:                          # closed properly: readable
        data = f["/entry/data/data"]
        assert data.shape == (written, 1024, 1024)
        ids = f["/entry/instrument/NDAttributes/NDArrayUniqueId"][()]
        assert len(ids) == written
        np.testing.assert_array_equal(np.diff(ids), np.ones(written - 1))
        for i in range(written):
            assert data[i].max() > 0                         # a Peaks frame, not zeros
    assert earlier.read_bytes() == before
    assert sorted(p.name for p in earlier.parent.iterdir()) == sorted([earlier.name, path.name])
