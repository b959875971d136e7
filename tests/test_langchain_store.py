"""LangChainByteStore: its own rules and faults.

LangChain's standard store suites and CacheBackedEmbeddings run on every backend in
tests/test_langchain_suites.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from llmcache import CircuitBreaker, Settings
from llmcache.adapters.langchain import LangChainByteStore
from llmcache.backends.memory import MemoryBackend
from llmcache.errors import BackendError, BackendUnavailable
from tests.langchain_checks import TEXTS, embedder


def test_values_are_the_callers_bytes_and_ttl_applies() -> None:
    store = LangChainByteStore(MemoryBackend(), ttl=0.05)
    store.mset([("k", b"\x00raw"), ("k", b"\x00last wins")])
    assert store.mget(["k", "absent"]) == [b"\x00last wins", None]
    assert store.backend.get("k") == b"\x00last wins"  # no envelope around the bytes
    with pytest.raises(TypeError, match="bytes, not str"):
        store.mset([("k", "text")])  # type: ignore[list-item]
    time.sleep(0.1)
    assert store.mget(["k"]) == [None]


def test_default_namespaces_keep_embeddings_apart_from_the_llm_cache(tmp_path: Path) -> None:
    assert LangChainByteStore.from_url("memory://").backend.namespace == "embeddings"
    settings = Settings(url=f"disk://{tmp_path}", namespace="app", ttl=60)
    store = LangChainByteStore.from_settings(settings)
    assert (store.backend.namespace, store.ttl) == ("app.embeddings", 60)
    store.close()


# -- faults: the embeddings are still computed --------------------------------------------------
class DownBackend(MemoryBackend):
    """A store that is down: every operation fails as a real backend's would."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise BackendUnavailable("store is down (test)")

    def get_many(self, keys):  # type: ignore[no-untyped-def]
        self._check()
        return super().get_many(keys)

    def set_many(self, items, ttl=None):  # type: ignore[no-untyped-def]
        self._check()
        super().set_many(items, ttl)

    def delete(self, key: str) -> None:
        self._check()
        super().delete(key)

    async def aget_many(self, keys):  # type: ignore[no-untyped-def]
        return self.get_many(keys)

    async def aset_many(self, items, ttl=None):  # type: ignore[no-untyped-def]
        self.set_many(items, ttl)


async def test_store_down_embeddings_are_still_computed(caplog: pytest.LogCaptureFixture) -> None:
    backend = DownBackend()
    store = LangChainByteStore(backend, breaker=CircuitBreaker(failures=3, cooldown=60))
    cached, model = embedder(store)
    with caplog.at_level(logging.WARNING, logger="llmcache"):
        vectors = cached.embed_documents(TEXTS)
        assert await cached.aembed_documents(TEXTS) == vectors
        cached.embed_documents(TEXTS)
        store.mdelete(["x"])
    assert vectors == model.embed_documents(TEXTS)
    assert model.embedded == 4 * len(TEXTS)
    assert store.stats["errors"] == 3 and store.stats["skipped_open_circuit"] >= 1
    assert backend.calls == 3  # then the open breaker skips the store: no timeout paid
    assert len(caplog.records) == 1  # logged once per burst, not per call
    assert "mget" in caplog.records[0].getMessage()


def test_on_error_raise_surfaces_the_fault() -> None:
    store = LangChainByteStore(DownBackend(), on_error="raise")
    with pytest.raises(BackendUnavailable, match="down"):
        store.mget(["k"])
    with pytest.raises(BackendError):
        store.mset([("k", b"v")])
