"""Single-flight: concurrent identical misses make one model call.

Callers that missed the same key at the same time elect one *leader*; the leader calls the model
(the caller's ``compute``, which also stores the answer) and the others take its answer.

- **In process** (threads and asyncio tasks, any mix, any number of event loops): the first
  caller of a key leads; the others wait on its flight, then look the key up once and take the
  stored answer, or a ``copy.deepcopy`` of the leader's value when nothing was stored.
- **Across processes and hosts**: the in-process leader takes a *lease* in the store,
  ``"lease:" + key`` added atomically (Redis ``SET NX PX``, Momento ``SetIfNotExists``,
  diskcache ``add``, the memory lock) with ``ttl=lease_ttl``. A process that finds the lease
  held polls the key every ``poll`` seconds (backing off to :data:`POLL_CAP`) until the answer
  appears, the lease goes (it takes it and leads) or ``lease_ttl`` has passed (it calls the model
  itself: the leader died, hung or is slower than ``lease_ttl``).

The promise: single-flight never fails a call and never waits unboundedly. A store fault on the
lease or a lookup is counted (``stats["errors"]``), logged at debug, and the caller calls the model
itself. No caller waits for another longer than ``lease_ttl`` (plus one poll). A leader's
exception (or cancellation) is never shown to its waiters: they retry, and one of them leads. The
exception ``compute`` raises reaches its own caller unchanged.

Example::

    from llmcache.backends.memory import MemoryBackend
    from llmcache.singleflight import SingleFlight

    store = MemoryBackend()
    flight = SingleFlight(store, lease_ttl=30)

    def compute() -> bytes:
        answer = b"42"  # the model call
        store.set("k", answer)
        return answer

    answer = store.get("k") or flight.run("k", lambda: store.get("k"), compute)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from llmcache import _defaults
from llmcache._breaker import CircuitBreaker
from llmcache._guard import as_fault
from llmcache.backends.base import Backend
from llmcache.backends.capabilities import AtomicAdd
from llmcache.errors import ConfigError
from llmcache.stats import Stats

__all__ = ["LEASE_PREFIX", "POLL_CAP", "SingleFlight"]

T = TypeVar("T")
log = logging.getLogger("llmcache")

#: The lease of a key lives under this prefix + the key, in the same backend and namespace.
LEASE_PREFIX = "lease:"
#: Seconds: a lease poll's backoff stops growing here (the first poll waits ``poll``).
POLL_CAP = 0.25
#: Each poll waits this many times longer than the one before (gentle: 50, 75, 112, ... ms).
BACKOFF = 1.5
#: Fraction of ``lease_ttl``: a lease held this close to its expiry may have expired and been
#: taken by another leader, so it is deleted only after reading back our token (see _release).
RELEASE_MARGIN = 0.1
#: Bytes of randomness in a lease token.
TOKEN_BYTES = 16

# Tasks deleting a cancelled leader's lease: referenced until done (the loop keeps only weak
# references to tasks).
_releasing: set[asyncio.Task[None]] = set()


def _positive(name: str, value: float) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value > 0):
        raise ConfigError(f"invalid {name} {value!r}: must be a positive number of seconds")
    return float(value)


class _Flight:
    """One in-process leader's call for a key, and the callers waiting on it.

    Thread waiters block on ``event`` (made by the first of them: most flights have no waiter,
    and an Event costs the cold path ~4 µs); asyncio waiters register a future of their own loop,
    which the leader resolves with ``call_soon_threadsafe``: one flight serves threads and any
    number of event loops, no waiter polls and none blocks its loop. ``done`` and the waiters
    change only under the SingleFlight's lock.
    """

    __slots__ = ("done", "event", "joined", "ok", "value", "waiters")

    def __init__(self) -> None:
        self.done = False
        self.joined = 0  # callers that found this flight running (they will read ``value``)
        self.event: threading.Event | None = None
        self.ok = False
        self.value: Any = None
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []


class _Hit:
    """Another process's leader stored the answer while we polled."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Lease:
    """Our store lease (``token``, taken at monotonic ``taken``), or none held (``token=None``)."""

    __slots__ = ("taken", "token")

    def __init__(self, token: bytes | None = None, taken: float = 0.0) -> None:
        self.token = token
        self.taken = taken


_NO_LEASE = _Lease()
#: What :meth:`SingleFlight.claim` hands out (opaque to callers).
Lease = _Lease
_UNSHAREABLE = object()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out or was cancelled has gone
        future.set_result(None)


class SingleFlight:
    """Coalesces concurrent misses of one key into one ``compute`` call (see the module doc).

    - ``backend``: where the lease lives (``"lease:" + key``, via :class:`AtomicAdd`); ``None``
      or a backend without ``add`` coalesces in this process only.
    - ``lease_ttl``: seconds a lease lives, and the longest any caller waits for another's model
      call; make it longer than your slowest model call.
    - ``poll``: seconds between looks at the store while another process holds the lease.
    - ``stats``: counts ``coalesced`` (callers served by another's call), ``lease_expired``
      (callers that stopped waiting after ``lease_ttl``), ``errors`` (store faults) and
      ``skipped_after_fault`` (leases not tried because ``store_failing`` said so).
    - ``store_failing``: ``store_failing(key)`` is True when the store is failing for this key
      (:meth:`LLMCache.store_failing`: its lookup just failed, or the cache's breaker is not
      closed): the lease is not tried then, so a hung store costs a call one timeout at most.
    """

    def __init__(
        self,
        backend: Backend | None,
        *,
        lease_ttl: float = _defaults.LEASE_TTL,
        poll: float = _defaults.LEASE_POLL,
        stats: Stats | None = None,
        store_failing: Callable[[str], bool] | None = None,
    ) -> None:
        self.lease_ttl = _positive("lease_ttl", lease_ttl)
        self.poll = _positive("poll", poll)
        self.backend = backend
        self.stats = stats
        self._store_failing = store_failing
        # Checked once: a runtime protocol check costs microseconds per call.
        self._adder: AtomicAdd | None = backend if isinstance(backend, AtomicAdd) else None
        # Lease faults trip a breaker of our own: while the store keeps failing, misses skip
        # the lease (coalescing in process only) instead of paying a store timeout each.
        self._breaker = CircuitBreaker(_defaults.BREAKER_FAILURES, _defaults.BREAKER_COOLDOWN)
        self._poll_cap = max(self.poll, POLL_CAP)
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        # Our leases whose delete failed: still ours until they may have expired, so our next
        # leader of that key takes it back instead of waiting ``lease_ttl`` for itself.
        self._orphans: dict[str, _Lease] = {}

    # -- the sync side ---------------------------------------------------------------------------
    def run(self, key: str, lookup: Callable[[], T | None], compute: Callable[[], T]) -> T:
        """The answer for ``key`` after a miss: ``compute()``'s, or another caller's.

        ``lookup`` reads the answer from the store (``None``: a miss); ``compute`` calls the model
        and stores its answer. Its exceptions reach this caller unchanged.
        """
        deadline = time.monotonic() + self.lease_ttl
        while True:
            flight, leading = self._join(key)
            if leading:
                return self._lead(key, flight, lookup, compute, deadline)
            if not self._wait_flight(flight, deadline):
                self._count("lease_expired")
                return compute()
            if flight.ok:
                served = self._share(flight, self._lookup(lookup))
                return compute() if served is _UNSHAREABLE else cast(T, served)
            # The leader raised or was cancelled: try again (one of us leads), same deadline.

    # -- split phase: hosts that look up and store in separate calls ------------------------------
    def claim(self, key: str, lookup: Callable[[], T | None]) -> tuple[T | None, Lease | None]:
        """For a host that looks up and stores in separate calls (LangChain's global cache):
        ``(hit, None)`` when another caller's answer arrived while this one waited;
        ``(None, lease)`` when this caller calls the model — pass ``lease`` to :meth:`release`
        once the answer is stored (a lease never released expires after ``lease_ttl``, and
        waiters then call the model themselves). Store lease only: in-process callers wait on
        it too, polling."""
        got = self._take(key, lookup, time.monotonic() + self.lease_ttl)
        if isinstance(got, _Hit):
            self._count("coalesced")
            return got.value, None
        return None, got

    async def aclaim(
        self, key: str, lookup: Callable[[], Awaitable[T | None]]
    ) -> tuple[T | None, Lease | None]:
        """Async :meth:`claim`."""
        got = await self._atake(key, lookup, time.monotonic() + self.lease_ttl)
        if isinstance(got, _Hit):
            self._count("coalesced")
            return got.value, None
        return None, got

    def release(self, key: str, lease: Lease) -> None:
        """Give up the lease :meth:`claim` returned (never raises)."""
        self._release(key, lease)

    async def arelease(self, key: str, lease: Lease) -> None:
        """Async :meth:`release`."""
        await self._arelease_shielded(key, lease)

    def _lead(
        self,
        key: str,
        flight: _Flight,
        lookup: Callable[[], T | None],
        compute: Callable[[], T],
        deadline: float,
    ) -> T:
        ok, value = False, cast(Any, None)
        try:
            got = self._take(key, lookup, deadline)
            if isinstance(got, _Hit):
                self._count("coalesced")
                ok, value = True, got.value
                return cast(T, value)
            try:
                value = compute()
                ok = True
                return value
            finally:
                self._release(key, got)
        finally:
            self._finish(key, flight, ok, value)

    def _take(self, key: str, lookup: Callable[[], T | None], deadline: float) -> _Lease | _Hit:
        """Our store lease; or, while another holds it, polls until a hit, the lease is ours,
        or ``deadline`` (then no lease: the caller computes anyway)."""
        if self._adder is None or self._sick(key):
            return _NO_LEASE
        orphan = self._reclaim(key)
        if orphan is not None:
            return orphan
        token = os.urandom(TOKEN_BYTES)
        taken = time.monotonic()
        added = self._add(key, token)
        delay = self.poll
        while added is False:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._count("lease_expired")
                return _NO_LEASE
            time.sleep(min(delay, remaining))
            delay = min(delay * BACKOFF, self._poll_cap)
            try:
                hit = lookup()
            except BaseException as exc:
                self._fault("lookup", as_fault(exc))
                return _NO_LEASE
            if hit is not None:
                return _Hit(hit)
            taken = time.monotonic()
            added = self._add(key, token)
        return _Lease(token, taken) if added else _NO_LEASE

    def _add(self, key: str, token: bytes) -> bool | None:
        """Whether we took the lease; ``None`` on a store fault (counted)."""
        assert self._adder is not None
        if not self._breaker.allow():
            return None
        try:
            added = bool(self._adder.add(LEASE_PREFIX + key, token, ttl=self.lease_ttl))
        except BaseException as exc:
            self._fault("lease add", as_fault(exc))
            return None
        self._breaker.success()
        return added

    def _release(self, key: str, lease: _Lease) -> None:
        if lease.token is None or self.backend is None:
            return
        if not self._breaker.allow():
            self._orphan(key, lease)
            return
        try:
            if not self._maybe_lost(lease) or self.backend.get(LEASE_PREFIX + key) == lease.token:
                self.backend.delete(LEASE_PREFIX + key)
        except BaseException as exc:
            self._orphan(key, lease)  # first: our own cancellation re-raises below
            self._fault("lease delete", as_fault(exc))
        else:
            self._breaker.success()

    def _wait_flight(self, flight: _Flight, deadline: float) -> bool:
        """Wait for ``flight`` until ``deadline``; True when it finished."""
        with self._lock:
            if flight.done:
                return True
            if flight.event is None:
                flight.event = threading.Event()
            event = flight.event
        return event.wait(max(0.0, deadline - time.monotonic()))

    def _lookup(self, lookup: Callable[[], T | None]) -> T | None:
        try:
            return lookup()
        except BaseException as exc:
            self._fault("lookup", as_fault(exc))
            return None

    # -- the async side: the same steps, awaited -------------------------------------------------
    async def arun(
        self,
        key: str,
        lookup: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
    ) -> T:
        """Async :meth:`run`; waiting never blocks the event loop. Cancelling a leader releases
        its flight and its lease: the waiters go on without it."""
        deadline = time.monotonic() + self.lease_ttl
        while True:
            flight, leading = self._join(key)
            if leading:
                return await self._alead(key, flight, lookup, compute, deadline)
            if not await self._await_flight(flight, deadline):
                self._count("lease_expired")
                return await compute()
            if flight.ok:
                served = self._share(flight, await self._alookup(lookup))
                return await compute() if served is _UNSHAREABLE else cast(T, served)

    async def _alead(
        self,
        key: str,
        flight: _Flight,
        lookup: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
        deadline: float,
    ) -> T:
        ok, value = False, cast(Any, None)
        try:
            got = await self._atake(key, lookup, deadline)
            if isinstance(got, _Hit):
                self._count("coalesced")
                ok, value = True, got.value
                return cast(T, value)
            try:
                value = await compute()
                ok = True
                return value
            finally:
                if ok:
                    await self._arelease(key, got)
                else:  # compute raised or we are cancelled: a second cancel must not stop this
                    await self._arelease_shielded(key, got)
        finally:
            self._finish(key, flight, ok, value)

    async def _atake(
        self, key: str, lookup: Callable[[], Awaitable[T | None]], deadline: float
    ) -> _Lease | _Hit:
        if self._adder is None or self._sick(key):
            return _NO_LEASE
        orphan = self._reclaim(key)
        if orphan is not None:
            return orphan
        token = os.urandom(TOKEN_BYTES)
        taken = time.monotonic()
        added = await self._aadd(key, token)
        delay = self.poll
        while added is False:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._count("lease_expired")
                return _NO_LEASE
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * BACKOFF, self._poll_cap)
            try:
                hit = await lookup()
            except BaseException as exc:
                self._fault("lookup", as_fault(exc))
                return _NO_LEASE
            if hit is not None:
                return _Hit(hit)
            taken = time.monotonic()
            added = await self._aadd(key, token)
        return _Lease(token, taken) if added else _NO_LEASE

    async def _aadd(self, key: str, token: bytes) -> bool | None:
        assert self._adder is not None
        if not self._breaker.allow():
            return None
        try:
            added = bool(await self._adder.aadd(LEASE_PREFIX + key, token, ttl=self.lease_ttl))
        except BaseException as exc:
            self._fault("lease add", as_fault(exc))
            return None
        self._breaker.success()
        return added

    async def _arelease(self, key: str, lease: _Lease) -> None:
        if lease.token is None or self.backend is None:
            return
        if not self._breaker.allow():
            self._orphan(key, lease)
            return
        try:
            if (
                not self._maybe_lost(lease)
                or await self.backend.aget(LEASE_PREFIX + key) == lease.token
            ):
                await self.backend.adelete(LEASE_PREFIX + key)
        except BaseException as exc:
            self._orphan(key, lease)  # first: our own cancellation re-raises below
            self._fault("lease delete", as_fault(exc))
        else:
            self._breaker.success()

    async def _arelease_shielded(self, key: str, lease: _Lease) -> None:
        if lease.token is None:
            return
        task = asyncio.ensure_future(self._arelease(key, lease))
        _releasing.add(task)
        task.add_done_callback(_releasing.discard)
        await asyncio.shield(task)

    async def _alookup(self, lookup: Callable[[], Awaitable[T | None]]) -> T | None:
        try:
            return await lookup()
        except BaseException as exc:
            self._fault("lookup", as_fault(exc))
            return None

    async def _await_flight(self, flight: _Flight, deadline: float) -> bool:
        """Wait for ``flight`` until ``deadline``; True when it finished."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if flight.done:
                return True
            flight.waiters.append((loop, future))
        try:
            done, _ = await asyncio.wait({future}, timeout=max(0.0, deadline - time.monotonic()))
        finally:
            if not future.done():  # timed out or cancelled: the leader need not wake us
                with self._lock:
                    if (loop, future) in flight.waiters:
                        flight.waiters.remove((loop, future))
        return bool(done)

    # -- shared by both sides --------------------------------------------------------------------
    def _join(self, key: str) -> tuple[_Flight, bool]:
        """The flight of ``key``, and whether we lead it (it is new)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                flight.joined += 1
                return flight, False
            flight = self._flights[key] = _Flight()
            return flight, True

    def _finish(self, key: str, flight: _Flight, ok: bool, value: Any) -> None:
        """End ``flight`` (``ok``: with ``value``; else waiters retry) and wake its waiters.

        Waiters get a snapshot of ``value`` taken now, before the leader's caller has it: that
        caller may change its answer (LangChain stamps its run id on a cached message) while the
        waiters copy theirs, even in other threads.
        """
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]  # from here on no caller joins this flight
            shared = flight.joined > 0
        if ok and shared:
            value = self._copy(value)
        with self._lock:
            flight.ok, flight.value, flight.done = ok, value, True
            waiters, flight.waiters = flight.waiters, []
            if flight.event is not None:
                flight.event.set()
        here = _running_loop()
        for loop, future in waiters:
            if loop is here:  # no self-pipe write per waiter
                loop.call_soon(_wake, future)
                continue
            with contextlib.suppress(RuntimeError):  # a closed loop: its waiter is gone too
                loop.call_soon_threadsafe(_wake, future)

    def _share(self, flight: _Flight, hit: Any) -> Any:
        """What a waiter of a finished flight returns: the stored answer it just looked up, else
        a deep copy of the leader's value (no two callers share a mutable answer); counted."""
        if hit is None:
            hit = self._copy(flight.value)
            if hit is _UNSHAREABLE:
                return hit
        self._count("coalesced")
        return hit

    @staticmethod
    def _copy(value: Any) -> Any:
        if value is _UNSHAREABLE:
            return value
        try:
            return copy.deepcopy(value)
        except Exception as exc:  # an answer that cannot be copied: waiters compute their own
            log.debug("llmcache single-flight: the leader's answer cannot be copied: %s", exc)
            return _UNSHAREABLE

    def _orphan(self, key: str, lease: _Lease) -> None:
        with self._lock:
            for stale in [k for k, v in self._orphans.items() if self._maybe_lost(v)]:
                del self._orphans[stale]
            self._orphans[key] = lease

    def _reclaim(self, key: str) -> _Lease | None:
        """Our lease on ``key`` that we failed to delete, if it is surely still ours."""
        if not self._orphans:  # the common case: no lock
            return None
        with self._lock:
            lease = self._orphans.pop(key, None)
        return lease if lease is not None and not self._maybe_lost(lease) else None

    def _maybe_lost(self, lease: _Lease) -> bool:
        """Whether our lease may have expired (and been taken by another leader).

        Until then it is certainly ours (only its holder deletes it, ``add`` is atomic, and
        ``taken`` was read before the ``add`` was sent), so it is deleted without a round trip.
        Afterwards it is deleted only if it still holds our token: a read then a delete, not
        atomic, so a lease taken in between by another leader may be deleted (one more model
        call at worst, never a wrong answer).
        """
        return time.monotonic() - lease.taken >= self.lease_ttl * (1 - RELEASE_MARGIN)

    def _sick(self, key: str) -> bool:
        """The store is failing for this key: no lease (one more timeout), counted."""
        if self._store_failing is None or not self._store_failing(key):
            return False
        self._count("skipped_after_fault")
        return True

    def _count(self, name: str) -> None:
        if self.stats is not None:
            self.stats.incr(name)

    def _fault(self, op: str, exc: Exception) -> None:
        if op != "lookup":  # the caller's lookup has its own failure policy
            self._breaker.failure()
        if self.stats is not None:
            self.stats.incr("errors")
        log.debug("llmcache single-flight: %s failed (%r); the caller calls the model", op, exc)

    def __repr__(self) -> str:
        return f"SingleFlight({self.backend!r}, lease_ttl={self.lease_ttl}, poll={self.poll})"
