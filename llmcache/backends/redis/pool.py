"""Connection pools of the Redis backends, and one async client per event loop (re-exports).

This module owns no code: it re-exports what :mod:`.pool_sync` (:class:`SyncPool`),
:mod:`.pool_async` (:class:`AsyncPool`, :data:`OPENING`) and :mod:`.loop_client`
(:class:`LoopBoundClient`) define, under the names it has always offered.

Both pools keep each call within its time budget (:mod:`.budget`, found in
:data:`~.budget.current`): checkout, connect and command together cost at most one
``socket_timeout``.

- :class:`SyncPool` (sync side): waits for a free connection at most the call's remaining budget,
  and reads with ``min(socket_timeout, remaining)``.
- :class:`AsyncPool` (async side): serves waiters in arrival order (a FIFO semaphore), shares one
  TLS context between its connections, and tells a call's
  :class:`~.budget.AsyncBudget` whether the store keeps answering. Its driver-level timeouts are
  only a backstop: the budget cuts the call.
- :class:`LoopBoundClient` keeps one ``redis.asyncio`` client per live event loop, closed when
  that loop ends (``asyncio.run``) or on ``aclose``.

Example::

    import redis.asyncio
    from llmcache.backends.redis.budget import AsyncBudget
    from llmcache.backends.redis.pool import AsyncPool, LoopBoundClient

    bound = LoopBoundClient(lambda: redis.asyncio.Redis.from_pool(AsyncPool(max_connections=10)))
    async with AsyncBudget(0.25):       # checkout + connect + command: 250 ms in all
        client = await bound.client()   # this loop's client, created on first use in this loop
        await client.get("k")
    await bound.aclose()
"""

from __future__ import annotations

from llmcache.backends.redis.loop_client import LoopBoundClient
from llmcache.backends.redis.pool_async import GROW_FREELY as GROW_FREELY
from llmcache.backends.redis.pool_async import OPENING, AsyncPool
from llmcache.backends.redis.pool_sync import SyncPool

__all__ = ["OPENING", "AsyncPool", "LoopBoundClient", "SyncPool"]
