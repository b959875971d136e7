"""LangChain's own standard suites and our end-to-end checks, once, on every backend.

``store_target`` (tests/conftest.py) runs each on memory, disk, Redis standalone, Redis TLS+AUTH,
Redis cluster and Momento: the cache suites on :class:`LangChainCache`, the store suites on
:class:`LangChainByteStore`, ``CacheBackedEmbeddings`` on the byte store and
``RunnableWithMessageHistory`` on :class:`LangChainChatHistory` (``tests/langchain_checks.py``).
Every case of a suite runs per backend, even the few that do not touch the store, so each backend
counts the whole suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from langchain_core.caches import BaseCache
from langchain_core.stores import ByteStore
from langchain_tests.integration_tests import (
    AsyncCacheTestSuite,
    BaseStoreAsyncTests,
    BaseStoreSyncTests,
    SyncCacheTestSuite,
)

from llmcache import LLMCache
from llmcache.adapters.langchain import LangChainByteStore, LangChainCache, LangChainChatHistory
from llmcache.backends.capabilities import KeyListing
from llmcache.errors import UnsupportedOperation
from tests.backends.clients import StoreTarget
from tests.langchain_checks import (
    acheck_cache_backed_embeddings,
    acheck_history_with_runnable,
    check_cache_backed_embeddings,
    check_history_with_runnable,
)

pytestmark = [pytest.mark.langchain, pytest.mark.usefixtures("store_target")]

THREE = (b"foo", b"\x00\xffbar", "buzz é".encode())


def _lists_keys(store: LangChainByteStore) -> bool:
    return isinstance(store.backend, KeyListing)


#: The standard store tests that call ``yield_keys``.
CALLS_YIELD_KEYS = {"test_yield_keys", "test_set_values_is_idempotent"}


class NeedsKeyListing:
    """Marks the standard tests that call ``yield_keys`` strict xfail on a backend that cannot
    list keys (Momento): they must fail with exactly UnsupportedOperation, and the mark goes
    when the limitation does. (The suites forbid overriding their tests, so the mark is applied
    here, at setup, rather than on an override.)"""

    @pytest.fixture(autouse=True)
    def _xfail_without_key_listing(
        self, request: pytest.FixtureRequest, store_target: StoreTarget
    ) -> None:
        backend = store_target.make()
        if request.node.originalname in CALLS_YIELD_KEYS and not isinstance(backend, KeyListing):
            reason = f"{type(backend).__name__} cannot list keys (no yield_keys)"
            mark = pytest.mark.xfail(raises=UnsupportedOperation, strict=True, reason=reason)
            request.applymarker(mark)


# -- the LLM cache ---------------------------------------------------------------------------------
class TestCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, store_target: StoreTarget) -> Iterator[BaseCache]:
        cache = LangChainCache(LLMCache(store_target.make()))
        yield cache
        cache.clear()
        cache.close()


class TestCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, store_target: StoreTarget) -> AsyncIterator[BaseCache]:
        cache = LangChainCache(LLMCache(store_target.make()))
        yield cache
        await cache.aclear()
        await cache.aclose()


# -- the embeddings byte store ---------------------------------------------------------------------
class TestByteStoreSync(NeedsKeyListing, BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, store_target: StoreTarget) -> Iterator[ByteStore]:
        store = LangChainByteStore(store_target.make())
        yield store
        store.backend.clear()
        store.close()

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return THREE


class TestByteStoreAsync(NeedsKeyListing, BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    async def kv_store(self, store_target: StoreTarget) -> AsyncIterator[ByteStore]:
        store = LangChainByteStore(store_target.make())
        yield store
        await store.backend.aclear()
        await store.aclose()

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return THREE


@pytest.fixture
def byte_store(store_target: StoreTarget) -> Iterator[LangChainByteStore]:
    store = LangChainByteStore(store_target.make())
    yield store
    store.backend.clear()
    store.close()


def test_cache_backed_embeddings(byte_store: LangChainByteStore) -> None:
    check_cache_backed_embeddings(byte_store, listable=_lists_keys(byte_store))
    assert byte_store.stats["hits"] >= 3 and byte_store.stats["writes"] == 3


async def test_cache_backed_embeddings_async(byte_store: LangChainByteStore) -> None:
    await acheck_cache_backed_embeddings(byte_store, listable=_lists_keys(byte_store))


async def test_a_store_that_cannot_list_keys_says_so(byte_store: LangChainByteStore) -> None:
    if _lists_keys(byte_store):
        assert list(byte_store.yield_keys()) == []
        assert [k async for k in byte_store.ayield_keys()] == []
        return
    name = type(byte_store.backend).__name__
    with pytest.raises(UnsupportedOperation, match=rf"{name} cannot .*KeyListing"):
        list(byte_store.yield_keys())
    with pytest.raises(UnsupportedOperation, match=rf"{name} cannot .*KeyListing"):
        [k async for k in byte_store.ayield_keys()]


# -- chat history ------------------------------------------------------------------------------
def test_history_with_runnable(store_target: StoreTarget) -> None:
    backend = store_target.make()
    check_history_with_runnable(lambda sid: LangChainChatHistory(backend, sid), "s1")


async def test_history_with_runnable_async(store_target: StoreTarget) -> None:
    backend = store_target.make()
    try:
        await acheck_history_with_runnable(lambda sid: LangChainChatHistory(backend, sid), "s1")
    finally:
        await backend.aclose()
