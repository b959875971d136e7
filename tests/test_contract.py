"""The backend contract (``llmcache.testing.BackendContract``), once, on every backend.

``store_target`` (tests/conftest.py) runs it on memory, disk, Redis standalone, Redis TLS+AUTH,
Redis cluster and Momento; each test runs through the sync and the async methods. The namespace
views' connection sharing is checked here per backend (:meth:`TestContract.shared_resources`), and
on Redis also by the server's own count of client connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmcache.backends.base import Backend
from llmcache.backends.disk import DiskBackend
from llmcache.backends.memory import MemoryBackend
from llmcache.registry import create_backend
from llmcache.testing import BackendContract, ForeignKeys, Ops
from tests.backends.clients import REDIS_RELAXED, StoreTarget, momento_backend, new_namespace


class TestContract(BackendContract):
    @pytest.fixture
    def make_backend(self, store_target: StoreTarget) -> Callable[[str], Backend]:
        return store_target.make

    @pytest.fixture
    def make_neighbour(self, store_target: StoreTarget) -> Callable[[str], Backend]:
        return store_target.make_neighbour

    @pytest.fixture
    def foreign(self, store_target: StoreTarget) -> ForeignKeys:
        store_target.raw()  # skips when the backend has no store outside the instance
        return store_target

    async def shared_resources(self, backend: Backend, mode: str) -> list[object]:
        if isinstance(backend, MemoryBackend):
            return [backend._data, backend._lists, backend._lock]
        if isinstance(backend, DiskBackend):
            return [backend._cache]
        name = type(backend).__name__
        if name in ("RedisBackend", "RedisClusterBackend"):
            b: Any = backend
            client = b._client() if mode == "sync" else await b._aclient()
            found = [client, b._sync, b._async, b._lock]
            if name == "RedisClusterBackend":
                found += [b.node_breakers, b._refreshes]
            return found
        if name == "MomentoBackend":
            m: Any = backend
            clients = m._clients
            client = clients.sync() if mode == "sync" else await clients.aclient()
            return [clients, client, m._shared]
        raise AssertionError(f"no shared resources known for {name}")


# -- Redis: views open no connection of their own (the server's count) -----------------------------
def _connections(raw: Any) -> int:
    return len(raw.client_list())


@pytest.mark.redis
@pytest.mark.parametrize("server_fixture", ["standalone", "tls_server"])
async def test_redis_views_open_no_connection(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    from tests.backends.clients import redis_client

    server = request.getfixturevalue(server_fixture)
    raw = redis_client(server)
    owner = create_backend(server.url, namespace=new_namespace(), **REDIS_RELAXED)
    try:
        await Ops(owner, "sync").set("k", b"owner")
        await Ops(owner, "async").set("k", b"owner")
        before = _connections(raw)
        for i in range(5):
            for mode in ("sync", "async"):
                view = Ops(owner.in_namespace(f"{owner.namespace}v{i}"), mode)
                await view.set("k", b"view")
                assert await view.get("k") == b"view"
                await view.clear()
                await view.close()  # closes nothing
        assert _connections(raw) == before
        assert await Ops(owner, "async").get("k") == b"owner"
        assert owner.get("k") == b"owner"
        owner.clear()
    finally:
        await owner.aclose()
        raw.close()


# -- Momento: a view's generation is its namespace's -----------------------------------------------
@pytest.mark.momento
async def test_momento_view_generation_is_its_namespace(momento_server: Any) -> None:
    owner = momento_backend(momento_server)
    built = momento_backend(momento_server, owner.namespace + "v")
    try:
        view = owner.in_namespace(owner.namespace + "v")
        assert view._generation is not owner._generation
        assert view.generation_key == built.generation_key == view._generation.key
        assert (
            view._generation
            is owner.in_namespace(owner.namespace + "x").in_namespace(view.namespace)._generation
        )
        view.set("k", b"v")
        await view.aset("k2", b"v")
        # The same generation in the store: a built backend of that namespace reads it.
        assert built.get("k") == b"v" and await built.aget("k2") == b"v"
        assert view._generation.value == built._generation.value
        view.clear()
        assert view.get("k") is None and owner.get("k") is None
    finally:
        built.clear()
        owner.clear()
        built.close()
        owner.close()


# -- the contract catches a backend whose views cannot share its connections -----------------------
class _LazyStore(Backend):
    """A third-party backend written the usual way: its "connection" (a dict standing in for a
    client) is created on first use as ``self._client``. A view, a shallow copy, then makes its
    own — a second client per namespace that nothing closes."""

    def __init__(self, options: Any = None, *, namespace: str = "default") -> None:
        super().__init__(options, namespace=namespace)
        self._client: dict[str, bytes] | None = None

    def _conn(self) -> dict[str, bytes]:
        if self._client is None:
            self._client = {}
        return self._client

    def get(self, key: str) -> bytes | None:
        return self._conn().get(self._key(key))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._conn()[self._key(key)] = value

    def delete(self, key: str) -> None:
        self._conn().pop(self._key(key), None)

    def clear(self) -> None:
        conn = self._conn()
        for key in [k for k in conn if k.startswith(self.key_prefix)]:
            del conn[key]


class _HolderStore(_LazyStore):
    """The same store written for views: the lazily made client lives in a holder object
    created in ``__init__``, which the owner and its views share."""

    def __init__(self, options: Any = None, *, namespace: str = "default") -> None:
        super().__init__(options, namespace=namespace)
        self._holder: list[dict[str, bytes]] = []

    def _conn(self) -> dict[str, bytes]:
        if not self._holder:
            self._holder.append({})
        return self._holder[0]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_contract_reports_a_lazily_made_client_that_views_cannot_share(mode: str) -> None:
    contract = BackendContract()
    with pytest.raises(AssertionError, match=r"_client.*bound .*first use"):
        await contract.test_view_and_owner_rebind_nothing_they_share(
            lambda ns: _LazyStore(namespace=ns), mode, "lazy"
        )
    # Written with a holder object, the same store passes.
    await contract.test_view_and_owner_rebind_nothing_they_share(
        lambda ns: _HolderStore(namespace=ns), mode, "holder"
    )
    owner = _HolderStore(namespace="holder")
    owner.in_namespace("holderv").set("k", b"v")
    assert owner._holder[0] == {"llmcache:holderv:k": b"v"}  # one client for both
