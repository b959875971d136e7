"""A store written by someone else: whatever bytes an entry holds, the caller's call succeeds.

Property tests (hypothesis) forge well-formed envelopes with arbitrary bodies, run a real
LangChain model through the cache, and check that the call never raises, that an answer is
either the model's own (a miss) or a valid message, and that decoding is bounded in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import json
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.language_models import FakeListLLM
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, Generation

from llmcache import LLMCache
from llmcache.adapters.langchain import LangChainCache
from llmcache.backends.memory import MemoryBackend
from llmcache.codec import MAGIC, Codec, new_encryption_key, written_at
from llmcache.errors import CodecError
from tests.fakes import CountingChat, rich_answer

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
MESSAGE_TYPES = ["ai", "AIMessageChunk", "human", "system", "tool", "chat", "function", "x", 3]
GEN_TYPES = ["ChatGeneration", "ChatGenerationChunk", "Generation", "GenerationChunk", "y", None]


@st.composite
def forged_messages(draw: st.DrawFn) -> Any:
    fields: dict[str, Any] = {"type": draw(st.sampled_from(MESSAGE_TYPES))}
    for name in ("content", "tool_calls", "additional_kwargs", "response_metadata",
                 "usage_metadata", "invalid_tool_calls", "tool_call_id", "role", "name", "id"):
        if draw(st.booleans()):
            fields[name] = draw(
                json_values | st.just([{"name": "f", "args": "not a dict", "id": "1"}])
                | st.just([{"type": "text", "text": 3}]) | st.just([[]])
            )
    return fields


@st.composite
def forged_generations(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = {"t": draw(st.sampled_from(GEN_TYPES))}
    if draw(st.booleans()):
        item["m"] = draw(forged_messages() | json_values)
    if draw(st.booleans()):
        item["text"] = draw(json_values)
    if draw(st.booleans()):
        item["info"] = draw(json_values)
    return item


forged_answers = (
    json_values
    | st.lists(forged_generations(), max_size=3)
    | st.lists(st.lists(forged_generations(), max_size=2), max_size=2)
)


def _chat_with_one_entry() -> tuple[CountingChat, LangChainCache, MemoryBackend, str]:
    backend = MemoryBackend()
    cache = LangChainCache(LLMCache(backend))
    model = CountingChat(cache=cache)
    model.invoke("weather?")
    (key,) = list(backend.iter_keys())
    return model, cache, backend, key


def _envelope(key: str, payload: Any) -> bytes:
    """A well-formed envelope for ``key`` around any JSON (stdlib json: big ints, surrogates)."""
    header = Codec(compress_min_bytes=None).encode(key, [])[:12]
    return header + json.dumps(payload).encode()


def _forge(backend: MemoryBackend, key: str, answer: Any) -> None:
    backend.set(key, _envelope(key, [answer]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=forged_answers)
def test_a_forged_chat_entry_is_a_valid_answer_or_a_miss(answer: Any) -> None:
    model, cache, backend, key = _chat_with_one_entry()
    _forge(backend, key, answer)
    calls = model.calls
    result = model.invoke("weather?")  # must not raise, whatever the entry holds
    assert isinstance(result, BaseMessage)
    if model.calls == calls:  # served from the cache: a model's message, decodable
        assert isinstance(result, AIMessage)
        assert isinstance(result.content, str | list)
    else:
        assert cache.stats["decode_errors"] >= 1


@settings(max_examples=60, deadline=None)
@given(answer=forged_answers)
def test_a_forged_entry_is_a_miss_or_valid_on_the_async_path(answer: Any) -> None:
    model, _, backend, key = _chat_with_one_entry()
    _forge(backend, key, answer)
    result = asyncio.run(model.ainvoke("weather?"))
    assert isinstance(result, BaseMessage)


@settings(max_examples=150, deadline=None)
@given(answer=forged_answers)
def test_a_forged_llm_entry_never_raises(answer: Any) -> None:
    backend = MemoryBackend()
    llm = FakeListLLM(responses=["real"], cache=LangChainCache(LLMCache(backend)))
    llm.invoke("q")
    (key,) = list(backend.iter_keys())
    _forge(backend, key, answer)
    assert isinstance(llm.invoke("q"), str)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64), key=st.text(max_size=10))
def test_decode_of_any_bytes_is_a_value_or_a_codec_error(data: bytes, key: str) -> None:
    codec = Codec(max_decoded_bytes=1024)
    for flags in (None, 0, 1, 4, 5, 6, 7):
        blob = data if flags is None else MAGIC + bytes([1, flags]) + data
        with contextlib.suppress(CodecError):  # anything else escaping fails the test
            codec.decode(key, blob)
        stamp = written_at(blob)  # never raises; a time or None
        assert stamp is None or stamp >= 0


@settings(max_examples=200, deadline=None)
@given(payload=json_values, at=st.floats(min_value=0, max_value=4e9), encrypted=st.booleans())
def test_a_value_carries_its_write_time(payload: Any, at: float, encrypted: bool) -> None:
    codec = Codec(encryption_keys=[new_encryption_key()] if encrypted else ())
    try:
        data = codec.encode("k", payload, written_at=at)
    except CodecError:  # not JSON (an int beyond 64 bits): refused, nothing to read back
        return
    assert codec.decode("k", data) == orjson.loads(orjson.dumps(payload))  # inf → null, as JSON
    assert written_at(data) == pytest.approx(int(at * 1e3) / 1e3)


def test_a_forged_write_time_under_encryption_fails_authentication() -> None:
    codec = Codec(encryption_keys=[new_encryption_key()])
    data = bytearray(codec.encode("k", ["x"], written_at=1000.0))
    data[12:20] = (2**40).to_bytes(8, "big")  # a younger age: would pass a max_age check
    with pytest.raises(CodecError):
        codec.decode("k", bytes(data))


def test_a_decompression_bomb_is_a_miss_not_memory() -> None:
    bomb = zlib.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", 9)  # 64 MiB in ~65 KB
    assert len(bomb) < 100_000
    cache = LLMCache(MemoryBackend())
    key = cache.policy.decide("p", "m").key
    assert key is not None
    header = Codec().encode(key, [])[:12]
    cache.backend.set(key, header[:3] + bytes([1]) + header[4:] + bomb)
    assert cache.lookup("p", "m") is None  # default cap 32 MiB: refused, counted
    assert cache.stats["decode_errors"] == 1
    small = Codec(max_decoded_bytes=1000)
    with pytest.raises(CodecError, match="max_decoded_bytes"):
        small.decode(key, header[:3] + bytes([1]) + header[4:] + zlib.compress(b"1" * 5000))


@pytest.mark.parametrize(
    "info",
    [
        {"cost": decimal.Decimal("0.1")},
        {"tags": {"a", "b"}},
        {"raw": b"\x00\x01"},
        {"big": 2**80},
        {"text": "\ud83d"},
    ],
    ids=["decimal", "set", "bytes", "bigint", "surrogate"],
)
def test_an_answer_that_cannot_be_stored_is_counted_never_raised(info: dict[str, Any]) -> None:
    cache = LangChainCache(LLMCache(MemoryBackend()))
    generation = ChatGeneration(message=AIMessage(content="ok"), generation_info=info)
    cache.update("p", "m", [generation])  # must not raise
    assert cache.lookup("p", "m") is None
    assert cache.stats["unstorable"] == 1
    cache.update("p", "m", [Generation(text="lone \ud83d surrogate")])
    assert cache.stats["unstorable"] == 2
    assert cache.stats["errors"] == 0


def test_editing_a_hit_in_place_does_not_change_the_next_hit() -> None:
    cache = LangChainCache(LLMCache(MemoryBackend()))
    cache.update("p", "m", [ChatGeneration(message=rich_answer(1), generation_info={"a": [1]})])
    first = cache.lookup("p", "m")
    assert first is not None
    message = first[0].message  # type: ignore[attr-defined]
    message.tool_calls[0]["args"]["city"] = "Lyon"
    message.response_metadata["model_name"] = "edited"
    message.additional_kwargs["refusal"] = "edited"
    first[0].generation_info["a"].append(2)  # type: ignore[index]
    second = cache.lookup("p", "m")
    assert second is not None
    again = second[0].message  # type: ignore[attr-defined]
    assert again.tool_calls[0]["args"]["city"] == "Paris"
    assert again.response_metadata["model_name"] == "rich-1"
    assert again.additional_kwargs["refusal"] is None
    assert second[0].generation_info == {"a": [1]}


@settings(max_examples=150, deadline=None)
@given(elements=st.lists(forged_messages() | json_values, min_size=1, max_size=4))
def test_forged_history_elements_are_skipped_and_counted(elements: list[Any]) -> None:
    from langchain_core.messages import HumanMessage

    from llmcache.adapters.langchain import LangChainChatHistory

    backend = MemoryBackend()
    history = LangChainChatHistory(backend, "s")
    history.add_messages([HumanMessage("hi")])
    backend.list_push("s", [json.dumps(e).encode() for e in elements] + [b"\xff not json"])
    messages = history.messages  # must not raise, whatever the list holds
    assert messages[0].content == "hi"
    assert len(messages) + history.skipped_messages == len(elements) + 2
    assert all(isinstance(m, BaseMessage) for m in messages)
    assert asyncio.run(history.aget_messages())[0].content == "hi"


def test_an_empty_answer_is_not_stored() -> None:
    backend = MemoryBackend()
    cache = LangChainCache(LLMCache(backend))
    cache.update("p", "m", [])
    assert list(backend.iter_keys()) == [] and cache.lookup("p", "m") is None


def test_a_chat_message_with_a_lone_surrogate_is_kept_in_history() -> None:
    from langchain_core.messages import HumanMessage

    from llmcache.adapters.langchain import LangChainChatHistory

    history = LangChainChatHistory(MemoryBackend(), "s")
    history.add_messages([HumanMessage("half \ud83d emoji"), HumanMessage("next")])
    assert [m.content for m in history.messages] == ["half \ud83d emoji", "next"]
    assert history.skipped_messages == 0
