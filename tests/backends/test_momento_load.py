"""Momento under load and faults, from the caller's side (``LLMCache``), through the real SDK.

Issue 9: a burst of concurrent calls against a stalled store costs each call at most one budget
(items 9-11 and the SDK's per-failure warnings). Each test checks what the caller sees: no
exception, a miss, and a bounded added latency per call (limits are generous: CI machines are
loaded). The measured figures are printed (``pytest -s``) for docs/reliability.md.

Servers: ``momento_server`` / ``own_momento_server`` from ``tests/conftest.py`` (the local
server in ``backends/momento``; faults injected with its ``delay`` / ``fail`` API).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmcache import LLMCache
from llmcache._breaker import CircuitBreaker
from tests.backends.clients import momento_backend

pytest.importorskip("momento", reason="the momento extra is not installed")

from llmcache.backends.momento import MomentoBackend

pytestmark = pytest.mark.momento

LLM = "[('_type', 'fake-chat'), ('temperature', 0.0)]"


def _limit(timeout: float) -> float:
    """Added latency allowed per call: one timeout + a generous margin for a loaded machine."""
    return 2 * timeout + 0.3


def _figures(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return ordered[-1], ordered[max(0, round(0.99 * len(ordered)) - 1)]


@pytest.fixture
def server(own_momento_server: Any) -> Iterator[Any]:
    yield own_momento_server
    own_momento_server.clear_faults()


def _cache(backend: MomentoBackend, failures: int = 5) -> LLMCache:
    return LLMCache(backend, breaker=CircuitBreaker(failures=failures, cooldown=30))


async def _burst(cache: LLMCache, n: int, tag: str) -> tuple[list[float], list[BaseException]]:
    """``n`` concurrent lookup+update calls; their added latencies and what they raised."""
    latencies: list[float] = []
    raised: list[BaseException] = []

    async def call(i: int) -> None:
        started = time.perf_counter()
        try:
            assert await cache.alookup(f"{tag}{i}", LLM) is None
            await cache.aupdate(f"{tag}{i}", LLM, [{"text": "answer"}])
        except BaseException as exc:
            raised.append(exc)
        latencies.append(time.perf_counter() - started)

    try:  # bounded even when the calls are not (so a regression fails in seconds)
        await asyncio.wait_for(asyncio.gather(*(call(i) for i in range(n))), 10)
    except TimeoutError:
        pytest.fail(f"{n} concurrent calls did not all finish within 10 s")
    return latencies, raised


def _sync_calls(cache: LLMCache, threads: int, calls: int) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    raised: list[str] = []

    def work(t: int) -> None:
        for i in range(calls):
            started = time.perf_counter()
            try:
                assert cache.lookup(f"sync{t}-{i}", LLM) is None
                cache.update(f"sync{t}-{i}", LLM, [{"text": "answer"}])
            except BaseException as exc:
                raised.append(repr(exc))
            latencies.append(time.perf_counter() - started)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)
    return latencies, raised


# -- item 9: a burst against a stalled store -------------------------------------------------------
@pytest.mark.parametrize("n", [200, 1000])
def test_burst_against_a_stalled_momento_costs_one_timeout_per_call(server: Any, n: int) -> None:
    """The stall outlasts the namespace-generation refresh, so every call must also read the
    generation: concurrent calls share that read instead of queueing for it one by one."""
    timeout = 0.25
    backend = momento_backend(server, timeout=timeout, generation_refresh=0.1)
    cache = _cache(backend, failures=10**6)  # no breaker: every call meets the stall
    sync_latencies: list[float] = []
    sync_raised: list[str] = []

    async def scenario() -> tuple[list[float], list[BaseException]]:
        await cache.aupdate("warm", LLM, [{"text": "x"}])
        assert await cache.alookup("warm", LLM) == [{"text": "x"}]
        server.delay(30)  # the store stalls
        await asyncio.sleep(0.15)  # ... for longer than the generation refresh
        sync = threading.Thread(
            target=lambda: [
                (sync_latencies.extend(lat), sync_raised.extend(err))
                for lat, err in [_sync_calls(cache, threads=3, calls=2)]
            ]
        )
        sync.start()
        result = await _burst(cache, n, "p")
        await asyncio.to_thread(sync.join, 20)
        await cache.aclose()
        return result

    started = time.perf_counter()
    latencies, raised = asyncio.run(scenario())
    wall = time.perf_counter() - started
    worst, p99 = _figures(latencies)
    print(
        f"\nstalled momento, {n} concurrent calls: max {worst:.3f} s, p99 {p99:.3f} s, "
        f"sync max {max(sync_latencies):.3f} s (timeout {timeout} s)"
    )
    assert not raised and not sync_raised
    assert len(latencies) == n and len(sync_latencies) == 6
    assert worst <= _limit(timeout), f"max added latency {worst:.3f} s"
    assert max(sync_latencies) <= _limit(timeout)
    assert cache.stats.as_dict()["errors"] >= 1  # the faults were seen, counted, not raised
    assert wall < 15


def test_slow_then_unavailable_is_not_retried_past_the_budget(server: Any) -> None:
    """Each attempt waits 0.45 s and then fails UNAVAILABLE: the SDK used to retry it three
    times, each with a fresh deadline (about four timeouts per call)."""
    timeout = 0.5
    backend = momento_backend(server, timeout=timeout, generation_refresh=60)
    cache = _cache(backend, failures=10**6)

    async def scenario() -> tuple[list[float], list[BaseException]]:
        await cache.aupdate("warm", LLM, [{"text": "x"}])
        server.delay(0.45)
        server.fail("unavailable")
        result = await _burst(cache, 200, "r")
        await cache.aclose()
        return result

    latencies, raised = asyncio.run(scenario())
    sync_latencies, sync_raised = _sync_calls(cache, threads=2, calls=1)
    cache.close()
    worst, p99 = _figures(latencies)
    print(
        f"\nslow+UNAVAILABLE momento, 200 calls: max {worst:.3f} s, p99 {p99:.3f} s, "
        f"sync max {max(sync_latencies):.3f} s (timeout {timeout} s)"
    )
    assert not raised and not sync_raised
    assert worst <= _limit(timeout) and max(sync_latencies) <= _limit(timeout)


def test_sync_batch_waits_one_budget_not_one_per_thread_round(server: Any) -> None:
    """get_many on max_concurrency threads: 40 stalled keys on 4 threads are 10 rounds of
    timeouts; a batch waits one budget and drops the rest, so the next batch does not queue
    behind the previous one's doomed calls."""
    from llmcache.errors import BackendUnavailable

    timeout = 0.25
    with momento_backend(server, timeout=timeout, max_concurrency=4) as store:
        store.set("k", b"v")
        server.delay(30, rpcs="get")
        store._generation.remember(store._generation.value or 0)  # generation is fresh
        for batch in range(3):
            started = time.perf_counter()
            with pytest.raises(BackendUnavailable):
                store.get_many([f"b{batch}-{i}" for i in range(40)])
            elapsed = time.perf_counter() - started
            assert elapsed <= _limit(timeout), f"batch {batch}: {elapsed:.3f} s"


# -- item 10: healthy store, threads and tasks together --------------------------------------------
def test_eight_threads_and_500_tasks_no_errors_no_lost_writes(momento_server: Any) -> None:
    backend = momento_backend(momento_server, timeout=2.0)
    cache = _cache(backend)
    acknowledged: list[str] = []
    raised: list[str] = []

    def thread(t: int) -> None:
        for i in range(60):
            prompt = f"t{t}-{i}"
            try:
                cache.lookup(prompt, LLM)
                cache.update(prompt, LLM, [{"text": prompt}])
                acknowledged.append(prompt)
            except BaseException as exc:
                raised.append(repr(exc))

    async def tasks() -> None:
        async def one(i: int) -> None:
            prompt = f"a{i}"
            try:
                await cache.alookup(prompt, LLM)
                await cache.aupdate(prompt, LLM, [{"text": prompt}])
                acknowledged.append(prompt)
            except BaseException as exc:
                raised.append(repr(exc))

        await asyncio.gather(*(one(i) for i in range(500)))

    workers = [threading.Thread(target=thread, args=(t,)) for t in range(8)]
    for worker in workers:
        worker.start()
    asyncio.run(tasks())
    for worker in workers:
        worker.join(timeout=20)
    stats = cache.stats.as_dict()
    lost = [p for p in acknowledged if cache.lookup(p, LLM) != [{"text": p}]]
    cache.close()
    print(
        f"\nmomento 8 threads + 500 tasks: errors {stats['errors']}, lost {len(lost)}, "
        f"writes {stats['writes']} of {len(acknowledged)}"
    )
    assert not raised
    assert len(acknowledged) == 8 * 60 + 500
    assert stats["errors"] == 0 and stats["skipped_open_circuit"] == 0
    assert stats["writes"] == len(acknowledged)
    assert lost == []


# -- item 11: one backend, two event loops ---------------------------------------------------------
def test_one_backend_used_from_two_event_loops(momento_server: Any) -> None:
    backend = momento_backend(momento_server, timeout=2.0)
    cache = _cache(backend)
    raised: list[str] = []

    def thread(t: int) -> None:
        async def rounds() -> None:
            async def one(i: int) -> None:
                prompt = f"{t}-{i % 50}"
                try:
                    await cache.alookup(prompt, LLM)
                    await cache.aupdate(prompt, LLM, [{"text": prompt}])
                except BaseException as exc:
                    raised.append(repr(exc))

            for _ in range(10):
                await asyncio.gather(*(one(i) for i in range(100)))

        asyncio.run(rounds())

    workers = [threading.Thread(target=thread, args=(t,)) for t in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)
    stats = cache.stats.as_dict()
    assert not raised
    assert stats["lookups"] == 2000 and stats["errors"] == 0
    assert stats["hits"] >= 1800  # 100 distinct prompts, 2000 lookups
    assert backend._clients._aclients == {}  # each loop's client closed when its loop shut down
    assert cache.lookup("0-1", LLM) == [{"text": "0-1"}]  # the sync side is unaffected
    cache.close()


async def test_cancellation_inside_the_sdk_is_a_miss_but_the_callers_own_propagates(
    server: Any,
) -> None:
    backend = momento_backend(server, timeout=2.0)
    cache = _cache(backend, failures=10**6)
    await cache.aupdate("warm", LLM, [{"text": "x"}])
    server.delay(0.5)
    # Another thread closes the backend while 50 calls are in flight on this loop: their RPCs
    # are cancelled under them. The callers see misses, not CancelledError.
    calls = [asyncio.ensure_future(cache.alookup(f"c{i}", LLM)) for i in range(50)]
    await asyncio.sleep(0.1)
    await asyncio.to_thread(backend.close)
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results == [None] * 50
    # The caller's own cancellation still cancels the caller.
    own = asyncio.ensure_future(cache.alookup("own", LLM))
    await asyncio.sleep(0.1)
    own.cancel()
    with pytest.raises(asyncio.CancelledError):
        await own
    await cache.aclose()


async def test_backend_maps_a_foreign_cancellation_to_a_store_error(server: Any) -> None:
    from llmcache.errors import BackendUnavailable

    store = momento_backend(server, timeout=2.0)
    await store.aset("k", b"v")
    server.delay(0.5)
    pending = asyncio.ensure_future(store.aget("k"))
    await asyncio.sleep(0.1)
    await asyncio.to_thread(store.close)
    with pytest.raises(BackendUnavailable):
        await pending
    await store.aclose()


# -- the SDK's own warning per failed call ---------------------------------------------------------
def test_sdk_warning_is_not_repeated_on_every_failed_call(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from llmcache.backends.momento import sdk

    reset = getattr(getattr(sdk, "SDK_LOG_FILTER", None), "reset", None)
    if reset is not None:
        reset()
    backend = momento_backend(server, timeout=0.5)
    cache = _cache(backend, failures=10**6)
    cache.update("warm", LLM, [{"text": "x"}])
    server.fail("invalid_argument")  # fails at once, never retried
    with caplog.at_level(logging.WARNING):
        for i in range(20):
            assert cache.lookup(f"w{i}", LLM) is None
        asyncio.run(cache.alookup("async", LLM))
    cache.close()
    sdk_records = [r for r in caplog.records if r.name == "momentosdk"]
    assert cache.stats.as_dict()["errors"] == 21
    assert len(sdk_records) == 1, [r.getMessage() for r in sdk_records]
    assert "\n" not in sdk_records[0].getMessage()  # one line, not five
