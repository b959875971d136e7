"""LangChain adapter: a backend as LangChain's ``ByteStore``, e.g. for ``CacheBackedEmbeddings``.

Example::

    from langchain_classic.embeddings import CacheBackedEmbeddings
    from llmcache.adapters.langchain import LangChainByteStore

    store = LangChainByteStore.from_url("redis://localhost:6379/0")  # namespace "embeddings"
    embedder = CacheBackedEmbeddings.from_bytes_store(
        model, store, namespace="text-embedding-3-small:", key_encoder="sha256"
    )

Keys are the caller's keys (``yield_keys`` gives them back); values are the caller's bytes,
stored as given (``CacheBackedEmbeddings`` serialises vectors itself). Reads and writes use the
backend's ``get_many`` / ``set_many`` (one pipeline on Redis, concurrent requests on Momento).

Failure policy, as for the LLM cache: a store fault in ``mget`` is a miss for those keys (the
embeddings are computed again), a fault in ``mset`` / ``mdelete`` is logged once per burst and
skipped; ``on_error="raise"`` re-raises instead. ``yield_keys`` is a listing, not a cache
read: its faults raise :class:`~llmcache.errors.BackendError`, and on a store that cannot list
keys (Momento) :class:`~llmcache.errors.UnsupportedOperation`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Self

from langchain_core.stores import ByteStore

from llmcache import _defaults
from llmcache._breaker import CircuitBreaker
from llmcache._guard import Guard, OnError, as_fault, check_ttl
from llmcache.backends import capabilities as cap
from llmcache.backends.base import Backend
from llmcache.config import Settings, load_settings
from llmcache.registry import backend_from_settings, create_backend
from llmcache.stats import Stats

__all__ = ["DEFAULT_NAMESPACE", "LangChainByteStore"]

#: Namespace of ``from_url`` stores; ``from_settings`` uses ``<namespace setting>.embeddings``.
#: Apart from the LLM cache's, so clearing one never clears the other.
DEFAULT_NAMESPACE = "embeddings"


class LangChainByteStore(ByteStore):
    """LangChain ``ByteStore`` (``BaseStore[str, bytes]``) on any backend, with native async.

    ``ttl``: seconds each value lives (default one day; ``None``: the backend's default). On
    Redis with ElastiCache's ``volatile-lru`` policy only keys with a TTL can be evicted.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        ttl: float | None = _defaults.TTL,
        on_error: OnError = "miss",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.backend = backend
        self.ttl = check_ttl(ttl)
        self.guard = Guard(backend, on_error=on_error, breaker=breaker, what="byte store")
        self.on_error: OnError = self.guard.on_error
        self.breaker = self.guard.breaker
        self._stats: Stats = self.guard.stats

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        ttl: float | None = _defaults.TTL,
        on_error: OnError = "miss",
        **options: Any,
    ) -> Self:
        """A store on the backend named by ``url``; ``options`` go to the backend.

        Secrets as in :meth:`llmcache.LLMCache.from_url`: the URL or keywords here; the
        environment (``LLMCACHE_REDIS_PASSWORD``, ``LLMCACHE_MOMENTO_API_KEY``) via
        ``from_settings``.
        """
        return cls(create_backend(url, namespace=namespace, **options), ttl=ttl, on_error=on_error)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, namespace: str | None = None
    ) -> Self:
        """A store configured by :class:`~llmcache.Settings`, in ``<namespace>.embeddings``."""
        settings = settings or load_settings()
        backend = backend_from_settings(
            settings, namespace=namespace or f"{settings.namespace}.{DEFAULT_NAMESPACE}"
        )
        breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown)
        return cls(backend, ttl=settings.ttl, on_error=settings.on_error, breaker=breaker)

    @property
    def stats(self) -> dict[str, Any]:
        """Hits, misses, writes, errors and bytes of this store."""
        return self._stats.as_dict()

    # -- sync ---------------------------------------------------------------------------------
    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys or not self._allow(len(keys)):
            return [None] * len(keys)
        try:
            values = cap.get_many(self.backend, keys)
        except Exception as exc:
            return self._read_fault(exc, len(keys))
        return self._read(values)

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        items = _items(key_value_pairs)
        if not items or not self._allow():
            return
        try:
            cap.set_many(self.backend, items, self.ttl)
        except Exception as exc:
            self._fault("mset", exc, "skipping writes")
            return
        self._wrote(items)

    def mdelete(self, keys: Sequence[str]) -> None:
        if not keys or not self._allow():
            return
        try:
            cap.delete_many(self.backend, list(dict.fromkeys(keys)))
        except Exception as exc:
            self._fault("mdelete", exc, "skipping deletes")
            return
        self.breaker.success()

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        listing = cap.require(self.backend, cap.KeyListing, "list its keys")
        yield from listing.iter_keys(prefix or "")

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()

    # -- async (the backend's native async path) ----------------------------------------------
    async def amget(self, keys: Sequence[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys or not self._allow(len(keys)):
            return [None] * len(keys)
        try:
            values = await cap.aget_many(self.backend, keys)
        except BaseException as exc:  # the caller's own cancellation is re-raised by as_fault
            return self._read_fault(as_fault(exc), len(keys))
        return self._read(values)

    async def amset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        items = _items(key_value_pairs)
        if not items or not self._allow():
            return
        try:
            await cap.aset_many(self.backend, items, self.ttl)
        except BaseException as exc:  # the caller's own cancellation is re-raised by as_fault
            self._fault("mset", as_fault(exc), "skipping writes")
            return
        self._wrote(items)

    async def amdelete(self, keys: Sequence[str]) -> None:
        if not keys or not self._allow():
            return
        try:
            await cap.adelete_many(self.backend, list(dict.fromkeys(keys)))
        except BaseException as exc:  # the caller's own cancellation is re-raised by as_fault
            self._fault("mdelete", as_fault(exc), "skipping deletes")
            return
        self.breaker.success()

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        listing = cap.require(self.backend, cap.KeyListing, "list its keys")
        async for key in listing.aiter_keys(prefix or ""):
            yield key

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self.backend.aclose()

    # -- internals ----------------------------------------------------------------------------
    def _allow(self, reads: int = 0) -> bool:
        if self.guard.allow():
            return True
        # The store kept failing: skip it (no timeout paid) until the breaker's probe.
        self._stats.incr("misses", reads)
        return False

    def _read(self, values: list[bytes | None]) -> list[bytes | None]:
        self.breaker.success()
        found = [v for v in values if v is not None]
        self._stats.incr("hits", len(found))
        self._stats.incr("misses", len(values) - len(found))
        self._stats.incr("bytes_read", sum(len(v) for v in found))
        return values

    def _read_fault(self, exc: Exception, count: int) -> list[bytes | None]:
        self._fault("mget", exc, "serving misses")
        self._stats.incr("misses", count)
        return [None] * count

    def _wrote(self, items: dict[str, bytes]) -> None:
        self.breaker.success()
        self._stats.incr("writes", len(items))
        self._stats.incr("bytes_written", sum(len(v) for v in items.values()))

    def _fault(self, op: str, exc: Exception, outcome: str) -> None:
        self.guard.fault(op, exc, outcome)

    def __repr__(self) -> str:
        return f"LangChainByteStore({self.backend!r})"


def _items(pairs: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    """The pairs as a dict (a repeated key: the last value wins); values must be bytes."""
    items: dict[str, bytes] = {}
    for key, value in pairs:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"ByteStore values are bytes, not {type(value).__name__} (key {key!r})")
        items[key] = bytes(value)
    return items
