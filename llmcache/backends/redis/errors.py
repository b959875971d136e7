"""Driver errors → :class:`~llmcache.errors.BackendError`, at one point: :func:`map_errors`.

Every operation of the Redis backends (connecting included) runs inside :func:`map_errors`, which
re-raises whatever the driver throws as a ``BackendError`` chained ``from`` it, with a message a
user can act on (:func:`explain_error`): an unreachable, dead or hung server is
:class:`~llmcache.errors.BackendUnavailable`; credentials, certificates and TLS/plain mix-ups get
a hint naming the URL part or option to change. No message contains the password.

Example::

    from llmcache.backends.redis.errors import map_errors
    from llmcache.backends.redis.url import parse_redis_url

    url = parse_redis_url("redis://localhost:6379/0")
    with map_errors("GET", url, username=None, has_password=False):
        client.get("llmcache:default:k")     # a redis-py failure leaves as BackendError
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.exceptions import AuthenticationError, InvalidResponse, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.backends.redis.url import RedisURL
from llmcache.errors import BackendError, BackendUnavailable, LLMCacheError

__all__ = ["explain_error", "map_errors"]


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
            "check the password / AUTH token (URL, password= or LLMCACHE_REDIS_PASSWORD)"
            if has_password
            else "no password was given: put it in the URL (redis://user:password@host) "
            "or in LLMCACHE_REDIS_PASSWORD"
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


@contextlib.contextmanager
def map_errors(
    op: str, url: RedisURL, *, username: str | None, has_password: bool
) -> Iterator[None]:
    """Run the block; a driver error leaves it as :func:`explain_error`'s ``BackendError``.

    Our own errors (:class:`~llmcache.errors.LLMCacheError`, e.g. a ``ConfigError``) pass as is.
    """
    try:
        yield
    except LLMCacheError:
        raise
    except Exception as exc:  # RedisError, OSError, and the driver's own bugs under faults
        raise explain_error(exc, op, url, username, has_password) from exc
