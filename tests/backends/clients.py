"""Clients of the test servers: backend builders and the drivers' own raw clients.

Used by ``tests/conftest.py`` (the shared store fixture) and the backend-specific test files. A
raw client is built from the server's address, never taken from a backend, so it sees the store
as any other user of it does: no namespace, no key prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from llmcache.backends.base import Backend

__all__ = [
    "MOMENTO_CACHE",
    "MOMENTO_TIMEOUT",
    "REDIS_RELAXED",
    "MomentoRaw",
    "StoreTarget",
    "momento_backend",
    "new_namespace",
    "redis_client",
]

#: The Momento cache the local server holds for the tests.
MOMENTO_CACHE = "llmcache-test"
# The shared fixture checks behaviour, not latency: on a busy shared CI machine, 200 concurrent
# first connections (TLS handshakes included) need more than the 250 ms defaults, which the
# Redis fault tests check on their own.
REDIS_RELAXED: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
MOMENTO_TIMEOUT = 5.0  # seconds per Momento call in the shared fixture (the local server is near)


def new_namespace() -> str:
    """A fresh random namespace: each test gets its own."""
    return f"t{uuid.uuid4().hex[:12]}"


def redis_client(server: Any) -> Any:
    """redis-py's own client for ``server`` (a standalone/TLS ``Server`` or a ``Cluster``).

    Built from the server's address, not taken from a backend: it sees the store as any other
    client does (no namespace, no key prefix). Close it after use.
    """
    import redis
    from redis.cluster import RedisCluster

    nodes = getattr(server, "nodes", None)
    if nodes is not None:
        return RedisCluster(host="127.0.0.1", port=nodes[0].port)
    return redis.Redis.from_url(server.url)


def momento_backend(server: Any, namespace: str | None = None, **options: Any) -> Any:
    """A ``MomentoBackend`` on the local ``server``'s test cache (timeout 5 s unless given)."""
    from llmcache.backends.momento import MomentoBackend, MomentoOptions

    options.setdefault("timeout", MOMENTO_TIMEOUT)
    return MomentoBackend(
        MomentoOptions(cache_name=MOMENTO_CACHE, local=server.address, **options),
        namespace=namespace or new_namespace(),
    )


class MomentoRaw:
    """The Momento SDK's own ``CacheClient`` for a local server, with get/set/close."""

    def __init__(self, address: str) -> None:
        from momento import CacheClient, Configurations, CredentialProvider

        host, _, port = address.rpartition(":")
        self._client = CacheClient(
            Configurations.Laptop.v1(),
            CredentialProvider.for_momento_local(host, int(port)),
            timedelta(seconds=60),
        )

    def set(self, key: str, value: bytes) -> None:
        from momento.responses import CacheSet

        response = self._client.set(MOMENTO_CACHE, key, value)
        assert isinstance(response, CacheSet.Success), response

    def get(self, key: str) -> bytes | None:
        from momento.responses import CacheGet

        response = self._client.get(MOMENTO_CACHE, key)
        return response.value_bytes if isinstance(response, CacheGet.Hit) else None

    def delete(self, key: str) -> None:
        self._client.delete(MOMENTO_CACHE, key)

    def close(self) -> None:
        self._client.__exit__(None, None, None)  # the SDK closes its channels on exit


@dataclass
class StoreTarget:
    """One backend under test: how to build it, and raw access to its store.

    ``make(namespace)`` builds a backend (closed at teardown if the test did not). ``shared``:
    two namespaces made here live in one store (False for memory, whose instances are separate
    stores). ``write_foreign`` / ``read_foreign`` reach the store through the driver's own client,
    built from the server's address (a diskcache handle on the directory, redis-py, the Momento
    SDK), so a test can plant bytes llmcache did not write; memory has none and skips.
    """

    name: str
    factory: Callable[[str], Backend]
    shared: bool
    raw_factory: Callable[[], Any] | None = None
    made: list[Backend] = field(default_factory=list, repr=False)
    _raw: Any = field(default=None, init=False, repr=False)
    _foreign: list[str] = field(default_factory=list, init=False, repr=False)

    def make(self, namespace: str | None = None) -> Backend:
        backend = self.factory(namespace or new_namespace())
        self.made.append(backend)
        return backend

    def make_neighbour(self, namespace: str) -> Backend:
        """A backend on the same store under ``namespace``; skips when stores are separate."""
        if not self.shared:
            pytest.skip(f"each {self.name} instance is its own store: namespaces cannot meet")
        return self.make(namespace)

    def raw(self) -> Any:
        """The driver's own client (``get``/``set``/``delete``/``close``), built once per test."""
        if self.raw_factory is None:
            pytest.skip(f"{self.name} has no store outside the instance: nothing can be foreign")
        if self._raw is None:
            self._raw = self.raw_factory()
        return self._raw

    def write_foreign(self, key: str, value: bytes) -> None:
        """Write ``value`` under the store key ``key`` as another user of the store would."""
        self.raw().set(key, value)
        self._foreign.append(key)  # removed at teardown: the servers live for the session

    def read_foreign(self, key: str) -> bytes | None:
        """Read the store key ``key`` through the driver's own client."""
        value = self.raw().get(key)
        return value if isinstance(value, bytes) else None

    def close(self) -> None:
        for backend in self.made:
            backend.close()
        if self._raw is not None:
            for key in self._foreign:
                self._raw.delete(key)
            self._raw.close()
