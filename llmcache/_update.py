"""Internal: the steps of one cache update, shared by ``LLMCache.update`` and ``aupdate``.

The two differ only in how they call the store (``get``/``set`` or ``aget``/``aset``); the
decision, the sample:k read-before-write, the payload, the failure policy and the counting are
here once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from llmcache.keys import KeyDecision

if TYPE_CHECKING:
    from llmcache.cache import LLMCache

__all__ = ["Update"]


class Update:
    """One update's steps; ``update`` and ``aupdate`` differ only in how they call the store."""

    __slots__ = ("cache", "decision", "key", "ok", "prior", "start", "ttl")

    def __init__(
        self, cache: LLMCache, decision: KeyDecision, key: str, ttl: float | None
    ) -> None:
        self.cache, self.decision, self.key, self.ttl = cache, decision, key, ttl
        self.start, self.ok = time.perf_counter(), True
        self.prior: bytes | None = None

    def read(self, get: Callable[[str], bytes | None]) -> None:
        """Read the stored answers first (sample:k appends to them); a fault skips the write."""
        with self.cache.guard.run("update") as flag:
            self.prior = get(self.key)
        self.ok = flag.ok

    async def aread(self, aget: Callable[[str], Awaitable[bytes | None]]) -> None:
        with self.cache.guard.run("update") as flag:
            self.prior = await aget(self.key)
        self.ok = flag.ok

    def payload(self, answer: Any) -> bytes | None:
        """The bytes to write, or None (read failed, k answers stored, unstorable answer)."""
        return self.cache._payload(self.decision, self.prior, answer) if self.ok else None

    def write(self, put: Callable[[str, bytes, float | None], None], payload: bytes) -> None:
        with self.cache.guard.run("update"):
            put(self.key, payload, self.ttl)
            self.wrote(payload)

    async def awrite(
        self, put: Callable[[str, bytes, float | None], Awaitable[None]], payload: bytes
    ) -> None:
        with self.cache.guard.run("update"):
            await put(self.key, payload, self.ttl)
            self.wrote(payload)

    def wrote(self, payload: bytes) -> None:
        stats = self.cache.stats
        stats.incr("writes")
        stats.incr("bytes_written", len(payload))
        stats.update_latency.add(time.perf_counter() - self.start)
