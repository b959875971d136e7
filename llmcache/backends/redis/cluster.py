"""RedisClusterBackend: a Redis / Valkey cluster (ElastiCache with cluster mode enabled).

Give it the configuration endpoint (or any seed nodes): ``redis+cluster://host:port[,host:port]``.
Keys spread over slots; pipelines are grouped per node by the driver and ``clear`` scans every
primary. Only client creation differs from :class:`~llmcache.backends.redis.RedisBackend`.

Example::

    from llmcache.backends.redis import RedisClusterBackend, RedisOptions

    store = RedisClusterBackend(RedisOptions(url="rediss+cluster://clustercfg.example.com:6379"))
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.retry import Retry

from llmcache.backends.redis.backend import RedisBackend

__all__ = ["RedisClusterBackend"]

# redis-py's async cluster does not wait for a free connection: over its cap it raises a
# ConnectionError and resets the node's connections, failing calls in flight. So: no cap.
_UNCAPPED = 2**31


class RedisClusterBackend(RedisBackend):
    """A Redis / Valkey cluster (ElastiCache with cluster mode enabled: the configuration endpoint).

    Keys spread over slots; pipelines are grouped per node by the driver and ``clear`` scans every
    primary. Only client creation differs from :class:`RedisBackend`.
    """

    _cluster = True

    def _create_sync_client(self) -> Any:
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in self.url.nodes]  # type: ignore[no-untyped-call]
        retry = self._retry(Retry)
        return redis.cluster.RedisCluster(
            startup_nodes=nodes, retry=retry, require_full_coverage=False, **self._client_kwargs()
        )

    def _create_async_client(self) -> Any:
        nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in self.url.nodes]
        kwargs = {**self._client_kwargs(), "max_connections": _UNCAPPED}
        retry = self._retry(AsyncRetry)
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=nodes, retry=retry, require_full_coverage=False, **kwargs
        )
