"""``cached(model)``: streaming, per-call controls, the hit flag, single-flight, composition.

Real runnables over a counting fake chat model (``tests.fakes.StreamingChat``); the controls run
on every backend (``store_target``), single-flight on memory and Redis.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from llmcache import LLMCache
from llmcache.adapters.langchain import CachedChatModel, LangChainCache, cached
from llmcache.backends.memory import MemoryBackend
from llmcache.errors import ConfigError
from llmcache.testing import wait_until
from tests.backends.clients import StoreTarget
from tests.fakes import StreamingChat, rich_answer


def _model(**fields: Any) -> StreamingChat:
    return StreamingChat(**fields)


def _wrap(model: StreamingChat, backend: Any = None, **kwargs: Any) -> CachedChatModel:
    cache = LLMCache(backend or MemoryBackend())
    return cached(model, cache=cache, **kwargs)


def _final(chunks: list[Any]) -> AIMessage:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    message = message_chunk_to_message(total)
    assert isinstance(message, AIMessage)
    return message


def _same_answer(a: BaseMessage, b: BaseMessage) -> None:
    assert isinstance(a, AIMessage) and isinstance(b, AIMessage)
    assert a.content == b.content
    assert a.tool_calls == b.tool_calls
    assert a.usage_metadata == b.usage_metadata


def _flag(message: BaseMessage) -> dict[str, Any]:
    flag = message.response_metadata["llmcache"]
    assert set(flag) == {"hit", "age_s", "backend", "key"}
    return dict(flag)


def _controls(**controls: Any) -> dict[str, Any]:
    return {"configurable": {"llmcache": controls}}


# -- streaming ------------------------------------------------------------------------------------
def test_a_streamed_answer_serves_a_later_invoke_and_stream() -> None:
    model = _model()
    chat = _wrap(model)
    live = list(chat.stream("weather?"))
    assert model.calls == 1 and len(live) > 1
    invoked = chat.invoke("weather?")
    replayed = list(chat.stream("weather?"))
    assert model.calls == 1  # both answered from the streamed entry
    assert len(replayed) > 1  # a hit still streams: text pieces, then tool calls and usage
    _same_answer(invoked, _final(live))
    _same_answer(_final(replayed), _final(live))
    _same_answer(invoked, rich_answer(0))
    assert [_flag(m)["hit"] for m in (_final(live), invoked, _final(replayed))] == [
        False,
        True,
        True,
    ]


def test_an_invoked_answer_is_replayed_as_a_stream_of_chunks() -> None:
    model = _model()
    chat = _wrap(model)
    invoked = chat.invoke("weather?")
    replayed = list(chat.stream("weather?"))
    assert model.calls == 1
    assert len(replayed) > 2
    first_call = next(i for i, c in enumerate(replayed) if c.tool_call_chunks)
    assert first_call > 0 and all(c.content for c in replayed[:first_call])  # text first
    assert len([c for c in replayed if c.tool_call_chunks]) > 1  # the call's arguments stream
    assert replayed[-1].usage_metadata and not replayed[-1].tool_call_chunks  # usage last
    _same_answer(_final(replayed), invoked)


async def test_async_stream_and_ainvoke_serve_each_other() -> None:
    model = _model()
    chat = _wrap(model)
    live = [c async for c in chat.astream("weather?")]
    invoked = await chat.ainvoke("weather?")
    replayed = [c async for c in chat.astream("weather?")]
    assert model.calls == 1 and len(replayed) > 1
    _same_answer(invoked, _final(live))
    _same_answer(_final(replayed), _final(live))


def test_a_stream_abandoned_halfway_stores_nothing() -> None:
    model = _model()
    chat = _wrap(model)
    stream = chat.stream("weather?")
    next(stream), next(stream)
    stream.close()  # the consumer stops reading (a UI closed, a client went away)
    del stream
    gc.collect()
    assert chat.llmcache.stats["writes"] == 0
    chat.invoke("weather?")
    assert model.calls == 2  # nothing was served from the half stream


def test_a_stream_that_fails_stores_nothing_and_raises_the_models_error() -> None:
    model = _model(fail=True)
    chat = _wrap(model)
    with pytest.raises(RuntimeError, match="mid-stream"):
        list(chat.stream("weather?"))
    assert chat.llmcache.stats["writes"] == 0


async def test_an_async_stream_cancelled_halfway_stores_nothing() -> None:
    model = _model(delay=0.5)
    chat = _wrap(model)
    got: list[Any] = []

    async def consume() -> None:
        async for chunk in chat.astream("weather?"):
            got.append(chunk)

    task = asyncio.create_task(consume())
    await wait_async(lambda: len(got) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert chat.llmcache.stats["writes"] == 0
    model.delay = 0.0
    await chat.ainvoke("weather?")
    assert model.calls == 2


async def wait_async(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never met"
        await asyncio.sleep(0.01)


# -- per-call controls, on every backend ----------------------------------------------------------
@pytest.fixture
def on_store(store_target: StoreTarget) -> Iterator[tuple[StreamingChat, CachedChatModel]]:
    model = _model()
    chat = _wrap(model, store_target.make(), single_flight=False)
    yield model, chat


def test_no_cache_neither_reads_nor_writes(on_store: Any) -> None:
    model, chat = on_store
    first = chat.invoke("q")
    bypass = chat.invoke("q", config=_controls(no_cache=True))
    assert model.calls == 2 and bypass.content != first.content
    assert _flag(bypass)["hit"] is False
    assert chat.invoke("q").content == first.content  # the first answer is still the entry
    assert model.calls == 2


def test_no_store_reads_but_does_not_write(on_store: Any) -> None:
    model, chat = on_store
    chat.invoke("q", config=_controls(no_store=True))
    chat.invoke("q")
    assert model.calls == 2  # the no_store answer was not kept
    hit = chat.invoke("q", config=_controls(no_store=True))
    assert model.calls == 2 and _flag(hit)["hit"] is True  # but it reads


def test_refresh_calls_the_model_and_replaces_the_entry(on_store: Any) -> None:
    model, chat = on_store
    chat.invoke("q")
    fresh = chat.invoke("q", config=_controls(refresh=True))
    assert model.calls == 2 and _flag(fresh)["hit"] is False
    again = chat.invoke("q")
    assert model.calls == 2 and again.content == fresh.content


def test_ttl_bounds_this_answers_life(on_store: Any) -> None:
    model, chat = on_store
    chat.invoke("q", config=_controls(ttl=1))
    assert _flag(chat.invoke("q"))["hit"] is True
    assert wait_until(lambda: not _flag(chat.invoke("q", config=_controls(no_store=True)))["hit"])
    assert model.calls >= 2


def test_namespace_reads_and_writes_that_namespace_only(on_store: Any) -> None:
    model, chat = on_store
    chat.invoke("q", config=_controls(namespace="tenant-a"))
    assert _flag(chat.invoke("q", config=_controls(namespace="tenant-a")))["hit"] is True
    assert _flag(chat.invoke("q", config=_controls(namespace="tenant-b")))["hit"] is False
    assert _flag(chat.invoke("q"))["hit"] is False  # the default namespace never saw it
    assert model.calls == 3
    chat.llmcache.clear()  # clearing the default namespace leaves tenant-a's entry
    assert _flag(chat.invoke("q", config=_controls(namespace="tenant-a")))["hit"] is True


def test_max_age_refuses_older_hits(on_store: Any) -> None:
    model, chat = on_store
    chat.invoke("q")
    wait_until(lambda: False, timeout=0.3)
    young = chat.invoke("q", config=_controls(max_age=0.1))
    assert model.calls == 2 and _flag(young)["hit"] is False  # too old: the model answered
    hit = chat.invoke("q", config=_controls(max_age=60))
    assert model.calls == 2 and _flag(hit)["hit"] is True
    assert 0 <= _flag(hit)["age_s"] < 60
    assert chat.llmcache.stats["too_old"] == 1


async def test_controls_apply_to_async_calls_and_streams(on_store: Any) -> None:
    model, chat = on_store
    await chat.ainvoke("q", config=_controls(no_store=True))
    [c async for c in chat.astream("q", config=_controls(no_store=True))]
    assert model.calls == 2
    [c async for c in chat.astream("q", config=_controls(namespace="streams"))]
    hit = await chat.ainvoke("q", config=_controls(namespace="streams"))
    assert model.calls == 3 and _flag(hit)["hit"] is True


@pytest.mark.parametrize(
    ("controls", "named"),
    [
        ({"nocache": True}, "'nocache'"),
        ({"ttl": -1}, "ttl=-1"),
        ({"ttl": True}, "ttl=True"),
        ({"refresh": "yes"}, "refresh='yes'"),
        ({"namespace": "a b"}, "namespace"),
        ({"max_age": float("nan")}, "max_age"),
    ],
)
def test_a_bad_control_is_an_error_naming_it(controls: dict[str, Any], named: str) -> None:
    chat = _wrap(_model())
    with pytest.raises(ConfigError, match="no_cache, no_store, refresh|" + named) as err:
        chat.invoke("q", config=_controls(**controls))
    assert named in str(err.value)


# -- the hit flag ---------------------------------------------------------------------------------
async def test_every_answer_carries_the_hit_flag() -> None:
    chat = _wrap(_model())
    miss = chat.invoke("q")
    assert _flag(miss) == {
        "hit": False,
        "age_s": None,
        "backend": "memory",
        "key": _flag(miss)["key"],
    }
    assert _flag(miss)["key"] and len(_flag(miss)["key"]) == 16
    for answer in (
        chat.invoke("q"),
        await chat.ainvoke("q"),
        _final(list(chat.stream("q"))),
        _final([c async for c in chat.astream("q")]),
    ):
        flag = _flag(answer)
        assert flag["hit"] is True and flag["key"] == _flag(miss)["key"]
        assert flag["age_s"] is not None and flag["age_s"] >= 0
    assert _flag(_final([c async for c in chat.astream("other")]))["hit"] is False


def test_the_hit_flag_is_never_stored() -> None:
    cache = LLMCache(MemoryBackend())
    chat = cached(_model(), cache=cache)
    chat.invoke("q")
    list(chat.stream("other"))
    keys = list(cache.backend.iter_keys())  # type: ignore[attr-defined]
    assert len(keys) == 2
    for key in keys:
        stored = cache.codec.decode(key, cache.backend.get(key) or b"")
        assert "llmcache" not in str(stored)
    # the global cache, reading the same entries, returns what the model answered, unmarked
    model = _model()
    set_llm_cache(LangChainCache(cache))
    try:
        answers = [model.invoke("q"), model.invoke("other")]
    finally:
        set_llm_cache(None)
    assert model.calls == 0
    assert all("llmcache" not in a.response_metadata for a in answers)


def test_the_global_cache_marks_hits_only_when_asked() -> None:
    cache = LLMCache(MemoryBackend())
    model = _model()
    for annotate, expect in ((False, None), (True, True)):
        set_llm_cache(LangChainCache(cache, annotate_hits=annotate))
        try:
            model.invoke("q")
            hit = model.invoke("q")
        finally:
            set_llm_cache(None)
        assert (hit.response_metadata.get("llmcache") or {}).get("hit") is expect
    assert model.calls == 1


def test_wrapper_and_global_cache_share_entries() -> None:
    cache = LLMCache(MemoryBackend())
    model = _model()
    set_llm_cache(LangChainCache(cache))
    try:
        model.invoke("q")
    finally:
        set_llm_cache(None)
    hit = cached(model, cache=cache).invoke("q")
    assert model.calls == 1 and _flag(hit)["hit"] is True


def test_the_wrapped_model_never_consults_the_global_cache() -> None:
    other = LangChainCache(LLMCache(MemoryBackend()))
    model = _model()
    chat = _wrap(model)
    set_llm_cache(other)
    try:
        chat.invoke("q")
        chat.invoke("q", config=_controls(refresh=True))
    finally:
        set_llm_cache(None)
    assert model.calls == 2  # refresh reached the model: no other cache answered it
    assert other.cache.stats["lookups"] == 0


# -- single-flight --------------------------------------------------------------------------------
def _flight_backends() -> list[Any]:
    return [
        pytest.param("memory", id="memory"),
        pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    ]


@pytest.fixture(params=_flight_backends())
def flight_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "memory":
        yield MemoryBackend()
        return
    from llmcache.registry import create_backend

    server = request.getfixturevalue("standalone")
    backend = create_backend(server.url, namespace=f"sf{uuid.uuid4().hex[:12]}")
    yield backend
    backend.close()


async def test_fifty_concurrent_identical_ainvokes_make_one_model_call(flight_store: Any) -> None:
    model = _model(delay=0.3)
    chat = _wrap(model, flight_store)
    answers = await asyncio.gather(*(chat.ainvoke("same question") for _ in range(50)))
    assert model.calls == 1
    assert {a.content for a in answers} == {rich_answer(0).content}
    assert sorted(_flag(a)["hit"] for a in answers) == [False] + [True] * 49


def test_eight_threads_of_identical_invokes_make_one_model_call(flight_store: Any) -> None:
    model = _model(delay=0.3)
    chat = _wrap(model, flight_store)
    answers: list[Any] = []
    start = threading.Barrier(8)

    def call() -> None:
        start.wait()
        answers.append(chat.invoke("same question"))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(answers) == 8 and model.calls == 1
    assert {a.content for a in answers} == {rich_answer(0).content}


async def test_without_single_flight_each_concurrent_miss_calls_the_model() -> None:
    model = _model(delay=0.2)
    chat = _wrap(model, single_flight=False)
    await asyncio.gather(*(chat.ainvoke("same question") for _ in range(5)))
    assert model.calls == 5


async def test_a_failing_leader_does_not_fail_or_block_the_others() -> None:
    model = _model(delay=0.2, fail=True)
    chat = _wrap(model, lease_ttl=5.0)
    start = time.monotonic()
    results = await asyncio.gather(
        *(chat.ainvoke("same question") for _ in range(5)), return_exceptions=True
    )
    assert time.monotonic() - start < 5.0  # nobody waited out the lease
    # Every caller got the model's own error from its own call (the model always fails here),
    # none waited for a lease: each waiter retried once the leader failed.
    assert all(isinstance(r, RuntimeError) for r in results)
    assert model.calls == 5


# -- composition ----------------------------------------------------------------------------------
def test_bound_tools_reach_the_model_and_the_key() -> None:
    class get_weather(BaseModel):  # the tool's name, as the model calls it
        """Weather for a city."""

        city: str
        unit: str

    class get_time(BaseModel):
        """Time in a city."""

        city: str

    model = _model()
    chat = _wrap(model)
    chat.bind_tools([get_weather]).invoke("q")
    hit = chat.bind_tools([get_weather]).invoke("q")
    assert model.calls == 1 and _flag(hit)["hit"] is True
    chat.bind_tools([get_time]).invoke("q")  # other tools: another request
    assert model.calls == 2
    weather = chat.with_structured_output(get_weather).invoke("weather in Paris?")
    assert isinstance(weather, get_weather) and weather.city == "Paris"


def test_a_chain_with_the_wrapper_is_cached() -> None:
    model = _model()
    chain = ChatPromptTemplate.from_messages([("human", "Tell me about {topic}")]) | _wrap(model)
    first = chain.invoke({"topic": "Paris"})
    again = chain.invoke({"topic": "Paris"})
    chain.invoke({"topic": "Rome"})
    assert model.calls == 2 and again.content == first.content
    assert chain.batch([{"topic": "Paris"}, {"topic": "Rome"}])[1].response_metadata["llmcache"][
        "hit"
    ]


# -- two tiers through the public constructors ---------------------------------------------------
def test_l1_from_url_keyword_and_from_settings(
    monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    from llmcache.backends.tiered import TieredBackend

    chat = cached(_model(), "memory://", l1={"max_entries": 10, "ttl": 5})
    chat.invoke("q")
    assert isinstance(chat.llmcache.backend, TieredBackend)
    assert _flag(chat.invoke("q"))["backend"] == "memory+l1"
    with pytest.raises(ConfigError, match="max_entrie"):
        cached(_model(), "memory://", l1={"max_entrie": 10})
    monkeypatch.setenv("LLMCACHE_URL", "memory://")
    monkeypatch.setenv("LLMCACHE_L1__TTL", "2")
    assert isinstance(LLMCache.from_settings().backend, TieredBackend)
    monkeypatch.delenv("LLMCACHE_L1__TTL")
    assert not isinstance(LLMCache.from_settings().backend, TieredBackend)


# -- replayed chunks add up to the stored message, whatever it holds -------------------------------
_JSON_ARGS = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=4,
)
_CALLS = st.lists(
    st.builds(
        lambda name, args, i: {"name": name, "args": args, "id": f"call_{i}", "type": "tool_call"},
        st.text(min_size=1, max_size=10),
        _JSON_ARGS,
        st.integers(0, 10**6),
    ),
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200), calls=_CALLS, usage=st.booleans())
def test_a_replayed_stream_adds_up_to_the_stored_message(
    text: str, calls: list[dict[str, Any]], usage: bool
) -> None:
    from llmcache.adapters._chunks import assemble, replay

    message = AIMessage(
        content=text,
        tool_calls=calls,
        usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
        if usage
        else None,
        response_metadata={"model_name": "m", "finish_reason": "stop"},
        id="msg-1",
    )
    chunks = [c.message for c in replay(message, {"llmcache": {"hit": True}})]
    if text or calls:
        assert len(chunks) > 1  # a UI sees a stream, not one block
    rebuilt = assemble(chunks)
    assert rebuilt is not None
    again = rebuilt.message
    assert isinstance(again, AIMessage)
    assert again.content == message.content
    assert again.tool_calls == message.tool_calls
    assert again.usage_metadata == message.usage_metadata
    assert again.response_metadata["llmcache"] == {"hit": True}
    assert again.response_metadata["finish_reason"] == "stop"
