"""Internal: the pieces of the Momento backend that talk about the SDK, not about caching.

Credentials (API key / endpoint / local server), named configurations, limits, and the mapping of
the SDK's ``.Error`` response objects to :class:`~llmcache.errors.BackendError`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal, NoReturn

from momento import Configurations, CredentialProvider
from momento.config import Configuration
from momento.errors import InvalidArgumentException, MomentoErrorCode
from pydantic import SecretStr

from llmcache.errors import BackendError, BackendUnavailable, ConfigError

__all__ = [
    "CONFIGURATIONS",
    "MAX_ITEM_BYTES",
    "MAX_TTL_SECONDS",
    "ConfigurationName",
    "MomentoError",
    "MomentoUnavailable",
    "check_cache_name",
    "configuration",
    "credentials",
    "raise_error",
]

#: Momento's maximum item TTL: 24 hours, in seconds.
MAX_TTL_SECONDS = 24 * 3600
#: Momento's maximum item size (key + value), in bytes: 5 MiB. Larger items are refused locally
#: (the SDK would send them and get RESOURCE_EXHAUSTED back, after paying for the transfer).
MAX_ITEM_BYTES = 5 * 1024 * 1024

ConfigurationName = Literal["laptop", "in_region", "low_latency", "lambda"]

#: Our option value → the SDK's prebuilt configuration (deadline per attempt, in the SDK's docs:
#: laptop 15 s, in_region 1.1 s, low_latency 0.5 s, lambda 1.1 s without idle keepalive). All of
#: them retry idempotent RPCs (get, set, delete) up to 3 times on UNAVAILABLE / INTERNAL.
CONFIGURATIONS: dict[str, Any] = {
    "laptop": Configurations.Laptop.v1,
    "in_region": Configurations.InRegion.Default.v1,
    "low_latency": Configurations.InRegion.LowLatency.v1,
    "lambda": Configurations.Lambda.latest,
}

# Momento cache names: letters, digits, '-', '_', '.'; no ':' or '@' (so no URL confusion).
_CACHE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")

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


def check_cache_name(name: str) -> str:
    if not name:
        raise ConfigError("momento:// URL needs a cache name: momento://<cache-name>")
    if not _CACHE_NAME_RE.match(name):
        raise ConfigError(
            f"invalid Momento cache name {name!r}: use letters, digits, '-', '_' and '.'"
        )
    return name


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
