"""The hit-path modes of ``benchmarks/peers.py``: cold and warm, Zipf, first burst, growth curve.

    python benchmarks/peers.py --mode hitpath [--quick] [--json PATH]   # cold, warm, Zipf, bursts
    python benchmarks/peers.py --mode growth [--growth-max 1000000]     # hit p50 vs entries

Every subject reads the same chat answer (~1.4 KB stored) under the realistic ~1 KB ChatOpenAI
``llm_string`` of :mod:`_workload`; every ratio is to the raw driver op on the same bytes measured
in the same run, rounds interleaved (a noisy 2-CPU box: read ratios, not microseconds).

- **cold**: each entry is read once, after it was written (production's common case: the memo of
  decoded answers has never seen it); **warm**: 64 entries read again and again (memo hits).
- **zipf**: lookups drawn with P(rank k) ~ 1/k^1.1 over 10^4 prompts: a head of repeats (warm)
  and a long tail of first reads (cold), as real traffic.
- **async burst**: hits/s of lookups bounded by ``asyncio.Semaphore(64)`` (the usual app
  pattern), cold and warm; **first burst**: 64 concurrent lookups on a fresh cache (no pooled
  connection yet) against the next burst of the same cache and against its 3rd-6th bursts
  (warm: the pool holds what it opens under this load).
- **momento**: the local Momento server in a child process; the raw op is the SDK's ``get``
  (``CacheClient`` / ``CacheClientAsync``) of the very bytes we store, in another cache.
- **growth**: cold hit p50 as the store grows 10^3 -> 10^5 (10^6 with ``--growth-max``), for
  memory, disk and Redis (a server without maxmemory), and bytes of process memory per entry for
  ``memory://``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from _servers import MomentoServer, start_redis
from _workload import LLM_STRING, prompt

from llmcache.adapters._generations import generations_to_json
from llmcache.adapters.langchain import LangChainCache

__all__ = ["growth", "hitpath", "zipf_ranks"]

CONCURRENCY = 64
ZIPF_S, ZIPF_PROMPTS = 1.1, 10_000
WARM_KEYS = 64  # entries the warm mode reads again and again (all within the memo)


@dataclass
class Series:
    """One subject's samples in one mode: per-op latencies (s) or hits/s per round."""

    name: str
    group: str
    role: str  # raw | ours | peer
    samples: list[float] = field(default_factory=list)
    misses: int = 0

    def p(self, q: float) -> float | None:
        if not self.samples:
            return None
        data = sorted(self.samples)
        return data[min(len(data) - 1, int(q * len(data)))]

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def zipf_ranks(n: int, count: int, s: float = ZIPF_S, seed: int = 11) -> list[int]:
    """``count`` indices in ``range(n)`` drawn with P(k) proportional to 1/(k+1)^s."""
    weights = [1.0 / (k + 1) ** s for k in range(n)]
    cumulative = list(itertools.accumulate(weights))
    rng = random.Random(seed)
    return rng.choices(range(n), cum_weights=cumulative, k=count)


def _answer() -> Any:
    from peers import CHAT_ANSWER

    return CHAT_ANSWER


# -- the subjects of one group: ours, the raw driver op, the community peer -----------------------
@dataclass
class Group:
    """One backend: our cache, the raw driver op on the very bytes it stores, the community peer."""

    name: str
    ours: LangChainCache
    raw_read: Callable[[Any], Any]  # raw driver op on a raw key
    raw_aread: Callable[[Any], Awaitable[Any]]
    raw_write: Callable[[Any, bytes], Any] | None  # None: the raw op reads our own store
    peer: Any = None  # community cache (BaseCache), filled with the same entries
    peer_name: str = ""
    raw_keys: dict[int, Any] = field(default_factory=dict)  # entry index -> raw key
    closers: list[Callable[[], Any]] = field(default_factory=list)
    aclosers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    def raw_get(self, i: int) -> Any:
        return self.raw_read(self.raw_keys[i])

    def raw_aget(self, i: int) -> Awaitable[Any]:
        return self.raw_aread(self.raw_keys[i])

    def fill(self, indices: range, *, peer: bool = True) -> None:
        """Store these entries in our cache, the raw store (same bytes) and the peer."""
        answer = _answer()
        backend = self.ours.cache.backend
        for i in indices:
            self.ours.update(prompt(i), LLM_STRING, answer)
            if peer and self.peer is not None:
                self.peer.update(prompt(i), LLM_STRING, answer)
            key = _key(self.ours, i)
            if self.raw_write is None:  # redis: the raw GET reads our key
                self.raw_keys[i] = backend._key(key)
            else:
                self.raw_keys[i] = backend._key(key)
                value = backend.get(key)
                assert value is not None
                self.raw_write(self.raw_keys[i], value)


def _groups(tmp: str, redis_url: str, momento: str | None = None) -> list[Group]:
    import diskcache
    import redis
    import redis.asyncio
    from langchain_community.cache import RedisCache, SQLiteCache

    table: dict[str, bytes] = {}
    raw_dc = diskcache.Cache(f"{tmp}/raw")
    sync_client = redis.Redis.from_url(redis_url)
    async_client = redis.asyncio.Redis.from_url(redis_url)
    community = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1")
    groups = [
        Group(
            "memory",
            LangChainCache.from_url("memory://?max_entries=10000000"),
            table.get,
            _async(table.get),
            table.__setitem__,
        ),
        Group(
            "disk",
            LangChainCache.from_url(f"disk://{tmp}/llmcache?size_limit=16GB"),
            raw_dc.get,
            _async(raw_dc.get),
            raw_dc.set,
            SQLiteCache(database_path=f"{tmp}/lite.sqlite"),
            "community SQLiteCache",
            closers=[raw_dc.close],
        ),
        Group(
            "redis",
            LangChainCache.from_url(redis_url),
            sync_client.get,
            async_client.get,
            None,
            RedisCache(community),
            "community RedisCache",
            closers=[sync_client.close, community.close],
            aclosers=[async_client.aclose],
        ),
    ]
    if momento is not None:
        groups.append(_momento_group(momento))
    for g in groups:
        g.closers.append(g.ours.close)
    return groups


def _momento_group(address: str) -> Group:
    """Momento (local server): the raw op is the SDK's ``get`` of the very bytes we store.

    No community peer: LangChain's MomentoCache reads back only plain-LLM generations.
    """
    from datetime import timedelta

    from momento import CacheClient, CacheClientAsync, Configurations, CredentialProvider
    from momento.responses import CacheGet

    host, _, port = address.rpartition(":")
    creds = CredentialProvider.for_momento_local(host, int(port))
    config = Configurations.InRegion.Default.v1()  # llmcache's default configuration
    ttl = timedelta(hours=1)
    client = CacheClient(config, creds, ttl)
    aclients: list[Any] = []  # made in the event loop that uses it (grpc.aio binds to a loop)

    def raw_get(key: str) -> bytes | None:
        response = client.get("raw", key)
        return response.value_bytes if isinstance(response, CacheGet.Hit) else None

    async def raw_aget(key: str) -> bytes | None:
        if not aclients:
            aclients.append(CacheClientAsync(config, creds, ttl))
        response = await aclients[0].get("raw", key)
        return response.value_bytes if isinstance(response, CacheGet.Hit) else None

    async def aclose() -> None:
        while aclients:
            await aclients.pop().__aexit__(None, None, None)

    return Group(
        "momento",
        LangChainCache.from_url(f"momento://llmcache?local={address}"),
        raw_get,
        raw_aget,
        lambda key, value: client.set("raw", key, value),
        closers=[lambda: client.__exit__(None, None, None)],
        aclosers=[aclose],
    )


def _async(fn: Callable[[Any], Any]) -> Callable[[Any], Awaitable[Any]]:
    async def call(key: Any) -> Any:
        return fn(key)

    return call


def _key(cache: LangChainCache, i: int) -> str:
    key = cache.cache.policy.decide(prompt(i), LLM_STRING).key
    assert key is not None
    return key


# -- sync: cold, warm and Zipf, interleaved ----------------------------------------------------
def _timed(fn: Callable[[int], Any], indices: list[int], series: Series) -> None:
    clock = time.perf_counter
    for i in indices:
        t0 = clock()
        got = fn(i)
        series.samples.append(clock() - t0)
        series.misses += got is None


def _subjects(g: Group) -> list[tuple[str, str, Callable[[int], Any]]]:
    ours, peer = g.ours, g.peer
    out: list[tuple[str, str, Callable[[int], Any]]] = [
        ("raw", "raw", g.raw_get),
        ("llmcache", "ours", lambda i: ours.lookup(prompt(i), LLM_STRING)),
    ]
    if peer is not None:
        out.append((g.peer_name, "peer", lambda i: peer.lookup(prompt(i), LLM_STRING)))
    return out


def sync_modes(
    groups: list[Group], per_round: int, rounds: int, zipf: list[int]
) -> dict[str, list[Series]]:
    """Cold (each entry once), warm (WARM_KEYS entries again and again) and Zipf, per group."""
    modes: dict[str, list[Series]] = {"cold": [], "warm": [], "zipf": []}
    table: dict[tuple[str, str, str], Series] = {}
    for g in groups:
        for name, role, _ in _subjects(g):
            for mode, series in modes.items():
                table[(mode, g.name, name)] = s = Series(name, g.name, role)
                series.append(s)
    warm = list(range(WARM_KEYS)) * max(1, per_round // WARM_KEYS)
    for g in groups:  # warm entries read twice before timing: memoised from then on
        for _, _, fn in _subjects(g):
            for i in range(WARM_KEYS):
                fn(i)
                fn(i)
    zipf_chunk = max(1, len(zipf) // rounds)
    for r in range(rounds):
        # Each round's cold entries were written and never read; Zipf entries are apart.
        cold = list(range(WARM_KEYS + r * per_round, WARM_KEYS + (r + 1) * per_round))
        chunk = [ZIPF_OFFSET + k for k in zipf[r * zipf_chunk : (r + 1) * zipf_chunk]]
        for g in groups:
            for name, _, fn in _subjects(g):
                _timed(fn, cold, table[("cold", g.name, name)])
                _timed(fn, warm, table[("warm", g.name, name)])
                _timed(fn, chunk, table[("zipf", g.name, name)])
    return modes


# -- async: bursts through a semaphore, and the first burst of a fresh cache ---------------------
async def _burst(fn: Callable[[int], Awaitable[Any]], indices: list[int]) -> tuple[float, int]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> Any:
        async with sem:
            return await fn(i)

    t0 = time.perf_counter()
    got = await asyncio.gather(*(one(i) for i in indices))
    elapsed = time.perf_counter() - t0
    misses = sum(x is None for x in got)
    return (len(indices) - misses) / elapsed, misses


async def async_modes(
    groups: list[Group], per_round: int, rounds: int, start: int
) -> dict[str, list[Series]]:
    """hits/s of cold and warm bursts (Semaphore(64)), interleaved."""
    modes: dict[str, list[Series]] = {"async cold": [], "async warm": []}
    subjects: list[tuple[Group, str, str, Callable[[int], Awaitable[Any]]]] = []
    for g in groups:
        ours, peer = g.ours, g.peer
        subjects += [
            (g, "raw", "raw", g.raw_aget),
            (g, "llmcache", "ours", lambda i, c=ours: c.alookup(prompt(i), LLM_STRING)),
        ]
        if peer is not None:
            subjects.append(
                (g, g.peer_name, "peer", lambda i, c=peer: c.alookup(prompt(i), LLM_STRING))
            )
    table: dict[tuple[str, str, str], Series] = {}
    for mode, series in modes.items():
        for g, name, role, _ in subjects:
            table[(mode, g.name, name)] = s = Series(name, g.name, role)
            series.append(s)
    warm = list(range(WARM_KEYS)) * max(1, per_round // WARM_KEYS)
    for _, _, _, fn in subjects:  # connections open, warm entries memoised
        await _burst(fn, list(range(WARM_KEYS)) * 2)
    for r in range(rounds):
        cold = list(range(start + r * per_round, start + (r + 1) * per_round))
        for g, name, _, fn in subjects:
            for mode, batch in (("async cold", cold), ("async warm", warm)):
                rate, misses = await _burst(fn, batch)
                table[(mode, g.name, name)].samples.append(rate)
                table[(mode, g.name, name)].misses += misses
    return modes


BURSTS = 6  # bursts per fresh cache: the first, the next, then four more ("warm": 3rd-6th)


async def first_bursts(
    redis_url: str, rounds: int, start: int, raw_keys: dict[int, Any]
) -> dict[str, list[float]]:
    """ms of the first 64-way burst of a fresh cache (no connection yet), of its next one, and
    of its 3rd-6th (warm: the pool has what it opens under this load; median of the four)."""
    import redis.asyncio

    labels = ("first", "next", "warm")
    names = [f"{who} {burst}" for who in ("llmcache", "raw") for burst in labels]
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        base = start + r * CONCURRENCY * BURSTS * 2
        ours = LangChainCache.from_url(redis_url)
        raw = redis.asyncio.Redis.from_url(redis_url)
        subjects: list[tuple[str, Callable[[int], Awaitable[Any]], int]] = [
            ("llmcache", lambda i, c=ours: c.alookup(prompt(i), LLM_STRING), base),
            ("raw", lambda i, c=raw: c.get(raw_keys[i]), base + BURSTS * CONCURRENCY),
        ]
        try:
            for name, fn, first in subjects:
                warm: list[float] = []
                for burst in range(BURSTS):
                    offset = first + burst * CONCURRENCY
                    batch = range(offset, offset + CONCURRENCY)
                    t0 = time.perf_counter()
                    got = await asyncio.gather(*(fn(i) for i in batch))
                    ms = (time.perf_counter() - t0) * 1000
                    assert all(x is not None for x in got), f"{name} burst {burst}: misses"
                    if burst < 2:
                        out[f"{name} {labels[burst]}"].append(ms)
                    else:
                        warm.append(ms)
                out[f"{name} warm"].append(statistics.median(warm))
        finally:
            await ours.aclose()
            await raw.aclose()
    return out


ZIPF_OFFSET = 1_000_000  # Zipf prompts are prompt(ZIPF_OFFSET + rank): apart from cold ones


def hitpath(quick: bool = False) -> dict[str, Any]:
    """Cold, warm and Zipf sync hits; cold and warm async bursts; first bursts (one run)."""
    per_round, rounds = (300, 3) if quick else (1000, 7)
    zipf = zipf_ranks(ZIPF_PROMPTS, per_round * rounds)
    async_start = WARM_KEYS + per_round * rounds  # the sync cold entries come before
    burst_start = async_start + per_round * rounds
    burst_rounds = 3 if quick else 7
    server = start_redis()
    momento = MomentoServer(["llmcache", "raw"])
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="llmcache-hitpath-") as tmp:
            groups = _groups(tmp, server.url, momento.address)
            try:
                for g in groups:
                    g.fill(range(burst_start))
                    g.fill(range(ZIPF_OFFSET, ZIPF_OFFSET + ZIPF_PROMPTS))
                # First bursts: entries in Redis only, read by a fresh cache each round.
                redis_group = next(g for g in groups if g.name == "redis")
                end = burst_start + burst_rounds * CONCURRENCY * BURSTS * 2
                redis_group.fill(range(burst_start, end), peer=False)
                sync = sync_modes(groups, per_round, rounds, zipf)
                asyncs = asyncio.run(_run_async(groups[1:], per_round, rounds, async_start))
                bursts = asyncio.run(
                    first_bursts(server.url, burst_rounds, burst_start, redis_group.raw_keys)
                )
            finally:
                for g in groups:
                    for close in g.closers:
                        with contextlib.suppress(Exception):
                            close()
    finally:
        server.stop()
        momento.stop()
    return {
        "sync": sync,
        "async": asyncs,
        "bursts": bursts,
        "per_round": per_round,
        "rounds": rounds,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


async def _run_async(
    groups: list[Group], per_round: int, rounds: int, start: int
) -> dict[str, list[Series]]:
    try:
        return await async_modes(groups, per_round, rounds, start)
    finally:
        for g in groups:
            for aclose in g.aclosers:
                with contextlib.suppress(Exception):
                    await aclose()


# -- growth curve ------------------------------------------------------------------------------
def growth(sizes: list[int], samples: int = 1000) -> dict[str, Any]:
    """Cold hit p50 (ours, and the bare store get) as each store grows; memory bytes per entry."""
    from backends.redis.servers import STANDALONE_CONF, Server, _workdir, free_port

    port = free_port()
    args = [str(STANDALONE_CONF), "--port", str(port), "--maxmemory", "0"]  # no eviction
    server = Server(port, args, _workdir("growth"))
    server.url = f"redis://127.0.0.1:{port}/0"
    server.start()
    answer = generations_to_json(_answer())
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="llmcache-growth-") as tmp:
            for name, url in (
                ("memory", f"memory://?max_entries={max(sizes) * 2}"),
                ("disk", f"disk://{tmp}/d?size_limit=64GB"),
                ("redis", server.url),
            ):
                rows += _grow(name, url, sizes, samples, answer)
    finally:
        server.stop()
    memory = memory_per_entry(min(max(sizes), 100_000), answer)
    return {"rows": rows, "memory": memory, "elapsed_s": round(time.perf_counter() - started, 1)}


def _entries(cache: LangChainCache, indices: range, answer: Any) -> dict[str, bytes]:
    """Encoded entries as ``update`` stores them (one ``set_many`` per batch fills faster)."""
    policy, codec = cache.cache.policy, cache.cache.codec
    items = {}
    for i in indices:
        key = policy.decide(prompt(i), LLM_STRING).key
        assert key is not None
        items[key] = codec.encode(key, [answer])
    return items


def _grow(name: str, url: str, sizes: list[int], samples: int, answer: Any) -> list[dict[str, Any]]:
    cache = LangChainCache.from_url(url)
    store = cache.cache.backend
    rng = random.Random(5)
    unread: list[int] = []
    rows = []
    filled = 0
    try:
        for size in sizes:
            fill_started = time.perf_counter()
            while filled < size:
                batch = range(filled, min(size, filled + 1000))
                store.set_many(_entries(cache, batch, answer))  # type: ignore[attr-defined]
                unread.extend(batch)
                filled = batch.stop
            fill_s = time.perf_counter() - fill_started
            # Entries never read before, from the whole store: ours on one, the bare store get
            # (key known, no policy, codec or copies) on the next, interleaved.
            rng.shuffle(unread)
            picks, unread = unread[: 2 * samples], unread[2 * samples :]
            ours = Series("llmcache", name, "ours")
            bare = Series("store.get", name, "raw")
            keys = {i: _key(cache, i) for i in picks[1::2]}
            _timed(lambda i: cache.lookup(prompt(i), LLM_STRING), picks[0::2], ours)
            _timed(lambda i, k=keys: store.get(k[i]), picks[1::2], bare)
            rows.append(
                {
                    "backend": name,
                    "entries": size,
                    "hit_p50_us": round((ours.p(0.5) or 0) * 1e6, 1),
                    "hit_p99_us": round((ours.p(0.99) or 0) * 1e6, 1),
                    "store_get_p50_us": round((bare.p(0.5) or 0) * 1e6, 1),
                    "misses": ours.misses + bare.misses,
                    "fill_s": round(fill_s, 1),
                }
            )
            print(f"  growth {name} {size:,}: {rows[-1]}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            cache.cache.clear()
        cache.close()
    return rows


def memory_per_entry(n: int, answer: Any) -> dict[str, Any]:
    """Python heap bytes per entry of ``memory://`` holding ``n`` chat answers (tracemalloc)."""
    cache = LangChainCache.from_url(f"memory://?max_entries={n}")
    sample = _entries(cache, range(min(n, 1000)), answer)
    value_bytes = statistics.fmean(len(v) for v in sample.values())
    key_bytes = statistics.fmean(len(cache.cache.backend._key(k)) for k in sample)
    del sample
    gc.collect()
    tracemalloc.start()  # values and keys are made while tracing: the store's whole footprint
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(0, n, 1000):
            cache.cache.backend.set_many(  # type: ignore[attr-defined]
                _entries(cache, range(i, min(n, i + 1000)), answer)
            )
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        cache.close()
    return {
        "entries": n,
        "bytes_per_entry": round((after - before) / n),
        "value_bytes": round(value_bytes),
        "key_bytes": round(key_bytes),
    }


# -- report -------------------------------------------------------------------------------------
def _us(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e6:,.1f}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def report_hitpath(result: dict[str, Any]) -> str:
    lines = [
        f"Sync hits, {result['rounds']} interleaved rounds of {result['per_round']} lookups per "
        f"mode; cold = each entry read once, warm = {WARM_KEYS} entries read again and again, "
        f"Zipf = s {ZIPF_S} over {ZIPF_PROMPTS:,} prompts. × raw = p50 over the raw driver op's "
        "p50 on the same bytes, same run.",
        "",
        "| backend | cache | mode | p50 µs | p99 µs | × raw | misses |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for mode in ("cold", "warm", "zipf"):
        series = result["sync"][mode]
        raw = {s.group: s for s in series if s.role == "raw"}
        for s in series:
            base = raw[s.group].p(0.5)
            ratio = (s.p(0.5) or 0) / base if base else None
            name = f"**{s.name}**" if s.role == "ours" else s.name
            lines.append(
                f"| {s.group} | {name} | {mode} | {_us(s.p(0.5))} | {_us(s.p(0.99))} | "
                f"{_x(ratio)} | {s.misses} |"
            )
    lines += [
        "",
        f"Async hits/s, lookups bounded by `asyncio.Semaphore({CONCURRENCY})`, median of the "
        "rounds; × raw and × community peer from the same rounds.",
        "",
        "| backend | cache | mode | hits/s | × raw | × community peer | misses |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for mode in ("async cold", "async warm"):
        series = result["async"][mode]
        raw = {s.group: s for s in series if s.role == "raw"}
        peer = {s.group: s for s in series if s.role == "peer"}
        for s in series:
            to_raw = (s.median or 0) / (raw[s.group].median or 1)
            to_peer = (
                (s.median or 0) / (peer[s.group].median or 1)
                if s.role == "ours" and s.group in peer
                else None
            )
            name = f"**{s.name}**" if s.role == "ours" else s.name
            lines.append(
                f"| {s.group} | {name} | {mode.split()[1]} | {s.median or 0:,.0f} | "
                f"{_x(to_raw)} | {_x(to_peer)} | {s.misses} |"
            )
    b = {k: statistics.median(v) for k, v in result["bursts"].items()}
    lines += [
        "",
        f"First burst: {CONCURRENCY} concurrent lookups on a fresh cache (no pooled connection), "
        f"then the next burst of the same cache, then its 3rd-{BURSTS}th (warm; entries read "
        "once each), median ms over fresh caches.",
        "",
        "| client | first burst ms | next burst ms | warm burst ms | first ÷ next | first ÷ warm |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for who in ("llmcache", "raw"):
        first, after, warm = b[f"{who} first"], b[f"{who} next"], b[f"{who} warm"]
        label = "**llmcache redis://**" if who == "llmcache" else "raw redis.asyncio"
        lines.append(
            f"| {label} | {first:.1f} | {after:.1f} | {warm:.1f} | {first / after:.2f}× | "
            f"{first / warm:.2f}× |"
        )
    return "\n".join(lines)


def report_growth(result: dict[str, Any]) -> str:
    lines = [
        "Cold hit (entries never read before, sampled over the whole store) as the store grows; "
        "p50 µs. The store op is the backend's bare `get` (key known).",
        "",
        "| backend | entries | hit p50 µs | hit p99 µs | store get p50 µs | fill s | misses |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['backend']} | {r['entries']:,} | {r['hit_p50_us']:,.1f} | "
            f"{r['hit_p99_us']:,.1f} | {r['store_get_p50_us']:,.1f} | {r['fill_s']} | "
            f"{r['misses']} |"
        )
    by: dict[str, list[dict[str, Any]]] = {}
    for r in result["rows"]:
        by.setdefault(r["backend"], []).append(r)
    lines += ["", "| backend | hit p50, largest ÷ smallest store |", "|---|--:|"]
    for name, rows in by.items():
        lines.append(
            f"| {name} | {rows[-1]['hit_p50_us'] / rows[0]['hit_p50_us']:.2f}× "
            f"({rows[0]['entries']:,} → {rows[-1]['entries']:,}) |"
        )
    m = result["memory"]
    lines += [
        "",
        f"`memory://` holding {m['entries']:,} chat answers: **{m['bytes_per_entry']:,} bytes of "
        f"Python heap per entry** (tracemalloc) for a {m['value_bytes']:,} B stored value and a "
        f"{m['key_bytes']} B key.",
    ]
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result with each series as a dict (p50/p99 or median hits/s, raw samples dropped)."""

    def row(s: Series) -> dict[str, Any]:
        return {
            "cache": s.name,
            "group": s.group,
            "role": s.role,
            "p50_us": None if s.p(0.5) is None else (s.p(0.5) or 0) * 1e6,
            "p99_us": None if s.p(0.99) is None else (s.p(0.99) or 0) * 1e6,
            "median": s.median,
            "count": len(s.samples),
            "misses": s.misses,
        }

    out = dict(result)
    for part in ("sync", "async"):
        if part in out:
            out[part] = {mode: [row(s) for s in series] for mode, series in out[part].items()}
    return out
