"""redis-py's cluster clients, made to keep the cache's promise while the cluster changes.

:class:`~llmcache.backends.redis.RedisClusterBackend` builds its clients with
(:func:`.cluster_sync.sync_cluster`, :func:`.cluster_async.async_cluster`). This module owns the
options and helpers both clients share (the CLUSTERDOWN error, the connect handshake, the
slot-map patching); :mod:`.cluster_sync` owns the sync client and its command loop,
:mod:`.cluster_async` the async client (ASK/MOVED handling, the shared slot-map re-read,
pipelines). What redis-py 8.1 does by itself, and what these subclasses and options change
(issue 15):

- **MOVED** (a slot moved: reshard, scale out/in, failover). redis-py re-reads the whole map on
  every 5th MOVED, and the async client then ``aclose()``\\ s every connection, failing the
  commands other tasks have in flight. ``reinitialize_steps=0``: a MOVED patches that one slot.
- **ASK** (a slot being migrated: the key is already on the target). The async client sends
  ``ASKING`` and then the command as two pooled commands, on two connections under concurrency;
  the target then answers MOVED (``ASKING`` is per connection) until "TTL exhausted". Here
  (:meth:`.cluster_async.AsyncCluster._execute_command`) ``ASKING`` and the command go in one
  write on one connection, as the sync client does.
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
- **Reads in a call (async)**: no driver read timeout while a call's budget runs
  (:class:`~.budget.CallReadConnection`): redis-py's counts the event loop's backlog as the
  node's silence (a loop blocked 0.4 s while a healthy node answered: every call in flight a
  "Timeout reading from"); the budget forgives a late loop once. Slot-map reads and probes,
  which belong to no call, keep ``socket_timeout``.
- **Connections (async)**: uncapped per node. redis-py's async cluster does not wait for a free
  connection: over its cap it raises and resets the node's connections.
- **Slot-map probes** (:func:`.cluster_sync.read_slots`,
  :func:`.cluster_async.aread_slots`): ``CLUSTER SLOTS`` asked of one
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
  (:meth:`.cluster_sync.SyncCluster._execute_command`) each attempt takes and releases its own
  connection, and an ASK target not in the map is added
  (:meth:`.cluster_sync.SyncCluster.get_node`), as the async client does. SlotNotCovered after a
  MOVED is raised at once (redis-py slept 0.25 s in the call).
- ``require_full_coverage=False``: a map with a hole (a shard down) is accepted, so the other
  shards keep serving. ``read_from_replicas`` stays off: a replica lags, and a write followed by a
  read from a replica would look lost. ``dynamic_startup_nodes`` stays on (the discovered nodes
  are asked on re-reads).

The subclasses override private methods of redis-py 8.1 (``_execute_command``, ``initialize``,
the commands parser); ``tests/backends/test_redis_cluster_driver.py`` checks them against real
clusters. What is lost: redis-py's OpenTelemetry command metrics of the overridden async path.

Example::

    from llmcache.backends.redis.cluster_async import async_cluster

    client = async_cluster([("10.0.0.5", 6379)], retry=retry, socket_timeout=0.25)
    await client.get("llmcache:default:k")
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import redis.cluster
from redis.cluster import get_node_name
from redis.exceptions import ClusterDownError, ResponseError, SlotNotCoveredError
from redis.maint_notifications import MaintNotificationsConfig
from redis.utils import str_if_bytes

__all__ = [
    "CLUSTER_DOWN",
    "PROBE_TIMEOUT",
    "RETRY_MIN",
    "UNCAPPED",
    "ClusterDown",
    "slot_owners",
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
