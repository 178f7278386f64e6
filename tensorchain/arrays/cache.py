"""Caches: bounded, safe to share between threads, pickled empty.

What tensorchain caches (compiled programs, checked sizes) is keyed by sizes,
so a loop over batch sizes would otherwise grow without bound; entries hold
closures, which do not pickle, and are cheap to rebuild on a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any


class LRUCache:
    """At most ``maxsize`` entries, the least recently used evicted first.

    Every lookup and update holds one lock; a missing entry is built outside
    it, so threads never wait on each other's builds (two threads missing the
    same key both build it, and either result is right). A pickled cache
    comes back empty, with its size.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The entry for ``key``, made by ``build()`` on a miss."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = build()
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > max(self.maxsize, 0):
                self._data.popitem(last=False)
        return value

    def peek(self, key: Hashable) -> Any:
        """The entry for ``key`` or None, without a lock or an update of the
        order (a lookup is atomic in CPython): for the hot path of a call."""
        return self._data.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` under ``key`` (the least recently used evicted)."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > max(self.maxsize, 0):
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, key: Hashable) -> Any:
        with self._lock:
            return self._data[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[Hashable]:
        with self._lock:
            return iter(list(self._data))

    def __getstate__(self) -> dict[str, Any]:
        return {"maxsize": self.maxsize}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["maxsize"])

    def __repr__(self) -> str:
        return f"<LRUCache {len(self)}/{self.maxsize}>"
