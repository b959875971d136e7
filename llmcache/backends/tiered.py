"""Two tiers: a bounded in-process L1 (LRU, short TTL) in front of any store (the L2).

A hit served from this process's memory costs a dict lookup instead of a round trip; the
shared store stays the truth. The L1 holds the exact bytes the L2 holds (the cache above
decodes and validates every hit either way), keyed by namespace and key.

Rules (on top of :mod:`llmcache.backends.base`'s):

- ``get``: the L1 first; on an L1 miss the L2, and an L2 hit fills the L1 for ``ttl`` seconds
  (the L1's ``ttl``, never longer than the ttl of a ``set`` made through this backend).
- ``set``: the L1 entry is dropped, the L2 written, and only once the L2 accepted the value
  does the L1 hold it. A failing L2 write raises (the caller's guard counts the fault) and
  leaves the L1 *without* that key: the next ``get`` asks the L2, so the L1 never serves a
  value the shared store refused, nor the old value the caller meant to replace.
- ``delete``: both tiers; ``clear``: this namespace in the L1, then the L2.
- Staleness bound: a ``set``/``delete``/``clear`` made through *another* process (another L1)
  is seen here at most ``ttl`` seconds later; through this backend, at once. A read racing a
  write of the same key never leaves the older value in the L1 (per-key write versions).
- Keys starting with ``lease:`` (single-flight leases) and ``add`` (atomic add) go to the L2
  only: leases must be shared by every process, so they are never held in the L1.
- Capabilities follow the L2: ``isinstance(tiered, AtomicAdd)`` (and ``Batch``,
  ``KeyListing``, ``Lists``, ``ListsBatch``, ``Logs``) is true exactly when it is true of the
  L2; lists, logs and key listing go straight to the L2. ``info()`` is always there: the
  L1's figures (entries, hits) plus the L2's own ``info()`` when it has one.
- ``close``/``aclose`` close the L2. :meth:`in_namespace` views share the L1 storage (entries
  stay apart by namespace) and the L2's connections.
- Wrapping a tiered backend again is a :class:`~llmcache.errors.ConfigError`: two L1s would
  silently add their staleness bounds.

Example::

    from llmcache.backends.memory import MemoryBackend
    from llmcache.backends.tiered import with_l1

    store = with_l1(MemoryBackend(namespace="demo"), {"max_entries": 1000, "ttl": 5})
    store.set("k", b"v", ttl=60)
    assert store.get("k") == b"v"       # served by the L1
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, cast

from pydantic import ValidationError

from llmcache import _defaults
from llmcache.backends.base import Backend, BackendOptions, describe, field_error
from llmcache.backends.capabilities import (
    TTL,
    AtomicAdd,
    Batch,
    KeyListing,
    Lists,
    ListsBatch,
    Logs,
    MaxLen,
)
from llmcache.config import L1Settings
from llmcache.errors import ConfigError
from llmcache.singleflight import LEASE_PREFIX  # leases bypass the L1: read and written in L2

__all__ = ["LEASE_PREFIX", "TieredBackend", "with_l1"]

#: Values larger than this (bytes) are not kept in the L1: an LLM answer is a few KB, and the
#: cap bounds the L1's memory at max_entries x 1 MiB whatever is stored.
_MAX_L1_VALUE = 1024 * 1024
#: Write versions are kept per stripe of keys (a power of two): a read that raced a write of a
#: key in the same stripe does not fill the L1 (a rare, harmless extra L2 read).
_STRIPES = 1024


@dataclass
class _Hits:
    """One namespace view's counters (updated under the store's lock)."""

    l1: int = 0
    l2: int = 0


class _L1Store:
    """The L1's storage: an LRU of ``(namespace, key) -> (bytes, deadline)``, thread-safe.

    Shared by a tiered backend and its namespace views. Every operation is a dict access under
    a lock (no I/O), so the async side calls it directly. Writes go ``begin`` → L2 → ``finish``:
    both bump the key's stripe version, and a fill is dropped when the version moved since the
    read began, so a value read from the L2 before a write landed never outlives that write.
    """

    def __init__(self, max_entries: int, ttl: float) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._data: OrderedDict[tuple[str, str], tuple[bytes, float]] = OrderedDict()
        self._versions = [0] * _STRIPES
        self._lock = threading.Lock()

    @staticmethod
    def _stripe(item: tuple[str, str]) -> int:
        return hash(item) & (_STRIPES - 1)

    def get(self, namespace: str, key: str, hits: _Hits) -> bytes | None:
        item = (namespace, key)
        with self._lock:
            entry = self._data.get(item)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._data[item]
                return None
            self._data.move_to_end(item)
            hits.l1 += 1
            return entry[0]

    def version(self, namespace: str, key: str) -> int:
        """The key's write version, taken before reading the L2 (see :meth:`fill`)."""
        return self._versions[self._stripe((namespace, key))]

    def fill(self, namespace: str, key: str, seen: int, value: bytes, hits: _Hits) -> None:
        """Keep ``value`` read from the L2, unless a write of the key began since ``seen``."""
        item = (namespace, key)
        with self._lock:
            hits.l2 += 1
            if self._versions[self._stripe(item)] == seen:
                self._put(item, value, self.ttl)

    def begin(self, namespace: str, key: str) -> int:
        """A write of ``key`` starts: drop its entry; returns the version :meth:`finish` needs."""
        item = (namespace, key)
        stripe = self._stripe(item)
        with self._lock:
            self._data.pop(item, None)
            self._versions[stripe] += 1
            return self._versions[stripe]

    def finish(self, namespace: str, key: str, token: int, value: bytes | None, ttl: float) -> None:
        """The L2 write ended: keep ``value`` (``None``: deleted or failed) if no other write
        of the stripe began meanwhile, else drop the entry (the L2 decides the next read)."""
        item = (namespace, key)
        stripe = self._stripe(item)
        with self._lock:
            if value is not None and self._versions[stripe] == token:
                self._put(item, value, ttl)
            else:
                self._data.pop(item, None)
            self._versions[stripe] += 1

    def clear(self, namespace: str) -> None:
        """Drop every entry of ``namespace`` and make every read in flight skip its fill."""
        with self._lock:
            for item in [i for i in self._data if i[0] == namespace]:
                del self._data[item]
            self._versions = [v + 1 for v in self._versions]

    def entries(self, namespace: str) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(1 for (ns, _), (_, d) in self._data.items() if ns == namespace and d > now)

    def _put(self, item: tuple[str, str], value: bytes, ttl: float) -> None:
        # Caller holds the lock.
        if len(value) > _MAX_L1_VALUE:
            self._data.pop(item, None)
            return
        self._data[item] = (value, time.monotonic() + min(self.ttl, ttl))
        self._data.move_to_end(item)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)


def _l1_settings(l1: L1Settings | Mapping[str, Any] | bool | None) -> L1Settings | None:
    """``l1`` as settings (``None``: no L1); a bad key or value is a :class:`ConfigError`."""
    if l1 is None or l1 is False:
        return None
    if l1 is True:
        return L1Settings()
    if isinstance(l1, L1Settings):
        return l1
    if not isinstance(l1, Mapping):
        raise ConfigError(
            f"invalid l1 {l1!r}: use True, False, None, a mapping or L1Settings "
            f"(fields: {', '.join(L1Settings.model_fields)})"
        )
    unknown = sorted(set(map(str, l1)) - set(L1Settings.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown l1 setting {unknown[0]!r}; valid: {', '.join(L1Settings.model_fields)}"
        )
    for field, value in l1.items():
        if isinstance(value, bool):  # pydantic would take True for 1: surely a mistake here
            raise ConfigError(f"invalid value {value!r} for l1 setting {field!r}: not a number")
    try:
        return L1Settings.model_validate(dict(l1))
    except ValidationError as exc:
        field, value, message = field_error(exc, l1)
        raise ConfigError(f"invalid value {value!r} for l1 setting {field!r}: {message}") from None


def with_l1(backend: Backend, l1: L1Settings | Mapping[str, Any] | bool | None) -> Backend:
    """``backend`` behind an in-process L1, as ``l1`` says.

    ``None``/``False``: ``backend`` unchanged; ``True``: the default L1
    (``max_entries`` :data:`~llmcache._defaults.L1_MAX_ENTRIES`, ``ttl``
    :data:`~llmcache._defaults.L1_TTL`); a mapping or :class:`~llmcache.config.L1Settings`:
    those values. A bad key or value, or a ``backend`` that already has an L1, is a
    :class:`ConfigError` naming it.
    """
    settings = _l1_settings(l1)
    if settings is None:
        return backend
    return TieredBackend(backend, max_entries=settings.max_entries, ttl=settings.ttl)


class TieredBackend(Backend):
    """An in-process L1 in front of ``l2`` (any backend); see the module doc for the rules.

    ``TieredBackend(l2)`` returns an instance of a subclass that has exactly the L2's
    capabilities (``Batch``, ``AtomicAdd``, ``KeyListing``, ``Lists``, ``ListsBatch``,
    ``Logs``), so ``isinstance`` checks on it answer as they would on the L2.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        target: type[TieredBackend] = cls
        l2 = args[0] if args else kwargs.get("l2")
        if cls is TieredBackend and isinstance(l2, Backend):
            target = _tiered_class(_capabilities(l2))
        return cast(Self, object.__new__(target))

    def __init__(
        self,
        l2: Backend,
        *,
        max_entries: int = _defaults.L1_MAX_ENTRIES,
        ttl: float = _defaults.L1_TTL,
    ) -> None:
        if isinstance(l2, TieredBackend):
            raise ConfigError(f"{l2!r} already has an L1: wrap the store only once")
        if not isinstance(l2, Backend):
            raise ConfigError(f"TieredBackend wraps a Backend, not {type(l2).__name__}")
        settings = _l1_settings({"max_entries": max_entries, "ttl": ttl})
        assert settings is not None
        super().__init__(BackendOptions(default_ttl=l2.default_ttl), namespace=l2.namespace)
        self.l2 = l2
        self.l1_max_entries = settings.max_entries
        self.l1_ttl = settings.ttl
        self._l1 = _L1Store(settings.max_entries, settings.ttl)
        self._hits = _Hits()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "default",
        l1: L1Settings | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """The backend named by ``url`` (``options`` go to it) behind an L1 (``l1``: its
        settings; ``None``: the defaults)."""
        from llmcache.registry import create_backend

        settings = _l1_settings(l1 if l1 is not None else True)
        assert settings is not None
        l2 = create_backend(url, namespace=namespace, **options)
        return cls(l2, max_entries=settings.max_entries, ttl=settings.ttl)

    # -- namespace views ----------------------------------------------------------------------
    def _init_view(self) -> None:
        # A view keeps the owner's L1 storage (entries are keyed by namespace) and sees the L2
        # through the L2's own view of the namespace (the L2's connections); its own counters.
        self.l2 = self.l2.in_namespace(self.namespace)
        self._hits = _Hits()

    # -- helpers ------------------------------------------------------------------------------
    def _l1_ttl(self, ttl: float | None) -> float:
        """The L1 lifetime of a value written with ``ttl`` (validated as the L2 would)."""
        resolved = self.l2._ttl(ttl)
        return math.inf if resolved is None else resolved

    # -- the five sync methods ----------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        if key.startswith(LEASE_PREFIX):
            return self.l2.get(key)
        value = self._l1.get(self.namespace, key, self._hits)
        if value is not None:
            return value
        seen = self._l1.version(self.namespace, key)
        value = self.l2.get(key)
        if value is not None:
            self._l1.fill(self.namespace, key, seen, value, self._hits)
        return value

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if key.startswith(LEASE_PREFIX):
            self.l2.set(key, value, ttl)
            return
        lifetime = self._l1_ttl(ttl)
        token = self._l1.begin(self.namespace, key)
        stored: bytes | None = None
        try:
            self.l2.set(key, value, ttl)
            stored = bytes(value)
        finally:
            self._l1.finish(self.namespace, key, token, stored, lifetime)

    def delete(self, key: str) -> None:
        token = self._l1.begin(self.namespace, key)
        try:
            self.l2.delete(key)
        finally:
            self._l1.finish(self.namespace, key, token, None, 0.0)

    def clear(self) -> None:
        self._l1.clear(self.namespace)
        try:
            self.l2.clear()
        finally:
            self._l1.clear(self.namespace)

    def close(self) -> None:
        if self.is_view:  # a view owns nothing; its L2 may be the owner's very backend
            return
        self.l2.close()

    # -- the async twins: the L1 part in memory, the L2 part on the L2's async methods ---------
    async def aget(self, key: str) -> bytes | None:
        if key.startswith(LEASE_PREFIX):
            return await self.l2.aget(key)
        value = self._l1.get(self.namespace, key, self._hits)
        if value is not None:
            return value
        seen = self._l1.version(self.namespace, key)
        value = await self.l2.aget(key)
        if value is not None:
            self._l1.fill(self.namespace, key, seen, value, self._hits)
        return value

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if key.startswith(LEASE_PREFIX):
            await self.l2.aset(key, value, ttl)
            return
        lifetime = self._l1_ttl(ttl)
        token = self._l1.begin(self.namespace, key)
        stored: bytes | None = None
        try:
            await self.l2.aset(key, value, ttl)
            stored = bytes(value)
        finally:
            self._l1.finish(self.namespace, key, token, stored, lifetime)

    async def adelete(self, key: str) -> None:
        token = self._l1.begin(self.namespace, key)
        try:
            await self.l2.adelete(key)
        finally:
            self._l1.finish(self.namespace, key, token, None, 0.0)

    async def aclear(self) -> None:
        self._l1.clear(self.namespace)
        try:
            await self.l2.aclear()
        finally:
            self._l1.clear(self.namespace)

    async def aclose(self) -> None:
        if self.is_view:
            return
        await self.l2.aclose()

    # -- what it can say ----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The L2's ``info()`` (when it has one), its class, and the L1's figures."""
        l2 = describe(self.l2)
        return {
            **{k: v for k, v in l2.items() if k not in ("backend", "namespace")},
            "l2": l2["backend"],
            "l1_entries": self._l1.entries(self.namespace),
            "l1_max_entries": self.l1_max_entries,
            "l1_ttl": self.l1_ttl,
            "l1_hits": self._hits.l1,
            "l2_hits": self._hits.l2,
        }

    def __repr__(self) -> str:
        return (
            f"TieredBackend(l1=L1(max_entries={self.l1_max_entries}, ttl={self.l1_ttl}), "
            f"l2={self.l2!r})"
        )


# -- capabilities: present exactly when the L2 has them ------------------------------------------
class _BatchTier(TieredBackend):
    """Batches: L1 hits answered here, the rest in one L2 batch."""

    @property
    def _batch(self) -> Batch:
        return cast(Batch, self.l2)

    def _split(self, keys: Sequence[str]) -> tuple[list[bytes | None], list[int], list[int]]:
        found: list[bytes | None] = [None] * len(keys)
        misses: list[int] = []
        for i, key in enumerate(keys):
            if not key.startswith(LEASE_PREFIX):
                found[i] = self._l1.get(self.namespace, key, self._hits)
            if found[i] is None:
                misses.append(i)
        seen = [self._l1.version(self.namespace, keys[i]) for i in misses]
        return found, misses, seen

    def _fill(
        self,
        keys: Sequence[str],
        found: list[bytes | None],
        misses: list[int],
        seen: list[int],
        values: list[bytes | None],
    ) -> list[bytes | None]:
        for i, version, value in zip(misses, seen, values, strict=True):
            found[i] = value
            if value is not None and not keys[i].startswith(LEASE_PREFIX):
                self._l1.fill(self.namespace, keys[i], version, value, self._hits)
        return found

    def _begin_many(self, keys: Iterable[str]) -> dict[str, int]:
        return {k: self._l1.begin(self.namespace, k) for k in keys}

    def _finish_many(
        self, tokens: Mapping[str, int], items: Mapping[str, bytes] | None, lifetime: float
    ) -> None:
        for key, token in tokens.items():
            value = None if items is None or key.startswith(LEASE_PREFIX) else items[key]
            self._l1.finish(self.namespace, key, token, value, lifetime)

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        found, misses, seen = self._split(keys)
        if not misses:
            return found
        values = self._batch.get_many([keys[i] for i in misses])
        return self._fill(keys, found, misses, seen, values)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        lifetime = self._l1_ttl(ttl)
        tokens = self._begin_many(items)
        stored: Mapping[str, bytes] | None = None
        try:
            self._batch.set_many(items, ttl)
            stored = {k: bytes(v) for k, v in items.items()}
        finally:
            self._finish_many(tokens, stored, lifetime)

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        tokens = self._begin_many(keys)
        try:
            self._batch.delete_many(keys)
        finally:
            self._finish_many(tokens, None, 0.0)

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        found, misses, seen = self._split(keys)
        if not misses:
            return found
        values = await self._batch.aget_many([keys[i] for i in misses])
        return self._fill(keys, found, misses, seen, values)

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        lifetime = self._l1_ttl(ttl)
        tokens = self._begin_many(items)
        stored: Mapping[str, bytes] | None = None
        try:
            await self._batch.aset_many(items, ttl)
            stored = {k: bytes(v) for k, v in items.items()}
        finally:
            self._finish_many(tokens, stored, lifetime)

    async def adelete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        tokens = self._begin_many(keys)
        try:
            await self._batch.adelete_many(keys)
        finally:
            self._finish_many(tokens, None, 0.0)


class _AtomicAddTier(TieredBackend):
    """Atomic add (leases) in the L2 only; the key's L1 entry is dropped either way."""

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        token = self._l1.begin(self.namespace, key)
        try:
            return cast(AtomicAdd, self.l2).add(key, value, ttl)
        finally:
            self._l1.finish(self.namespace, key, token, None, 0.0)

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        token = self._l1.begin(self.namespace, key)
        try:
            return await cast(AtomicAdd, self.l2).aadd(key, value, ttl)
        finally:
            self._l1.finish(self.namespace, key, token, None, 0.0)


class _KeyListingTier(TieredBackend):
    """Key listing from the L2 (the L1 holds a subset of its keys)."""

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        return cast(KeyListing, self.l2).iter_keys(prefix)

    def aiter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        return cast(KeyListing, self.l2).aiter_keys(prefix)


class _ListsTier(TieredBackend):
    """Lists (chat history) in the L2 only: appends from other processes must be seen."""

    def list_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        cast(Lists, self.l2).list_push(key, values, max_len=max_len, ttl=ttl)

    def list_range(self, key: str) -> list[bytes]:
        return cast(Lists, self.l2).list_range(key)

    async def alist_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        await cast(Lists, self.l2).alist_push(key, values, max_len=max_len, ttl=ttl)

    async def alist_range(self, key: str) -> list[bytes]:
        return await cast(Lists, self.l2).alist_range(key)


class _ListsBatchTier(TieredBackend):
    """Several lists read in one round trip of the L2 (the semantic index's bucket reads)."""

    def list_range_many(self, keys: Sequence[str]) -> list[list[bytes]]:
        return cast(ListsBatch, self.l2).list_range_many(keys)

    async def alist_range_many(self, keys: Sequence[str]) -> list[list[bytes]]:
        return await cast(ListsBatch, self.l2).alist_range_many(keys)


class _LogsTier(TieredBackend):
    """Byte logs (the semantic index's buckets) in the L2 only, as lists are."""

    def log_append_many(
        self, keys: Sequence[str], record: bytes, *, max_bytes: int, ttl: TTL = None
    ) -> None:
        cast(Logs, self.l2).log_append_many(keys, record, max_bytes=max_bytes, ttl=ttl)

    def log_tail_many(self, keys: Sequence[str], max_bytes: int) -> list[bytes]:
        return cast(Logs, self.l2).log_tail_many(keys, max_bytes)

    async def alog_append_many(
        self, keys: Sequence[str], record: bytes, *, max_bytes: int, ttl: TTL = None
    ) -> None:
        await cast(Logs, self.l2).alog_append_many(keys, record, max_bytes=max_bytes, ttl=ttl)

    async def alog_tail_many(self, keys: Sequence[str], max_bytes: int) -> list[bytes]:
        return await cast(Logs, self.l2).alog_tail_many(keys, max_bytes)


_TIERS: tuple[tuple[type, type[TieredBackend]], ...] = (
    (Batch, _BatchTier),
    (AtomicAdd, _AtomicAddTier),
    (KeyListing, _KeyListingTier),
    (Lists, _ListsTier),
    (ListsBatch, _ListsBatchTier),
    (Logs, _LogsTier),
)


def _capabilities(l2: Backend) -> tuple[type, ...]:
    return tuple(cap for cap, _ in _TIERS if isinstance(l2, cap))


@functools.cache
def _tiered_class(capabilities: tuple[type, ...]) -> type[TieredBackend]:
    """The ``TieredBackend`` subclass with exactly these capabilities (one class per set)."""
    if not capabilities:
        return TieredBackend
    bases = tuple(tier for cap, tier in _TIERS if cap in capabilities)
    names = "+".join(cap.__name__ for cap in capabilities)
    return cast(
        type[TieredBackend],
        type(
            "TieredBackend",
            bases,
            {"__module__": __name__, "__qualname__": f"TieredBackend[{names}]"},
        ),
    )
