"""LangChainCache with real LangChain runnables: what a LangChain user sees.

LangChain's standard cache suites run on every backend in tests/test_langchain_suites.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import FakeListChatModel, FakeListLLM
from langchain_core.outputs import ChatGeneration

from llmcache import KeyPolicy, LLMCache
from llmcache.adapters.langchain import LangChainCache
from llmcache.backends.capabilities import KeyListing
from llmcache.backends.memory import MemoryBackend
from tests.fakes import CountingChat, SerialisableCountingChat, rich_answer


@pytest.fixture(params=["memory", "disk"])
def lc_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LangChainCache]:
    url = "memory://" if request.param == "memory" else f"disk://{tmp_path}/c"
    cache = LangChainCache.from_url(url)
    yield cache
    cache.close()


@pytest.fixture(autouse=True)
def _no_global_cache() -> Iterator[None]:
    yield
    set_llm_cache(None)


def message_fields(message: object) -> dict[str, object]:
    fields = ("content", "tool_calls", "usage_metadata", "response_metadata", "additional_kwargs")
    return {f: getattr(message, f) for f in fields}


@pytest.mark.parametrize("model_cls", [CountingChat, SerialisableCountingChat])
def test_chat_hit_is_the_original_message_field_by_field(
    lc_cache: LangChainCache, model_cls: type[CountingChat]
) -> None:
    model = model_cls(cache=lc_cache)
    first = model.invoke("weather in Paris?")
    second = model.invoke("weather in Paris?")
    assert model.calls == 1
    usage = dict(second.usage_metadata or {})
    assert usage.pop("total_cost") == 0  # LangChain itself marks cache hits as free
    assert usage == first.usage_metadata
    assert {**message_fields(second), "usage_metadata": usage} == message_fields(first)
    assert second.id == first.id


def test_lookup_returns_equal_chat_generation(lc_cache: LangChainCache) -> None:
    generation = ChatGeneration(message=rich_answer(3), generation_info={"finish_reason": "stop"})
    lc_cache.update("prompt", "llm", [generation])
    hit = lc_cache.lookup("prompt", "llm")
    assert hit == [generation]
    assert isinstance(hit[0], ChatGeneration)


async def test_async_chat_calls_and_batches_hit(lc_cache: LangChainCache) -> None:
    model = CountingChat(cache=lc_cache)
    first = await model.ainvoke("a")
    again = await model.ainvoke("a")
    assert again.content == first.content and model.calls == 1
    answers = await model.abatch(["b", "c", "b", "a"])
    assert model.calls in (3, 4)  # b may be asked twice concurrently before its first store
    calls = model.calls
    b_again, c_again = await model.abatch(["b", "c"])
    assert b_again.content in {answers[0].content, answers[2].content}
    assert c_again.content == answers[1].content
    await asyncio.gather(*(model.ainvoke(p) for p in ["a", "b", "c"] * 20))
    assert model.calls == calls


def test_plain_llm_is_cached_sync_and_batch(lc_cache: LangChainCache) -> None:
    set_llm_cache(lc_cache)
    llm = FakeListLLM(responses=["one", "two", "three"])
    assert llm.invoke("q1") == "one"
    assert llm.invoke("q1") == "one"
    assert llm.batch(["q1", "q2"]) == ["one", "two"]
    assert lc_cache.stats["hits"] == 2


async def test_plain_llm_is_cached_async(lc_cache: LangChainCache) -> None:
    llm = FakeListLLM(responses=["one", "two"], cache=lc_cache)
    assert await llm.ainvoke("q") == "one"
    assert await llm.ainvoke("q") == "one"
    assert lc_cache.stats["hits"] == 1


def policy_cache(temperature: str) -> LangChainCache:
    return LangChainCache(
        LLMCache(MemoryBackend(), policy=KeyPolicy.model_validate({"temperature": temperature}))
    )


def test_temperature_ignore_shares_an_entry_include_does_not() -> None:
    for mode, expected_calls in (("ignore", 1), ("include", 2)):
        model = CountingChat(cache=policy_cache(mode))
        model.invoke("hi", temperature=0.0)
        model.invoke("hi", temperature=0.7)
        assert model.calls == expected_calls, mode


def test_bypass_above_neither_looks_up_nor_stores() -> None:
    cache = policy_cache("bypass_above:0.5")
    backend = cache.cache.backend
    assert isinstance(backend, MemoryBackend)
    model = CountingChat(cache=cache)
    model.invoke("hi", temperature=0.7)
    model.invoke("hi", temperature=0.7)
    assert model.calls == 2
    assert backend.info()["entries"] == 0
    assert cache.stats["bypasses"] == 2 and cache.stats["hits"] + cache.stats["misses"] == 0
    model.invoke("hi", temperature=0.3)
    model.invoke("hi", temperature=0.3)
    assert model.calls == 3


def test_sample_serves_k_distinct_answers_in_turn() -> None:
    cache = policy_cache("sample:3")
    llm = FakeListLLM(responses=["a", "b", "c", "d"], cache=cache)
    first = [llm.invoke("tell me a joke", temperature=1.0) for _ in range(3)]
    assert first == ["a", "b", "c"]  # misses until 3 answers are stored
    later = [llm.invoke("tell me a joke", temperature=1.0) for _ in range(6)]
    assert later == ["a", "b", "c", "a", "b", "c"]
    assert llm.i == 3  # the model was not called again


def test_random_bytes_under_a_valid_key_are_a_miss(lc_cache: LangChainCache) -> None:
    model = FakeListChatModel(responses=["fresh"], cache=lc_cache)
    model.invoke("q")
    backend = lc_cache.cache.backend
    assert isinstance(backend, KeyListing)
    # Overwrite every entry of the namespace with garbage through the backend itself.
    keys = list(backend.iter_keys())
    assert len(keys) == 1
    for key in keys:
        backend.set(key, b"\x00garbage" * 10)
    assert model.invoke("q").content == "fresh"
    assert lc_cache.stats["decode_errors"] == 1 and lc_cache.stats["hits"] == 0


def test_model_level_cache_false_is_respected(lc_cache: LangChainCache) -> None:
    set_llm_cache(lc_cache)
    model = CountingChat(cache=False)
    model.invoke("x")
    model.invoke("x")
    assert model.calls == 2


def test_each_hit_gets_its_own_objects(lc_cache: LangChainCache) -> None:
    generation = ChatGeneration(message=rich_answer(1))
    lc_cache.update("p", "llm", [generation])
    first = lc_cache.lookup("p", "llm")
    assert first is not None
    first[0].message.content = "changed by the caller"  # type: ignore[attr-defined]
    second = lc_cache.lookup("p", "llm")
    assert second == [generation]
    # A new answer under the same key is served at once (the memo checks the stored bytes).
    newer = ChatGeneration(message=rich_answer(2))
    lc_cache.update("p", "llm", [newer])
    assert lc_cache.lookup("p", "llm") == [newer]


def test_real_openai_chat_model_hits_when_a_key_is_set(tmp_path: Path) -> None:
    """Runs only with OPENAI_API_KEY and langchain-openai (never in CI: no network there)."""
    import os

    if not os.environ.get("OPENAI_API_KEY"):
        pytest.skip("OPENAI_API_KEY is not set")
    openai = pytest.importorskip("langchain_openai")
    cache = LangChainCache.from_url(f"disk://{tmp_path}")
    model = openai.ChatOpenAI(model="gpt-4o-mini", temperature=0, cache=cache)
    first = model.invoke("Name one primary colour, one word.")
    second = model.invoke("Name one primary colour, one word.")
    assert second.content == first.content and second.response_metadata == first.response_metadata
    assert cache.stats["hits"] == 1
    cache.close()
