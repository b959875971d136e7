"""Two tiers: hit latency of an in-process L1 in front of Redis / Momento, against the store alone.

    python benchmarks/two_tiers.py [--quick] [--rtt-ms 0.5] [--json PATH]

Starts its own servers (a standalone redis-server on a free loopback port, never 6379; the local
Momento server in a child process) and stops them on exit. Everything goes through
:class:`llmcache.LLMCache` (key policy, codec, guard) with a ~1.5 KB answer under the realistic
ChatOpenAI ``llm_string`` of ``_workload.py``. Three caches share one namespace of each store:

- a *writer* (the store alone), standing for another process that called the model and stored
  the answer;
- ``L2 alone``: a reader on the store alone;
- ``L1+L2``: a reader on ``with_l1(store, True)`` (defaults: 10,000 entries, 30 s).

Reads, each with its own fresh entries per round, rounds interleaved (drift hits both alike):

- **cold**: every entry read once, right after the writer stored it. For ``L1+L2`` that is an
  L1 miss (the value was written by another process): the L2 read plus the L1 fill.
- **warm**: the same entries read again, several passes. ``L1+L2`` answers from memory.

Reported: p50 and p99 per read, sync (``lookup``) and async (``alookup``, one at a time), and
the ratio ``L1+L2 / L2 alone`` of the p50s measured in the same run. The "momento (emulated)"
rows run with the local server waiting ``--rtt-ms`` per RPC to emulate an in-region round trip:
those numbers are **emulated**. Everything is loopback on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _servers import MomentoServer, start_redis
from _workload import LLM_STRING, prompt

from llmcache import LLMCache
from llmcache.backends.base import Backend
from llmcache.backends.tiered import with_l1
from llmcache.registry import create_backend

MOMENTO_CACHE = "llmcache"
# ~1.5 KB of ordinary prose (an LLM answer as the cache stores it): not a repeated line, which
# would flatter compression.
TEXT = (
    "Here is a summary of the incident review in four points.\n\n"
    "- The outage began at 14:02 UTC when a configuration push raised the connection limit of "
    "the API gateway above what the database proxy could hold; the proxy started refusing new "
    "sessions and the gateway retried them at once, which tripled the load within a minute.\n"
    "- Error rates reached 38% at 14:09. The on-call engineer rolled the configuration back at "
    "14:21, but cached DNS entries kept a third of the gateway fleet on the old proxy pool, so "
    "full recovery took until 14:47. No data was lost; 2,140 payment requests were retried by "
    "clients and 61 were abandoned.\n"
    "- Root causes named by the review: the limit was validated against the staging proxy, "
    "which has twice the memory; the retry policy had no jitter and no budget; and the alert "
    "on refused sessions fired only after five minutes of sustained errors.\n"
    "- Actions agreed: a canary stage for gateway configuration with automatic rollback on "
    "error-rate change, exponential backoff with full jitter and a retry budget of 10% of "
    "traffic, a one-minute alert on refused sessions, and a shorter DNS TTL for the proxy "
    "pools. Owners and dates are in the tracker; the first two ship next sprint.\n\n"
    "- Cost: the incident consumed 1.8% of the quarterly error budget of the payments API and "
    "triggered service credits for two enterprise customers, about $14,000 in total.\n\n"
    "Would you like the timeline as a table, or a short customer-facing note?"
)
ANSWER = [{"text": TEXT}]


@dataclass
class Mode:
    entries: int  # fresh entries per round
    rounds: int
    warm_passes: int  # warm reads of each entry per round


DEFAULT = Mode(entries=200, rounds=6, warm_passes=5)
QUICK = Mode(entries=50, rounds=2, warm_passes=3)


@dataclass
class Series:
    """Latencies (seconds) of one (store, reader, read kind)."""

    values: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, float]:
        return {
            "n": len(self.values),
            "p50_us": self.pct(0.5) * 1e6,
            "p99_us": self.pct(0.99) * 1e6,
            "mean_us": statistics.fmean(self.values) * 1e6,
        }


KINDS = ("sync cold", "sync warm", "async cold", "async warm")
READERS = ("L2 alone", "L1+L2")


def _read_sync(cache: LLMCache, prompts: list[str], out: Series) -> None:
    for p in prompts:
        start = time.perf_counter()
        got = cache.lookup(p, LLM_STRING)
        out.values.append(time.perf_counter() - start)
        if got != ANSWER:
            raise RuntimeError(f"{cache!r} missed an entry it should hit")


async def _read_async(cache: LLMCache, prompts: list[str], out: Series) -> None:
    for p in prompts:
        start = time.perf_counter()
        got = await cache.alookup(p, LLM_STRING)
        out.values.append(time.perf_counter() - start)
        if got != ANSWER:
            raise RuntimeError(f"{cache!r} missed an entry it should hit")


async def run_store(make: Callable[[], Backend], mode: Mode, tag: int) -> dict[str, Series]:
    """Cold and warm reads of ``L2 alone`` and ``L1+L2`` on one store, rounds interleaved."""
    writer = LLMCache(make())
    readers = {"L2 alone": LLMCache(make()), "L1+L2": LLMCache(with_l1(make(), True))}
    series = {f"{reader} {kind}": Series() for reader in READERS for kind in KINDS}
    try:
        for cache in readers.values():  # connect first: a run measures reads, not handshakes
            cache.lookup("warm-up", LLM_STRING)
            await cache.alookup("warm-up", LLM_STRING)
        for r in range(mode.rounds):
            order = list(READERS) if r % 2 == 0 else list(reversed(READERS))
            for side in ("sync", "async"):
                base = (tag * 1000 + r * 2 + (side == "async")) * mode.entries
                prompts = [prompt(base + i) for i in range(mode.entries)]
                for p in prompts:  # another process stores the answers
                    writer.update(p, LLM_STRING, ANSWER)
                for kind in ("cold", *["warm"] * mode.warm_passes):
                    for name in order:
                        out = series[f"{name} {side} {kind}"]
                        if side == "sync":
                            _read_sync(readers[name], prompts, out)
                        else:
                            await _read_async(readers[name], prompts, out)
    finally:
        writer.clear()
        for cache in (writer, *readers.values()):
            await cache.aclose()
            cache.close()
    return series


def report(results: dict[str, dict[str, Series]], meta: dict[str, Any]) -> str:
    lines = [
        "| store | read | L2 alone p50 / p99 (µs) | L1+L2 p50 / p99 (µs) | L1+L2 / L2 (p50) |",
        "|---|---|---|---|---|",
    ]
    for store, series in results.items():
        for kind in KINDS:
            alone, tiered = series[f"L2 alone {kind}"], series[f"L1+L2 {kind}"]
            note = " (L1 miss)" if kind.endswith("cold") else ""
            lines.append(
                f"| {store} | {kind}{note} | {alone.pct(0.5) * 1e6:.0f} / "
                f"{alone.pct(0.99) * 1e6:.0f} | {tiered.pct(0.5) * 1e6:.0f} / "
                f"{tiered.pct(0.99) * 1e6:.0f} | {tiered.pct(0.5) / alone.pct(0.5):.2f}× |"
            )
    lines.append("")
    lines.append(
        f"_{meta['entries']} entries × {meta['rounds']} rounds per side; warm = "
        f"{meta['warm_passes']} more passes; answer {meta['answer_bytes']} B of JSON; "
        f"momento (emulated): server waits {meta['rtt_ms']} ms per RPC; "
        f"{meta['machine']}; load {meta['loadavg'][0]:.1f} → {meta['loadavg'][1]:.1f}_"
    )
    return "\n".join(lines)


async def _run(mode: Mode, rtt: float) -> dict[str, dict[str, Series]]:
    results: dict[str, dict[str, Series]] = {}
    redis_server = momento = None
    try:
        redis_server = start_redis()
        momento = MomentoServer([MOMENTO_CACHE])
        url = redis_server.url
        results["redis"] = await run_store(
            lambda: create_backend(url, namespace="two-tiers"), mode, 1
        )
        murl = f"momento://{MOMENTO_CACHE}?local={momento.address}"
        make_momento = lambda: create_backend(murl, namespace="two-tiers")  # noqa: E731
        results["momento"] = await run_store(make_momento, mode, 2)
        if rtt > 0:
            momento.set_delay(rtt)
            results["momento (emulated)"] = await run_store(make_momento, mode, 3)
            momento.set_delay(0)
    finally:
        if momento is not None:
            momento.stop()
        if redis_server is not None:
            redis_server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer entries and rounds")
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="emulated Momento RTT (0: off)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else DEFAULT
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    results = asyncio.run(_run(mode, args.rtt_ms / 1000))
    meta = {
        "command": "python benchmarks/two_tiers.py" + (" --quick" if args.quick else ""),
        "entries": mode.entries,
        "rounds": mode.rounds,
        "warm_passes": mode.warm_passes,
        "answer_bytes": len(json.dumps(ANSWER)),
        "rtt_ms": args.rtt_ms,
        "machine": f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        "loadavg": [load_start, os.getloadavg()[0]],
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    print(report(results, meta))
    print(f"\n_{meta['command']}: {meta['elapsed_s']} s_")
    if args.json:
        figures = {
            store: {name: s.summary() for name, s in series.items()}
            for store, series in results.items()
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "results": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
