"""Per-call time budgets of the Redis backends: one timeout per call, whatever the concurrency.

Failure policy: a call's added latency is at most one ``socket_timeout``, whatever the
concurrency. So each operation runs inside one **budget** (:class:`Budget` for the sync side,
:class:`AsyncBudget` for the async side) that covers everything the call waits for: a free pooled
connection, connecting (also bounded on its own by ``socket_connect_timeout``) and the command.
Once the budget is spent the call fails at once (a Redis ``TimeoutError``, which the backend maps
to :class:`~llmcache.errors.BackendUnavailable`) instead of queueing for another timeout. The pools
that honour the budget (:class:`~.pool.SyncPool`, :class:`~.pool.AsyncPool`) find it in
:data:`current`.

An async budget measures the store, not the event loop's backlog: when its timer fires late
because the loop was busy (a burst of tasks doing CPU work before their first await, other
threads holding the GIL), the call gets one more ``socket_timeout`` from then instead of failing
a healthy store's answer that is already in the socket. With a store that is really hung the
timer fires on time and the call fails at its budget. :class:`BudgetConnection` and
:class:`BudgetSSLConnection` tell the budget how long connecting took; the driver-level timeouts
of async connections (:func:`backstop`) are only a backstop.

Example::

    import redis.asyncio
    from llmcache.backends.redis.budget import AsyncBudget
    from llmcache.backends.redis.pool import AsyncPool

    client = redis.asyncio.Redis.from_pool(AsyncPool(max_connections=10))
    async with AsyncBudget(0.25):       # checkout + connect + command: 250 ms in all
        await client.get("k")
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from types import TracebackType
from typing import TYPE_CHECKING

import redis.asyncio
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from llmcache.backends.redis.pool_async import AsyncPool

__all__ = [
    "AsyncBudget",
    "Budget",
    "BudgetConnection",
    "BudgetSSLConnection",
    "CallReadConnection",
    "CallReadSSLConnection",
    "backstop",
    "current",
    "spent",
]

#: A budget timer that fires this much later than due means the event loop was blocked.
LOOP_LAG = 0.05
#: Driver-level timeouts of async connections (:class:`~.pool.AsyncPool`): a budget's backstop.
BACKSTOP_FACTOR, BACKSTOP_MIN = 4.0, 1.0

#: The budget of the call running in this context (``None`` outside one), seen by the pools.
current: contextvars.ContextVar[Budget | AsyncBudget | None] = contextvars.ContextVar(
    "llmcache_redis_budget", default=None
)


def spent(seconds: float, connecting: bool = False) -> RedisTimeoutError:
    """The error of a call whose budget of ``seconds`` ran out (while connecting, if so)."""
    what = "Timeout connecting to server: " if connecting else ""
    return RedisTimeoutError(f"{what}no answer within the call's budget ({seconds:g} s)")


def backstop(socket_timeout: float, connect_timeout: float) -> float:
    """The driver-level timeout of async connections whose calls run in an :class:`AsyncBudget`."""
    return max(BACKSTOP_MIN, BACKSTOP_FACTOR * (socket_timeout + connect_timeout))


class Budget:
    """One sync call's time budget (checkout + connect + command), seen by :class:`~.pool.SyncPool`.

    A context manager; nested budgets (an operation made of several commands) share the outer one.
    """

    __slots__ = ("_token", "due", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.due = 0.0
        self._token: contextvars.Token[Budget | AsyncBudget | None] | None = None

    def remaining(self) -> float:
        return self.due - time.monotonic()

    def __enter__(self) -> Budget:
        if current.get() is None:
            self.due = time.monotonic() + self.seconds
            self._token = current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            current.reset(self._token)
            self._token = None


class AsyncBudget:
    """One async call's time budget: cancels the call when spent (see the module docstring).

    Raises a Redis ``TimeoutError`` when the budget cut the call. Nested budgets share the outer.
    """

    __slots__ = (
        "_allowance",
        "_handle",
        "_lag_granted",
        "_loop",
        "_spent",
        "_start",
        "_timeout",
        "_token",
        "connect",
        "connecting",
        "due",
        "limit",
        "pool",
        "seconds",
    )

    def __init__(self, seconds: float, limit: float | None = None, connect: float = 0.0) -> None:
        self.seconds = seconds
        self.connect = connect  # more time for a call that has to open a connection
        self.connecting = False  # set by AsyncPool while the call opens a connection
        self._allowance = 0.0
        self.limit = limit if limit is not None else BACKSTOP_FACTOR * seconds
        self.due = 0.0
        self._timeout: asyncio.Timeout | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._token: contextvars.Token[Budget | AsyncBudget | None] | None = None
        self._lag_granted = False
        # Fired or exited: nothing may schedule it again (asyncio refuses to reschedule an
        # expiring or expired timeout, and would say so in an event-loop callback).
        self._spent = False
        #: The pool this call took (or waits for) a connection from (set by the pool itself).
        self.pool: AsyncPool | None = None
        self._start = 0.0

    async def __aenter__(self) -> AsyncBudget:
        if current.get() is not None:
            return self
        self._loop = loop = asyncio.get_running_loop()
        self._timeout = asyncio.timeout(None)
        await self._timeout.__aenter__()
        self._start = loop.time()
        self.due = self._start + self.seconds
        self._handle = loop.call_at(self.due, self._fire)
        self._token = current.set(self)
        return self

    def renew(self, since: float) -> None:
        """Move the deadline to ``seconds`` after ``since`` if later (never past ``limit``)."""
        due = min(since + self.seconds, self._start + self.limit)
        if self._handle is not None and due > self.due and not self._spent:
            self._handle.cancel()
            self.due = due
            self._handle = self._loop.call_at(due, self._fire)

    def connected(self, took: float) -> None:
        """The connect step took ``took`` s: of the connect allowance, only that much is kept
        (a server that accepts and then never answers costs one socket_timeout, not more)."""
        if self._handle is None or self.connect or self._spent:  # no allowance granted / over
            return
        self.due -= self._allowance - min(took, self._allowance)
        self._allowance = 0.0
        self._handle.cancel()
        self._handle = self._loop.call_at(self.due, self._fire)

    def _fire(self) -> None:
        if self._spent:  # a timer scheduled before the budget fired or the call ended
            return
        now = self._loop.time()
        pool = self.pool
        if pool is not None and (pool.last_answer + self.seconds > now or pool.answered()):
            # The store keeps answering (this pool's other calls, connects): a healthy store
            # under a burst, slower than socket_timeout only because of the queue. Wait on.
            self.renew(max(pool.last_answer, now - self.seconds / 2))
            if self.due > now:
                return
        if now - self.due > LOOP_LAG and not self._lag_granted:
            # The loop was blocked past our deadline: what we waited for may well be in the
            # socket already. One more socket_timeout from now, once per call.
            self._lag_granted = True
            self.due = now + self.seconds
            self._handle = self._loop.call_at(self.due, self._fire)
            return
        assert self._timeout is not None
        self._spent = True
        self._timeout.reschedule(now)  # cancels the task; __aexit__ turns that into a timeout

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        current.reset(self._token)
        self._token = None
        assert self._handle is not None and self._timeout is not None
        self._spent = True
        self._handle.cancel()
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as timeout:
            raise spent(self.seconds, self.connecting) from timeout


class _BudgetedConnect:
    """Tells the call's :class:`AsyncBudget` how long the TCP (+TLS) connect took."""

    async def _connect(self) -> None:
        budget = current.get()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await super()._connect()  # type: ignore[misc]
        if isinstance(budget, AsyncBudget):
            budget.connected(loop.time() - start)


class BudgetConnection(_BudgetedConnect, redis.asyncio.Connection):
    """``redis.asyncio.Connection`` whose connect step is timed for the call's budget."""


class BudgetSSLConnection(_BudgetedConnect, redis.asyncio.SSLConnection):
    """``redis.asyncio.SSLConnection`` whose connect step is timed for the call's budget."""


class _ReadsInBudget:
    """``socket_timeout`` is ``None`` while a call's :class:`AsyncBudget` runs, the configured
    value outside one. The budget bounds the call and forgives a late event loop once; a driver
    read timeout counts the loop's backlog (a burst of tasks, a blocking step, threads holding
    the GIL) as the server's silence and fails calls to a healthy node ("Timeout reading from
    ..."). Work that belongs to no call (a cluster client's slot-map read, a probe) keeps it."""

    _own_socket_timeout: float | None = None

    @property
    def socket_timeout(self) -> float | None:
        return None if isinstance(current.get(), AsyncBudget) else self._own_socket_timeout

    @socket_timeout.setter
    def socket_timeout(self, value: float | None) -> None:
        self._own_socket_timeout = value


class CallReadConnection(_ReadsInBudget, redis.asyncio.Connection):
    """``redis.asyncio.Connection`` whose reads a call's budget bounds (the cluster client's)."""


class CallReadSSLConnection(_ReadsInBudget, redis.asyncio.SSLConnection):
    """``redis.asyncio.SSLConnection`` whose reads a call's budget bounds."""
