"""Fault state per cluster node: a hung shard stops costing, the healthy shards keep hitting.

One :class:`~llmcache._breaker.CircuitBreaker` per node address (``host:port``), looked up for
each keyed command from the node that owns the key's slot *now* (the driver's slot map): when a
failover promotes a replica, its slots resolve to the new address and its closed breaker, so
nothing stays blocked. A node that timed out ``failures`` times in a row is skipped for
``cooldown`` seconds (a :class:`~llmcache.errors.BackendUnavailable` at once, no wait), then one
caller probes it. The facade's global breaker then sees faults and successes alternate and stays
closed for the healthy shards.

Example::

    from llmcache.backends.redis.node_breaker import NodeBreakers

    nodes = NodeBreakers(failures=3, cooldown=5.0)
    with nodes.guard("10.0.0.7:6379"):     # raises BackendUnavailable while that node is open
        client.get(key)                    # BackendUnavailable inside counts as a node fault
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from llmcache._breaker import CircuitBreaker
from llmcache.errors import BackendUnavailable, PartialOutage

__all__ = [
    "NODE_COOLDOWN",
    "NODE_FAILURES",
    "REFRESH_INTERVAL",
    "NodeBreaker",
    "NodeBreakers",
    "NodeUnavailable",
]

NODE_FAILURES = 3  # timeouts in a row that open a node's breaker
NODE_COOLDOWN = 5.0  # seconds a node stays skipped before one caller probes it
REFRESH_INTERVAL = 1.0  # seconds between slot-map refreshes while a node is skipped


class NodeUnavailable(PartialOutage):
    """One node of a cluster timed out, is unreachable or is skipped; the others may answer.

    A cluster-wide breaker should count it but not open on it: a burst of these from one hung
    node says nothing about the other shards (their keys keep hitting).
    """

    def __init__(self, message: str, node: str) -> None:
        super().__init__(message)
        self.node = node


class NodeBreaker(CircuitBreaker):
    """A :class:`CircuitBreaker` that can also let go of a probe that ended without an answer."""

    def release(self) -> None:
        """The call was cancelled: neither a fault nor a success; another caller may probe."""
        if self._probing:
            with self._lock:
                self._probing = False

    def retry_in(self) -> float:
        """Seconds until the next probe (0 once the cooldown is over)."""
        return max(0.0, self._open_until - time.monotonic())


class NodeBreakers:
    """One breaker per node address, created on first use; thread-safe."""

    def __init__(
        self,
        failures: int = NODE_FAILURES,
        cooldown: float = NODE_COOLDOWN,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self.refresh_interval = refresh_interval
        self._breakers: dict[str, NodeBreaker] = {}
        self._lock = threading.Lock()
        self._last_refresh = -refresh_interval

    def __getitem__(self, node: str) -> NodeBreaker:
        breaker = self._breakers.get(node)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.setdefault(node, NodeBreaker(self.failures, self.cooldown))
        return breaker

    def state(self, node: str) -> str:
        """``closed``, ``open`` or ``half-open`` (a node never seen is closed)."""
        breaker = self._breakers.get(node)
        return "closed" if breaker is None else breaker.state

    def open_nodes(self) -> list[str]:
        """The nodes being skipped now (cooldown running)."""
        return [name for name, b in list(self._breakers.items()) if b.state == "open"]

    def refresh_due(self) -> bool:
        """True at most once per ``refresh_interval``: time to re-read the slot map."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_refresh < self.refresh_interval:
                return False
            self._last_refresh = now
            return True

    def check(self, node: str) -> NodeBreaker:
        """The node's breaker if it may be tried now; else BackendUnavailable, at once."""
        breaker = self[node]
        if not breaker.allow():
            raise NodeUnavailable(
                f"node {node} skipped: {breaker.failures} faults in a row, "
                f"retry in {breaker.retry_in():.1f}s",
                node,
            )
        return breaker

    @contextmanager
    def guard(self, node: str) -> Iterator[NodeBreaker]:
        """Run one command on ``node``: skipped while open; its outcome updates the breaker.

        :class:`BackendUnavailable` (timeout, refused, CLUSTERDOWN) is a node fault, raised on
        as :class:`NodeUnavailable`; any other error means the node answered (a success for its
        breaker); cancellation is neither.
        """
        breaker = self.check(node)
        try:
            yield breaker
        except NodeUnavailable:
            breaker.failure()
            raise
        except BackendUnavailable as exc:
            breaker.failure()
            raise NodeUnavailable(str(exc), node) from exc
        except Exception:
            breaker.success()
            raise
        except BaseException:
            breaker.release()
            raise
        else:
            breaker.success()
