"""Redis under concurrency, through LLMCache (the caller's view): bursts against a hung server,
a healthy server under threads + hundreds of tasks, one cache shared by two event loops.

The promise checked: no call raises, a store fault is a miss, and a call's added latency is one
budget (``socket_timeout``, + ``socket_connect_timeout`` when it opens a connection) whatever
the concurrency; a healthy server under load gives 0 errors and every acknowledged write reads
back. Margins are generous (CI machines are loaded): the point is one timeout, not several.
Server fixtures (``standalone``, ``cluster``, ``own_server``) come from tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from typing import Any

import pytest

from llmcache import LLMCache

pytestmark = pytest.mark.redis

LLM = "[('_type', 'fake'), ('model_name', 'load-test')]"
TIMEOUT = 0.25  # socket_timeout and socket_connect_timeout of these tests (the defaults)
# One budget (a connect + a command at most) and a wide margin for a loaded CI machine; the
# code before the fix cost 1.1 s (200 calls) and 2.4 s (1000 calls).
BOUND = 2 * TIMEOUT + 0.3


def _cache(url: str) -> LLMCache:
    return LLMCache.from_url(
        url,
        namespace=f"t{uuid.uuid4().hex[:12]}",
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )


async def _timed_lookup(cache: LLMCache, prompt: str) -> float:
    start = time.perf_counter()
    assert await cache.alookup(prompt, LLM) is None  # a miss, never an exception
    return time.perf_counter() - start


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- item 9: a burst against a hung server costs each call one budget ----------------------------
@pytest.mark.parametrize("calls", [200, pytest.param(1000, marks=pytest.mark.slow)])
def test_async_burst_on_a_hung_redis_costs_each_call_one_timeout(
    own_server: Any, calls: int
) -> None:
    async def run() -> list[float]:
        cache = _cache(own_server.url)
        try:
            await cache.aupdate("warm", LLM, {"text": "x"})  # the pool holds a connection
            os.kill(own_server.proc.pid, signal.SIGSTOP)
            try:
                return list(
                    await asyncio.gather(*(_timed_lookup(cache, f"q{i}") for i in range(calls)))
                )
            finally:
                os.kill(own_server.proc.pid, signal.SIGCONT)
        finally:
            await cache.aclose()

    costs = asyncio.run(run())
    print(f"{calls} async calls, hung Redis: max {max(costs):.3f} s, p99 {_pct(costs, 0.99):.3f} s")
    assert len(costs) == calls
    assert _pct(costs, 0.99) < BOUND
    # The slowest of 1000 also waits for the loop to run the others' key derivation (CPU, not
    # the store): still far from the several timeouts a call cost before (max 2.4-2.6 s).
    assert max(costs) < (BOUND if calls <= 200 else 1.5 * BOUND)


def test_sync_burst_on_a_hung_redis_costs_each_call_one_timeout(own_server: Any) -> None:
    cache = _cache(own_server.url)
    costs: list[float] = []
    failures: list[BaseException] = []

    def call(i: int) -> None:
        start = time.perf_counter()
        try:
            assert cache.lookup(f"s{i}", LLM) is None
        except BaseException as exc:  # collected: a thread's exception would be lost
            failures.append(exc)
        costs.append(time.perf_counter() - start)

    try:
        cache.update("warm", LLM, {"text": "x"})
        os.kill(own_server.proc.pid, signal.SIGSTOP)
        try:
            # 3x the pool: calls wait for a connection. (300 threads made the test measure the
            # GIL: all wake at the timeout and finish one by one; seen 0.49 s on a loaded box.)
            threads = [threading.Thread(target=call, args=(i,)) for i in range(150)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            os.kill(own_server.proc.pid, signal.SIGCONT)
    finally:
        cache.close()
    print(f"150 sync calls, hung Redis: max {max(costs):.3f} s, p99 {_pct(costs, 0.99):.3f} s")
    assert not failures
    # 150 threads on a 50-connection pool: waits for a connection are inside the budget. The
    # typical call pays one timeout; the slowest also waits for the GIL while 150 threads wake
    # at once on 2 loaded CPUs (seen: 0.49 and 0.56 s in full runs), never a second timeout's
    # worth on top (the bug this guards: several timeouts, 2.4-2.6 s).
    assert _pct(costs, 0.9) < TIMEOUT + 0.2
    assert max(costs) < 2 * TIMEOUT + 0.2


# -- item 10: healthy server, 8 threads + 500 tasks: 0 errors, 0 lost writes ---------------------
def _threads_and_tasks(url: str) -> tuple[int, int]:
    """8 threads of sync calls and bursts of 500 tasks on a fresh cache: (errors, lost writes).

    It hunts errors of the connect storm (races in the pool), not latency: 500 tasks and 8
    threads on 2 loaded CPUs once kept calls waiting past the 0.25 s budget (343 misses in one
    fresh-venv run), so it runs with a roomy timeout; a race still shows as an error."""
    cache = LLMCache.from_url(
        url, namespace=f"t{uuid.uuid4().hex[:12]}", socket_timeout=2.0, socket_connect_timeout=2.0
    )
    acked: list[str] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(150):
            prompt = f"s{t}-{i}"
            cache.lookup(prompt, LLM)
            cache.update(prompt, LLM, {"text": prompt})
            with lock:
                acked.append(prompt)

    async def one(prompt: str) -> None:
        await cache.alookup(prompt, LLM)
        await cache.aupdate(prompt, LLM, {"text": prompt})
        acked.append(prompt)

    async def tasks() -> None:
        for r in range(2):
            await asyncio.gather(*(one(f"a{r}-{j}") for j in range(500)))
        await cache.aclose()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    errors = cache.stats["errors"]
    lost = sum(cache.lookup(prompt, LLM) is None for prompt in acked)
    cache.clear()
    cache.close()
    return errors, lost


@pytest.mark.slow
@pytest.mark.parametrize(
    "server",
    ["standalone", "cluster"],
)
def test_threads_and_hundreds_of_tasks_on_a_healthy_redis_lose_nothing(
    request: pytest.FixtureRequest, server: str
) -> None:
    url = request.getfixturevalue(server).url
    # Each round a fresh cache: the connect storm of a first burst, where the errors were.
    rounds = [_threads_and_tasks(url) for _ in range(3)]
    print(f"{server}: 8 threads + 500 tasks, (errors, lost writes) per round: {rounds}")
    assert rounds == [(0, 0)] * 3


# -- item 11: one cache, two event loops at once -------------------------------------------------
@pytest.mark.parametrize(
    "server",
    ["standalone", "cluster"],
)
def test_one_cache_used_from_two_event_loops_at_once(
    request: pytest.FixtureRequest, server: Any
) -> None:
    url = request.getfixturevalue(server).url
    cache = _cache(url)
    failures: list[BaseException] = []
    hits = [0, 0]

    def loop_thread(n: int) -> None:
        async def main() -> None:
            for r in range(4):  # asyncio.run per round: loops end while the other one runs
                await asyncio.sleep(0)
                prompts = [f"l{n}-{r}-{i}" for i in range(40)]
                await asyncio.gather(*(cache.aupdate(p, LLM, {"text": p}) for p in prompts))
                answers = await asyncio.gather(*(cache.alookup(p, LLM) for p in prompts))
                hits[n] += sum(a is not None for a in answers)

        try:
            for _ in range(3):
                asyncio.run(main())
        except BaseException as exc:
            failures.append(exc)

    try:
        threads = [threading.Thread(target=loop_thread, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        cache.clear()
        cache.close()
    assert not failures
    assert cache.stats["errors"] == 0 and cache.breaker.state == "closed"
    assert hits == [3 * 4 * 40] * 2


def test_chat_history_on_a_hung_redis_fails_within_one_timeout(own_server: Any) -> None:
    """History raises on a fault (it is state), but never after more than one timeout."""
    from langchain_core.messages import HumanMessage

    from llmcache.adapters.langchain import LangChainChatHistory
    from llmcache.errors import BackendError

    history = LangChainChatHistory.from_url(own_server.url, session_id="s")
    history.add_messages([HumanMessage("hi")])
    os.kill(own_server.proc.pid, signal.SIGSTOP)
    try:
        for call in (
            lambda: history.messages,
            lambda: history.add_messages([HumanMessage("again")]),
            lambda: asyncio.run(history.aget_messages()),
            lambda: asyncio.run(history.aadd_messages([HumanMessage("again")])),
        ):
            start = time.perf_counter()
            with pytest.raises(BackendError):
                call()
            assert time.perf_counter() - start < 1.0
    finally:
        os.kill(own_server.proc.pid, signal.SIGCONT)
    assert [m.content for m in history.messages] == ["hi"]
    history.clear()


# -- issue 10: a fresh pool under a burst opens a few connections at a time and reuses them ------
def test_first_burst_opens_a_few_connections_at_a_time_and_reuses_them(
    standalone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmcache.backends.redis import pool_async as pools

    opening: list[int] = []
    real_opened = pools.AsyncPool._opened

    def opened(self: Any) -> None:
        opening.append(self._opening)  # opens in flight, this one included
        real_opened(self)

    async def run() -> tuple[int, int, int]:
        cache = _cache(standalone.url)
        try:
            prompts = [f"burst-{i}" for i in range(64)]
            await asyncio.gather(*(cache.aupdate(p, LLM, {"text": p}) for p in prompts[:1]))
            cache.backend._async.drop()  # the burst below starts on a fresh pool
            answers = await asyncio.gather(*(cache.alookup(p, LLM) for p in prompts))
            client = await cache.backend._async.client()
            pool = client.connection_pool
            hits = sum(a is not None for a in answers)
            return hits, len(pool._available_connections), pool.max_connections
        finally:
            await cache.aclose()

    monkeypatch.setattr(pools.AsyncPool, "_opened", opened)
    hits, connections, most = asyncio.run(run())
    assert hits == 1  # one prompt stored; the 63 others are misses, never errors
    assert opening and max(opening) <= pools.OPENING
    print(f"opens in flight at most {max(opening)}, connections after the burst {connections}")
    assert connections < most  # calls reused connections given back (all 50 opened before)


# -- a late event loop is not the store's silence ------------------------------------------------
@pytest.fixture
def own_store(request: pytest.FixtureRequest) -> Any:
    """A server (``standalone``) or a 3-master cluster of this test's own, to pause."""
    if request.param == "standalone":
        server = request.getfixturevalue("own_server")
        yield server.url, [server.proc.pid]
        return
    from backends.redis import servers
    from llmcache.testing import server_missing

    try:
        cluster = servers.start_cluster()
    except servers.ServerMissing as exc:
        server_missing(f"cannot start a Redis cluster for this test: {exc}")
    try:
        yield cluster.url, [node.proc.pid for node in cluster.nodes]
    finally:
        cluster.stop()


@pytest.mark.parametrize("own_store", ["standalone", "cluster"], indirect=True)
def test_replies_that_wait_for_a_blocked_event_loop_are_hits(own_store: Any) -> None:
    """60 lookups are in flight; the server answers after 0.1 s, while the application has
    blocked its event loop (a sync call, a CPU-bound step) for 0.4 s. The answers wait in the
    sockets: each call's budget forgives a late loop once, so they are hits. A driver read
    timeout (0.25 s of wall clock, the cluster client's before) failed all 60 as timeouts."""
    url, pids = own_store
    cache = _cache(url)
    prompts = [f"blocked loop {i}" for i in range(60)]
    for prompt in prompts:
        cache.update(prompt, LLM, f"answer to {prompt}")

    def pause(seconds: float) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        threading.Timer(seconds, lambda: [os.kill(pid, signal.SIGCONT) for pid in pids]).start()

    async def run() -> list[Any]:
        # A connection per concurrent lookup first: the lookups below read, not connect.
        await asyncio.gather(*(cache.alookup(p, LLM) for p in prompts))
        pause(0.1)  # the server answers 0.1 s from now...
        asyncio.get_running_loop().call_later(0.05, time.sleep, 0.4)  # ...into a blocked loop
        return await asyncio.gather(*(cache.alookup(p, LLM) for p in prompts))

    try:
        errors = cache.stats["errors"]
        answers = asyncio.run(run())
        assert cache.stats["errors"] == errors, "a late event loop was taken for a silent store"
        assert answers == [f"answer to {p}" for p in prompts]
    finally:
        cache.clear()
        cache.close()
