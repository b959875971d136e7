"""Connections of the Redis backends: per-call budgets, bounded pools, one client per event loop.

Failure policy: a call's added latency is at most one ``socket_timeout``, whatever the
concurrency. So each operation runs inside one **budget** (:class:`Budget` for the sync side,
:class:`AsyncBudget` for the async side) that covers everything the call waits for: a free pooled
connection, connecting (also bounded on its own by ``socket_connect_timeout``) and the command.
Once the budget is spent the call fails at once (a Redis ``TimeoutError``, which the backend maps
to :class:`~llmcache.errors.BackendUnavailable`) instead of queueing for another timeout.

- :class:`SyncPool` (sync side): waits for a free connection at most the call's remaining budget,
  and reads with ``min(socket_timeout, remaining)``.
- :class:`AsyncPool` (async side): serves waiters in arrival order (a FIFO semaphore), shares one
  TLS context between its connections. Its driver-level timeouts are only a backstop: the
  :class:`AsyncBudget` cuts the call. An async budget measures the store, not the event loop's
  backlog: when its timer fires late because the loop was busy (a burst of tasks doing CPU work
  before their first await, other threads holding the GIL), the call gets one more
  ``socket_timeout`` from then instead of failing a healthy store's answer that is already in the
  socket. With a store that is really hung the timer fires on time and the call fails at its
  budget.
- :class:`LoopBoundClient` keeps one ``redis.asyncio`` client per live event loop, closed when
  that loop ends (``asyncio.run``) or on ``aclose``.

Example::

    import redis.asyncio
    from llmcache.backends.redis.pool import AsyncBudget, AsyncPool, LoopBoundClient

    bound = LoopBoundClient(lambda: redis.asyncio.Redis.from_pool(AsyncPool(max_connections=10)))
    async with AsyncBudget(0.25):       # checkout + connect + command: 250 ms in all
        client = await bound.client()   # this loop's client, created on first use in this loop
        await client.get("k")
    await bound.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable
from queue import Empty
from types import TracebackType
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "AsyncBudget",
    "AsyncPool",
    "Budget",
    "BudgetConnection",
    "BudgetSSLConnection",
    "LoopBoundClient",
    "SyncPool",
]

#: A budget timer that fires this much later than due means the event loop was blocked.
LOOP_LAG = 0.05
#: Driver-level timeouts of async connections (:class:`AsyncPool`): a backstop for the budget.
BACKSTOP_FACTOR, BACKSTOP_MIN = 4.0, 1.0

_current: contextvars.ContextVar[Budget | AsyncBudget | None] = contextvars.ContextVar(
    "llmcache_redis_budget", default=None
)


def _spent(seconds: float, connecting: bool = False) -> RedisTimeoutError:
    what = "Timeout connecting to server: " if connecting else ""
    return RedisTimeoutError(f"{what}no answer within the call's budget ({seconds:g} s)")


def backstop(socket_timeout: float, connect_timeout: float) -> float:
    """The driver-level timeout of async connections whose calls run in an :class:`AsyncBudget`."""
    return max(BACKSTOP_MIN, BACKSTOP_FACTOR * (socket_timeout + connect_timeout))


class Budget:
    """One sync call's time budget (checkout + connect + command), seen by :class:`SyncPool`.

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
        if _current.get() is None:
            self.due = time.monotonic() + self.seconds
            self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
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
        #: The pool this call took (or waits for) a connection from (set by :class:`AsyncPool`).
        self.pool: AsyncPool | None = None
        self._start = 0.0

    async def __aenter__(self) -> AsyncBudget:
        if _current.get() is not None:
            return self
        self._loop = loop = asyncio.get_running_loop()
        self._timeout = asyncio.timeout(None)
        await self._timeout.__aenter__()
        self._start = loop.time()
        self.due = self._start + self.seconds
        self._handle = loop.call_at(self.due, self._fire)
        self._token = _current.set(self)
        return self

    def renew(self, since: float) -> None:
        """Move the deadline to ``seconds`` after ``since`` if later (never past ``limit``)."""
        due = min(since + self.seconds, self._start + self.limit)
        if self._handle is not None and due > self.due:
            self._handle.cancel()
            self.due = due
            self._handle = self._loop.call_at(due, self._fire)

    def connected(self, took: float) -> None:
        """The connect step took ``took`` s: of the connect allowance, only that much is kept
        (a server that accepts and then never answers costs one socket_timeout, not more)."""
        if self._handle is None or self.connect:  # no allowance was granted to this call
            return
        self.due -= self._allowance - min(took, self._allowance)
        self._allowance = 0.0
        self._handle.cancel()
        self._handle = self._loop.call_at(self.due, self._fire)

    def _fire(self) -> None:
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
        self._timeout.reschedule(now)  # cancels the task; __aexit__ turns that into a timeout

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        _current.reset(self._token)
        self._token = None
        assert self._handle is not None and self._timeout is not None
        self._handle.cancel()
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as timeout:
            raise _spent(self.seconds, self.connecting) from timeout


class SyncPool(redis.BlockingConnectionPool):
    """A blocking pool whose waits, connects and reads stay within the call's :class:`Budget`.

    Without a budget (``clear``, ``info``) it behaves as redis-py's: ``timeout`` to wait for a
    connection, then the connection's own timeouts.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._read_timeout: float = kwargs["socket_timeout"]
        self._connect_timeout: float = kwargs["socket_connect_timeout"]

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        budget = _current.get()
        if not isinstance(budget, Budget):
            connection = super().get_connection()  # type: ignore[no-untyped-call]
            self._set_timeouts(connection, self._read_timeout, self._connect_timeout)
            return connection
        self._checkpid()
        remaining = budget.remaining()
        if remaining <= 0:
            raise _spent(budget.seconds)
        try:
            connection = self.pool.get(block=True, timeout=remaining)
        except Empty:
            raise _spent(budget.seconds) from None
        if connection is None:
            connection = self.make_connection()  # type: ignore[no-untyped-call]
        try:
            remaining = budget.remaining()
            if remaining <= 0:
                raise _spent(budget.seconds)
            read = min(self._read_timeout, remaining)
            self._set_timeouts(connection, read, min(self._connect_timeout, remaining))
            connection.connect()  # a timeout here is redis-py's "Timeout connecting to server"
            # As redis-py: a pooled connection with unread data (or closed) is made again.
            try:
                if connection.can_read():
                    raise redis.ConnectionError("Connection has data")
            except (redis.ConnectionError, RedisTimeoutError, OSError):
                connection.disconnect()
                connection.connect()
                if connection.can_read():
                    raise redis.ConnectionError("Connection not ready") from None
            remaining = budget.remaining()
            if remaining <= 0:
                raise _spent(budget.seconds)
            connection.update_current_socket_timeout(min(read, remaining))
        except BaseException:
            self.release(connection)  # type: ignore[no-untyped-call]
            raise
        return connection

    @staticmethod
    def _set_timeouts(connection: Any, read: float, connect: float) -> None:
        connection.socket_timeout = read
        connection.socket_connect_timeout = connect
        if connection.is_connected:
            connection.update_current_socket_timeout(read)


class AsyncPool(redis.asyncio.BlockingConnectionPool):
    """Serves waiters in arrival order, within their :class:`AsyncBudget`; one TLS context.

    redis-py builds a TLS context per connection, loading the system CA store each time: ~30 ms
    of event-loop CPU per new connection, so a burst of 100 concurrent first lookups timed out.
    """

    _tls_context: Any = None
    _fair: asyncio.Semaphore | None = None
    #: When a command last came back answered (loop time): a queued call's budget runs from it.
    last_answer: float = float("-inf")

    # redis-py's blocking pool wakes waiters through a Condition, in no particular order: at 64
    # concurrent lookups on 50 connections some waited past the pool timeout. A FIFO semaphore
    # of max_connections in front of the pool serves waiters in arrival order, and the pool itself
    # then never has to wait. The wait is bounded by the call's budget (it cancels the call), or
    # by ``timeout`` outside a budget. The budget counts time without progress: while the store
    # keeps answering other calls, a queued call waits its turn (a healthy store under a burst
    # of hundreds of tasks is not a fault); once nothing has come back for socket_timeout, the
    # queued calls fail with the ones in flight (a hung store costs each call one timeout).
    def _slots(self) -> asyncio.Semaphore:
        if self._fair is None:
            self._fair = asyncio.Semaphore(self.max_connections)
        return self._fair

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        slots = self._slots()
        budget = _current.get()
        if isinstance(budget, AsyncBudget):
            budget.pool = self
            await slots.acquire()
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    await slots.acquire()
            except TimeoutError:
                raise RedisTimeoutError("no free connection in the pool") from None
        try:
            return await super().get_connection()  # type: ignore[no-untyped-call]
        except BaseException:
            slots.release()
            raise

    def answered(self) -> bool:
        """Whether answers wait, read but not yet handled, on connections in use: the store
        answered and the event loop has not got round to it (a busy loop, not a slow store)."""
        for connection in self._in_use_connections:
            reader = getattr(connection, "_reader", None)
            if reader is not None and getattr(reader, "_buffer", None):
                self.last_answer = asyncio.get_running_loop().time()
                return True
        return False

    async def ensure_connection(self, connection: Any) -> None:
        fresh = not connection.is_connected
        budget = _current.get()
        if fresh and isinstance(budget, AsyncBudget) and budget.connect:
            budget.renew(budget.due - budget.seconds + budget.connect)  # + socket_connect_timeout
            budget._allowance, budget.connect = budget.connect, 0.0  # once per call
        if isinstance(budget, AsyncBudget):
            budget.connecting = fresh
        await super().ensure_connection(connection)
        if isinstance(budget, AsyncBudget):
            budget.connecting = False
        if fresh:  # the server answered the handshake
            self.last_answer = asyncio.get_running_loop().time()

    async def release(self, connection: Any) -> None:
        if connection.is_connected:  # an error or a cut call disconnects it: not an answer
            self.last_answer = asyncio.get_running_loop().time()
        try:
            await super().release(connection)
        finally:
            self._slots().release()

    def make_connection(self) -> Any:
        conn = super().make_connection()  # type: ignore[no-untyped-call]
        if isinstance(conn, redis.asyncio.SSLConnection):
            if self._tls_context is None:
                self._tls_context = conn.ssl_context
            conn.ssl_context = self._tls_context
        return conn


class _BudgetedConnect:
    """Tells the call's :class:`AsyncBudget` how long the TCP (+TLS) connect took."""

    async def _connect(self) -> None:
        budget = _current.get()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await super()._connect()  # type: ignore[misc]
        if isinstance(budget, AsyncBudget):
            budget.connected(loop.time() - start)


class BudgetConnection(_BudgetedConnect, redis.asyncio.Connection):
    """``redis.asyncio.Connection`` whose connect step is timed for the call's budget."""


class BudgetSSLConnection(_BudgetedConnect, redis.asyncio.SSLConnection):
    """``redis.asyncio.SSLConnection`` whose connect step is timed for the call's budget."""


class _LoopClient:
    """One event loop's client, and what closes it with its loop."""

    __slots__ = ("client", "guard", "init_lock", "ready")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.ready = False
        self.init_lock = asyncio.Lock()
        self.guard: AsyncGenerator[None, None] | None = None


class LoopBoundClient:
    """One ``redis.asyncio`` client per live event loop, created on first use in each loop.

    A redis.asyncio client belongs to the loop that opened its connections, so each loop gets its
    own (several threads, each running ``asyncio.run``, use the backend at once without closing
    each other's connections). ``asyncio.run`` and ``asyncio.Runner`` close a loop's async
    generators before the loop: a guard generator registered per client closes the client then,
    while the loop still runs. A loop closed some other way is let go the next time a client is
    made. The map is weak: it never keeps a loop alive.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    async def client(self) -> Any:
        """The running loop's client, connected (a cluster: its slots learnt) before use."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            entry = self._new(loop)
        if not entry.ready:
            # Connect (a cluster: learn its slots) once, before concurrent callers use it:
            # redis-py's async cluster, first used by many tasks at once, drops connections
            # under some of them ("Connection closed by server").
            async with entry.init_lock:
                if not entry.ready:
                    await entry.client.initialize()
                    entry.ready = True
        return entry.client

    def _new(self, loop: asyncio.AbstractEventLoop) -> _LoopClient:
        with self._lock:
            for old in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[old]  # its loop is gone: nothing left to close it with
            entry = _LoopClient(self._factory())
            self._clients[loop] = entry
        entry.guard = guard = self._close_with_loop(loop, entry)
        with contextlib.suppress(StopIteration):  # run to the yield: registers with the loop
            guard.asend(None).send(None)
        return entry

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, entry: _LoopClient
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self._pop(loop, entry):
                await entry.client.aclose()

    def _pop(self, loop: asyncio.AbstractEventLoop, entry: _LoopClient | None = None) -> bool:
        with self._lock:
            if self._clients.get(loop) is not entry and entry is not None:
                return False
            return self._clients.pop(loop, None) is not None

    @staticmethod
    def _release_guard(entry: _LoopClient) -> None:
        guard, entry.guard = entry.guard, None
        if guard is not None:  # its client is no longer current: it finishes without awaiting
            with contextlib.suppress(StopIteration, RuntimeError):
                guard.aclose().send(None)

    def drop(self) -> None:
        """Let go of every loop's client; each is closed in its loop if that loop still runs."""
        with self._lock:
            entries = list(self._clients.items())
            self._clients.clear()
        for loop, entry in entries:
            self._release_guard(entry)
            if loop.is_running() and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    asyncio.run_coroutine_threadsafe(entry.client.aclose(), loop)

    async def aclose(self) -> None:
        """Close the running loop's client now, and let go of the others (as :meth:`drop`)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(loop, None)
        if entry is not None:
            self._release_guard(entry)
            await entry.client.aclose()
        self.drop()
