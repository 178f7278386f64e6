"""The bounded, thread-safe cache behind every tensorchain cache."""

import pickle

import pytest

from tensorchain.arrays.cache import LRUCache


def test_the_least_recently_used_entry_goes_first():
    cache = LRUCache(2)
    built = []

    def build(key):
        return lambda: built.append(key) or key.upper()

    assert cache.get("a", build("a")) == "A"
    assert cache.get("b", build("b")) == "B"
    assert cache.get("a", build("a")) == "A"  # a hit: a is now the most recent
    cache.get("c", build("c"))  # evicts b
    assert list(cache) == ["a", "c"] and len(cache) == 2
    cache.get("b", build("b"))
    assert built == ["a", "b", "c", "b"]


def test_a_failed_build_caches_nothing():
    cache = LRUCache(4)

    def fail():
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        cache.get("k", fail)
    assert "k" not in cache and len(cache) == 0


def test_a_pickled_cache_comes_back_empty_with_its_size():
    cache = LRUCache(3)
    cache.get("f", lambda: lambda x: x)  # a closure: not picklable itself
    back = pickle.loads(pickle.dumps(cache))
    assert len(back) == 0 and back.maxsize == 3
    assert back.get("f", lambda: 5) == 5
