"""What single-flight adds to a miss: its cold path against calling compute directly.

    python benchmarks/single_flight.py [--quick] [--rounds N]

Every call uses a fresh key, so every call is a miss that leads its flight: the cost measured is
the in-process bookkeeping plus the store lease (``add`` of ``lease:<key>``, then ``delete``),
i.e. two extra store operations per model call. ``compute`` is the cheapest possible "model":
it stores a ~1 KB answer and returns it, so the ratio is the worst case; next to a real model call
(hundreds of ms) the added microseconds vanish.

Backends: memory, disk (a temp directory) and Redis (a throwaway redis-server this script starts
on a free loopback port and stops). Sync (``run``) and async (``arun``), measured in interleaved
rounds (machine drift hits both paths alike), median of the rounds' per-call means reported.

A last table shows what single-flight is for: 64 concurrent misses of one key with a 20 ms model,
model calls and wall time with and without it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from itertools import count
from typing import Any

from _servers import start_redis

from llmcache.backends.base import Backend
from llmcache.backends.disk import DiskBackend, DiskOptions
from llmcache.backends.memory import MemoryBackend
from llmcache.registry import create_backend
from llmcache.singleflight import SingleFlight

ANSWER = b"x" * 1024  # ~ a short chat answer, as stored bytes
_keys = count()


def _fresh() -> str:
    return f"bench:{next(_keys)}"


def _time_sync(n: int, call: Callable[[str], Any]) -> float:
    keys = [_fresh() for _ in range(n)]
    start = time.perf_counter()
    for key in keys:
        call(key)
    return (time.perf_counter() - start) / n


async def _time_async(n: int, call: Callable[[str], Awaitable[Any]]) -> float:
    keys = [_fresh() for _ in range(n)]
    start = time.perf_counter()
    for key in keys:
        await call(key)
    return (time.perf_counter() - start) / n


def measure(backend: Backend, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    """``{"sync"|"async": (direct seconds per call, single-flight seconds per call)}``."""
    flight = SingleFlight(backend)

    def compute(key: str) -> bytes:
        backend.set(key, ANSWER, ttl=600)
        return ANSWER

    def via_flight(key: str) -> bytes:
        return flight.run(key, lambda: backend.get(key), lambda: compute(key))

    async def acompute(key: str) -> bytes:
        await backend.aset(key, ANSWER, ttl=600)
        return ANSWER

    async def avia_flight(key: str) -> bytes:
        return await flight.arun(key, lambda: backend.aget(key), lambda: acompute(key))

    samples: dict[str, tuple[list[float], list[float]]] = {"sync": ([], []), "async": ([], [])}

    async def async_round() -> None:
        samples["async"][0].append(await _time_async(n, acompute))
        samples["async"][1].append(await _time_async(n, avia_flight))

    _time_sync(n // 10 + 1, via_flight)  # warm-up: connections, imports, caches
    asyncio.run(_time_async(n // 10 + 1, avia_flight))
    for _ in range(rounds):
        samples["sync"][0].append(_time_sync(n, compute))
        samples["sync"][1].append(_time_sync(n, via_flight))
        asyncio.run(async_round())
    backend.clear()
    return {
        side: (statistics.median(direct), statistics.median(flown))
        for side, (direct, flown) in samples.items()
    }


async def _stampede(callers: int, model_seconds: float, use_flight: bool) -> tuple[int, float]:
    store = MemoryBackend()
    flight = SingleFlight(store)
    calls = 0

    async def model() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(model_seconds)
        await store.aset("k", ANSWER)
        return ANSWER

    async def caller() -> bytes:
        hit = await store.aget("k")
        if hit is not None:
            return hit
        if use_flight:
            return await flight.arun("k", lambda: store.aget("k"), model)
        return await model()

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return calls, time.perf_counter() - start


async def stampede(callers: int, model_seconds: float) -> dict[str, tuple[int, float]]:
    """``callers`` concurrent misses of one key: (model calls, wall seconds), with and without."""
    return {
        "without": await _stampede(callers, model_seconds, False),
        "with": await _stampede(callers, model_seconds, True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rounds = 2 if args.quick else args.rounds

    print("single-flight cold path (a miss that leads): per call, median of rounds")
    print(
        f"{'backend':8} {'side':5} {'direct µs':>10} {'single-flight µs':>17} "
        f"{'added µs':>9} {'ratio':>6}"
    )
    redis_server = start_redis()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores: list[tuple[str, Callable[[], Backend], int]] = [
                ("memory", MemoryBackend, 20_000),
                ("disk", lambda: DiskBackend(DiskOptions(path=tmp)), 2_000),
                ("redis", lambda: create_backend(redis_server.url, namespace="bench"), 2_000),
            ]
            for name, make, n in stores:
                backend = make()
                try:
                    results = measure(backend, max(n // scale, 50), rounds)
                finally:
                    backend.close()
                for side, (direct, flown) in results.items():
                    print(
                        f"{name:8} {side:5} {direct * 1e6:10.1f} {flown * 1e6:17.1f} "
                        f"{(flown - direct) * 1e6:9.1f} {flown / direct:6.2f}"
                    )
    finally:
        redis_server.stop()

    callers, model_seconds = 64, 0.02
    print(f"\n{callers} concurrent misses of one key, a {model_seconds * 1000:.0f} ms model:")
    for label, (calls, wall) in asyncio.run(stampede(callers, model_seconds)).items():
        print(f"  {label:7} single-flight: {calls:3} model calls, {wall * 1000:6.1f} ms wall")


if __name__ == "__main__":
    main()
