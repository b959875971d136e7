"""One backend seen through its sync or its async methods, with one async API, for the contract.

Also the helpers server-backed tests use: :func:`server_missing`, :func:`wait_until`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import pytest

from llmcache.backends import capabilities as cap
from llmcache.backends.base import Backend
from llmcache.errors import UnsupportedOperation

__all__ = ["REQUIRE_SERVERS_ENV", "ForeignKeys", "Ops", "server_missing", "wait_until"]

REQUIRE_SERVERS_ENV = "LLMCACHE_REQUIRE_SERVERS"
C = TypeVar("C")


class ForeignKeys(Protocol):
    """Raw access to a backend's store that bypasses llmcache: no namespace, no key prefix.

    Build it from the server's address with the driver's own client (never the backend's
    private one); what it writes is a key some other user of the store owns.
    """

    def write_foreign(self, key: str, value: bytes) -> None:
        """Store ``value`` under the store key ``key`` exactly as given."""

    def read_foreign(self, key: str) -> bytes | None:
        """The value under the store key ``key``, or ``None``."""


class Ops:
    """One backend seen through either its sync or its async methods, with one async API."""

    def __init__(self, backend: Backend, mode: str) -> None:
        self.backend = backend
        self.mode = mode

    async def get(self, key: str) -> bytes | None:
        if self.mode == "sync":
            return self.backend.get(key)
        return await self.backend.aget(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if self.mode == "sync":
            self.backend.set(key, value, ttl)
        else:
            await self.backend.aset(key, value, ttl)

    async def delete(self, key: str) -> None:
        if self.mode == "sync":
            self.backend.delete(key)
        else:
            await self.backend.adelete(key)

    async def clear(self) -> None:
        if self.mode == "sync":
            self.backend.clear()
        else:
            await self.backend.aclear()

    def _capable(self, capability: type[C], what: str) -> C:
        """The backend as ``capability``; skips the test when the backend lacks it."""
        try:
            return cap.require(self.backend, capability, what)
        except UnsupportedOperation as exc:
            pytest.skip(f"optional capability not supported: {exc}")

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        batch = self._capable(cap.Batch, "batch")
        if self.mode == "sync":
            return batch.get_many(keys)
        return await batch.aget_many(keys)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        batch = self._capable(cap.Batch, "batch")
        if self.mode == "sync":
            batch.set_many(items, ttl)
        else:
            await batch.aset_many(items, ttl)

    async def delete_many(self, keys: list[str]) -> None:
        batch = self._capable(cap.Batch, "batch")
        if self.mode == "sync":
            batch.delete_many(keys)
        else:
            await batch.adelete_many(keys)

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        adder = self._capable(cap.AtomicAdd, "add atomically")
        if self.mode == "sync":
            return adder.add(key, value, ttl)
        return await adder.aadd(key, value, ttl)

    async def iter_keys(self, prefix: str = "") -> list[str]:
        """The listed keys, sorted; skips the test when the backend cannot list keys."""
        listing = self._capable(cap.KeyListing, "list keys")
        if self.mode == "sync":
            return sorted(listing.iter_keys(prefix))
        return sorted([k async for k in listing.aiter_keys(prefix)])

    async def list_push(
        self, key: str, values: list[bytes], max_len: int | None = None, ttl: float | None = None
    ) -> None:
        """Append to a list; skips the test when the backend has no list operations."""
        lists = self._capable(cap.Lists, "keep lists")
        if self.mode == "sync":
            lists.list_push(key, values, max_len=max_len, ttl=ttl)
        else:
            await lists.alist_push(key, values, max_len=max_len, ttl=ttl)

    async def list_range(self, key: str) -> list[bytes]:
        lists = self._capable(cap.Lists, "keep lists")
        if self.mode == "sync":
            return lists.list_range(key)
        return await lists.alist_range(key)

    async def close(self) -> None:
        if self.mode == "sync":
            self.backend.close()
        else:
            await self.backend.aclose()


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def server_missing(reason: str) -> None:
    """Skip the current test because a server cannot be started, or fail it in CI.

    When ``LLMCACHE_REQUIRE_SERVERS=1`` (CI sets it) a missing server is a failure, so a green run
    always means the server-backed tests really ran.
    """
    if os.environ.get(REQUIRE_SERVERS_ENV, "") not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} ({REQUIRE_SERVERS_ENV} is set, so this is a failure)")
    pytest.skip(reason)
