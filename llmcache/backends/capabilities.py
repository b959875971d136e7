"""Optional abilities of a backend, as small protocols beyond the five methods a side.

A backend implements a capability by having its methods (structural typing: no registration);
callers check ``isinstance(backend, Capability)`` or call :func:`require`, which names the
backend and what it lacks. Where an ability can be built on the five methods (batches), the
module-level helpers below do that for backends without a native one.

=================  =========================================  ==============================
capability         methods (sync / async twin)                 who has it
=================  =========================================  ==============================
``Batch``          ``get_many set_many delete_many``           memory, disk, Redis, Momento
``AtomicAdd``      ``add`` (set if absent; leases)              memory, disk, Redis, Momento
``KeyListing``     ``iter_keys``                                memory, disk, Redis
``Lists``          ``list_push list_range`` (chat history)     memory, disk, Redis, Momento
``ListsBatch``     ``list_range_many`` (several at once)        Redis, Momento
``Logs``           ``log_append_many log_tail_many``            Redis
``Inspectable``    ``info`` (entries, bytes; for ``stats``)    memory, disk, Redis, Momento
=================  =========================================  ==============================

Example::

    from llmcache.backends.capabilities import KeyListing, require

    listing = require(store, KeyListing, "list its keys")   # UnsupportedOperation on Momento
    keys = list(listing.iter_keys("doc:"))
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from llmcache.backends.base import Backend
from llmcache.errors import ConfigError, UnsupportedOperation

__all__ = [
    "TTL",
    "AtomicAdd",
    "Batch",
    "Inspectable",
    "KeyListing",
    "Lists",
    "ListsBatch",
    "Logs",
    "MaxLen",
    "adelete_many",
    "aget_many",
    "aset_many",
    "check_max_len",
    "delete_many",
    "get_many",
    "require",
    "set_many",
]

C = TypeVar("C")
#: Types of ``list_push``'s keyword arguments (kept short: every backend repeats the signature).
MaxLen = int | None
TTL = float | None


@runtime_checkable
class Batch(Protocol):
    """Several keys in one round trip (a Redis pipeline, concurrent Momento requests).

    - ``get_many`` returns values in the order of ``keys``, ``None`` for misses.
    - ``set_many`` stores every item with one ttl; ``delete_many`` ignores missing keys.
    """

    def get_many(self, keys: Iterable[str]) -> list[bytes | None]: ...
    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None: ...
    def delete_many(self, keys: Iterable[str]) -> None: ...
    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]: ...
    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None: ...
    async def adelete_many(self, keys: Iterable[str]) -> None: ...


@runtime_checkable
class AtomicAdd(Protocol):
    """Store a value only if the key is absent, atomically (SET NX PX, SetIfNotExists, add).

    - Returns whether this call stored it; an expired entry counts as absent.
    """

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool: ...
    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool: ...


@runtime_checkable
class KeyListing(Protocol):
    """The relative keys of this namespace that start with ``prefix`` (any order).

    - Expired entries are not listed; keys written while iterating may or may not be.
    """

    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...
    def aiter_keys(self, prefix: str = "") -> AsyncIterator[str]: ...


@runtime_checkable
class Lists(Protocol):
    """Append-only lists of bytes under a key (chat history).

    - ``list_push`` appends ``values`` in order, creating the list if absent; ``max_len`` then
      keeps only the newest elements; ``ttl`` renews the whole list's lifetime on each push.
    - One atomic step where the store allows it (Redis MULTI, disk transaction, memory lock);
      Momento appends one element per request.
    - ``list_range`` returns every element, oldest first; ``[]`` if absent or expired.
    - ``delete`` removes a list; ``clear`` removes this namespace's lists too.
    """

    def list_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None: ...
    def list_range(self, key: str) -> list[bytes]: ...
    async def alist_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None: ...
    async def alist_range(self, key: str) -> list[bytes]: ...


@runtime_checkable
class ListsBatch(Protocol):
    """:class:`Lists` read several at a time: one round trip (Redis: one pipeline), or
    concurrent requests within one call's budget (Momento)."""

    def list_range_many(self, keys: Sequence[str]) -> list[list[bytes]]: ...
    async def alist_range_many(self, keys: Sequence[str]) -> list[list[bytes]]: ...


@runtime_checkable
class Logs(Protocol):
    """Bounded byte logs: records appended to several keys at once, read back as one string per
    key (the semantic index's buckets: on Redis one string each, ``APPEND`` and ``GETRANGE``,
    so reading a bucket parses one reply, not one per element).

    - ``log_append_many`` appends ``record`` to every key, in one round trip; each log keeps at
      least its newest ``max_bytes`` (it may hold up to twice that before it is trimmed; a trim
      racing another append may drop that append); ``ttl`` renews each log's lifetime.
    - ``log_tail_many`` returns the newest ``max_bytes`` of each log, in the order of ``keys``
      (``b""`` if absent), in one round trip.
    - Logs live under namespaced keys like any entry: ``delete`` and ``clear`` remove them.
    """

    def log_append_many(
        self, keys: Sequence[str], record: bytes, *, max_bytes: int, ttl: TTL = None
    ) -> None: ...
    def log_tail_many(self, keys: Sequence[str], max_bytes: int) -> list[bytes]: ...
    async def alog_append_many(
        self, keys: Sequence[str], record: bytes, *, max_bytes: int, ttl: TTL = None
    ) -> None: ...
    async def alog_tail_many(self, keys: Sequence[str], max_bytes: int) -> list[bytes]: ...


@runtime_checkable
class Inspectable(Protocol):
    """What the store can say about this namespace (entries, bytes, ...), for ``stats``."""

    def info(self) -> dict[str, Any]: ...


def require(backend: Backend, capability: type[C], what: str) -> C:
    """``backend`` as ``capability``, or :class:`UnsupportedOperation` naming both."""
    if not isinstance(backend, capability):
        raise UnsupportedOperation(
            f"{type(backend).__name__} cannot {what} (no {capability.__name__} capability)"
        )
    return backend


def check_max_len(max_len: int | None) -> int | None:
    """``max_len`` if it is ``None`` or a positive int, else a :class:`ConfigError`."""
    if max_len is not None and (
        isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1
    ):
        raise ConfigError(f"invalid max_len {max_len!r}: must be a positive integer or None")
    return max_len


# -- batches on any backend: the native capability, else the five methods ---------------------
def get_many(backend: Backend, keys: Sequence[str]) -> list[bytes | None]:
    """Values for ``keys`` in order, in one round trip where the backend can."""
    if isinstance(backend, Batch):
        return backend.get_many(keys)
    return [backend.get(k) for k in keys]


def set_many(backend: Backend, items: Mapping[str, bytes], ttl: float | None = None) -> None:
    """Store ``items``, in one round trip where the backend can."""
    if isinstance(backend, Batch):
        backend.set_many(items, ttl)
        return
    for key, value in items.items():
        backend.set(key, value, ttl)


def delete_many(backend: Backend, keys: Sequence[str]) -> None:
    """Delete ``keys``, in one round trip where the backend can."""
    if isinstance(backend, Batch):
        backend.delete_many(keys)
        return
    for key in keys:
        backend.delete(key)


async def aget_many(backend: Backend, keys: Sequence[str]) -> list[bytes | None]:
    """Async :func:`get_many`."""
    if isinstance(backend, Batch):
        return await backend.aget_many(keys)
    return list(await asyncio.gather(*(backend.aget(k) for k in keys)))


async def aset_many(backend: Backend, items: Mapping[str, bytes], ttl: float | None = None) -> None:
    """Async :func:`set_many`."""
    if isinstance(backend, Batch):
        await backend.aset_many(items, ttl)
        return
    await asyncio.gather(*(backend.aset(k, v, ttl) for k, v in items.items()))


async def adelete_many(backend: Backend, keys: Sequence[str]) -> None:
    """Async :func:`delete_many`."""
    if isinstance(backend, Batch):
        await backend.adelete_many(keys)
        return
    await asyncio.gather(*(backend.adelete(k) for k in dict.fromkeys(keys)))
