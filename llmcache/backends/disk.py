"""Disk backend on diskcache (SQLite + files): survives restarts, shared by processes.

Several processes may read and write one directory at once (SQLite's locking); entries expire by
TTL and the least recently stored go first when ``size_limit`` is reached.

- Values are raw bytes and are never unpickled: an entry another diskcache client pickled into
  the directory (a shared volume, another app) is a miss, not code run inside ``get``.
- Every wait for SQLite's lock is bounded by ``timeout`` (seconds); a longer wait is a
  :class:`~llmcache.errors.BackendError`, which the cache turns into a miss.
- Async: reads run inline on the event loop (a SQLite page-cache read of ~10-20 us that never
  waits for writers under WAL; cheaper than a thread hop); writes, clear and close, which may
  wait up to ``timeout`` for the lock, run in a worker thread.

Example::

    from llmcache import from_url

    cache = from_url("disk:///var/cache/llm?size_limit=2GB")
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import diskcache
from pydantic import ByteSize, Field

from llmcache.backends.base import Backend, BackendOptions
from llmcache.backends.capabilities import TTL, MaxLen, check_max_len
from llmcache.errors import BackendError, ConfigError, LLMCacheError

__all__ = ["DiskBackend", "DiskOptions"]

_LIST_MAGIC = b"llmcache-list\x01"  # a list is stored as one value: magic + (len, bytes)...
_LEN = struct.Struct(">I")
_NOT_OURS = object()  # what the safe Disk returns for a value or key it will not unpickle
# diskcache's ``Cache.get`` query for a raw (str) key, as its no-transaction fast path runs it.
_SELECT = (
    "SELECT mode, value FROM Cache WHERE key = ? AND raw = 1"
    " AND (expire_time IS NULL OR expire_time > ?)"
)
# Eviction policies whose reads write (an access time or count): diskcache's own get does that.
_GET_UPDATES = {
    name: policy["get"] is not None for name, policy in diskcache.core.EVICTION_POLICY.items()
}


class DiskOptions(BackendOptions):
    """Options of ``disk://`` (the directory is the URL's path)."""

    path: Path
    size_limit: ByteSize = Field(default=ByteSize(1 << 30), gt=0)
    default_ttl: float | None = Field(default=None, gt=0)
    # least-recently-stored never writes on a read, so hits stay cheap and concurrent; LRU
    # turns every hit into a write.
    eviction_policy: Literal["least-recently-stored", "least-recently-used", "none"] = (
        "least-recently-stored"
    )
    # Seconds an operation waits for SQLite's lock before it counts as a fault (cache-sized:
    # a busy writer elsewhere costs a call at most this, then it goes to the model).
    timeout: float = Field(default=0.5, gt=0, le=60)


class _RawDisk(diskcache.Disk):  # type: ignore[misc]
    """diskcache's Disk that never unpickles: pickled keys and values are not ours."""

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            return _NOT_OURS
        return super().fetch(mode, filename, value, read)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            return _NOT_OURS
        return super().get(key, raw)


def _path_of(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", ".", "..", "~"):
        raise ConfigError(
            f"ambiguous disk URL {url!r}: {parts.netloc!r} would be a relative directory; "
            f"write disk:///{parts.netloc}{parts.path} (absolute) or "
            f"disk://./{parts.netloc}{parts.path} (relative)"
        )
    raw = unquote(parts.netloc + parts.path)
    if not raw:
        raise ConfigError(f"invalid disk URL {url!r}: give a directory, e.g. disk:///tmp/llmcache")
    return Path(os.path.expanduser(raw))


class DiskBackend(Backend):
    """Stores bytes in a diskcache directory; namespaces are diskcache tags in one directory.

    Namespace views (:meth:`~llmcache.backends.base.Backend.in_namespace`) use their owner's
    ``diskcache.Cache`` (its SQLite connections and files); only the owner closes it.

    Capabilities: batch, atomic add, key listing, lists, info.
    """

    Options = DiskOptions
    options: DiskOptions

    def __init__(self, options: DiskOptions, *, namespace: str = "default") -> None:
        super().__init__(options, namespace=namespace)
        self.directory = Path(self.options.path)
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"cannot use {str(self.directory)!r} as a disk cache: it is a file")
        try:
            self._cache = diskcache.Cache(
                str(self.directory),
                size_limit=int(self.options.size_limit),
                eviction_policy=self.options.eviction_policy,
                timeout=self.options.timeout,
                tag_index=True,
                disk=_RawDisk,
            )
        except Exception as exc:  # OSError, sqlite3.OperationalError (read-only directory)
            raise ConfigError(
                f"cannot open disk cache at {str(self.directory)!r}: {exc} "
                "(it must be a writable directory)"
            ) from None

    @classmethod
    def _url_fields(cls, url: str) -> dict[str, Any]:
        return {"path": _path_of(url)}

    @contextlib.contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        """The one place diskcache/SQLite errors become :class:`BackendError`."""
        try:
            yield
        except LLMCacheError:
            raise
        except diskcache.Timeout as exc:
            raise BackendError(
                f"disk cache {op} at {str(self.directory)!r} timed out after "
                f"{self.options.timeout} s waiting for another writer's lock"
            ) from exc
        except Exception as exc:
            raise BackendError(f"disk cache {op} at {str(self.directory)!r} failed: {exc}") from exc

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        # Caller maps errors. retry=False everywhere: diskcache's retry loops without a bound.
        self._cache.set(self._key(key), bytes(value), expire=self._ttl(ttl), tag=self.namespace)

    # -- the five methods ---------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        full = self._key(key)
        with self._errors("read"):
            cache = self._cache
            if cache.statistics or _GET_UPDATES[cache.eviction_policy]:
                value = cache.get(full, default=None)  # diskcache's transaction path
            else:
                # diskcache's own read fast path, without its generic wrapping: one SELECT on
                # its per-thread connection (same busy timeout). A value stored inline as raw
                # bytes is the answer; anything else (a value kept in a file, text, a pickle)
                # goes through diskcache's Disk, which never unpickles.
                rows = cache._sql(_SELECT, (full, time.time())).fetchall()
                if not rows:
                    return None
                ((mode, data),) = rows
                if mode == diskcache.core.MODE_RAW and type(data) is bytes:
                    return data
                value = cache.get(full, default=None)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._errors("write"):
            self._put(key, value, ttl)

    def delete(self, key: str) -> None:
        with self._errors("delete"):
            self._cache.delete(self._key(key))

    def clear(self) -> None:
        with self._errors("clear"):
            self._cache.evict(self.namespace)

    def close(self) -> None:
        if self.is_view:  # the owner's diskcache handle: the owner closes it
            return
        self._cache.close()

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)  # inline: see the module docstring

    # -- capabilities -------------------------------------------------------------------------
    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        return [self.get(k) for k in keys]

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        with self._errors("write"), self._cache.transact():
            for key, value in items.items():
                self._put(key, value, ttl)

    def delete_many(self, keys: Iterable[str]) -> None:
        with self._errors("delete"), self._cache.transact():
            for key in keys:
                self._cache.delete(self._key(key))

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        return self.get_many(keys)

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await _in_thread(self.set_many, items, ttl)

    async def adelete_many(self, keys: Iterable[str]) -> None:
        await _in_thread(self.delete_many, list(keys))

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self._errors("write"):
            added: object = self._cache.add(
                self._key(key), bytes(value), expire=self._ttl(ttl), tag=self.namespace
            )
        return bool(added)

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return await _in_thread(self.add, key, value, ttl)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        # One directory holds every namespace (and maybe foreign keys): walk the keys in
        # order and keep ours. Expired entries are dropped first, so none is listed.
        start, full_prefix = len(self.key_prefix), self.key_prefix + prefix
        with self._errors("key listing"):
            self._cache.expire()
            keys = [
                k
                for k in self._cache.iterkeys()
                if isinstance(k, str) and k.startswith(full_prefix)
            ]
        for key in keys:
            yield key[start:]

    async def aiter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        for key in await _in_thread(lambda: list(self.iter_keys(prefix))):
            yield key

    def list_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        max_len = check_max_len(max_len)
        full = self._key(key)
        # Read-modify-write inside one SQLite transaction: other processes wait for it.
        with self._errors("list write"), self._cache.transact():
            elements = _unpack(self._cache.get(full, default=None), key)
            elements.extend(bytes(v) for v in values)
            if max_len is not None:
                del elements[:-max_len]
            self._put(key, _pack(elements), ttl)

    def list_range(self, key: str) -> list[bytes]:
        with self._errors("read"):
            value = self._cache.get(self._key(key), default=None)
        return _unpack(value, key)

    async def alist_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        await _in_thread(lambda: self.list_push(key, values, max_len=max_len, ttl=ttl))

    async def alist_range(self, key: str) -> list[bytes]:
        return self.list_range(key)

    def info(self) -> dict[str, Any]:
        with self._errors("info"):
            return {
                "directory": str(self.directory),
                "entries_all_namespaces": len(self._cache),
                "bytes_on_disk": self._cache.volume(),
            }


T = TypeVar("T")


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def _pack(elements: list[bytes]) -> bytes:
    return _LIST_MAGIC + b"".join(_LEN.pack(len(e)) + e for e in elements)


def _unpack(value: object, key: str) -> list[bytes]:
    if value is None:
        return []
    if not isinstance(value, bytes) or not value.startswith(_LIST_MAGIC):
        raise BackendError(f"disk cache entry {key!r} is not a list")
    elements, pos = [], len(_LIST_MAGIC)
    try:
        while pos < len(value):
            (size,) = _LEN.unpack_from(value, pos)
            pos += _LEN.size
            if pos + size > len(value):
                raise ValueError("element runs past the end")
            elements.append(value[pos : pos + size])
            pos += size
    except (struct.error, ValueError) as exc:
        raise BackendError(f"disk cache list {key!r} is corrupt: {exc}") from exc
    return elements
