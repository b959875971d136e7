"""Internal: the steps of one cache update, shared by ``LLMCache.update`` and ``aupdate``.

The two differ only in how they call the store (``get``/``set`` or ``aget``/``aset``); the
decision, the sample:k read-before-write, the payload, the failure policy, the counting and the
report to the metrics (when on) are here once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from llmcache._guard import as_fault
from llmcache.keys import KeyDecision

if TYPE_CHECKING:
    from llmcache.cache import LLMCache

__all__ = ["Update"]


class Update:
    """One update's steps; ``update`` and ``aupdate`` differ only in how they call the store."""

    __slots__ = ("cache", "decision", "key", "namespace", "ok", "prior", "start", "ttl")

    def __init__(
        self,
        cache: LLMCache,
        decision: KeyDecision,
        key: str,
        ttl: float | None,
        namespace: str | None = None,
    ) -> None:
        self.cache, self.decision, self.key, self.ttl = cache, decision, key, ttl
        self.namespace = namespace
        self.start, self.ok = time.perf_counter(), True
        self.prior: bytes | None = None

    def read(self, get: Callable[[str], bytes | None]) -> None:
        """Read the stored answers first (sample:k appends to them); a fault skips the write."""
        try:
            self.prior = get(self.key)
        except BaseException as exc:  # the caller's own cancellation is re-raised by as_fault
            self.failed(as_fault(exc))
        else:
            self.cache.guard.success()

    async def aread(self, aget: Callable[[str], Awaitable[bytes | None]]) -> None:
        try:
            self.prior = await aget(self.key)
        except BaseException as exc:
            self.failed(as_fault(exc))
        else:
            self.cache.guard.success()

    def payload(self, answer: Any) -> bytes | None:
        """The bytes to write, or None (read failed, k answers stored, unstorable answer)."""
        if not self.ok:
            return None
        payload = self.cache._payload(self.decision, self.prior, answer)
        if payload is None and (observer := self.cache._observer) is not None:
            observer.event(
                self.cache,
                "update",
                "not_stored",
                namespace=self.namespace,
                decision=self.decision,
            )
        return payload

    def write(self, put: Callable[[str, bytes, float | None], None], payload: bytes) -> None:
        try:
            put(self.key, payload, self.ttl)
        except BaseException as exc:
            self.failed(as_fault(exc))
        else:
            self.wrote(payload)

    async def awrite(
        self, put: Callable[[str, bytes, float | None], Awaitable[None]], payload: bytes
    ) -> None:
        try:
            await put(self.key, payload, self.ttl)
        except BaseException as exc:
            self.failed(as_fault(exc))
        else:
            self.wrote(payload)

    def failed(self, exc: Exception) -> None:
        """A store fault: reported, then the failure policy (which may raise) decides."""
        self.ok = False
        if (observer := self.cache._observer) is not None:
            seconds = time.perf_counter() - self.start
            observer.event(
                self.cache,
                "update",
                "error",
                seconds,
                namespace=self.namespace,
                exc=exc,
                decision=self.decision,
            )
        self.cache.guard.fault("update", exc)

    def wrote(self, payload: bytes) -> None:
        self.cache.guard.success()
        seconds = time.perf_counter() - self.start
        stats = self.cache.stats
        stats.incr("writes")
        stats.incr("bytes_written", len(payload))
        stats.update_latency.add(seconds)
        if (observer := self.cache._observer) is not None:
            observer.event(
                self.cache,
                "update",
                "written",
                seconds,
                nbytes=len(payload),
                namespace=self.namespace,
                decision=self.decision,
            )
