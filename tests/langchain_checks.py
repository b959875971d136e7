"""End-to-end checks of the LangChain adapters, run on every backend by the backend test files."""

from __future__ import annotations

from langchain_classic.embeddings import CacheBackedEmbeddings

from llmcache.adapters.langchain import LangChainByteStore
from tests.fakes import CountingEmbeddings

TEXTS = ["the cat sat", "on the mat", "é✓ unicode text"]


def embedder(store: LangChainByteStore) -> tuple[CacheBackedEmbeddings, CountingEmbeddings]:
    model = CountingEmbeddings(size=16)
    cached = CacheBackedEmbeddings.from_bytes_store(
        model, store, namespace="fake-16:", key_encoder="sha256", query_embedding_cache=True
    )
    return cached, model


def check_cache_backed_embeddings(store: LangChainByteStore, *, listable: bool = True) -> None:
    """A second embed of the same texts does not call the model; keys are the caller's."""
    cached, model = embedder(store)
    first = cached.embed_documents(TEXTS)
    assert model.embedded == 3
    again = cached.embed_documents(TEXTS)
    assert again == first and model.embedded == 3
    assert cached.embed_query("on the mat") == first[1] and model.embedded == 3
    assert first == model.embed_documents(TEXTS)  # the very vectors the model gives
    if listable:
        keys = sorted(store.yield_keys(prefix="fake-16:"))
        assert len(keys) == 3 and all(len(k) == len("fake-16:") + 64 for k in keys)
    assert store.stats["errors"] == 0


async def acheck_cache_backed_embeddings(
    store: LangChainByteStore, *, listable: bool = True
) -> None:
    """:func:`check_cache_backed_embeddings` through the async path."""
    cached, model = embedder(store)
    first = await cached.aembed_documents(TEXTS)
    assert model.embedded == 3
    assert await cached.aembed_documents(TEXTS) == first and model.embedded == 3
    assert await cached.aembed_query("the cat sat") == first[0] and model.embedded == 3
    assert first == model.embed_documents(TEXTS)
    if listable:
        assert len([k async for k in store.ayield_keys(prefix="fake-16:")]) == 3
    assert store.stats["errors"] == 0
