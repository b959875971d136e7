"""Single-flight: concurrent identical misses make one model call, and it never hurts a call.

What a user would notice: how many times the model was called, that every caller got the
answer, that nobody saw another caller's exception, and how long anybody waited. The fake model
below counts its calls and stores its answer through the backend, as LLMCache's compute does.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmcache.backends.base import Backend
from llmcache.backends.capabilities import AtomicAdd
from llmcache.backends.memory import MemoryBackend
from llmcache.errors import BackendError, ConfigError
from llmcache.registry import create_backend
from llmcache.singleflight import LEASE_PREFIX, SingleFlight
from llmcache.stats import Stats
from tests.backends.clients import REDIS_RELAXED, StoreTarget, new_namespace

KEY = "req:0123456789abcdef"
ANSWER = {"text": "Paris", "tokens": [1, 2, 3]}


class Model:
    """A slow fake model: counts calls, stores its answer under ``key`` through ``backend``.

    ``fail_first``: the first call raises :class:`ModelDown` (after its delay).
    """

    def __init__(
        self, backend: Backend | None, key: str = KEY, delay: float = 0.3, fail_first: bool = False
    ) -> None:
        self.backend, self.key, self.delay, self.fail_first = backend, key, delay, fail_first
        self.calls = 0
        self.hits = 0  # callers whose own first lookup hit (they never enter single-flight)
        self._lock = threading.Lock()

    def _count(self) -> int:
        with self._lock:
            self.calls += 1
            return self.calls

    def lookup(self) -> dict[str, Any] | None:
        raw = self.backend.get(self.key) if self.backend is not None else None
        return json.loads(raw) if raw else None

    async def alookup(self) -> dict[str, Any] | None:
        raw = await self.backend.aget(self.key) if self.backend is not None else None
        return json.loads(raw) if raw else None

    def compute(self) -> dict[str, Any]:
        n = self._count()
        time.sleep(self.delay)
        if self.fail_first and n == 1:
            raise ModelDown("the model is down")
        if self.backend is not None:
            self.backend.set(self.key, json.dumps(ANSWER).encode(), ttl=60)
        return json.loads(json.dumps(ANSWER))

    async def acompute(self) -> dict[str, Any]:
        n = self._count()
        await asyncio.sleep(self.delay)
        if self.fail_first and n == 1:
            raise ModelDown("the model is down")
        if self.backend is not None:
            await self.backend.aset(self.key, json.dumps(ANSWER).encode(), ttl=60)
        return json.loads(json.dumps(ANSWER))

    def call(self, flight: SingleFlight) -> dict[str, Any]:
        """What a cache does: look up, and on a miss go through single-flight."""
        hit = self.lookup()
        if hit is not None:
            with self._lock:
                self.hits += 1
            return hit
        return flight.run(self.key, self.lookup, self.compute)

    async def acall(self, flight: SingleFlight) -> dict[str, Any]:
        hit = await self.alookup()
        if hit is not None:
            with self._lock:
                self.hits += 1
            return hit
        return await flight.arun(self.key, self.alookup, self.acompute)


class ModelDown(Exception):
    """The model's own failure."""


def in_threads(n: int, fn: Callable[[], Any], go: threading.Event | None = None) -> list[Any]:
    """Run ``fn`` in ``n`` threads released together; results or exceptions, in any order."""
    go = go or threading.Event()
    out: list[Any] = []
    lock = threading.Lock()

    def work() -> None:
        go.wait()
        try:
            result: Any = fn()
        except BaseException as exc:
            result = exc
        with lock:
            out.append(result)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    assert len(out) == n, "a caller never finished"
    return out


@pytest.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.redis)],
)
def lease_store(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A store holding leases: memory, and a real Redis (cross-process semantics)."""
    if request.param == "memory":
        backend: Backend = MemoryBackend(namespace=new_namespace())
    else:
        server = request.getfixturevalue("standalone")
        backend = create_backend(server.url, namespace=new_namespace(), **REDIS_RELAXED)
    yield backend
    backend.close()


# -- one model call ------------------------------------------------------------------------------
async def test_concurrent_misses_make_one_model_call(store_target: StoreTarget) -> None:
    """50 asyncio tasks and 8 threads miss the same key at once: the model is called once."""
    backend = store_target.make()
    stats = Stats()
    flight = SingleFlight(backend, lease_ttl=20, stats=stats)
    model = Model(backend, delay=0.4)
    go = threading.Event()
    threads = asyncio.create_task(asyncio.to_thread(in_threads, 8, lambda: model.call(flight), go))
    await asyncio.sleep(0.05)  # the threads are waiting on ``go``
    go.set()
    results = await asyncio.gather(*(model.acall(flight) for _ in range(50)))
    results += await threads
    assert model.calls == 1
    assert results == [ANSWER] * 58
    assert stats["coalesced"] + model.hits == 57
    assert await backend.aget(LEASE_PREFIX + KEY) is None  # the lease was released


async def test_waiting_tasks_do_not_block_the_event_loop() -> None:
    """While a thread's model call runs, tasks waiting on it leave the loop free."""
    flight = SingleFlight(MemoryBackend())
    model = Model(None, delay=0.5)
    leader = asyncio.create_task(asyncio.to_thread(flight.run, KEY, model.lookup, model.compute))
    await asyncio.sleep(0.05)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not leader.done():
            ticks += 1
            await asyncio.sleep(0.01)

    results = await asyncio.gather(
        *(flight.arun(KEY, model.alookup, model.acompute) for _ in range(10)), ticker()
    )
    assert results[:10] == [ANSWER] * 10
    assert model.calls == 1
    assert ticks >= 15  # ~45 in 0.45 s when the loop is free; 1 if a waiter blocked it


def test_callers_on_several_event_loops_share_one_call() -> None:
    """Three threads, each with its own event loop running three tasks, and two plain threads,
    all at once: one model call."""
    model = Model(MemoryBackend(), delay=0.3)
    flight = SingleFlight(model.backend)
    turn = iter(range(5))

    async def three() -> list[Any]:
        return list(await asyncio.gather(*(model.acall(flight) for _ in range(3))))

    def caller() -> list[Any]:
        return asyncio.run(three()) if next(turn) < 3 else [model.call(flight)]

    results = in_threads(5, caller)
    assert model.calls == 1
    assert [r for group in results for r in group] == [ANSWER] * 11


def test_waiters_get_copies_when_nothing_was_stored() -> None:
    """No store (or an answer that was not stored): waiters get the leader's value, each its own
    copy, so one caller mutating its answer never changes another's."""
    stats = Stats()
    flight = SingleFlight(None, stats=stats)
    model = Model(None, delay=0.3)
    results = in_threads(6, lambda: flight.run(KEY, model.lookup, model.compute))
    assert model.calls == 1
    assert results == [ANSWER] * 6
    assert len({id(r) for r in results}) == 6
    assert len({id(r["tokens"]) for r in results}) == 6
    assert stats["coalesced"] == 5


async def test_a_leader_changing_its_answer_does_not_change_the_waiters() -> None:
    """The leader's caller edits its answer at once (LangChain stamps a run id on a cached
    message): the waiters still get the answer the model gave."""
    flight = SingleFlight(None)
    model = Model(None, delay=0.2)

    async def leader() -> dict[str, Any]:
        answer = await flight.arun(KEY, model.alookup, model.acompute)
        answer["text"] = "edited by the leader's caller"
        answer["tokens"].append(4)
        return answer

    first = asyncio.create_task(leader())
    await asyncio.sleep(0.05)
    others = await asyncio.gather(
        *(flight.arun(KEY, model.alookup, model.acompute) for _ in range(5))
    )
    assert (await first)["text"] == "edited by the leader's caller"
    assert others == [ANSWER] * 5
    assert model.calls == 1


def test_an_answer_that_cannot_be_copied_is_computed_by_each_waiter() -> None:
    """Nothing stored and the answer refuses deepcopy: waiters call the model themselves rather
    than share one object (or fail)."""

    class Uncopyable:
        def __deepcopy__(self, memo: Any) -> Any:
            raise TypeError("cannot copy")

    flight = SingleFlight(None)
    calls = []

    def compute() -> Any:
        calls.append(1)
        time.sleep(0.2)
        return Uncopyable()

    results = in_threads(4, lambda: flight.run(KEY, lambda: None, compute))
    assert all(isinstance(r, Uncopyable) for r in results)
    assert len({id(r) for r in results}) == 4
    assert len(calls) == 4


def test_a_store_without_atomic_add_coalesces_in_process() -> None:
    class Plain(Backend):  # the five methods only: no AtomicAdd
        def __init__(self) -> None:
            super().__init__()
            self.data: dict[str, bytes] = {}

        def get(self, key: str) -> bytes | None:
            return self.data.get(key)

        def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
            self.data[key] = value

        def delete(self, key: str) -> None:
            self.data.pop(key, None)

        def clear(self) -> None:
            self.data.clear()

    store = Plain()
    model = Model(store, delay=0.2)
    flight = SingleFlight(store)
    results = in_threads(5, lambda: model.call(flight))
    assert results == [ANSWER] * 5
    assert model.calls == 1
    assert store.data.keys() == {KEY}  # no lease was written


# -- across processes ----------------------------------------------------------------------------
def _process(
    url: str,
    options: dict[str, Any],
    namespace: str,
    calls_file: str,
    barrier: Any,
    results: Any,
) -> None:  # pragma: no cover - runs in a child process
    backend = create_backend(url, namespace=namespace, **options)
    flight = SingleFlight(backend, lease_ttl=20, poll=0.02)

    def lookup() -> bytes | None:
        return backend.get(KEY)

    def compute() -> bytes:
        with open(calls_file, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        backend.set(KEY, b"Paris", ttl=60)
        return b"Paris"

    barrier.wait(120)
    got = in_threads(3, lambda: lookup() or flight.run(KEY, lookup, compute))
    results.put(got)
    backend.close()


@pytest.mark.parametrize("kind", [pytest.param("redis", marks=pytest.mark.redis), "disk"])
def test_two_processes_make_one_model_call(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two processes (3 threads each) miss the same key at once: the model is called once."""
    if kind == "redis":
        url, options = request.getfixturevalue("standalone").url, REDIS_RELAXED
    else:
        url, options = f"disk://{tmp_path / 'cache'}", {}
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    calls_file = tmp_path / "calls"
    calls_file.touch()
    namespace = new_namespace()
    procs = [
        ctx.Process(
            target=_process, args=(url, options, namespace, str(calls_file), barrier, results)
        )
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert got == [[b"Paris"] * 3] * 2
    assert len(calls_file.read_text().split()) == 1


# -- a leader that fails, dies or is cancelled ---------------------------------------------------
def test_a_failing_leader_never_fails_its_waiters(lease_store: Backend) -> None:
    """The leader's model call raises: it alone sees the exception; a waiter calls the model
    again (one more call) and the others take that answer, long before the lease would expire."""
    model = Model(lease_store, delay=0.2, fail_first=True)
    flight = SingleFlight(lease_store, lease_ttl=10)
    started = time.monotonic()
    results = in_threads(8, lambda: model.call(flight))
    elapsed = time.monotonic() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ModelDown)
    assert [r for r in results if not isinstance(r, BaseException)] == [ANSWER] * 7
    assert model.calls == 2
    assert elapsed < 2.0  # two model calls (0.4 s) and change; never the 10 s lease


async def test_a_failing_async_leader_never_fails_its_waiters(lease_store: Backend) -> None:
    model = Model(lease_store, delay=0.2, fail_first=True)
    flight = SingleFlight(lease_store, lease_ttl=10)
    started = time.monotonic()
    results = await asyncio.gather(
        *(model.acall(flight) for _ in range(20)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert [type(r) for r in results].count(ModelDown) == 1
    assert [r for r in results if not isinstance(r, BaseException)] == [ANSWER] * 19
    assert model.calls == 2
    assert elapsed < 2.0


async def test_a_cancelled_leader_releases_its_waiters(lease_store: Backend) -> None:
    """Cancelling the leader's task frees its in-process waiters (tasks and a thread) and its
    store lease (a second SingleFlight on the same store stands for another process)."""
    stats = Stats()
    flight = SingleFlight(lease_store, lease_ttl=10, stats=stats)
    elsewhere = SingleFlight(lease_store, lease_ttl=10, poll=0.02)
    model = Model(lease_store, delay=0.2)
    started = asyncio.Event()

    async def hanging() -> dict[str, Any]:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("not cancelled")

    leader = asyncio.create_task(flight.arun(KEY, model.alookup, hanging))
    await started.wait()
    waiters = [
        asyncio.create_task(flight.arun(KEY, model.alookup, model.acompute)) for _ in range(5)
    ]
    waiters.append(asyncio.create_task(elsewhere.arun(KEY, model.alookup, model.acompute)))
    waiters.append(
        asyncio.create_task(asyncio.to_thread(flight.run, KEY, model.lookup, model.compute))
    )
    await asyncio.sleep(0.1)
    leader.cancel()
    cancelled_at = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert time.monotonic() - cancelled_at < 2.0  # not the 10 s lease
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert results == [ANSWER] * 7
    assert model.calls in (1, 2)  # this process's new leader; maybe the other "process" first
    assert await lease_store.aget(LEASE_PREFIX + KEY) is None


@pytest.mark.parametrize("lease_life", [0.5, 60.0], ids=["lease-expires", "lease-stuck"])
def test_a_dead_leader_is_waited_for_at_most_lease_ttl(
    lease_store: Backend, lease_life: float
) -> None:
    """Another process took the lease and died. Callers wait ``lease_ttl`` (no earlier), then
    call the model themselves: the lease expired and was taken over, or it is stuck (another
    process's longer ttl) and they give up on it."""
    assert isinstance(lease_store, AtomicAdd)
    lease_store.add(LEASE_PREFIX + KEY, b"dead process", ttl=lease_life)
    stats = Stats()
    flight = SingleFlight(lease_store, lease_ttl=0.5, poll=0.02, stats=stats)
    model = Model(lease_store, delay=0.1)

    def timed() -> float:
        started = time.monotonic()
        assert model.call(flight) == ANSWER
        return time.monotonic() - started

    waits = in_threads(4, timed)
    assert model.calls >= 1
    assert min(waits) >= 0.45  # nobody gave up before the lease's time
    assert max(waits) < 0.5 + 1.0  # ttl + a poll + the model call, with room for a slow CI
    if lease_life > 1:
        assert stats["lease_expired"] >= 1


async def test_an_answer_written_while_waiting_is_returned(lease_store: Backend) -> None:
    """Another process holds the lease and stores the answer mid-wait: callers return it at
    once (no model call), long before the lease's time."""
    await lease_store.aadd(LEASE_PREFIX + KEY, b"other process", ttl=60)  # type: ignore[attr-defined]
    stats = Stats()
    flight = SingleFlight(lease_store, lease_ttl=5, poll=0.02, stats=stats)
    model = Model(lease_store)

    async def other_process() -> None:
        await asyncio.sleep(0.3)
        await lease_store.aset(KEY, json.dumps(ANSWER).encode(), ttl=60)

    started = time.monotonic()
    writer = asyncio.create_task(other_process())
    results = await asyncio.gather(
        *(model.acall(flight) for _ in range(10)),
        asyncio.to_thread(in_threads, 3, lambda: model.call(flight)),
    )
    await writer
    elapsed = time.monotonic() - started
    assert results[:10] == [ANSWER] * 10 and results[10] == [ANSWER] * 3
    assert model.calls == 0
    assert 0.3 <= elapsed < 1.5
    assert stats["coalesced"] == 13
    assert stats["lease_expired"] == 0


# -- store faults --------------------------------------------------------------------------------
class Faulty(Backend):
    """Wraps a backend; the operations named in ``fail`` raise :class:`BackendError`."""

    def __init__(self, inner: Backend, fail: set[str]) -> None:
        super().__init__(namespace=inner.namespace)
        self.inner, self.fail = inner, fail
        self.attempts: dict[str, int] = {}

    def _check(self, op: str) -> None:
        self.attempts[op] = self.attempts.get(op, 0) + 1
        if op in self.fail:
            raise BackendError(f"{op} failed: store down")

    def get(self, key: str) -> bytes | None:
        self._check("get")
        return self.inner.get(key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.inner.set(key, value, ttl)

    def delete(self, key: str) -> None:
        self._check("delete")
        self.inner.delete(key)

    def clear(self) -> None:
        self.inner.clear()

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        self._check("add")
        return bool(self.inner.add(key, value, ttl))  # type: ignore[attr-defined]

    async def aget(self, key: str) -> bytes | None:
        self._check("get")
        return await self.inner.aget(key)

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.inner.aset(key, value, ttl)

    async def adelete(self, key: str) -> None:
        self._check("delete")
        await self.inner.adelete(key)

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        self._check("add")
        return bool(await self.inner.aadd(key, value, ttl))  # type: ignore[attr-defined]


@pytest.mark.parametrize("fail", [{"add"}, {"delete"}, {"add", "delete"}], ids="+".join)
async def test_lease_faults_never_fail_the_call(lease_store: Backend, fail: set[str]) -> None:
    """The lease's add or delete raises: every caller still gets the answer, the model is still
    called once for the process, and the faults are counted."""
    store = Faulty(lease_store, fail)
    stats = Stats()
    flight = SingleFlight(store, lease_ttl=10, stats=stats)
    model = Model(store, delay=0.3)
    started = time.monotonic()
    results = await asyncio.gather(
        *(model.acall(flight) for _ in range(10)),
        asyncio.to_thread(in_threads, 4, lambda: model.call(flight)),
    )
    assert results[:10] == [ANSWER] * 10 and results[10] == [ANSWER] * 4
    assert model.calls == 1
    assert stats["errors"] >= 1
    assert time.monotonic() - started < 3.0
    # and a sync leader meets the same faults
    store.inner.delete(KEY)
    model_sync = Model(store, delay=0.1)
    assert in_threads(3, lambda: model_sync.call(flight)) == [ANSWER] * 3
    assert model_sync.calls == 1


def test_a_failing_lease_store_is_skipped_for_a_while(lease_store: Backend) -> None:
    """After a few lease faults in a row, misses stop touching the lease (no store timeout per
    call while the store is down) and still get their answers."""
    store = Faulty(lease_store, {"add"})
    stats = Stats()
    flight = SingleFlight(store, stats=stats)
    for i in range(20):
        assert flight.run(f"{KEY}:{i}", lambda: None, lambda: "answer") == "answer"
    assert store.attempts["add"] == 5  # _defaults.BREAKER_FAILURES, then skipped
    assert stats["errors"] == 5


def test_a_failing_lookup_while_polling_calls_the_model_at_once(lease_store: Backend) -> None:
    """Another process holds the lease and the store then fails our lookups: no waiting out the
    lease; the caller calls the model."""
    lease_store.add(LEASE_PREFIX + KEY, b"other process", ttl=60)  # type: ignore[attr-defined]
    store = Faulty(lease_store, {"get"})
    stats = Stats()
    flight = SingleFlight(store, lease_ttl=10, poll=0.02, stats=stats)
    model = Model(lease_store, delay=0.05)
    started = time.monotonic()
    assert flight.run(KEY, lambda: json.loads(store.get(KEY) or b"null"), model.compute) == ANSWER
    assert time.monotonic() - started < 1.0
    assert stats["errors"] >= 1 and model.calls == 1


@pytest.mark.redis
def test_a_dead_redis_never_fails_the_call(own_server: Any) -> None:
    """The Redis holding the leases is killed: callers still get the model's answer."""
    store = create_backend(own_server.url, namespace=new_namespace(), **REDIS_RELAXED)
    own_server.kill()
    stats = Stats()
    flight = SingleFlight(store, lease_ttl=10, stats=stats)
    model = Model(None, delay=0.1)
    try:
        assert in_threads(4, lambda: flight.run(KEY, model.lookup, model.compute)) == [ANSWER] * 4
    finally:
        store.close()
    assert model.calls == 1
    assert stats["errors"] >= 1


# -- configuration -------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["lease_ttl", "poll"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "5"])
def test_invalid_timings_are_config_errors(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"{field} {value!r}"):
        SingleFlight(MemoryBackend(), **{field: value})
