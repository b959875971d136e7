"""What caching costs and saves: a workload's store bill, and the price of the tokens a hit saves.

**Store costs**: the monthly cost of a cache workload on Momento and on ElastiCache (nodes or
serverless).

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

**Model prices**: USD per million input and output tokens of common models
(:data:`MODEL_PRICES`, list prices as published when each model launched: examples, not quotes),
matched by the longest prefix of the model name a provider reports (``gpt-4o-mini-2024-07-18``
is ``gpt-4o-mini``). The metrics price the tokens a hit saved with them (see
docs/observability.md); pass your own for other models or negotiated prices::

    from llmcache.pricing import ModelPrices

    prices = ModelPrices.default().with_models({"my-model": (0.5, 1.5)})
    prices.cost("gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=200)   # 0.00027
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from llmcache.errors import ConfigError

__all__ = [
    "MODEL_PRICES",
    "PRICES_AS_OF",
    "ModelPrices",
    "Prices",
    "TokenPrice",
    "Traffic",
    "monthly_costs",
]

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


# --------------------------------------------------------------------------- model prices


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """USD per million tokens, input (prompt) and output (completion)."""

    input: float
    output: float

    def __post_init__(self) -> None:
        for name in ("input", "output"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"invalid {name} price {value!r}: USD per 1M tokens, >= 0")


#: Example list prices, USD per 1M tokens (input, output), each as published by its provider
#: when the model launched (openai.com/api/pricing, anthropic.com/pricing,
#: ai.google.dev/pricing). Prompt-cache discounts and batch prices are not modelled.
MODEL_PRICES: Mapping[str, TokenPrice] = {
    "gpt-4o": TokenPrice(2.50, 10.00),
    "gpt-4o-mini": TokenPrice(0.15, 0.60),
    "gpt-4.1": TokenPrice(2.00, 8.00),
    "gpt-4.1-mini": TokenPrice(0.40, 1.60),
    "gpt-4.1-nano": TokenPrice(0.10, 0.40),
    "o3-mini": TokenPrice(1.10, 4.40),
    "claude-3-5-haiku": TokenPrice(0.80, 4.00),
    "claude-3-5-sonnet": TokenPrice(3.00, 15.00),
    "claude-3-7-sonnet": TokenPrice(3.00, 15.00),
    "claude-sonnet-4": TokenPrice(3.00, 15.00),
    "claude-opus-4": TokenPrice(15.00, 75.00),
    "gemini-1.5-flash": TokenPrice(0.075, 0.30),
    "gemini-2.0-flash": TokenPrice(0.10, 0.40),
}


class ModelPrices:
    """Token prices by model name, looked up by the longest matching prefix."""

    __slots__ = ("_by_length", "_found", "prices")

    def __init__(self, prices: Mapping[str, TokenPrice | tuple[float, float]]) -> None:
        self.prices: dict[str, TokenPrice] = {
            name: p if isinstance(p, TokenPrice) else TokenPrice(*p) for name, p in prices.items()
        }
        self._by_length = sorted(self.prices, key=len, reverse=True)
        self._found: dict[str, TokenPrice | None] = {}  # model name -> price (bounded below)

    @classmethod
    def default(cls) -> ModelPrices:
        """The example list prices of :data:`MODEL_PRICES`."""
        return cls(MODEL_PRICES)

    def with_models(self, prices: Mapping[str, TokenPrice | tuple[float, float]]) -> ModelPrices:
        """A copy where ``prices`` (model name or prefix → price) add to or replace these."""
        return ModelPrices({**self.prices, **prices})

    def price(self, model: str) -> TokenPrice | None:
        """The price of ``model`` (longest prefix that matches), or None when unknown."""
        try:
            return self._found[model]
        except KeyError:
            pass
        found = next((self.prices[p] for p in self._by_length if model.startswith(p)), None)
        if len(self._found) < 1024:  # model names are few; a bound in case they are not
            self._found[model] = found
        return found

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """USD that many tokens of ``model`` cost, or None when its price is unknown."""
        price = self.price(model)
        if price is None:
            return None
        return (input_tokens * price.input + output_tokens * price.output) / 1e6

    def __repr__(self) -> str:
        return f"ModelPrices({len(self.prices)} models)"
