"""``LLMCache.forget``: one wrong answer goes, the rest of the namespace stays (every backend)."""

from __future__ import annotations

import pytest

from llmcache import KeyPolicy, LLMCache
from llmcache.errors import BackendError
from llmcache.keys import TemperatureMode
from tests.backends.clients import StoreTarget

LLM = "[('_type', 'fake'), ('model_name', 'm'), ('temperature', 0.0)]"


def test_forget_deletes_one_entry_and_keeps_the_others(store_target: StoreTarget) -> None:
    cache = LLMCache(store_target.make())
    cache.update("wrong?", LLM, ["a wrong answer"])
    cache.update("right?", LLM, ["a right answer"])
    assert cache.lookup("wrong?", LLM) == ["a wrong answer"]  # memoised: forget drops that too
    assert cache.forget("wrong?", LLM) is True
    assert cache.lookup("wrong?", LLM) is None
    assert cache.lookup("right?", LLM) == ["a right answer"]
    assert cache.forget("wrong?", LLM) is False  # nothing left to forget


async def test_aforget_in_a_namespace(store_target: StoreTarget) -> None:
    cache = LLMCache(store_target.make())
    await cache.aupdate("q", LLM, ["tenant answer"], namespace="tenant-a")
    await cache.aupdate("q", LLM, ["default answer"])
    assert await cache.aforget("q", LLM, namespace="tenant-a") is True
    assert await cache.alookup_hit("q", LLM, namespace="tenant-a") is None
    assert await cache.alookup("q", LLM) == ["default answer"]


def test_forget_removes_every_sample_of_a_key() -> None:
    cache = LLMCache.from_url(
        "memory://", policy=KeyPolicy(temperature=TemperatureMode.parse("sample:3"))
    )
    hot = "[('_type', 'fake'), ('temperature', 1.0)]"
    for i in range(3):
        cache.update("poem", hot, [f"poem {i}"])
    assert cache.lookup("poem", hot) is not None
    assert cache.forget("poem", hot) is True
    assert cache.lookup("poem", hot) is None


def test_a_store_fault_on_forget_follows_on_error() -> None:
    cache = LLMCache.from_url("memory://", on_error="raise")
    cache.update("q", LLM, ["x"])

    def broken(key: str) -> None:
        raise BackendError("store down")

    cache.backend.delete = broken  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="store down"):
        cache.forget("q", LLM)
    quiet = LLMCache.from_url("memory://")
    quiet.backend.delete = broken  # type: ignore[method-assign]
    quiet.update("q", LLM, ["x"])
    assert quiet.forget("q", LLM) is False and quiet.stats["errors"] == 1
