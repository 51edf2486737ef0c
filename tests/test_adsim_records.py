"""The ADSim IOC's records made channels on first use, and its table parsed once.

Plain-function tests of :mod:`simbeamline_iocs.adsim.records` and the table cache,
then a real IOC process started from a damaged and from an unwritable cache: it
answers over Channel Access with the real IOC's boot values and keeps a good cache.
(`test_adsim_surface.py` reads every record over CA, so every record made a channel
late is checked against the real IOC's templates there.)
"""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import pytest
from adsim_extra import ExtraADSimIOC
from simbeamline_iocs.adsim import channels, table
from simbeamline_iocs.adsim.ioc import ADSimIOC


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("image_ftvl", sorted(channels.IMAGE_FTVL))
def test_a_record_not_used_yet_reads_as_the_channel_it_would_become(image_ftvl):
    specs = table.load_table()
    differing = [spec.suffix for spec in specs
                 if not _same(channels.initial_value(spec, image_ftvl=image_ftvl),
                              channels.make_channel(spec, image_ftvl=image_ftvl).value)]
    assert differing == []


def test_records_become_channels_only_when_used():
    ioc = ADSimIOC("lazy:")
    records = ioc.channels
    assert len(records) == len(table.load_table()) and records.built() == 0
    # the soft records' boot computation reads two thousand records, changes one
    asyncio.run(ioc.soft.compute_all())
    assert records.built() <= 5, records.built()
    before = records.built()
    assert "cam1:Acquire" in records and "cam1:NoSuchRecord" not in records
    assert ioc.get("cam1:ImageMode") == "Continuous" and ioc.numeric("cam1:ImageMode") == 2
    assert ioc.get("cam1:SizeX") == 1024
    assert records.built() == before            # looked at, not built
    channel = records["cam1:ImageMode"]
    assert records.built() == before + 1 and records["cam1:ImageMode"] is channel
    assert channel.value == "Continuous" and channel.enum_strings[0] == "Single"
    with pytest.raises(KeyError):
        records["cam1:NoSuchRecord"]
    assert records.get("cam1:NoSuchRecord") is None


def test_the_servers_database_names_every_record_and_keeps_fields_beside_them():
    ioc = ADSimIOC("lazy:")
    pvdb = ioc.pvdb
    assert len(pvdb) == len(ioc.channels) and "lazy:cam1:Acquire" in pvdb
    assert "cam1:Acquire" not in pvdb and "other:cam1:Acquire" not in pvdb
    assert sorted(pvdb)[:3] == sorted("lazy:" + s for s in ioc.channels)[:3]
    assert ioc.channels.built() == 0
    assert pvdb["lazy:cam1:Acquire"] is ioc.channels["cam1:Acquire"]
    field = channels.make_channel(table.load_table()[0])
    pvdb["lazy:cam1:Acquire.DESC"] = field           # as caproto caches record.FIELD
    assert pvdb["lazy:cam1:Acquire.DESC"] is field and "lazy:cam1:Acquire.DESC" in pvdb
    with pytest.raises(TypeError, match="cannot be replaced"):
        pvdb["lazy:cam1:Acquire"] = field
    with pytest.raises(KeyError):
        pvdb["lazy:cam1:NoSuchRecord"]
    assert not pvdb.has_hooks


def _cache_file(directory):
    return directory / f"adsim_table-{table._table_key()}.pickle"


def test_the_table_is_parsed_once_and_a_damaged_cache_is_parsed_again(tmp_path, monkeypatch):
    monkeypatch.setenv(table.CACHE_DIR_ENV, str(tmp_path))
    parsed = table._parse_specs()
    stale = tmp_path / "adsim_table-0123456789abcdef01234567.pickle"
    stale.write_bytes(b"an earlier table")
    table._load_specs.cache_clear()
    try:
        assert table._load_specs() == parsed
        cache = _cache_file(tmp_path)
        assert pickle.loads(cache.read_bytes()) == parsed and not stale.exists()
        for damage in (b"not a pickle", cache.read_bytes()[:1000], pickle.dumps(["a list"])):
            cache.write_bytes(damage)
            table._load_specs.cache_clear()
            assert table._load_specs() == parsed
            assert pickle.loads(cache.read_bytes()) == parsed
        assert [p.name for p in tmp_path.iterdir()] == [cache.name]   # no temporary left
    finally:
        table._load_specs.cache_clear()


def test_a_cache_that_cannot_be_written_costs_only_the_parse(tmp_path, monkeypatch):
    blocked = tmp_path / "a file"
    blocked.write_text("not a directory")
    monkeypatch.setenv(table.CACHE_DIR_ENV, str(blocked / "cache"))
    table._load_specs.cache_clear()
    try:
        assert table._load_specs() == table._parse_specs()
    finally:
        table._load_specs.cache_clear()


@pytest.mark.parametrize("damage", ["damaged", "unwritable"])
def test_the_ioc_starts_from_a_damaged_or_unwritable_table_cache(tmp_path, damage):
    cache_dir = tmp_path / "cache"
    if damage == "damaged":
        cache_dir.mkdir()
        _cache_file(cache_dir).write_bytes(b"\x80\x05 damaged on disk")
    else:
        cache_dir.write_text("a file where the cache directory should be")
    with ExtraADSimIOC(env={table.CACHE_DIR_ENV: str(cache_dir)}) as ad:
        assert ad.get("cam1:MaxSizeX_RBV") == 1024 and ad.get("cam1:MaxSizeY_RBV") == 1024
        assert ad.string("cam1:ImageMode") == "Continuous"
        assert ad.string("HDF1:PluginType_RBV").startswith("NDFileHDF5")
    if damage == "damaged":
        assert pickle.loads(_cache_file(cache_dir).read_bytes()) == table._parse_specs()
    else:
        assert cache_dir.read_text() == "a file where the cache directory should be"
