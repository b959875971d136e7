"""Fault state per cluster node: a hung shard stops costing, the healthy shards keep hitting.

One :class:`~llmcache._breaker.CircuitBreaker` per node address (``host:port``), looked up for
each keyed command from the node that owns the key's slot *now* (the driver's slot map): when a
failover promotes a replica, its slots resolve to the new address and its closed breaker, so
nothing stays blocked. A node that timed out ``failures`` times in a row is skipped for
``cooldown`` seconds (a :class:`~llmcache.errors.BackendUnavailable` at once, no wait), then one
caller probes it. The facade's global breaker then sees faults and successes alternate and stays
closed for the healthy shards.

Faults open a breaker only if they span :data:`NODE_FAULT_SPAN` seconds at least (the first and
the last of the run): a node that stalls for a moment (a topology change, a burst) times out a
batch of concurrent calls at once and is not skipped for it, while a hung node's calls keep
failing and open it one timeout later.

A timeout counts as a node fault only if the node gave no answer at all since the call started:
a node that answered another call meanwhile is not hung, the call was cut by its own side (an
event loop running late, a thread starved of the GIL). So a burst of budget cuts on a loaded
client never opens a healthy node's breaker, while a hung node (no answer to anyone) opens it
after ``failures`` calls as before. A refused or dropped connection always counts.

While a node is faulty (:attr:`NodeBreaker.faulty`) and still owns slots in the client's map,
:class:`~llmcache.backends.redis.RedisClusterBackend` re-reads the map every
:func:`watch_interval` (fast at first, then slower, bounded), so a replica promoted in its place
is used within a few tens of ms of the promotion.

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

from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache._breaker import CircuitBreaker
from llmcache.errors import BackendUnavailable, PartialOutage

__all__ = [
    "NODE_COOLDOWN",
    "NODE_FAILURES",
    "NODE_FAULT_SPAN",
    "REFRESH_INTERVAL",
    "WATCH_FAST",
    "WATCH_FOR",
    "NodeBreaker",
    "NodeBreakers",
    "NodeUnavailable",
    "watch_interval",
]

NODE_FAILURES = 3  # timeouts in a row that open a node's breaker...
NODE_FAULT_SPAN = 0.2  # ...if the first and the last of them are this many seconds apart
NODE_COOLDOWN = 5.0  # seconds a node stays skipped before one caller probes it
REFRESH_INTERVAL = 1.0  # seconds between full slot-map re-reads while a node is skipped
#: The slot map is re-read every WATCH_FAST[1] seconds for the first WATCH_FAST[0] seconds of a
#: node's faults (a failover promotes its replica in ~1-2 s here, ~10-30 s on ElastiCache),
#: then every WATCH_SLOW seconds, for at most WATCH_FOR seconds; then (while its keys are
#: skipped) at most every REFRESH_INTERVAL.
WATCH_FAST = (5.0, 0.02)
WATCH_SLOW = 0.25
WATCH_FOR = 60.0


def watch_interval(faulty_for: float) -> float | None:
    """Seconds to the next slot-map read while a node faulty for ``faulty_for`` seconds still
    owns slots in the map; ``None`` once the watch is over (:data:`WATCH_FOR`)."""
    if faulty_for < WATCH_FAST[0]:
        return WATCH_FAST[1]
    return WATCH_SLOW if faulty_for < WATCH_FOR else None


class NodeUnavailable(PartialOutage):
    """One node of a cluster timed out, is unreachable or is skipped; the others may answer.

    A cluster-wide breaker should count it but not open on it: a burst of these from one hung
    node says nothing about the other shards (their keys keep hitting).
    """

    def __init__(self, message: str, node: str) -> None:
        super().__init__(message)
        self.node = node


class NodeBreaker(CircuitBreaker):
    """A :class:`CircuitBreaker` that can also let go of a probe that ended without an answer,
    and knows when its node last answered and since when it has been failing."""

    def __init__(self, failures: int = NODE_FAILURES, cooldown: float = NODE_COOLDOWN) -> None:
        super().__init__(failures, cooldown)
        self.last_answer = 0.0  # monotonic time of the node's last answer (any reply)
        self.faulty_since = 0.0  # monotonic time of the first fault of the current run

    @property
    def faulty(self) -> bool:
        """The node's last outcome was a fault (a run of faults, open or not yet)."""
        return self._consecutive > 0

    def success(self) -> None:
        self.last_answer = time.monotonic()
        super().success()

    def failure(self) -> None:
        if not self._consecutive:
            self.faulty_since = time.monotonic()
        super().failure()

    def fault(self, span: float = NODE_FAULT_SPAN) -> None:
        """A call's fault: as :meth:`failure`, but the breaker opens only once the run of
        faults spans ``span`` seconds (a burst of simultaneous timeouts is one moment)."""
        now = time.monotonic()
        opens = self._consecutive + 1 >= self.failures
        if opens and self._consecutive and now - self.faulty_since < span:
            with self._lock:  # held just below the threshold: a later fault opens it
                self._consecutive = max(self._consecutive, self.failures - 1)
                self._probing = False
            return
        self.failure()

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
        span: float = NODE_FAULT_SPAN,
    ) -> None:
        self.failures = failures
        self.span = span
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

    def faulty(self) -> dict[str, float]:
        """The nodes whose last outcome was a fault, each with the time its faults began."""
        return {name: b.faulty_since for name, b in list(self._breakers.items()) if b.faulty}

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
        breaker); cancellation is neither, and so is a timeout while the node answered other
        calls since this one started (the call was cut by a late event loop or a starved
        thread, not by the node: see the module docstring).
        """
        breaker = self.check(node)
        started = time.monotonic()
        try:
            yield breaker
        except NodeUnavailable:
            breaker.fault(self.span)
            raise
        except BackendUnavailable as exc:
            if _timed_out(exc) and breaker.last_answer > started:
                breaker.release()  # the node answers: not its fault
            else:
                breaker.fault(self.span)
            raise NodeUnavailable(str(exc), node) from exc
        except Exception:
            breaker.success()
            raise
        except BaseException:
            breaker.release()
            raise
        else:
            breaker.success()


def _timed_out(exc: BaseException) -> bool:
    """The driver error behind ``exc`` is a timeout (not a refused or dropped connection)."""
    cause = exc.__cause__
    return isinstance(cause, RedisTimeoutError | TimeoutError)
