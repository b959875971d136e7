"""The contract every backend passes (see :mod:`llmcache.testing`)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from llmcache.backends.base import VIEW_CACHE_SIZE, Backend
from llmcache.errors import ConfigError
from llmcache.testing.ops import ForeignKeys, Ops

__all__ = ["BackendContract"]

MiB = 1024 * 1024


class BackendContract:
    """The rules of :mod:`llmcache.backends.base`, as tests. Subclass it; see the module doc."""

    #: Short TTL used by expiry tests, in seconds.
    short_ttl: float = 0.5

    @pytest.fixture
    def make_backend(self) -> Callable[[str], Backend]:
        raise NotImplementedError("define a make_backend fixture returning namespace -> Backend")

    @pytest.fixture
    def make_neighbour(self, make_backend: Callable[[str], Backend]) -> Callable[[str], Backend]:
        """A backend on the same store as ``make_backend``'s (override to skip: see module doc)."""
        return make_backend

    @pytest.fixture
    def foreign(self) -> ForeignKeys:
        """Raw access to the store (override to enable the foreign-key test)."""
        pytest.skip(f"{type(self).__name__} defines no `foreign` fixture (raw store access)")

    @pytest.fixture(params=["sync", "async"])
    def mode(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def namespace(self) -> str:
        return f"t{uuid.uuid4().hex[:12]}"

    @pytest_asyncio.fixture
    async def store(
        self, make_backend: Callable[[str], Backend], mode: str, namespace: str
    ) -> AsyncIterator[Ops]:
        ops = Ops(make_backend(namespace), mode)
        try:
            yield ops
        finally:
            await ops.clear()
            await ops.close()

    @pytest_asyncio.fixture
    async def neighbour(
        self, make_neighbour: Callable[[str], Backend], mode: str, namespace: str
    ) -> AsyncIterator[Ops]:
        """Another namespace in the same store as ``store``."""
        ops = Ops(make_neighbour(namespace + "o"), mode)
        try:
            yield ops
        finally:
            await ops.clear()
            await ops.close()

    # -- get / set ----------------------------------------------------------------------------
    async def test_missing_key_is_a_miss(self, store: Ops) -> None:
        assert await store.get("absent") is None

    async def test_set_then_get_returns_the_same_bytes(self, store: Ops) -> None:
        await store.set("k", b"answer")
        assert await store.get("k") == b"answer"

    async def test_set_overwrites(self, store: Ops) -> None:
        await store.set("k", b"first")
        await store.set("k", b"second")
        assert await store.get("k") == b"second"

    async def test_keys_are_distinct(self, store: Ops) -> None:
        await store.set("k1", b"one")
        await store.set("k2", b"two")
        assert (await store.get("k1"), await store.get("k2")) == (b"one", b"two")

    async def test_keys_with_separators_and_unicode(self, store: Ops) -> None:
        key = "v1:" + "é✓:*?[]" + "x" * 200
        await store.set(key, b"odd key")
        assert await store.get(key) == b"odd key"
        assert await store.get("v1:") is None

    @pytest.mark.parametrize("size", [1, 1000, 4 * MiB])
    async def test_values_are_binary_safe(self, store: Ops, size: int) -> None:
        value = bytes(range(256)) * (size // 256) + os.urandom(size % 256)
        await store.set("blob", value)
        assert await store.get("blob") == value

    # -- ttl ----------------------------------------------------------------------------------
    async def test_entry_expires_after_ttl(self, store: Ops) -> None:
        await store.set("short", b"x", ttl=self.short_ttl)
        await store.set("long", b"y", ttl=3600)
        assert await store.get("short") == b"x"
        await asyncio.sleep(self.short_ttl + 0.6)
        assert await store.get("short") is None
        assert await store.get("long") == b"y"

    async def test_non_positive_ttl_is_a_config_error(self, store: Ops) -> None:
        with pytest.raises(ConfigError, match="ttl"):
            await store.set("k", b"v", ttl=0)
        assert await store.get("k") is None

    # -- delete / clear -----------------------------------------------------------------------
    async def test_delete_removes_and_is_idempotent(self, store: Ops) -> None:
        await store.set("k", b"v")
        await store.delete("k")
        assert await store.get("k") is None
        await store.delete("k")
        await store.delete("never-there")

    async def test_clear_removes_only_its_namespace(self, store: Ops, neighbour: Ops) -> None:
        await store.set("k", b"mine")
        await store.set("k2", b"mine too")
        await neighbour.set("k", b"theirs")
        await store.clear()
        assert await store.get("k") is None
        assert await store.get("k2") is None
        assert await neighbour.get("k") == b"theirs"
        # The namespace stays usable after a clear.
        await store.set("k", b"again")
        assert await store.get("k") == b"again"

    async def test_namespaces_do_not_see_each_other(self, store: Ops, neighbour: Ops) -> None:
        await store.set("same", b"mine")
        assert await neighbour.get("same") is None
        await neighbour.set("same", b"theirs")
        assert await store.get("same") == b"mine"

    async def test_clear_leaves_foreign_keys(self, store: Ops, foreign: ForeignKeys) -> None:
        key = f"foreign:{uuid.uuid4().hex}"
        foreign.write_foreign(key, b"not ours")
        await store.set("k", b"ours")
        await store.clear()
        assert foreign.read_foreign(key) == b"not ours"

    # -- optional capabilities ----------------------------------------------------------------
    async def test_delete_many(self, store: Ops) -> None:
        await store.set_many({"a": b"1", "b": b"2", "c": b"3"}, ttl=60)
        await store.delete_many(["a", "c", "absent", "a"])
        assert await store.get_many(["a", "b", "c"]) == [None, b"2", None]
        await store.delete_many([])

    async def test_get_many_and_set_many(self, store: Ops) -> None:
        await store.set_many({"a": b"1", "b": b"2", "c": b"3"}, ttl=60)
        assert await store.get_many(["a", "missing", "c", "b"]) == [b"1", None, b"3", b"2"]
        assert await store.get_many([]) == []

    async def test_add_stores_only_when_absent(self, store: Ops) -> None:
        assert await store.add("lock", b"first", ttl=60) is True
        assert await store.add("lock", b"second", ttl=60) is False
        assert await store.get("lock") == b"first"

    async def test_iter_keys_lists_this_namespace_by_prefix(self, store: Ops) -> None:
        assert await store.iter_keys() == []
        odd = "doc:é✓*?[x]"
        await store.set_many({"doc:1": b"1", "doc:2": b"2", "img:1": b"3", odd: b"4"})
        await store.set("doc:gone", b"5", ttl=self.short_ttl)
        await asyncio.sleep(self.short_ttl + 0.6)
        assert await store.iter_keys() == sorted(["doc:1", "doc:2", "img:1", odd])
        assert await store.iter_keys("doc:") == sorted(["doc:1", "doc:2", odd])
        # Glob characters in the prefix match themselves only.
        assert await store.iter_keys("doc:é✓*?[") == [odd]
        assert await store.iter_keys("doc:*") == []
        await store.delete("doc:1")
        assert await store.iter_keys("doc:") == sorted(["doc:2", odd])
        await store.clear()
        assert await store.iter_keys() == []

    async def test_iter_keys_leaves_out_other_namespaces(self, store: Ops, neighbour: Ops) -> None:
        await neighbour.set("theirs", b"x")
        await neighbour.set("doc:theirs", b"x")
        await store.set("doc:mine", b"y")
        assert await store.iter_keys() == ["doc:mine"]
        assert await store.iter_keys("doc:") == ["doc:mine"]
        assert await neighbour.iter_keys() == ["doc:theirs", "theirs"]

    async def test_list_push_appends_in_order_and_range_reads_all(self, store: Ops) -> None:
        await store.list_push("chat", [b"one"], ttl=60)
        assert await store.list_range("absent") == []
        await store.list_push("chat", [b"two", b"\x00three\xff", b""], ttl=60)
        await store.list_push("chat", [], ttl=60)
        assert await store.list_range("chat") == [b"one", b"two", b"\x00three\xff", b""]
        await store.list_push("other", [b"x"], ttl=60)
        assert await store.list_range("chat") == [b"one", b"two", b"\x00three\xff", b""]

    async def test_list_max_len_keeps_the_newest(self, store: Ops) -> None:
        await store.list_push("chat", [b"1", b"2", b"3"], max_len=4, ttl=60)
        await store.list_push("chat", [b"4", b"5"], max_len=4, ttl=60)
        assert await store.list_range("chat") == [b"2", b"3", b"4", b"5"]
        await store.list_push("chat", [b"6", b"7", b"8", b"9", b"10"], max_len=2, ttl=60)
        assert await store.list_range("chat") == [b"9", b"10"]
        with pytest.raises(ConfigError, match="max_len"):
            await store.list_push("chat", [b"x"], max_len=0)

    async def test_list_expires_after_ttl_and_each_push_renews_it(self, store: Ops) -> None:
        ttl = 0.5
        await store.list_push("chat", [b"1"], ttl=ttl)
        await asyncio.sleep(0.3)
        await store.list_push("chat", [b"2"], ttl=ttl)  # renews the whole list: until 0.8 s
        await asyncio.sleep(0.3)  # 0.6 s after the first push: alive only if renewed
        assert await store.list_range("chat") == [b"1", b"2"]
        await asyncio.sleep(0.5)
        assert await store.list_range("chat") == []

    async def test_list_delete_and_clear(self, store: Ops) -> None:
        await store.list_push("a", [b"1"], ttl=60)
        await store.list_push("b", [b"2"], ttl=60)
        await store.delete("a")
        assert await store.list_range("a") == []
        assert await store.list_range("b") == [b"2"]
        await store.clear()
        assert await store.list_range("b") == []
        await store.list_push("a", [b"again"], ttl=60)
        assert await store.list_range("a") == [b"again"]

    async def test_list_namespaces_are_apart(self, store: Ops, neighbour: Ops) -> None:
        await store.list_push("a", [b"1"], ttl=60)
        await neighbour.list_push("a", [b"theirs"], ttl=60)
        assert await store.list_range("a") == [b"1"]
        await store.delete("a")
        await store.clear()
        assert await neighbour.list_range("a") == [b"theirs"]

    # -- concurrency --------------------------------------------------------------------------
    async def test_concurrent_writers(self, store: Ops) -> None:
        writers, per_writer = 8, 25
        if store.mode == "async":
            await asyncio.gather(
                *(
                    store.set(f"w{w}-{i}", f"{w}:{i}".encode())
                    for w in range(writers)
                    for i in range(per_writer)
                ),
                *(store.set("shared", f"shared-{w}".encode()) for w in range(writers)),
            )
        else:
            errors: list[BaseException] = []

            def write(w: int) -> None:
                try:
                    for i in range(per_writer):
                        store.backend.set(f"w{w}-{i}", f"{w}:{i}".encode())
                        store.backend.set("shared", f"shared-{w}".encode())
                except BaseException as exc:  # surfaced below
                    errors.append(exc)

            threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
        for w in range(writers):
            for i in range(per_writer):
                assert await store.get(f"w{w}-{i}") == f"{w}:{i}".encode()
        assert await store.get("shared") in {f"shared-{w}".encode() for w in range(writers)}

    # -- namespace views (Backend.in_namespace) -----------------------------------------------
    async def shared_resources(self, backend: Backend, mode: str) -> list[object]:
        """The objects holding ``backend``'s connections (pools, clients, files, the store),
        created if lazy, through the ``mode`` side: a view's must be its owner's, by identity.

        Override to enable the connection-sharing test; the default skips it.
        """
        pytest.skip(f"{type(self).__name__} defines no `shared_resources` (connection objects)")

    @pytest_asyncio.fixture
    async def views(self, mode: str) -> AsyncIterator[Callable[[Backend, str], Ops]]:
        """``views(backend, namespace)``: the view of ``namespace`` as :class:`Ops`, cleared at
        teardown (the backend fixtures clear only their own namespace)."""
        made: list[Ops] = []

        def view(backend: Backend, namespace: str) -> Ops:
            ops = Ops(backend.in_namespace(namespace), mode)
            made.append(ops)
            return ops

        try:
            yield view
        finally:
            for ops in made:
                await ops.clear()

    async def test_view_of_its_own_namespace_is_itself(self, store: Ops, namespace: str) -> None:
        backend = store.backend
        assert backend.in_namespace(namespace) is backend
        assert not backend.is_view and backend.owner is backend
        for bad in ("", "a b", "x" * 65, "ns:*"):
            with pytest.raises(ConfigError, match="namespace"):
                backend.in_namespace(bad)

    async def test_views_are_cached_and_owned_by_the_backend(
        self, store: Ops, namespace: str
    ) -> None:
        backend = store.backend
        view = backend.in_namespace(namespace + "v")
        assert view.namespace == namespace + "v" and view.is_view and view.owner is backend
        assert type(view) is type(backend)
        assert backend.in_namespace(namespace + "v") is view  # asked again: the same view
        assert view.in_namespace(namespace + "v") is view
        assert view.in_namespace(namespace + "w") is backend.in_namespace(namespace + "w")
        # A view of the owner's namespace, reached from a view, is a view too (closing it
        # closes nothing), never the owner itself.
        back = view.in_namespace(namespace)
        assert back.namespace == namespace and back.is_view and back.owner is backend

    async def test_views_and_owner_keep_apart(
        self, store: Ops, namespace: str, views: Callable[[Backend, str], Ops]
    ) -> None:
        one, two = views(store.backend, namespace + "v1"), views(store.backend, namespace + "v2")
        await store.set("k", b"owner")
        assert await one.get("k") is None
        await one.set("k", b"one")
        await two.set("k", b"two")
        assert [await s.get("k") for s in (store, one, two)] == [b"owner", b"one", b"two"]
        await one.delete("k")
        assert [await s.get("k") for s in (store, one, two)] == [b"owner", None, b"two"]

    async def test_clear_of_a_view_and_of_the_owner_keep_apart(
        self, store: Ops, namespace: str, views: Callable[[Backend, str], Ops]
    ) -> None:
        one, two = views(store.backend, namespace + "v1"), views(store.backend, namespace + "v2")
        for s, value in ((store, b"owner"), (one, b"one"), (two, b"two")):
            await s.set("k", value)
            await s.set("k2", value)
        await one.clear()
        assert [await s.get("k") for s in (store, one, two)] == [b"owner", None, b"two"]
        await store.clear()
        assert [await s.get("k2") for s in (store, one, two)] == [None, None, b"two"]
        await one.set("k", b"again")  # a cleared view stays usable
        assert [await s.get("k") for s in (store, one, two)] == [None, b"again", b"two"]

    async def test_view_is_the_namespace_as_a_built_backend_sees_it(
        self,
        store: Ops,
        neighbour: Ops,
        views: Callable[[Backend, str], Ops],
    ) -> None:
        # ``neighbour`` is a backend built on the same store under its own namespace; the view
        # of that namespace (made from ``store``) stores the same keys.
        view = views(store.backend, neighbour.backend.namespace)
        await view.set("from-view", b"v")
        await neighbour.set("from-built", b"b")
        assert await neighbour.get("from-view") == b"v"
        assert await view.get("from-built") == b"b"
        await view.delete("from-built")
        assert await neighbour.get("from-built") is None
        assert await store.get("from-view") is None

    async def test_two_views_of_one_namespace_agree_after_a_clear(
        self, store: Ops, namespace: str
    ) -> None:
        # A view of the owner's own namespace (through another view) is a second object for
        # that namespace: a clear through either is seen at once through the other.
        twin = Ops(store.backend.in_namespace(namespace + "x").in_namespace(namespace), store.mode)
        assert twin.backend is not store.backend
        await store.set("k", b"1")
        assert await twin.get("k") == b"1"
        await twin.clear()
        assert await store.get("k") is None
        await store.set("k", b"2")
        assert await twin.get("k") == b"2"
        await store.clear()
        assert await twin.get("k") is None

    async def test_a_view_let_go_by_the_cache_still_agrees_with_its_successor(
        self, store: Ops, namespace: str, views: Callable[[Backend, str], Ops]
    ) -> None:
        old = views(store.backend, namespace + "v")
        for i in range(VIEW_CACHE_SIZE):  # pushes the first view out of the owner's cache
            store.backend.in_namespace(f"{namespace}f{i}")
        new = views(store.backend, namespace + "v")
        assert new.backend is not old.backend
        await old.set("k", b"1")
        assert await new.get("k") == b"1"
        await new.clear()
        assert await old.get("k") is None
        await new.set("k", b"2")
        assert await old.get("k") == b"2"

    async def test_view_shares_the_owner_connections(
        self, make_backend: Callable[[str], Backend], mode: str, namespace: str
    ) -> None:
        owner = make_backend(namespace)
        try:
            # Made before the owner connected: the lazily made clients must still be one set.
            view = owner.in_namespace(namespace + "v")
            await Ops(view, mode).set("k", b"view first")
            await Ops(owner, mode).set("k", b"owner")
            view_resources = await self.shared_resources(view, mode)
            owner_resources = await self.shared_resources(owner, mode)
            assert len(view_resources) == len(owner_resources) > 0
            for mine, theirs in zip(view_resources, owner_resources, strict=True):
                assert mine is theirs, f"the view has its own {type(mine).__name__}"
            await Ops(view, mode).clear()
            await Ops(owner, mode).clear()
        finally:
            await Ops(owner, mode).close()

    #: Attributes a backend re-binds per instance on purpose after ``__init__`` (counters, say),
    #: that :meth:`test_view_and_owner_rebind_nothing_they_share` should not report.
    rebound_attributes: frozenset[str] = frozenset()

    async def test_view_and_owner_rebind_nothing_they_share(
        self, make_backend: Callable[[str], Backend], mode: str, namespace: str
    ) -> None:
        """A view is a shallow copy of its owner: an attribute either re-binds after the view
        is made (a client created lazily as ``self._client = ...`` on first use) is no longer
        shared, so the view silently opens connections of its own that nothing closes. Runs
        without any override: both are used, then their attributes compared by identity."""
        owner = make_backend(namespace)
        try:
            view = owner.in_namespace(namespace + "v")  # before the owner's first call
            made = dict(vars(view))  # as _make_view/_init_view left it: per-view state included
            before = dict(vars(owner))
            ops_view, ops_owner = Ops(view, mode), Ops(owner, mode)
            for ops in (ops_view, ops_owner):
                await ops.set("k", b"v")
                assert await ops.get("k") == b"v"
                await ops.delete("k")
            ignore = self.rebound_attributes | {"_views"}
            if (name := _rebound(vars(owner), before, ignore)) is not None:
                raise AssertionError(
                    f"{type(owner).__name__}.{name} was bound after __init__ (on first use): "
                    "its views keep the old value and make their own; create it in __init__ "
                    "(a holder object both share) — or list it in `rebound_attributes`"
                )
            if (name := _rebound(vars(view), made, ignore)) is not None:
                raise AssertionError(
                    f"a view of {type(owner).__name__} bound its own `{name}` on first use: "
                    "it is not the owner's (connections nothing closes); create it in "
                    "__init__ (a holder object both share) — or list it in "
                    "`rebound_attributes`"
                )
            await ops_view.clear()
            await ops_owner.clear()
        finally:
            await Ops(owner, mode).close()

    async def test_closing_a_view_leaves_the_owner_open(
        self, store: Ops, namespace: str, views: Callable[[Backend, str], Ops]
    ) -> None:
        view = views(store.backend, namespace + "v")
        await view.set("k", b"view")
        await store.set("k", b"owner")
        await view.close()
        assert await store.get("k") == b"owner"
        await store.set("k2", b"after")
        assert await store.get("k2") == b"after"
        assert await view.get("k") == b"view"  # the view itself still works: nothing closed

    async def test_view_capabilities_work_in_its_namespace(
        self, store: Ops, namespace: str, views: Callable[[Backend, str], Ops]
    ) -> None:
        view = views(store.backend, namespace + "v")
        assert await view.add("lock", b"view", ttl=60) is True
        assert await view.add("lock", b"again", ttl=60) is False
        assert await store.add("lock", b"owner", ttl=60) is True  # another namespace's key
        assert await view.get("lock") == b"view"
        await view.set_many({"a": b"1", "b": b"2"}, ttl=60)
        assert await view.get_many(["a", "b", "lock"]) == [b"1", b"2", b"view"]
        assert await store.get_many(["a", "b"]) == [None, None]
        await view.delete_many(["a"])
        assert await view.get_many(["a", "b"]) == [None, b"2"]

    async def test_view_lists(
        self, store: Ops, namespace: str, views: Callable[[Backend, str], Ops]
    ) -> None:
        view = views(store.backend, namespace + "v")
        await view.list_push("chat", [b"view"], ttl=60)
        await store.list_push("chat", [b"owner"], ttl=60)
        assert await view.list_range("chat") == [b"view"]
        assert await store.list_range("chat") == [b"owner"]
        await view.delete("chat")
        assert await store.list_range("chat") == [b"owner"]

    async def test_view_key_listing(
        self, store: Ops, namespace: str, views: Callable[[Backend, str], Ops]
    ) -> None:
        view = views(store.backend, namespace + "v")
        await view.set("doc:1", b"x")
        await store.set("doc:2", b"y")
        assert await view.iter_keys("doc:") == ["doc:1"]
        assert await store.iter_keys("doc:") == ["doc:2"]
        await view.set("other", b"z")
        assert await view.iter_keys() == ["doc:1", "other"]


def _rebound(
    now: dict[str, object], then: dict[str, object], ignore: set[str] | frozenset[str]
) -> str | None:
    """The first attribute of ``now`` that is new or another object than in ``then``."""
    for name, value in now.items():
        if name not in ignore and (name not in then or value is not then[name]):
            return name
    return None
