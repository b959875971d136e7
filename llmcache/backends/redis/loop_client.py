"""One ``redis.asyncio`` client per live event loop: :class:`LoopBoundClient`.

Each loop's client is created on first use in that loop, connected (a cluster: its slots
learnt) once before concurrent callers use it, and closed when that loop ends
(``asyncio.run``) or on ``aclose``.

Example::

    import redis.asyncio
    from llmcache.backends.redis.budget import AsyncBudget
    from llmcache.backends.redis.loop_client import LoopBoundClient
    from llmcache.backends.redis.pool_async import AsyncPool

    bound = LoopBoundClient(lambda: redis.asyncio.Redis.from_pool(AsyncPool(max_connections=10)))
    async with AsyncBudget(0.25):       # checkout + connect + command: 250 ms in all
        client = await bound.client()   # this loop's client, created on first use in this loop
        await client.get("k")
    await bound.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any

__all__ = ["LoopBoundClient"]


class _LoopClient:
    """One event loop's client, and what closes it with its loop."""

    __slots__ = ("client", "guard", "init_lock", "ready")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.ready = False
        self.init_lock = asyncio.Lock()
        self.guard: AsyncGenerator[None, None] | None = None


class LoopBoundClient:
    """One ``redis.asyncio`` client per live event loop, created on first use in each loop.

    A redis.asyncio client belongs to the loop that opened its connections, so each loop gets its
    own (several threads, each running ``asyncio.run``, use the backend at once without closing
    each other's connections). ``asyncio.run`` and ``asyncio.Runner`` close a loop's async
    generators before the loop: a guard generator registered per client closes the client then,
    while the loop still runs. A loop closed some other way is let go the next time a client is
    made. The map is weak: it never keeps a loop alive.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    async def client(self) -> Any:
        """The running loop's client, connected (a cluster: its slots learnt) before use."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            entry = self._new(loop)
        if not entry.ready:
            # Connect (a cluster: learn its slots) once, before concurrent callers use it:
            # redis-py's async cluster, first used by many tasks at once, drops connections
            # under some of them ("Connection closed by server").
            async with entry.init_lock:
                if not entry.ready:
                    await entry.client.initialize()
                    entry.ready = True
        return entry.client

    def _new(self, loop: asyncio.AbstractEventLoop) -> _LoopClient:
        with self._lock:
            for old in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[old]  # its loop is gone: nothing left to close it with
            entry = _LoopClient(self._factory())
            self._clients[loop] = entry
        entry.guard = guard = self._close_with_loop(loop, entry)
        with contextlib.suppress(StopIteration):  # run to the yield: registers with the loop
            guard.asend(None).send(None)
        return entry

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, entry: _LoopClient
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self._pop(loop, entry):
                await entry.client.aclose()

    def _pop(self, loop: asyncio.AbstractEventLoop, entry: _LoopClient | None = None) -> bool:
        with self._lock:
            if self._clients.get(loop) is not entry and entry is not None:
                return False
            return self._clients.pop(loop, None) is not None

    @staticmethod
    def _release_guard(entry: _LoopClient) -> None:
        guard, entry.guard = entry.guard, None
        if guard is not None:  # its client is no longer current: it finishes without awaiting
            with contextlib.suppress(StopIteration, RuntimeError):
                guard.aclose().send(None)

    def drop(self) -> None:
        """Let go of every loop's client; each is closed in its loop if that loop still runs."""
        with self._lock:
            entries = list(self._clients.items())
            self._clients.clear()
        for loop, entry in entries:
            self._release_guard(entry)
            if loop.is_running() and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    asyncio.run_coroutine_threadsafe(entry.client.aclose(), loop)

    async def aclose(self) -> None:
        """Close the running loop's client now, and let go of the others (as :meth:`drop`)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(loop, None)
        if entry is not None:
            self._release_guard(entry)
            await entry.client.aclose()
        self.drop()
