"""A small bounded LRU cache: memory stays bounded however long someone slides."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A thread-safe least-recently-used cache of at most ``maxsize`` entries.

    Dash serves callbacks from several threads; the lock guards the order, not the compute,
    so two threads may compute the same missing entry once each (harmless, and never blocks a
    fast request behind a slow one).

    Parameters
    ----------
    maxsize
        The most entries kept; the least recently used is dropped first.

    Examples
    --------
    >>> cache: LRUCache[int, str] = LRUCache(2)
    >>> cache.get_or_compute(1, lambda: "a"), cache.get_or_compute(2, lambda: "b")
    ('a', 'b')
    >>> cache.get_or_compute(3, lambda: "c"); len(cache), 1 in cache
    'c'
    (2, False)
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: K) -> V | None:
        """Return the entry (marking it recently used), or ``None``."""
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: K, value: V) -> None:
        """Store ``value``, dropping the least recently used entries beyond ``maxsize``."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """Return the cached entry for ``key``, computing and storing it when missing."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
        value = compute()
        self.put(key, value)
        return value

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()
