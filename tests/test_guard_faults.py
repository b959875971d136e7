"""Every fault path of the LLM cache and the byte store, sync and async: what the caller sees.

A store that raises — a BackendError, a driver's own bug (RuntimeError), an OSError, even a
CancelledError raised by the store's own machinery — turns into a miss (or a skipped write), is
counted, and never reaches the caller; ``on_error="raise"`` surfaces it as a BackendError.
The counters keep their invariant: hits + misses + bypasses == lookups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from llmcache import BackendError, CircuitBreaker, LLMCache
from llmcache.adapters.langchain import LangChainByteStore
from llmcache.backends.memory import MemoryBackend

LLM = "[('_type', 'fake-model'), ('temperature', 0.0)]"
HOT = "[('_type', 'fake-model'), ('temperature', 1.0)]"

FAULTS: dict[str, type[Exception]] = {
    "backend-error": BackendError,
    "driver-bug": RuntimeError,
    "os-error": ConnectionResetError,
    "type-error": TypeError,
}


class BrokenBackend(MemoryBackend):
    """A memory store whose every operation raises ``exc`` while ``down`` (sync and async)."""

    def __init__(self, exc: type[Exception]) -> None:
        super().__init__()
        self.exc, self.down, self.calls = exc, False, 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise self.exc("store is sick")

    def get(self, key: str) -> bytes | None:
        self._check()
        return super().get(key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._check()
        super().set(key, value, ttl)

    def delete(self, key: str) -> None:
        self._check()
        super().delete(key)

    def clear(self) -> None:
        self._check()
        super().clear()

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        self._check()
        return super().get_many(keys)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        self._check()
        super().set_many(items, ttl)

    def delete_many(self, keys: Iterable[str]) -> None:
        self._check()
        super().delete_many(keys)

    # Real async twins that go through an await (not a sync call): the async handlers run.
    async def aget(self, key: str) -> bytes | None:
        await asyncio.sleep(0)
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await asyncio.sleep(0)
        self.set(key, value, ttl)

    async def aclear(self) -> None:
        await asyncio.sleep(0)
        self.clear()

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        await asyncio.sleep(0)
        return self.get_many(keys)

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await asyncio.sleep(0)
        self.set_many(items, ttl)

    async def adelete_many(self, keys: Iterable[str]) -> None:
        await asyncio.sleep(0)
        self.delete_many(keys)


def _invariant(stats: dict[str, Any]) -> None:
    assert stats["hits"] + stats["misses"] + stats["bypasses"] == stats["lookups"]


@pytest.fixture(params=list(FAULTS), ids=list(FAULTS))
def broken(request: pytest.FixtureRequest) -> BrokenBackend:
    return BrokenBackend(FAULTS[request.param])


# -- the LLM cache --------------------------------------------------------------------------
def test_sync_faults_are_misses_and_skipped_writes(broken: BrokenBackend) -> None:
    cache = LLMCache(broken, breaker=CircuitBreaker(failures=1000))
    cache.update("p", LLM, "kept")
    broken.down = True
    for _ in range(5):
        assert cache.lookup("p", LLM) is None
        cache.update("p", LLM, "lost")
        cache.update("other", LLM, "lost")  # no failed lookup before it: tries, fails, swallowed
    cache.clear()
    stats = cache.stats.as_dict()
    assert (stats["lookups"], stats["misses"], stats["hits"]) == (5, 5, 0)
    assert stats["errors"] == 5 + 5 + 1  # lookups, the 'other' updates, clear
    assert stats["skipped_after_fault"] == 5
    _invariant(stats)
    broken.down = False
    assert cache.lookup("p", LLM) == "kept"  # a fault never loses what was written


async def test_async_faults_are_misses_and_skipped_writes(broken: BrokenBackend) -> None:
    cache = LLMCache(broken, breaker=CircuitBreaker(failures=1000))
    await cache.aupdate("p", LLM, "kept")
    broken.down = True
    for _ in range(5):
        assert await cache.alookup("p", LLM) is None
        await cache.aupdate("p", LLM, "lost")
        await cache.aupdate("other", LLM, "lost")
    await cache.aclear()
    stats = cache.stats.as_dict()
    assert (stats["lookups"], stats["misses"], stats["errors"]) == (5, 5, 11)
    _invariant(stats)
    broken.down = False
    assert await cache.alookup("p", LLM) == "kept"


async def test_sample_mode_read_before_write_fault_is_swallowed(broken: BrokenBackend) -> None:
    from llmcache import KeyPolicy

    cache = LLMCache(broken, policy=KeyPolicy(temperature="sample:3"))
    broken.down = True
    cache.update("p", HOT, "a")
    await cache.aupdate("p", HOT, "b")
    assert cache.stats["errors"] == 2 and cache.stats["writes"] == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_on_error_raise_surfaces_every_fault_as_backend_error(
    broken: BrokenBackend, mode: str
) -> None:
    cache = LLMCache(broken, on_error="raise")
    broken.down = True
    with pytest.raises(BackendError):
        if mode == "sync":
            cache.lookup("p", LLM)
        else:
            await cache.alookup("p", LLM)
    with pytest.raises(BackendError):
        if mode == "sync":
            cache.update("q", LLM, "x")
        else:
            await cache.aupdate("q", LLM, "x")


def test_open_breaker_counts_skipped_writes_not_misses() -> None:
    broken = BrokenBackend(BackendError)
    broken.down = True
    cache = LLMCache(broken, breaker=CircuitBreaker(failures=2, cooldown=60))
    for i in range(20):
        assert cache.lookup(f"p{i}", LLM) is None
        cache.update(f"p{i}", LLM, "x")
    stats = cache.stats.as_dict()
    assert stats["lookups"] == 20 and stats["misses"] == 20  # not 40: writes are not misses
    assert stats["skipped_writes"] >= 17 and stats["skipped_open_circuit"] >= 35
    _invariant(stats)


def test_bypasses_keep_the_invariant() -> None:
    from llmcache import KeyPolicy

    cache = LLMCache(MemoryBackend(), policy=KeyPolicy(temperature="bypass_above:0.5"))
    assert cache.lookup("p", HOT) is None
    cache.update("p", HOT, "x")
    assert cache.lookup("p", LLM) is None
    stats = cache.stats.as_dict()
    assert (stats["bypasses"], stats["misses"], stats["lookups"]) == (1, 1, 2)
    _invariant(stats)


async def test_a_cancelled_store_call_is_a_fault_not_the_callers_cancellation() -> None:
    class Cancelling(MemoryBackend):
        async def aget(self, key: str) -> bytes | None:
            raise asyncio.CancelledError  # e.g. a driver's inner task cancelled on a reconnect

    cache = LLMCache(Cancelling())
    assert await cache.alookup("p", LLM) is None
    assert cache.stats["errors"] == 1


async def test_the_callers_own_cancellation_still_cancels() -> None:
    class Slow(MemoryBackend):
        async def aget(self, key: str) -> bytes | None:
            await asyncio.sleep(10)
            return None

    cache = LLMCache(Slow())
    task = asyncio.create_task(cache.alookup("p", LLM))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- the byte store -------------------------------------------------------------------------
def test_byte_store_sync_faults(broken: BrokenBackend) -> None:
    store = LangChainByteStore(broken, breaker=CircuitBreaker(failures=1000))
    store.mset([("a", b"1")])
    broken.down = True
    assert store.mget(["a", "b"]) == [None, None]
    store.mset([("c", b"3")])
    store.mdelete(["a"])
    assert store.stats["errors"] == 3
    broken.down = False
    assert store.mget(["a", "c"]) == [b"1", None]  # the failed delete lost nothing


async def test_byte_store_async_faults(broken: BrokenBackend) -> None:
    store = LangChainByteStore(broken, breaker=CircuitBreaker(failures=1000))
    await store.amset([("a", b"1")])
    broken.down = True
    assert await store.amget(["a", "b"]) == [None, None]
    await store.amset([("c", b"3")])
    await store.amdelete(["a"])
    assert store.stats["errors"] == 3
    broken.down = False
    assert await store.amget(["a", "c"]) == [b"1", None]


@pytest.mark.parametrize("op", ["mget", "mset", "mdelete", "amget", "amset", "amdelete"])
async def test_byte_store_raise_mode_surfaces_each_op(op: str) -> None:
    broken = BrokenBackend(RuntimeError)
    broken.down = True
    store = LangChainByteStore(broken, on_error="raise")
    args: Any = [("k", b"v")] if op.endswith("mset") else ["k"]
    with pytest.raises(BackendError):
        result = getattr(store, op)(args)
        if asyncio.iscoroutine(result):
            await result
