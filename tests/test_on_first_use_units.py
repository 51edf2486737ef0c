"""simbeamline.catalog.on_first_use: the session's db and cat, built at first use
(pure logic, in this process)."""

from __future__ import annotations

import threading

import pytest

from simbeamline.catalog.on_first_use import OnFirstUse


class Catalog:
    def __init__(self):
        self.runs = {"a": 1, "b": 2}
        self.name = "runs"

    def __getitem__(self, key):
        return self.runs[key]

    def __iter__(self):
        return iter(self.runs)

    def __len__(self):
        return len(self.runs)

    def __call__(self, **query):
        return sorted(query)

    def __repr__(self):
        return "<Catalog runs>"


def test_nothing_is_built_until_first_use_and_then_only_once():
    built = []
    proxy = OnFirstUse(lambda: built.append(Catalog()) or built[-1])
    assert built == []
    assert proxy["a"] == 1 and proxy.name == "runs" and len(proxy) == 2
    assert list(proxy) == ["a", "b"] and "b" in proxy and proxy(x=1, a=2) == ["a", "x"]
    assert repr(proxy) == "<Catalog runs>" and "runs" in dir(proxy) and bool(proxy)
    assert isinstance(proxy, Catalog) and proxy.__class__ is Catalog
    proxy.name = "renamed"
    assert len(built) == 1 and built[0].name == "renamed" and proxy.__wrapped__ is built[0]


def test_threads_using_it_at_once_share_one_build():
    built = []
    started = threading.Barrier(8)

    def build():
        built.append(Catalog())
        return built[-1]

    proxy = OnFirstUse(build)
    seen = []

    def use():
        started.wait()
        seen.append(proxy.__wrapped__)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and all(found is built[0] for found in seen)


def test_a_failed_build_is_raised_at_each_use_until_one_succeeds():
    attempts = []

    def build():
        attempts.append(1)
        if len(attempts) == 1:
            raise PermissionError("catalog directory not readable")
        return Catalog()

    proxy = OnFirstUse(build)
    with pytest.raises(PermissionError, match="not readable"):
        proxy["a"]
    assert proxy["a"] == 1 and len(attempts) == 2
