"""What metrics cost a hit: a memory:// LangChain-shaped hit with exporters off, Prometheus on,
OpenTelemetry (API only, no SDK) on. Rounds interleave the modes; ratios are against "off" in the
same run (these machines are noisy). Run: ``python benchmarks/metrics_cost.py [--rounds N]``.

Cold and warm differ little on memory:// (no network); this measures the warm hit, where the
exporter's share is largest.
"""

from __future__ import annotations

import argparse
import statistics
import time

from llmcache import LLMCache

LLM = "[('_type', 'fake'), ('model_name', 'bench'), ('temperature', 0.0)]"
ANSWER = [{"text": "x" * 1500}]


def _per_hit_us(cache: LLMCache, n: int) -> float:
    prompts = [f"question {i}" for i in range(n)]
    for p in prompts:
        cache.update(p, LLM, ANSWER)
    start = time.perf_counter()
    for p in prompts:
        cache.lookup(p, LLM)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--hits", type=int, default=5000)
    args = parser.parse_args()

    from prometheus_client import CollectorRegistry

    from llmcache import metrics

    modes = ["off", "prometheus", "otel-api"]
    results: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            cache = LLMCache.from_url("memory://", ttl=None)
            if mode == "prometheus":
                metrics.enable_prometheus(cache, registry=CollectorRegistry())
            elif mode == "otel-api":
                metrics.enable_otel(cache)  # the API's no-op providers: the app has no SDK
            results[mode].append(_per_hit_us(cache, args.hits))
            metrics.disable(target=cache)
    base = statistics.median(results["off"])
    print(f"{'mode':<12}{'µs per hit (median)':>22}{'× off':>8}")
    for mode in modes:
        med = statistics.median(results[mode])
        print(f"{mode:<12}{med:>22.2f}{med / base:>8.2f}")


if __name__ == "__main__":
    main()
