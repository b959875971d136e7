"""The semantic layer and single-flight as users turn them on: ``from_url(semantic=...)``,
settings, ``LangChainCache``, ``cached()``; and the global cache's opt-in single-flight."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache

from llmcache import LLMCache
from llmcache.adapters.langchain import LangChainCache, cached
from llmcache.errors import ConfigError
from llmcache.semantic import HashingEmbeddings
from tests.backends.clients import StoreTarget
from tests.fakes import StreamingChat

LLM = "[('_type', 'fake'), ('model_name', 'demo'), ('temperature', 0.0)]"
RICE = "what is the best way to cook rice at home"


def _semantic(backend: Any) -> LLMCache:
    cache = LLMCache(backend)
    cache.enable_semantic(HashingEmbeddings(), threshold=0.8)
    return cache


def test_a_paraphrase_is_served_on_every_backend(store_target: StoreTarget) -> None:
    cache = _semantic(store_target.make())
    cache.update(RICE, LLM, "Rinse, then simmer.")
    assert cache.lookup(RICE + " quickly", LLM) == "Rinse, then simmer."
    assert cache.stats["semantic_hits"] == 1 and cache.stats["hits"] == 1
    assert cache.lookup("what is the best way to not cook rice at home", LLM) is None  # vetoed
    other_model = LLM.replace("demo", "other")
    assert cache.lookup(RICE + " quickly", other_model) is None  # the model must match exactly


async def test_async_paths_and_hits_with_age(store_target: StoreTarget) -> None:
    cache = _semantic(store_target.make())
    await cache.aupdate(RICE, LLM, "Rinse, then simmer.")
    hit = await cache.alookup_hit(RICE + " quickly", LLM)
    assert hit is not None and hit.answer == "Rinse, then simmer."
    assert hit.age_s is not None and hit.age_s < 60
    await asyncio.sleep(0.05)
    assert await cache.alookup_hit(RICE + " quickly", LLM, max_age=0.01) is None  # too old
    assert await cache.alookup(RICE + " quickly", LLM) == "Rinse, then simmer."


def test_forget_drops_the_paraphrase_too() -> None:
    cache = _semantic(LLMCache.from_url("memory://").backend)
    cache.update(RICE, LLM, "Rinse, then simmer.")
    assert cache.forget(RICE, LLM) is True
    assert cache.lookup(RICE + " quickly", LLM) is None


def test_a_per_call_namespace_is_exact_only() -> None:
    cache = _semantic(LLMCache.from_url("memory://").backend)
    cache.update(RICE, LLM, "tenant answer", namespace="tenant-a")
    assert cache.lookup_hit(RICE + " quickly", LLM, namespace="tenant-a") is None
    assert cache.lookup(RICE + " quickly", LLM) is None  # nothing indexed in the default one


def test_semantic_from_url_settings_and_errors(
    monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    cache = LLMCache.from_url(
        "memory://", semantic={"embeddings": HashingEmbeddings(), "threshold": 0.8}
    )
    assert cache.semantic is not None and cache.semantic.config.threshold == 0.8
    with pytest.raises(ConfigError, match="threshhold"):
        LLMCache.from_url(
            "memory://", semantic={"embeddings": HashingEmbeddings(), "threshhold": 1}
        )
    with pytest.raises(ConfigError, match="embeddings"):
        LLMCache.from_url("memory://", semantic={"threshold": 0.8})
    monkeypatch.setenv("LLMCACHE_URL", "memory://")
    monkeypatch.setenv("LLMCACHE_SEMANTIC__THRESHOLD", "0.85")
    built = LLMCache.from_settings(embeddings=HashingEmbeddings())
    assert built.semantic is not None and built.semantic.config.threshold == 0.85
    with pytest.raises(ConfigError, match="no embeddings"):
        LLMCache.from_settings()


def test_cached_model_serves_a_paraphrased_chat_prompt() -> None:
    model = StreamingChat()
    chat = cached(
        model, "memory://", semantic={"embeddings": HashingEmbeddings(), "threshold": 0.8}
    )
    chat.invoke("what is the capital city of France")
    again = chat.invoke("what is the capital city of France please")
    assert model.calls == 1 and again.response_metadata["llmcache"]["hit"] is True
    chat.invoke("what is the capital city of Spain")  # an entity differs: vetoed
    assert model.calls == 2


# -- the global cache's single-flight (opt-in) ----------------------------------------------------
def test_global_cache_single_flight_threads_make_one_call(store_target: StoreTarget) -> None:
    model = StreamingChat(delay=0.3)
    lc = LangChainCache(LLMCache(store_target.make()), single_flight=True, lease_ttl=10)
    set_llm_cache(lc)
    try:
        start = threading.Barrier(6)
        answers: list[Any] = []

        def call() -> None:
            start.wait()
            answers.append(model.invoke("same question"))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
    finally:
        set_llm_cache(None)
    assert len(answers) == 6 and model.calls == 1
    assert len({a.content for a in answers}) == 1
    assert lc.cache.stats["coalesced"] == 5


async def test_global_cache_single_flight_async_and_a_failing_leader() -> None:
    model = StreamingChat(delay=0.2)
    lc = LangChainCache(LLMCache.from_url("memory://"), single_flight=True, lease_ttl=1.0)
    set_llm_cache(lc)
    try:
        answers = await asyncio.gather(*(model.ainvoke("q") for _ in range(20)))
        assert model.calls == 1 and len({a.content for a in answers}) == 1
        failing = StreamingChat(delay=0.1, fail=True)
        begin = time.monotonic()
        results = await asyncio.gather(
            *(failing.ainvoke("f") for _ in range(3)), return_exceptions=True
        )
        # The leader's model failed and never stored: the others waited at most the lease.
        assert all(isinstance(r, RuntimeError) for r in results)
        assert time.monotonic() - begin < 1.0 + 3 * 0.1 + 1.0
    finally:
        set_llm_cache(None)


def test_global_cache_single_flight_from_settings(
    monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setenv("LLMCACHE_URL", "memory://")
    assert LangChainCache.from_settings()._flight is None  # off by default
    monkeypatch.setenv("LLMCACHE_SINGLE_FLIGHT", "true")
    monkeypatch.setenv("LLMCACHE_LEASE_TTL", "5")
    lc = LangChainCache.from_settings()
    assert lc._flight is not None and lc._flight.lease_ttl == 5


def test_metrics_count_a_semantic_hit_as_a_hit() -> None:
    from prometheus_client import CollectorRegistry

    from llmcache import metrics

    cache = _semantic(LLMCache.from_url("memory://").backend)
    registry = CollectorRegistry()
    metrics.enable_prometheus(cache, registry=registry)
    try:
        cache.update(RICE, LLM, "Rinse, then simmer.")
        assert cache.lookup(RICE + " quickly", LLM) == "Rinse, then simmer."
        hits = sum(
            sample.value
            for family in registry.collect()
            if family.name == "llmcache_lookups"
            for sample in family.samples
            if sample.name == "llmcache_lookups_total" and sample.labels.get("result") == "hit"
        )
        assert hits == 1
    finally:
        metrics.disable(target=cache)
