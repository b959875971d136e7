"""LangGraphCache: LangGraph's node cache on every backend, with no pickle anywhere.

The installed langgraph (1.2) and langgraph-checkpoint (4.3) ship no test suites, so there is no
standard suite to run as tests/test_langchain_suites.py does for LangChain. Instead:

- ``TestPortedContract`` ports the behavioural checks of langgraph's own cache tests
  (``libs/checkpoint/tests/test_cache.py`` and ``test_redis_cache.py`` upstream: signatures,
  batches, TTL, namespace isolation, clear, empty calls, corrupt entries, odd namespaces, large
  values, async) as our contract, on every backend (``store_target``);
- real ``StateGraph`` runs with ``CachePolicy`` nodes check what a user notices: the node runs
  once per distinct input, ``clear`` and TTL work, values come back equal, a planted pickle is
  never unpickled, store faults never fail the run;
- hypothesis forges what a shared store may hold: random bytes, forged envelopes and payloads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import enum
import inspect
import logging
import operator
import pickle
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.cache.base import BaseCache, FullKey, Namespace
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import CachePolicy, Send
from pydantic import BaseModel

from llmcache import CircuitBreaker, Settings
from llmcache.adapters.langgraph import (
    CACHE_NS_WRITES,
    LangGraphCache,
    ValueCodec,
    namespace_name,
    node_writes,
)
from llmcache.backends.base import check_namespace
from llmcache.backends.memory import MemoryBackend
from llmcache.codec import Codec, new_encryption_key
from llmcache.errors import BackendError, BackendUnavailable, CodecError, ConfigError
from tests.backends.clients import REDIS_RELAXED, StoreTarget, new_namespace

pytestmark = [pytest.mark.langchain, pytest.mark.langgraph]


# -- graphs ----------------------------------------------------------------------------------------
class State(TypedDict, total=False):
    x: int
    out: Any


class TrailState(State, total=False):
    trail: Annotated[list[str], operator.add]


class ChatState(State, total=False):
    messages: Annotated[list[AnyMessage], add_messages]


class Answer(BaseModel):
    text: str
    score: float
    tags: list[str] = []


@dataclasses.dataclass
class Point:
    x: int
    label: str
    extra: tuple[int, ...] = ()


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Counter:
    """A node that counts its runs and returns ``make(state)``."""

    def __init__(self, make: Any = None) -> None:
        self.calls = 0
        self.make = make or (lambda s: {"out": s["x"] * 2})

    def __call__(self, state: State) -> dict[str, Any]:
        self.calls += 1
        result: dict[str, Any] = self.make(state)
        return result


def one_node_graph(
    cache: BaseCache[Any], node: Counter, ttl: int | None = None, state: type = State
) -> Any:
    builder = StateGraph(state)
    builder.add_node("work", node, cache_policy=CachePolicy(ttl=ttl))
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder.compile(cache=cache)


class Recording(LangGraphCache):
    """Remembers the keys LangGraph writes (to plant values under them)."""

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        self.seen = [*getattr(self, "seen", []), *pairs]
        super().set(pairs)

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        self.seen = [*getattr(self, "seen", []), *pairs]
        await super().aset(pairs)


@pytest.fixture
def cache(store_target: StoreTarget) -> Iterator[Recording]:
    cache = Recording(store_target.make())
    yield cache
    cache.clear()
    cache.close()


# -- the node cache in a real graph, on every backend ---------------------------------------------
def test_a_cached_node_runs_once_per_distinct_input(cache: Recording) -> None:
    node = Counter()
    graph = one_node_graph(cache, node, ttl=60)
    assert graph.invoke({"x": 2}) == {"x": 2, "out": 4}
    assert graph.invoke({"x": 2}) == {"x": 2, "out": 4}
    assert node.calls == 1
    updates = graph.invoke({"x": 2}, stream_mode="updates")
    assert updates == [{"work": {"out": 4}, "__metadata__": {"cached": True}}]
    assert graph.invoke({"x": 3}) == {"x": 3, "out": 6}
    assert node.calls == 2
    assert cache.stats["hits"] == 2 and cache.stats["writes"] == 2


async def test_a_cached_node_runs_once_per_distinct_input_async(cache: Recording) -> None:
    node = Counter()
    graph = one_node_graph(cache, node, ttl=60)
    assert await graph.ainvoke({"x": 2}) == {"x": 2, "out": 4}
    assert await graph.ainvoke({"x": 2}) == {"x": 2, "out": 4}
    assert node.calls == 1
    assert await graph.ainvoke({"x": 5}) == {"x": 5, "out": 10}
    assert node.calls == 2
    # What one side wrote, the other reads.
    assert graph.invoke({"x": 5}) == {"x": 5, "out": 10}
    assert node.calls == 2


@pytest.mark.redis
def test_a_graph_compiled_with_from_url_on_redis_runs_the_node_once(standalone: Any) -> None:
    """A LangGraph graph with a cached node, compiled with ``LangGraphCache.from_url(...)`` on
    Redis, runs the node once for repeated input."""
    cache = LangGraphCache.from_url(standalone.url, namespace=new_namespace(), **REDIS_RELAXED)
    node = Counter()
    graph = one_node_graph(cache, node)
    try:
        for _ in range(3):
            assert graph.invoke({"x": 7}) == {"x": 7, "out": 14}
        assert node.calls == 1
        assert cache.stats["hits"] == 2
    finally:
        cache.clear()
        cache.close()


def two_node_graph(cache: BaseCache[Any], a: Counter, b: Counter) -> Any:
    builder = StateGraph(TrailState)
    builder.add_node("a", a, cache_policy=CachePolicy())
    builder.add_node("b", b, cache_policy=CachePolicy())
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile(cache=cache)


def _node_namespace(cache: Recording, node: str) -> Namespace:
    return next(ns for ns, _ in cache.seen if ns[-1] == node)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_clear_namespaces_clears_only_those(cache: Recording, asynchronous: bool) -> None:
    a = Counter(lambda s: {"trail": ["a"]})
    b = Counter(lambda s: {"trail": ["b"]})
    graph = two_node_graph(cache, a, b)
    assert graph.invoke({"x": 1}) == {"x": 1, "trail": ["a", "b"]}
    ns_a = _node_namespace(cache, "a")
    if asynchronous:
        await cache.aclear([ns_a])
    else:
        cache.clear([ns_a])
    assert graph.invoke({"x": 1}) == {"x": 1, "trail": ["a", "b"]}
    assert (a.calls, b.calls) == (2, 1)  # a ran again; b (same input) was still cached
    if asynchronous:
        await cache.aclear()
    else:
        cache.clear()
    graph.invoke({"x": 1})
    assert (a.calls, b.calls) == (3, 2)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_clear_all_reaches_what_another_process_wrote(
    store_target: StoreTarget, asynchronous: bool
) -> None:
    """``clear()`` clears every namespace written through the same store and namespace, by
    any instance (another process): the registry lives in the store, not in the process."""
    base = new_namespace()
    writer_backend = store_target.make(base)
    # Another process has its own connections; memory has no store outside the instance.
    clearer_backend = store_target.make(base) if store_target.shared else writer_backend
    writer, clearer = LangGraphCache(writer_backend), LangGraphCache(clearer_backend)
    a, b = Counter(lambda s: {"trail": ["a"]}), Counter(lambda s: {"trail": ["b"]})
    graph = two_node_graph(writer, a, b)
    graph.invoke({"x": 1})
    # Neighbours the clear must not touch: the base namespace's own keys (an LLM cache there),
    # and a LangGraph cache on another namespace of the same store.
    writer_backend.set("llm-entry", b"keep")
    other = LangGraphCache(writer_backend.in_namespace(new_namespace()))
    other_node = Counter()
    one_node_graph(other, other_node).invoke({"x": 1})
    if asynchronous:
        await clearer.aclear()
    else:
        clearer.clear()
    seen_after(writer_backend)
    graph.invoke({"x": 1})
    assert (a.calls, b.calls) == (2, 2)
    assert writer_backend.get("llm-entry") == b"keep"
    one_node_graph(other, other_node).invoke({"x": 1})
    assert other_node.calls == 1
    # Written again after the clear: registered again, so the next clear finds it.
    clearer.clear()
    seen_after(writer_backend)
    graph.invoke({"x": 1})
    assert (a.calls, b.calls) == (3, 3)
    other.clear()


def seen_after(backend: Any) -> None:
    """Wait until another instance's clear is visible to ``backend``: at once, except on
    Momento, whose namespace generation each process re-reads every ``generation_refresh`` s."""
    time.sleep(getattr(backend.options, "generation_refresh", 0) * 1.2)


def test_ttl_expires_entries(cache: Recording) -> None:
    node = Counter()
    graph = one_node_graph(cache, node, ttl=1)
    graph.invoke({"x": 1})
    graph.invoke({"x": 1})
    assert node.calls == 1
    time.sleep(1.3)
    graph.invoke({"x": 1})
    assert node.calls == 2


def test_a_policy_without_ttl_uses_the_caches_ttl(store_target: StoreTarget) -> None:
    cache = LangGraphCache(store_target.make(), ttl=1)
    node = Counter()
    graph = one_node_graph(cache, node)  # CachePolicy(ttl=None): LangGraph's "no expiry"
    graph.invoke({"x": 1})
    graph.invoke({"x": 1})
    assert node.calls == 1
    time.sleep(1.3)
    graph.invoke({"x": 1})
    assert node.calls == 2
    cache.clear()


RICH_OUTPUT: dict[str, Any] = {
    "messages": [
        HumanMessage(content="what is 2+2?", id="h1"),
        AIMessage(
            content="4",
            id="a1",
            tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "c1"}],
            response_metadata={"model": "m"},
        ),
        ToolMessage(content="4", tool_call_id="c1", id="t1"),
    ],
    "out": {
        "answer": Answer(text="four", score=0.9, tags=["math"]),
        "point": Point(1, "p", (2, 3)),
        "colour": Colour.BLUE,
        "doc": Document(page_content="text", metadata={"source": "s"}),
        "nested": {"tuple": (1, "a", None), "set": {1, 2}, "bytes": b"\x00\xff", 3: "int key"},
        "floats": [1.5, -0.0, float("inf")],
        "big": 2**80,
        "send": Send("other", {"x": 1}),
        "$lg": "a user key that looks like our tag",
    },
}


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_messages_models_and_dicts_come_back_equal(
    cache: Recording, asynchronous: bool
) -> None:
    node = Counter(lambda s: RICH_OUTPUT)
    graph = one_node_graph(cache, node, state=ChatState)
    run = graph.ainvoke if asynchronous else graph.invoke

    async def invoke() -> Any:
        result = run({"x": 1})
        return await result if asynchronous else result

    first = await invoke()
    second = await invoke()
    assert node.calls == 1 and cache.stats["hits"] == 1
    assert second == first
    assert second["messages"] == RICH_OUTPUT["messages"]
    assert second["out"] == RICH_OUTPUT["out"]
    assert type(second["out"]["answer"]) is Answer and type(second["out"]["point"]) is Point


def test_another_process_rebuilds_only_allowed_classes(store_target: StoreTarget) -> None:
    """Classes are never imported from the store: a process that has not stored an ``Answer``
    itself misses on one, unless ``allowed_types`` names it."""
    base = new_namespace()
    backend = store_target.make(base)
    make = lambda s: {"out": Answer(text="t", score=1.0)}  # noqa: E731
    one_node_graph(LangGraphCache(backend), Counter(make)).invoke({"x": 1})
    other = store_target.make(base) if store_target.shared else backend

    stranger, node = LangGraphCache(other), Counter(make)
    assert one_node_graph(stranger, node).invoke({"x": 1})["out"] == Answer(text="t", score=1.0)
    assert node.calls == 1 and stranger.stats["decode_errors"] == 1

    friend, node = LangGraphCache(other, allowed_types=[Answer]), Counter(make)
    assert one_node_graph(friend, node).invoke({"x": 1})["out"] == Answer(text="t", score=1.0)
    assert node.calls == 0 and friend.stats["hits"] == 1
    friend.clear()


class Evil:
    """Unpickling this creates ``path``: proof that something unpickled the store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_a_planted_pickle_is_never_unpickled(cache: Recording, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Evil(marker))
    assert not marker.exists()
    node = Counter()
    graph = one_node_graph(cache, node)
    graph.invoke({"x": 1})
    ((ns, key),) = cache.seen
    name = cache.namespace_for(ns)
    store = cache.backend.in_namespace(name)
    codec = Codec()
    plants = [
        payload,  # a bare pickle
        b"pickle:" + payload,  # langgraph RedisCache's "encoding:data" layout
        codec.encode(f"{name}/{key}", {"f": 1, "v": {"$lg": "pickle", "v": "x"}}),
        codec.encode(  # a forged envelope holding the pickle as bytes (not node writes)
            f"{name}/{key}",
            {"f": 1, "v": {"$lg": "bytes", "v": base64.b64encode(payload).decode()}},
        ),
        codec.encode(  # node writes to a channel LangGraph never caches
            f"{name}/{key}", {"f": 1, "v": [{"$lg": "tuple", "v": ["__interrupt__", "x"]}]}
        ),
        codec.encode(  # a class the store names but this process never trusted
            f"{name}/{key}",
            {"f": 1, "v": {"$lg": "model", "c": "tests.not_a_module_xyz:Evil", "v": {}}},
        ),
        codec.encode(f"{name}/other-key", {"f": 1, "v": [["out", 1]]}),  # another key's value
    ]
    for runs, data in enumerate(plants, start=2):
        store.set(key, data)
        assert graph.invoke({"x": 1}) == {"x": 1, "out": 2}
        assert node.calls == runs, data[:40]
    assert not marker.exists()
    assert "tests.not_a_module_xyz" not in sys.modules
    assert cache.stats["decode_errors"] == len(plants)


def test_encrypted_values_need_the_key(store_target: StoreTarget) -> None:
    backend = store_target.make()
    sealed = Recording(backend, codec=Codec(encryption_keys=[new_encryption_key()]))
    node = Counter(lambda s: {"out": "secret answer"})
    one_node_graph(sealed, node).invoke({"x": 1})
    ((ns, key),) = sealed.seen
    stored = backend.in_namespace(sealed.namespace_for(ns)).get(key)
    assert stored is not None and b"secret answer" not in stored
    one_node_graph(sealed, node).invoke({"x": 1})
    assert node.calls == 1
    plain = LangGraphCache(backend)  # no key: the sealed value is a miss, never garbage
    one_node_graph(plain, node).invoke({"x": 1})
    assert node.calls == 2 and plain.stats["decode_errors"] == 1
    sealed.clear()


# -- faults: the graph always completes ------------------------------------------------------------
class DownBackend(MemoryBackend):
    """A store that is down: every operation fails as a real backend's would (views too)."""

    def _down(self, *args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailable("store is down (test)")

    get = set = delete = clear = get_many = set_many = add = list_push = list_range = _down  # type: ignore[assignment]


def test_store_down_the_graph_still_completes(caplog: pytest.LogCaptureFixture) -> None:
    cache = LangGraphCache(DownBackend(), breaker=CircuitBreaker(failures=3, cooldown=60))
    node = Counter()
    graph = one_node_graph(cache, node)
    with caplog.at_level(logging.WARNING, logger="llmcache"):
        for _ in range(5):
            assert graph.invoke({"x": 1}) == {"x": 1, "out": 2}
        cache.clear()  # logged and counted, not raised
    assert node.calls == 5
    assert cache.stats["errors"] >= 3 and cache.stats["skipped_open_circuit"] > 0
    assert len([r for r in caplog.records if "LangGraph cache" in r.getMessage()]) == 1


async def test_store_down_the_graph_still_completes_async() -> None:
    cache = LangGraphCache(DownBackend())
    node = Counter()
    graph = one_node_graph(cache, node)
    for _ in range(3):
        assert await graph.ainvoke({"x": 1}) == {"x": 1, "out": 2}
    await cache.aclear()
    assert node.calls == 3 and cache.stats["errors"] >= 3


def test_on_error_raise_raises_backend_error() -> None:
    graph = one_node_graph(LangGraphCache(DownBackend(), on_error="raise"), Counter())
    with pytest.raises(BackendError, match="store is down"):
        graph.invoke({"x": 1})


class SlowThenDown(MemoryBackend):
    """Reads fail in one namespace only (a sick cluster node): the other reads still hit."""

    sick: set[str] = set()  # noqa: RUF012 - shared by the views on purpose

    def get_many(self, keys: Any) -> list[bytes | None]:
        if self.namespace in self.sick:
            raise BackendUnavailable("node down (test)")
        return super().get_many(keys)


async def test_a_fault_in_one_namespace_is_a_miss_for_it_only() -> None:
    cache = LangGraphCache(SlowThenDown())
    a, b = Counter(lambda s: {"trail": ["a"]}), Counter(lambda s: {"trail": ["b"]})
    builder = StateGraph(TrailState)
    for name, node in (("a", a), ("b", b)):
        builder.add_node(name, node, cache_policy=CachePolicy())
        builder.add_edge(START, name)
        builder.add_edge(name, END)
    graph = builder.compile(cache=cache)
    await graph.ainvoke({"x": 1})
    keys: list[FullKey] = [(("__pregel_ns_writes", "m", n), "k") for n in "ab"]
    cache.set({k: ([("out", n)], None) for k, n in zip(keys, "ab", strict=True)})
    SlowThenDown.sick = {cache.namespace_for(keys[0][0])}
    try:
        assert await cache.aget(keys) == {keys[1]: [("out", "b")]}
        assert cache.get(keys) == {keys[1]: [("out", "b")]}
    finally:
        SlowThenDown.sick = set()
    assert cache.stats["errors"] == 2


class ShortLived(MemoryBackend):
    """A store that refuses long TTLs, as Momento refuses more than 24 h."""

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        if ttl is not None and ttl > 100:
            raise ConfigError(f"invalid ttl {ttl!r} (test)")
        super().set_many(items, ttl)


def test_a_ttl_the_store_refuses_skips_the_write_without_tripping_the_breaker() -> None:
    cache = LangGraphCache(ShortLived(), breaker=CircuitBreaker(failures=2, cooldown=60))
    long_node, short_node = Counter(), Counter()
    long_graph = one_node_graph(cache, long_node, ttl=1000)
    for _ in range(3):
        long_graph.invoke({"x": 1})
    assert long_node.calls == 3 and cache.stats["skipped_writes"] == 3
    assert cache.stats["errors"] == 0 and cache.breaker.allow()
    short_graph = one_node_graph(cache, short_node, ttl=50)
    short_graph.invoke({"x": 1})
    short_graph.invoke({"x": 1})
    assert short_node.calls == 1


def test_an_output_that_cannot_be_stored_safely_is_not_cached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = LangGraphCache(MemoryBackend())
    node = Counter(lambda s: {"out": object()})
    graph = one_node_graph(cache, node)
    with caplog.at_level(logging.WARNING, logger="llmcache"):
        graph.invoke({"x": 1})
        graph.invoke({"x": 1})
    assert node.calls == 2
    assert cache.stats["unstorable"] == 2 and cache.stats["writes"] == 0
    assert len([r for r in caplog.records if "without pickle" in r.getMessage()]) == 1


# -- constructors and names ------------------------------------------------------------------------
def test_from_url_and_from_settings(tmp_path: Path) -> None:
    cache = LangGraphCache.from_url("memory://", ttl=30)
    assert (cache.backend.namespace, cache.ttl, cache.on_error) == ("langgraph", 30, "miss")
    settings = Settings(
        url=f"disk://{tmp_path}", namespace="app", ttl=60, encryption_key=new_encryption_key()
    )
    cache = LangGraphCache.from_settings(settings, allowed_types=[Answer])
    assert (cache.backend.namespace, cache.ttl) == ("app.langgraph", 60)
    assert cache.codec.encrypts
    node = Counter(lambda s: {"out": Answer(text="a", score=0.5)})
    graph = one_node_graph(cache, node)
    graph.invoke({"x": 1})
    assert graph.invoke({"x": 1})["out"] == Answer(text="a", score=0.5)
    assert node.calls == 1
    cache.close()


def test_langgraphs_internal_names_are_the_ones_we_check() -> None:
    from langgraph._internal import _constants

    assert _constants.CACHE_NS_WRITES == CACHE_NS_WRITES
    assert {_constants.ERROR, _constants.INTERRUPT} <= {"__error__", "__interrupt__"}


def test_namespace_names_are_valid_distinct_and_scoped_to_the_cache() -> None:
    tuples: list[Namespace] = [
        (),
        ("__pregel_ns_writes", "mod.fn", "node"),
        ("__pregel_ns_writes", "mod.fn", "node", ""),
        ("graph:with:colons", "node-with-dashes"),
        ("ünïcödé", "x" * 300),
        ("a", "b"),
        ("a.b",),
        ("a", "b", "node"),
    ]
    names = {namespace_name("base", ns) for ns in tuples}
    assert len(names) == len(tuples)
    for name in names:
        assert check_namespace(name) == name
    assert namespace_name("base", ("a",)) != namespace_name("other", ("a",))


# -- ported: langgraph's own cache tests, as our contract, on every backend -----------------------
class TestPortedContract:
    """The checks of upstream ``test_cache.py`` / ``test_redis_cache.py``, on our cache."""

    def test_set_takes_pairs(self) -> None:
        for method in (LangGraphCache.set, LangGraphCache.aset):
            assert "pairs" in inspect.signature(method).parameters

    def test_keyword_and_positional_pairs(self, cache: Recording) -> None:
        k1, k2 = (("ns",), "k1"), (("ns",), "k2")
        cache.set(pairs={k1: ({"data": 123}, 60)})
        assert cache.get([k1]) == {k1: {"data": 123}}
        cache.set({k2: ({"data": 456}, None)})
        assert cache.get([k2]) == {k2: {"data": 456}}

    async def test_keyword_and_positional_pairs_async(self, cache: Recording) -> None:
        k1, k2 = (("ns",), "k1"), (("ns",), "k2")
        await cache.aset(pairs={k1: ({"data": 789}, 60)})
        assert await cache.aget([k1]) == {k1: {"data": 789}}
        await cache.aset({k2: ({"data": 999}, None)})
        assert await cache.aget([k2]) == {k2: {"data": 999}}

    def test_batch_operations(self, cache: Recording) -> None:
        keys: list[FullKey] = [
            (("graph", "node1"), "key1"),
            (("graph", "node2"), "key2"),
            (("other", "node"), "key3"),
        ]
        cache.set({keys[0]: ({"r": 1}, None), keys[1]: ({"r": 2}, 60), keys[2]: ({"r": 3}, None)})
        assert cache.get(keys) == {keys[0]: {"r": 1}, keys[1]: {"r": 2}, keys[2]: {"r": 3}}

    def test_ttl(self, cache: Recording) -> None:
        key: FullKey = (("graph", "node"), "ttl_key")
        cache.set({key: ({"data": "expires_soon"}, 1)})
        assert cache.get([key]) == {key: {"data": "expires_soon"}}
        time.sleep(1.3)
        assert cache.get([key]) == {}

    def test_namespace_isolation(self, cache: Recording) -> None:
        k1, k2 = (("graph1", "node"), "same_key"), (("graph2", "node"), "same_key")
        cache.set({k1: ({"graph": 1}, None), k2: ({"graph": 2}, None)})
        assert cache.get([k1, k2]) == {k1: {"graph": 1}, k2: {"graph": 2}}

    async def test_clear_all_and_by_namespace(self, cache: Recording) -> None:
        keys: list[FullKey] = [
            (("graph1", "node"), "key1"),
            (("graph2", "node"), "key2"),
            (("graph1", "other"), "key3"),
        ]
        cache.set({k: ({"r": i}, None) for i, k in enumerate(keys)})
        cache.clear([("graph1", "node"), ("graph1", "other")])
        assert cache.get(keys) == {keys[1]: {"r": 1}}
        cache.set({k: ({"r": i}, None) for i, k in enumerate(keys)})
        await cache.aclear([("graph2", "node")])
        assert set(await cache.aget(keys)) == {keys[0], keys[2]}
        await cache.aclear()
        assert cache.get(keys) == {}
        cache.set({keys[0]: ({"r": 0}, None)})
        cache.clear()
        assert await cache.aget(keys) == {}

    def test_empty_operations_and_missing_keys(self, cache: Recording) -> None:
        assert cache.get([]) == {}
        cache.set({})
        cache.clear([])
        assert cache.get([(("graph", "node"), "nonexistent")]) == {}

    def test_corrupted_entry_is_skipped(self, cache: Recording) -> None:
        good: FullKey = (("graph", "node"), "valid_key")
        bad: FullKey = (("graph", "node"), "corrupted_key")
        cache.set({good: ({"data": "valid"}, None)})
        view = cache.backend.in_namespace(cache.namespace_for(bad[0]))
        view.set(bad[1], b"invalid:data:format:too:many:colons")
        assert cache.get([good, bad]) == {good: {"data": "valid"}}
        assert cache.stats["decode_errors"] == 1

    def test_odd_namespaces(self, cache: Recording) -> None:
        pairs: dict[FullKey, tuple[Any, int | None]] = {
            ((), "empty_ns"): ({"data": "empty_ns"}, None),
            (("graph:with:colons", "node-with-dashes"), "key_with_underscores"): ("x", None),
            (("ünï", "*?[glob]"), "k*"): ("glob-safe", None),
        }
        cache.set(pairs)
        assert cache.get(list(pairs)) == {k: v for k, (v, _) in pairs.items()}
        cache.clear([("ünï", "*?[glob]")])
        assert len(cache.get(list(pairs))) == 2

    def test_large_values(self, cache: Recording) -> None:
        large = {"large_list": list(range(1000)), "nested": {"data": "x" * 100_000}}
        key: FullKey = (("graph", "node"), "large_key")
        cache.set({key: (large, None)})
        assert cache.get([key]) == {key: large}


# -- the decode path never raises (hypothesis) -----------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
TAGS = [
    "tuple",
    "set",
    "frozenset",
    "deque",
    "dict",
    "bytes",
    "bytearray",
    "int",
    "float",
    "message",
    "document",
    "send",
    "model",
    "enum",
    "dataclass",
    "pickle",
    3,
    None,
]
CLASSES = [
    f"{Answer.__module__}:Answer",
    f"{Point.__module__}:Point",
    f"{Colour.__module__}:Colour",
    "os:system",
    "builtins:eval",
    7,
]


def tagged(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"$lg": st.sampled_from(TAGS)},
        optional={"v": inner, "c": st.sampled_from(CLASSES), "node": inner},
    )


json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | tagged(inner)
    ),
    max_leaves=12,
)
payloads = st.one_of(
    json_values, st.fixed_dictionaries({"f": st.sampled_from([1, 2, "1"]), "v": json_values})
)
KEY: FullKey = (("__pregel_ns_writes", "mod.fn", "node"), "k")


def _forged_cache() -> tuple[LangGraphCache, Any, str]:
    cache = LangGraphCache(MemoryBackend(), allowed_types=[Answer, Point, Colour])
    name = cache.namespace_for(KEY[0])
    return cache, cache.backend.in_namespace(name), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200))
def test_random_bytes_are_a_miss(data: bytes) -> None:
    cache, store, _ = _forged_cache()
    store.set(KEY[1], data)
    assert cache.get([KEY]) == {}
    assert asyncio.run(cache.aget([KEY])) == {}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads)
def test_forged_envelopes_never_raise(payload: Any) -> None:
    cache, store, name = _forged_cache()
    store.set(KEY[1], Codec().encode(f"{name}/{KEY[1]}", payload))
    found = cache.get([KEY])  # a value or a miss; never an exception
    assert set(found) <= {KEY}
    assert cache.stats["hits"] + cache.stats["decode_errors"] == 1


writes_like = st.lists(
    st.fixed_dictionaries(
        {
            "$lg": st.sampled_from(["tuple", "tuple", "set"]),
            "v": st.lists(
                st.sampled_from(["out", "x", "nope", "__error__", "__interrupt__", 3])
                | json_values,
                max_size=3,
            ),
        }
    )
    | json_values,
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.one_of(payloads, writes_like.map(lambda w: {"f": 1, "v": w})))
def test_a_graph_over_forged_entries_always_completes(payload: Any) -> None:
    """Whatever is not node writes never reaches LangGraph: the node runs and the graph
    completes. (Well-formed forged writes are a forged answer, as with any cache: the
    graph may then fail as the forger chose; encryption authenticates entries against that.)"""
    cache = Recording(MemoryBackend())
    node = Counter(lambda s: {"out": s["x"] * 2})
    graph = one_node_graph(cache, node)
    graph.invoke({"x": 1})
    ((ns, key),) = cache.seen
    name = cache.namespace_for(ns)
    cache.backend.in_namespace(name).set(key, Codec().encode(f"{name}/{key}", payload))
    try:
        result = graph.invoke({"x": 1})
    except Exception:
        node_writes(ValueCodec().decode(payload))  # only a well-formed forgery gets this far
        return
    if cache.stats["hits"] == 0:
        assert result == {"x": 1, "out": 2} and node.calls == 2


@settings(max_examples=200, deadline=None)
@given(payload=json_values)
def test_the_value_codec_is_total(payload: Any) -> None:
    codec = ValueCodec([Answer, Point, Colour])
    with contextlib.suppress(CodecError):
        codec.decode({"f": 1, "v": payload})


plain_values = st.recursive(
    json_scalars | st.binary(max_size=4) | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 9), inner, max_size=3)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=plain_values)
def test_plain_values_round_trip(value: Any) -> None:
    codec = ValueCodec()
    assert codec.decode(Codec().decode("k", Codec().encode("k", codec.encode(value)))) == value


_PROCESS_SCRIPT = """
import sys
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from llmcache.adapters.langgraph import LangGraphCache

url, namespace, log = sys.argv[1:4]


class State(TypedDict, total=False):
    q: str
    a: str


def answer(state: State) -> State:
    with open(log, "a") as f:
        f.write("ran\\n")
    return {"a": state["q"].upper()}


builder = StateGraph(State)
builder.add_node("answer", answer, cache_policy=CachePolicy())
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
graph = builder.compile(cache=LangGraphCache.from_url(url, namespace=namespace))
print(graph.invoke({"q": "hello"})["a"])
"""


@pytest.mark.redis
def test_a_cached_node_runs_once_across_two_processes_on_redis(
    standalone: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys
    import uuid

    log = tmp_path / "runs.log"
    namespace = f"lg{uuid.uuid4().hex[:10]}"
    outputs = []
    for _ in range(2):  # two processes, one after the other, sharing only the Redis server
        done = subprocess.run(
            [sys.executable, "-c", _PROCESS_SCRIPT, standalone.url, namespace, str(log)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout.strip())
    assert outputs == ["HELLO", "HELLO"]
    assert log.read_text().count("ran") == 1  # the second process was served from the cache
