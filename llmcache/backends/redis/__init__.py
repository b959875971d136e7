"""Redis / Valkey backend, built for ElastiCache as it is: one node, TLS + AUTH, or cluster mode.

Values are plain strings (``GET`` / ``SET ... PX``): no modules, no Lua, no hash tags. Keys are
``llmcache:<namespace>:<key>``; ``clear`` is ``SCAN MATCH llmcache:<namespace>:*`` + ``UNLINK`` in
batches (on every primary of a cluster), never ``FLUSHDB``. Timeouts are cache-sized (250 ms) and
retries few (1, with backoff), so a store that is down costs a call little and raises
:class:`~llmcache.errors.BackendUnavailable`, which the cache facade turns into a miss.

Sync calls use ``redis.Redis``, async calls ``redis.asyncio`` (native, no threads); each side has
its own connection pool, created on first use; the async side keeps one client per live event
loop. Every call runs in one time budget (pool wait + connect + command): see :mod:`.budget`.

Example::

    from llmcache.registry import create_backend

    store = create_backend("rediss://app:secret@my-cache.xxxxxx.use1.cache.amazonaws.com:6379/0",
                           namespace="chatbot", socket_timeout=0.2)
    store.set("k", b"v", ttl=3600)
    assert store.get("k") == b"v"
    store.close()

    # ElastiCache with cluster mode enabled: the configuration endpoint
    store = create_backend("rediss+cluster://clustercfg.my-cache.xxxxxx.use1.cache.amazonaws.com:6379")

    # or typed, without a URL registry
    from llmcache.backends.redis import RedisBackend, RedisOptions

    store = RedisBackend(RedisOptions(url="redis://localhost:6379/0", socket_timeout=0.2),
                         namespace="chatbot")

Modules: :mod:`.options` (``RedisOptions``; no driver import, so settings can read its declared
environment variables without ``redis`` installed), :mod:`.url` (URL parsing), :mod:`.errors`
(the one driver-error mapping point), :mod:`.budget` (per-call time budgets), :mod:`.pool`
(connection pools, loop-bound client), :mod:`.clients` (client creation), :mod:`.lists`
(chat-history lists), :mod:`.backend` (``RedisBackend``) and :mod:`.cluster`
(``RedisClusterBackend``). The backend classes import the driver on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmcache.backends._lazy import lazy_attributes
from llmcache.backends.redis.options import RedisOptions

if TYPE_CHECKING:
    from llmcache.backends.redis.backend import RedisBackend
    from llmcache.backends.redis.cluster import RedisClusterBackend

__all__ = ["RedisBackend", "RedisClusterBackend", "RedisOptions"]

_LAZY = {
    "RedisBackend": "llmcache.backends.redis.backend",
    "RedisClusterBackend": "llmcache.backends.redis.cluster",
}

__getattr__ = lazy_attributes(__name__, _LAZY, extra="redis")
