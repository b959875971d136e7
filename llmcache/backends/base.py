"""The backend protocol: bytes in, bytes out.

A backend stores opaque ``bytes`` under ``str`` keys inside one *namespace*. Everything above it
(key policy, codec, stats, failure policy) lives in :class:`llmcache.LLMCache`, so a backend is
small: five methods a side plus optional capabilities with working defaults.

Rules every backend keeps (the contract suite in :mod:`llmcache.testing` checks them):

- ``get`` returns the exact bytes stored, or ``None`` for a miss (absent or expired key).
- ``set`` overwrites; ``ttl`` is in seconds, ``None`` means the backend's ``default_ttl``
  (which may itself be ``None``: no expiry, where the store allows it).
- ``delete`` of a missing key is not an error.
- ``clear`` removes only this backend's namespace, never other namespaces or foreign keys.
- A driver failure raises :class:`~llmcache.errors.BackendError` chained ``from`` the driver
  error; a missing driver raises :class:`~llmcache.errors.BackendUnavailable` naming the extra.
- Optional capabilities that cannot be built on the five methods (``iter_keys``, the list
  operations ``list_push``/``list_range`` behind chat history) raise
  :class:`~llmcache.errors.UnsupportedOperation` by default, naming the backend.
- Keys given to a backend are relative; the backend prefixes them with its namespace
  (``full_key``), so two namespaces never see each other's entries.

Example::

    from llmcache.backends.memory import MemoryBackend

    with MemoryBackend(namespace="demo") as store:
        store.set("k", b"v", ttl=60)
        assert store.get("k") == b"v"
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from llmcache.errors import ConfigError, UnsupportedOperation

__all__ = ["Backend", "BackendOptions", "check_namespace", "parse_options", "url_options"]

# Namespaces become part of store key names (and Momento cache names): keep them to a safe
# alphabet so no namespace can contain another's prefix or a glob character used by SCAN.
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
KEY_PREFIX = "llmcache"


class BackendOptions(BaseModel):
    """Typed options of a backend: URL query parameters and keyword arguments.

    Subclasses add fields; unknown options are rejected with the list of valid ones.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=BackendOptions)


def parse_options(
    model: type[OptionsT], scheme: str, values: Mapping[str, Any]
) -> OptionsT:
    """Validate ``values`` against ``model``; raise :class:`ConfigError` naming field and value."""
    valid = sorted(model.model_fields)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for {scheme}:// backend; "
            f"valid options: {', '.join(valid) or '(none)'}"
        )
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "?"
        raise ConfigError(
            f"invalid value {values.get(field, err.get('input'))!r} for option {field!r} "
            f"of {scheme}:// backend: {err['msg']}"
        ) from None


def url_options(url: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters of ``url`` as a dict, updated with keyword ``overrides``.

    A parameter given twice in the URL is a :class:`ConfigError` (which one would win is a guess).
    """
    values: dict[str, Any] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name in values:
            raise ConfigError(f"option {name!r} appears twice in cache URL {url!r}")
        values[name] = value
    values.update(overrides)
    return values


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is usable in key names, else raise :class:`ConfigError`."""
    if not _NAMESPACE_RE.match(namespace):
        raise ConfigError(
            f"invalid namespace {namespace!r}: use 1-64 characters from A-Z a-z 0-9 _ . -"
        )
    return namespace


class Backend(ABC):
    """Stores bytes under keys in one namespace; sync and async sides.

    Subclasses implement the five sync methods and, where the driver has a native async API,
    the five async twins (the defaults run the sync method in a worker thread).
    """

    #: URL schemes this class serves (informational; the registry maps schemes to classes).
    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, namespace: str = "default", default_ttl: float | None = None) -> None:
        self.namespace = check_namespace(namespace)
        self.default_ttl = default_ttl
        self.key_prefix = f"{KEY_PREFIX}:{namespace}:"

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, *, namespace: str = "default", **options: Any) -> Self:
        """Build the backend from a URL whose query string holds typed options."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a URL")

    @classmethod
    def settings_options(cls, settings: Any) -> dict[str, Any]:
        """Options this backend takes from :class:`llmcache.Settings` (secrets, endpoints)."""
        return {}

    def full_key(self, key: str) -> str:
        """The store key for a relative key: namespace prefix + key."""
        return self.key_prefix + key

    def effective_ttl(self, ttl: float | None) -> float | None:
        """``ttl`` if given, else the backend default; a non-positive ttl is a config error."""
        ttl = self.default_ttl if ttl is None else ttl
        if ttl is not None and ttl <= 0:
            raise ConfigError(f"invalid ttl {ttl!r}: must be a positive number of seconds")
        return ttl

    # -- the five sync methods ----------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """Return the bytes stored under ``key``, or ``None`` on a miss."""

    @abstractmethod
    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` (overwrite), expiring after ``ttl`` seconds."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every entry of this namespace, and nothing else."""

    def close(self) -> None:  # noqa: B027 - optional hook, stores without connections skip it
        """Release connections and files. Idempotent."""

    # -- the async twins (default: the sync method in a worker thread) -------------------------
    async def aget(self, key: str) -> bytes | None:
        """Async :meth:`get`."""
        return await asyncio.to_thread(self.get, key)

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Async :meth:`set`."""
        await asyncio.to_thread(self.set, key, value, ttl)

    async def adelete(self, key: str) -> None:
        """Async :meth:`delete`."""
        await asyncio.to_thread(self.delete, key)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await asyncio.to_thread(self.clear)

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await asyncio.to_thread(self.close)

    # -- optional capabilities, with defaults built on the five methods ------------------------
    def get_many(self, keys: Iterable[str]) -> list[bytes | None]:
        """Values for ``keys`` in order (``None`` for misses). Stores pipeline this."""
        return [self.get(k) for k in keys]

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store several values. Stores pipeline this."""
        for k, v in items.items():
            self.set(k, v, ttl)

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored.

        The default is not atomic; stores with a native set-if-absent override it.
        """
        if self.get(key) is not None:
            return False
        self.set(key, value, ttl)
        return True

    async def aget_many(self, keys: Iterable[str]) -> list[bytes | None]:
        """Async :meth:`get_many`."""
        keys = list(keys)
        return list(await asyncio.gather(*(self.aget(k) for k in keys)))

    async def aset_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Async :meth:`set_many`."""
        await asyncio.gather(*(self.aset(k, v, ttl) for k, v in items.items()))

    async def aadd(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Async :meth:`add`."""
        return await asyncio.to_thread(self.add, key, value, ttl)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """The relative keys of this namespace that start with ``prefix`` (any order).

        - Expired entries are not listed; keys written while iterating may or may not be.
        - Stores that cannot list keys raise :class:`UnsupportedOperation` (the default).
        """
        raise UnsupportedOperation(f"{type(self).__name__} cannot list its keys")

    async def aiter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Async :meth:`iter_keys` (default: the sync listing, collected in a worker thread)."""
        for key in await asyncio.to_thread(lambda: list(self.iter_keys(prefix))):
            yield key

    def list_push(
        self,
        key: str,
        values: Sequence[bytes],
        *,
        max_len: int | None = None,
        ttl: float | None = None,
    ) -> None:
        """Append ``values`` (in order) to the list under ``key``, creating it if absent.

        - ``max_len``: then keep only the newest ``max_len`` elements (the oldest go).
        - ``ttl``: the whole list expires ``ttl`` seconds after this push (each push renews it).
        - One atomic step where the store allows it (Redis MULTI, disk transaction, memory lock);
          Momento appends one element per request.
        - ``delete`` removes a list; ``clear`` removes this namespace's lists too.
        """
        raise UnsupportedOperation(f"{type(self).__name__} has no list operations (chat history)")

    def list_range(self, key: str) -> list[bytes]:
        """Every element of the list under ``key``, oldest first; ``[]`` if absent or expired."""
        raise UnsupportedOperation(f"{type(self).__name__} has no list operations (chat history)")

    async def alist_push(
        self,
        key: str,
        values: Sequence[bytes],
        *,
        max_len: int | None = None,
        ttl: float | None = None,
    ) -> None:
        """Async :meth:`list_push`."""
        await asyncio.to_thread(lambda: self.list_push(key, values, max_len=max_len, ttl=ttl))

    async def alist_range(self, key: str) -> list[bytes]:
        """Async :meth:`list_range`."""
        return await asyncio.to_thread(self.list_range, key)

    @staticmethod
    def check_max_len(max_len: int | None) -> int | None:
        """``max_len`` if it is ``None`` or a positive int, else a :class:`ConfigError`."""
        if max_len is not None and (isinstance(max_len, bool) or max_len < 1):
            raise ConfigError(f"invalid max_len {max_len!r}: must be a positive integer or None")
        return max_len

    def info(self) -> dict[str, Any]:
        """What the store can say about this namespace (entries, bytes, ...), for ``stats``."""
        return {"backend": type(self).__name__, "namespace": self.namespace}

    # -- context managers ---------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"
