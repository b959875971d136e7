"""Disk backend on diskcache (SQLite + files): survives restarts, shared by processes.

Several processes may read and write one directory at once (SQLite's locking); entries expire by
TTL and the least recently stored go first when ``size_limit`` is reached.

Example::

    from llmcache import from_url

    cache = from_url("disk:///var/cache/llm?size_limit=2GB")
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

import diskcache
from pydantic import ByteSize, Field

from llmcache.backends.base import Backend, BackendOptions, parse_options, url_options
from llmcache.errors import BackendError, ConfigError

__all__ = ["DiskBackend", "DiskOptions"]

_LIST_MAGIC = b"llmcache-list\x01"  # a list is stored as one value: magic + (len, bytes)...
_LEN = struct.Struct(">I")


class DiskOptions(BackendOptions):
    """Options of ``disk://``."""

    size_limit: ByteSize = Field(default=ByteSize(1 << 30), gt=0)
    default_ttl: float | None = Field(default=None, gt=0)
    # least-recently-stored never writes on a read, so hits stay cheap and concurrent; LRU
    # turns every hit into a write.
    eviction_policy: Literal["least-recently-stored", "least-recently-used", "none"] = (
        "least-recently-stored"
    )
    # Seconds a writer waits for SQLite's lock before the operation counts as a fault.
    timeout: float = Field(default=2.0, gt=0)


def _path_of(url: str) -> Path:
    parts = urlsplit(url)
    raw = unquote(parts.netloc + parts.path)
    if not raw:
        raise ConfigError(f"invalid disk URL {url!r}: give a directory, e.g. disk:///tmp/llmcache")
    return Path(os.path.expanduser(raw))


class DiskBackend(Backend):
    """Stores bytes in a diskcache directory; namespaces are diskcache tags in one directory."""

    schemes = ("disk",)

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        namespace: str = "default",
        size_limit: int = 1 << 30,
        default_ttl: float | None = None,
        eviction_policy: str = "least-recently-stored",
        timeout: float = 2.0,
    ) -> None:
        super().__init__(namespace=namespace, default_ttl=default_ttl)
        self.directory = Path(directory)
        try:
            self._cache = diskcache.Cache(
                str(self.directory),
                size_limit=int(size_limit),
                eviction_policy=eviction_policy,
                timeout=timeout,
                tag_index=True,
            )
        except OSError as exc:
            raise ConfigError(f"cannot open disk cache at {str(self.directory)!r}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "default", **options: Any) -> Self:
        opts = parse_options(DiskOptions, "disk", url_options(url, options))
        return cls(_path_of(url), namespace=namespace, **opts.model_dump())

    def get(self, key: str) -> bytes | None:
        try:
            value = self._cache.get(self.full_key(key), default=None, retry=True)
        except Exception as exc:
            raise BackendError(f"disk cache read failed: {exc}") from exc
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        expire = self.effective_ttl(ttl)
        try:
            self._cache.set(
                self.full_key(key), bytes(value), expire=expire, tag=self.namespace, retry=True
            )
        except Exception as exc:
            raise BackendError(f"disk cache write failed: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(self.full_key(key), retry=True)
        except Exception as exc:
            raise BackendError(f"disk cache delete failed: {exc}") from exc

    def clear(self) -> None:
        try:
            self._cache.evict(self.namespace, retry=True)
        except Exception as exc:
            raise BackendError(f"disk cache clear failed: {exc}") from exc

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        expire = self.effective_ttl(ttl)
        try:
            return bool(
                self._cache.add(
                    self.full_key(key), bytes(value), expire=expire, tag=self.namespace, retry=True
                )
            )
        except Exception as exc:
            raise BackendError(f"disk cache write failed: {exc}") from exc

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        # One directory holds every namespace (and maybe foreign keys): walk the keys in
        # order and keep ours. Expired entries are dropped first, so none is listed.
        start, full_prefix = len(self.key_prefix), self.key_prefix + prefix
        try:
            self._cache.expire(retry=True)
            keys = [
                k
                for k in self._cache.iterkeys()
                if isinstance(k, str) and k.startswith(full_prefix)
            ]
        except Exception as exc:
            raise BackendError(f"disk cache key listing failed: {exc}") from exc
        for key in keys:
            yield key[start:]

    def list_push(
        self,
        key: str,
        values: Sequence[bytes],
        *,
        max_len: int | None = None,
        ttl: float | None = None,
    ) -> None:
        max_len = self.check_max_len(max_len)
        expire, full = self.effective_ttl(ttl), self.full_key(key)
        try:
            # Read-modify-write inside one SQLite transaction: other processes wait for it.
            with self._cache.transact(retry=True):
                elements = _unpack(self._cache.get(full, default=None, retry=True), key)
                elements.extend(bytes(v) for v in values)
                if max_len is not None:
                    del elements[:-max_len]
                packed = _pack(elements)
                self._cache.set(full, packed, expire=expire, tag=self.namespace, retry=True)
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"disk cache list write failed: {exc}") from exc

    def list_range(self, key: str) -> list[bytes]:
        try:
            value = self._cache.get(self.full_key(key), default=None, retry=True)
        except Exception as exc:
            raise BackendError(f"disk cache read failed: {exc}") from exc
        return _unpack(value, key)

    def close(self) -> None:
        self._cache.close()

    async def aget(self, key: str) -> bytes | None:
        # A read is a SQLite page-cache lookup of ~10-20 us and never waits for writers (WAL):
        # cheaper inline than a thread hop (~50 us, and a queue under load). Writes, which can
        # wait for SQLite's lock, stay in worker threads (the base class default).
        return self.get(key)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "directory": str(self.directory),
            "entries_all_namespaces": len(self._cache),
            "bytes_on_disk": self._cache.volume(),
        }


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
