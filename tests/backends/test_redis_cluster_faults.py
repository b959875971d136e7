"""Redis Cluster with one master hung (SIGSTOP), seen by the caller through LLMCache.

A hung master must cost a call at most one timeout, then nothing: after a few faults the keys of
its slots are misses at once, while the keys of the other masters keep hitting (the cluster-wide
breaker stays closed), and once the master answers again it is used after its cooldown.

These tests start their own 3-master cluster (one per module): stopping a node of the session's
cluster would disturb the other tests. Every stopped node is SIGCONT'ed in a ``finally``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backends.redis import servers
from llmcache import CircuitBreaker, LLMCache
from llmcache.backends.redis import RedisClusterBackend
from llmcache.backends.redis.node_breaker import NodeBreakers, NodeUnavailable
from llmcache.errors import BackendUnavailable
from llmcache.registry import create_backend
from llmcache.testing import server_missing

pytestmark = pytest.mark.redis

LLM = "fake-llm"
TIMEOUT = 0.25  # the backend's socket timeouts (the defaults)
MARGIN = 0.2  # CI is loaded: the bound is one timeout plus this
FAST = 0.05  # "no wait": a skipped node's keys
NODE_FAILURES, NODE_COOLDOWN = 3, 1.0
ROUNDS = 8


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Any]:
    try:
        cluster = servers.start_cluster()
    except servers.ServerMissing as exc:
        server_missing(f"cannot start a Redis cluster for these tests: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def _cache(url: str) -> LLMCache:
    backend = create_backend(url, namespace=f"t{uuid.uuid4().hex[:12]}")
    assert isinstance(backend, RedisClusterBackend)
    backend.node_breakers = NodeBreakers(failures=NODE_FAILURES, cooldown=NODE_COOLDOWN)
    # The cluster-wide breaker as shipped (5 faults): it must stay closed for the healthy shards.
    return LLMCache(backend, breaker=CircuitBreaker(failures=5, cooldown=10.0))


def _prompts_by_node(cache: LLMCache, cluster: Any) -> tuple[list[str], list[str]]:
    """Prompts whose keys live on the master to hang, and prompts on the other masters."""
    backend = cache.backend
    assert isinstance(backend, RedisClusterBackend)
    client = backend._client()
    hung = f"127.0.0.1:{cluster.nodes[0].port}"
    on_hung: list[str] = []
    on_others: list[str] = []
    for i in range(200):
        prompt = f"question {i}"
        key = cache.policy.decide(prompt, LLM).key
        assert key is not None
        node = client.nodes_manager.get_node_from_slot(client.keyslot(backend._key(key))).name
        (on_hung if node == hung else on_others).append(prompt)
    assert len(on_hung) >= ROUNDS and len(on_others) >= ROUNDS
    return on_hung[:ROUNDS], on_others[:ROUNDS]


class Hung:
    """SIGSTOP a cluster node for the ``with`` block; SIGCONT whatever happens."""

    def __init__(self, node: Any) -> None:
        self.pid = node.proc.pid

    def __enter__(self) -> Hung:
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)


def _check(costs_hung: list[float], costs_ok: list[float], hits_ok: int, stats: Any) -> None:
    print(
        "one hung master, added latency per call (ms): hung shard max "
        f"{max(costs_hung) * 1e3:.0f}, after {NODE_FAILURES} faults max "
        f"{max(costs_hung[NODE_FAILURES:]) * 1e3:.1f}; healthy shards max {max(costs_ok) * 1e3:.1f}"
    )
    assert max(costs_hung) < TIMEOUT + MARGIN, costs_hung  # at most one timeout per call
    assert max(costs_hung[NODE_FAILURES:]) < FAST, costs_hung  # then the node is skipped
    assert hits_ok == ROUNDS and max(costs_ok) < TIMEOUT + MARGIN, costs_ok
    assert stats["skipped_open_circuit"] == 0  # the cluster-wide breaker never opened


def test_sync_hung_master_costs_one_timeout_then_nothing(own_cluster: Any) -> None:
    cache = _cache(own_cluster.url)
    try:
        on_hung, on_others = _prompts_by_node(cache, own_cluster)
        for prompt in on_hung + on_others:
            cache.update(prompt, LLM, f"answer to {prompt}")
        costs_hung, costs_ok, hits_ok = [], [], 0
        with Hung(own_cluster.nodes[0]):
            for hung_prompt, ok_prompt in zip(on_hung, on_others, strict=True):
                start = time.perf_counter()
                assert cache.lookup(hung_prompt, LLM) is None  # a miss, never an exception
                costs_hung.append(time.perf_counter() - start)
                start = time.perf_counter()
                hits_ok += cache.lookup(ok_prompt, LLM) is not None
                costs_ok.append(time.perf_counter() - start)
        _check(costs_hung, costs_ok, hits_ok, cache.stats)
        time.sleep(NODE_COOLDOWN + 0.1)  # the node's cooldown: the next call probes it
        assert cache.lookup(on_hung[0], LLM) is not None
        assert all(cache.lookup(p, LLM) is not None for p in on_hung)
    finally:
        cache.close()


async def test_async_hung_master_costs_one_timeout_then_nothing(own_cluster: Any) -> None:
    cache = _cache(own_cluster.url)
    try:
        on_hung, on_others = _prompts_by_node(cache, own_cluster)
        for prompt in on_hung + on_others:
            await cache.aupdate(prompt, LLM, f"answer to {prompt}")
        costs_hung, costs_ok, hits_ok = [], [], 0
        with Hung(own_cluster.nodes[0]):
            for hung_prompt, ok_prompt in zip(on_hung, on_others, strict=True):
                start = time.perf_counter()
                assert await cache.alookup(hung_prompt, LLM) is None
                costs_hung.append(time.perf_counter() - start)
                start = time.perf_counter()
                hits_ok += await cache.alookup(ok_prompt, LLM) is not None
                costs_ok.append(time.perf_counter() - start)
        _check(costs_hung, costs_ok, hits_ok, cache.stats)
        await asyncio.sleep(NODE_COOLDOWN + 0.1)
        assert await cache.alookup(on_hung[0], LLM) is not None
        assert all([await cache.alookup(p, LLM) is not None for p in on_hung])
    finally:
        await cache.aclose()


async def test_async_concurrent_calls_with_a_hung_master(own_cluster: Any) -> None:
    """50 concurrent lookups per round: each costs at most one timeout, healthy keys all hit."""
    cache = _cache(own_cluster.url)
    try:
        on_hung, on_others = _prompts_by_node(cache, own_cluster)
        for prompt in on_hung + on_others:
            await cache.aupdate(prompt, LLM, f"answer to {prompt}")

        async def timed(prompt: str) -> tuple[float, bool]:
            start = time.perf_counter()
            hit = await cache.alookup(prompt, LLM) is not None
            return time.perf_counter() - start, hit

        with Hung(own_cluster.nodes[0]):
            rounds = []
            for _ in range(3):
                batch = [p for pair in zip(on_hung, on_others, strict=True) for p in pair] * 3
                rounds.append(await asyncio.gather(*(timed(p) for p in batch)))
        worst = max(cost for results in rounds for cost, _ in results)
        print(f"50 concurrent lookups, one hung master: max {worst * 1e3:.0f} ms per call")
        assert worst < TIMEOUT + MARGIN
        healthy = [
            hit
            for results in rounds
            for (_, hit), p in zip(results, batch, strict=True)
            if p in on_others
        ]
        assert all(healthy)
        last = rounds[-1]  # the node is skipped by now: nobody waits for its timeout
        costs = sorted(cost for cost, _ in last)
        assert costs[len(costs) // 2] < FAST  # the typical call: no wait at all
        # The slowest of 50 concurrent calls waits only for the loop running the others (seen
        # 0.16 s on a loaded machine), never for the hung node's timeout.
        assert costs[-1] < TIMEOUT
        assert cache.stats["skipped_open_circuit"] == 0
    finally:
        await cache.aclose()


def test_new_event_loop_with_a_hung_slot0_master(own_cluster: Any) -> None:
    """A new loop's async client initialises although the owner of slot 0 (the driver's
    default node, asked for ``COMMAND``) is hung, and healthy keys hit from the first call."""
    cache = _cache(own_cluster.url)
    try:
        _, on_others = _prompts_by_node(cache, own_cluster)
        for prompt in on_others:
            cache.update(prompt, LLM, f"answer to {prompt}")
        slot0 = min(own_cluster.nodes, key=lambda n: _first_slot(cache, n.port))

        async def lookups() -> list[bool]:
            return [await cache.alookup(p, LLM) is not None for p in on_others]

        with Hung(slot0):
            first = asyncio.run(lookups())  # a fresh client: no node known to be hung yet
            second = asyncio.run(lookups())  # another loop: starts off knowing
        assert sum(first) >= ROUNDS - 1 and all(second)
        assert cache.stats["skipped_open_circuit"] == 0
    finally:
        cache.close()


def _first_slot(cache: LLMCache, port: int) -> int:
    backend = cache.backend
    assert isinstance(backend, RedisClusterBackend)
    slots: dict[int, list[Any]] = backend._client().nodes_manager.slots_cache
    return min(s for s, nodes in slots.items() if nodes[0].port == port)


def test_failover_style_slot_move_unblocks_the_slots(own_cluster: Any) -> None:
    """Breakers follow the slot map: a slot now owned by another node is not blocked."""
    cache = _cache(own_cluster.url)
    backend = cache.backend
    assert isinstance(backend, RedisClusterBackend)
    try:
        on_hung, _ = _prompts_by_node(cache, own_cluster)
        hung = f"127.0.0.1:{own_cluster.nodes[0].port}"
        for _ in range(NODE_FAILURES):
            backend.node_breakers[hung].failure()
        assert cache.lookup(on_hung[0], LLM) is None and backend.node_breakers.state(hung) == "open"
        errors = cache.stats["errors"]
        # The skip started a background slot-map refresh: let it finish before editing the map.
        for thread in threading.enumerate():
            if thread.name == "llmcache-cluster-refresh":
                thread.join(5)
        # As after a promotion: the slot map now names another master for these slots.
        client = backend._client()
        other = next(n for n in client.get_primaries() if n.name != hung)
        manager = client.nodes_manager
        saved = dict(manager.slots_cache)
        try:
            for slot, nodes in saved.items():
                if nodes[0].name == hung:
                    manager.slots_cache[slot] = [other]
            start = time.perf_counter()
            cache.lookup(on_hung[0], LLM)  # MOVED by the real owner; not skipped, not failed
            assert time.perf_counter() - start < TIMEOUT
            assert cache.stats["errors"] == errors
        finally:
            manager.slots_cache.update(saved)
    finally:
        cache.close()


def _fault(cause: Exception) -> None:
    """Raise what the backend raises for a driver error: BackendUnavailable from it."""
    try:
        raise cause
    except Exception as exc:
        raise BackendUnavailable(f"GET failed: {exc}") from exc


def test_a_timeout_while_the_node_answers_others_is_not_a_node_fault() -> None:
    """Calls cut by their budget while the node answered other calls meanwhile (an event loop
    running late, a starved thread) never open its breaker; a node that answers no one does,
    and a refused connection always counts."""
    nodes = NodeBreakers(failures=2, cooldown=10.0, span=0.0)
    for _ in range(5):
        with pytest.raises(NodeUnavailable), nodes.guard("n:1"):
            time.sleep(0.002)
            with nodes.guard("n:1"):
                pass  # another call, answered while this one waited
            _fault(RedisTimeoutError("no answer within the call's budget (0.25 s)"))
    assert nodes.state("n:1") == "closed"
    for _ in range(2):
        with pytest.raises(NodeUnavailable), nodes.guard("n:1"):
            _fault(RedisTimeoutError("no answer within the call's budget (0.25 s)"))
    assert nodes.state("n:1") == "open"
    with pytest.raises(NodeUnavailable), nodes.guard("n:2"):
        time.sleep(0.002)
        with nodes.guard("n:2"):
            pass
        _fault(RedisConnectionError("Connection refused"))
    assert nodes["n:2"].faulty  # counted although the node answered another call


def test_a_burst_of_simultaneous_timeouts_does_not_open_the_breaker() -> None:
    """A node that stalls for a moment times out a batch of concurrent calls at once: its
    breaker opens only when the faults span ``span`` seconds (a hung node's keep coming)."""
    nodes = NodeBreakers(failures=3, cooldown=10.0, span=0.1)
    for _ in range(20):  # one moment: 20 calls time out together
        with pytest.raises(NodeUnavailable), nodes.guard("n:1"):
            _fault(RedisTimeoutError("no answer within the call's budget (0.25 s)"))
    assert nodes.state("n:1") == "closed"
    time.sleep(0.12)
    with pytest.raises(NodeUnavailable), nodes.guard("n:1"):
        _fault(RedisTimeoutError("no answer within the call's budget (0.25 s)"))
    assert nodes.state("n:1") == "open"
