"""Redis Cluster while its topology changes, under load, seen by the caller through LLMCache.

Issue 15. A cluster of 3 masters + 3 replicas (``cluster-node-timeout`` 500 ms, from
``backends/redis/servers.py``) goes through one change per scenario, each on its own cluster:

- ``reshard_ask``: 1,000 slots move between two masters with the real protocol, and stay
  MIGRATING for :data:`HOLD` seconds after their keys moved: every key of them is an ASK;
- ``scale_out``: an empty master joins and takes a quarter of every master's slots;
- ``scale_in``: a shard (master + replica) of a 4-shard cluster gives its slots away and leaves;
- ``graceful_failover``: ``CLUSTER FAILOVER`` on a replica;
- ``hard_failover``: a master is SIGKILLed; its replica is promoted (~1.5 s).

The load (:class:`Load`), through ``LLMCache.from_url("redis+cluster://...")``: 2 sync threads
and 100 asyncio tasks, each looping over: look up a random *warm* prompt (300, written before the
load; its answer is known), write it back on a miss (as a LangChain call would after the model
answered), and write one *fresh* prompt (a new key each time). The store is watched per call:
the backend's ``get``/``set``/``aget``/``aset`` are wrapped on the instance, so each call records
whether the store was asked, what it raised (``LLMCache`` swallows it) and whether a write
returned. Figures, per scenario (printed as a table row):

- **exceptions**: anything ``lookup``/``update`` raised to the caller;
- **wrong hits**: a hit whose answer is not the one written for that prompt;
- **lost writes**: an *acknowledged* write is one whose ``set``/``aset`` returned without raising
  inside an ``update`` (a write skipped by a breaker, or that raised, is not acknowledged); after
  the cluster is stable again, a new cache on the same namespace must read every one of them back;
- **errors once stable**: store faults in calls started after every live node agrees on the slot
  map (:meth:`~backends.redis.servers.Cluster.wait_stable`). A budget timeout of an async call
  while its own event loop was :data:`LAGGING` (a ticker on each loop measures how late it runs)
  is the harness's, not the store's: it is counted apart (``loop-lag timeouts``);
- **recovery**: hit ratio of warm lookups in 100 ms buckets; the time from the promotion (or the
  end of the change) to the end of the last bucket below 0.99 — must be <= 2 s;
- **healthy skipped**: lookups of keys on a shard that is up (every shard for a reshard or scale,
  all but the failed master's for a failover) that the cache did not even ask (cluster-wide
  breaker or a node breaker open);
- **latency**: max and p99 of each call's duration (sync and async apart) from the start of the
  change; the bound is one op timeout (``socket_timeout``, 0.25 s) + :data:`LATENCY_MARGIN`,
  checked on the *probe*: 1 thread and 5 asyncio tasks on a loop of their own, paced, making the
  same calls on the same cache beside the load. The load's own loop runs 100 busy tasks on a
  2-CPU machine: its calls also wait for that loop (before any change its slowest async call
  already takes 70-160 ms, more when the machine is busy), so their latency is printed but
  measures the harness as much as the driver; the probe's loop is idle between its calls.

Each scenario runs once (the first of its tests runs it); each figure is its own test, so a target
the driver does not meet yet is an ``xfail`` with the measured figure (:data:`KNOWN_FAILURES`),
never a weaker assertion.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from backends.redis import servers
from llmcache import LLMCache
from llmcache.backends.redis import RedisClusterBackend
from llmcache.testing import server_missing

pytestmark = [pytest.mark.redis, pytest.mark.slow]

LLM = "[('_type', 'fake'), ('model_name', 'topology-test')]"
TIMEOUT = 0.25  # socket_timeout (the default): one call costs at most this...
LATENCY_MARGIN = 0.25  # ...plus this on a loaded 2-CPU CI machine
WARM = 300  # prompts written before the load; their lookups measure the hit ratio
SYNC_THREADS, TASKS = 2, 100
PACE_SYNC, PACE_ASYNC = 0.002, 0.1  # seconds each worker sleeps between rounds
PROBE_TASKS, PROBE_PACE = 5, 0.02  # the latency probe: 1 thread + 5 tasks on their own loop
TICK = 0.01  # each event loop's ticker sleeps this long and records how late it wakes up
LAGGING = TIMEOUT / 2  # a loop this late during a call ate half its budget: not the store's
BEFORE = 1.5  # seconds of load before the change...
RAMP = 0.5  # ...the first of which (clients connecting) is left out of the baseline latency
AFTER = 2.5  # seconds of load once the cluster is stable again (>= RECOVERY after promotion)
HOLD = 1.5  # seconds the resharded slots stay MIGRATING with their keys moved (all ASK)
RESHARD_SLOTS = 1000
RECOVERY = 2.0  # hit ratio >= RATIO within this many seconds of the promotion
RATIO = 0.99
BUCKET = 0.1  # seconds per hit-ratio bucket

SCENARIOS = ("reshard_ask", "scale_out", "scale_in", "graceful_failover", "hard_failover")
TARGETS = (
    "no_exceptions",
    "no_wrong_hits",
    "no_lost_writes",
    "no_errors_once_stable",
    "hit_ratio_recovers",
    "healthy_shards_not_skipped",
    "latency_one_timeout",
)
#: (scenario, target) -> why it still fails (figures of runs on a 2-CPU machine), an xfail with
#: strict=False; once a target passes in 3 consecutive runs of this file, its entry goes. Empty
#: since 2026-11-26: the issue 15 driver work (node watch, sync command loop, breaker rules, no
#: handshake extras) met every target, and the last entries (latency during a scale-out,
#: reshard and scale-in; errors once stable after a scale-in and a graceful failover) were the
#: harness's own event loop falling behind — 100 tasks on one loop of a 2-CPU machine — now
#: told apart by the latency probe and the loop-lag ticker. 3 runs in a row with a CPU burner
#: beside them: every target met, probe max 155-306 ms (bound 500), load async max up to 592 ms.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def answer(prompt: str) -> str:
    return f"answer to {prompt}"


# -- per-call observation -------------------------------------------------------------------------
@dataclass(slots=True)
class Call:
    """One ``lookup``/``update`` made by the load, and what the store did inside it."""

    kind: str  # "lookup" | "update"
    side: str  # "sync" | "async" (the load) | "probe sync" | "probe async" (the latency probe)
    prompt: str
    start: float
    end: float = 0.0
    asked: bool = False  # the store was called (not skipped by the cluster-wide breaker)
    fault: BaseException | None = None  # what the store raised (LLMCache swallowed it)
    wrote: bool = False  # a set returned: an acknowledged write
    result: str = ""  # lookups: "hit" | "miss" | "wrong"; "raised" when the caller got it


_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("call", default=None)


def _watch(backend: Any) -> None:
    """Wrap the backend's keyed calls on the instance: each records into the current Call."""

    def sync(fn: Callable[..., Any], writes: bool) -> Callable[..., Any]:
        @functools.wraps(fn)
        def watched(*args: Any) -> Any:
            call = _current.get()
            if call is None:
                return fn(*args)
            call.asked = True
            try:
                out = fn(*args)
            except BaseException as exc:
                call.fault = exc
                raise
            call.wrote = call.wrote or writes
            return out

        return watched

    def asynchronous(fn: Callable[..., Any], writes: bool) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def watched(*args: Any) -> Any:
            call = _current.get()
            if call is None:
                return await fn(*args)
            call.asked = True
            try:
                out = await fn(*args)
            except BaseException as exc:
                call.fault = exc
                raise
            call.wrote = call.wrote or writes
            return out

        return watched

    backend.get = sync(backend.get, False)
    backend.set = sync(backend.set, True)
    backend.aget = asynchronous(backend.aget, False)
    backend.aset = asynchronous(backend.aset, True)


def _skipped(call: Call) -> bool:
    """The cache did not ask the store: cluster-wide breaker open, or the node's breaker."""
    return not call.asked or (call.fault is not None and "skipped" in str(call.fault))


# -- the load -------------------------------------------------------------------------------------
class Load:
    """2 sync threads + 100 asyncio tasks (one loop, its own thread) on one LLMCache, and the
    latency probe: 1 thread + :data:`PROBE_TASKS` tasks on a loop of their own."""

    def __init__(self, cache: LLMCache, warm: list[str]) -> None:
        self.cache = cache
        self.warm = warm
        self.calls: list[Call] = []  # list.append is atomic: threads and the loop share it
        self.raised: list[BaseException] = []
        self.lags: dict[str, list[tuple[float, float]]] = {}  # side -> (tick end, lateness)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for i in range(SYNC_THREADS):
            self._threads.append(
                threading.Thread(target=self._sync_worker, args=(i, "sync", PACE_SYNC))
            )
        self._threads.append(
            threading.Thread(
                target=self._sync_worker, args=(SYNC_THREADS, "probe sync", PROBE_PACE)
            )
        )
        for side, tasks, pace in (
            ("async", TASKS, PACE_ASYNC),
            ("probe async", PROBE_TASKS, PROBE_PACE),
        ):
            main = self._async_main(side, tasks, pace)
            self._threads.append(threading.Thread(target=asyncio.run, args=(main,)))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self._threads), "load workers did not stop"

    def _record(self, call: Call, got: Any = None) -> None:
        call.end = time.monotonic()
        if call.kind == "lookup" and call.result != "raised":
            right = got == answer(call.prompt)
            call.result = "miss" if got is None else "hit" if right else "wrong"
        self.calls.append(call)

    def _lookup(self, prompt: str, side: str) -> bool:
        call = Call("lookup", side, prompt, time.monotonic())
        token = _current.set(call)
        got = None
        try:
            got = self.cache.lookup(prompt, LLM)
        except Exception as exc:
            call.result = "raised"
            self.raised.append(exc)
        finally:
            _current.reset(token)
            self._record(call, got)
        return call.result == "hit"

    def _update(self, prompt: str, side: str) -> None:
        call = Call("update", side, prompt, time.monotonic())
        token = _current.set(call)
        try:
            self.cache.update(prompt, LLM, answer(prompt))
        except Exception as exc:
            call.result = "raised"
            self.raised.append(exc)
        finally:
            _current.reset(token)
            self._record(call)

    async def _alookup(self, prompt: str, side: str) -> bool:
        call = Call("lookup", side, prompt, time.monotonic())
        _current.set(call)  # this task's own context
        got = None
        try:
            got = await self.cache.alookup(prompt, LLM)
        except Exception as exc:
            call.result = "raised"
            self.raised.append(exc)
        finally:
            _current.set(None)
            self._record(call, got)
        return call.result == "hit"

    async def _aupdate(self, prompt: str, side: str) -> None:
        call = Call("update", side, prompt, time.monotonic())
        _current.set(call)
        try:
            await self.cache.aupdate(prompt, LLM, answer(prompt))
        except Exception as exc:
            call.result = "raised"
            self.raised.append(exc)
        finally:
            _current.set(None)
            self._record(call)

    def _sync_worker(self, worker: int, side: str, pace: float) -> None:
        rng = random.Random(worker)
        n = 0
        while not self._stop.is_set():
            prompt = rng.choice(self.warm)
            if not self._lookup(prompt, side):
                self._update(prompt, side)  # the model answered: cache it
            self._update(f"fresh s{worker} {n}", side)
            n += 1
            time.sleep(pace)

    async def _async_worker(self, worker: int, side: str, pace: float) -> None:
        rng = random.Random(1000 + worker)
        n = 0
        await asyncio.sleep(rng.random() * pace)  # spread the tasks out
        while not self._stop.is_set():
            prompt = rng.choice(self.warm)
            if not await self._alookup(prompt, side):
                await self._aupdate(prompt, side)
            await self._aupdate(f"fresh a{worker} {n}", side)
            n += 1
            await asyncio.sleep(pace)

    async def _async_main(self, side: str, tasks: int, pace: float) -> None:
        first = 0 if side == "async" else TASKS  # distinct workers: distinct fresh prompts
        ticker = asyncio.create_task(self._tick(self.lags.setdefault(side, [])))
        results = await asyncio.gather(
            *(self._async_worker(first + i, side, pace) for i in range(tasks)),
            return_exceptions=True,
        )
        await ticker
        self.raised += [r for r in results if isinstance(r, BaseException)]

    async def _tick(self, lags: list[tuple[float, float]]) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            await asyncio.sleep(TICK)
            end = time.monotonic()
            lags.append((end, end - start - TICK))

    def lag(self, call: Call) -> float:
        """How late the call's event loop ran while the call was in flight (0 for threads)."""
        ticks = self.lags.get(call.side, [])
        return max((lag for end, lag in ticks if call.start < end <= call.end + TICK), default=0.0)


# -- one scenario ---------------------------------------------------------------------------------
@dataclass
class Figures:
    """What one scenario measured (times in seconds, monotonic)."""

    scenario: str
    calls: int = 0
    exceptions: int = 0
    wrong_hits: int = 0
    acked_writes: int = 0
    lost_writes: int = 0
    lost_examples: list[str] = field(default_factory=list)  # prompt, slot, when acked, side
    odd_faults: list[str] = field(default_factory=list)  # faults of no known kind, in full
    faults_during: int = 0  # store faults in calls started between change start and stable
    errors_once_stable: int = 0
    lag_timeouts: int = 0  # budget timeouts once stable while the call's own loop was LAGGING
    error_examples: list[str] = field(default_factory=list)
    last_error: float = 0.0  # seconds from "stable" to the end of the last faulty call
    fault_kinds: dict[str, int] = field(default_factory=dict)  # from the change start
    recovery: float = 0.0  # seconds from the reference time to hit ratio >= RATIO for good
    min_ratio: float = 1.0  # lowest bucket hit ratio from the change start
    healthy_lookups: int = 0
    healthy_skipped: int = 0
    healthy_misses: int = 0
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)  # side -> (max, p99)
    baseline: dict[str, tuple[float, float]] = field(default_factory=dict)
    change_seconds: float = 0.0
    promotion_after: float | None = None  # seconds from the change start to the promotion

    def row(self) -> str:
        lat = " ".join(
            f"{side} max {mx * 1e3:.0f} p99 {p99 * 1e3:.0f} ms"
            for side, (mx, p99) in sorted(self.latency.items())
        )
        base = " ".join(
            f"{side} max {mx * 1e3:.0f} p99 {p99 * 1e3:.0f}"
            for side, (mx, p99) in sorted(self.baseline.items())
        )
        promo = "" if self.promotion_after is None else f" promoted +{self.promotion_after:.2f}s"
        return (
            f"{self.scenario:<18} calls {self.calls:>6} | exc {self.exceptions} | wrong "
            f"{self.wrong_hits} | lost {self.lost_writes}/{self.acked_writes} acked | faults "
            f"during {self.faults_during}, once stable {self.errors_once_stable} (until "
            f"+{self.last_error:.2f}s; loop-lag timeouts {self.lag_timeouts}) | recovery "
            f"{self.recovery:.2f}s (min bucket {self.min_ratio:.2f}) | healthy skipped "
            f"{self.healthy_skipped}/{self.healthy_lookups} (misses {self.healthy_misses}) | "
            f"{lat} | baseline {base} | change {self.change_seconds:.2f}s{promo}\n"
            f"{'':<18} faults: {self.fault_kinds} {self.odd_faults}\n"
            f"{'':<18} lost: {self.lost_examples}"
        )


def _fault_kind(exc: BaseException | None) -> str:
    """A short, port-free name for a store fault (to sum them up)."""
    text = f"{exc} {exc.__cause__ if exc is not None else ''}"
    for marker in (
        "skipped",
        "Timeout",
        "timed out",
        "MOVED",
        "ASK",
        "CLUSTERDOWN",
        "NoneType",
        "closed",
        "refused",
        "TTL exhausted",
    ):
        if marker in text:
            return f"{type(exc).__name__}: {marker}"
    cause = exc.__cause__ if exc is not None else None
    return f"{type(exc).__name__}: {type(cause).__name__ if cause else str(exc)[:40]}"


def _is_timeout(exc: BaseException | None) -> bool:
    kind = _fault_kind(exc)
    return "Timeout" in kind or "timed out" in kind


def _holders(cluster: servers.Cluster, cache: LLMCache, prompt: str) -> list[int]:
    """Ports of the live nodes whose keyspace holds ``prompt``'s key (wherever the slot is)."""
    backend = cache.backend
    assert isinstance(backend, RedisClusterBackend)
    key = cache.policy.decide(prompt, LLM).key
    assert key is not None
    full, slot = backend._key(key), _key_slot(cache, prompt)
    return [
        n.port
        for n in cluster.live()
        if full in cluster.call(n, "CLUSTER", "GETKEYSINSLOT", slot, 1_000_000)
    ]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _key_slot(cache: LLMCache, prompt: str) -> int:
    from redis.crc import key_slot

    backend = cache.backend
    assert isinstance(backend, RedisClusterBackend)
    key = cache.policy.decide(prompt, LLM).key
    assert key is not None
    return int(key_slot(backend._key(key).encode()))


def _warm_prompts(cache: LLMCache, wanted: set[int] | None) -> list[str]:
    """WARM prompts; with ``wanted`` slots, a third of them in those slots (so they see ASK)."""
    if wanted is None:
        return [f"warm {i}" for i in range(WARM)]
    inside: list[str] = []
    outside: list[str] = []
    i = 0
    while len(inside) < WARM // 3 or len(outside) < WARM - WARM // 3:
        prompt = f"warm {i}"
        (inside if _key_slot(cache, prompt) in wanted else outside).append(prompt)
        i += 1
    return inside[: WARM // 3] + outside[: WARM - WARM // 3]


@dataclass
class Change:
    """What a scenario's topology change did: when, and which shard (if any) was down."""

    start: float = 0.0
    end: float = 0.0
    reference: float = 0.0  # promotion (failovers) or end of the change: recovery counts from it
    promoted: float | None = None
    down_port: int | None = None  # the master that failed (its keys are not "healthy")


def _change(scenario: str, cluster: servers.Cluster, moving: set[int]) -> Change:
    change = Change(start=time.monotonic())
    masters = cluster.masters()
    if scenario == "reshard_ask":
        cluster.migrate_slots(
            sorted(moving), masters[1], while_migrating=lambda _slots: time.sleep(HOLD)
        )
    elif scenario == "scale_out":
        cluster.scale_out()
    elif scenario == "scale_in":
        cluster.scale_in(masters[-1])
    elif scenario == "graceful_failover":
        failover = cluster.failover(masters[0])
        change.promoted, change.down_port = failover.promoted, masters[0].port
    elif scenario == "hard_failover":
        failover = cluster.kill_master(masters[0])
        change.promoted, change.down_port = failover.promoted, masters[0].port
    else:  # pragma: no cover
        raise AssertionError(scenario)
    cluster.wait_stable()
    change.end = time.monotonic()
    change.reference = change.promoted if change.promoted is not None else change.end
    return change


def _start(scenario: str) -> servers.Cluster:
    try:
        if scenario == "scale_in":  # a shard to remove: 4 masters + 4 replicas
            return servers.start_cluster(4, 1, node_timeout=servers.FAST_FAILOVER_NODE_TIMEOUT)
        return servers.start_replicated_cluster()
    except servers.ServerMissing as exc:
        server_missing(f"cannot start a Redis cluster for these tests: {exc}")
        raise  # pragma: no cover - server_missing raises


def run_scenario(scenario: str) -> Figures:
    cluster = _start(scenario)
    try:
        return _measure(scenario, cluster)
    finally:
        cluster.stop()


def _measure(scenario: str, cluster: servers.Cluster) -> Figures:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    cache = LLMCache.from_url(cluster.url, namespace=namespace)
    masters = cluster.masters()
    moving: set[int] = set()
    if scenario == "reshard_ask":
        moving = set(cluster.master_slots(masters[0])[:RESHARD_SLOTS])
    warm = _warm_prompts(cache, moving or None)
    for prompt in warm:
        cache.update(prompt, LLM, answer(prompt))
    assert cache.stats["errors"] == 0
    owner = cluster.slot_map()
    warm_port = {p: owner[_key_slot(cache, p)] for p in warm}
    _watch(cache.backend)

    with Load(cache, warm) as load:
        time.sleep(BEFORE)
        change = _change(scenario, cluster, moving)
        time.sleep(max(AFTER, change.reference + RECOVERY + 0.5 - time.monotonic()))
    load_end = time.monotonic()
    cache.close()
    return _figures(scenario, cluster, namespace, load, change, warm_port, load_end)


def _figures(
    scenario: str,
    cluster: servers.Cluster,
    namespace: str,
    load: Load,
    change: Change,
    warm_port: dict[str, int],
    load_end: float,
) -> Figures:
    calls = load.calls
    fig = Figures(scenario, calls=len(calls), change_seconds=change.end - change.start)
    if change.promoted is not None:
        fig.promotion_after = change.promoted - change.start
    fig.exceptions = len(load.raised)
    fig.wrong_hits = sum(c.result == "wrong" for c in calls)

    # errors: store faults seen inside calls (swallowed by LLMCache)
    during = [c for c in calls if c.start >= change.start and c.fault is not None]
    fig.faults_during = sum(c.start < change.end for c in during)
    late = [c for c in during if c.start >= change.end]
    lagged = [c for c in late if _is_timeout(c.fault) and load.lag(c) >= LAGGING]
    fig.lag_timeouts = len(lagged)
    late = [c for c in late if all(c is not x for x in lagged)]
    fig.errors_once_stable = len(late)
    fig.error_examples = sorted({f"{type(c.fault).__name__}: {c.fault}"[:200] for c in late})[:3]
    fig.last_error = max([0.0, *(c.end - change.end for c in late)])
    for c in during:
        kind = _fault_kind(c.fault)
        fig.fault_kinds[kind] = fig.fault_kinds.get(kind, 0) + 1
        if "ResponseError" in kind and len(fig.odd_faults) < 3:
            fig.odd_faults.append(f"{c.fault} <- {c.fault.__cause__!r}"[:300])

    # hit ratio of warm lookups per bucket, from the change start
    buckets: dict[int, list[bool]] = {}
    for c in calls:
        if c.kind == "lookup" and c.prompt in warm_port and c.start >= change.start:
            buckets.setdefault(int((c.start - change.start) / BUCKET), []).append(c.result == "hit")
    ratios = {b: sum(v) / len(v) for b, v in buckets.items() if len(v) >= 10}
    fig.min_ratio = min(ratios.values(), default=1.0)
    bad_ends = [change.start + (b + 1) * BUCKET for b, r in ratios.items() if r < RATIO]
    fig.recovery = max([0.0, *(t - change.reference for t in bad_ends)])

    # healthy shards: every key on a master that did not fail
    healthy = [
        c
        for c in calls
        if c.kind == "lookup"
        and c.prompt in warm_port
        and warm_port[c.prompt] != change.down_port
        and c.start >= change.start
    ]
    fig.healthy_lookups = len(healthy)
    fig.healthy_skipped = sum(_skipped(c) for c in healthy)
    fig.healthy_misses = sum(c.result != "hit" for c in healthy)

    # latency of every call from the change start; the baseline before it
    for side in ("sync", "async", "probe sync", "probe async"):
        spans = [c.end - c.start for c in calls if c.side == side and c.start >= change.start]
        fig.latency[side] = (max(spans, default=0.0), _pct(spans, 0.99))
        base = [
            c.end - c.start
            for c in calls
            if c.side == side and load.started + RAMP <= c.start < change.start
        ]
        fig.baseline[side] = (max(base, default=0.0), _pct(base, 0.99))

    # acknowledged writes read back once the cluster is stable
    acked = sorted({c.prompt for c in calls if c.kind == "update" and c.wrote})
    fig.acked_writes = len(acked)
    cluster.wait_stable()
    check = LLMCache.from_url(cluster.url, namespace=namespace)
    try:
        lost = [p for p in acked if check.lookup(p, LLM) != answer(p)]
        if check.stats["errors"]:  # a read that failed says nothing: ask again
            lost = [p for p in lost if check.lookup(p, LLM) != answer(p)]
    finally:
        check.close()
    fig.lost_writes = len(lost)
    acks = {c.prompt: c for c in calls if c.kind == "update" and c.wrote}
    fig.lost_examples = [
        f"{p!r} slot {_key_slot(check, p)} acked at +{acks[p].end - change.start:.3f}s "
        f"({acks[p].side}, {acks[p].end - acks[p].start:.3f}s), in the keyspace of "
        f"{_holders(cluster, check, p)}, slot owner {cluster.slot_map()[_key_slot(check, p)]}"
        for p in lost[:5]
    ]
    assert load_end > change.reference
    return fig


# -- the tests: one per (scenario, target) ---------------------------------------------------------
_results: dict[str, Figures | BaseException] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    scenario = request.node.callspec.params["scenario"]
    if scenario not in _results:
        try:
            _results[scenario] = run_scenario(scenario)
        except BaseException as exc:
            if isinstance(exc, pytest.skip.Exception):
                raise
            _results[scenario] = exc
        if isinstance(result := _results[scenario], Figures):
            print(f"\n{result.row()}")
    result = _results[scenario]
    if isinstance(result, BaseException):
        raise result
    yield result


def check(fig: Figures, target: str) -> None:
    if target == "no_exceptions":
        assert fig.exceptions == 0, fig.row()
    elif target == "no_wrong_hits":
        assert fig.wrong_hits == 0, fig.row()
    elif target == "no_lost_writes":
        assert fig.acked_writes > 0
        assert fig.lost_writes == 0, (fig.lost_examples, fig.row())
    elif target == "no_errors_once_stable":
        assert fig.errors_once_stable == 0, (fig.error_examples, fig.row())
    elif target == "hit_ratio_recovers":
        assert fig.recovery <= RECOVERY, fig.row()
    elif target == "healthy_shards_not_skipped":
        assert fig.healthy_lookups > 0
        assert fig.healthy_skipped == 0, fig.row()
    elif target == "latency_one_timeout":
        worst = max(fig.latency["probe sync"][0], fig.latency["probe async"][0])
        assert worst <= TIMEOUT + LATENCY_MARGIN, fig.row()
    else:  # pragma: no cover
        raise AssertionError(target)


def _params(scenario: str) -> list[Any]:
    params = []
    for target in TARGETS:
        reason = KNOWN_FAILURES.get((scenario, target))
        marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
        params.append(pytest.param(scenario, target, marks=marks, id=target))
    return params


@pytest.mark.parametrize(("scenario", "target"), _params("reshard_ask"))
def test_reshard_with_ask(figures: Figures, scenario: str, target: str) -> None:
    """1,000 slots move between masters and stay MIGRATING for 1.5 s: every key of them ASKs."""
    check(figures, target)


@pytest.mark.parametrize(("scenario", "target"), _params("scale_out"))
def test_scale_out(figures: Figures, scenario: str, target: str) -> None:
    """An empty master joins and takes a quarter of the slots (MIGRATE under load)."""
    check(figures, target)


@pytest.mark.parametrize(("scenario", "target"), _params("scale_in"))
def test_scale_in(figures: Figures, scenario: str, target: str) -> None:
    """A shard gives its slots away, is forgotten and shut down."""
    check(figures, target)


@pytest.mark.parametrize(("scenario", "target"), _params("graceful_failover"))
def test_graceful_failover(figures: Figures, scenario: str, target: str) -> None:
    """CLUSTER FAILOVER on a replica: the roles swap, nothing is lost."""
    check(figures, target)


@pytest.mark.parametrize(("scenario", "target"), _params("hard_failover"))
def test_hard_failover(figures: Figures, scenario: str, target: str) -> None:
    """A master is SIGKILLed; its replica is promoted after the node timeout (~1.5 s)."""
    check(figures, target)
