"""The failure policy, in one place: what a store fault does to the caller.

:class:`Guard` owns the circuit breaker, the fault log, the stats and ``on_error`` for one
consumer (the LLM cache, the byte store, anything later). Every store operation a consumer makes
goes through it:

- ``guard.allow()`` before touching the store: False while the breaker is open (counted);
- ``guard.fault(op, exc)`` when the store raised: counted, trips the breaker, logged once per
  burst, and under ``on_error="raise"`` re-raised as :class:`~llmcache.errors.BackendError`;
- ``guard.success()`` when it answered; or ``with guard.run(op) as ok:`` for the three together.

Any ``Exception`` is a fault, not only :class:`~llmcache.errors.BackendError`: a buggy driver
must not fail the LLM call either. A ``CancelledError`` is the caller's own only when the
caller's task is being cancelled; one that a driver's inner task raised is a fault too.
:func:`fault_kind` names a fault in a few words (metrics and traces report it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from llmcache import _defaults
from llmcache._breaker import CircuitBreaker
from llmcache.errors import (
    BackendError,
    BackendUnavailable,
    CodecError,
    ConfigError,
    PartialOutage,
)
from llmcache.stats import Stats

__all__ = [
    "FAULT_LOG_INTERVAL",
    "Guard",
    "OnError",
    "as_fault",
    "check_on_error",
    "check_ttl",
    "fault_kind",
    "foreign_cancellation",
]

log = logging.getLogger("llmcache")

OnError = Literal["miss", "raise"]
FAULT_LOG_INTERVAL = 60.0  # seconds: a burst of store faults is logged once, not per call


def check_on_error(on_error: str) -> OnError:
    """``on_error`` if valid, else a :class:`ConfigError` naming the valid values."""
    if on_error not in ("miss", "raise"):
        raise ConfigError(f"invalid on_error {on_error!r}: use 'miss' or 'raise'")
    return on_error  # type: ignore[return-value]


def check_ttl(ttl: float | None) -> float | None:
    """``ttl`` if ``None`` or a positive number of seconds, else a :class:`ConfigError`."""
    if ttl is not None and (isinstance(ttl, bool) or not ttl > 0):
        raise ConfigError(f"invalid ttl {ttl!r}: must be a positive number of seconds")
    return ttl


def foreign_cancellation(exc: BaseException) -> bool:
    """True for a ``CancelledError`` that is not the current task's own cancellation (a driver's
    inner task was cancelled): a store fault, not a reason to cancel the caller's call."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        return True
    return task is None or task.cancelling() == 0


def as_fault(exc: BaseException) -> Exception:
    """The store fault ``exc`` stands for; re-raises what is not one (the caller's own
    cancellation, KeyboardInterrupt, SystemExit). Use as ``except BaseException as exc:``."""
    if isinstance(exc, Exception):
        return exc
    if foreign_cancellation(exc):
        return RuntimeError("store call cancelled")
    raise exc


def fault_kind(exc: BaseException) -> str:
    """What kind of fault ``exc`` is, in one word (a span attribute; few distinct values):
    ``timeout``, ``partial_outage``, ``unavailable``, ``codec``, ``backend_error``, else the
    exception's class name (a driver's own bug). The chain of causes is read: a driver's
    timeout re-raised as :class:`~llmcache.errors.BackendUnavailable` is a ``timeout``."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 8:  # bounded: a cause cycle cannot hang us
        chain.append(cause)
        cause = cause.__cause__
    if any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in chain):
        return "timeout"
    if isinstance(exc, PartialOutage):
        return "partial_outage"
    if isinstance(exc, BackendUnavailable | ConnectionError):
        return "unavailable"
    if isinstance(exc, CodecError):
        return "codec"
    if isinstance(exc, BackendError):
        return "backend_error"
    return type(exc).__name__


class Flag:
    """Outcome of a guarded block (set when the ``with`` block exits)."""

    __slots__ = ("ok",)

    def __init__(self) -> None:
        self.ok = False

    def __bool__(self) -> bool:
        return self.ok


class Guard:
    """Breaker + fault log + stats + ``on_error`` for one consumer of a store."""

    def __init__(
        self,
        target: object,
        *,
        on_error: OnError = "miss",
        breaker: CircuitBreaker | None = None,
        stats: Stats | None = None,
        what: str = "cache",
    ) -> None:
        self.target = target
        self.on_error = check_on_error(on_error)
        self.breaker = breaker or CircuitBreaker(
            _defaults.BREAKER_FAILURES, _defaults.BREAKER_COOLDOWN
        )
        self.stats = stats or Stats()
        self.what = what
        self._log_interval = FAULT_LOG_INTERVAL
        self._last_log = -FAULT_LOG_INTERVAL
        self._log_lock = threading.Lock()

    def allow(self) -> bool:
        """True when the store should be tried now; False (counted) while the breaker is open."""
        if self.breaker.allow():
            return True
        self.stats.incr("skipped_open_circuit")
        return False

    def success(self) -> None:
        """The store answered: the breaker closes."""
        self.breaker.success()

    def fault(self, op: str, exc: Exception, outcome: str = "serving misses") -> None:
        """Count ``exc``, trip the breaker, then re-raise (``on_error="raise"``) or log once."""
        self.stats.incr("errors")
        if not isinstance(exc, PartialOutage):  # one sick node says nothing about the others
            self.breaker.failure()
        if self.on_error == "raise":
            if isinstance(exc, BackendError):
                raise exc
            raise BackendError(f"{self.what} {op} failed: {exc}") from exc
        self._warn(op, exc, outcome)

    def note(self, op: str, exc: BaseException, outcome: str) -> None:
        """Log a problem that is not a store fault (an answer that cannot be stored), once per
        burst like faults; nothing is counted here and nothing raised."""
        self._warn(op, exc, outcome)

    @contextmanager
    def run(self, op: str, outcome: str = "serving misses") -> Iterator[Flag]:
        """``with guard.run(op) as ok:`` runs a store operation; ``ok`` says if it succeeded."""
        flag = Flag()
        try:
            yield flag
        except BaseException as exc:
            self.fault(op, as_fault(exc), outcome)
        else:
            flag.ok = True
            self.breaker.success()

    def _warn(self, op: str, exc: BaseException, outcome: str) -> None:
        now = time.monotonic()
        with self._log_lock:
            if now - self._last_log < self._log_interval:
                return
            self._last_log = now
        log.warning(
            "llmcache %s %s on %r failed (%s); %s, not logging again for %ds",
            self.what,
            op,
            self.target,
            exc,
            outcome,
            self._log_interval,
        )
