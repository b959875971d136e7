"""The async cluster client of :class:`~llmcache.backends.redis.RedisClusterBackend`.

Owns :class:`AsyncCluster` (redis-py's async ``RedisCluster``: ASKING and the command on one
connection, MOVED patching one slot, CLUSTERDOWN raised at once, one shared slot-map re-read
that no caller's budget cancels, pipelines sent once), its command-table parser, the factory
:func:`async_cluster` and the async slot-map probe :func:`aread_slots`. Why each change:
:mod:`.cluster_driver`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Collection, Sequence
from typing import Any

import redis.asyncio.cluster
import redis.cluster
from redis._parsers import AsyncCommandsParser
from redis.asyncio.cluster import PipelineStrategy
from redis.exceptions import (
    AskError,
    ClusterError,
    MovedError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.backends.redis.budget import CallReadConnection, CallReadSSLConnection
from llmcache.backends.redis.cluster_driver import (
    PROBE_TIMEOUT,
    UNCAPPED,
    _no_handshake_extras,
    _patch,
    _probe_order,
)

__all__ = ["AsyncCluster", "aread_slots", "async_cluster"]


class AsyncCluster(redis.asyncio.cluster.RedisCluster):
    """redis-py's async cluster client: ASK on one connection, CLUSTERDOWN at once, MOVED patches
    one slot, map re-reads shared and never cancelled by a call (see the module docstring)."""

    ERRORS_ALLOW_RETRY = (RedisConnectionError,)  # type: ignore[assignment]
    #: A node to ask last when re-reading the slot map (the one whose breaker last tripped):
    #: after a timeout the driver re-reads the map on the *next* command, whichever task runs
    #: it, and without this hint it may ask the hung node first.
    avoid_node: str | None = None
    closed = False
    watching = False
    applied_slots: tuple[Any, Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands_parser = _Parser(self)
        _reads_in_budget(self)
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
        self.closed = True
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


def _reads_in_budget(client: AsyncCluster) -> None:
    """Node connections whose reads in a call the call's budget bounds, not a driver read
    timeout (:class:`~.budget.CallReadConnection`); redis-py picks the class itself."""
    ssl = client.connection_kwargs.get("connection_class") is redis.asyncio.SSLConnection
    cls = CallReadSSLConnection if ssl else CallReadConnection
    manager = client.nodes_manager
    for kwargs in (client.connection_kwargs, manager.connection_kwargs):
        kwargs["connection_class"] = cls
    for node in [*manager.startup_nodes.values(), *manager.nodes_cache.values()]:
        node.connection_class = cls


def async_cluster(nodes: Sequence[tuple[str, int]], **kwargs: Any) -> AsyncCluster:
    """The async client of :class:`~llmcache.backends.redis.RedisClusterBackend`."""
    startup = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in nodes]
    kwargs["max_connections"] = UNCAPPED
    _no_handshake_extras(kwargs)
    return AsyncCluster(
        startup_nodes=startup, require_full_coverage=False, reinitialize_steps=0, **kwargs
    )


async def aread_slots(client: AsyncCluster, avoid: Collection[str]) -> bool | None:
    """:func:`read_slots` for the async client (run it in a task of the client's loop)."""
    manager = client.nodes_manager
    timeout = manager.connection_kwargs.get("socket_timeout") or PROBE_TIMEOUT

    def new_node(host: str, port: int) -> Any:
        node = redis.asyncio.cluster.ClusterNode(
            host, port, redis.cluster.PRIMARY, **manager.connection_kwargs
        )
        manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node

    for node in _probe_order(manager, avoid):
        try:
            async with asyncio.timeout(timeout):
                reply = await node.execute_command("CLUSTER SLOTS")
        except Exception:  # the next node, then None
            continue
        try:
            return _patch(client, reply, node.host, avoid, new_node)
        except (IndexError, KeyError, TypeError, ValueError):  # an odd reply: no change
            return False
    return None
