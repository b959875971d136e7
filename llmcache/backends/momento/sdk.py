"""The parts of the Momento backend that talk about the SDK, not about caching.

Credentials (API key / endpoint / local server), named configurations, the mapping of the SDK's
``.Error`` response objects to :class:`~llmcache.errors.BackendError`, and closing an async
client from outside its event loop.

Example::

    from llmcache.backends.momento.sdk import configuration, credentials

    config = configuration("laptop", timeout=2.0)
    creds = credentials(None, None, local="127.0.0.1:8080")
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn

from momento import CacheClientAsync, Configurations, CredentialProvider
from momento.config import Configuration
from momento.errors import InvalidArgumentException, MomentoErrorCode
from pydantic import SecretStr

from llmcache.errors import BackendError, BackendUnavailable, ConfigError

__all__ = [
    "CONFIGURATIONS",
    "MomentoError",
    "MomentoUnavailable",
    "close_async_elsewhere",
    "configuration",
    "credentials",
    "raise_error",
]

#: Our option value → the SDK's prebuilt configuration (deadline per attempt, in the SDK's docs:
#: laptop 15 s, in_region 1.1 s, low_latency 0.5 s, lambda 1.1 s without idle keepalive). All of
#: them retry idempotent RPCs (get, set, delete) up to 3 times on UNAVAILABLE / INTERNAL.
CONFIGURATIONS: dict[str, Any] = {
    "laptop": Configurations.Laptop.v1,
    "in_region": Configurations.InRegion.Default.v1,
    "low_latency": Configurations.InRegion.LowLatency.v1,
    "lambda": Configurations.Lambda.latest,
}

# Error codes that mean "the store cannot be reached right now", not "the request was wrong".
_UNAVAILABLE = {
    MomentoErrorCode.SERVER_UNAVAILABLE,
    MomentoErrorCode.TIMEOUT_ERROR,
    MomentoErrorCode.CONNECTION_ERROR,
}


class MomentoError(BackendError):
    """A Momento operation failed; ``code`` is the SDK's ``MomentoErrorCode`` name."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class MomentoUnavailable(BackendUnavailable, MomentoError):
    """Momento did not answer in time or could not be reached (``code`` as in MomentoError)."""


def configuration(name: str, timeout: float | None) -> Configuration:
    """The SDK configuration called ``name``, with its per-request deadline set to ``timeout``."""
    try:
        config: Configuration = CONFIGURATIONS[name]()
    except KeyError:
        raise ConfigError(
            f"invalid value {name!r} for option 'configuration' of momento:// backend; "
            f"valid values: {', '.join(CONFIGURATIONS)}"
        ) from None
    if timeout is not None:
        config = config.with_client_timeout(timedelta(seconds=timeout))
    return config


def credentials(
    api_key: SecretStr | str | None, endpoint: str | None, local: str | None
) -> CredentialProvider:
    """Credential provider for a local server (``host:port``) or an API key (+ endpoint)."""
    if local is not None:
        host, sep, port = local.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"invalid value {local!r} for option 'local' of momento:// backend: "
                "expected host:port of a local Momento server"
            )
        return CredentialProvider.for_momento_local(host, int(port))
    key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if not key:
        raise ConfigError(
            "momento:// needs an API key: set LLMCACHE_MOMENTO_API_KEY (or MOMENTO_API_KEY), "
            "or use momento://<cache>?local=host:port for a local server"
        )
    if endpoint:
        try:  # v2 keys carry no endpoint: they need one
            return CredentialProvider.from_api_key_v2(key, endpoint)
        except InvalidArgumentException:
            pass  # a legacy token: it names its own endpoints
    try:
        # Legacy and v1 tokens embed their endpoints; from_disposable_token parses both without
        # the DeprecationWarning of from_string.
        return CredentialProvider.from_disposable_token(key)
    except InvalidArgumentException as exc:
        if "v2" in exc.message:
            raise ConfigError(
                "this Momento API key (v2) needs an endpoint: set LLMCACHE_MOMENTO_ENDPOINT "
                "(or pass endpoint=...), e.g. cell-4-us-west-2-1.prod.a.momentohq.com"
            ) from None
        raise ConfigError(f"invalid Momento API key: {exc.message}") from None


def raise_error(op: str, cache_name: str, response: Any) -> NoReturn:
    """Raise the BackendError for an SDK ``.Error`` response (or an unexpected response type)."""
    code_enum = getattr(response, "error_code", None)
    if not isinstance(code_enum, MomentoErrorCode):
        raise MomentoError(
            f"momento {op} on cache {cache_name!r}: unexpected response {response!r}",
            "UNKNOWN_ERROR",
        )
    code = code_enum.name
    message = f"momento {op} on cache {cache_name!r} failed: {code}: {response.message}"
    if code_enum is MomentoErrorCode.NOT_FOUND_ERROR:
        message += " (create the cache, or pass create_cache=true)"
    cls = MomentoUnavailable if code_enum in _UNAVAILABLE else MomentoError
    raise cls(message, code) from response.inner_exception


def close_async_elsewhere(client: CacheClientAsync, loop: asyncio.AbstractEventLoop) -> None:
    """Close an async client that belongs to ``loop`` from outside it, as well as we can."""
    if loop.is_closed():
        return  # its channels died with the loop
    coro = client.__aexit__(None, None, None)
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(coro)
    elif loop.is_running():
        asyncio.run_coroutine_threadsafe(coro, loop)
    else:
        loop.run_until_complete(coro)
