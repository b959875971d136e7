"""The sync Redis connection pool: :class:`SyncPool`.

It keeps each call within its time budget (:class:`~.budget.Budget`, found in
:data:`~.budget.current`): checkout, connect and command together cost at most one
``socket_timeout``. It waits for a free connection at most the call's remaining budget, and
reads with ``min(socket_timeout, remaining)``.

Example::

    import redis
    from llmcache.backends.redis.budget import Budget
    from llmcache.backends.redis.pool_sync import SyncPool

    pool = SyncPool(max_connections=10, socket_timeout=0.25, socket_connect_timeout=0.25)
    client = redis.Redis(connection_pool=pool)
    with Budget(0.25):                  # checkout + connect + command: 250 ms in all
        client.get("k")
"""

from __future__ import annotations

from queue import Empty
from typing import Any

import redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.backends.redis.budget import Budget, current, spent

__all__ = ["SyncPool"]


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
        budget = current.get()
        if not isinstance(budget, Budget):
            connection = super().get_connection()  # type: ignore[no-untyped-call]
            self._set_timeouts(connection, self._read_timeout, self._connect_timeout)
            return connection
        self._checkpid()
        remaining = budget.remaining()
        if remaining <= 0:
            raise spent(budget.seconds)
        try:
            connection = self.pool.get(block=True, timeout=remaining)
        except Empty:
            raise spent(budget.seconds) from None
        if connection is None:
            connection = self.make_connection()  # type: ignore[no-untyped-call]
        try:
            remaining = budget.remaining()
            if remaining <= 0:
                raise spent(budget.seconds)
            # Attributes only: a socket opened below starts with them; a pooled socket gets
            # its read timeout once, at the end (each settimeout is a system call).
            read = min(self._read_timeout, remaining)
            connection.socket_timeout = read
            connection.socket_connect_timeout = min(self._connect_timeout, remaining)
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
                raise spent(budget.seconds)
            connection.update_current_socket_timeout(min(read, remaining))
        except BaseException:
            self.release(connection)  # type: ignore[no-untyped-call]
            raise
        return connection

    def execute(self, *args: Any) -> Any:
        """Run one command (the hit path's ``GET``) within the call's :class:`Budget`.

        What ``redis.Redis.execute_command`` does, without what a cache ``GET`` does not use
        (per-command observability hooks, response callbacks, HIMPORT state), and with the
        same rules: checkout, connect and every attempt stay within the budget; only a dropped
        connection is retried, as the client's ``Retry`` says (a timeout never is); a
        connection that failed is disconnected before it goes back to the pool.
        """
        budget = current.get()
        connection = self.get_connection()
        try:
            return connection.retry.call_with_retry(
                lambda: self._attempt(connection, budget, args),
                lambda _error: connection.disconnect(),
            )
        finally:
            self._checkin(connection)

    def _attempt(self, connection: Any, budget: Any, args: tuple[Any, ...]) -> Any:
        if isinstance(budget, Budget) and not connection.is_connected:
            # A retry after a dropped connection: it gets what is left of the budget.
            remaining = budget.remaining()
            if remaining <= 0:
                raise spent(budget.seconds)
            connection.socket_timeout = min(self._read_timeout, remaining)
            connection.socket_connect_timeout = min(self._connect_timeout, remaining)
        connection.send_command(*args)  # connects a dropped connection again
        return connection.read_response()  # disconnects on any error, as redis-py's

    def _checkin(self, connection: Any) -> None:
        """``release`` for a connection this pool handed out in this process, in good state."""
        if self._in_maintenance or connection.should_reconnect():
            self.release(connection)  # type: ignore[no-untyped-call]
        elif self.owns_connection(connection):
            self.pool.put_nowait(connection)
        else:  # pragma: no cover - a fork between checkout and checkin
            self.release(connection)  # type: ignore[no-untyped-call]

    @staticmethod
    def _set_timeouts(connection: Any, read: float, connect: float) -> None:
        connection.socket_timeout = read
        connection.socket_connect_timeout = connect
        if connection.is_connected:
            connection.update_current_socket_timeout(read)
