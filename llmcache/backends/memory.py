"""In-process memory backend: an LRU dict of bytes with per-entry TTL.

For tests, notebooks and single-process apps; nothing survives the process.

Example::

    from llmcache import from_url

    cache = from_url("memory://?max_entries=10000")
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import Field

from llmcache.backends.base import Backend, BackendOptions
from llmcache.backends.capabilities import TTL, MaxLen, check_max_len

__all__ = ["MemoryBackend", "MemoryOptions"]


class MemoryOptions(BackendOptions):
    """Options of ``memory://``."""

    max_entries: int = Field(default=10_000, gt=0)
    default_ttl: float | None = Field(default=None, gt=0)


class MemoryBackend(Backend):
    """Thread-safe LRU of bytes; the least recently used entry goes when ``max_entries`` is hit.

    Instances do not share data: two ``memory://`` caches are two stores. Views of one
    (:meth:`~llmcache.backends.base.Backend.in_namespace`) share its store: the entries of every
    namespace live in one LRU bounded by ``max_entries`` in all, under namespaced keys.
    Capabilities: batch, atomic add, key listing, lists, info.
    """

    Options = MemoryOptions
    options: MemoryOptions

    def __init__(self, options: MemoryOptions | None = None, *, namespace: str = "default") -> None:
        super().__init__(options, namespace=namespace)
        self.max_entries = self.options.max_entries
        # The store, shared with this backend's namespace views (never re-bound); keys are
        # namespaced (``llmcache:<ns>:<key>``). Store key -> (value, monotonic deadline or None).
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        # key -> (elements, deadline): lists (chat history), LRU-bounded by max_entries too
        self._lists: OrderedDict[str, tuple[list[bytes], float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        key = self._key(key)
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            value, deadline = item
            if deadline is not None and deadline <= time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        deadline = self._deadline(ttl)
        with self._lock:
            self._store(self._key(key), value, deadline)

    def _deadline(self, ttl: float | None) -> float | None:
        ttl = self._ttl(ttl)
        return None if ttl is None else time.monotonic() + ttl

    def _store(self, key: str, value: bytes, deadline: float | None) -> None:
        # Caller holds the lock; ``key`` is the store key.
        self._data[key] = (bytes(value), deadline)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        key = self._key(key)
        with self._lock:
            self._data.pop(key, None)
            self._lists.pop(key, None)

    def clear(self) -> None:
        # O(entries of every namespace): the store is one LRU (clear is rare, not per call).
        prefix = self.key_prefix
        with self._lock:
            for store in (self._data, self._lists):
                for key in [k for k in store if k.startswith(prefix)]:
                    del store[key]

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        deadline = self._deadline(ttl)
        key = self._key(key)
        with self._lock:
            item = self._data.get(key)
            if item is not None and (item[1] is None or item[1] > time.monotonic()):
                return False
            self._store(key, value, deadline)
            return True

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        return [self.get(k) for k in keys]

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        deadline = self._deadline(ttl)
        with self._lock:
            for key, value in items.items():
                self._store(self._key(key), value, deadline)

    def delete_many(self, keys: Iterable[str]) -> None:
        full = [self._key(k) for k in keys]
        with self._lock:
            for key in full:
                self._data.pop(key, None)
                self._lists.pop(key, None)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        now = time.monotonic()
        start, full_prefix = len(self.key_prefix), self.key_prefix + prefix
        with self._lock:  # a snapshot: writers may go on while the caller iterates
            keys = [
                k[start:]
                for store in (self._data, self._lists)
                for k, (_, deadline) in store.items()
                if k.startswith(full_prefix) and (deadline is None or deadline > now)
            ]
        yield from keys

    def list_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        max_len = check_max_len(max_len)
        deadline = self._deadline(ttl)
        key = self._key(key)
        with self._lock:
            elements = self._live_list(key) or []
            elements.extend(bytes(v) for v in values)
            if max_len is not None:
                del elements[:-max_len]
            self._lists[key] = (elements, deadline)
            self._lists.move_to_end(key)
            while len(self._lists) > self.max_entries:
                self._lists.popitem(last=False)

    def list_range(self, key: str) -> list[bytes]:
        key = self._key(key)
        with self._lock:
            return list(self._live_list(key) or [])

    def _live_list(self, key: str) -> list[bytes] | None:
        # Caller holds the lock; ``key`` is the store key.
        item = self._lists.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._lists[key]
            return None
        return item[0]

    # Every operation is a dict access under a lock: no I/O, so the async side calls straight
    # through instead of paying a thread hop.
    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.set(key, value, ttl)

    async def adelete(self, key: str) -> None:
        self.delete(key)

    async def aclear(self) -> None:
        self.clear()

    async def aclose(self) -> None:
        self.close()

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return self.add(key, value, ttl)

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        return self.get_many(keys)

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        self.set_many(items, ttl)

    async def adelete_many(self, keys: Iterable[str]) -> None:
        self.delete_many(keys)

    async def aiter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        for key in self.iter_keys(prefix):
            yield key

    async def alist_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        self.list_push(key, values, max_len=max_len, ttl=ttl)

    async def alist_range(self, key: str) -> list[bytes]:
        return self.list_range(key)

    def info(self) -> dict[str, Any]:
        """Entries and bytes of this namespace (O(entries): for stats, not per call)."""
        prefix = self.key_prefix
        with self._lock:
            sizes = [len(v) for k, (v, _) in self._data.items() if k.startswith(prefix)]
            everything = len(self._data)
        return {"entries": len(sizes), "bytes": sum(sizes), "entries_all_namespaces": everything}
