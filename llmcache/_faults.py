"""Internal: what a store fault does to the caller, shared by the cache and the LangChain adapters.

A fault is counted (``errors``), trips the circuit breaker and is logged once per burst; under
``on_error="raise"`` it is re-raised as a :class:`~llmcache.errors.BackendError` instead.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

from llmcache._breaker import CircuitBreaker
from llmcache.errors import BackendError
from llmcache.stats import Stats

__all__ = ["FAULT_LOG_INTERVAL", "FaultLog", "OnError", "record_fault"]

log = logging.getLogger("llmcache")

OnError = Literal["miss", "raise"]
FAULT_LOG_INTERVAL = 60.0  # seconds: a burst of store faults is logged once, not per call


class FaultLog:
    """Logs a fault at most once per ``interval`` seconds (the first of each burst)."""

    def __init__(self, interval: float = FAULT_LOG_INTERVAL) -> None:
        self.interval = interval
        self._last = 0.0
        self._lock = threading.Lock()

    def warn(self, op: str, target: object, exc: BaseException, outcome: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval:
                return
            self._last = now
        log.warning(
            "llmcache %s on %r failed (%s); %s, not logging again for %ds",
            op,
            target,
            exc,
            outcome,
            self.interval,
        )


def record_fault(
    op: str,
    exc: Exception,
    *,
    target: object,
    stats: Stats,
    breaker: CircuitBreaker,
    on_error: OnError,
    faults: FaultLog,
    what: str = "cache",
    outcome: str = "serving misses",
) -> None:
    """Count ``exc``, trip ``breaker``, then re-raise (``on_error="raise"``) or log once."""
    stats.incr("errors")
    breaker.failure()
    if on_error == "raise":
        if isinstance(exc, BackendError):
            raise exc
        raise BackendError(f"{what} {op} failed: {exc}") from exc
    faults.warn(op, target, exc, outcome)
