"""The SDK clients of one :class:`~llmcache.backends.momento.MomentoBackend`, and its call budget.

:class:`MomentoClients` owns the client lifecycle: the sync ``CacheClient`` (built lazily, once),
the thread pool of sync batches, one ``CacheClientAsync`` per live event loop, the cache creation
both sides wait for (``create_cache``), and closing all of them.

Bounded waits: every async operation (namespace generation, cache creation, retries and all the
RPCs of a batch included) runs under one budget (:meth:`MomentoClients.bounded`); a sync batch
waits for its worker threads at most that long (:meth:`MomentoClients.map`). Async clients are
per event loop: one ``CacheClientAsync`` per live loop, closed when its loop shuts down
(``asyncio.run``) or on :meth:`MomentoClients.aclose_loop`; a cancellation that is not the
caller's own becomes a :class:`~llmcache.backends.momento.sdk.MomentoUnavailable`.

The budget of one call is ``timeout`` or, without one, the configuration's per-request deadline.

Example::

    from llmcache.backends.momento.clients import MomentoClients
    from llmcache.backends.momento.options import MomentoOptions
    from llmcache.backends.momento.sdk import configuration, credentials

    options = MomentoOptions(cache_name="llm", local="127.0.0.1:8080", create_cache=True)
    creds = credentials(None, None, options.local)
    clients = MomentoClients("llm", configuration("laptop", 2.0), creds, options)
    client = clients.sync()  # creates the cache on first use
    clients.close()
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from momento import CacheClient, CacheClientAsync, CredentialProvider
from momento.config import Configuration
from momento.responses import CreateCache

from llmcache.backends.momento.options import MomentoOptions
from llmcache.backends.momento.sdk import (
    MomentoUnavailable,
    deadline_of,
    raise_error,
    run_elsewhere,
)

__all__ = ["MomentoClients"]

T = TypeVar("T")


@dataclass
class _LoopClient:
    """One event loop's async client, and the async generator that closes it with the loop."""

    client: CacheClientAsync
    keeper: AsyncGenerator[None, None]


class MomentoClients:
    """The sync client, its thread pool and one async client per event loop, for one cache."""

    def __init__(
        self,
        cache_name: str,
        configuration: Configuration,
        credentials: CredentialProvider,
        options: MomentoOptions,
    ) -> None:
        self.cache_name = cache_name
        #: Seconds one call may add to the caller's call, whatever it does inside.
        self.budget = float(options.timeout or deadline_of(configuration))
        self.max_concurrency = options.max_concurrency
        self._configuration = configuration
        self._credentials = credentials
        self._client_ttl = timedelta(seconds=options.default_ttl)
        self._cache_ready = not options.create_cache
        self._lock = threading.Lock()
        self._client: CacheClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._aclients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}

    def _ready(self, response: Any) -> None:
        if not isinstance(response, (CreateCache.Success, CreateCache.CacheAlreadyExists)):
            raise_error("create_cache", self.cache_name, response)
        self._cache_ready = True

    # -- sync side ----------------------------------------------------------------------------
    def sync(self) -> CacheClient:
        """The sync client, built on first use (and the cache created, with ``create_cache``)."""
        client = self._client
        if client is not None and self._cache_ready:
            return client
        with self._lock:
            if self._client is None:
                # The plain constructor connects lazily (``create(eager_connection_timeout=0)``
                # raises UnboundLocalError in momento 1.29.1).
                self._client = CacheClient(self._configuration, self._credentials, self._client_ttl)
            client = self._client
        if not self._cache_ready:  # outside the lock: threads never queue behind a slow create
            self._ready(client.create_cache(self.cache_name))
        return client

    def map(self, fn: Callable[[T], Any], items: list[T], started: float) -> list[Any]:
        """``fn`` over ``items`` on ``max_concurrency`` threads, waiting at most what is left of
        the budget of the call that began at ``started`` (work not begun by then is dropped)."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, "llmcache-momento")
            pool = self._pool
        futures = [pool.submit(fn, item) for item in items]
        left = self.budget - (time.monotonic() - started)
        _, pending = wait(futures, timeout=max(0.0, left))
        if pending:
            for future in pending:
                future.cancel()
            raise self.timed_out(f"batch of {len(items)}")
        return [future.result() for future in futures]

    def timed_out(self, op: str) -> MomentoUnavailable:
        """The error of a call ``op`` that did not finish within the budget."""
        return MomentoUnavailable(
            f"momento {op} on cache {self.cache_name!r}: no answer within the "
            f"{self.budget:g} s budget of one call",
            "TIMEOUT_ERROR",
        )

    def close(self) -> None:
        """Close the sync client, the thread pool and every loop's async client. Idempotent."""
        with self._lock:
            client, self._client = self._client, None
            pool, self._pool = self._pool, None
            aclients, self._aclients = self._aclients, {}
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.__exit__(None, None, None)
        for loop, entry in aclients.items():
            run_elsewhere(entry.keeper.aclose(), loop)

    # -- async side (one CacheClientAsync per event loop) -------------------------------------
    async def aclient(self) -> CacheClientAsync:
        """The running loop's async client (built on first use, closed with the loop)."""
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(loop)
        if entry is None:
            client = CacheClientAsync(self._configuration, self._credentials, self._client_ttl)
            keeper = self._keep(loop, client)
            entry = _LoopClient(client, keeper)
            with self._lock:
                for gone in [lp for lp in self._aclients if lp.is_closed()]:
                    del self._aclients[gone]  # closed without shutdown_asyncgens
                self._aclients[loop] = entry
            # Runs to the ``yield`` without suspending (nothing else can run on this loop
            # meanwhile); from here the loop closes the client when it shuts down.
            await keeper.__anext__()
        if not self._cache_ready:
            self._ready(await entry.client.create_cache(self.cache_name))
        return entry.client

    async def _keep(
        self, loop: asyncio.AbstractEventLoop, client: CacheClientAsync
    ) -> AsyncGenerator[None, None]:
        """Suspended at ``yield`` for the loop's life: ``asyncio.run`` finalises async generators
        when the loop shuts down (``shutdown_asyncgens``), which closes the client on its own loop
        and forgets it."""
        try:
            yield
        finally:
            with self._lock:
                entry = self._aclients.get(loop)
                if entry is not None and entry.client is client:
                    del self._aclients[loop]
            await client.__aexit__(None, None, None)

    async def bounded(self, op: str, work: Awaitable[T]) -> T:
        """Run ``work`` within the budget of one call; only the caller's own cancellation
        propagates as ``CancelledError``."""
        try:
            async with asyncio.timeout(self.budget):
                return await work
        except TimeoutError as exc:
            raise self.timed_out(op) from exc
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # the caller is being cancelled: let it go
            raise MomentoUnavailable(
                f"momento {op} on cache {self.cache_name!r} was cancelled inside the SDK "
                "(its client or channel went away)",
                "CANCELLED",
            ) from exc

    async def aclose_loop(self) -> None:
        """Close the running loop's async client here, on its own loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._aclients.pop(loop, None)
        if entry is not None:
            await entry.keeper.aclose()
