"""End-to-end checks of the LangChain adapters, run on every backend by test_langchain_suites.py."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from langchain_classic.embeddings import CacheBackedEmbeddings
from langchain_core._api import LangChainDeprecationWarning
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from llmcache.adapters.langchain import LangChainByteStore, LangChainChatHistory
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


# -- chat history -------------------------------------------------------------------------------
MakeHistory = Callable[[str], LangChainChatHistory]


def history_chain(make_history: MakeHistory) -> tuple[Any, list[list[BaseMessage]]]:
    """A prompt with a history placeholder and a fake chat model, wrapped in
    RunnableWithMessageHistory; also returns the prompts the model saw."""
    seen: list[list[BaseMessage]] = []

    def record(prompt: PromptValue) -> PromptValue:
        seen.append(prompt.to_messages())
        return prompt

    model = FakeListChatModel(responses=["Hi Bob!", "Your name is Bob.", "Hello stranger."])
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    with warnings.catch_warnings():
        # langchain-core 1.x deprecates RunnableWithMessageHistory in favour of LangGraph's
        # persistence; it is still the standard consumer of BaseChatMessageHistory.
        warnings.filterwarnings(
            "ignore", "RunnableWithMessageHistory is deprecated", LangChainDeprecationWarning
        )
        chain = RunnableWithMessageHistory(
            prompt | RunnableLambda(record) | model,
            make_history,
            input_messages_key="question",
            history_messages_key="history",
        )
    return chain, seen


def _config(session: str) -> Any:
    return {"configurable": {"session_id": session}}


EXPECTED = [
    ("human", "I am Bob"),
    ("ai", "Hi Bob!"),
    ("human", "Who am I?"),
    ("ai", "Your name is Bob."),
]


def _check_seen(seen: list[list[BaseMessage]]) -> None:
    assert [m.content for m in seen[1]] == ["Be brief.", "I am Bob", "Hi Bob!", "Who am I?"]
    assert [m.content for m in seen[2]] == ["Be brief.", "Hi"]  # another session: no history


def check_history_with_runnable(make_history: MakeHistory, session: str) -> None:
    """Two turns remember the first; another session starts empty; clear forgets."""
    chain, seen = history_chain(make_history)
    assert chain.invoke({"question": "I am Bob"}, config=_config(session)).content == "Hi Bob!"
    answer = chain.invoke({"question": "Who am I?"}, config=_config(session))
    assert answer.content == "Your name is Bob."
    chain.invoke({"question": "Hi"}, config=_config(session + "-other"))
    _check_seen(seen)
    history = make_history(session)
    assert [(m.type, m.content) for m in history.messages] == EXPECTED
    history.clear()
    make_history(session + "-other").clear()
    assert history.messages == []


async def acheck_history_with_runnable(make_history: MakeHistory, session: str) -> None:
    """:func:`check_history_with_runnable` through ``ainvoke`` and the async history methods."""
    chain, seen = history_chain(make_history)
    first = await chain.ainvoke({"question": "I am Bob"}, config=_config(session))
    assert first.content == "Hi Bob!"
    await chain.ainvoke({"question": "Who am I?"}, config=_config(session))
    await chain.ainvoke({"question": "Hi"}, config=_config(session + "-other"))
    _check_seen(seen)
    history = make_history(session)
    assert [(m.type, m.content) for m in await history.aget_messages()] == EXPECTED
    await history.aclear()
    await make_history(session + "-other").aclear()
    assert await history.aget_messages() == []
