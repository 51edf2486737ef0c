"""The path map end to end, on an IOC of the test's own (CA port 5082): the
directory the IOC names (FilePath, FilePath_RBV, FullFileName_RBV) lives at the
host directory the map gives, whether the map comes from ``--path-map`` or from
SIMBEAMLINE_AD_PATH_MAP, and ``--path-map`` wins over the environment."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC

pytestmark = pytest.mark.timeout(180)

#: A directory the IOC names that this host does not have: only the map makes it writable.
IOC_ROOT = "/simbeamline-ioc-data"


@pytest.mark.parametrize("how", ["option", "environment"])
def test_file_lands_where_the_map_says(tmp_path, how):
    mapped = tmp_path / "mapped"
    decoy = tmp_path / "decoy"
    if how == "option":
        # the environment names another place: the option must win
        args, env = [f"--path-map={IOC_ROOT}={mapped}"], {"SIMBEAMLINE_AD_PATH_MAP": f"{IOC_ROOT}={decoy}"}
    else:
        args, env = [], {"SIMBEAMLINE_AD_PATH_MAP": f"/elsewhere=/nowhere,{IOC_ROOT}={mapped}"}
    ioc_dir = f"{IOC_ROOT}/run-{how}/"
    with ExtraADSimIOC(args, env=env, log_path=tmp_path / "ioc.log") as ad:
        ad.camera(size=(64, 48))
        ad.hdf(ioc_dir, name="mapped")
        assert ad.string("HDF1:FilePath_RBV") == ioc_dir         # as the IOC names it
        assert ad.string("HDF1:FilePathExists_RBV") == "Yes"
        ad.acquire()
        ad.wait_for("HDF1:FullFileName_RBV", lambda v: v.endswith(".h5"))
        full = ad.string("HDF1:FullFileName_RBV")
        assert full == f"{ioc_dir}mapped_000000.h5"
        assert ad.string("HDF1:WriteStatus") == "Write OK"
        unique_id = ad.get("cam1:ArrayCounter_RBV")
    host_file = mapped / f"run-{how}" / "mapped_000000.h5"
    assert sorted(p.name for p in host_file.parent.iterdir()) == [host_file.name]
    with h5py.File(host_file, "r") as f:
        assert f["/entry/data/data"].shape == (48, 64)
        assert f["/entry/data/data"].dtype == np.uint8
        assert f["/entry/instrument/NDAttributes/NDArrayUniqueId"][0] == unique_id
    assert not decoy.exists()
    assert not os.path.exists(IOC_ROOT)           # nothing under the name the IOC uses
