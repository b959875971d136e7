"""The sync cluster client of :class:`~llmcache.backends.redis.RedisClusterBackend`.

Owns :class:`SyncCluster` (redis-py's sync ``RedisCluster`` with its own command loop: one
connection per attempt, ASK targets added to the map, CLUSTERDOWN raised at once, retries only
of a dropped connection and only within the call's budget), the factory :func:`sync_cluster`
and the sync slot-map probe :func:`read_slots`. Why each change: :mod:`.cluster_driver`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

import redis
import redis.cluster
from redis.cluster import get_node_name
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.backends.redis import budget as _budget
from llmcache.backends.redis.cluster_driver import (
    RETRY_MIN,
    ClusterDown,
    _no_handshake_extras,
    _patch,
    _probe_order,
)

__all__ = ["SyncCluster", "read_slots", "sync_cluster"]


class _RetryWhileBudget(tuple[type[Exception], ...]):
    """``ERRORS_ALLOW_RETRY`` of the sync client: only these errors, and only while the call's
    budget (:data:`.budget.current`) has time left. redis-py tests ``type(e) in ERRORS``."""

    def __contains__(self, item: object) -> bool:
        if not super().__contains__(item):
            return False
        budget = _budget.current.get()
        return not isinstance(budget, _budget.Budget) or budget.remaining() > RETRY_MIN


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
