"""Redis / Valkey backend, built for ElastiCache as it is: one node, TLS + AUTH, or cluster mode.

Values are plain strings (``GET`` / ``SET ... PX``): no modules, no Lua, no hash tags. Keys are
``llmcache:<namespace>:<key>``; ``clear`` is ``SCAN MATCH llmcache:<namespace>:*`` + ``UNLINK`` in
batches (on every primary of a cluster), never ``FLUSHDB``. Timeouts are cache-sized (250 ms) and
retries few (1, with backoff), so a store that is down costs a call little and raises
:class:`~llmcache.errors.BackendUnavailable`, which the cache facade turns into a miss.

Sync calls use ``redis.Redis``, async calls ``redis.asyncio`` (native, no threads); each side has
its own connection pool, created on first use. The async client belongs to the event loop that
created it; used from another loop it is replaced.

Example::

    from llmcache.registry import create_backend

    store = create_backend("rediss://app:secret@my-cache.xxxxxx.use1.cache.amazonaws.com:6379/0",
                           namespace="chatbot", socket_timeout=0.2)
    store.set("k", b"v", ttl=3600)
    assert store.get("k") == b"v"
    store.close()

    # ElastiCache with cluster mode enabled: the configuration endpoint
    store = create_backend("rediss+cluster://clustercfg.my-cache.xxxxxx.use1.cache.amazonaws.com:6379")
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from pydantic import Field, SecretStr
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from llmcache.backends._redis_support import (
    AsyncPool,
    LoopBoundClient,
    explain_error,
    glob_escape,
    parse_redis_url,
)
from llmcache.backends.base import Backend, BackendOptions, parse_options, url_options
from llmcache.errors import LLMCacheError

__all__ = ["RedisBackend", "RedisClusterBackend", "RedisOptions"]

BATCH = 1000  # keys per SCAN COUNT and per UNLINK pipeline in clear()
INFO_SCAN_LIMIT = 100_000  # info() counts entries only up to this many keys (SCAN is O(keys))
BACKOFF_BASE, BACKOFF_CAP = 0.01, 0.1  # seconds between retries: 10 ms, doubling, at most 100 ms


class RedisOptions(BackendOptions):
    """Options of ``redis://`` and friends (URL query parameters or keyword arguments)."""

    socket_timeout: float = Field(default=0.25, gt=0)  # seconds per read/write
    socket_connect_timeout: float = Field(default=0.25, gt=0)  # seconds to connect (+TLS)
    retries: int = Field(default=1, ge=0, le=5)  # reconnects after a dropped connection
    max_connections: int = Field(default=50, gt=0)  # per pool; sync cluster: per node
    health_check_interval: int = Field(default=0, ge=0)  # PING idle connections older than this
    username: str | None = None  # ACL / ElastiCache RBAC user (default: the URL's)
    password: SecretStr | None = None  # password or AUTH token (default: the URL's)
    ssl_ca_certs: str | None = None  # CA bundle to verify the server (default: system CAs)
    ssl_certfile: str | None = None  # client certificate, for servers that require one
    ssl_keyfile: str | None = None  # its private key
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_check_hostname: bool = True
    default_ttl: float | None = Field(default=None, gt=0)


class RedisBackend(Backend):
    """A standalone Redis or Valkey node (ElastiCache with cluster mode disabled)."""

    schemes: ClassVar[tuple[str, ...]] = ("redis", "rediss", "valkey", "valkeys")
    _cluster = False  # whether the URL may name several nodes; set by RedisClusterBackend

    def __init__(
        self, url: str = "redis://localhost:6379/0", *, namespace: str = "default", **options: Any
    ) -> None:
        self.url = parse_redis_url(url, cluster=self._cluster)
        scheme = url.partition("://")[0].lower()
        # None means "not given" (settings without a password): the URL's credentials stand.
        given = {k: v for k, v in url_options(url, options).items() if v is not None}
        self.options = parse_options(RedisOptions, scheme, given)
        super().__init__(namespace=namespace, default_ttl=self.options.default_ttl)
        self.username = self.options.username or self.url.username
        secret = self.options.password
        self._password = secret.get_secret_value() if secret else self.url.password
        self._lock = threading.Lock()
        self._sync: Any = None
        self._async = LoopBoundClient(self._create_async_client)

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "default", **options: Any) -> Self:
        return cls(url, namespace=namespace, **options)

    @classmethod
    def settings_options(cls, settings: Any) -> dict[str, Any]:
        return {
            "username": getattr(settings, "redis_username", None),
            "password": getattr(settings, "redis_password", None),
        }

    # -- client creation: the one thing RedisClusterBackend overrides --------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        o = self.options
        kwargs: dict[str, Any] = {
            "username": self.username,
            "password": self._password,
            "socket_timeout": o.socket_timeout,
            "socket_connect_timeout": o.socket_connect_timeout,
            "health_check_interval": o.health_check_interval,
            "max_connections": o.max_connections,
        }
        if self.url.tls:
            kwargs.update(
                ssl=True,
                ssl_ca_certs=o.ssl_ca_certs,
                ssl_certfile=o.ssl_certfile,
                ssl_keyfile=o.ssl_keyfile,
                ssl_cert_reqs=o.ssl_cert_reqs,
                ssl_check_hostname=o.ssl_check_hostname and o.ssl_cert_reqs != "none",
            )
        return kwargs

    def _retry(self, retry_class: Any) -> Any:
        # Retry only a dropped connection (a restarted or failed-over server, an idle connection
        # closed by a proxy), never a timeout: a slow store costs one timeout, not several.
        backoff = ExponentialWithJitterBackoff(base=BACKOFF_BASE, cap=BACKOFF_CAP)
        return retry_class(backoff, self.options.retries, supported_errors=(RedisConnectionError,))

    def _create_sync_client(self) -> Any:
        return redis.Redis.from_pool(self._pool(redis, Retry))

    def _create_async_client(self) -> Any:
        return redis.asyncio.Redis.from_pool(self._pool(redis.asyncio, AsyncRetry, AsyncPool))

    def _pool(self, driver: Any, retry: Any, pool_class: Any = None) -> Any:
        # A blocking pool: over max_connections an operation waits for a free connection (at most
        # the time one takes to connect and answer) instead of failing at once on a burst.
        kwargs = self._client_kwargs()
        tls = kwargs.pop("ssl", False)
        host, port = self.url.nodes[0]
        return (pool_class or driver.BlockingConnectionPool)(
            connection_class=driver.SSLConnection if tls else driver.Connection,
            timeout=self.options.socket_connect_timeout + self.options.socket_timeout,
            **{"host": host, "port": port, "db": self.url.db, "retry": self._retry(retry)},
            **kwargs,
        )

    # -- clients, errors ------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._sync is None:
            with self._lock, self._errors("connect"):
                if self._sync is None:
                    self._sync = self._create_sync_client()
        return self._sync

    async def _aclient(self) -> Any:
        with self._errors("connect"):
            return await self._async.client()

    @contextlib.contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        """Turn driver errors into BackendError with a message a user can act on."""
        try:
            yield
        except LLMCacheError:
            raise
        except Exception as exc:  # RedisError, OSError, and the driver's own bugs under faults
            raise explain_error(exc, op, self.url, self.username, bool(self._password)) from exc

    def _px(self, ttl: float | None) -> int | None:
        ttl = self.effective_ttl(ttl)
        return None if ttl is None else max(1, math.ceil(ttl * 1000))

    # -- sync side --------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        with self._errors("GET"):
            value: bytes | None = self._client().get(self.full_key(key))
        return value

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = self._px(ttl)
        with self._errors("SET"):
            self._client().set(self.full_key(key), value, px=px)

    def delete(self, key: str) -> None:
        with self._errors("UNLINK"):
            self._client().unlink(self.full_key(key))

    def clear(self) -> None:
        client, pattern = self._client(), glob_escape(self.key_prefix) + "*"
        with self._errors("SCAN/UNLINK"):
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) >= BATCH:
                    self._unlink(client, batch)
                    batch = []
            self._unlink(client, batch)

    @staticmethod
    def _unlink(client: Any, keys: list[bytes]) -> None:
        # A pipeline of single-key UNLINKs: one round trip per node, and no CROSSSLOT on a cluster.
        if keys:
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.execute_command("UNLINK", key)
                pipe.execute()

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        # SCAN MATCH on the escaped prefix (every primary of a cluster), in batches: O(keys in
        # the database), for occasional use such as LangChain's yield_keys, never per request.
        start, pattern = len(self.key_prefix), glob_escape(self.key_prefix + prefix) + "*"
        with self._errors("SCAN"):
            for key in self._client().scan_iter(match=pattern, count=BATCH):
                yield (key.decode() if isinstance(key, bytes) else key)[start:]

    def list_push(
        self,
        key: str,
        values: Sequence[bytes],
        *,
        max_len: int | None = None,
        ttl: float | None = None,
    ) -> None:
        max_len, px = self.check_max_len(max_len), self._px(ttl)
        if not values:
            return
        # RPUSH + LTRIM + PEXPIRE in one MULTI: one key, so one slot on a cluster too.
        with self._errors("RPUSH"), self._client().pipeline(transaction=True) as pipe:
            self._queue_push(pipe, self.full_key(key), values, max_len, px)
            pipe.execute()

    @staticmethod
    def _queue_push(
        pipe: Any, full: str, values: Sequence[bytes], max_len: int | None, px: int | None
    ) -> None:
        pipe.rpush(full, *values)
        if max_len is not None:
            pipe.ltrim(full, -max_len, -1)
        if px is not None:
            pipe.pexpire(full, px)

    def list_range(self, key: str) -> list[bytes]:
        with self._errors("LRANGE"):
            return list(self._client().lrange(self.full_key(key), 0, -1))

    def close(self) -> None:
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()
        self._async.drop()

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        with self._errors("GET (pipelined)"), self._client().pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(self.full_key(key))
            values: list[bytes | None] = pipe.execute()
        return values

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        px = self._px(ttl)
        if not items:
            return
        with self._errors("SET (pipelined)"), self._client().pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(self.full_key(key), value, px=px)
            pipe.execute()

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = self._px(ttl)
        with self._errors("SET NX"):
            return bool(self._client().set(self.full_key(key), value, px=px, nx=True))

    # -- async side (native redis.asyncio) ------------------------------------------------------
    async def aget(self, key: str) -> bytes | None:
        with self._errors("GET"):
            client = await self._aclient()
            value: bytes | None = await client.get(self.full_key(key))
        return value

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = self._px(ttl)
        with self._errors("SET"):
            client = await self._aclient()
            await client.set(self.full_key(key), value, px=px)

    async def adelete(self, key: str) -> None:
        with self._errors("UNLINK"):
            client = await self._aclient()
            await client.unlink(self.full_key(key))

    async def aclear(self) -> None:
        client, pattern = await self._aclient(), glob_escape(self.key_prefix) + "*"
        with self._errors("SCAN/UNLINK"):
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) >= BATCH:
                    await self._aunlink(client, batch)
                    batch = []
            await self._aunlink(client, batch)

    @staticmethod
    async def _aunlink(client: Any, keys: list[bytes]) -> None:
        if keys:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.execute_command("UNLINK", key)
                await pipe.execute()

    async def aiter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        start, pattern = len(self.key_prefix), glob_escape(self.key_prefix + prefix) + "*"
        with self._errors("SCAN"):
            client = await self._aclient()
            async for key in client.scan_iter(match=pattern, count=BATCH):
                yield (key.decode() if isinstance(key, bytes) else key)[start:]

    async def alist_push(
        self,
        key: str,
        values: Sequence[bytes],
        *,
        max_len: int | None = None,
        ttl: float | None = None,
    ) -> None:
        max_len, px = self.check_max_len(max_len), self._px(ttl)
        if not values:
            return
        with self._errors("RPUSH"):
            client = await self._aclient()
            async with client.pipeline(transaction=True) as pipe:
                self._queue_push(pipe, self.full_key(key), values, max_len, px)
                await pipe.execute()

    async def alist_range(self, key: str) -> list[bytes]:
        with self._errors("LRANGE"):
            client = await self._aclient()
            return list(await client.lrange(self.full_key(key), 0, -1))

    async def aclose(self) -> None:
        await self._async.aclose()
        self.close()

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        with self._errors("GET (pipelined)"):
            client = await self._aclient()
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(self.full_key(key))
                values: list[bytes | None] = await pipe.execute()
        return values

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        px = self._px(ttl)
        if not items:
            return
        with self._errors("SET (pipelined)"):
            client = await self._aclient()
            async with client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self.full_key(key), value, px=px)
                await pipe.execute()

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = self._px(ttl)
        with self._errors("SET NX"):
            client = await self._aclient()
            return bool(await client.set(self.full_key(key), value, px=px, nx=True))

    # -- introspection --------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        client, pattern = self._client(), glob_escape(self.key_prefix) + "*"
        with self._errors("INFO"):
            server, memory = client.info("server"), client.info("memory")
            keys = client.scan_iter(match=pattern, count=BATCH)
            entries = sum(1 for _ in itertools.islice(keys, INFO_SCAN_LIMIT))
        return {
            **super().info(),
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


class RedisClusterBackend(RedisBackend):
    """A Redis / Valkey cluster (ElastiCache with cluster mode enabled: the configuration endpoint).

    Keys spread over slots; pipelines are grouped per node by the driver and ``clear`` scans every
    primary. Only client creation differs from :class:`RedisBackend`.
    """

    schemes: ClassVar[tuple[str, ...]] = ("redis+cluster", "rediss+cluster")
    _cluster = True

    def _create_sync_client(self) -> Any:
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in self.url.nodes]  # type: ignore[no-untyped-call]
        retry = self._retry(Retry)
        return redis.cluster.RedisCluster(
            startup_nodes=nodes, retry=retry, require_full_coverage=False, **self._client_kwargs()
        )

    def _create_async_client(self) -> Any:
        nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in self.url.nodes]
        # No cap here: redis-py's async cluster does not wait for a free connection; over its cap
        # it raises a ConnectionError and resets the node's connections, failing calls in flight.
        kwargs = {**self._client_kwargs(), "max_connections": 2**31}
        retry = self._retry(AsyncRetry)
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=nodes, retry=retry, require_full_coverage=False, **kwargs
        )
