"""RedisBackend: one Redis / Valkey node (ElastiCache with cluster mode disabled).

The store's rules (plain GET/SET PX, key names, SCAN+UNLINK clear, cache-sized timeouts) are in
the package docstring, :mod:`llmcache.backends.redis`.

Sync calls use ``redis.Redis``, async calls ``redis.asyncio`` (native, no threads); each side has
its own connection pool, created on first use by :meth:`RedisBackend._create_sync_client` /
:meth:`RedisBackend._create_async_client` (:mod:`.clients`), the factory
:class:`RedisClusterBackend` overrides. The async side keeps one client per live event loop
(:class:`~.pool.LoopBoundClient`). Namespace views
(:meth:`~llmcache.backends.base.Backend.in_namespace`) use their owner's pools and clients,
including those created after the view; only the owner closes them.

Time budget: every operation runs in one budget of ``socket_timeout`` (:mod:`.budget`) covering
the wait for a pooled connection, connecting (bounded on its own by ``socket_connect_timeout``)
and the command, so a call's added latency is at most one ``socket_timeout`` whatever the
concurrency: a burst against a hung server fails every call at its budget instead of queueing
them behind each other's timeouts. ``clear`` and key listing get one budget per round trip.
Capabilities: ``Batch``, ``AtomicAdd``, ``KeyListing``, ``Lists`` (:mod:`.lists`), ``Inspectable``.

Example::

    from llmcache.backends.redis import RedisBackend, RedisOptions

    with RedisBackend(RedisOptions(url="redis://localhost:6379/0"), namespace="demo") as store:
        store.set_many({"a": b"1", "b": b"2"}, ttl=60)
        assert store.get_many(["a", "b", "c"]) == [b"1", b"2", None]
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from llmcache.backends.base import Backend
from llmcache.backends.redis.clients import RedisClients
from llmcache.backends.redis.errors import map_errors
from llmcache.backends.redis.lists import RedisLists
from llmcache.backends.redis.logs import RedisLogs
from llmcache.backends.redis.loop_client import LoopBoundClient
from llmcache.backends.redis.options import RedisOptions
from llmcache.backends.redis.pool_async import AsyncPool
from llmcache.backends.redis.pool_sync import SyncPool
from llmcache.backends.redis.url import glob_escape, parse_redis_url

__all__ = ["RedisBackend"]

BATCH = 1000  # keys per SCAN COUNT and per UNLINK pipeline in clear()
INFO_SCAN_LIMIT = 100_000  # info() counts entries only up to this many keys (SCAN is O(keys))


class RedisBackend(RedisClients, RedisLists, RedisLogs, Backend):
    """A standalone Redis or Valkey node (ElastiCache with cluster mode disabled)."""

    Options = RedisOptions
    options: RedisOptions
    _cluster = False  # whether the URL may name several nodes; set by RedisClusterBackend

    def __init__(self, options: RedisOptions | None = None, *, namespace: str = "default") -> None:
        super().__init__(options, namespace=namespace)
        self.url = parse_redis_url(self.options.url, cluster=self._cluster)
        # An option left at None is "not given": the URL's credentials stand.
        self.username = self.options.username or self.url.username
        secret = self.options.password
        self._password = secret.get_secret_value() if secret else self.url.password
        # Shared with this backend's namespace views (never re-bound): the sync client, made on
        # first use, and one async client per event loop.
        self._lock = threading.Lock()
        self._sync = _SyncClient()
        self._async = LoopBoundClient(self._create_async_client)

    @classmethod
    def _url_fields(cls, url: str) -> dict[str, Any]:
        return {"url": url}

    # -- clients, errors ------------------------------------------------------------------------
    def _client(self) -> Any:
        slot = self._sync
        if slot.client is None:
            with self._lock, self._errors("connect"):
                if slot.client is None:
                    slot.client = self._create_sync_client()
        return slot.client

    async def _aclient(self) -> Any:
        with self._errors("connect"):
            return await self._async.client()

    def _errors(self, op: str) -> AbstractContextManager[None]:
        """The one mapping point: driver errors of ``op`` leave as BackendError."""
        return map_errors(op, self.url, username=self.username, has_password=bool(self._password))

    def _px(self, ttl: float | None) -> int | None:
        ttl = self._ttl(ttl)
        return None if ttl is None else max(1, math.ceil(ttl * 1000))

    # -- sync side --------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        with self._errors("GET"), self._budget():
            client = self._client()
            pool = getattr(client, "connection_pool", None)
            if isinstance(pool, SyncPool):  # the hit path: our pool's lean GET (see execute)
                value: bytes | None = pool.execute("GET", self._key(key))
            else:  # a cluster: redis-py routes the key to its node
                value = client.get(self._key(key))
        return value

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = self._px(ttl)
        with self._errors("SET"), self._budget():
            self._client().set(self._key(key), value, px=px)

    def delete(self, key: str) -> None:
        with self._errors("UNLINK"), self._budget():
            self._client().unlink(self._key(key))

    def clear(self) -> None:
        pattern = glob_escape(self.key_prefix) + "*"
        with self._errors("SCAN/UNLINK"):
            client = self._client()
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) >= BATCH:
                    _unlink(client, batch)
                    batch = []
            _unlink(client, batch)

    def close(self) -> None:
        if self.is_view:  # the owner's clients: the owner closes them
            return
        with self._lock:
            client, self._sync.client = self._sync.client, None
        if client is not None:
            client.close()
        self._async.drop()

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        with (
            self._errors("GET (pipelined)"),
            self._budget(),
            self._client().pipeline(transaction=False) as pipe,
        ):
            for key in keys:
                pipe.get(self._key(key))
            values: list[bytes | None] = pipe.execute()
        return values

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        px = self._px(ttl)
        if not items:
            return
        with (
            self._errors("SET (pipelined)"),
            self._budget(),
            self._client().pipeline(transaction=False) as pipe,
        ):
            for key, value in items.items():
                pipe.set(self._key(key), value, px=px)
            pipe.execute()

    def delete_many(self, keys: Iterable[str]) -> None:
        with self._errors("UNLINK (pipelined)"), self._budget():
            _unlink(self._client(), [self._key(k) for k in keys])

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = self._px(ttl)
        with self._errors("SET NX"), self._budget():
            return bool(self._client().set(self._key(key), value, px=px, nx=True))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        # SCAN MATCH on the escaped prefix (every primary of a cluster), in batches: O(keys in
        # the database), for occasional use such as LangChain's yield_keys, never per request.
        start, pattern = len(self.key_prefix), glob_escape(self.key_prefix + prefix) + "*"
        with self._errors("SCAN"):
            for key in self._client().scan_iter(match=pattern, count=BATCH):
                yield (key.decode() if isinstance(key, bytes) else key)[start:]

    # -- async side (native redis.asyncio), each call in one AsyncBudget ------------------------
    async def aget(self, key: str) -> bytes | None:
        with self._errors("GET"):
            async with self._abudget():
                client = await self._aclient()
                pool = getattr(client, "connection_pool", None)
                if isinstance(pool, AsyncPool):  # the hit path: our pool's lean GET
                    value: bytes | None = await pool.execute("GET", self._key(key))
                else:  # a cluster: redis-py routes the key to its node
                    value = await client.get(self._key(key))
        return value

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = self._px(ttl)
        with self._errors("SET"):
            async with self._abudget():
                client = await self._aclient()
                await client.set(self._key(key), value, px=px)

    async def adelete(self, key: str) -> None:
        with self._errors("UNLINK"):
            async with self._abudget():
                client = await self._aclient()
                await client.unlink(self._key(key))

    async def aclear(self) -> None:
        pattern = glob_escape(self.key_prefix) + "*"
        with self._errors("SCAN/UNLINK"):
            async with self._abudget():
                client = await self._aclient()
            batch: list[bytes] = []
            async for key in self._ascan(client, pattern):
                batch.append(key)
                if len(batch) >= BATCH:
                    async with self._abudget():
                        await _aunlink(client, batch)
                    batch = []
            async with self._abudget():
                await _aunlink(client, batch)

    async def _ascan(self, client: Any, pattern: str) -> AsyncIterator[bytes]:
        """``SCAN MATCH pattern``, one budget per step (not the consumer's time in between)."""
        keys = aiter(client.scan_iter(match=pattern, count=BATCH))
        try:
            while True:
                async with self._abudget():
                    try:
                        key = await anext(keys)
                    except StopAsyncIteration:
                        return
                yield key
        finally:
            await keys.aclose()

    async def aclose(self) -> None:
        if self.is_view:
            return
        await self._async.aclose()
        self.close()

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        with self._errors("GET (pipelined)"):
            async with self._abudget():
                client = await self._aclient()
                async with client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.get(self._key(key))
                    values: list[bytes | None] = await pipe.execute()
        return values

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        px = self._px(ttl)
        if not items:
            return
        with self._errors("SET (pipelined)"):
            async with self._abudget():
                client = await self._aclient()
                async with client.pipeline(transaction=False) as pipe:
                    for key, value in items.items():
                        pipe.set(self._key(key), value, px=px)
                    await pipe.execute()

    async def adelete_many(self, keys: Iterable[str]) -> None:
        full = [self._key(k) for k in keys]
        with self._errors("UNLINK (pipelined)"):
            async with self._abudget():
                await _aunlink(await self._aclient(), full)

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = self._px(ttl)
        with self._errors("SET NX"):
            async with self._abudget():
                client = await self._aclient()
                return bool(await client.set(self._key(key), value, px=px, nx=True))

    async def aiter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        start, pattern = len(self.key_prefix), glob_escape(self.key_prefix + prefix) + "*"
        with self._errors("SCAN"):
            async with self._abudget():
                client = await self._aclient()
            async for key in self._ascan(client, pattern):
                yield (key.decode() if isinstance(key, bytes) else key)[start:]

    # -- introspection --------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        pattern = glob_escape(self.key_prefix) + "*"
        with self._errors("INFO"):
            client = self._client()
            server, memory = client.info("server"), client.info("memory")
            keys = client.scan_iter(match=pattern, count=BATCH)
            entries = sum(1 for _ in itertools.islice(keys, INFO_SCAN_LIMIT))
        return {
            "server": self.url.where,
            "tls": self.url.tls,
            "entries": entries if entries < INFO_SCAN_LIMIT else f">={INFO_SCAN_LIMIT}",
            "redis_version": server.get("valkey_version") or server.get("redis_version"),
            "used_memory": memory.get("used_memory"),
            "maxmemory": memory.get("maxmemory"),
            "maxmemory_policy": memory.get("maxmemory_policy"),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url.where!r}, namespace={self.namespace!r})"


class _SyncClient:
    """The sync client of a backend and its namespace views, created on first use."""

    __slots__ = ("client",)

    def __init__(self) -> None:
        self.client: Any = None


# A pipeline of single-key UNLINKs: one round trip on a node, one per node on a cluster, and no
# CROSSSLOT (a multi-key UNLINK fails on a cluster when the keys live in different slots).
def _unlink(client: Any, keys: Sequence[bytes | str]) -> None:
    if keys:
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("UNLINK", key)
            pipe.execute()


async def _aunlink(client: Any, keys: Sequence[bytes | str]) -> None:
    if keys:
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("UNLINK", key)
            await pipe.execute()
