"""Two tiers (llmcache.backends.tiered): the contract over every L2, and what the L1 adds.

The contract runs on ``TieredBackend`` over each backend of ``store_target`` (memory, disk, the
three Redis shapes, Momento; server-backed ones behind their marks), once with neighbours built
as separate tiered backends on the same store and once with neighbours as namespace views that
share the L1. The rest: fills, staleness across two "processes" (two tiered backends on one
Redis), L2 faults, bounds, lease keys, capabilities, ``with_l1`` validation.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llmcache import LLMCache
from llmcache.backends import capabilities as cap
from llmcache.backends.base import Backend, describe
from llmcache.backends.memory import MemoryBackend, MemoryOptions
from llmcache.backends.tiered import LEASE_PREFIX, TieredBackend, with_l1
from llmcache.config import L1Settings
from llmcache.errors import BackendError, ConfigError
from llmcache.registry import create_backend
from llmcache.testing import BackendContract, ForeignKeys, Ops
from tests import test_contract
from tests.backends.clients import REDIS_RELAXED, StoreTarget, new_namespace

CAPABILITIES = [cap.Batch, cap.AtomicAdd, cap.KeyListing, cap.Lists, cap.ListsBatch, cap.Logs]


# -- the contract -------------------------------------------------------------------------------
class TestTieredContract(BackendContract):
    """Every L2 behind an L1: the five methods a side and the L2's capabilities still hold."""

    @pytest.fixture
    def make_backend(self, store_target: StoreTarget) -> Callable[[str], Backend]:
        return lambda ns: TieredBackend(store_target.make(ns), max_entries=1000, ttl=30)

    @pytest.fixture
    def make_neighbour(self, store_target: StoreTarget) -> Callable[[str], Backend]:
        # The L2 itself, without an L1: what the tier writes is what any other user of the
        # store reads at once, and the other way round. (A second tiered backend built apart
        # has an L1 of its own, as another process would: see the two-process tests.)
        return store_target.make_neighbour

    @pytest.fixture
    def foreign(self, store_target: StoreTarget) -> ForeignKeys:
        store_target.raw()  # skips when the backend has no store outside the instance
        return store_target

    async def shared_resources(self, backend: Backend, mode: str) -> list[object]:
        assert isinstance(backend, TieredBackend)
        l2 = await test_contract.TestContract.shared_resources(self, backend.l2, mode)  # type: ignore[arg-type]
        return [backend._l1, *l2]


class TestTieredViewsContract(BackendContract):
    """Neighbours are ``in_namespace`` views: one L1 storage, entries apart by namespace."""

    @pytest.fixture
    def made(self) -> list[TieredBackend]:
        return []

    @pytest.fixture
    def make_backend(
        self, store_target: StoreTarget, made: list[TieredBackend]
    ) -> Callable[[str], Backend]:
        def make(ns: str) -> Backend:
            made.append(TieredBackend(store_target.make(ns)))
            return made[-1]

        return make

    @pytest.fixture
    def make_neighbour(
        self, made: list[TieredBackend], make_backend: Callable[[str], Backend]
    ) -> Callable[[str], Backend]:
        def view(ns: str) -> Backend:
            if not made:  # the neighbour fixture ran first: build the owner now
                make_backend(ns[:-1])
            return made[-1].in_namespace(ns)

        return view

    async def shared_resources(self, backend: Backend, mode: str) -> list[object]:
        assert isinstance(backend, TieredBackend)
        l2 = await test_contract.TestContract.shared_resources(self, backend.l2, mode)  # type: ignore[arg-type]
        return [backend._l1, *l2]


# -- test doubles ---------------------------------------------------------------------------------
class Spy(Backend):
    """A five-method L2 over a memory store: counts the calls that reach it, fails on demand.

    It has no capability beyond the five methods (no ``add``, no batches).
    """

    def __init__(self, inner: Backend | None = None) -> None:
        self.inner = inner or MemoryBackend(namespace="spy")
        super().__init__(namespace=self.inner.namespace)
        self.calls: dict[str, int] = {}
        self.failing = False

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.failing:
            raise BackendError(f"{name} failed (test fault)")

    def get(self, key: str) -> bytes | None:
        self._call("get")
        return self.inner.get(key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._call("set")
        self.inner.set(key, value, ttl)

    def delete(self, key: str) -> None:
        self._call("delete")
        self.inner.delete(key)

    def clear(self) -> None:
        self._call("clear")
        self.inner.clear()

    async def aget(self, key: str) -> bytes | None:
        self._call("get")
        await asyncio.sleep(0)
        return self.inner.get(key)

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._call("set")
        await asyncio.sleep(0)
        self.inner.set(key, value, ttl)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- fills --------------------------------------------------------------------------------------
async def test_an_l2_hit_fills_the_l1(mode: str) -> None:
    spy = Spy()
    spy.inner.set("k", b"from l2")  # written by "another process": not in this L1
    store = Ops(TieredBackend(spy), mode)
    assert await store.get("k") == b"from l2"
    assert await store.get("k") == b"from l2"
    assert await store.get("k") == b"from l2"
    assert spy.calls["get"] == 1
    info = describe(store.backend)
    assert (info["l1_hits"], info["l2_hits"], info["l1_entries"]) == (2, 1, 1)


async def test_a_set_fills_the_l1_and_a_miss_is_not_cached(mode: str) -> None:
    spy = Spy()
    store = Ops(TieredBackend(spy), mode)
    await store.set("k", b"v")
    assert await store.get("k") == b"v"
    assert spy.calls.get("get", 0) == 0
    assert await store.get("absent") is None
    assert await store.get("absent") is None
    assert spy.calls["get"] == 2  # a miss is asked of the L2 every time


def test_l1_lifetime_is_no_longer_than_the_ttl_of_the_set() -> None:
    spy = Spy()
    store = TieredBackend(spy, ttl=30)
    store.set("k", b"v", ttl=0.2)
    assert store.get("k") == b"v"
    time.sleep(0.3)
    assert store.get("k") is None  # the L1 entry went with the L2's
    assert spy.calls["get"] == 1


def test_a_read_racing_a_write_never_leaves_the_older_value_in_the_l1() -> None:
    """B reads the old value from the L2; A's set lands; B's late fill must be dropped."""
    spy = Spy()
    spy.inner.set("k", b"old")
    read, release = threading.Event(), threading.Event()
    real_get = spy.get

    def slow_get(key: str) -> bytes | None:
        value = real_get(key)
        read.set()
        release.wait(5)
        return value

    spy.get = slow_get  # type: ignore[method-assign]
    store = TieredBackend(spy)
    seen: list[bytes | None] = []
    reader = threading.Thread(target=lambda: seen.append(store.get("k")))
    reader.start()
    assert read.wait(5)
    store.set("k", b"new")
    release.set()
    reader.join(5)
    assert seen == [b"old"]  # B answered what the store held when it read
    spy.get = real_get  # type: ignore[method-assign]
    assert store.get("k") == b"new"


# -- two processes on one Redis -----------------------------------------------------------------
@pytest.fixture
def two_processes(standalone: Any) -> Iterator[tuple[TieredBackend, TieredBackend]]:
    """Two tiered backends on one Redis namespace, each with its own L1 (ttl 0.3 s)."""
    ns = new_namespace()
    a, b = (
        TieredBackend(create_backend(standalone.url, namespace=ns, **REDIS_RELAXED), ttl=0.3)
        for _ in range(2)
    )
    yield a, b
    a.clear()
    a.close()
    b.close()


@pytest.mark.redis
def test_another_process_clear_is_seen_within_the_l1_ttl(
    two_processes: tuple[TieredBackend, TieredBackend],
) -> None:
    a, b = two_processes
    a.set("k", b"v1", ttl=60)
    assert b.get("k") == b"v1"  # B's L1 holds it now
    a.clear()
    assert a.get("k") is None  # A's own L1 went with the clear
    assert b.get("k") == b"v1"  # B's L1 still serves it: the staleness the ttl bounds
    time.sleep(0.35)
    assert b.get("k") is None


@pytest.mark.redis
def test_another_process_overwrite_is_seen_within_the_l1_ttl(
    two_processes: tuple[TieredBackend, TieredBackend],
) -> None:
    a, b = two_processes
    a.set("k", b"v1", ttl=60)
    assert b.get("k") == b"v1"
    a.set("k", b"v2", ttl=60)
    assert a.get("k") == b"v2"
    deadline = time.monotonic() + 0.3 + 0.1
    while b.get("k") != b"v2":
        assert time.monotonic() < deadline, "B served the old value longer than its L1 ttl"
        time.sleep(0.02)


@pytest.mark.redis
async def test_two_processes_async(two_processes: tuple[TieredBackend, TieredBackend]) -> None:
    a, b = two_processes
    await a.aset("k", b"v1", ttl=60)
    assert await b.aget("k") == b"v1"
    await a.aclear()
    assert await b.aget("k") == b"v1"
    await asyncio.sleep(0.35)
    assert await b.aget("k") is None


# -- L2 faults ----------------------------------------------------------------------------------
async def test_an_l1_hit_answers_while_the_l2_fails(mode: str) -> None:
    spy = Spy()
    store = Ops(TieredBackend(spy), mode)
    await store.set("k", b"v")
    spy.failing = True
    assert await store.get("k") == b"v"
    with pytest.raises(BackendError):
        await store.get("not in l1")  # an L1 miss reaches the L2: its fault is the caller's


async def test_a_failing_l2_write_raises_and_the_l1_forgets_the_key(mode: str) -> None:
    spy = Spy()
    store = Ops(TieredBackend(spy), mode)
    await store.set("k", b"old")
    assert await store.get("k") == b"old"
    spy.failing = True
    with pytest.raises(BackendError):
        await store.set("k", b"new")  # never a silent loss
    assert describe(store.backend)["l1_entries"] == 0  # neither "new" nor the replaced "old"
    with pytest.raises(BackendError):
        await store.get("k")  # asked of the L2, which still fails
    spy.failing = False
    assert await store.get("k") == b"old"  # what the shared store really holds


async def test_a_failing_l2_delete_raises_and_the_l1_forgets_the_key(mode: str) -> None:
    spy = Spy()
    store = Ops(TieredBackend(spy), mode)
    await store.set("k", b"v")
    spy.failing = True
    with pytest.raises(BackendError):
        await store.delete("k")
    spy.failing = False
    assert await store.get("k") == b"v"
    assert spy.calls["get"] == 1


def test_llmcache_on_two_tiers_serves_and_survives_a_failing_l2() -> None:
    spy = Spy()
    cache = LLMCache(with_l1(spy, True))
    cache.update("What is 2+2?", "fake-llm", [{"text": "4"}])
    spy.failing = True
    assert cache.lookup("What is 2+2?", "fake-llm") == [{"text": "4"}]
    assert cache.lookup("What is 3+3?", "fake-llm") is None  # a fault is a miss, not an error
    cache.update("What is 3+3?", "fake-llm", [{"text": "6"}])  # counted, not raised
    assert cache.lookup("What is 3+3?", "fake-llm") is None


# -- bounds, leases, capabilities ---------------------------------------------------------------
def test_max_entries_is_respected_least_recently_used_first() -> None:
    spy = Spy()
    store = TieredBackend(spy, max_entries=3)
    for key in "abcd":
        store.set(key, key.encode())
    assert describe(store)["l1_entries"] == 3
    assert store.get("b") == b"b"
    assert spy.calls.get("get", 0) == 0
    assert store.get("a") == b"a"  # evicted from the L1: read from the L2
    assert spy.calls["get"] == 1


def test_large_values_stay_out_of_the_l1() -> None:
    spy = Spy()
    store = TieredBackend(spy)
    store.set("big", b"x" * (2 * 1024 * 1024))
    assert describe(store)["l1_entries"] == 0
    assert store.get("big") == b"x" * (2 * 1024 * 1024)


async def test_lease_keys_never_enter_the_l1(mode: str) -> None:
    spy = Spy(MemoryBackend())
    store = Ops(TieredBackend(spy), mode)
    key = LEASE_PREFIX + "abc"
    await store.set(key, b"leader-1", ttl=30)
    assert await store.get(key) == b"leader-1"
    spy.inner.delete(key)  # the lease went (expired, or released by another process)
    assert await store.get(key) is None  # seen at once: never served from the L1
    assert describe(store.backend)["l1_entries"] == 0
    assert spy.calls["get"] == 2


async def test_add_goes_to_the_l2_and_leases_are_shared(mode: str) -> None:
    l2 = MemoryBackend()
    a, b = Ops(TieredBackend(l2), mode), Ops(TieredBackend(l2), mode)
    assert await a.add("lease:k", b"a", ttl=30) is True
    assert await b.add("lease:k", b"b", ttl=30) is False
    assert await b.get("lease:k") == b"a"
    await a.delete("lease:k")
    assert await b.get("lease:k") is None
    assert await b.add("lease:k", b"b", ttl=30) is True


def test_capabilities_are_exactly_the_l2s(store_target: StoreTarget) -> None:
    l2 = store_target.make()
    tiered = TieredBackend(l2)
    for capability in CAPABILITIES:
        assert isinstance(tiered, capability) == isinstance(l2, capability), capability
    assert isinstance(tiered, cap.Inspectable)
    assert isinstance(tiered, TieredBackend)
    bare = TieredBackend(Spy())
    assert not any(isinstance(bare, capability) for capability in CAPABILITIES)
    assert type(bare) is TieredBackend


def test_describe_and_repr_show_both_tiers_and_no_secret() -> None:
    l2 = create_backend("redis://app:s3cret@127.0.0.1:1/0", namespace="demo")
    tiered = TieredBackend(l2, max_entries=50, ttl=2)
    assert repr(tiered) == f"TieredBackend(l1=L1(max_entries=50, ttl=2.0), l2={l2!r})"
    assert "s3cret" not in repr(tiered)
    tiered.close()
    info = describe(TieredBackend(MemoryBackend(MemoryOptions(max_entries=7), namespace="n")))
    assert info["backend"] == "TieredBackend"
    assert info["namespace"] == "n"
    assert info["l2"] == "MemoryBackend"
    assert {"entries", "l1_entries", "l1_hits", "l2_hits", "l1_ttl"} <= set(info)


# -- namespace views ----------------------------------------------------------------------------
async def test_views_share_the_l1_storage_and_the_l2_but_not_entries(mode: str) -> None:
    l2 = MemoryBackend(namespace="one")
    owner = TieredBackend(l2)
    view = owner.in_namespace("two")
    assert view.in_namespace("two") is view
    assert owner.in_namespace("one") is owner
    assert view._l1 is owner._l1
    assert view.l2.namespace == "two"
    assert view.l2.owner is l2
    a, b = Ops(owner, mode), Ops(view, mode)
    await a.set("k", b"one")
    assert await b.get("k") is None
    await b.set("k", b"two")
    assert (await a.get("k"), await b.get("k")) == (b"one", b"two")
    await b.clear()
    assert (await a.get("k"), await b.get("k")) == (b"one", None)
    assert l2.get("k") == b"one"
    assert describe(owner)["l1_entries"] == 1


# -- with_l1 ------------------------------------------------------------------------------------
def test_with_l1_off_returns_the_backend_unchanged() -> None:
    l2 = MemoryBackend()
    assert with_l1(l2, None) is l2
    assert with_l1(l2, False) is l2


@pytest.mark.parametrize(
    ("l1", "expected"),
    [
        (True, (10_000, 30.0)),
        ({"max_entries": 5}, (5, 30.0)),
        ({"ttl": "2.5"}, (10_000, 2.5)),
        (L1Settings(max_entries=9, ttl=1), (9, 1.0)),
    ],
)
def test_with_l1_settings(l1: Any, expected: tuple[int, float]) -> None:
    tiered = with_l1(MemoryBackend(), l1)
    assert isinstance(tiered, TieredBackend)
    assert (tiered.l1_max_entries, tiered.l1_ttl) == expected


@pytest.mark.parametrize(
    ("l1", "match"),
    [
        ({"max_entries": 0}, r"invalid value 0 for l1 setting 'max_entries'"),
        ({"max_entries": "many"}, r"'many' for l1 setting 'max_entries'"),
        ({"max_entries": True}, r"True for l1 setting 'max_entries'"),
        ({"ttl": -1}, r"invalid value -1 for l1 setting 'ttl'"),
        ({"ttl": None}, r"None for l1 setting 'ttl'"),
        ({"max_entry": 3}, r"unknown l1 setting 'max_entry'; valid: max_entries, ttl"),
        ("yes", r"invalid l1 'yes'"),
        (100, r"invalid l1 100"),
    ],
)
def test_with_l1_validation_names_the_field(l1: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        with_l1(MemoryBackend(), l1)


def test_constructor_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="'ttl'"):
        TieredBackend(MemoryBackend(), ttl=0)
    with pytest.raises(ConfigError, match="'max_entries'"):
        TieredBackend(MemoryBackend(), max_entries=-3)
    with pytest.raises(ConfigError, match="wraps a Backend"):
        TieredBackend("memory://")  # type: ignore[arg-type]


def test_wrapping_a_tiered_backend_again_is_an_error() -> None:
    tiered = with_l1(MemoryBackend(), True)
    with pytest.raises(ConfigError, match="already has an L1"):
        with_l1(tiered, {"ttl": 1})
    with pytest.raises(ConfigError, match="already has an L1"):
        TieredBackend(tiered)
    assert with_l1(tiered, None) is tiered


def test_from_url_builds_the_l2_and_the_l1() -> None:
    tiered = TieredBackend.from_url("memory://?max_entries=5", namespace="x", l1={"ttl": 3})
    assert isinstance(tiered, cap.AtomicAdd)
    assert (tiered.namespace, tiered.l1_ttl, tiered.l1_max_entries) == ("x", 3.0, 10_000)
    assert isinstance(tiered.l2, MemoryBackend)
    assert tiered.l2.max_entries == 5


# -- concurrency: after the writers stop, the L1 agrees with the L2 -------------------------------
@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def shared_l2(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    server = request.getfixturevalue("standalone")
    backend = create_backend(server.url, namespace=new_namespace(), **REDIS_RELAXED)
    yield backend
    backend.clear()
    backend.close()


def _agrees(tiered: TieredBackend, l2: Backend, keys: list[str]) -> list[str]:
    return [k for k in keys if tiered.get(k) != l2.get(k)]


def test_racing_threads_leave_the_l1_agreeing_with_the_l2(shared_l2: Backend) -> None:
    tiered = TieredBackend(shared_l2)
    keys = [f"k{i}" for i in range(8)]
    stop = time.monotonic() + 1.0
    errors: list[BaseException] = []

    def work(w: int) -> None:
        n = 0
        try:
            while time.monotonic() < stop:
                key, n = keys[(w * 7 + n) % len(keys)], n + 1
                op = (w + n) % 5
                if op == 0:
                    tiered.set(key, f"{w}:{n}".encode(), ttl=60)
                elif op == 1 and n % 7 == 0:
                    tiered.delete(key)
                elif op == 2 and n % 50 == 0:
                    tiered.clear()
                else:
                    tiered.get(key)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _agrees(tiered, shared_l2, keys) == []


async def test_racing_tasks_leave_the_l1_agreeing_with_the_l2(shared_l2: Backend) -> None:
    tiered = TieredBackend(shared_l2)
    keys = [f"k{i}" for i in range(8)]

    async def work(w: int) -> None:
        for n in range(60):
            key = keys[(w * 7 + n) % len(keys)]
            op = (w + n) % 5
            if op == 0:
                await tiered.aset(key, f"{w}:{n}".encode(), ttl=60)
            elif op == 1 and n % 7 == 0:
                await tiered.adelete(key)
            elif op == 2 and n % 50 == 0:
                await tiered.aclear()
            else:
                await tiered.aget(key)

    await asyncio.gather(*(work(w) for w in range(16)))
    assert _agrees(tiered, shared_l2, keys) == []


def test_closing_a_view_of_the_owners_namespace_leaves_the_owner_open() -> None:
    l2 = MemoryBackend(namespace="a")
    closed: list[str] = []
    l2.close = lambda: closed.append("l2")  # type: ignore[method-assign]
    tiered = TieredBackend(l2)
    back = tiered.in_namespace("b").in_namespace("a")  # a view, on the owner's very L2
    back.close()
    assert closed == []
    tiered.close()
    assert closed == ["l2"]
