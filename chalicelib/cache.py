"""A bounded, thread-safe, least-recently-used cache with an optional time to live.

Every per-container cache of the service is one of these, made in one place (chalicelib/context.py)
with its bound and its TTL: nothing a caller sends can grow one without limit, and a test gets fresh
ones by building a fresh context.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Missing:
    """The type of MISSING: what ``get`` answers for an absent or expired key."""

    pass


MISSING = Missing()


class Cache(Generic[K, V]):
    """``maxsize`` entries at most (the least recently used go first); each lives ``ttl`` seconds
    (None: until pushed out; a callable: read at every lookup, so a setting can change it)."""

    def __init__(self, name: str, maxsize: int, ttl: float | Callable[[], float] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.name = name
        self.maxsize = maxsize
        self._ttl = ttl
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def ttl(self) -> float | None:
        return self._ttl() if callable(self._ttl) else self._ttl

    def get(self, key: K) -> V | Missing:
        """The value, or MISSING when absent or expired (a stored None is a value)."""
        ttl = self.ttl()
        if ttl is not None and ttl <= 0:
            return MISSING
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return MISSING
            if ttl is not None and time.monotonic() - hit[0] >= ttl:
                del self._items[key]
                return MISSING
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def discard(self, predicate: Callable[[K], bool]) -> None:
        """Drop every entry whose key matches (e.g. one tenant's)."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def keys(self) -> list[K]:
        """Oldest (least recently used) first."""
        with self._lock:
            return list(self._items)
