"""The parts of the Momento backend that talk about the SDK, not about caching.

Credentials (API key / endpoint / local server), named configurations (with a retry strategy
that stays inside one deadline), the mapping of the SDK's ``.Error`` response objects to
:class:`~llmcache.errors.BackendError`, a rate limit on the SDK's own per-failure warnings, and
closing an async client from outside its event loop.

Example::

    from llmcache.backends.momento.sdk import configuration, credentials

    config = configuration("laptop", timeout=2.0)
    creds = credentials(None, None, local="127.0.0.1:8080")
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, NoReturn

from momento import CacheClientAsync, Configurations, CredentialProvider
from momento.config import Configuration
from momento.errors import InvalidArgumentException, MomentoErrorCode
from momento.retry import RetryableProps, RetryStrategy
from pydantic import SecretStr

from llmcache._guard import FAULT_LOG_INTERVAL
from llmcache.errors import BackendError, BackendUnavailable, ConfigError

__all__ = [
    "CONFIGURATIONS",
    "SDK_LOGGER",
    "SDK_LOG_FILTER",
    "BudgetRetryStrategy",
    "MomentoError",
    "MomentoUnavailable",
    "RateLimitFilter",
    "close_async_elsewhere",
    "configuration",
    "credentials",
    "deadline_of",
    "quiet_sdk_logs",
    "raise_error",
    "run_elsewhere",
]

#: Our option value → the SDK's prebuilt configuration (deadline per attempt, in the SDK's docs:
#: laptop 15 s, in_region 1.1 s, low_latency 0.5 s, lambda 1.1 s without idle keepalive). All of
#: them retry idempotent RPCs (get, set, delete) up to 3 times on UNAVAILABLE / INTERNAL, which
#: :func:`configuration` keeps inside one deadline (:class:`BudgetRetryStrategy`).
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


class BudgetRetryStrategy(RetryStrategy):
    """The configuration's own retry strategy, kept inside the first attempt's deadline.

    The SDK's strategies retry UNAVAILABLE / INTERNAL at once (no backoff) and give every retry
    a fresh full deadline, so one call against a store that answers slowly and then fails cost
    up to four deadlines. Here the SDK's overall deadline (the configured client timeout, set
    when the call starts) is the budget of the whole call, retries included: a retry runs only
    if time is left, after a short jittered backoff, with the time left as its deadline.
    """

    #: First backoff, doubled per retry up to :attr:`MAX_BACKOFF` (seconds, jittered ±50 %).
    BACKOFF = 0.02
    MAX_BACKOFF = 0.2
    #: A retry needs at least this much of the budget left (seconds), or it is not worth sending.
    MIN_ATTEMPT = 0.01

    def __init__(self, inner: RetryStrategy) -> None:
        self.inner = inner

    def determine_when_to_retry(self, props: RetryableProps) -> float | None:
        if self.inner.determine_when_to_retry(props) is None:
            return None  # not retryable, or out of attempts
        attempt = int(props.attempt_number)
        backoff = min(self.MAX_BACKOFF, self.BACKOFF * 2.0 ** max(0, attempt - 1))
        backoff *= 0.5 + random.random()
        deadline = props.overall_deadline
        if deadline is not None:
            left = (deadline - datetime.now()).total_seconds()
            if left - backoff < self.MIN_ATTEMPT:
                return None  # no budget left for another attempt
        return backoff

    def calculate_retry_deadline(self, overall_deadline: datetime) -> float | None:
        # Seconds, as the interceptors pass it on as the retry's gRPC timeout.
        return max(self.MIN_ATTEMPT, (overall_deadline - datetime.now()).total_seconds())


def configuration(name: str, timeout: float | None) -> Configuration:
    """The SDK configuration called ``name``, with its per-request deadline set to ``timeout``
    and its retries kept inside that deadline (:class:`BudgetRetryStrategy`)."""
    try:
        config: Configuration = CONFIGURATIONS[name]()
    except KeyError:
        raise ConfigError(
            f"invalid value {name!r} for option 'configuration' of momento:// backend; "
            f"valid values: {', '.join(CONFIGURATIONS)}"
        ) from None
    if timeout is not None:
        config = config.with_client_timeout(timedelta(seconds=timeout))
    return config.with_retry_strategy(BudgetRetryStrategy(config.get_retry_strategy()))


def deadline_of(config: Configuration) -> float:
    """The per-request deadline of ``config``, in seconds."""
    grpc_config = config.get_transport_strategy().get_grpc_configuration()
    return float(grpc_config.get_deadline().total_seconds())


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


def run_elsewhere(coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> None:
    """Run ``coro`` (a close) on ``loop`` from wherever we are, as well as we can."""
    if loop.is_closed():
        coro.close()  # its channels died with the loop
        return
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


def close_async_elsewhere(client: CacheClientAsync, loop: asyncio.AbstractEventLoop) -> None:
    """Close an async client that belongs to ``loop`` from outside it, as well as we can."""
    run_elsewhere(client.__aexit__(None, None, None), loop)


# -- the SDK's own warnings ------------------------------------------------------------------------
#: The logger the SDK writes its per-failure warnings to (``"<op> failed with exception: ..."``,
#: five lines each for a gRPC error).
SDK_LOGGER = "momentosdk"


class RateLimitFilter(logging.Filter):
    """Let one WARNING-or-above record through per ``interval`` seconds, on one line, with the
    number suppressed since the last one; lower levels pass untouched."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0
        self._suppressed = 0

    def reset(self) -> None:
        """Let the next warning through (tests)."""
        with self._lock:
            self._next, self._suppressed = 0.0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._suppressed += 1
                return False
            self._next = now + self.interval
            suppressed, self._suppressed = self._suppressed, 0
        message = " ".join(record.getMessage().split())  # a gRPC error is five lines
        if suppressed:
            message += f" ({suppressed} similar warnings suppressed)"
        message += f"; momento SDK warnings are shown at most once per {self.interval:g} s"
        record.msg, record.args = message, None
        return True


#: The filter :func:`quiet_sdk_logs` puts on the SDK's logger (one per process).
SDK_LOG_FILTER = RateLimitFilter(FAULT_LOG_INTERVAL)


def quiet_sdk_logs() -> None:
    """Rate-limit the SDK's warnings (idempotent): a sick store must not flood the app's log
    with one multi-line warning per failed call; llmcache logs its own fault once per burst."""
    logger = logging.getLogger(SDK_LOGGER)
    if SDK_LOG_FILTER not in logger.filters:
        logger.addFilter(SDK_LOG_FILTER)
