"""``llmcache bench``: backends side by side on one LLM-shaped workload, in one run.

For every URL: fill N keys with chat answers of realistic sizes (200 B-20 KB, ASCII and CJK), then
look them up at a given hit ratio, sync and async at several concurrency levels, rounds
interleaved across backends so machine drift hits all alike. Hits are reported **cold** (an entry's
first read, as most production hits are: nothing about it is in memory yet) and **warm** (entries
read before) separately: a cold pass reads a second set of N entries once each, sync and at every
concurrency level, before the rounds; the rounds' hits are warm. Reports latency percentiles per
operation, throughput, errors, bytes per entry and per hit, our layer's overhead over the store
op, and a monthly cost estimate (see :mod:`llmcache.pricing`).

Example::

    llmcache bench --url memory:// --url disk:///tmp/b --json
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from llmcache.cache import LLMCache
from llmcache.registry import redact_url

__all__ = ["BenchConfig", "BenchResult", "make_answers", "percentiles", "run_bench"]

#: What LangChain hands a cache for a tool-calling ChatOpenAI call (~1 KB; built by
#: benchmarks/_workload.py): key derivation runs on it for every lookup.
LLM_STRING = (
    '{"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {"max_retries": 2, '
    '"max_tokens": 1024, "model_name": "gpt-4o-mini", "openai_api_key": {"id": '
    '["OPENAI_API_KEY"], "lc": 1, "type": "secret"}, "request_timeout": 30.0, "stream_usage": '
    'true, "temperature": 0.2}, "lc": 1, "name": "ChatOpenAI", "type": "constructor"}---'
    "[('stop', None), ('tools', [{'type': 'function', 'function': {'name': 'get_weather', "
    "'description': 'Current weather for a city.', 'parameters': {'properties': {'city': "
    "{'description': 'City name, e.g. Paris.', 'type': 'string'}, 'unit': {'default': "
    "'celsius', 'description': 'celsius or fahrenheit.', 'type': 'string'}}, 'required': "
    "['city'], 'type': 'object'}}}, {'type': 'function', 'function': {'name': 'search_docs', "
    "'description': 'Search the internal knowledge base.', 'parameters': {'properties': "
    "{'query': {'description': 'What to search for.', 'type': 'string'}, 'top_k': {'default': "
    "5, 'description': 'How many passages to return.', 'type': 'integer'}}, 'required': "
    "['query'], 'type': 'object'}}}])]"
)
_CJK = "缓存模型回答问题数据服务器时间成本速度用户请求结果网络内存磁盘集群节点"
_WORDS = [
    "the",
    "cache",
    "answer",
    "model",
    "request",
    "latency",
    "token",
    "prompt",
    "store",
    "value",
    "key",
    "cost",
    "user",
    "reply",
    "result",
    "fast",
    "again",
    "same",
    "question",
    "network",
    "memory",
    "disk",
    "cluster",
    "node",
    "region",
]


@dataclass
class BenchConfig:
    """What to run: backends, workload shape, concurrency."""

    urls: list[str]
    keys: int = 200
    ops: int = 2000
    hit_ratio: float = 0.9
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 64])
    rounds: int = 4
    seed: int = 7
    min_bytes: int = 200
    max_bytes: int = 20_000
    cjk_share: float = 0.3


@dataclass
class OpStats:
    """Latencies (seconds) and error count of one operation on one backend and mode."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": len(self.latencies), "errors": self.errors}
        out.update(percentiles(self.latencies))
        if self.wall > 0:
            out["ops_per_s"] = round(len(self.latencies) / self.wall, 1)
        return out


@dataclass
class BenchResult:
    """Everything measured for one URL."""

    url: str
    ops: dict[str, OpStats] = field(default_factory=dict)
    bytes_per_entry: float = 0.0
    bytes_per_hit: float = 0.0
    hit_ratio_seen: float = 0.0
    error: str | None = None

    def op(self, name: str) -> OpStats:
        return self.ops.setdefault(name, OpStats())

    def as_dict(self) -> dict[str, Any]:
        hit = self.ops.get("sync hit warm")
        store = self.ops.get("sync store get")
        overhead = cold_overhead = None
        if hit and store and hit.latencies and store.latencies:
            overhead = round(
                statistics.median(hit.latencies) / statistics.median(store.latencies), 3
            )
        cold = self.ops.get("sync hit cold")
        if cold and store and cold.latencies and store.latencies:
            cold_overhead = round(
                statistics.median(cold.latencies) / statistics.median(store.latencies), 3
            )
        return {
            "url": redact_url(self.url),  # reports are printed and shared: no passwords
            "error": self.error,
            "bytes_per_entry": round(self.bytes_per_entry, 1),
            "bytes_per_hit": round(self.bytes_per_hit, 1),
            "hit_ratio_seen": round(self.hit_ratio_seen, 4),
            "layer_overhead_p50": overhead,  # warm hit ÷ bare store get
            "layer_overhead_cold_p50": cold_overhead,  # cold hit ÷ bare store get
            "ops": {name: s.summary() for name, s in self.ops.items()},
        }


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/p99.9 in milliseconds (nearest rank)."""
    if not samples:
        return {}
    ordered = sorted(samples)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] * 1000

    return {
        "p50_ms": round(rank(0.5), 4),
        "p95_ms": round(rank(0.95), 4),
        "p99_ms": round(rank(0.99), 4),
        "p999_ms": round(rank(0.999), 4),
    }


def make_answers(config: BenchConfig) -> list[Any]:
    """Chat answers (as the LangChain adapter stores them) with log-uniform text sizes."""
    rng = random.Random(config.seed)
    answers = []
    for i in range(config.keys):
        size = int(math.exp(rng.uniform(math.log(config.min_bytes), math.log(config.max_bytes))))
        if rng.random() < config.cjk_share:
            text = "".join(rng.choice(_CJK) for _ in range(max(1, size // 3)))  # 3 B per char
        else:
            words: list[str] = []
            length = 0
            while length < size:
                words.append(rng.choice(_WORDS))
                length += len(words[-1]) + 1
            text = " ".join(words)
        answers.append(
            [
                {
                    "t": "ChatGeneration",
                    "m": {
                        "content": text,
                        "type": "ai",
                        "id": f"run-{uuid.UUID(int=rng.getrandbits(128))}",
                        "usage_metadata": {
                            "input_tokens": 40 + i % 50,
                            "output_tokens": len(text) // 4,
                            "total_tokens": 40 + i % 50 + len(text) // 4,
                        },
                        "response_metadata": {"model_name": "bench-1", "finish_reason": "stop"},
                    },
                }
            ]
        )
    return answers


@contextmanager
def _timed(stats: OpStats) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    except Exception:
        stats.errors += 1
        raise
    finally:
        stats.latencies.append(time.perf_counter() - start)


class _Subject:
    """One backend under test: its cache, prompts, and the plan of lookups."""

    def __init__(self, url: str, config: BenchConfig, answers: list[Any]) -> None:
        self.result = BenchResult(url)
        # on_error="raise": the bench counts errors instead of hiding them as misses.
        self.cache = LLMCache.from_url(
            url, namespace=f"bench-{uuid.uuid4().hex[:8]}", on_error="raise"
        )
        self.prompts = [f"bench question {i}: what does the cache do?" for i in range(config.keys)]
        self.keys = [self.cache.policy.decide(p, LLM_STRING).key or "" for p in self.prompts]
        self.answers = answers
        # Entries read once each by the cold pass: one set for sync, one per concurrency level.
        self.cold = {
            mode: [f"bench cold {mode} {i}: what does the cache do?" for i in range(config.keys)]
            for mode in ["sync", *(f"c={c}" for c in config.concurrency)]
        }

    def lookup_plan(self, count: int, hit_ratio: float, rng: random.Random) -> list[str]:
        return [
            rng.choice(self.prompts) if rng.random() < hit_ratio else f"absent {uuid.uuid4().hex}"
            for _ in range(count)
        ]


def _fill(subject: _Subject) -> None:
    stats = subject.result.op("sync set")
    sizes = []
    for prompt, key, answer in zip(subject.prompts, subject.keys, subject.answers, strict=True):
        with _timed(stats):
            subject.cache.update(prompt, LLM_STRING, answer)
        sizes.append(len(subject.cache.codec.encode(key, [answer])) + len(key))
    subject.result.bytes_per_entry = statistics.fmean(sizes)
    for prompts in subject.cold.values():  # the cold pass's entries (not timed)
        for prompt, answer in zip(prompts, subject.answers, strict=True):
            subject.cache.update(prompt, LLM_STRING, answer)


def _cold_pass(subject: _Subject, config: BenchConfig) -> None:
    """Each cold entry read once: sync, then at every concurrency level (hits only counted)."""
    result = subject.result
    cold = result.op("sync hit cold")
    for prompt in subject.cold["sync"]:
        start = time.perf_counter()
        try:
            answer = subject.cache.lookup(prompt, LLM_STRING)
        except Exception:
            cold.errors += 1
            continue
        if answer is not None:
            cold.latencies.append(time.perf_counter() - start)
    for concurrency in config.concurrency:
        prompts = subject.cold[f"c={concurrency}"]
        asyncio.run(_async_pass(subject, prompts, concurrency, f"async hit c={concurrency} cold"))


def _warm_up(subject: _Subject) -> None:
    """Every warm entry read twice before the rounds (in memory from then on, as it will be)."""
    for prompt in subject.prompts * 2:
        subject.cache.lookup(prompt, LLM_STRING)


def _sync_round(subject: _Subject, plan: list[str], tick: Callable[[int], None]) -> None:
    result = subject.result
    hit, miss = result.op("sync hit warm"), result.op("sync miss")
    store = result.op("sync store get")
    for prompt in plan:
        start = time.perf_counter()
        try:
            answer = subject.cache.lookup(prompt, LLM_STRING)
        except Exception:
            miss.errors += 1
            continue
        (hit if answer is not None else miss).latencies.append(time.perf_counter() - start)
    for key in subject.keys[: max(1, len(plan) // 4)]:
        with _timed(store):
            subject.cache.backend.get(key)
    tick(len(plan))


async def _async_pass(subject: _Subject, plan: list[str], concurrency: int, name: str) -> None:
    """Lookups of ``plan`` by ``concurrency`` workers; hits timed into op ``name``."""
    await _workers(subject, plan, concurrency, subject.result.op(name), None)


async def _workers(
    subject: _Subject, plan: list[str], concurrency: int, hit: OpStats, miss: OpStats | None
) -> None:
    """``concurrency`` workers looking up ``plan``; hits (and misses, if asked) timed."""
    queue = iter(plan)

    async def worker() -> None:
        for prompt in queue:
            start = time.perf_counter()
            try:
                answer = await subject.cache.alookup(prompt, LLM_STRING)
            except Exception:
                (miss or hit).errors += 1
                continue
            if answer is not None or miss is not None:
                target = hit if answer is not None else miss
                assert target is not None
                target.latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    hit.wall += time.perf_counter() - start


async def _async_round(
    subject: _Subject, plan: list[str], concurrency: int, tick: Callable[[int], None]
) -> None:
    result = subject.result
    hit = result.op(f"async hit c={concurrency} warm")
    miss = result.op(f"async miss c={concurrency}")
    await _workers(subject, plan, concurrency, hit, miss)
    tick(len(plan))


def run_bench(
    config: BenchConfig, tick: Callable[[int], None] = lambda n: None
) -> list[BenchResult]:
    """Run the workload on every URL, interleaved by round; returns one result per URL."""
    if not 0.0 <= config.hit_ratio <= 1.0:
        from llmcache.errors import ConfigError

        raise ConfigError(f"invalid hit ratio {config.hit_ratio!r}: must be within 0..1")
    answers = make_answers(config)
    rng = random.Random(config.seed + 1)
    subjects: list[_Subject] = []
    for url in config.urls:
        subject = _Subject(url, config, answers)
        try:
            _fill(subject)
        except Exception as exc:  # a backend that cannot even be filled is reported, not fatal
            subject.result.error = f"{type(exc).__name__}: {exc}"
        subjects.append(subject)
    live = [s for s in subjects if s.result.error is None]
    for subject in live:
        _cold_pass(subject, config)
        _warm_up(subject)
    per_round = max(1, config.ops // config.rounds)
    for _ in range(config.rounds):
        for subject in live:
            plan = subject.lookup_plan(per_round, config.hit_ratio, rng)
            _sync_round(subject, plan, tick)
            for concurrency in config.concurrency:
                asyncio.run(_async_round(subject, plan, concurrency, tick))
    for subject in subjects:
        stats = subject.cache.stats.as_dict()
        looked = stats["hits"] + stats["misses"]
        subject.result.hit_ratio_seen = stats["hits"] / looked if looked else 0.0
        subject.result.bytes_per_hit = stats["bytes_read"] / stats["hits"] if stats["hits"] else 0
        try:
            subject.cache.clear()
        except Exception as exc:  # leave the entries to their TTL; report, do not crash
            subject.result.error = subject.result.error or f"clear failed: {exc}"
        finally:
            subject.cache.close()
    return [s.result for s in subjects]


def total_ops(config: BenchConfig) -> int:
    """How many lookups :func:`run_bench` makes (for a progress bar)."""
    per_round = max(1, config.ops // config.rounds)
    return per_round * config.rounds * len(config.urls) * (1 + len(config.concurrency))
