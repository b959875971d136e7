"""The namespace generation that lets the Momento backend ``clear`` one namespace.

Momento cannot list or scan keys, and flushing the cache would clear every namespace in it. So
each entry key carries the namespace's generation (``llmcache:<ns>:g<gen>:<key>``) and ``clear``
moves the generation on with Momento's atomic ``Increment``: old entries become unreachable and
expire on their own TTL.

- The generation key lives 24 h (Momento's maximum) and each ``clear`` renews it.
- A new generation starts at the wall clock in microseconds (~1.7e15), written with
  ``SetIfNotExists`` so concurrent starters agree. If the key ever expires, the next start (or an
  ``Increment`` that restarts from 0, detected as a value below ``MIN_GENERATION``) re-bases on
  the clock, so a generation value is never reused while entries written under it may live.
- Each process caches the value for ``generation_refresh`` seconds: another process's ``clear``
  reaches it within that time; the process that cleared sees it at once.
- On an event loop, concurrent callers share one read (single flight): a burst against a
  stalled store waits for one read together, never for one read after another.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

from momento import CacheClient, CacheClientAsync
from momento.responses import CacheGet, CacheIncrement, CacheSet, CacheSetIfNotExists

from llmcache.backends.momento.options import MAX_TTL_SECONDS
from llmcache.backends.momento.sdk import MomentoError, raise_error

__all__ = ["GENERATION_TTL", "MIN_GENERATION", "Generation"]

#: The generation key outlives every entry (entries live at most 24 h).
GENERATION_TTL = timedelta(seconds=MAX_TTL_SECONDS)
#: Below this, Increment restarted from 0 on an expired key: re-base on the clock.
MIN_GENERATION = 10**12


def _clock() -> int:
    return time.time_ns() // 1000


class Generation:
    """One namespace's generation in one cache, cached locally for ``refresh`` seconds."""

    def __init__(self, cache_name: str, key: str, refresh: float) -> None:
        self.cache_name = cache_name
        self.key = key
        self.refresh = refresh
        self._cached: tuple[int, float] | None = None  # (value, monotonic time read)
        # The read in flight on each event loop (callers on that loop await it together).
        self._reads: dict[asyncio.AbstractEventLoop, asyncio.Task[int]] = {}
        self._reads_lock = threading.Lock()

    @property
    def value(self) -> int | None:
        """The last value seen, if any (for ``info``)."""
        return self._cached[0] if self._cached else None

    def fresh(self) -> int | None:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[1] < self.refresh:
            return cached[0]
        return None

    def remember(self, value: int) -> int:
        self._cached = (value, time.monotonic())
        return value

    def _parse(self, response: Any) -> int | None:
        if isinstance(response, CacheGet.Miss):
            return None
        if not isinstance(response, CacheGet.Hit):
            raise_error("get generation", self.cache_name, response)
        try:
            return int(response.value_bytes)
        except ValueError:
            raise MomentoError(
                f"namespace generation {self.key!r} in cache {self.cache_name!r} holds "
                f"{response.value_bytes[:40]!r}, not an integer",
                "BAD_GENERATION",
            ) from None

    def _started(self, response: Any, start: int) -> bool:
        if isinstance(response, CacheSetIfNotExists.Stored):
            return True
        if not isinstance(response, CacheSetIfNotExists.NotStored):
            raise_error("start generation", self.cache_name, response)
        return False

    def _bumped(self, response: Any) -> int | None:
        if not isinstance(response, CacheIncrement.Success):
            raise_error("clear", self.cache_name, response)
        value: int = response.value
        return value if value >= MIN_GENERATION else None

    def _check_set(self, response: Any) -> None:
        if not isinstance(response, CacheSet.Success):
            raise_error("clear", self.cache_name, response)

    # -- sync ---------------------------------------------------------------------------------
    def get(self, client: CacheClient) -> int:
        value = self.fresh()
        if value is not None:
            return value
        value = self._parse(client.get(self.cache_name, self.key))
        if value is None:
            start = _clock()
            response = client.set_if_not_exists(
                self.cache_name, self.key, str(start), GENERATION_TTL
            )
            if self._started(response, start):
                value = start
            else:  # another process started it first
                value = self._parse(client.get(self.cache_name, self.key)) or start
        return self.remember(value)

    def bump(self, client: CacheClient) -> int:
        value = self._bumped(client.increment(self.cache_name, self.key, 1, GENERATION_TTL))
        if value is None:
            value = _clock()
            self._check_set(client.set(self.cache_name, self.key, str(value), GENERATION_TTL))
        return self.remember(value)

    # -- async --------------------------------------------------------------------------------
    async def aget(self, client: CacheClientAsync) -> int:
        """The generation; concurrent callers on one loop share one read of the store.

        Each caller waits for the shared read under its own budget (the caller's timeout
        cancels its wait, not the read), so no caller waits for reads queued before its own.
        """
        value = self.fresh()
        if value is not None:
            return value
        loop = asyncio.get_running_loop()
        with self._reads_lock:
            task = self._reads.get(loop)
            if task is None:
                for other in [lp for lp in self._reads if lp.is_closed()]:
                    del self._reads[other]  # loops that went away
                task = self._reads[loop] = loop.create_task(self._aread(client))
                task.add_done_callback(self._read_done)
        return await asyncio.shield(task)

    def _read_done(self, task: asyncio.Task[int]) -> None:
        with self._reads_lock:
            for loop, current in list(self._reads.items()):
                if current is task:
                    del self._reads[loop]
        if not task.cancelled():
            task.exception()  # retrieved: waiters that gave up must not leave it unobserved

    async def _aread(self, client: CacheClientAsync) -> int:
        value = self._parse(await client.get(self.cache_name, self.key))
        if value is None:
            start = _clock()
            response = await client.set_if_not_exists(
                self.cache_name, self.key, str(start), GENERATION_TTL
            )
            if self._started(response, start):
                value = start
            else:
                value = self._parse(await client.get(self.cache_name, self.key)) or start
        return self.remember(value)

    async def abump(self, client: CacheClientAsync) -> int:
        response = await client.increment(self.cache_name, self.key, 1, GENERATION_TTL)
        value = self._bumped(response)
        if value is None:
            value = _clock()
            rebased = await client.set(self.cache_name, self.key, str(value), GENERATION_TTL)
            self._check_set(rebased)
        return self.remember(value)
