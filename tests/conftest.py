"""Shared fixtures: the servers, and ONE parametrised store fixture over every backend.

``store_target`` runs a test once per backend (memory, disk, Redis standalone, Redis TLS+AUTH,
Redis cluster, Momento through the real SDK), as cashews' ``raw_backend`` does. Server-backed
params carry the ``redis`` / ``momento`` marks (``-m "not redis"`` deselects them) and start their
server once per session; a server that cannot start skips the test, or fails it when
``LLMCACHE_REQUIRE_SERVERS=1`` (:func:`llmcache.testing.server_missing`).

The servers come from the top-level ``backends`` package (``backends.redis.servers``,
``backends.momento``): the repository root is on ``sys.path`` when pytest runs from it.

Server fixtures, for backend-specific tests in any file: ``standalone``, ``tls_server``,
``cluster`` (session) and ``own_server`` (a standalone Redis of the test's own, to kill);
``momento_server`` (session) and ``own_momento_server`` (to stop or make fail).
Backend builders and raw driver clients of these servers live in ``tests/backends/clients.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmcache.backends.disk import DiskBackend, DiskOptions
from llmcache.backends.memory import MemoryBackend
from llmcache.registry import create_backend
from llmcache.testing import server_missing
from tests.backends.clients import (
    MOMENTO_CACHE,
    REDIS_RELAXED,
    MomentoRaw,
    StoreTarget,
    momento_backend,
    redis_client,
)


# -- Redis servers --------------------------------------------------------------------------------
def _start_redis(kind: str) -> Iterator[Any]:
    from backends.redis import servers

    starter = {
        "standalone": servers.start_standalone,
        "tls": servers.start_tls,
        "cluster": servers.start_cluster,
    }[kind]
    try:
        server = starter()
    except servers.ServerMissing as exc:
        server_missing(f"cannot start Redis for these tests: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LLMCACHE_* / MOMENTO_API_KEY from the caller's environment, and a fresh working
    directory (no .env, llmcache.toml or pyproject.toml from elsewhere): settings tests see
    only what they set."""
    for name in list(os.environ):
        if name.startswith("LLMCACHE_") or name == "MOMENTO_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def standalone() -> Iterator[Any]:
    """A standalone redis-server shaped like ElastiCache (cluster mode disabled)."""
    yield from _start_redis("standalone")


@pytest.fixture(scope="session")
def tls_server() -> Iterator[Any]:
    """A TLS-only redis-server with an AUTH token and an ACL user; its URL logs in as that user."""
    yield from _start_redis("tls")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """Three cluster-mode masters; ``url`` is ``redis+cluster://`` over all of them."""
    yield from _start_redis("cluster")


@pytest.fixture
def own_server() -> Iterator[Any]:
    """A standalone Redis of this test's own, to kill and restart."""
    yield from _start_redis("standalone")


# -- Momento server -------------------------------------------------------------------------------
def _momento_server_class() -> Any:
    pytest.importorskip("momento", reason="the momento extra is not installed")
    try:
        from backends.momento import MomentoLocalServer
    except ImportError as exc:  # grpcio or momento-wire-types missing
        server_missing(f"local Momento server cannot be imported: {exc}")
    return MomentoLocalServer


@pytest.fixture(scope="session")
def momento_server() -> Iterator[Any]:
    """The local Momento server (gRPC, for the real SDK) holding the cache ``MOMENTO_CACHE``."""
    cls = _momento_server_class()
    try:
        server = cls(caches=[MOMENTO_CACHE]).start()
    except Exception as exc:
        server_missing(f"local Momento server did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def own_momento_server() -> Iterator[Any]:
    """A local Momento server of this test's own, free to be stopped or made to fail."""
    server = _momento_server_class()(caches=[MOMENTO_CACHE]).start()
    yield server
    server.stop()


# -- the one parametrised store fixture -----------------------------------------------------------
def _disk_raw(path: Path) -> Any:
    import diskcache

    return diskcache.Cache(str(path))  # opens with the settings stored in the directory


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("disk", id="disk"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("redis-tls", marks=pytest.mark.redis, id="redis-tls"),
    pytest.param("redis-cluster", marks=pytest.mark.redis, id="redis-cluster"),
    pytest.param("momento", marks=pytest.mark.momento, id="momento"),
]
_REDIS_SERVERS = {"redis": "standalone", "redis-tls": "tls_server", "redis-cluster": "cluster"}


def _target(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreTarget:
    if kind == "memory":
        return StoreTarget(kind, lambda ns: MemoryBackend(namespace=ns), shared=False)
    if kind == "disk":
        path = tmp_path / "cache"
        return StoreTarget(
            kind,
            lambda ns: DiskBackend(DiskOptions(path=path), namespace=ns),
            shared=True,
            raw_factory=lambda: _disk_raw(path),
        )
    if kind in _REDIS_SERVERS:
        server = request.getfixturevalue(_REDIS_SERVERS[kind])
        return StoreTarget(
            kind,
            lambda ns: create_backend(server.url, namespace=ns, **REDIS_RELAXED),
            shared=True,
            raw_factory=lambda: redis_client(server),
        )
    if kind == "momento":
        server = request.getfixturevalue("momento_server")
        return StoreTarget(
            kind,
            lambda ns: momento_backend(server, ns),
            shared=True,
            raw_factory=lambda: MomentoRaw(server.address),
        )
    raise AssertionError(f"unknown backend {kind!r}")


@pytest.fixture(params=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    """Each backend in turn (see the module doc); server-backed ones behind their marks."""
    target = _target(str(request.param), request, tmp_path)
    try:
        yield target
    finally:
        target.close()
