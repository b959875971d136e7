"""momento:// through the real SDK over gRPC, against the local server in backends/momento.

Beyond the contract and LangChain's standard suites (tests/test_contract.py and
tests/test_langchain_suites.py run them on Momento too): options and URL errors, Momento's
limits, the namespace generation behind ``clear``, and faults: a stopped server, injected
UNAVAILABLE, replies slower than the deadline, each a BackendError within the timeout, then
recovery on the same backend. The servers are the fixtures of tests/conftest.py
(``momento_server``, ``own_momento_server``). A live test runs against real Momento only when
MOMENTO_API_KEY is set.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from llmcache.errors import BackendError, BackendUnavailable, ConfigError
from llmcache.registry import create_backend
from llmcache.testing import wait_until
from tests.backends.clients import MOMENTO_CACHE as CACHE
from tests.backends.clients import momento_backend as local

pytest.importorskip("momento", reason="the momento extra is not installed")

from llmcache.backends.momento import MomentoBackend, MomentoError, MomentoOptions

pytestmark = pytest.mark.momento

MiB = 1024 * 1024


@pytest.fixture
def own_server(own_momento_server: Any) -> Iterator[Any]:
    """A server of this test's own, free to be stopped or made to fail (from conftest)."""
    yield own_momento_server


# -- options, URLs, settings ------------------------------------------------------------------
def test_url_options_are_typed_and_checked() -> None:
    store = create_backend(
        "momento://my-cache?local=127.0.0.1:9&configuration=low_latency&timeout=0.25"
        "&default_ttl=600&create_cache=true",
        namespace="app",
    )
    assert isinstance(store, MomentoBackend)
    assert (store.cache_name, store.namespace, store.default_ttl) == ("my-cache", "app", 600.0)
    assert (store.configuration_name, store.timeout, store.create_cache) == (
        "low_latency",
        0.25,
        True,
    )
    deadline = store.make_configuration().get_transport_strategy().get_grpc_configuration()
    assert deadline.get_deadline().total_seconds() == 0.25
    with pytest.raises(
        ConfigError, match=r"'colour'.*valid options: api_key, cache_name, configuration"
    ):
        create_backend("momento://c?local=127.0.0.1:9&colour=red")
    with pytest.raises(ConfigError, match=r"'fast'.*configuration"):
        create_backend("momento://c?local=127.0.0.1:9&configuration=fast")
    with pytest.raises(ConfigError, match="cache name"):
        create_backend("momento://?local=127.0.0.1:9")
    with pytest.raises(ConfigError, match="host:port"):
        create_backend("momento://c?local=nowhere")


def test_default_configuration_is_in_region() -> None:
    store = MomentoBackend(MomentoOptions(cache_name="c", local="127.0.0.1:9"))
    grpc_config = store.make_configuration().get_transport_strategy().get_grpc_configuration()
    assert grpc_config.get_deadline().total_seconds() == 1.1
    assert store.default_ttl == 86_400


def test_api_key_never_in_the_url() -> None:
    with pytest.raises(ConfigError, match="never put the Momento API key"):
        create_backend("momento://secret@my-cache")
    with pytest.raises(ConfigError, match="never put the Momento API key"):
        create_backend("momento://my-cache?api_key=secret")


def test_missing_api_key_names_the_settings() -> None:
    with pytest.raises(ConfigError, match="LLMCACHE_MOMENTO_API_KEY"):
        create_backend("momento://my-cache")


def test_api_keys_v2_legacy_and_invalid() -> None:
    jwt = pytest.importorskip("jwt")
    secret = "s" * 48  # long enough for PyJWT's HMAC key-length check
    v2 = jwt.encode({"t": "g", "id": "x"}, secret, algorithm="HS256")
    with pytest.raises(ConfigError, match=r"needs an endpoint.*MOMENTO_ENDPOINT"):
        MomentoBackend(MomentoOptions(cache_name="c", api_key=SecretStr(v2)))
    store = MomentoBackend(
        MomentoOptions(
            cache_name="c", api_key=SecretStr(v2), endpoint="cell-1.example.momentohq.com"
        )
    )
    assert store.endpoint == "cache.cell-1.example.momentohq.com"
    legacy = jwt.encode({"cp": "control.legacy.example", "c": "cache.legacy.example"}, secret)
    legacy_options = MomentoOptions(cache_name="c", api_key=SecretStr(legacy))
    assert MomentoBackend(legacy_options).endpoint == "cache.legacy.example"
    with pytest.raises(ConfigError, match="invalid Momento API key"):
        MomentoBackend(MomentoOptions(cache_name="c", api_key=SecretStr("not-a-key")))
    assert "secret" not in repr(store) and v2 not in repr(store)


def test_key_and_endpoint_from_the_environment_reach_the_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from llmcache.config import load_settings
    from llmcache.registry import backend_from_settings

    monkeypatch.chdir(tmp_path)  # no .env or llmcache.toml of the checkout
    monkeypatch.setenv("MOMENTO_API_KEY", "fallback-key")
    monkeypatch.setenv("MOMENTO_ENDPOINT", "e.example")
    monkeypatch.delenv("LLMCACHE_MOMENTO_ENDPOINT", raising=False)
    monkeypatch.delenv("LLMCACHE_MOMENTO_API_KEY", raising=False)

    def backend() -> MomentoBackend:
        store = backend_from_settings(load_settings(url="momento://c?local=127.0.0.1:9"))
        assert isinstance(store, MomentoBackend)
        return store

    store = backend()
    assert store.options.api_key is not None
    assert store.options.api_key.get_secret_value() == "fallback-key"
    assert store.options.endpoint == "e.example"
    assert store.endpoint == "127.0.0.1"  # a local URL ignores a key that settings provide
    assert "fallback-key" not in repr(store)
    monkeypatch.setenv("LLMCACHE_MOMENTO_API_KEY", "our-key")  # ours wins over the SDK's name
    store = backend()
    assert store.options.api_key is not None
    assert store.options.api_key.get_secret_value() == "our-key"


def test_from_settings_takes_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, momento_server: Any
) -> None:
    jwt = pytest.importorskip("jwt")
    from llmcache.cache import LLMCache
    from llmcache.config import Settings

    legacy = jwt.encode({"cp": "control.env.example", "c": "cache.env.example"}, "s" * 48)
    monkeypatch.delenv("LLMCACHE_MOMENTO_API_KEY", raising=False)
    monkeypatch.setenv("MOMENTO_API_KEY", legacy)
    cache = LLMCache.from_settings(Settings(url="momento://llm"))
    assert isinstance(cache.backend, MomentoBackend)
    assert cache.backend.endpoint == "cache.env.example"  # no network until first use
    cache.backend.close()
    cache = LLMCache.from_settings(
        Settings(url=f"momento://{CACHE}?local={momento_server.address}")
    )
    with cache.backend as store:
        store.set("k", b"v")
        assert store.get("k") == b"v"


def test_ttl_above_24_hours_is_refused_before_the_call(momento_server: Any) -> None:
    with pytest.raises(ConfigError, match="default_ttl"):
        create_backend(f"momento://{CACHE}?local=127.0.0.1:9&default_ttl=90000")
    with local(momento_server) as store:
        store.set("warm", b"up")
        before = momento_server.calls().get("Set", 0)
        with pytest.raises(ConfigError, match="24 h"):
            store.set("k", b"v", ttl=25 * 3600)
        assert momento_server.calls().get("Set", 0) == before
        assert store.info()["refused"] == 1


# -- limits -----------------------------------------------------------------------------------
def test_item_limit_refused_before_the_call(momento_server: Any) -> None:
    with local(momento_server) as store:
        store.set("warm", b"up")
        before = momento_server.calls().get("Set", 0)
        with pytest.raises(MomentoError, match="5 MiB") as info:
            store.set("big", b"x" * (5 * MiB))
        assert info.value.code == "ITEM_SIZE_LIMIT_EXCEEDED"
        assert momento_server.calls().get("Set", 0) == before
        assert store.info()["refused"] == 1
        # The largest item that fits (key + value = 5 MiB) goes through the SDK and back.
        # Entry keys are ``llmcache:<ns>:g<generation>:<key>`` (momento/generation.py).
        stored_key = f"{store.key_prefix}g{store.info()['generation']}:edge"
        fits = b"y" * (5 * MiB - len(stored_key.encode()))
        store.set("edge", fits)
        assert store.get("edge") == fits


async def test_item_limit_async(momento_server: Any) -> None:
    store = local(momento_server)
    try:
        with pytest.raises(MomentoError, match="item limit"):
            await store.aset("big", b"x" * (5 * MiB + 1))
    finally:
        await store.aclose()


def test_missing_cache_is_an_error_unless_created(momento_server: Any) -> None:
    name = f"c{uuid.uuid4().hex[:8]}"
    with MomentoBackend(
        MomentoOptions(cache_name=name, local=momento_server.address, timeout=5)
    ) as store:
        with pytest.raises(MomentoError, match="create_cache=true") as info:
            store.get("k")
        assert info.value.code == "NOT_FOUND_ERROR"
        assert not isinstance(info.value, BackendUnavailable)
    with MomentoBackend(
        MomentoOptions(cache_name=name, local=momento_server.address, create_cache=True)
    ) as store:
        store.set("k", b"v")
        assert store.get("k") == b"v"
    assert name in momento_server.cache_names()


async def test_create_cache_async(momento_server: Any) -> None:
    name = f"c{uuid.uuid4().hex[:8]}"
    store = MomentoBackend(
        MomentoOptions(cache_name=name, local=momento_server.address, create_cache=True)
    )
    try:
        await store.aset("k", b"v")
        assert await store.aget("k") == b"v"
    finally:
        await store.aclose()
    assert name in momento_server.cache_names()


# -- the namespace generation behind clear --------------------------------------------------------
def test_clear_reaches_other_instances_within_the_refresh(momento_server: Any) -> None:
    ns = f"t{uuid.uuid4().hex[:12]}"
    with (
        local(momento_server, ns, generation_refresh=0.2) as a,
        local(momento_server, ns, generation_refresh=0.2) as b,
    ):
        a.set("k", b"v")
        assert b.get("k") == b"v"
        b.clear()
        assert b.get("k") is None  # at once for the instance that cleared
        assert wait_until(lambda: a.get("k") is None, timeout=3)
        a.set("k", b"new")
        assert b.get("k") == b"new"


def test_generation_is_cached_between_calls(momento_server: Any) -> None:
    with local(momento_server, generation_refresh=60) as store:
        store.set("k", b"v")
        gets = momento_server.calls().get("Get", 0)
        for _ in range(5):
            assert store.get("k") == b"v"
        assert momento_server.calls()["Get"] == gets + 5  # no generation reads in between


def test_expired_generation_key_is_rebased_not_reused(momento_server: Any) -> None:
    with local(momento_server) as store:
        store.set("k", b"v")
        first = store.info()["generation"]
        assert first > 10**15  # microseconds since the epoch
        momento_server.raw_set(CACHE, store.generation_key.encode(), b"", ttl=-1)  # expire it
        store.clear()
        assert store.info()["generation"] > first
        assert store.get("k") is None


# -- async client lifecycle ---------------------------------------------------------------------
def test_async_client_follows_the_event_loop(momento_server: Any) -> None:
    store = local(momento_server)
    try:
        asyncio.run(store.aset("k", b"v"))
        assert asyncio.run(store.aget("k")) == b"v"  # a new loop: a new CacheClientAsync
        assert store.get("k") == b"v"
    finally:
        store.close()


async def test_get_many_runs_concurrently(own_server: Any) -> None:
    store = local(own_server)
    try:
        await store.aset_many({f"k{i}": str(i).encode() for i in range(20)}, ttl=60)
        own_server.delay(0.2, rpcs="get")
        started = time.monotonic()
        values = await store.aget_many([f"k{i}" for i in range(20)])
        assert values == [str(i).encode() for i in range(20)]
        assert time.monotonic() - started < 1.5  # 20 x 0.2 s in series would be 4 s
        started = time.monotonic()
        assert store.get_many(["k1", "k2", "k3", "k4"]) == [b"1", b"2", b"3", b"4"]
        assert time.monotonic() - started < 0.7
        own_server.delay(0.2, rpcs="delete")
        started = time.monotonic()
        await store.adelete_many([f"k{i}" for i in range(10)] + ["k0", "absent"])
        store.delete_many(["k10", "k11", "k12", "k13"])
        assert time.monotonic() - started < 1.5  # 14 x 0.2 s in series would be 2.8 s
        own_server.clear_faults()
        assert await store.aget_many(["k0", "k9", "k13", "k14"]) == [None, None, None, b"14"]
    finally:
        await store.aclose()


# -- faults ---------------------------------------------------------------------------------------
@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Call a backend method by its sync name, through the sync or the async side."""

    def call(store: MomentoBackend, method: str, *args: Any) -> Any:
        if request.param == "sync":
            return getattr(store, method)(*args)

        async def go() -> Any:
            try:
                return await getattr(store, "a" + method)(*args)
            finally:
                await store.aclose()  # the loop ends here: close its client

        return asyncio.run(go())

    return call


def _fails_fast(
    run: Callable[..., Any], store: MomentoBackend, code: str, within: float
) -> BackendError:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        run(store, "get", "k")
    assert time.monotonic() - started < within
    assert isinstance(info.value, MomentoError) and info.value.code == code
    assert info.value.__cause__ is not None
    return info.value


def _recovers(run: Callable[..., Any], store: MomentoBackend) -> None:
    def ok() -> bool:
        try:
            return bool(run(store, "get", "k") == b"v")
        except BackendError:
            return False

    assert wait_until(ok, timeout=15, interval=0.2)


def test_server_stopped_then_back(own_server: Any, run: Callable[..., Any]) -> None:
    with local(own_server, timeout=0.5) as store:
        run(store, "set", "k", b"v")
        own_server.stop()
        _fails_fast(run, store, "SERVER_UNAVAILABLE", within=2.0)
        with pytest.raises(BackendUnavailable):
            run(store, "set", "k2", b"v")
        own_server.start()  # same port, data kept
        _recovers(run, store)


def test_unavailable_injected_then_cleared(own_server: Any, run: Callable[..., Any]) -> None:
    with local(own_server, timeout=0.5) as store:
        run(store, "set", "k", b"v")
        own_server.fail("unavailable")
        error = _fails_fast(run, store, "SERVER_UNAVAILABLE", within=2.0)
        assert "injected fault" in str(error)
        own_server.clear_faults()
        _recovers(run, store)


def test_transient_unavailable_is_retried_by_the_sdk(own_server: Any) -> None:
    with local(own_server) as store:
        store.set("k", b"v")
        own_server.fail("unavailable", rpcs="get", count=2)
        assert store.get("k") == b"v"


def test_slow_replies_time_out_at_the_deadline(own_server: Any, run: Callable[..., Any]) -> None:
    with local(own_server, timeout=0.3) as store:
        run(store, "set", "k", b"v")
        own_server.delay(2.0)
        _fails_fast(run, store, "TIMEOUT_ERROR", within=1.5)
        own_server.clear_faults()
        _recovers(run, store)


def test_faults_from_request_headers(own_server: Any) -> None:
    """momento-local style: the client asks for the fault in metadata (via an SDK middleware)."""
    from momento.config import Configuration
    from momento.config.middleware import MiddlewareRequestHandlerContext
    from momento.config.middleware.synchronous import (
        Middleware,
        MiddlewareMetadata,
        MiddlewareRequestHandler,
    )

    class Headers(MiddlewareRequestHandler):
        def on_request_metadata(self, metadata: MiddlewareMetadata) -> MiddlewareMetadata:
            extra = [("return-error", "unavailable"), ("error-rpcs", "delete")]
            metadata.grpc_metadata = [*(metadata.grpc_metadata or []), *extra]
            return metadata

        def on_request_body(self, request: Any) -> Any:
            return request

        def on_response_metadata(self, metadata: MiddlewareMetadata) -> MiddlewareMetadata:
            return metadata

        def on_response_body(self, response: Any) -> Any:
            return response

        def on_response_status(self, status: Any) -> Any:
            return status

    class Inject(Middleware):
        def on_new_request(self, context: MiddlewareRequestHandlerContext) -> Headers:
            return Headers()

    class Faulty(MomentoBackend):
        def make_configuration(self) -> Configuration:
            return super().make_configuration().add_middleware(Inject())

    with Faulty(MomentoOptions(cache_name=CACHE, local=own_server.address, timeout=1)) as store:
        store.set("k", b"v")  # Get and Set are not in error-rpcs
        assert store.get("k") == b"v"
        with pytest.raises(BackendUnavailable, match="injected fault"):
            store.delete("k")


# -- LangChain end to end, through the facade --------------------------------------------------
def _message_fields(message: Any) -> dict[str, Any]:
    fields = ("id", "content", "tool_calls", "response_metadata", "additional_kwargs")
    usage = dict(message.usage_metadata or {})
    usage.pop("total_cost", None)  # LangChain itself marks a cache hit as free
    return {**{f: getattr(message, f) for f in fields}, "usage": usage}


def _langchain_cache(server: Any, **options: Any) -> Any:
    pytest.importorskip("langchain_core")
    from llmcache import CircuitBreaker
    from llmcache.adapters.langchain import LangChainCache
    from llmcache.cache import LLMCache

    backend = local(server, **options)
    # A short breaker cooldown so the recovery test sees the store again quickly.
    return LangChainCache(LLMCache(backend, breaker=CircuitBreaker(failures=3, cooldown=0.2)))


@pytest.mark.langchain
def test_langchain_chat_hit_round_trips_the_full_message(momento_server: Any) -> None:
    from tests.fakes import CountingChat, rich_answer

    lc = _langchain_cache(momento_server)
    try:
        model = CountingChat(cache=lc)
        first = model.invoke("weather in Paris?")
        gets = momento_server.calls().get("Get", 0)
        again = model.invoke("weather in Paris?")
        assert model.calls == 1  # the second answer came from Momento
        assert momento_server.calls()["Get"] > gets
        assert _message_fields(again) == _message_fields(first)
        assert first.content == rich_answer(0).content and first.tool_calls
        assert again.usage_metadata is not None and again.usage_metadata["total_cost"] == 0
        assert lc.stats["hits"] == 1
        # The adapter's lookup gives back an equal ChatGeneration, AIMessage and all.
        from langchain_core.outputs import ChatGeneration

        generation = ChatGeneration(message=rich_answer(5), generation_info={"finish": "stop"})
        lc.update("prompt", "llm-string", [generation])
        assert lc.lookup("prompt", "llm-string") == [generation]
    finally:
        lc.close()


@pytest.mark.langchain
async def test_langchain_async_chat_hit_uses_the_async_client(
    momento_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmcache.backends.momento.clients as momento_clients_module
    from tests.fakes import CountingChat, rich_answer

    def no_sync_client(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async path built a sync CacheClient (threads, not native)")

    # Native CacheClientAsync all the way: the sync client is never built.
    monkeypatch.setattr(momento_clients_module, "CacheClient", no_sync_client)
    lc = _langchain_cache(momento_server)
    try:
        model = CountingChat(cache=lc)
        first = await model.ainvoke("weather in Paris?")
        answers = await asyncio.gather(*(model.ainvoke("weather in Paris?") for _ in range(8)))
        assert model.calls == 1
        assert first.content == rich_answer(0).content
        assert all(_message_fields(a) == _message_fields(first) for a in answers)
    finally:
        await lc.aclose()


@pytest.mark.langchain
@pytest.mark.parametrize("fault", ["unavailable", "slow", "stopped"])
def test_langchain_store_faults_fall_back_to_the_model(own_server: Any, fault: str) -> None:
    from tests.fakes import CountingChat

    lc = _langchain_cache(own_server, timeout=0.3)
    try:
        model = CountingChat(cache=lc)
        model.invoke("q")
        model.invoke("q")
        assert model.calls == 1
        if fault == "unavailable":
            own_server.fail("unavailable")
        elif fault == "slow":
            own_server.delay(2.0)
        else:
            own_server.stop()
        started = time.monotonic()
        answer = model.invoke("q")  # the store fails: the model answers, no exception
        assert time.monotonic() - started < 1.5
        assert model.calls == 2 and answer.content.endswith("(1).")
        if fault == "stopped":
            own_server.start()
        own_server.clear_faults()

        def hit_again() -> bool:
            calls = model.calls
            model.invoke("q")
            return model.calls == calls

        assert wait_until(hit_again, timeout=15, interval=0.3)
    finally:
        lc.close()


# -- the server as a process --------------------------------------------------------------------
def test_server_runs_as_a_script_and_prints_its_address() -> None:
    from backends.momento import server

    script = Path(server.__file__)
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--cache", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("127.0.0.1:")
        with MomentoBackend(MomentoOptions(cache_name="demo", local=address, timeout=5)) as store:
            store.set("k", b"v")
            assert store.get("k") == b"v"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


# -- real Momento -------------------------------------------------------------------------------
@pytest.mark.skipif(not os.environ.get("MOMENTO_API_KEY"), reason="MOMENTO_API_KEY is not set")
async def test_live_momento_round_trip() -> None:
    # Tests may read the environment; the backend never does.
    options = MomentoOptions(
        cache_name=os.environ.get("MOMENTO_CACHE_NAME", "llmcache-test"),
        api_key=SecretStr(os.environ["MOMENTO_API_KEY"]),
        endpoint=os.environ.get("MOMENTO_ENDPOINT"),
        configuration="laptop",
        create_cache=True,
        default_ttl=60,
    )
    store = MomentoBackend(options, namespace=f"live{uuid.uuid4().hex[:8]}")
    try:
        store.set("k", b"sync")
        assert store.get("k") == b"sync"
        await store.aset("k", b"async")
        assert await store.aget("k") == b"async"
        await store.aclear()
        assert await store.aget("k") is None
    finally:
        await store.aclose()


# -- the embeddings byte store (standard suites: tests/test_langchain_suites.py) --------------
@pytest.mark.langchain
def test_cache_backed_embeddings_survive_a_stopped_server(own_server: Any) -> None:
    from llmcache.adapters.langchain import LangChainByteStore
    from tests.langchain_checks import TEXTS, embedder

    store = LangChainByteStore(local(own_server, timeout=0.3))
    cached, model = embedder(store)
    try:
        vectors = cached.embed_documents(TEXTS)
        own_server.stop()
        assert cached.embed_documents(TEXTS) == vectors  # computed again, nothing raised
        assert model.embedded == 2 * len(TEXTS) and store.stats["errors"] >= 1
    finally:
        store.close()


# -- chat history on Momento lists ---------------------------------------------------------------
@pytest.mark.langchain
async def test_chat_history_trims_on_momento_lists(momento_server: Any) -> None:
    from llmcache.adapters.langchain import LangChainChatHistory

    backend = local(momento_server)
    try:
        history = LangChainChatHistory(backend, "trim", max_messages=2)
        history.add_messages([])
        for text in ("1", "2", "3"):
            await history.aadd_messages([HumanMessage(content=text)])
        assert [m.content for m in history.messages] == ["2", "3"]
        assert momento_server.calls().get("ListPushBack", 0) >= 3
    finally:
        await backend.aclose()


async def test_list_range_many_reads_lists_concurrently(own_server: Any) -> None:
    """The semantic index's bucket reads (``ListsBatch``): the same as ``list_range`` per key, in
    order, ``[]`` for a missing list, fetched side by side rather than one after another."""
    store = local(own_server)
    try:
        keys = [f"bucket-{i}" for i in range(12)]
        for i, key in enumerate(keys[:-2]):
            await store.alist_push(key, [f"{i}-{j}".encode() for j in range(i % 3 + 1)])
        expected = [store.list_range(k) for k in keys]
        assert expected[-1] == [] and expected[0] == [b"0-0"]
        own_server.delay(0.2, rpcs="ListFetch")
        started = time.monotonic()
        assert store.list_range_many(keys) == expected
        assert await store.alist_range_many(keys) == expected
        assert time.monotonic() - started < 2.0  # 24 x 0.2 s in series would be 4.8 s
        assert store.list_range_many([]) == [] and await store.alist_range_many([]) == []
        own_server.clear_faults()
    finally:
        await store.aclose()


def test_list_element_limit_refused_before_the_call(momento_server: Any) -> None:
    from llmcache.adapters.langchain import LangChainChatHistory

    with local(momento_server) as store:
        history = LangChainChatHistory(store, "big")
        history.add_user_message("small")
        before = momento_server.calls().get("ListPushBack", 0)
        with pytest.raises(MomentoError, match="128 KiB") as info:
            history.add_messages([HumanMessage(content="ok"), HumanMessage(content="x" * MiB)])
        assert info.value.code == "ELEMENT_SIZE_LIMIT_EXCEEDED"
        assert momento_server.calls().get("ListPushBack", 0) == before  # nothing half-sent
        assert [m.content for m in history.messages] == ["small"]


@pytest.mark.langchain
def test_chat_history_fault_reaches_the_caller(own_server: Any) -> None:
    from llmcache.adapters.langchain import LangChainChatHistory

    history = LangChainChatHistory(local(own_server, timeout=0.3), "s")
    try:
        history.add_user_message("hi")
        own_server.stop()
        with pytest.raises(BackendUnavailable):
            history.add_ai_message("hello")
        with pytest.raises(BackendUnavailable):
            _ = history.messages
    finally:
        history.close()
