"""Counters and latency percentiles of one :class:`~llmcache.LLMCache`, readable as a dict.

Example::

    cache.stats.as_dict()
    # {'hits': 3, 'misses': 1, 'hit_ratio': 0.75, 'lookup_ms': {'p50': 0.04, ...}, ...}
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from typing import Any

__all__ = ["LatencyWindow", "Stats"]

COUNTERS = (
    "hits",
    "misses",
    "bypasses",
    "writes",
    "errors",
    "decode_errors",
    "skipped_open_circuit",
    "skipped_after_fault",
    "skipped_writes",  # updates not attempted: breaker open
    "unstorable",  # answers the codec cannot serialise (not cached, never raised)
    "too_old",  # hits refused by a per-call max_age (counted as misses too)
    "coalesced",  # single-flight: calls answered by another caller's model call
    "lease_expired",  # single-flight: waiters that gave up on a leader and called the model
    "semantic_hits",  # hits served by a stored paraphrase (counted as hits too)
    "bytes_read",
    "bytes_written",
)


class LatencyWindow:
    """The last ``size`` latencies (seconds), for percentiles; old samples fall off."""

    def __init__(self, size: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)  # deque.append is atomic under the GIL

    def percentiles_ms(self) -> dict[str, float]:
        """p50, p95, p99 and max in milliseconds, and the sample count; {} before any sample.

        Percentiles interpolate between samples (:func:`statistics.quantiles`, "inclusive":
        the window is the whole population, so they lie between its min and max).
        """
        samples = list(self._samples)
        if not samples:
            return {}
        # quantiles needs two points; one sample is every percentile of itself.
        cuts = statistics.quantiles(
            samples * 2 if len(samples) == 1 else samples, n=100, method="inclusive"
        )
        return {
            "p50": round(cuts[49] * 1000, 4),
            "p95": round(cuts[94] * 1000, 4),
            "p99": round(cuts[98] * 1000, 4),
            "max": round(max(samples) * 1000, 4),
            "count": float(len(samples)),
        }


class Stats:
    """Thread-safe counters plus lookup and update latency windows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self.lookup_latency = LatencyWindow()
        self.update_latency = LatencyWindow()

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def hit(self, nbytes: int) -> None:
        """Count a hit of ``nbytes`` stored bytes (one lock for both counters: the hot path)."""
        with self._lock:
            self._counts["hits"] += 1
            self._counts["bytes_read"] += nbytes

    def __getitem__(self, name: str) -> int:
        if name == "lookups":  # every lookup is exactly one of these: derived, not counted
            return self._counts["hits"] + self._counts["misses"] + self._counts["bypasses"]
        return self._counts[name]

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(COUNTERS, 0)
        self.lookup_latency = LatencyWindow()
        self.update_latency = LatencyWindow()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            counts: dict[str, Any] = dict(self._counts)
        counts["lookups"] = counts["hits"] + counts["misses"] + counts["bypasses"]
        looked_up = counts["hits"] + counts["misses"]
        counts["hit_ratio"] = round(counts["hits"] / looked_up, 4) if looked_up else None
        counts["lookup_ms"] = self.lookup_latency.percentiles_ms()
        counts["update_ms"] = self.update_latency.percentiles_ms()
        return counts
