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
- **Slot-map probes** (:func:`read_slots`, :func:`aread_slots`): ``CLUSTER SLOTS`` asked of one
  node (not one under suspicion), and only the slots whose owner changed are patched in the
  map, as a MOVED does. redis-py's full re-read marks every connection of every node for
  reconnect (the async client) and disconnects the queried node's idle ones (the sync client):
  fine once a second, not every 50 ms while a failover is awaited.
- **Connect handshake**: no ``CLIENT SETINFO`` (``driver_info=None``) and no ``CLIENT
  MAINT_NOTIFICATIONS`` (``maint_notifications_config`` disabled). redis-py sends both on every
  connect; Redis < 7.2 (ElastiCache 7.0/7.1, Valkey 7.2 for the latter) knows neither, and
  during a scale-out (many reconnects) the error surfaced as a failed GET or SET. Up to three
  round trips less per connect, too.
- **One connection per attempt (sync)**. redis-py's sync command loop keeps the previous
  attempt's connection in a variable across MOVED/ASK/TRYAGAIN attempts and, when the next
  attempt fails before it has a connection of its own, releases that connection to its pool a
  second time and disconnects it, although another thread may hold it by then: two threads
  then share one connection and read each other's replies (a SET acknowledged by another
  command's ``OK`` while its own reply was an ASK: an acknowledged write lost; issue 15's
  scale-out). The usual trigger was an ASK to a node the map does not have yet (the empty
  master of a scale-out): ``'NoneType' object has no attribute 'redis_connection'``. Here
  (:meth:`SyncCluster._execute_command`) each attempt takes and releases its own connection,
  and an ASK target not in the map is added (:meth:`SyncCluster.get_node`), as the async client
  does. SlotNotCovered after a MOVED is raised at once (redis-py slept 0.25 s in the call).
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
import time
from collections.abc import Collection, Sequence
from typing import Any

import redis
import redis.asyncio.cluster
import redis.cluster
from redis._parsers import AsyncCommandsParser
from redis.asyncio.cluster import PipelineStrategy
from redis.cluster import get_node_name
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
from redis.maint_notifications import MaintNotificationsConfig
from redis.utils import str_if_bytes

from llmcache.backends.redis import budget as _budget

__all__ = [
    "CLUSTER_DOWN",
    "AsyncCluster",
    "ClusterDown",
    "SyncCluster",
    "aread_slots",
    "async_cluster",
    "read_slots",
    "slot_owners",
    "sync_cluster",
]

# redis-py's async cluster does not wait for a free connection: over its cap it raises a
# ConnectionError and resets the node's connections, failing calls in flight. So: no cap.
UNCAPPED = 2**31
#: Seconds a retried command needs at least: below that, the call's budget is spent anyway.
RETRY_MIN = 0.01
#: Seconds a slot-map probe waits for one node (then the next is asked), if the client has
#: no socket_timeout.
PROBE_TIMEOUT = 0.25


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
    #: Closed by :meth:`close` (a slot-map watch stops then).
    closed = False
    #: A slot-map watch runs for this client (see RedisClusterBackend).
    watching = False
    #: The slot map and the CLUSTER SLOTS reply last patched into it (:func:`read_slots`).
    applied_slots: tuple[Any, Any] | None = None

    def close(self) -> None:
        self.closed = True
        super().close()

    def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one command on ``target_node``, following MOVED and ASK redirections.

        Replaces redis-py's (see the module docstring): each attempt has its own connection,
        released once; a dropped connection or a timeout disconnects it, moves the node to the
        end of the startup nodes and re-reads the map (as redis-py does) before it is raised
        (the caller's ``execute_command`` retries a dropped connection within the budget);
        CLUSTERDOWN (:class:`ClusterDown`) and an uncovered slot are raised at once.
        """
        command = args[0]
        manager = self.nodes_manager
        ttl = int(self.RedisClusterRequestTTL)
        asking = False
        while ttl > 0:
            ttl -= 1
            node_client = self.get_redis_connection(target_node)
            connection = None
            try:
                connection = node_client.connection_pool.get_connection()
                if asking:
                    connection.send_command("ASKING")
                    node_client.parse_response(connection, "ASKING", **kwargs)
                    asking = False
                connection.send_command(*args, **kwargs)
                response = node_client.parse_response(connection, command, **kwargs)
                kwargs.pop("keys", None)
                if command in self.cluster_response_callbacks:
                    response = self.cluster_response_callbacks[command](response, **kwargs)
                return response
            except (RedisConnectionError, RedisTimeoutError):
                if connection is not None:
                    connection.disconnect()
                pool = node_client.connection_pool
                with pool._lock:
                    pool.update_active_connections_for_reconnect()
                    pool.disconnect_free_connections()
                manager.move_node_to_end_of_cached_nodes(target_node.name)
                manager.initialize(last_failed_node_name=target_node.name)
                raise
            except MovedError as exc:
                manager.move_slot(exc)
                slot = self.determine_slot(*args)
                target_node = manager.get_node_from_slot(slot)  # type: ignore[arg-type]
            except AskError as exc:
                target_node = self.get_node(node_name=get_node_name(exc.host, exc.port))
                asking = True
            except TryAgainError:  # multi-key command during a migration: briefly
                if ttl < self.RedisClusterRequestTTL / 2:
                    time.sleep(0.05)
            except ResponseError:
                raise
            except Exception:
                if connection is not None:
                    connection.disconnect()  # its state is unknown: never reused as is
                raise
            finally:
                if connection is not None:
                    node_client.connection_pool.release(connection)
        raise ClusterError("TTL exhausted.")

    def get_node(
        self, host: str | None = None, port: int | None = None, node_name: str | None = None
    ) -> Any:
        """The node of that address; one asked for by name (the ASK path: ``host:port`` of the
        ASK reply) and not in the map yet is added as a primary (no slots), instead of ``None``
        (redis-py then failed the command)."""
        node = super().get_node(host, port, node_name)  # type: ignore[no-untyped-call]
        if node is None and node_name and host is None and port is None:
            address, _, number = node_name.rpartition(":")
            if address and number.isdigit():
                manager = self.nodes_manager
                with manager._lock:
                    node = manager.nodes_cache.get(node_name)
                    if node is None:
                        node = redis.cluster.ClusterNode(
                            address, int(number), redis.cluster.PRIMARY
                        )  # type: ignore[no-untyped-call]
                        manager.nodes_cache[node.name] = node
        return node

    def get_redis_connection(self, node: Any) -> Any:
        client = super().get_redis_connection(node)
        if type(client) is redis.Redis:
            client.__class__ = _NodeRedis  # same object, one method more: see _NodeRedis
        return client


def sync_cluster(nodes: Sequence[tuple[str, int]], **kwargs: Any) -> SyncCluster:
    """The sync client of :class:`~llmcache.backends.redis.RedisClusterBackend`."""
    startup = [redis.cluster.ClusterNode(h, p) for h, p in nodes]  # type: ignore[no-untyped-call]
    _no_handshake_extras(kwargs)
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
    closed = False
    watching = False
    applied_slots: tuple[Any, Any] | None = None

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


def async_cluster(nodes: Sequence[tuple[str, int]], **kwargs: Any) -> AsyncCluster:
    """The async client of :class:`~llmcache.backends.redis.RedisClusterBackend`."""
    startup = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in nodes]
    kwargs["max_connections"] = UNCAPPED
    _no_handshake_extras(kwargs)
    return AsyncCluster(
        startup_nodes=startup, require_full_coverage=False, reinitialize_steps=0, **kwargs
    )


def _no_handshake_extras(kwargs: dict[str, Any]) -> None:
    """No CLIENT SETINFO, no CLIENT MAINT_NOTIFICATIONS on connect (see the module docstring)."""
    kwargs.setdefault("driver_info", None)
    kwargs.setdefault("maint_notifications_config", MaintNotificationsConfig(enabled=False))


# -- slot-map probes: CLUSTER SLOTS of one node, patched in slot by slot ---------------------------
def slot_owners(client: Any) -> set[str]:
    """The nodes that own at least one slot in ``client``'s map (names ``host:port``)."""
    entries = list(client.nodes_manager.slots_cache.values())  # a copy: other threads patch it
    seen: set[int] = set()
    owners: set[str] = set()
    for nodes in entries:
        if id(nodes) not in seen:  # slot ranges share one list
            seen.add(id(nodes))
            if nodes:
                owners.add(nodes[0].name)
    return owners


def _probe_order(manager: Any, avoid: Collection[str]) -> list[Any]:
    """The nodes to ask for the map: none of ``avoid``, replicas first (they carry no load)."""
    nodes = [n for n in list(manager.nodes_cache.values()) if n.name not in avoid]
    nodes.sort(key=lambda n: n.server_type == redis.cluster.PRIMARY)
    return nodes


def _patch(client: Any, reply: Any, via: str, avoid: Collection[str], new_node: Any) -> bool:
    """Give every slot of a ``CLUSTER SLOTS`` reply the owner it names, where the map differs
    (as a MOVED does for one slot); a node of ``avoid`` left without slots is no longer a
    primary. True if the map changed. A reply equal to the last one applied to this same map
    changes nothing (MOVED patches since moved slots the way the cluster says; a full re-read
    makes a new map): the 16,384 slots are not walked again."""
    manager = client.nodes_manager
    applied = client.applied_slots
    if applied is not None and applied[0] is manager.slots_cache and applied[1] == reply:
        return False
    client.applied_slots = (manager.slots_cache, reply)
    changed = False
    owners: dict[str, Any] = {}
    for entry in reply:
        start, end, primary = int(entry[0]), int(entry[1]), entry[2]
        host = str_if_bytes(primary[0]) or via
        host, port = manager.remap_host_port(host, int(primary[1]))
        name = get_node_name(host, port)
        owner = owners.get(name) or manager.nodes_cache.get(name)
        patched: list[Any] | None = None
        for slot in range(start, end + 1):
            current = manager.slots_cache.get(slot)
            if current and current[0].name == name:
                continue
            if owner is None:
                owner = new_node(host, port)
            if patched is None:
                owner.server_type = redis.cluster.PRIMARY
                patched = [owner]
            manager.slots_cache[slot] = patched
            changed = True
        if owner is not None:
            owners[name] = owner
    if changed:
        for name in avoid:
            node = manager.nodes_cache.get(name)
            if node is not None and name not in owners:
                node.server_type = redis.cluster.REPLICA
        default = manager.default_node
        if owners and (default is None or default.name not in owners):
            manager.default_node = next(iter(owners.values()))
    return changed


def read_slots(client: SyncCluster, avoid: Collection[str]) -> bool | None:
    """Ask one node (not of ``avoid``) for the slot map and patch the slots whose owner changed.

    True if the map changed, False if not, None if no node answered. Never raises.
    """
    manager = client.nodes_manager

    def new_node(host: str, port: int) -> Any:
        node = redis.cluster.ClusterNode(host, port, redis.cluster.PRIMARY)  # type: ignore[no-untyped-call]
        manager.nodes_cache[node.name] = node
        return node

    for node in _probe_order(manager, avoid):
        try:
            reply = client.get_redis_connection(node).execute_command("CLUSTER SLOTS")
        except Exception:  # the next node, then None
            continue
        try:
            with manager._lock:
                return _patch(client, reply, node.host, avoid, new_node)
        except (IndexError, KeyError, TypeError, ValueError):  # an odd reply: no change
            return False
    return None


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
