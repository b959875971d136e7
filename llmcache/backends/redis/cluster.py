"""RedisClusterBackend: a Redis / Valkey cluster (ElastiCache with cluster mode enabled).

Give it the configuration endpoint (or any seed nodes): ``redis+cluster://host:port[,host:port]``.
Keys spread over slots; pipelines are grouped per node by the driver and ``clear`` scans every
primary. Client creation differs from :class:`~llmcache.backends.redis.RedisBackend`, and each
keyed command (``get``/``set``/``delete``/``add`` and their async twins) goes through the
breaker of the node that owns its slot (:mod:`.node_breaker`): a hung master costs one timeout
per call for a few calls, then its keys are misses at once (no wait) while the other masters
keep answering, until a probe after the cooldown finds it back.

The driver (redis-py's cluster clients, :mod:`.cluster_driver`) is configured so that a slot
move, a migration or a failover costs no errors and one call costs at most one timeout:

- a MOVED patches that slot (no full re-read, no closed connections); an ASK sends ``ASKING``
  and the command on one connection; only a dropped connection is retried (within the call's
  budget), never a timeout, CLUSTERDOWN or an uncovered slot, and nothing sleeps;
- CLUSTERDOWN or an uncovered slot is a miss at once (:class:`SlotsUnavailable`, a partial
  outage: the cluster-wide breaker does not open on it, the node's breaker counts the node as
  answering) and the slot map is re-read in the background, at most once a second;
- when a node's breaker opens, or a connection to it is refused or dropped, one background
  **watch** per client re-reads the slot map from another node (``CLUSTER SLOTS``, changed
  slots patched in) every 20 ms for 5 s, then every 250 ms up to 60 s
  (:func:`.node_breaker.watch_interval`), until no faulty node owns a slot in the map or the
  node answers again: a replica promoted in a dead master's place is used within a few tens of
  ms of the promotion, and the breakers
  follow the new map (a slot's breaker is its owner's);
- a full slot-map re-read never asks a skipped node first, and while a node is skipped and no
  watch runs the map is re-read in the background at most once a second.

Example::

    from llmcache.backends.redis import RedisClusterBackend, RedisOptions

    store = RedisClusterBackend(RedisOptions(url="rediss+cluster://clustercfg.example.com:6379"))
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

from redis.asyncio.retry import Retry as AsyncRetry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from llmcache.backends.redis.backend import RedisBackend
from llmcache.backends.redis.cluster_async import AsyncCluster, aread_slots, async_cluster
from llmcache.backends.redis.cluster_driver import CLUSTER_DOWN, slot_owners
from llmcache.backends.redis.cluster_sync import read_slots, sync_cluster
from llmcache.backends.redis.node_breaker import NodeBreakers, watch_interval
from llmcache.errors import BackendError, BackendUnavailable, PartialOutage

__all__ = ["RedisClusterBackend", "SlotsUnavailable"]


class SlotsUnavailable(PartialOutage):
    """CLUSTERDOWN, or a slot no node serves (a failover or a reshard in progress, a shard lost
    with ``cluster-require-full-coverage``): this call's slot, not the whole cluster, fails."""


class RedisClusterBackend(RedisBackend):
    """A Redis / Valkey cluster (ElastiCache with cluster mode enabled: the configuration endpoint).

    Keys spread over slots; pipelines are grouped per node by the driver and ``clear`` scans every
    primary. Keyed commands go through a breaker per node (:attr:`node_breakers`). Namespace
    views share the owner's clients, node breakers and slot-map watches.
    """

    _cluster = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Shared with this backend's namespace views (never re-bound), as the clients are.
        self._breakers = _Shared(NodeBreakers())
        self._refreshes: set[Any] = set()  # background slot-map refreshes (tasks), kept alive
        self._watch_lock = threading.Lock()

    @property
    def node_breakers(self) -> NodeBreakers:
        """Fault state per node address; replace it to change thresholds (tests do). One for a
        backend and its namespace views: they use the same nodes through the same clients."""
        return self._breakers.value

    @node_breakers.setter
    def node_breakers(self, value: NodeBreakers) -> None:
        self._breakers.value = value

    def _create_sync_client(self) -> Any:
        return sync_cluster(self.url.nodes, retry=self._retry(Retry), **self._client_kwargs())

    def _create_async_client(self) -> Any:
        kwargs = self._async_client_kwargs()
        client = async_cluster(self.url.nodes, retry=self._retry(AsyncRetry), **kwargs)
        # A new event loop's client: what the other loops learnt about hung nodes holds.
        client.avoid_node = next(iter(self.node_breakers.open_nodes()), None)
        return client

    # -- the node of a key, and its breaker ------------------------------------------------------
    @contextlib.contextmanager
    def _node(self, client: Any, key: str) -> Iterator[None]:
        """Run a command on ``key``'s node through that node's breaker (:mod:`.node_breaker`).

        CLUSTERDOWN or an uncovered slot leaves as :class:`SlotsUnavailable` (the node answered:
        its breaker counts a success) and starts a background re-read of the slot map.
        """
        try:
            node: str | None = client.nodes_manager.get_node_from_slot(
                client.keyslot(self._key(key))
            ).name
        except Exception:  # slot not covered (yet): the driver says what is wrong
            node = None
        try:
            if node is None:
                yield
                return
            try:
                with self.node_breakers.guard(node):
                    yield
            except BackendUnavailable as exc:
                self._avoid(client, node, exc)
                raise
        except BackendError as exc:
            if isinstance(exc, PartialOutage) or not isinstance(exc.__cause__, CLUSTER_DOWN):
                raise
            if self.node_breakers.refresh_due():
                self._refresh(client, None)
            raise SlotsUnavailable(str(exc)) from exc.__cause__

    def _avoid(self, client: Any, node: str, exc: BaseException) -> None:
        """``node`` failed or is skipped: ask it last when the slot map is re-read; once its
        breaker is open (or it refused or dropped the connection), watch the slot map until its
        slots have a new owner (:meth:`_watch`); while it is skipped and no watch runs,
        re-read the whole map (at most once a second, in the background)."""
        if isinstance(client, AsyncCluster):
            client.avoid_node = node
        breakers = self.node_breakers
        closed = breakers.state(node) == "closed"
        if not closed or _dropped(exc):
            self._watch(client, node)
        if closed or client.watching or not breakers.refresh_due():
            return
        self._refresh(client, node)

    def _watch(self, client: Any, node: str) -> None:
        """Start the client's slot-map watch (one per client) unless it runs or is over."""
        if client.watching or client.closed:
            return
        breaker = self.node_breakers[node]
        if not breaker.faulty or watch_interval(time.monotonic() - breaker.faulty_since) is None:
            return
        with self._watch_lock:
            if client.watching:
                return
            client.watching = True
        if isinstance(client, AsyncCluster):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # pragma: no cover - async clients run in their loop
                client.watching = False
                return
            # An empty context: the watch belongs to no call (and to no call's budget).
            task = loop.create_task(self._awatch(client), context=contextvars.Context())
            self._refreshes.add(task)
            task.add_done_callback(self._refreshes.discard)
        else:
            threading.Thread(
                target=self._swatch, args=(client,), name="llmcache-cluster-watch", daemon=True
            ).start()

    def _suspects(self, client: Any) -> tuple[set[str], float | None]:
        """The faulty nodes, and the seconds to the next map read (None: the watch is over,
        no faulty node owns a slot in ``client``'s map or the watch ran its course)."""
        faulty = self.node_breakers.faulty()
        if client.closed or not faulty:
            return set(faulty), None
        owning = [since for name, since in faulty.items() if name in slot_owners(client)]
        if not owning:
            return set(faulty), None
        return set(faulty), watch_interval(time.monotonic() - min(owning))

    def _swatch(self, client: Any) -> None:
        try:
            while True:
                suspects, interval = self._suspects(client)
                if interval is None:
                    return
                read_slots(client, suspects)
                time.sleep(interval)
        finally:
            client.watching = False

    async def _awatch(self, client: Any) -> None:
        try:
            while True:
                suspects, interval = self._suspects(client)
                if interval is None:
                    return
                await aread_slots(client, suspects)
                await asyncio.sleep(interval)
        finally:
            client.watching = False

    def _refresh(self, client: Any, node: str | None) -> None:
        """Re-read ``client``'s slot map in the background, ``node`` (if any) asked last."""
        if isinstance(client, AsyncCluster):
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


class _Shared:
    """One value a backend and its namespace views see (re-binding it re-binds it for all)."""

    __slots__ = ("value",)

    def __init__(self, value: NodeBreakers) -> None:
        self.value = value


def _dropped(exc: BaseException) -> bool:
    """A refused or dropped connection is behind ``exc`` (a node down, not a slow one)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RedisConnectionError):
            return True
        seen = seen.__cause__
    return False


def _refresh(client: Any, node: str | None) -> None:
    # The failing node is asked last; the healthy node asked keeps its pooled connections.
    with contextlib.suppress(Exception):
        client.nodes_manager.initialize(
            last_failed_node_name=node, disconnect_startup_nodes_pools=False
        )


async def _arefresh(client: Any, node: str | None) -> None:
    with contextlib.suppress(Exception):
        await client.nodes_manager.initialize(last_failed_node_name=node)
