"""Monthly cost of a cache workload on Momento and on ElastiCache (nodes or serverless).

Prices are examples with a date, not quotes: every one can be overridden (``Prices(...)``,
``llmcache bench --price NAME=VALUE``). Defaults, US East, as published and checked 2026-11:

- Momento: $0.50 per GB transferred (reads and writes), no charge for storage or requests.
- ElastiCache Serverless, Valkey: $0.0023 per million ECPUs (1 ECPU per KB moved by a simple
  GET/SET), $0.084 per GB-hour stored, 100 MB minimum. (Redis OSS: $0.0034, $0.125, 1 GB minimum.)
- ElastiCache nodes: cache.t4g.medium (3.09 GB) at $0.065 per node-hour, 2 nodes per shard
  (primary + replica), as many shards as the stored data needs at 75% of node memory.

Example::

    from llmcache.pricing import Prices, Traffic, monthly_costs

    monthly_costs(Traffic(requests_per_s=50, hit_ratio=0.6, value_bytes=3000), Prices())
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from llmcache.errors import ConfigError

__all__ = ["PRICES_AS_OF", "Prices", "Traffic", "monthly_costs"]

PRICES_AS_OF = "2026-11"
HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class Prices:
    """Unit prices in USD; override any field."""

    momento_per_gb: float = 0.50
    serverless_per_million_ecpu: float = 0.0023
    serverless_per_gb_hour: float = 0.084
    serverless_min_gb: float = 0.1
    node_per_hour: float = 0.065
    node_memory_gb: float = 3.09
    nodes_per_shard: int = 2

    def with_overrides(self, pairs: list[str]) -> Prices:
        """A copy with ``NAME=VALUE`` overrides; unknown names are a :class:`ConfigError`."""
        valid = {f.name: f.type for f in fields(self)}
        changes: dict[str, float | int] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            if not sep or name not in valid:
                raise ConfigError(
                    f"invalid price {pair!r}: use NAME=VALUE with NAME one of {', '.join(valid)}"
                )
            try:
                changes[name] = int(raw) if name == "nodes_per_shard" else float(raw)
            except ValueError:
                raise ConfigError(f"invalid price {pair!r}: {raw!r} is not a number") from None
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Traffic:
    """The workload to price: lookups per second, hit ratio, stored value size, TTL."""

    requests_per_s: float
    hit_ratio: float
    value_bytes: float
    ttl_s: float = 86_400.0
    key_bytes: float = 50.0


def monthly_costs(traffic: Traffic, prices: Prices) -> dict[str, float]:
    """USD per month for each pricing model, for the same traffic."""
    requests = traffic.requests_per_s * SECONDS_PER_MONTH
    hits = requests * traffic.hit_ratio
    misses = requests - hits
    # A hit moves the value back; a miss moves a key, then the model's answer is SET.
    moved_bytes = hits * (traffic.value_bytes + traffic.key_bytes) + misses * (
        traffic.key_bytes * 2 + traffic.value_bytes
    )
    momento = moved_bytes / 1e9 * prices.momento_per_gb
    ecpus = hits * max(1, math.ceil(traffic.value_bytes / 1024)) + misses * (
        1 + max(1, math.ceil(traffic.value_bytes / 1024))
    )
    # Entries alive at once: distinct answers written within one TTL, bounded by all written.
    stored_gb = (
        min(misses, traffic.requests_per_s * (1 - traffic.hit_ratio) * traffic.ttl_s)
        * (
            traffic.value_bytes + traffic.key_bytes + 64  # ~64 B of per-key overhead in Redis
        )
        / 1e9
    )
    serverless = (
        ecpus / 1e6 * prices.serverless_per_million_ecpu
        + max(stored_gb, prices.serverless_min_gb) * HOURS_PER_MONTH * prices.serverless_per_gb_hour
    )
    shards = max(1, math.ceil(stored_gb / (prices.node_memory_gb * 0.75)))
    nodes = prices.node_per_hour * prices.nodes_per_shard * shards * HOURS_PER_MONTH
    return {
        "Momento": round(momento, 2),
        "ElastiCache Serverless": round(serverless, 2),
        "ElastiCache nodes": round(nodes, 2),
    }
