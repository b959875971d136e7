"""llmcache's LangChainCache against LangChain's own caches, on one workload, in one run.

    python benchmarks/peers.py [--quick] [--json [PATH]] [--profile redis]

Starts its own servers (a standalone redis-server on a free loopback port, never 6379; the local
Momento server in a child process) and stops them on exit. Every cache holds the same answer
under the same prompt/llm_string (a ChatOpenAI-shaped llm_string):

- ``chat``: a ~2 KB ``ChatGeneration`` (AIMessage with tool calls, usage and response metadata);
- ``plain``: a ~2 KB plain-LLM ``Generation`` (community MomentoCache only reads those back).

Measured in interleaved rounds (machine drift hits all caches alike), medians reported:

1. sync hit latency (``lookup``) p50/p99, as a ratio to the raw driver op on the same bytes
   (dict get, ``diskcache.Cache.get``, redis-py ``GET``, Momento SDK ``CacheClient.get``);
2. async hit throughput at 64 concurrent ``alookup`` calls, as a ratio to the community peer;
3. bytes stored per entry, read back raw from each store.

The "momento (emulated)" group runs with the local server waiting ``--rtt-ms`` (0.5) per RPC, to
emulate an in-region round trip: those numbers are **emulated**. Everything is loopback on one
machine; the clients, redis-server and the Momento server share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from _servers import MomentoServer, start_redis
from _workload import LLM_STRING as WORKLOAD_LLM_STRING
from langchain_core.caches import BaseCache, InMemoryCache
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from llmcache.adapters.langchain import LangChainCache

PROMPT = dumps([HumanMessage(content="Summarise the quarterly report in three bullet points.")])
# What LangChain really hands a cache for a tool-calling ChatOpenAI (~1 KB; see _workload.py):
# key derivation runs on it for every call.
LLM_STRING = WORKLOAD_LLM_STRING
# ~2 KB of ordinary prose: not a repeated line, which would flatter compression.
TEXT = (
    "Here is a summary of the quarterly report in three points.\n\n"
    "- Revenue reached $48.2M, up 12% year on year, driven mainly by the enterprise tier "
    "(+21%) while self-serve plans were flat. Net revenue retention improved to 114% after "
    "the pricing change in February; churn among small accounts stayed at 2.9% a month, "
    "slightly above plan. Gross margin slipped from 78% to 76% because inference costs grew "
    "faster than usage-based billing could absorb, especially in the EU region.\n"
    "- Operating expenses rose 9% to $39.7M. Headcount grew by 41 people, two thirds of them "
    "in engineering and support; sales and marketing spend fell 4% as two trade shows were "
    "cancelled and paid search was cut back. The company capitalised $3.1M of software "
    "development, compared with $2.4M a year earlier, and reported an operating margin of "
    "17.6%, its best quarter since the 2022 restructuring.\n"
    "- Cash and equivalents ended the quarter at $212M with no debt drawn. Management kept "
    "full-year guidance of $195M-$201M revenue but lowered the margin outlook by one point, "
    "citing GPU capacity contracts signed in April. Risks named in the report: dependence on "
    "two cloud providers for 83% of compute, a pending data-residency ruling in Germany, and "
    "the renewal of the three largest customer contracts, which together make up 11% of "
    "annual recurring revenue, before the end of the fiscal year.\n\n"
    "Would you like a breakdown by region, a comparison with the previous four quarters, or "
    "the list of one-off items that affected the operating result? I can also draft a short "
    "note for the board that explains the margin change and the actions planned to recover "
    "it, including the renegotiation of reserved capacity and the move of batch jobs to "
    "cheaper regions during off-peak hours."
)
CHAT_ANSWER = [
    ChatGeneration(
        message=AIMessage(
            content=TEXT,
            id="chatcmpl-B7xQ2mR4kT9vLpZ3nW8yH1cD5fE6gJ",
            tool_calls=[
                {
                    "name": "fetch_report_section",
                    "args": {"report_id": "Q2-2025", "section": "risks", "max_chars": 4000},
                    "id": "call_Yx2Hq8LmN3pR7tVb1kZ4wC9s",
                }
            ],
            usage_metadata={
                "input_tokens": 812,
                "output_tokens": 431,
                "total_tokens": 1243,
                "input_token_details": {"audio": 0, "cache_read": 768},
                "output_token_details": {"audio": 0, "reasoning": 0},
            },
            response_metadata={
                "token_usage": {
                    "completion_tokens": 431,
                    "prompt_tokens": 812,
                    "total_tokens": 1243,
                },
                "model_name": "gpt-4o-mini-2024-07-18",
                "system_fingerprint": "fp_d02d531b47",
                "id": "chatcmpl-B7xQ2mR4kT9vLpZ3nW8yH1cD5fE6gJ",
                "service_tier": "default",
                "finish_reason": "tool_calls",
                "logprobs": None,
            },
        ),
        generation_info={"finish_reason": "tool_calls", "logprobs": None},
    )
]
PLAIN_ANSWER = [Generation(text=TEXT, generation_info={"finish_reason": "stop", "logprobs": None})]
ANSWERS: dict[str, list[Generation]] = {"chat": CHAT_ANSWER, "plain": PLAIN_ANSWER}

CONCURRENCY = 64
MOMENTO_CACHES = ["llmcache", "raw", "lc-chat", "lc-plain"]
EMULATED = "momento (emulated)"
GROUPS = ["memory", "disk", "redis", "momento", EMULATED]
#: The community cache each group's async throughput is compared with.
COMMUNITY_PEER = {
    "memory": "langchain-core InMemoryCache",
    "disk": "community SQLiteCache",
    "redis": "community RedisCache",
    "momento": "community MomentoCache",
    EMULATED: "community MomentoCache",
}


@dataclass
class Mode:
    rounds: int
    sync_budget: float  # seconds per subject per round
    async_budget: float
    max_sync_ops: int = 5000


DEFAULT = Mode(rounds=11, sync_budget=0.08, async_budget=0.2)
QUICK = Mode(rounds=3, sync_budget=0.03, async_budget=0.06)


@dataclass
class Subject:
    """One cache (or raw driver op) on one workload in one group."""

    name: str
    group: str
    workload: str
    role: str  # raw | ours | peer
    lookup: Callable[[], Any] | None = field(default=None, repr=False)
    alookup: Callable[[], Awaitable[Any]] | None = field(default=None, repr=False)
    note: str = ""
    sync: list[float] = field(default_factory=list)  # seconds per hit, every sample
    rates: list[float] = field(default_factory=list)  # async hits/s, one per round
    async_ops: int = 0
    sync_misses: int = 0  # lookups that returned None (a miss where a hit was due)
    async_misses: int = 0
    async_total: int = 0

    def p(self, q: float) -> float | None:
        if not self.sync:
            return None
        data = sorted(self.sync)
        return data[min(len(data) - 1, int(q * len(data)))]

    @property
    def rate(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


@dataclass
class Stored:
    """Bytes one cache keeps for one entry, read back raw from its store."""

    name: str
    workload: str
    value_bytes: int | None
    key_bytes: int | None
    server_bytes: int | None = None  # redis MEMORY USAGE of the key
    note: str = ""


@dataclass
class Bench:
    mode: Mode
    rtt: float
    redis_url: str
    momento: MomentoServer
    tmp: str
    subjects: list[Subject] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    aclosers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    # -- setup ----------------------------------------------------------------------------------
    def add(self, name: str, group: str, workload: str, role: str, **kw: Any) -> Subject:
        subject = Subject(name, group, workload, role, **kw)
        self.subjects.append(subject)
        return subject

    def add_cache(
        self, name: str, group: str, workload: str, role: str, cache: BaseCache, *, sync: bool
    ) -> None:
        self.add(
            name,
            group,
            workload,
            role,
            lookup=(lambda: cache.lookup(PROMPT, LLM_STRING)) if sync else None,
            alookup=lambda: cache.alookup(PROMPT, LLM_STRING),
        )

    def fail(self, name: str, workload: str, error: BaseException | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.failures.append({"cache": name, "workload": workload, "error": _one_line(text)})

    async def setup(self) -> None:
        import diskcache
        import redis
        import redis.asyncio
        from langchain_community.cache import AsyncRedisCache, RedisCache, SQLiteCache
        from momento import CacheClient, CacheClientAsync, Configurations, CredentialProvider
        from momento.responses import CacheGet

        tmp = self.tmp
        # -- memory ------------------------------------------------------------------------
        ours = self.ours("memory://", "chat")
        value = self.ours_value(ours, "llmcache memory://", "chat", server=None)
        table = {ours.cache.backend._key(self.key_of(ours)): value}
        raw_key = next(iter(table))
        self.add(
            "raw dict.get",
            "memory",
            "chat",
            "raw",
            lookup=lambda: table.get(raw_key),
            alookup=_async(lambda: table.get(raw_key)),
        )
        self.add_cache("llmcache memory://", "memory", "chat", "ours", ours, sync=True)
        core = InMemoryCache()
        await self.fill(core, "langchain-core InMemoryCache", "chat")
        self.add_cache("langchain-core InMemoryCache", "memory", "chat", "peer", core, sync=True)
        self.stored.append(
            Stored("langchain-core InMemoryCache", "chat", None, None, note="Python objects")
        )

        # -- disk ----------------------------------------------------------------------------
        ours = self.ours(f"disk://{tmp}/llmcache", "chat")
        value = self.ours_value(ours, "llmcache disk://", "chat", server=None)
        dc = diskcache.Cache(f"{tmp}/raw-diskcache")
        self.closers.append(dc.close)
        dkey = ours.cache.backend._key(self.key_of(ours))
        dc.set(dkey, value)
        self.add(
            "raw diskcache.Cache.get",
            "disk",
            "chat",
            "raw",
            lookup=lambda: dc.get(dkey),
            alookup=_async(lambda: dc.get(dkey)),
        )
        self.add_cache("llmcache disk://", "disk", "chat", "ours", ours, sync=True)
        sqlite_path = f"{tmp}/langchain.sqlite"
        lite = SQLiteCache(database_path=sqlite_path)
        await self.fill(lite, "community SQLiteCache", "chat")
        self.add_cache("community SQLiteCache", "disk", "chat", "peer", lite, sync=True)
        self.stored.append(_sqlite_stored(sqlite_path, "community SQLiteCache", "chat"))

        # -- redis: chat in db 0, plain in db 1 ---------------------------------------------
        base = self.redis_url.rsplit("/", 1)[0]
        for db, workload in ((0, "chat"), (1, "plain")):
            url = f"{base}/{db}"
            sync_client = redis.Redis.from_url(url)
            async_client = redis.asyncio.Redis.from_url(url)
            self.closers.append(sync_client.close)
            self.aclosers.append(async_client.aclose)
            ours = self.ours(url, workload)
            rkey = ours.cache.backend._key(self.key_of(ours))
            self.ours_value(ours, "llmcache redis://", workload, server=(sync_client, rkey))
            self.add(
                "raw redis-py GET",
                "redis",
                workload,
                "raw",
                lookup=lambda c=sync_client, k=rkey: c.get(k),
                alookup=lambda c=async_client, k=rkey: c.get(k),
            )
            self.add_cache("llmcache redis://", "redis", workload, "ours", ours, sync=True)
            community = RedisCache(sync_client)
            await self.fill(community, "community RedisCache", workload)
            self.add_cache("community RedisCache", "redis", workload, "peer", community, sync=True)
            self.stored.append(_redis_hash_stored(sync_client, "community RedisCache", workload))
            acommunity = AsyncRedisCache(async_client)
            await self.fill(acommunity, "community AsyncRedisCache", workload, sync=False)
            self.add_cache(
                "community AsyncRedisCache", "redis", workload, "peer", acommunity, sync=False
            )
            if workload == "chat":
                self.try_langchain_redis(url)

        # -- momento (and its emulated in-region twin: same clients, server delay on) -------
        creds = CredentialProvider.for_momento_local(*_host_port(self.momento.address))
        config = Configurations.InRegion.Default.v1()  # llmcache's default configuration
        ttl = timedelta(hours=1)
        client = CacheClient(config, creds, ttl)
        aclient = CacheClientAsync(config, creds, ttl)
        self.closers.append(lambda: client.__exit__(None, None, None))
        self.aclosers.append(lambda: aclient.__aexit__(None, None, None))
        from langchain_community.cache import MomentoCache

        for workload in ("chat", "plain"):
            ours = self.ours(
                f"momento://llmcache?local={self.momento.address}", workload, namespace=workload
            )
            value = self.ours_value(ours, "llmcache momento://", workload, server=None)
            mkey = ours.cache.backend._key(self.key_of(ours))
            client.set("raw", mkey, value)

            def raw_get(k: str = mkey) -> bytes | None:
                response = client.get("raw", k)
                return response.value_bytes if isinstance(response, CacheGet.Hit) else None

            async def raw_aget(k: str = mkey) -> bytes | None:
                response = await aclient.get("raw", k)
                return response.value_bytes if isinstance(response, CacheGet.Hit) else None

            assert raw_get() == value
            community = MomentoCache(client, f"lc-{workload}", ttl=ttl, ensure_cache_exists=False)
            ok = await self.fill(community, "community MomentoCache", workload)
            self.stored.append(
                _momento_stored(client, community, workload, note="" if ok else "unreadable")
            )
            for group in ("momento", EMULATED):
                self.add(
                    "raw SDK CacheClient.get",
                    group,
                    workload,
                    "raw",
                    lookup=raw_get,
                    alookup=raw_aget,
                )
                self.add_cache("llmcache momento://", group, workload, "ours", ours, sync=True)
                if ok:
                    self.add_cache(
                        "community MomentoCache", group, workload, "peer", community, sync=True
                    )

    def ours(self, url: str, workload: str, **options: Any) -> LangChainCache:
        cache = LangChainCache.from_url(url, **options)
        self.closers.append(cache.close)
        cache.update(PROMPT, LLM_STRING, ANSWERS[workload])
        got = cache.lookup(PROMPT, LLM_STRING)
        if got != ANSWERS[workload]:
            raise RuntimeError(f"llmcache {url} did not return the stored answer: {got!r}")
        return cache

    @staticmethod
    def key_of(cache: LangChainCache) -> str:
        key = cache.cache.policy.decide(PROMPT, LLM_STRING).key
        assert key is not None
        return key

    def ours_value(
        self, cache: LangChainCache, name: str, workload: str, server: tuple[Any, str] | None
    ) -> bytes:
        """The raw bytes our backend stores for the entry (and record their size)."""
        backend = cache.cache.backend
        key = self.key_of(cache)
        value = backend.get(key)
        assert value is not None
        full = backend._key(key)
        usage = None
        if server is not None:
            client, rkey = server
            assert client.get(rkey) == value
            usage = client.memory_usage(rkey)
        self.stored.append(Stored(name, workload, len(value), len(full.encode()), usage))
        return value

    async def fill(self, cache: BaseCache, name: str, workload: str, *, sync: bool = True) -> bool:
        """Store the answer and check it comes back; a failure is recorded, not raised."""
        answer = ANSWERS[workload]
        try:
            if sync:
                cache.update(PROMPT, LLM_STRING, answer)
                got = cache.lookup(PROMPT, LLM_STRING)
            else:
                await cache.aupdate(PROMPT, LLM_STRING, answer)
                got = await cache.alookup(PROMPT, LLM_STRING)
        except Exception as exc:
            self.fail(name, workload, exc)
            return False
        if got != answer:
            self.fail(name, workload, f"hit returned {type(got).__name__}, not the stored answer")
            return False
        return True

    def try_langchain_redis(self, url: str) -> None:
        name = "langchain_redis.RedisCache"
        try:
            from langchain_redis import RedisCache as LangchainRedisCache
        except ImportError as exc:
            self.fail(name, "chat", f"not installed ({exc}); pip install langchain-redis")
            return
        version = metadata.version("langchain-redis")
        try:
            cache = LangchainRedisCache(redis_url=url, ttl=3600)
            cache.update(PROMPT, LLM_STRING, CHAT_ANSWER)
            got = cache.lookup(PROMPT, LLM_STRING)
        except Exception as exc:
            self.fail(f"{name} {version}", "chat", exc)
            return
        if got == CHAT_ANSWER:  # a Redis with RedisJSON: measure it like the others
            self.add_cache(f"{name} {version}", "redis", "chat", "peer", cache, sync=True)
        else:
            self.fail(f"{name} {version}", "chat", f"no error, but lookup returned {got!r:.80}")

    # -- measurement ----------------------------------------------------------------------------
    async def run(self) -> None:
        ops: dict[int, int] = {}
        for round_no in range(self.mode.rounds + 1):  # round 0: warm-up, not recorded
            warm = round_no == 0
            for group in GROUPS:
                members = [s for s in self.subjects if s.group == group]
                self.momento.set_delay(self.rtt if group == EMULATED else 0.0)
                try:
                    for s in members:
                        if s.lookup is not None:
                            samples, misses = self.time_sync(s.lookup, 0.01 if warm else None)
                            if not warm:
                                s.sync.extend(samples)
                                s.sync_misses += misses
                    for s in members:
                        if s.alookup is None:
                            continue
                        if warm:  # size the async batch to the budget
                            rate, _ = await self.time_async(s.alookup, CONCURRENCY * 4)
                            n = int(rate * self.mode.async_budget) // CONCURRENCY * CONCURRENCY
                            ops[id(s)] = s.async_ops = max(CONCURRENCY * 2, min(n, 64_000))
                        else:
                            rate, misses = await self.time_async(s.alookup, ops[id(s)])
                            s.rates.append(rate)
                            s.async_misses += misses
                            s.async_total += ops[id(s)]
                finally:
                    self.momento.set_delay(0.0)
            if not warm:
                print(f"  round {round_no}/{self.mode.rounds} done", file=sys.stderr)

    def time_sync(self, fn: Callable[[], Any], budget: float | None) -> tuple[list[float], int]:
        """Per-hit latencies (s) until the budget is spent, and how many lookups missed."""
        clock = time.perf_counter
        samples: list[float] = []
        misses = 0
        end = clock() + (budget or self.mode.sync_budget)
        while len(samples) < self.mode.max_sync_ops:
            t0 = clock()
            got = fn()
            t1 = clock()
            samples.append(t1 - t0)
            misses += got is None
            if t1 > end:
                break
        return samples, misses

    @staticmethod
    async def time_async(afn: Callable[[], Awaitable[Any]], ops: int) -> tuple[float, int]:
        """Hits/s of ``ops`` lookups by CONCURRENCY tasks (misses not counted as hits)."""
        per_task = ops // CONCURRENCY
        misses = 0

        async def worker() -> None:
            nonlocal misses
            for _ in range(per_task):
                if await afn() is None:
                    misses += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return (per_task * CONCURRENCY - misses) / (time.perf_counter() - t0), misses

    async def close(self) -> None:
        for aclose in self.aclosers:
            with contextlib.suppress(Exception):
                await aclose()
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()


# -- stored bytes of the peers ----------------------------------------------------------------
def _sqlite_stored(path: str, name: str, workload: str) -> Stored:
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute(
            "SELECT sum(length(CAST(prompt AS BLOB)) + length(CAST(llm AS BLOB)) + 8),"
            " sum(length(CAST(response AS BLOB))) FROM full_llm_cache"
        ).fetchone()
    return Stored(name, workload, row[1], row[0], note="key = full prompt + llm_string")


def _redis_hash_stored(client: Any, name: str, workload: str) -> Stored:
    from langchain_community.cache import _hash

    key = _hash(PROMPT + LLM_STRING)
    fields = client.hgetall(key)
    size = sum(len(f) + len(v) for f, v in fields.items())
    return Stored(name, workload, size, len(key), client.memory_usage(key), note="HASH idx→dumps")


def _momento_stored(client: Any, cache: Any, workload: str, note: str) -> Stored:
    from langchain_community.cache import _hash
    from momento.responses import CacheGet

    key = _hash(PROMPT + LLM_STRING)
    response = client.get(cache.cache_name, key)
    size = len(response.value_bytes) if isinstance(response, CacheGet.Hit) else None
    return Stored("community MomentoCache", workload, size, len(key), note=note)


# -- helpers --------------------------------------------------------------------------------------
def _async(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return fn()

    return call


def _git_describe() -> str:
    """Commit of the checkout (``+dirty`` when llmcache/ has uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "llmcache"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for dist in (
        "llmcache",
        "langchain-core",
        "langchain-community",
        "langchain-redis",
        "redis",
        "hiredis",
        "momento",
        "grpcio",
        "diskcache",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=5
        ).stdout
        versions["redis-server"] = out.split("v=", 1)[1].split()[0]
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


# -- report ---------------------------------------------------------------------------------------
def _us(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e6:,.1f}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _misses(misses: int, total: int) -> str:
    return "0" if not misses else f"**{misses:,}/{total:,}** ({misses / total:.1%})"


def report(bench: Bench, meta: dict[str, Any]) -> str:
    subjects = bench.subjects
    raw = {(s.group, s.workload): s for s in subjects if s.role == "raw"}

    def peer(s: Subject) -> Subject | None:
        return next(
            (
                p
                for p in subjects
                if p.group == s.group
                and p.workload == s.workload
                and p.name == COMMUNITY_PEER[s.group]
            ),
            None,
        )

    m = meta["machine"]
    lines = [
        f"Loopback only, one machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}; "
        f"clients, redis-server {m['versions'].get('redis-server', '?')} and the local Momento "
        f"server ({meta['momento_server']}) share those cores. Rounds: {meta['rounds']} "
        f"(interleaved, after a warm-up round). **Momento numbers are emulated** (a local server "
        f'speaking Momento\'s protocol; "{EMULATED}" adds {meta["rtt_ms"]} ms per RPC on the '
        "server for an in-region round trip). Load average (1 min) at start / end: "
        f"{meta['loadavg'][0]:.2f} / {meta['loadavg'][1]:.2f}; llmcache at {meta['git']}.",
        "",
        "### Sync hit latency (`lookup`), ratio to the raw driver op on the same bytes",
        "",
        "| backend | cache | workload | p50 µs | p99 µs | × raw op | misses |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for s in subjects:
        if s.lookup is None:
            continue
        base = raw.get((s.group, s.workload))
        ratio = s.p(0.5) / base.p(0.5) if base and base.p(0.5) and s.p(0.5) else None  # type: ignore[operator]
        name = f"**{s.name}**" if s.role == "ours" else s.name
        lines.append(
            f"| {s.group} | {name} | {s.workload} | {_us(s.p(0.5))} | {_us(s.p(0.99))} | "
            f"{_x(ratio)} | {_misses(s.sync_misses, len(s.sync))} |"
        )
    lines += [
        "",
        f"### Async hits, {CONCURRENCY} concurrent `alookup`s: throughput, ratio to the community "
        "peer",
        "",
        "| backend | cache | workload | hits/s | × community peer | × raw op | misses |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for s in subjects:
        if s.alookup is None or s.rate is None:
            continue
        p = peer(s)
        base = raw.get((s.group, s.workload))
        to_peer = s.rate / p.rate if p is not None and p.rate and s.role != "raw" else None
        to_raw = s.rate / base.rate if base is not None and base.rate else None
        name = f"**{s.name}**" if s.role == "ours" else s.name
        lines.append(
            f"| {s.group} | {name} | {s.workload} | {s.rate:,.0f} | {_x(to_peer)} | "
            f"{_x(to_raw)} | {_misses(s.async_misses, s.async_total)} |"
        )
    lines += [
        "",
        f"Community peers: {', '.join(sorted(set(COMMUNITY_PEER.values())))}. Community "
        "RedisCache, SQLiteCache and MomentoCache have no native async: their `alookup` runs "
        "`lookup` in the event loop's default thread pool. hits/s counts hits only; a lookup "
        "that returned None where a hit was due is a miss (for llmcache: a store error or "
        "timeout turned into a miss, or the circuit breaker skipping the store).",
        "",
        "### Stored bytes per entry (read back raw from each store)",
        "",
        "| cache | workload | value bytes | key bytes | redis MEMORY USAGE | note |",
        "|---|---|--:|--:|--:|---|",
    ]
    for st in sorted(bench.stored, key=lambda st: (st.workload, st.name)):
        cells = [
            "—" if v is None else f"{v:,}" for v in (st.value_bytes, st.key_bytes, st.server_bytes)
        ]
        name = f"**{st.name}**" if st.name.startswith("llmcache") else st.name
        lines.append(f"| {name} | {st.workload} | {' | '.join(cells)} | {st.note} |")
    if bench.failures:
        lines += ["", "### Caches that could not run", "", "| cache | workload | error |"]
        lines.append("|---|---|---|")
        for f in bench.failures:
            lines.append(f"| {f['cache']} | {f['workload']}: fails with | `{f['error']}` |")
    return "\n".join(lines)


def to_json(bench: Bench, meta: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for s in bench.subjects:
        rows.append(
            {
                "cache": s.name,
                "group": s.group,
                "workload": s.workload,
                "role": s.role,
                "sync_p50_us": None if s.p(0.5) is None else s.p(0.5) * 1e6,  # type: ignore[operator]
                "sync_p99_us": None if s.p(0.99) is None else s.p(0.99) * 1e6,  # type: ignore[operator]
                "sync_samples": len(s.sync),
                "sync_misses": s.sync_misses,
                "async_misses": s.async_misses,
                "async_lookups": s.async_total,
                "async_hits_per_s": s.rate,
                "async_rounds": s.rates,
                "async_ops_per_round": s.async_ops,
            }
        )
    return {
        **meta,
        "results": rows,
        "stored": [asdict(st) for st in bench.stored],
        "failures": bench.failures,
    }


# -- profile ----------------------------------------------------------------------------------
_CATEGORIES = [
    ("key policy (llmcache/keys/: parse, canonicalise, hash)", ("llmcache/keys/",)),
    ("codec (envelope check, zlib, orjson)", ("llmcache/codec.py", "zlib", "orjson")),
    (
        "generations: pydantic build / copy of the message",
        (
            "llmcache/adapters/_generations.py",
            "pydantic",
            "langchain_core",
            "typing",
            "/copy.py",
        ),
    ),
    (
        "driver: redis-py / momento SDK / grpc, socket I/O",
        ("site-packages/redis/", "momento", "grpc", "sock", "selectors", "_ssl"),
    ),
    ("llmcache backend wrapper (backends/*.py)", ("llmcache/backends/",)),
    (
        "llmcache cache + adapter (guard, breaker, stats, memo)",
        ("llmcache/", "contextlib", "threading", "<string>"),
    ),
]


def _category(func: tuple[str, int, str]) -> str | None:
    filename, _, name = func
    text = filename if filename != "~" else name
    for label, needles in _CATEGORIES:
        if any(n in text for n in needles):
            return label
    return None


def profile(backend: str, hits: int) -> str:
    """Where the time of one sync chat hit through LangChainCache goes.

    Two views: the layers timed one by one without a profiler (interleaved rounds, medians), and
    cProfile's self time grouped by module (a C function counts where its caller belongs).
    """
    redis_server = momento = None
    layers: dict[str, Callable[[], Any]] = {}
    try:
        if backend == "redis":
            redis_server = start_redis()
            url = redis_server.url
        elif backend == "momento":
            momento = MomentoServer(MOMENTO_CACHES)
            url = f"momento://llmcache?local={momento.address}"
        else:
            url = "memory://" if backend == "memory" else f"disk://{tempfile.mkdtemp()}"
        cache = LangChainCache.from_url(url)
        cache.update(PROMPT, LLM_STRING, CHAT_ANSWER)
        key = Bench.key_of(cache)
        store = cache.cache.backend
        if backend == "redis":
            import redis

            assert redis_server is not None
            client = redis.Redis.from_url(redis_server.url)
            full = store._key(key)
            layers["raw redis-py GET"] = lambda: client.get(full)
        layers["llmcache backend.get (store op + wrapper)"] = lambda: store.get(key)
        layers["key policy: policy.decide"] = lambda: cache.cache.policy.decide(PROMPT, LLM_STRING)
        layers["LLMCache.lookup (decide + get + guard + memo)"] = lambda: cache.cache.lookup(
            PROMPT, LLM_STRING
        )
        layers["LangChainCache.lookup (+ generation copies)"] = lambda: cache.lookup(
            PROMPT, LLM_STRING
        )
        per_round = max(100, hits // 15)
        timings: dict[str, list[float]] = {name: [] for name in layers}
        for round_no in range(16):
            for name, fn in layers.items():
                t0 = time.perf_counter()
                for _ in range(per_round):
                    fn()
                if round_no:  # round 0 warms up
                    timings[name].append((time.perf_counter() - t0) / per_round)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(hits):
            cache.lookup(PROMPT, LLM_STRING)
        prof.disable()
        cache.close()
    finally:
        if redis_server is not None:
            redis_server.stop()
        if momento is not None:
            momento.stop()
    lines = [
        f"Sync chat hit through LangChainCache on {backend}://, layer by layer "
        f"(no profiler; medians of 15 interleaved rounds of {per_round} calls)",
        "",
        "| call | µs |",
        "|---|--:|",
    ]
    for name, values in timings.items():
        lines.append(f"| {name} | {statistics.median(values) * 1e6:.1f} |")
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}

    def category(func: Any, seen: int = 0) -> str:
        # A C function (filename "~") counts where its main caller belongs.
        found = _category(func)
        if found is not None and (func[0] != "~" or found != _CATEGORIES[-1][0]):
            return found
        callers = stats.get(func, (0, 0, 0, 0, {}))[4]
        if func[0] == "~" and callers and seen < 5:
            main = max(callers.items(), key=lambda kv: kv[1][2])[0]
            return category(main, seen + 1)
        return found or "other (Python runtime, profiler)"

    for func, (_, _, tottime, _, _) in stats.items():
        label = category(func)
        totals[label] = totals.get(label, 0.0) + tottime
    total = sum(totals.values())
    lines += [
        "",
        f"cProfile of {hits} hits, self time by module (the profiler inflates Python-heavy parts)",
        "",
        "| where | share | µs/hit (profiled) |",
        "|---|--:|--:|",
    ]
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {seconds / total:.0%} | {seconds / hits * 1e6:.1f} |")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------
async def _run(bench: Bench) -> None:
    try:
        await bench.setup()
        await bench.run()
    finally:
        await bench.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~30 s)")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--rtt-ms", type=float, default=0.5, help="emulated Momento round trip (default 0.5 ms)"
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write JSON to PATH (or, without PATH, print JSON instead of Markdown)",
    )
    parser.add_argument(
        "--momento-in-process",
        action="store_true",
        help="run the local Momento server in this process (shares the GIL with the client)",
    )
    parser.add_argument(
        "--mode",
        choices=["peers", "hitpath", "growth"],
        default="peers",
        help="peers: warm hits vs LangChain's caches (default); hitpath: cold, warm, Zipf and "
        "async bursts vs the raw driver (benchmarks/_modes.py); growth: hit p50 vs entries",
    )
    parser.add_argument(
        "--growth-max",
        type=int,
        default=100_000,
        help="growth mode: largest store, entries (default 100000; 1000000 takes minutes)",
    )
    parser.add_argument(
        "--profile",
        choices=["memory", "disk", "redis", "momento"],
        help="only profile sync chat hits through LangChainCache on this backend",
    )
    args = parser.parse_args(argv)
    if args.mode != "peers":
        return _run_mode(args)
    if args.profile:
        print(profile(args.profile, 3000 if args.quick else 20000))
        return 0
    mode = QUICK if args.quick else DEFAULT
    if args.rounds:
        mode = Mode(args.rounds, mode.sync_budget, mode.async_budget)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    redis_server = momento = None
    try:
        redis_server = start_redis()
        momento = MomentoServer(MOMENTO_CACHES, in_process=args.momento_in_process)
        with tempfile.TemporaryDirectory(prefix="llmcache-peers-") as tmp:
            bench = Bench(mode, args.rtt_ms / 1000, redis_server.url, momento, tmp)
            asyncio.run(_run(bench))
    finally:
        if momento is not None:
            momento.stop()
        if redis_server is not None:
            redis_server.stop()
    meta = {
        "command": "python benchmarks/peers.py" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "rounds": mode.rounds,
        "concurrency": CONCURRENCY,
        "rtt_ms": args.rtt_ms,
        "momento_server": "in this process" if args.momento_in_process else "child process",
        "elapsed_s": round(time.perf_counter() - started, 1),
        "loadavg": [load_start, os.getloadavg()[0]],
        "git": _git_describe(),
    }
    if args.json and args.json != "-":
        Path(args.json).write_text(json.dumps(to_json(bench, meta), indent=2))
    if args.json == "-":
        print(json.dumps(to_json(bench, meta), indent=2))
    else:
        print(report(bench, meta))
        print(f"\n_{meta['command']}: {meta['elapsed_s']} s_")
    return 0


def _run_mode(args: argparse.Namespace) -> int:
    import _modes

    load_start = os.getloadavg()[0]
    if args.mode == "hitpath":
        result = _modes.hitpath(quick=args.quick)
        text = _modes.report_hitpath(result)
    else:
        sizes = [10**k for k in range(3, 7) if 10**k <= args.growth_max]
        result = _modes.growth(sizes, samples=300 if args.quick else 1000)
        text = _modes.report_growth(result)
    meta = {
        "command": f"python benchmarks/peers.py --mode {args.mode}"
        + (" --quick" if args.quick else ""),
        "machine": machine(),
        "loadavg": [load_start, os.getloadavg()[0]],
        "git": _git_describe(),
        "llm_string_chars": len(LLM_STRING),
    }
    if args.json:
        doc = json.dumps({**meta, **_modes.to_json(result)}, indent=2, default=str)
        if args.json == "-":
            print(doc)
            return 0
        Path(args.json).write_text(doc)
    m = meta["machine"]
    print(
        f"{m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, redis-server "
        f"{m['versions'].get('redis-server', '?')}, llmcache at {meta['git']}; load average "
        f"{meta['loadavg'][0]:.2f} / {meta['loadavg'][1]:.2f} (start / end); llm_string "
        f"{meta['llm_string_chars']} chars.\n"
    )
    print(text)
    print(f"\n_{meta['command']}: {result['elapsed_s']} s_")
    return 0


if __name__ == "__main__":
    sys.exit(main())
