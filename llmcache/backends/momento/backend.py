"""``MomentoBackend``: one Momento cache, sync (``CacheClient``) and async (``CacheClientAsync``).

Namespaces share the cache and are separated by key prefix + namespace generation (see
:mod:`llmcache.backends.momento.generation`). Namespace views
(:meth:`~llmcache.backends.base.Backend.in_namespace`) use their owner's clients, and each
namespace has one generation object for the owner and all its views (a clear through one is
seen at once through the others); only the owner closes the clients.

Capabilities: ``Batch`` (concurrent single calls: the SDK has no batch RPC), ``AtomicAdd``
(``SetIfNotExists``), ``Lists`` (Momento lists, see :mod:`llmcache.backends.momento.lists`) and
``Inspectable``. No ``KeyListing``: Momento cannot list or scan keys.

Every async operation runs under one budget, ``timeout`` (or the configuration's deadline); a
sync operation's RPCs each stay inside that deadline, retries included. The clients (sync, thread
pool, one async client per event loop) and that budget live in
:mod:`llmcache.backends.momento.clients`.

Example::

    from llmcache.backends.momento import MomentoBackend, MomentoOptions

    options = MomentoOptions(cache_name="llm", local="127.0.0.1:8080", create_cache=True)
    with MomentoBackend(options, namespace="demo") as store:
        store.set_many({"a": b"1", "b": b"2"}, ttl=60)
        assert store.get_many(["a", "b"]) == [b"1", b"2"]
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from momento.config import Configuration
from momento.responses import CacheDelete, CacheGet, CacheSet, CacheSetIfNotExists

from llmcache.backends.base import KEY_PREFIX, Backend
from llmcache.backends.capabilities import TTL, MaxLen, check_max_len
from llmcache.backends.momento import lists
from llmcache.backends.momento.clients import MomentoClients
from llmcache.backends.momento.generation import Generation
from llmcache.backends.momento.options import (
    MAX_ITEM_BYTES,
    MAX_TTL_SECONDS,
    MomentoOptions,
    check_cache_name,
    url_fields,
)
from llmcache.backends.momento.sdk import (
    MomentoError,
    configuration,
    credentials,
    quiet_sdk_logs,
    raise_error,
)
from llmcache.errors import ConfigError

__all__ = ["MomentoBackend"]


class MomentoBackend(Backend):
    """One Momento cache; namespaces share it and are separated by key prefix + generation."""

    Options = MomentoOptions
    options: MomentoOptions

    def __init__(
        self, options: MomentoOptions | None = None, *, namespace: str = "default"
    ) -> None:
        if options is None:
            raise ConfigError("MomentoBackend needs MomentoOptions(cache_name=...)")
        super().__init__(options, namespace=namespace)
        opts = self.options
        self.cache_name = check_cache_name(opts.cache_name)
        self._check_ttl(opts.default_ttl)
        self.configuration_name = opts.configuration
        self.timeout = opts.timeout
        self.create_cache = opts.create_cache
        self.generation_refresh = opts.generation_refresh
        self.max_concurrency = opts.max_concurrency
        self._credentials = credentials(opts.api_key, opts.endpoint, opts.local)
        self._configuration = self.make_configuration()
        self._clients = MomentoClients(
            self.cache_name, self._configuration, self._credentials, opts
        )
        quiet_sdk_logs()  # one SDK warning per interval, not five lines per failed call
        self.endpoint = self._credentials.cache_endpoint
        # Shared with this backend's namespace views (never re-bound): the clients above, and
        # the generations of the namespaces in use and the refused-writes count here.
        self._shared = _Shared(self.cache_name, self.generation_refresh)
        self._init_view()

    def _init_view(self) -> None:
        # This namespace's generation: one object for the owner and every view of the
        # namespace, so a clear through one is seen at once through the others.
        self.generation_key = f"{self.key_prefix}generation"
        self._generation = self._shared.generation(self.namespace)

    @property
    def refused(self) -> int:
        """Writes refused before the call (item above 5 MiB, ttl above 24 h), for stats; one
        count for a backend and its namespace views."""
        return self._shared.refused

    @refused.setter
    def refused(self, value: int) -> None:
        self._shared.refused = value

    @property
    def budget(self) -> float:
        """Seconds one call may add to the caller's call, whatever it does inside."""
        return self._clients.budget

    @classmethod
    def _url_fields(cls, url: str) -> dict[str, Any]:
        return url_fields(url)

    def make_configuration(self) -> Configuration:
        """The SDK configuration for both clients (override to add middleware)."""
        return configuration(self.configuration_name, self.timeout)

    # -- keys, ttl, limits, responses ---------------------------------------------------------
    def _gen_key(self, generation: int, key: str) -> str:
        return f"{self.key_prefix}g{generation}:{key}"

    @staticmethod
    def _check_ttl(ttl: float) -> None:
        if ttl > MAX_TTL_SECONDS:
            raise ConfigError(f"invalid ttl {ttl!r}: Momento keeps items at most 24 h (86400 s)")

    def _ttl_delta(self, ttl: float | None) -> timedelta:
        seconds = self._ttl(ttl)
        assert seconds is not None  # default_ttl is always set
        if seconds > MAX_TTL_SECONDS:
            self.refused += 1
        self._check_ttl(seconds)
        return timedelta(milliseconds=max(1, round(seconds * 1000)))

    def _check_size(self, key: str, value: bytes) -> None:
        size = len(key.encode()) + len(value)
        if size > MAX_ITEM_BYTES:
            self.refused += 1
            raise MomentoError(
                f"momento set on cache {self.cache_name!r} refused: item of {size} bytes exceeds "
                f"Momento's {MAX_ITEM_BYTES}-byte (5 MiB) item limit",
                "ITEM_SIZE_LIMIT_EXCEEDED",
            )

    def _check(self, op: str, response: Any, *ok: type) -> Any:
        if not isinstance(response, ok):
            raise_error(op, self.cache_name, response)
        return response

    def _value(self, response: Any) -> bytes | None:
        if isinstance(response, CacheGet.Hit):
            return bytes(response.value_bytes)
        self._check("get", response, CacheGet.Miss)
        return None

    def _added(self, response: Any) -> bool:
        self._check("add", response, CacheSetIfNotExists.Stored, CacheSetIfNotExists.NotStored)
        return isinstance(response, CacheSetIfNotExists.Stored)

    # -- sync side ----------------------------------------------------------------------------
    def _generation_sync(self) -> int:
        return self._generation.get(self._clients.sync())

    def get(self, key: str) -> bytes | None:
        return self._get_at(self._generation_sync(), key)

    def _get_at(self, generation: int, key: str) -> bytes | None:
        client = self._clients.sync()
        return self._value(client.get(self.cache_name, self._gen_key(generation, key)))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        ttl_delta = self._ttl_delta(ttl)
        self._set_at(self._generation_sync(), key, value, ttl_delta)

    def _set_at(self, generation: int, key: str, value: bytes, ttl: timedelta) -> None:
        full = self._gen_key(generation, key)
        self._check_size(full, value)
        response = self._clients.sync().set(self.cache_name, full, bytes(value), ttl)
        self._check("set", response, CacheSet.Success)

    def delete(self, key: str) -> None:
        self._delete_at(self._generation_sync(), key)

    def _delete_at(self, generation: int, key: str) -> None:
        response = self._clients.sync().delete(self.cache_name, self._gen_key(generation, key))
        self._check("delete", response, CacheDelete.Success)

    def clear(self) -> None:
        self._generation.bump(self._clients.sync())

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        ttl_delta = self._ttl_delta(ttl)
        full = self._gen_key(self._generation_sync(), key)
        self._check_size(full, value)
        return self._added(
            self._clients.sync().set_if_not_exists(self.cache_name, full, bytes(value), ttl_delta)
        )

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        started = time.monotonic()
        generation = self._generation_sync()
        return self._clients.map(lambda k: self._get_at(generation, k), keys, started)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ttl_delta = self._ttl_delta(ttl)
        started = time.monotonic()
        generation = self._generation_sync()
        pairs = list(items.items())
        self._clients.map(
            lambda kv: self._set_at(generation, kv[0], kv[1], ttl_delta), pairs, started
        )

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        started = time.monotonic()
        generation = self._generation_sync()
        self._clients.map(lambda k: self._delete_at(generation, k), keys, started)

    def list_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        max_len, ttl_delta = check_max_len(max_len), self._ttl_delta(ttl)
        elements = lists.check_elements(self.cache_name, values)
        name = self._gen_key(self._generation_sync(), key)
        lists.push(self._clients.sync(), self.cache_name, name, elements, ttl_delta, max_len)

    def list_range(self, key: str) -> list[bytes]:
        name = self._gen_key(self._generation_sync(), key)
        return lists.fetch(self._clients.sync(), self.cache_name, name)

    def list_range_many(self, keys: Sequence[str]) -> list[list[bytes]]:
        """:meth:`list_range` of several lists, concurrently (``max_concurrency`` at a time),
        within one call's budget: the semantic index's bucket reads."""
        keys = list(keys)
        if not keys:
            return []
        started = time.monotonic()
        generation = self._generation_sync()
        client = self._clients.sync()
        return self._clients.map(
            lambda k: lists.fetch(client, self.cache_name, self._gen_key(generation, k)),
            keys,
            started,
        )

    def close(self) -> None:
        if self.is_view:  # the owner's clients: the owner closes them
            return
        self._clients.close()

    # -- async side (one CacheClientAsync per event loop, see clients) ------------------------
    async def _generation_async(self) -> int:
        return await self._generation.aget(await self._clients.aclient())

    async def aget(self, key: str) -> bytes | None:
        return await self._clients.bounded("get", self._aget(key))

    async def _aget(self, key: str) -> bytes | None:
        return await self._aget_at(await self._generation_async(), key)

    async def _aget_at(self, generation: int, key: str) -> bytes | None:
        client = await self._clients.aclient()
        return self._value(await client.get(self.cache_name, self._gen_key(generation, key)))

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        ttl_delta = self._ttl_delta(ttl)
        await self._clients.bounded("set", self._aset(key, value, ttl_delta))

    async def _aset(self, key: str, value: bytes, ttl: timedelta) -> None:
        await self._aset_at(await self._generation_async(), key, value, ttl)

    async def _aset_at(self, generation: int, key: str, value: bytes, ttl: timedelta) -> None:
        full = self._gen_key(generation, key)
        self._check_size(full, value)
        client = await self._clients.aclient()
        response = await client.set(self.cache_name, full, bytes(value), ttl)
        self._check("set", response, CacheSet.Success)

    async def adelete(self, key: str) -> None:
        await self._clients.bounded("delete", self._adelete(key))

    async def _adelete(self, key: str) -> None:
        await self._adelete_at(await self._generation_async(), key)

    async def _adelete_at(self, generation: int, key: str) -> None:
        client = await self._clients.aclient()
        response = await client.delete(self.cache_name, self._gen_key(generation, key))
        self._check("delete", response, CacheDelete.Success)

    async def aclear(self) -> None:
        await self._clients.bounded("clear", self._aclear())

    async def _aclear(self) -> None:
        await self._generation.abump(await self._clients.aclient())

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        ttl_delta = self._ttl_delta(ttl)
        return await self._clients.bounded("add", self._aadd(key, value, ttl_delta))

    async def _aadd(self, key: str, value: bytes, ttl: timedelta) -> bool:
        full = self._gen_key(await self._generation_async(), key)
        self._check_size(full, value)
        client = await self._clients.aclient()
        return self._added(await client.set_if_not_exists(self.cache_name, full, bytes(value), ttl))

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        return await self._clients.bounded(f"get of {len(keys)} keys", self._aget_many(keys))

    async def _aget_many(self, keys: list[str]) -> list[bytes | None]:
        generation = await self._generation_async()
        return list(await asyncio.gather(*(self._aget_at(generation, k) for k in keys)))

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ttl_delta = self._ttl_delta(ttl)
        if not items:
            return
        await self._clients.bounded(f"set of {len(items)} keys", self._aset_many(items, ttl_delta))

    async def _aset_many(self, items: Mapping[str, bytes], ttl: timedelta) -> None:
        generation = await self._generation_async()
        await asyncio.gather(*(self._aset_at(generation, k, v, ttl) for k, v in items.items()))

    async def adelete_many(self, keys: Iterable[str]) -> None:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        await self._clients.bounded(f"delete of {len(keys)} keys", self._adelete_many(keys))

    async def _adelete_many(self, keys: list[str]) -> None:
        generation = await self._generation_async()
        await asyncio.gather(*(self._adelete_at(generation, k) for k in keys))

    async def alist_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        max_len, ttl_delta = check_max_len(max_len), self._ttl_delta(ttl)
        elements = lists.check_elements(self.cache_name, values)
        work = self._alist_push(key, elements, ttl_delta, max_len)
        await self._clients.bounded("list push", work)

    async def _alist_push(
        self, key: str, elements: list[bytes], ttl: timedelta, max_len: int | None
    ) -> None:
        name = self._gen_key(await self._generation_async(), key)
        client = await self._clients.aclient()
        await lists.apush(client, self.cache_name, name, elements, ttl, max_len)

    async def alist_range(self, key: str) -> list[bytes]:
        return await self._clients.bounded("list fetch", self._alist_range(key))

    async def _alist_range(self, key: str) -> list[bytes]:
        name = self._gen_key(await self._generation_async(), key)
        return await lists.afetch(await self._clients.aclient(), self.cache_name, name)

    async def alist_range_many(self, keys: Sequence[str]) -> list[list[bytes]]:
        """Async :meth:`list_range_many`."""
        keys = list(keys)
        if not keys:
            return []
        return await self._clients.bounded(
            f"list fetch of {len(keys)} lists", self._alist_range_many(keys)
        )

    async def _alist_range_many(self, keys: list[str]) -> list[list[bytes]]:
        generation = await self._generation_async()
        client = await self._clients.aclient()
        return list(
            await asyncio.gather(
                *(lists.afetch(client, self.cache_name, self._gen_key(generation, k)) for k in keys)
            )
        )

    async def aclose(self) -> None:
        """Close this loop's async client here, then everything else (:meth:`close`)."""
        if self.is_view:
            return
        await self._clients.aclose_loop()
        self.close()

    def info(self) -> dict[str, Any]:
        """Cache, endpoint, configuration, current generation and writes refused locally."""
        return {
            "cache": self.cache_name,
            "endpoint": self.endpoint,
            "configuration": self.configuration_name,
            "generation": self._generation.value,
            "refused": self.refused,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(cache={self.cache_name!r}, namespace={self.namespace!r}, "
            f"endpoint={self.endpoint!r})"
        )


class _Shared:
    """What a Momento backend and its namespace views share besides the clients.

    ``generation(ns)`` is the one :class:`Generation` of ``ns`` while anything uses it (a weak
    map: the generations of namespaces no view uses any more are let go, and read again from the
    store when a view of that namespace is made again).
    """

    def __init__(self, cache_name: str, refresh: float) -> None:
        self.cache_name = cache_name
        self.refresh = refresh
        self.refused = 0
        self._generations: weakref.WeakValueDictionary[str, Generation] = (
            weakref.WeakValueDictionary()
        )
        self._lock = threading.Lock()

    def generation(self, namespace: str) -> Generation:
        with self._lock:
            found = self._generations.get(namespace)
            if found is None:
                key = f"{KEY_PREFIX}:{namespace}:generation"
                found = Generation(self.cache_name, key, self.refresh)
                self._generations[namespace] = found
            return found
