"""LangChainChatHistory: trimming, tool calls, TTL, faults.

The RunnableWithMessageHistory checks run on every backend in tests/test_langchain_suites.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from llmcache import Settings
from llmcache.adapters.langchain import LangChainChatHistory
from llmcache.backends.base import Backend
from llmcache.backends.disk import DiskBackend, DiskOptions
from llmcache.backends.memory import MemoryBackend
from llmcache.errors import BackendError, BackendUnavailable, CodecError, ConfigError
from tests.fakes import rich_answer


@pytest.fixture(params=["memory", "disk"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    store: Backend = (
        MemoryBackend(namespace="h")
        if request.param == "memory"
        else DiskBackend(DiskOptions(path=tmp_path / "h"))
    )
    yield store
    store.close()


def conversation() -> list:  # type: ignore[type-arg]
    answer = rich_answer(1)  # tool calls, usage, response metadata, id
    return [
        SystemMessage(content="You know the weather."),
        HumanMessage(content=[{"type": "text", "text": "Weather in Paris?"}], id="h1"),
        answer,
        ToolMessage(content="18 C", tool_call_id=answer.tool_calls[0]["id"], name="get_weather"),
        AIMessage(content="It is 18 C.", additional_kwargs={"refusal": None}),
    ]


def test_messages_with_tool_calls_round_trip(backend: Backend) -> None:
    history = LangChainChatHistory(backend, "tools")
    history.add_messages(conversation()[:3])
    history.add_message(conversation()[3])
    history.add_messages(conversation()[4:])
    assert history.messages == conversation()
    assert history.messages[2].tool_calls == rich_answer(1).tool_calls  # type: ignore[attr-defined]


async def test_max_messages_trims_the_oldest(backend: Backend) -> None:
    history = LangChainChatHistory(backend, "trim", max_messages=3)
    await history.aadd_messages(conversation()[:2])
    await history.aadd_messages(conversation()[2:])
    assert await history.aget_messages() == conversation()[-3:]
    history.add_messages([HumanMessage(content="and tomorrow?")])
    assert [m.type for m in history.messages] == ["tool", "ai", "human"]
    with pytest.raises(ConfigError, match="max_messages"):
        LangChainChatHistory(backend, "x", max_messages=0)


async def test_ttl_expires_an_idle_session(backend: Backend) -> None:
    history = LangChainChatHistory(backend, "ttl", ttl=0.3)
    history.add_messages([HumanMessage(content="hi")])
    await asyncio.sleep(0.2)
    await history.aadd_messages([AIMessage(content="hello")])  # renews the session
    await asyncio.sleep(0.2)
    assert len(history.messages) == 2
    await asyncio.sleep(0.3)
    assert history.messages == []


def test_sessions_are_apart_and_clear_forgets_one(backend: Backend) -> None:
    a, b = LangChainChatHistory(backend, "a"), LangChainChatHistory(backend, "b")
    a.add_user_message("from a")
    b.add_ai_message("from b")
    a.clear()
    assert a.messages == [] and [m.content for m in b.messages] == ["from b"]


def test_a_type_outside_the_allowlist_writes_nothing(backend: Backend) -> None:
    history = LangChainChatHistory(backend, "s")
    with pytest.raises(CodecError, match="remove"):
        history.add_messages([HumanMessage(content="ok"), RemoveMessage(id="x")])
    assert history.messages == []


def test_an_element_that_does_not_decode_is_skipped(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    history = LangChainChatHistory(backend, "s")
    history.add_user_message("kept")
    backend.list_push("s", [b"not json", b'{"type": "lc_injection", "id": ["os", "system"]}'])
    history.add_ai_message("kept too")
    with caplog.at_level(logging.WARNING, logger="llmcache"):
        assert [m.content for m in history.messages] == ["kept", "kept too"]
    assert len(caplog.records) == 2


class DownBackend(MemoryBackend):
    def list_push(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise BackendUnavailable("store is down (test)")

    def list_range(self, key: str) -> list[bytes]:
        raise BackendUnavailable("store is down (test)")


async def test_a_store_fault_reaches_the_caller() -> None:
    history = LangChainChatHistory(DownBackend(), "s")
    with pytest.raises(BackendError, match="down"):
        history.add_user_message("hi")
    with pytest.raises(BackendError, match="down"):
        _ = history.messages
    with pytest.raises(BackendError, match="down"):
        await history.aget_messages()


def test_from_url_and_settings(tmp_path: Path) -> None:
    history = LangChainChatHistory.from_url("memory://", session_id="s", max_messages=5)
    assert (history.backend.namespace, history.max_messages) == ("chat-history", 5)
    settings = Settings(url=f"disk://{tmp_path}", namespace="app", ttl=60)
    history = LangChainChatHistory.from_settings(settings, session_id="s")
    assert (history.backend.namespace, history.ttl) == ("app.history", 60)
    history.add_user_message("persisted")
    history.close()
    again = LangChainChatHistory.from_settings(settings, session_id="s")
    assert [m.content for m in again.messages] == ["persisted"]
    again.close()
    with pytest.raises(ConfigError, match="session_id"):
        LangChainChatHistory(MemoryBackend(), "")
