"""Thread-safe LRU caches bounded by entry count *and* by the bytes they hold.

Every cache in the service is one of these: request handlers run on the threadpool, and a
public endpoint must not let a client grow memory by sending many distinct requests.
``EncodedLRU`` keeps big values as bytes, which the garbage collector never walks.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

K = TypeVar("K")
V = TypeVar("V")


def deep_size(value: object) -> int:
    """Bytes held by plain data (dicts, lists, tuples, strings, numbers, pydantic models, dataclasses), counted once per object."""
    seen: set[int] = set()
    total = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None or isinstance(item, bool):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, BaseModel):
            stack.append(item.__dict__)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, name) for name in item.__dataclass_fields__)
    return total


class BoundedLRU(Generic[K, V]):
    """Least-recently-used entries are dropped once there are more than ``max_entries`` or ``max_bytes``.

    ``size(key, value)`` estimates an entry's bytes (default: ``deep_size`` of both); an
    entry larger than a quarter of the byte budget is not kept at all.
    """

    def __init__(self, max_entries: int, max_bytes: int, size: Callable[[K, V], int] | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size = size or (lambda key, value: deep_size(key) + deep_size(value))
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The cached value (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` for ``key`` (dropping the least recently used as needed); returns ``value``."""
        size = self._size(key, value)
        if size > self.max_bytes // 4:
            return value
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._entries[key] = (value, size)
            self.bytes += size
            while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.bytes -= dropped
        return value

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value, or ``compute()`` kept for next time."""
        found = self.get(key)
        return found if found is not None else self.put(key, compute())

    def stats(self) -> dict[str, Any]:
        """Entries and bytes held, with their limits (for tests and benchmarks)."""
        return {"entries": len(self._entries), "bytes": self.bytes, "max_entries": self.max_entries, "max_bytes": self.max_bytes}


class EncodedLRU(Generic[K, V]):
    """A ``BoundedLRU`` that keeps each value encoded as bytes and decodes it on every hit.

    64 MB of cached answers held as objects made each full garbage-collector pass ~30 ms
    (the collector walks every row dict), a stall every few hundred new answers; bytes are
    not walked, are 4-5x smaller than the objects, and their size is exact.
    """

    def __init__(self, max_entries: int, max_bytes: int, encode: Callable[[V], bytes], decode: Callable[[bytes], V]) -> None:
        self._encoded: BoundedLRU[K, bytes] = BoundedLRU(max_entries, max_bytes, lambda key, value: sys.getsizeof(key) + sys.getsizeof(value))
        self._encode = encode
        self._decode = decode

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """A fresh copy of the cached value, or ``compute()`` kept (encoded) for next time."""
        found = self._encoded.get(key)
        if found is not None:
            return self._decode(found)
        value = compute()
        self._encoded.put(key, self._encode(value))
        return value

    def stats(self) -> dict[str, Any]:
        """Entries and bytes held, with their limits."""
        return self._encoded.stats()
