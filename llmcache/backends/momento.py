"""Momento backend: ``momento://<cache-name>`` on the official SDK, sync and native async.

The API key comes from settings (``LLMCACHE_MOMENTO_API_KEY``, falling back to ``MOMENTO_API_KEY``;
v2 keys also need ``LLMCACHE_MOMENTO_ENDPOINT`` / ``MOMENTO_ENDPOINT``), never from the URL.
``?local=host:port`` talks to a local server (``python -m backends.momento``) without a key.

Options (URL query or keywords): ``configuration`` (laptop | in_region | low_latency | lambda),
``timeout`` (seconds per request), ``default_ttl`` (seconds, at most 24 h: Momento needs a TTL),
``create_cache`` (create the cache if missing), ``generation_refresh`` (seconds a process trusts
its copy of the namespace generation, see below), ``max_concurrency`` (sync ``get_many`` threads).

``clear`` removes only this namespace, never the shared cache: every key carries the namespace
*generation* (``llmcache:<ns>:g<gen>:<key>``) and ``clear`` increments it with Momento's atomic
``Increment`` (details in :mod:`llmcache.backends._momento_generation`). Other processes see a
clear within ``generation_refresh`` seconds; old entries expire on their own TTL.

Example::

    from llmcache.backends.momento import MomentoBackend

    with MomentoBackend.from_url("momento://llm?local=127.0.0.1:8080&create_cache=true") as store:
        store.set("k", b"v", ttl=60)
        assert store.get("k") == b"v"
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

from momento import CacheClient, CacheClientAsync
from momento.config import Configuration
from momento.responses import CacheDelete, CacheGet, CacheSet, CacheSetIfNotExists, CreateCache
from pydantic import Field, SecretStr

from llmcache.backends import _momento_lists as lists
from llmcache.backends._momento_generation import Generation
from llmcache.backends._momento_sdk import (
    MAX_ITEM_BYTES,
    MAX_TTL_SECONDS,
    ConfigurationName,
    MomentoError,
    MomentoUnavailable,
    check_cache_name,
    configuration,
    credentials,
    raise_error,
)
from llmcache.backends.base import Backend, BackendOptions, parse_options, url_options
from llmcache.errors import ConfigError, UnsupportedOperation

__all__ = ["MomentoBackend", "MomentoError", "MomentoOptions", "MomentoUnavailable"]

T = TypeVar("T")


class MomentoOptions(BackendOptions):
    """Options of ``momento://`` (``api_key``/``endpoint`` usually come from settings)."""

    api_key: SecretStr | None = None
    endpoint: str | None = None
    local: str | None = None
    configuration: ConfigurationName = "in_region"
    timeout: float | None = Field(default=None, gt=0, le=300)
    default_ttl: float = Field(default=86_400.0, gt=0, le=MAX_TTL_SECONDS)
    create_cache: bool = False
    generation_refresh: float = Field(default=1.0, ge=0, le=3600)
    max_concurrency: int = Field(default=16, gt=0, le=256)


class MomentoBackend(Backend):
    """One Momento cache; namespaces share it and are separated by key prefix + generation."""

    schemes = ("momento",)

    def __init__(
        self,
        cache_name: str,
        *,
        namespace: str = "default",
        api_key: SecretStr | str | None = None,
        endpoint: str | None = None,
        local: str | None = None,
        configuration: ConfigurationName = "in_region",
        timeout: float | None = None,
        default_ttl: float = 86_400.0,
        create_cache: bool = False,
        generation_refresh: float = 1.0,
        max_concurrency: int = 16,
    ) -> None:
        super().__init__(namespace=namespace, default_ttl=default_ttl)
        self.cache_name = check_cache_name(cache_name)
        self._check_ttl(default_ttl)
        self._client_ttl = timedelta(seconds=default_ttl)
        self.configuration_name = configuration
        self.timeout = timeout
        self.create_cache = create_cache
        self.generation_refresh = generation_refresh
        self.max_concurrency = max_concurrency
        self._credentials = credentials(api_key, endpoint, local)
        self._configuration = self.make_configuration()
        self.endpoint = self._credentials.cache_endpoint
        self.generation_key = f"{self.key_prefix}generation"
        self._generation = Generation(cache_name, self.generation_key, generation_refresh)
        #: Writes refused before the call (item above 5 MiB, ttl above 24 h), for stats.
        self.refused = 0
        self._cache_ready = not create_cache
        self._lock = threading.Lock()
        self._client: CacheClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._aclient: CacheClientAsync | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "default", **options: Any) -> Self:
        parts = urlsplit(url)
        if "@" in parts.netloc or "api_key" in dict(parse_qsl(parts.query)):
            raise ConfigError(
                "never put the Momento API key in the cache URL: set LLMCACHE_MOMENTO_API_KEY "
                "(or MOMENTO_API_KEY) instead"
            )
        if parts.path not in ("", "/"):
            raise ConfigError(f"unexpected path {parts.path!r} in {url!r}: use momento://<cache>")
        opts = parse_options(MomentoOptions, "momento", url_options(url, options))
        return cls(parts.netloc, namespace=namespace, **opts.model_dump())

    @classmethod
    def settings_options(cls, settings: Any) -> dict[str, Any]:
        found = {
            "api_key": getattr(settings, "momento_api_key", None),
            "endpoint": getattr(settings, "momento_endpoint", None),
        }
        return {k: v for k, v in found.items() if v}

    def make_configuration(self) -> Configuration:
        """The SDK configuration for both clients (override to add middleware)."""
        return configuration(self.configuration_name, self.timeout)

    # -- keys, ttl, limits --------------------------------------------------------------------
    def _key(self, generation: int, key: str) -> str:
        return f"{self.key_prefix}g{generation}:{key}"

    @staticmethod
    def _check_ttl(ttl: float) -> None:
        if ttl > MAX_TTL_SECONDS:
            raise ConfigError(f"invalid ttl {ttl!r}: Momento keeps items at most 24 h (86400 s)")

    def _ttl(self, ttl: float | None) -> timedelta:
        seconds = self.effective_ttl(ttl)
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

    # -- sync side ----------------------------------------------------------------------------
    def _sync(self) -> CacheClient:
        client = self._client
        if client is not None and self._cache_ready:
            return client
        with self._lock:
            if self._client is None:
                # The plain constructor connects lazily (``create(eager_connection_timeout=0)``
                # raises UnboundLocalError in momento 1.29.1).
                self._client = CacheClient(self._configuration, self._credentials, self._client_ttl)
            if not self._cache_ready:
                response = self._client.create_cache(self.cache_name)
                self._check(
                    "create_cache", response, CreateCache.Success, CreateCache.CacheAlreadyExists
                )
                self._cache_ready = True
            return self._client

    def _generation_sync(self) -> int:
        return self._generation.get(self._sync())

    def get(self, key: str) -> bytes | None:
        return self._get_at(self._generation_sync(), key)

    def _get_at(self, generation: int, key: str) -> bytes | None:
        response = self._sync().get(self.cache_name, self._key(generation, key))
        if isinstance(response, CacheGet.Hit):
            return bytes(response.value_bytes)
        self._check("get", response, CacheGet.Miss)
        return None

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        ttl_delta = self._ttl(ttl)
        self._set_at(self._generation_sync(), key, value, ttl_delta)

    def _set_at(self, generation: int, key: str, value: bytes, ttl: timedelta) -> None:
        full = self._key(generation, key)
        self._check_size(full, value)
        response = self._sync().set(self.cache_name, full, bytes(value), ttl)
        self._check("set", response, CacheSet.Success)

    def delete(self, key: str) -> None:
        full = self._key(self._generation_sync(), key)
        self._check("delete", self._sync().delete(self.cache_name, full), CacheDelete.Success)

    def clear(self) -> None:
        self._generation.bump(self._sync())

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        ttl_delta = self._ttl(ttl)
        full = self._key(self._generation_sync(), key)
        self._check_size(full, value)
        response = self._sync().set_if_not_exists(self.cache_name, full, bytes(value), ttl_delta)
        self._check("add", response, CacheSetIfNotExists.Stored, CacheSetIfNotExists.NotStored)
        return isinstance(response, CacheSetIfNotExists.Stored)

    def _map(self, fn: Callable[[T], Any], items: list[T]) -> list[Any]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, "llmcache-momento")
            pool = self._pool
        return list(pool.map(fn, items))

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        generation = self._generation_sync()
        return self._map(lambda k: self._get_at(generation, k), keys)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ttl_delta = self._ttl(ttl)
        generation = self._generation_sync()
        self._map(lambda kv: self._set_at(generation, kv[0], kv[1], ttl_delta), list(items.items()))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        raise UnsupportedOperation(
            "momento:// cannot list keys: Momento has no key listing or SCAN (so LangChain's "
            "yield_keys is not available on it); keep your own index of keys if you need one"
        )

    def list_push(
        self,
        key: str,
        values: Sequence[bytes],
        *,
        max_len: int | None = None,
        ttl: float | None = None,
    ) -> None:
        max_len, ttl_delta = self.check_max_len(max_len), self._ttl(ttl)
        elements = lists.check_elements(self.cache_name, values)
        name = self._key(self._generation_sync(), key)
        lists.push(self._sync(), self.cache_name, name, elements, ttl_delta, max_len)

    def list_range(self, key: str) -> list[bytes]:
        name = self._key(self._generation_sync(), key)
        return lists.fetch(self._sync(), self.cache_name, name)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            pool, self._pool = self._pool, None
            aclient, aloop = self._aclient, self._aloop
            self._aclient = self._aloop = None
        if pool is not None:
            pool.shutdown(wait=False)
        if client is not None:
            client.__exit__(None, None, None)
        if aclient is not None and aloop is not None:
            _close_async_elsewhere(aclient, aloop)

    # -- async side (CacheClientAsync, created on the running loop) ---------------------------
    async def _async(self) -> CacheClientAsync:
        loop = asyncio.get_running_loop()
        client = self._aclient
        if client is None or self._aloop is not loop:
            if client is not None and self._aloop is not None:
                _close_async_elsewhere(client, self._aloop)
            client = self._aclient = CacheClientAsync(
                self._configuration, self._credentials, self._client_ttl
            )
            self._aloop = loop
        if not self._cache_ready:
            response = await client.create_cache(self.cache_name)
            self._check(
                "create_cache", response, CreateCache.Success, CreateCache.CacheAlreadyExists
            )
            self._cache_ready = True
        return client

    async def _generation_async(self) -> int:
        return await self._generation.aget(await self._async())

    async def aget(self, key: str) -> bytes | None:
        full = self._key(await self._generation_async(), key)
        response = await (await self._async()).get(self.cache_name, full)
        if isinstance(response, CacheGet.Hit):
            return bytes(response.value_bytes)
        self._check("get", response, CacheGet.Miss)
        return None

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        ttl_delta = self._ttl(ttl)
        full = self._key(await self._generation_async(), key)
        self._check_size(full, value)
        response = await (await self._async()).set(self.cache_name, full, bytes(value), ttl_delta)
        self._check("set", response, CacheSet.Success)

    async def adelete(self, key: str) -> None:
        full = self._key(await self._generation_async(), key)
        response = await (await self._async()).delete(self.cache_name, full)
        self._check("delete", response, CacheDelete.Success)

    async def aclear(self) -> None:
        await self._generation.abump(await self._async())

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        ttl_delta = self._ttl(ttl)
        full = self._key(await self._generation_async(), key)
        self._check_size(full, value)
        client = await self._async()
        response = await client.set_if_not_exists(self.cache_name, full, bytes(value), ttl_delta)
        self._check("add", response, CacheSetIfNotExists.Stored, CacheSetIfNotExists.NotStored)
        return isinstance(response, CacheSetIfNotExists.Stored)

    async def alist_push(
        self,
        key: str,
        values: Sequence[bytes],
        *,
        max_len: int | None = None,
        ttl: float | None = None,
    ) -> None:
        max_len, ttl_delta = self.check_max_len(max_len), self._ttl(ttl)
        elements = lists.check_elements(self.cache_name, values)
        name = self._key(await self._generation_async(), key)
        await lists.apush(await self._async(), self.cache_name, name, elements, ttl_delta, max_len)

    async def alist_range(self, key: str) -> list[bytes]:
        name = self._key(await self._generation_async(), key)
        return await lists.afetch(await self._async(), self.cache_name, name)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        aclient = self._aclient if self._aloop is loop else None
        if aclient is not None:
            self._aclient = self._aloop = None
            await aclient.__aexit__(None, None, None)
        self.close()

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
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


def _close_async_elsewhere(client: CacheClientAsync, loop: asyncio.AbstractEventLoop) -> None:
    """Close an async client that belongs to ``loop`` from outside it, as well as we can."""
    if loop.is_closed():
        return  # its channels died with the loop
    coro = client.__aexit__(None, None, None)
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(coro)
    elif loop.is_running():
        asyncio.run_coroutine_threadsafe(coro, loop)
    else:
        loop.run_until_complete(coro)
