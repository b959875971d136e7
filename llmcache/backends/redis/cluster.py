"""RedisClusterBackend: a Redis / Valkey cluster (ElastiCache with cluster mode enabled).

Give it the configuration endpoint (or any seed nodes): ``redis+cluster://host:port[,host:port]``.
Keys spread over slots; pipelines are grouped per node by the driver and ``clear`` scans every
primary. Client creation differs from :class:`~llmcache.backends.redis.RedisBackend`, and each
keyed command (``get``/``set``/``delete``/``add`` and their async twins) goes through the
breaker of the node that owns its slot (:mod:`.node_breaker`): a hung master costs one timeout
per call for a few calls, then its keys are misses at once (no wait) while the other masters
keep answering, until a probe after the cooldown finds it back.

The driver is configured so one call costs at most one timeout:

- only a dropped connection (``ConnectionError``: a restarted or failed-over node, fast) is
  retried, after the driver re-reads the slot map; a timeout, CLUSTERDOWN or an uncovered slot
  is not (redis-py retries all four by default, two timeouts per call on a hung master);
- ``reinitialize_steps=0``: a MOVED patches that slot instead of re-reading the whole map every
  5th MOVED (the async client closes every connection then, failing commands in flight);
- a slot-map re-read never asks a skipped node first, and while a node is skipped the map is
  re-read in the background once a second, so a replica promoted meanwhile is used at once.

Example::

    from llmcache.backends.redis import RedisClusterBackend, RedisOptions

    store = RedisClusterBackend(RedisOptions(url="rediss+cluster://clustercfg.example.com:6379"))
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import redis.asyncio.cluster
import redis.cluster
from redis._parsers import AsyncCommandsParser
from redis.asyncio.retry import Retry as AsyncRetry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from llmcache.backends.redis.backend import RedisBackend
from llmcache.backends.redis.node_breaker import NodeBreakers
from llmcache.errors import BackendUnavailable

__all__ = ["RedisClusterBackend"]

# redis-py's async cluster does not wait for a free connection: over its cap it raises a
# ConnectionError and resets the node's connections, failing calls in flight. So: no cap.
_UNCAPPED = 2**31


# redis-py retries ConnectionError, TimeoutError, ClusterDownError and SlotNotCoveredError
# (``type(e) in ERRORS_ALLOW_RETRY``) up to ``retry.get_retries()`` times: a hung node then costs
# two timeouts. Only a dropped connection is worth another try, and it fails fast.
_RETRY_ONLY = (RedisConnectionError,)


class _SyncCluster(redis.cluster.RedisCluster):
    ERRORS_ALLOW_RETRY = _RETRY_ONLY  # type: ignore[assignment]


class _AsyncCluster(redis.asyncio.cluster.RedisCluster):
    ERRORS_ALLOW_RETRY = _RETRY_ONLY  # type: ignore[assignment]
    #: A node to ask last when re-reading the slot map (the one whose breaker last tripped):
    #: after a timeout the driver re-reads the map on the *next* command, whichever task runs
    #: it, and without this hint it may ask the hung node first (one more timeout, then every
    #: connection closed).
    avoid_node: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands_parser = _Parser(self)

    async def initialize(
        self,
        additional_startup_nodes_info: list[tuple[str, int]] | None = None,
        last_failed_node_name: str | None = None,
    ) -> Any:
        return await super().initialize(
            additional_startup_nodes_info, last_failed_node_name or self.avoid_node
        )


class _Parser(AsyncCommandsParser):
    """Learns the command table (``COMMAND``) from a primary that answers.

    redis-py asks the default node, the first primary of ``CLUSTER SLOTS`` (the owner of slot 0)
    on every (re-)initialisation: with that master hung, every initialisation timed out and
    closed every connection, so a new event loop's client never got going. Here the node to
    avoid is skipped, and a primary that fails is replaced by the next one (and becomes the
    default node, which keyless commands use).
    """

    def __init__(self, cluster: _AsyncCluster) -> None:
        super().__init__()
        self._cluster = cluster

    async def initialize(self, node: Any = None) -> None:
        manager = self._cluster.nodes_manager
        primaries = [n for n in manager.get_nodes_by_server_type("primary") if n is not node]
        candidates = [node, *primaries] if node is not None else primaries
        avoid = self._cluster.avoid_node
        candidates.sort(key=lambda n: n.name == avoid)  # stable: the avoided node goes last
        error: Exception | None = None
        for candidate in candidates:
            try:
                await super().initialize(candidate)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                error = exc
                continue
            if candidate is not node:
                manager.default_node = candidate
            return
        if error is not None:
            raise error
        await super().initialize(node)


class RedisClusterBackend(RedisBackend):
    """A Redis / Valkey cluster (ElastiCache with cluster mode enabled: the configuration endpoint).

    Keys spread over slots; pipelines are grouped per node by the driver and ``clear`` scans every
    primary. Keyed commands go through a breaker per node (:attr:`node_breakers`).
    """

    _cluster = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Fault state per node address; replace it to change thresholds (tests do).
        self.node_breakers = NodeBreakers()
        self._refreshes: set[Any] = set()  # background slot-map refreshes (tasks), kept alive

    def _create_sync_client(self) -> Any:
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in self.url.nodes]  # type: ignore[no-untyped-call]
        return _SyncCluster(
            startup_nodes=nodes,
            retry=self._retry(Retry),
            require_full_coverage=False,
            reinitialize_steps=0,
            **self._client_kwargs(),
        )

    def _create_async_client(self) -> Any:
        nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in self.url.nodes]
        kwargs = {**self._async_client_kwargs(), "max_connections": _UNCAPPED}
        client = _AsyncCluster(
            startup_nodes=nodes,
            retry=self._retry(AsyncRetry),
            require_full_coverage=False,
            reinitialize_steps=0,
            **kwargs,
        )
        # A new event loop's client: what the other loops learnt about hung nodes holds.
        client.avoid_node = next(iter(self.node_breakers.open_nodes()), None)
        return client

    # -- the node of a key, and its breaker ------------------------------------------------------
    @contextlib.contextmanager
    def _node(self, client: Any, key: str) -> Iterator[None]:
        """Run a command on ``key``'s node through that node's breaker (:mod:`.node_breaker`)."""
        try:
            node: str | None = client.nodes_manager.get_node_from_slot(
                client.keyslot(self._key(key))
            ).name
        except Exception:  # slot not covered (yet): the driver says what is wrong
            node = None
        if node is None:
            yield
            return
        try:
            with self.node_breakers.guard(node):
                yield
        except BackendUnavailable:
            self._avoid(client, node)
            raise

    def _avoid(self, client: Any, node: str) -> None:
        """``node`` failed or is skipped: ask it last when the slot map is re-read; while it is
        skipped, re-read the map (rarely, in the background) so that a replica promoted in its
        place is used as soon as the cluster says so."""
        if isinstance(client, _AsyncCluster):
            client.avoid_node = node
        if self.node_breakers.state(node) == "closed" or not self.node_breakers.refresh_due():
            return
        if isinstance(client, _AsyncCluster):
            try:
                task = asyncio.get_running_loop().create_task(_arefresh(client, node))
            except RuntimeError:  # no running loop: nothing to schedule on
                return
            self._refreshes.add(task)
            task.add_done_callback(self._refreshes.discard)
        else:
            threading.Thread(
                target=_refresh, args=(client, node), name="llmcache-cluster-refresh", daemon=True
            ).start()

    # -- keyed commands: the base's, inside the node's breaker ----------------------------------
    def get(self, key: str) -> bytes | None:
        with self._node(self._client(), key):
            return super().get(key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._node(self._client(), key):
            super().set(key, value, ttl)

    def delete(self, key: str) -> None:
        with self._node(self._client(), key):
            super().delete(key)

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self._node(self._client(), key):
            return super().add(key, value, ttl)

    async def aget(self, key: str) -> bytes | None:
        with self._node(await self._aclient(), key):
            return await super().aget(key)

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._node(await self._aclient(), key):
            await super().aset(key, value, ttl)

    async def adelete(self, key: str) -> None:
        with self._node(await self._aclient(), key):
            await super().adelete(key)

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self._node(await self._aclient(), key):
            return await super().aadd(key, value, ttl)


def _refresh(client: Any, node: str) -> None:
    # The failing node is asked last; the healthy node asked keeps its pooled connections.
    with contextlib.suppress(Exception):
        client.nodes_manager.initialize(
            last_failed_node_name=node, disconnect_startup_nodes_pools=False
        )


async def _arefresh(client: Any, node: str) -> None:
    with contextlib.suppress(Exception):
        await client.nodes_manager.initialize(last_failed_node_name=node)
