"""Connection pools of the Redis backends, and one async client per event loop (re-exports).

This module owns no code: it re-exports what :mod:`.pool_sync` (:class:`SyncPool`),
:mod:`.pool_async` (:class:`AsyncPool`, :data:`OPENING`) and :mod:`.loop_client`
(:class:`LoopBoundClient`) define, under the names it has always offered.

See those modules for the rules each keeps (each call within its time budget, :mod:`.budget`).
"""

from __future__ import annotations

from llmcache.backends.redis.loop_client import LoopBoundClient
from llmcache.backends.redis.pool_async import GROW_FREELY as GROW_FREELY
from llmcache.backends.redis.pool_async import OPENING, AsyncPool
from llmcache.backends.redis.pool_sync import SyncPool

__all__ = ["OPENING", "AsyncPool", "LoopBoundClient", "SyncPool"]
