"""The async Redis connection pool: :class:`AsyncPool`, its capped opening and FIFO hand-off.

It keeps each call within its time budget (:class:`~.budget.AsyncBudget`, found in
:data:`~.budget.current`): checkout, connect and command together cost at most one
``socket_timeout``. It serves waiters in arrival order (a FIFO semaphore, then a line that gets
each connection given back, or the right to open one), opens at most :data:`OPENING` connections
at once, shares one TLS context between its connections, and tells a call's budget whether the
store keeps answering. Its driver-level timeouts are only a backstop: the budget cuts the call.

Example::

    import redis.asyncio
    from llmcache.backends.redis.budget import AsyncBudget
    from llmcache.backends.redis.pool_async import AsyncPool

    client = redis.asyncio.Redis.from_pool(AsyncPool(max_connections=10))
    async with AsyncBudget(0.25):       # checkout + connect + command: 250 ms in all
        await client.get("k")
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.backends.redis.budget import AsyncBudget, current

__all__ = ["OPENING", "AsyncPool"]

#: Connections an async pool opens at once; more calls wait in line for a connection (FIFO).
OPENING = 4
#: Connections an async pool opens OPENING at a time while calls wait; beyond, one at a time.
GROW_FREELY = 8


class AsyncPool(redis.asyncio.BlockingConnectionPool):
    """Serves waiters in arrival order, within their :class:`AsyncBudget`; one TLS context.

    redis-py builds a TLS context per connection, loading the system CA store each time: ~30 ms
    of event-loop CPU per new connection, so a burst of 100 concurrent first lookups timed out.

    At most :data:`OPENING` connections are being opened at once: a call that finds no idle
    connection while that many are opening waits in line (FIFO), and each connection a call
    gives back, or the right to open one, goes straight to the first call in line. A burst on
    a fresh pool then reuses its first connections instead of opening ``max_connections`` at
    once: each handshake costs ~0.3 ms of event-loop time that the burst's own calls wait
    for. Past :data:`GROW_FREELY` connections it opens one at a time while calls wait, so
    under sustained load it still reaches ``max_connections`` (see ``_may_open``).
    """

    _tls_context: Any = None
    _fair: asyncio.Semaphore | None = None
    _line: collections.deque[asyncio.Future[Any]] | None = None
    _opening = 0  # connections being opened now (at most OPENING)
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

    async def _slot(self) -> asyncio.Semaphore:
        """Wait for one of the max_connections slots (FIFO), within the call's budget."""
        slots = self._slots()
        budget = current.get()
        if isinstance(budget, AsyncBudget):
            budget.pool = self
            await slots.acquire()
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    await slots.acquire()
            except TimeoutError:
                raise RedisTimeoutError("no free connection in the pool") from None
        return slots

    # -- checkout: an idle connection, or the right to open one, handed out in arrival order ----
    def _take_idle(self) -> Any:
        """An idle connected connection (the most recently used), now in use; or None."""
        idle = self._available_connections
        for i in range(len(idle) - 1, -1, -1):
            if idle[i].is_connected:
                connection = idle.pop(i)
                self._in_use_connections.add(connection)
                return connection
        return None

    def _dispatch(self) -> None:
        """Hand idle connections, then the right to open one, to the calls in line (FIFO)."""
        line = self._line
        while line:
            waiter = line[0]
            if waiter.done():  # its call was cancelled (budget spent)
                line.popleft()
                continue
            connection = self._take_idle()
            if connection is None:
                if not self._may_open():
                    return
                self._opening += 1  # on the waiter's behalf: it opens one
            line.popleft()
            waiter.set_result(connection)

    def _give_back(self, connection: Any) -> None:
        """A connection in use comes back: to the first call in line, else to the idle list."""
        line = self._line
        if connection.is_connected and not self._in_maintenance:
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(connection)  # stays in use, now by that call
                    return
        self._in_use_connections.discard(connection)
        self._available_connections.append(connection)
        self._dispatch()

    def _may_open(self) -> bool:
        """Whether a call without an idle connection may open one now.

        Up to GROW_FREELY connections, OPENING at once; beyond, one at a time (the pool still
        reaches ``max_connections`` under sustained load, a connection per handshake time,
        while a burst is served by the connections it has). Always when nothing is in
        flight: no connection would come back to serve the line.
        """
        opening = self._opening
        if not opening and not self._in_use_connections:
            return True
        if len(self._in_use_connections) + len(self._available_connections) < GROW_FREELY:
            return opening < OPENING
        return not opening

    def _opened(self) -> None:
        """An open (successful or not) is over: its right to open passes to the line."""
        self._opening -= 1
        self._dispatch()

    async def _acquire(self) -> tuple[Any, bool]:
        """With a slot held: (connection, whether this call opens it). Waits in line if needed."""
        if not self._line:
            connection = self._take_idle()
            if connection is not None:
                return connection, False
            if self._may_open():
                self._opening += 1
                return self._new_or_idle(), True
        if self._line is None:
            self._line = collections.deque()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._line.append(waiter)
        self._dispatch()  # the calls ahead may all be gone (cut by their budgets)
        try:
            if isinstance(current.get(), AsyncBudget):
                connection = await waiter
            else:
                try:
                    async with asyncio.timeout(self.timeout):
                        connection = await waiter
                except TimeoutError:
                    raise RedisTimeoutError("no free connection in the pool") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed over, then cut: pass it on
                given = waiter.result()
                if given is None:
                    self._opened()
                else:
                    self._give_back(given)
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._line.remove(waiter)
                self._dispatch()
            raise
        if connection is None:  # the right to open one
            return self._new_or_idle(), True
        return connection, False

    def _new_or_idle(self) -> Any:
        try:
            return self.get_available_connection()  # type: ignore[no-untyped-call]
        except BaseException:
            self._opened()
            raise

    async def _checkout(self) -> Any:
        """A connected connection for this call (slot, line, open), within its budget."""
        slots = await self._slot()
        try:
            connection, opening = await self._acquire()
        except BaseException:
            slots.release()
            raise
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)  # also frees the slot
            raise
        finally:
            if opening:
                self._opened()
        return connection

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self._in_maintenance:  # redis-py's own path keeps its maintenance bookkeeping
            slots = await self._slot()
            try:
                return await super().get_connection()  # type: ignore[no-untyped-call]
            except BaseException:
                slots.release()
                raise
        return await self._checkout()

    async def execute(self, *args: Any) -> Any:
        """Run one command (the hit path's ``GET``) on a pooled connection.

        What ``redis.asyncio.Redis.execute_command`` does, without what a cache ``GET`` does
        not use (per-command observability hooks, response callbacks), and with a lean
        checkout and check-in: holding a slot (see ``_slots``) guarantees a connection is
        free, so redis-py's condition, lock and wait timer are not needed. Same rules
        otherwise: the call's :class:`AsyncBudget` cuts waits, connects and reads; only a
        dropped connection is retried, as the connection's ``Retry`` says; a pooled connection
        with unread data is made again before use (``ensure_connection``).
        """
        connection = await self.get_connection()
        try:
            return await connection.retry.call_with_retry(
                lambda: _attempt(connection, args), lambda _error: connection.disconnect()
            )
        finally:
            if self._in_maintenance or connection.should_reconnect():
                await self.release(connection)
            else:  # release() without its lock and events: nothing here awaits
                if connection.is_connected:
                    self.last_answer = asyncio.get_running_loop().time()
                self._give_back(connection)
                self._slots().release()

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
        if not fresh and not self.maint_notifications_enabled():  # type: ignore[no-untyped-call]
            # redis-py's check without its connect() step (a retry loop around a no-op here):
            # a pooled connection with unread data, or closed by the server, is made again.
            try:
                if not await connection.can_read():
                    return
            except (redis.ConnectionError, RedisTimeoutError, OSError):
                pass
            await connection.disconnect()
            fresh = True
        budget = current.get()
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
            self._dispatch()

    def make_connection(self) -> Any:
        conn = super().make_connection()  # type: ignore[no-untyped-call]
        if isinstance(conn, redis.asyncio.SSLConnection):
            if self._tls_context is None:
                self._tls_context = conn.ssl_context
            conn.ssl_context = self._tls_context
        return conn


async def _attempt(connection: Any, args: tuple[Any, ...]) -> Any:
    await connection.send_command(*args)  # connects a dropped connection again
    return await connection.read_response()  # disconnects on any error, as redis-py's
