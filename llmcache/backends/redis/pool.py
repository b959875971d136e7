"""The async side's connections: a fair, TLS-friendly pool and a client bound to its event loop.

:class:`AsyncPool` serves waiters in arrival order and shares one TLS context between its
connections; :class:`LoopBoundClient` keeps one ``redis.asyncio`` client per running event loop
and closes it when that loop ends.

Example::

    import redis.asyncio
    from llmcache.backends.redis.pool import AsyncPool, LoopBoundClient

    bound = LoopBoundClient(lambda: redis.asyncio.Redis.from_pool(AsyncPool(max_connections=10)))
    client = await bound.client()       # created, and connected, on first use in this loop
    await bound.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import redis.asyncio

__all__ = ["AsyncPool", "LoopBoundClient"]


class AsyncPool(redis.asyncio.BlockingConnectionPool):
    """Shares one TLS context between the pool's connections.

    redis-py builds a context per connection, loading the system CA store each time: ~30 ms of
    event-loop CPU per new connection, so a burst of 100 concurrent first lookups timed out.
    """

    _tls_context: Any = None
    _fair: asyncio.Semaphore | None = None

    # redis-py's blocking pool wakes waiters through a Condition, in no particular order: at 64
    # concurrent lookups on 50 connections some waited past the pool timeout, which counted as
    # store faults and opened the breaker. A FIFO semaphore of max_connections in front of the
    # pool serves waiters in arrival order, and the pool itself then never has to wait.
    def _slots(self) -> asyncio.Semaphore:
        if self._fair is None:
            self._fair = asyncio.Semaphore(self.max_connections)
        return self._fair

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        slots = self._slots()
        await slots.acquire()
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except BaseException:
            slots.release()
            raise

    async def release(self, connection: Any) -> None:
        try:
            await super().release(connection)
        finally:
            self._slots().release()

    def make_connection(self) -> Any:
        conn = super().make_connection()  # type: ignore[no-untyped-call]
        if isinstance(conn, redis.asyncio.SSLConnection):
            if self._tls_context is None:
                self._tls_context = conn.ssl_context
            conn.ssl_context = self._tls_context
        return conn


class LoopBoundClient:
    """The async client of the running event loop, created on first use in each loop.

    A redis.asyncio client belongs to the loop that opened its connections. Used from another
    loop, the old client is let go (closed in its loop if that still runs) and a new one made.
    ``asyncio.run`` and ``asyncio.Runner`` close a loop's async generators before the loop: a
    guard generator registered per client closes the client then, while the loop still runs.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None
        self._ready = False
        self._init_lock = asyncio.Lock()

    async def client(self) -> Any:
        """The running loop's client, connected (a cluster: its slots learnt) before use."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self.drop()
            self._client, self._loop = self._factory(), loop
            self._ready, self._init_lock = False, asyncio.Lock()
            self._guard = guard = self._close_with_loop(self._client)
            with contextlib.suppress(StopIteration):  # run to the yield: registers with the loop
                guard.asend(None).send(None)
        client = self._client
        if not self._ready:
            # Connect (a cluster: learn its slots) once, before concurrent callers use it:
            # redis-py's async cluster, first used by many tasks at once, drops connections
            # under some of them ("Connection closed by server").
            async with self._init_lock:
                if not self._ready:
                    await client.initialize()
                    self._ready = True
        return client

    async def _close_with_loop(self, client: Any) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self._client is client:
                self._client = self._loop = self._guard = None
                await client.aclose()

    def _take(self) -> tuple[Any, asyncio.AbstractEventLoop | None]:
        client, loop, guard = self._client, self._loop, self._guard
        self._client = self._loop = self._guard = None
        if guard is not None:  # its client is no longer current: it finishes without awaiting
            with contextlib.suppress(StopIteration, RuntimeError):
                guard.aclose().send(None)
        return client, loop

    def drop(self) -> None:
        """Let go of the client; close it in its loop if that loop still runs."""
        client, loop = self._take()
        if client is not None and loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(client.aclose(), loop)

    async def aclose(self) -> None:
        """Close the client if it belongs to the running loop (else as :meth:`drop`)."""
        if self._loop is asyncio.get_running_loop():
            client, _ = self._take()
            await client.aclose()
        else:
            self.drop()
