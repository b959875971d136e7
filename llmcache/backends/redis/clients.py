"""Client creation of the Redis backends: pools, timeouts, retries, and each call's budget.

:class:`RedisClients` is mixed into :class:`~llmcache.backends.redis.RedisBackend`. A standalone
node gets one blocking pool per side (:class:`~.pool.SyncPool`, :class:`~.pool.AsyncPool`);
``RedisClusterBackend`` overrides ``_create_sync_client`` / ``_create_async_client`` and reuses
the rest. Only a dropped connection is retried (with backoff), never a timeout.

Time budget: every operation runs in one budget of ``socket_timeout`` (:mod:`.budget`; made by
:meth:`~RedisClients._budget` / :meth:`~RedisClients._abudget`) covering the wait for a pooled
connection, connecting (bounded on its own by ``socket_connect_timeout``) and the command, so a
call's added latency is at most one ``socket_timeout`` whatever the concurrency: a burst against
a hung server fails every call at its budget instead of queueing them behind each other's
timeouts. The driver-level timeouts of async connections are only a backstop.

Example::

    from llmcache.backends.redis import RedisBackend, RedisOptions

    store = RedisBackend(RedisOptions(url="redis://localhost:6379/0", socket_timeout=0.2))
    client = store._create_sync_client()  # redis.Redis on a SyncPool
    with store._budget():                 # what each sync operation runs in: 200 ms in all
        client.get("llmcache:default:k")
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from llmcache.backends.redis.budget import (
    AsyncBudget,
    Budget,
    BudgetConnection,
    BudgetSSLConnection,
)
from llmcache.backends.redis.budget import backstop as _backstop
from llmcache.backends.redis.pool_async import AsyncPool
from llmcache.backends.redis.pool_sync import SyncPool

if TYPE_CHECKING:
    from llmcache.backends.redis.options import RedisOptions
    from llmcache.backends.redis.url import RedisURL

__all__ = ["RedisClients"]

BACKOFF_BASE, BACKOFF_CAP = 0.01, 0.1  # seconds between retries: 10 ms, doubling, at most 100 ms


@functools.cache
def _driver_info() -> dict[str, Any]:
    """``driver_info=`` for a pool's connections: redis-py's default (``CLIENT SETINFO`` name and
    version), made once.

    Left unset, redis-py >= 7 makes it in every ``Connection.__init__``, which reads the installed
    package's metadata (``importlib.metadata.version("redis")``: a file read and an e-mail
    header parse, ~1 ms of CPU): a fresh async pool opening 50 connections in a burst spent
    most of its first burst there, on the event loop. The handshake sends the same values.
    Older redis-py computes its default once, at import, and has no ``driver_info``.
    """
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # pragma: no cover - redis-py < 7
        return {}
    return {"driver_info": DriverInfo()}


class RedisClients:
    """The client factory and per-call budgets of :class:`RedisBackend` (see the module doc)."""

    if TYPE_CHECKING:  # provided by RedisBackend
        options: RedisOptions
        url: RedisURL
        username: str | None
        _password: str | None

    # -- client creation: the factory RedisClusterBackend overrides ----------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        o = self.options
        kwargs: dict[str, Any] = {
            "username": self.username,
            "password": self._password,
            "socket_timeout": o.socket_timeout,
            "socket_connect_timeout": o.socket_connect_timeout,
            "health_check_interval": o.health_check_interval,
            "max_connections": o.max_connections,
        }
        if self.url.tls:
            kwargs.update(
                ssl=True,
                ssl_ca_certs=o.ssl_ca_certs,
                ssl_certfile=o.ssl_certfile,
                ssl_keyfile=o.ssl_keyfile,
                ssl_cert_reqs=o.ssl_cert_reqs,
                ssl_check_hostname=o.ssl_check_hostname and o.ssl_cert_reqs != "none",
            )
        return kwargs

    def _async_client_kwargs(self) -> dict[str, Any]:
        """:meth:`_client_kwargs` for an async client, whose every call runs in an AsyncBudget.

        Connecting is bounded by the call's budget (socket_timeout + socket_connect_timeout for
        a call that opens a connection); the driver's own connect timeout, which also counts
        the event loop's backlog (a burst of tasks, other threads holding the GIL: "Timeout
        connecting to server" on a healthy server), is only a backstop.
        """
        o = self.options
        kwargs = self._client_kwargs()
        kwargs["socket_connect_timeout"] = _backstop(o.socket_timeout, o.socket_connect_timeout)
        return kwargs

    def _retry(self, retry_class: Any) -> Any:
        # Retry only a dropped connection (a restarted or failed-over server, an idle connection
        # closed by a proxy), never a timeout: a slow store costs one timeout, not several.
        backoff = ExponentialWithJitterBackoff(base=BACKOFF_BASE, cap=BACKOFF_CAP)
        return retry_class(backoff, self.options.retries, supported_errors=(RedisConnectionError,))

    def _create_sync_client(self) -> Any:
        classes = (redis.Connection, redis.SSLConnection)
        return redis.Redis.from_pool(self._pool(classes, Retry, SyncPool))

    def _create_async_client(self) -> Any:
        classes = (BudgetConnection, BudgetSSLConnection)
        pool = self._pool(classes, AsyncRetry, AsyncPool, self._async_client_kwargs())
        # Every async call runs in an AsyncBudget, which cuts waits, connects and reads. No
        # driver read timeout: with one, redis-py sends through asyncio.wait_for, which on
        # Python 3.11 can swallow the budget's cancellation (a call then waited the backstop).
        pool.connection_kwargs["socket_timeout"] = None
        return redis.asyncio.Redis.from_pool(pool)

    def _pool(
        self,
        classes: tuple[Any, Any],
        retry: Any,
        pool_class: Any,
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        # A blocking pool: over max_connections an operation waits for a free connection, within
        # its budget (:mod:`.budget`), instead of failing at once.
        kwargs = dict(self._client_kwargs() if kwargs is None else kwargs)
        tls = kwargs.pop("ssl", False)
        host, port = self.url.nodes[0]
        return pool_class(
            connection_class=classes[1] if tls else classes[0],
            timeout=self.options.socket_connect_timeout + self.options.socket_timeout,
            **{"host": host, "port": port, "db": self.url.db, "retry": self._retry(retry)},
            **_driver_info(),
            **kwargs,
        )

    # -- one budget per call: checkout + connect + command (see budget.py) ----------------------
    def _budget(self) -> Budget:
        return Budget(self.options.socket_timeout)

    def _abudget(self) -> AsyncBudget:
        o = self.options
        limit = _backstop(o.socket_timeout, o.socket_connect_timeout)
        return AsyncBudget(o.socket_timeout, limit, connect=o.socket_connect_timeout)
