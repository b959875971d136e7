"""Helpers of the Redis backend: URL parsing, readable driver errors, a TLS-friendly async pool.

URL forms::

    redis://[[username]:password@]host[:port][/db][?option=value...]
    rediss://...                         TLS (ElastiCache in-transit encryption)
    valkey://..., valkeys://...          the same, for Valkey
    redis+cluster://host:port[,host:port...]   cluster mode enabled (db must be 0)

User name and password are percent-decoded; an empty one counts as absent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio
from redis.exceptions import (
    AuthenticationError,
    InvalidResponse,
    RedisClusterException,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.errors import BackendError, BackendUnavailable, ConfigError

__all__ = [
    "DEFAULT_PORT",
    "AsyncPool",
    "LoopBoundClient",
    "RedisURL",
    "explain_error",
    "glob_escape",
    "parse_redis_url",
]

DEFAULT_PORT = 6379
_BASE_SCHEMES = {"redis": False, "rediss": True, "valkey": False, "valkeys": True}


@dataclass(frozen=True)
class RedisURL:
    """What a Redis URL says, credentials included (never put this object in a message)."""

    tls: bool
    nodes: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None

    @property
    def where(self) -> str:
        """``host:port[,host:port]``: how messages name the server (no credentials)."""
        return ",".join(f"{h}:{p}" if ":" not in h else f"[{h}]:{p}" for h, p in self.nodes)


def _node(text: str, url_for_errors: str) -> tuple[str, int]:
    host, port_text = text, ""
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host:
        raise ConfigError(f"cache URL {url_for_errors!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"invalid port {port_text!r} in cache URL {url_for_errors!r}")
    return host, int(port_text)


def parse_redis_url(url: str, *, cluster: bool = False) -> RedisURL:
    """Split ``url``; a :class:`ConfigError` names what is wrong (never the password)."""
    parts = urlsplit(url)
    base, _, suffix = parts.scheme.lower().partition("+")
    if base not in _BASE_SCHEMES or suffix not in ("", "cluster"):
        raise ConfigError(
            f"unsupported scheme {parts.scheme!r} for the Redis backend; use one of "
            "redis, rediss, valkey, valkeys and their +cluster forms"
        )
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    safe_url = url.replace(userinfo + at, "***@") if at else url
    username, _, password = userinfo.partition(":")
    text_nodes = [n.strip() for n in hostlist.split(",")] if hostlist else []
    nodes = tuple(_node(n, safe_url) for n in text_nodes) or (("localhost", DEFAULT_PORT),)
    if len(nodes) > 1 and not cluster:
        raise ConfigError(
            f"cache URL {safe_url!r} names {len(nodes)} hosts; several hosts are a cluster: "
            "use redis+cluster:// (or rediss+cluster://)"
        )
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ConfigError(
            f"invalid database {db_text!r} in cache URL {safe_url!r}: expected /0-/15"
        )
    if cluster and int(db_text) != 0:
        raise ConfigError(f"a Redis cluster has only database 0, not /{db_text} ({safe_url!r})")
    return RedisURL(
        tls=_BASE_SCHEMES[base],
        nodes=nodes,
        db=int(db_text),
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def explain_error(
    exc: BaseException, op: str, url: RedisURL, username: str | None, has_password: bool
) -> BackendError:
    """A :class:`BackendError` for a driver error that says what to fix (never the password).

    Unreachable / down / timed out is :class:`BackendUnavailable`; credentials, certificates and
    protocol mix-ups (TLS vs plain) get a hint naming the URL part or option to change.
    """
    where = f"{op} on Redis at {url.where}"
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if isinstance(exc, AuthenticationError) or "wrongpass" in low or "noauth" in low:
        who = f"user {username!r}" if username else "the default user"
        hint = (
            "check the password / AUTH token (URL or redis_password setting)"
            if has_password
            else "no password was given: put it in the URL (redis://user:password@host) "
            "or in the redis_password setting"
        )
        return BackendError(f"{where}: authentication failed for {who} ({text}); {hint}")
    if "certificate" in low:
        return BackendError(
            f"{where}: TLS certificate check failed ({text}); set ssl_ca_certs to the CA "
            "that signed the server's certificate"
        )
    if "ssl" in low or "wrong version number" in low or "record layer" in low:
        return BackendUnavailable(
            f"{where}: TLS handshake failed ({text}); if the server does not use TLS "
            "(no in-transit encryption), use redis://"
        )
    if not url.tls and ("closed by server" in low or "reset by peer" in low):
        return BackendUnavailable(
            f"{where}: the server closed the connection ({text}); if it requires TLS "
            "(ElastiCache in-transit encryption), use rediss://"
        )
    if "name or service not known" in low or "nodename nor servname" in low:
        text += f"; the host name {url.nodes[0][0]!r} does not resolve: check the endpoint"
    if url.tls and "timeout connecting" in low:
        text += "; if the server does not use TLS at all (no in-transit encryption), use redis://"
    if isinstance(exc, InvalidResponse):
        return BackendError(f"{where}: the server does not speak the Redis protocol ({text})")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | RedisClusterException):
        return BackendUnavailable(f"{where} failed: {text}")
    return BackendError(f"{where} failed: {text}")


class AsyncPool(redis.asyncio.BlockingConnectionPool):
    """Shares one TLS context between the pool's connections.

    redis-py builds a context per connection, loading the system CA store each time: ~30 ms of
    event-loop CPU per new connection, so a burst of 100 concurrent first lookups timed out.
    """

    _tls_context: Any = None
    _fair: asyncio.Semaphore | None = None

    # redis-py's blocking pool wakes waiters through a Condition, in no particular order: at 64
    # concurrent lookups on 50 connections some waited past the pool timeout, which counted as
    # store faults and opened the breaker. A FIFO semaphore of max_connections in front of the
    # pool serves waiters in arrival order, and the pool itself then never has to wait.
    def _slots(self) -> asyncio.Semaphore:
        if self._fair is None:
            self._fair = asyncio.Semaphore(self.max_connections)
        return self._fair

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        slots = self._slots()
        await slots.acquire()
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except BaseException:
            slots.release()
            raise

    async def release(self, connection: Any) -> None:
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


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\^-" else c for c in text)


class LoopBoundClient:
    """The async client of the running event loop, created on first use in each loop.

    A redis.asyncio client belongs to the loop that opened its connections. Used from another
    loop, the old client is let go (closed in its loop if that still runs) and a new one made.
    ``asyncio.run`` and ``asyncio.Runner`` close a loop's async generators before the loop: a
    guard generator registered per client closes the client then, while the loop still runs.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None
        self._ready = False
        self._init_lock = asyncio.Lock()

    async def client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self.drop()
            self._client, self._loop = self._factory(), loop
            self._ready, self._init_lock = False, asyncio.Lock()
            self._guard = guard = self._close_with_loop(self._client)
            with contextlib.suppress(StopIteration):  # run to the yield: registers with the loop
                guard.asend(None).send(None)
        client = self._client
        if not self._ready:
            # Connect (a cluster: learn its slots) once, before concurrent callers use it:
            # redis-py's async cluster, first used by many tasks at once, drops connections
            # under some of them ("Connection closed by server").
            async with self._init_lock:
                if not self._ready:
                    await client.initialize()
                    self._ready = True
        return client

    async def _close_with_loop(self, client: Any) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self._client is client:
                self._client = self._loop = self._guard = None
                await client.aclose()

    def _take(self) -> tuple[Any, asyncio.AbstractEventLoop | None]:
        client, loop, guard = self._client, self._loop, self._guard
        self._client = self._loop = self._guard = None
        if guard is not None:  # its client is no longer current: it finishes without awaiting
            with contextlib.suppress(StopIteration, RuntimeError):
                guard.aclose().send(None)
        return client, loop

    def drop(self) -> None:
        """Let go of the client; close it in its loop if that loop still runs."""
        client, loop = self._take()
        if client is not None and loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(client.aclose(), loop)

    async def aclose(self) -> None:
        """Close the client if it belongs to the running loop (else as :meth:`drop`)."""
        if self._loop is asyncio.get_running_loop():
            client, _ = self._take()
            await client.aclose()
        else:
            self.drop()
