"""redis-py's cluster clients, made to keep the cache's promise while the cluster changes.

:class:`~llmcache.backends.redis.RedisClusterBackend` builds its clients here
(:func:`sync_cluster`, :func:`async_cluster`). What redis-py 8.1 does by itself, and what these
subclasses and options change (issue 15):

- **MOVED** (a slot moved: reshard, scale out/in, failover). redis-py re-reads the whole map on
  every 5th MOVED, and the async client then ``aclose()``\\ s every connection, failing the
  commands other tasks have in flight. ``reinitialize_steps=0``: a MOVED patches that one slot.
- **ASK** (a slot being migrated: the key is already on the target). The async client sends
  ``ASKING`` and then the command as two pooled commands, on two connections under concurrency;
  the target then answers MOVED (``ASKING`` is per connection) until "TTL exhausted". Here
  (:meth:`AsyncCluster._execute_command`) ``ASKING`` and the command go in one write on one
  connection, as the sync client does.
- **CLUSTERDOWN** / uncovered slot. redis-py sleeps 0.25 s, re-reads the map (async: closes
  every connection first) and, by default, retries. Here the error is returned at once, never
  retried: the backend turns it into a miss for that call and re-reads the map in the
  background, at most once a second.
- **Retries**: redis-py retries a ``ConnectionError``, ``TimeoutError``, ``ClusterDownError``
  and ``SlotNotCoveredError`` (``retry.get_retries()`` times). Only a dropped connection (fast:
  a restarted or failed-over node) is retried here, once by default (the ``retries`` option),
  and the sync client retries only while the call's budget (:mod:`.budget`) lasts; the async
  calls run in an :class:`~.budget.AsyncBudget` that cancels them anyway. A timeout is never
  retried: a hung node costs one timeout, not two. ``cluster_error_retry_attempts`` is not
  passed: redis-py ignores it when a ``retry`` object is given (and has deprecated it).
- **Map re-reads (async)**: one shared task, shielded from the callers' budgets. redis-py runs
  it in the caller's task and, if it fails or is *cancelled* (a budget running out), closes
  every connection of every node. It also asks the default node for ``COMMAND`` (the whole
  command table) on every re-read; here only on the first.
- **Pipelines (async, ``get_many``/``set_many``/``clear``)**: on a dropped connection, a timeout
  or CLUSTERDOWN redis-py closes every connection of the client, sleeps 0.25 s and resends.
  Here the error is raised and the map re-read before the next command (MOVED/ASK replies are
  still resent one by one). ``aclose`` closes every connection even while a re-read is pending
  (redis-py closed nothing then, and leaked them). The sync pipeline is redis-py's.
- **Connections (async)**: uncapped per node. redis-py's async cluster does not wait for a free
  connection: over its cap it raises and resets the node's connections.
- ``require_full_coverage=False``: a map with a hole (a shard down) is accepted, so the other
  shards keep serving. ``read_from_replicas`` stays off: a replica lags, and a write followed by a
  read from a replica would look lost. ``dynamic_startup_nodes`` stays on (the discovered nodes
  are asked on re-reads).

The subclasses override private methods of redis-py 8.1 (``_execute_command``, ``initialize``,
the commands parser); ``tests/backends/test_redis_cluster_driver.py`` checks them against real
clusters. What is lost: redis-py's OpenTelemetry command metrics of the overridden async path.

Example::

    from llmcache.backends.redis.cluster_driver import async_cluster

    client = async_cluster([("10.0.0.5", 6379)], retry=retry, socket_timeout=0.25)
    await client.get("llmcache:default:k")
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio.cluster
import redis.cluster
from redis._parsers import AsyncCommandsParser
from redis.asyncio.cluster import PipelineStrategy
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.backends.redis import budget as _budget

__all__ = ["CLUSTER_DOWN", "AsyncCluster", "ClusterDown", "SyncCluster", "async_cluster"]

# redis-py's async cluster does not wait for a free connection: over its cap it raises a
# ConnectionError and resets the node's connections, failing calls in flight. So: no cap.
UNCAPPED = 2**31
#: Seconds a retried command needs at least: below that, the call's budget is spent anyway.
RETRY_MIN = 0.01


class ClusterDown(ResponseError):
    """CLUSTERDOWN from a node, raised as is: not a ``ClusterDownError``, which redis-py's sync
    client answers by sleeping 0.25 s and re-reading the map inside the call."""


#: What a call that met a down or uncovered slot raised (the backend treats them alike).
CLUSTER_DOWN = (ClusterDown, ClusterDownError, SlotNotCoveredError)


class _RetryWhileBudget(tuple[type[Exception], ...]):
    """``ERRORS_ALLOW_RETRY`` of the sync client: only these errors, and only while the call's
    budget (:data:`.budget.current`) has time left. redis-py tests ``type(e) in ERRORS``."""

    def __contains__(self, item: object) -> bool:
        if not super().__contains__(item):
            return False
        budget = _budget.current.get()
        return not isinstance(budget, _budget.Budget) or budget.remaining() > RETRY_MIN


# -- sync ------------------------------------------------------------------------------------------
class _NodeRedis(redis.Redis):
    """A node's client in the sync cluster client: CLUSTERDOWN leaves as :class:`ClusterDown`."""

    def parse_response(self, connection: Any, command_name: Any, **options: Any) -> Any:
        try:
            return super().parse_response(connection, command_name, **options)  # type: ignore[no-untyped-call]
        except ClusterDownError as exc:
            raise ClusterDown(*exc.args) from None


class SyncCluster(redis.cluster.RedisCluster):
    """redis-py's sync cluster client: retries a dropped connection only, within the call's budget,
    and returns CLUSTERDOWN at once (see the module docstring)."""

    ERRORS_ALLOW_RETRY = _RetryWhileBudget((RedisConnectionError,))  # type: ignore[assignment]

    def get_redis_connection(self, node: Any) -> Any:
        client = super().get_redis_connection(node)
        if type(client) is redis.Redis:
            client.__class__ = _NodeRedis  # same object, one method more: see _NodeRedis
        return client


def sync_cluster(nodes: Sequence[tuple[str, int]], **kwargs: Any) -> SyncCluster:
    """The sync client of :class:`~llmcache.backends.redis.RedisClusterBackend`."""
    startup = [redis.cluster.ClusterNode(h, p) for h, p in nodes]  # type: ignore[no-untyped-call]
    return SyncCluster(
        startup_nodes=startup, require_full_coverage=False, reinitialize_steps=0, **kwargs
    )


# -- async -----------------------------------------------------------------------------------------
class AsyncCluster(redis.asyncio.cluster.RedisCluster):
    """redis-py's async cluster client: ASK on one connection, CLUSTERDOWN at once, MOVED patches
    one slot, map re-reads shared and never cancelled by a call (see the module docstring)."""

    ERRORS_ALLOW_RETRY = (RedisConnectionError,)  # type: ignore[assignment]
    #: A node to ask last when re-reading the slot map (the one whose breaker last tripped):
    #: after a timeout the driver re-reads the map on the *next* command, whichever task runs
    #: it, and without this hint it may ask the hung node first.
    avoid_node: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands_parser = _Parser(self)
        self._reading: asyncio.Task[None] | None = None  # the shared map re-read

    # -- the slot map: one shared re-read ---------------------------------------------------------
    async def initialize(
        self,
        additional_startup_nodes_info: list[tuple[str, int]] | None = None,
        last_failed_node_name: str | None = None,
    ) -> Any:
        """Read the slot map if needed: one task for every caller, which a caller's budget (or
        any cancellation) does not cancel; it closes the connections only if the very first
        read fails (as redis-py does), never those of a client in use."""
        if not self._initialize:
            return self
        task = self._reading
        if task is None or task.done():
            avoid = last_failed_node_name or self.avoid_node
            # An empty context: the read belongs to no call (and to no call's budget).
            task = asyncio.get_running_loop().create_task(
                self._read_map(additional_startup_nodes_info, avoid),
                context=contextvars.Context(),
            )
            task.add_done_callback(_retrieve)
            self._reading = task
        await asyncio.shield(task)
        return self

    async def _read_map(self, additional: list[tuple[str, int]] | None, avoid: str | None) -> None:
        first = not self.commands_parser.commands
        try:
            await self.nodes_manager.initialize(
                additional_startup_nodes_info=additional, last_failed_node_name=avoid
            )
            if first:
                await self.commands_parser.initialize(self.nodes_manager.default_node)
        except BaseException:
            if first:
                await self.nodes_manager.aclose()
                await self.nodes_manager.aclose("startup_nodes")
            raise
        self._initialize = False

    async def aclose(self) -> None:
        """Close every connection. redis-py closes nothing while a map re-read is pending (after
        a dropped connection or a timeout, until the next command), leaking the connections."""
        await super().aclose()
        await self.nodes_manager.aclose()
        await self.nodes_manager.aclose("startup_nodes")

    # -- one command on one node: MOVED, ASK, CLUSTERDOWN ---------------------------------------
    async def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one command on ``target_node``, following MOVED and ASK redirections.

        Replaces redis-py's: ASKING and the command share one connection; CLUSTERDOWN and an
        uncovered slot are raised at once (no close, no sleep); MOVED patches the slot map;
        a dropped connection or a timeout marks the map for a re-read and is raised (the
        caller's ``execute_command`` retries a dropped connection).
        """
        manager = self.nodes_manager
        ttl = self.RedisClusterRequestTTL
        asking = False
        while ttl > 0:
            ttl -= 1
            try:
                if asking:
                    return await _asking(target_node, *args, **kwargs)
                return await target_node.execute_command(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # As redis-py: the node's connections are reset, the node is asked last on the
                # next map read, which the next command (of any task) starts.
                target_node.update_active_connections_for_reconnect()
                await target_node.disconnect_free_connections()
                manager.move_node_to_end_of_cached_nodes(target_node.name)
                exc.last_failed_node_name = target_node.name  # type: ignore[union-attr]
                self._initialize = True
                raise
            except MovedError as exc:
                await manager.move_slot(exc)
                target_node = manager.get_node_from_slot(await self._determine_slot(*args))
                asking = False
            except AskError as exc:
                target_node = self._ask_target(exc)
                asking = True
            except TryAgainError:  # multi-key command during a migration: briefly
                if ttl < self.RedisClusterRequestTTL / 2:
                    await asyncio.sleep(0.05)
        raise ClusterError("TTL exhausted.")

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        """redis-py's pipeline, without its close-everything-and-sleep on a node fault."""
        pipe = super().pipeline(transaction, shard_hint)
        if not transaction:
            pipe._execution_strategy = _PipelineStrategy(pipe)
        return pipe

    def _ask_target(self, exc: AskError) -> Any:
        """The node an ASK points to (a node not in the map yet is added, not given slots)."""
        manager = self.nodes_manager
        node = manager.get_node(host=exc.host, port=exc.port)
        if node is None:
            node = redis.asyncio.cluster.ClusterNode(
                exc.host, exc.port, "primary", **manager.connection_kwargs
            )
            manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node


async def _asking(node: Any, *args: Any, **kwargs: Any) -> Any:
    """``ASKING`` and the command in one write on one connection of ``node``; the command's
    answer (both replies are read, so the connection stays in step)."""
    connection = node.acquire_connection()
    try:
        await node.disconnect_if_needed(connection)
        await connection.send_packed_command(connection.pack_commands([("ASKING",), args]))
        asking_error: ResponseError | None = None
        try:
            await node.parse_response(connection, "ASKING")
        except ResponseError as exc:
            asking_error = exc
        response = await node.parse_response(connection, args[0], **kwargs)
        if asking_error is not None:
            raise asking_error
        return response
    finally:
        try:
            await node.disconnect_if_needed(connection)
        finally:
            node.release(connection)


class _PipelineStrategy(PipelineStrategy):
    """Sends a pipeline once. redis-py, on a dropped connection, a timeout or CLUSTERDOWN,
    closes every connection of the client (failing the other tasks' commands in flight),
    sleeps 0.25 s and sends it again. Here the error is raised (the call's budget bounds the
    call anyway) and the slot map is re-read before the next command. MOVED and ASK replies
    are still re-sent one by one (through :meth:`AsyncCluster._execute_command`)."""

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        if not self._command_queue:
            return []
        client = self._pipe.cluster_client
        try:
            if client._initialize:
                await client.initialize()
            return await self._execute(
                client,
                self._command_queue,
                raise_on_error=raise_on_error,
                allow_redirections=allow_redirections,
            )
        except (RedisConnectionError, RedisTimeoutError):
            client._initialize = True
            raise
        finally:
            await self.reset()  # type: ignore[no-untyped-call]


def _retrieve(task: asyncio.Task[None]) -> None:
    """A map read whose callers all left (cancelled): its error is not "never retrieved"."""
    if not task.cancelled():
        task.exception()


class _Parser(AsyncCommandsParser):
    """Learns the command table (``COMMAND``) from a primary that answers.

    redis-py asks the default node, the first primary of ``CLUSTER SLOTS`` (the owner of slot 0):
    with that master hung, every initialisation timed out and closed every connection, so a new
    event loop's client never got going. Here the node to avoid is skipped, and a primary that
    fails is replaced by the next one (and becomes the default node, which keyless commands use).
    """

    def __init__(self, cluster: AsyncCluster) -> None:
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


def async_cluster(nodes: Sequence[tuple[str, int]], **kwargs: Any) -> AsyncCluster:
    """The async client of :class:`~llmcache.backends.redis.RedisClusterBackend`."""
    startup = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in nodes]
    kwargs["max_connections"] = UNCAPPED
    return AsyncCluster(
        startup_nodes=startup, require_full_coverage=False, reinitialize_steps=0, **kwargs
    )
