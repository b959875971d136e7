"""The backend protocol: bytes in, bytes out, five methods a side.

A backend stores opaque ``bytes`` under ``str`` keys inside one *namespace*. Everything above it
(key policy, codec, stats, failure policy) lives in :class:`llmcache.LLMCache`; abilities beyond
the five methods (batches, key listing, lists, atomic add) are the capability protocols of
:mod:`llmcache.backends.capabilities`, implemented by the backends that can.

Rules every backend keeps (the contract suite in :mod:`llmcache.testing` checks them):

- ``get`` returns the exact bytes stored, or ``None`` for a miss (absent or expired key).
- ``set`` overwrites; ``ttl`` is in seconds, ``None`` means the backend's ``default_ttl``
  (which may itself be ``None``: no expiry, where the store allows it).
- ``delete`` of a missing key is not an error.
- ``clear`` removes only this backend's namespace, never other namespaces or foreign keys.
- Every wait is bounded by the backend's timeout.
- A driver failure raises :class:`~llmcache.errors.BackendError` chained ``from`` the driver
  error, at one mapping point per backend; a missing driver raises
  :class:`~llmcache.errors.BackendUnavailable` naming the extra.
- Keys given to a backend are relative; the backend prefixes them with its namespace, so two
  namespaces never see each other's entries.

A backend is built from its typed options: ``Backend(options, namespace=...)``, or from a URL
with :meth:`Backend.from_url` (the query string holds the options).

Namespace views: :meth:`Backend.in_namespace` returns the same store seen under another
namespace, sharing the backend's connections, pools, clients and files (no new pool per call).
A view stores exactly the keys a backend built with that namespace on the same store would, so
the two see each other's entries. The backend that was *built* owns the shared resources:
closing a view closes nothing; closing the owner closes them for every view. The owner keeps its
most recently used views (at most :data:`VIEW_CACHE_SIZE`), so asking again for a namespace is a
dict lookup.

Example::

    from llmcache.backends.memory import MemoryBackend, MemoryOptions

    with MemoryBackend(MemoryOptions(max_entries=100), namespace="demo") as store:
        store.set("k", b"v", ttl=60)
        assert store.get("k") == b"v"
"""

from __future__ import annotations

import asyncio
import copy
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from llmcache.errors import ConfigError

__all__ = [
    "VIEW_CACHE_SIZE",
    "Backend",
    "BackendOptions",
    "check_namespace",
    "describe",
    "field_error",
    "option_env",
    "parse_options",
    "url_options",
]

# Namespaces become part of store key names (and Momento cache names): keep them to a safe
# alphabet so no namespace can contain another's prefix or a glob character used by SCAN.
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
KEY_PREFIX = "llmcache"
#: How many namespace views a backend keeps for reuse (least recently asked for go first; a view
#: that goes stays valid, it is only no longer handed out again).
VIEW_CACHE_SIZE = 128


class BackendOptions(BaseModel):
    """Typed options of a backend: URL query parameters and keyword arguments.

    Subclasses add fields; unknown options are rejected with the list of valid ones. A field may
    declare the environment variables that set it (secrets, endpoints) with
    ``Field(json_schema_extra={"env": ["LLMCACHE_X_PASSWORD"]})``: :mod:`llmcache.config` reads
    them, so a plug-in backend declares its own secrets the same way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_ttl: float | None = None


OptionsT = TypeVar("OptionsT", bound=BackendOptions)


def option_env(model: type[BackendOptions]) -> dict[str, list[str]]:
    """Field → the environment variables that may set it, as the options model declares."""
    found: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        env = extra.get("env") if isinstance(extra, dict) else None
        if isinstance(env, list | tuple) and env:
            found[name] = [str(e) for e in env]
    return found


def field_error(exc: ValidationError, values: Mapping[str, Any]) -> tuple[str, Any, str]:
    """(field, value, message) of a pydantic error: what a ConfigError names."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "?"
    value = values.get(field, err.get("input"))
    return field, value, err["msg"]


def parse_options(model: type[OptionsT], scheme: str, values: Mapping[str, Any]) -> OptionsT:
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
        field, value, msg = field_error(exc, values)
        if model.model_fields.get(field) is not None and _is_secret(model, field):
            value = "***"
        raise ConfigError(
            f"invalid value {value!r} for option {field!r} of {scheme}:// backend: {msg}"
        ) from None


def _is_secret(model: type[BackendOptions], field: str) -> bool:
    annotation = str(model.model_fields[field].annotation)
    return "SecretStr" in annotation


def url_options(url: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters of ``url`` as a dict, updated with keyword ``overrides``.

    A parameter given twice in the URL is a :class:`ConfigError` (which one would win is a guess).
    """
    values: dict[str, Any] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name in values:
            raise ConfigError(f"option {name!r} appears twice in the cache URL")
        values[name] = value
    values.update(overrides)
    return values


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is usable in key names, else raise :class:`ConfigError`."""
    if not isinstance(namespace, str) or not _NAMESPACE_RE.match(namespace):
        raise ConfigError(
            f"invalid namespace {namespace!r}: use 1-64 characters from A-Z a-z 0-9 _ . -"
        )
    return namespace


class Backend(ABC):
    """Stores bytes under keys in one namespace; five methods a sync side, five async.

    Subclasses implement the five sync methods and, where the driver has a native async API,
    the five async twins (the defaults run the sync method in a worker thread).
    """

    #: The typed options this backend is built from (a subclass of :class:`BackendOptions`).
    Options: ClassVar[type[BackendOptions]] = BackendOptions

    def __init__(
        self, options: BackendOptions | None = None, *, namespace: str = "default"
    ) -> None:
        self.options = options if options is not None else self.Options()
        if not isinstance(self.options, self.Options):
            raise ConfigError(
                f"{type(self).__name__} takes {self.Options.__name__}, "
                f"not {type(self.options).__name__}"
            )
        self.namespace = check_namespace(namespace)
        self.default_ttl = self.options.default_ttl
        self.key_prefix = f"{KEY_PREFIX}:{namespace}:"
        # Namespace views (see in_namespace): the owner of the shared resources (None: this
        # backend owns them), and the owner's recently made views by namespace.
        self._owner: Backend | None = None
        self._views: OrderedDict[str, Backend] = OrderedDict()
        self._views_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "default", **options: Any) -> Self:
        """Build the backend from a URL whose query string holds typed options.

        Keyword ``options`` override the URL's query parameters; fields the URL itself carries
        (a path, a host) come from :meth:`_url_fields`.
        """
        scheme = urlsplit(url).scheme.lower()
        values = {**cls._url_fields(url), **url_options(url, options)}
        return cls(parse_options(cls.Options, scheme, values), namespace=namespace)

    @classmethod
    def _url_fields(cls, url: str) -> dict[str, Any]:
        """Options the URL names outside its query string (override in subclasses)."""
        return {}

    # -- namespace views ----------------------------------------------------------------------
    @property
    def is_view(self) -> bool:
        """Whether this backend is a view made by :meth:`in_namespace` (it owns no resources)."""
        return self._owner is not None

    @property
    def owner(self) -> Backend:
        """The backend that owns the connections this one uses: itself unless it is a view."""
        return self._owner if self._owner is not None else self

    def in_namespace(self, namespace: str) -> Self:
        """This store seen under ``namespace``, on this backend's connections.

        ``in_namespace(self.namespace)`` is ``self``; an invalid name is a :class:`ConfigError`.
        The view reads, writes, deletes and clears only ``namespace``, exactly as a backend built
        with that namespace on the same store would (they see each other's entries), and offers
        the same capabilities. It shares this backend's connections, pools, clients and files,
        including ones not created yet. ``close``/``aclose`` of a view release nothing: the
        backend that was built owns the resources, and closing it closes them for every view
        (a view used after that reconnects, as its owner would). A view of a view is a view of
        the owner. The owner keeps its last :data:`VIEW_CACHE_SIZE` views, so asking again is
        cheap, and two views of one namespace share that namespace's state (Momento's
        generation).
        """
        namespace = check_namespace(namespace)
        if namespace == self.namespace:
            return self
        owner = self.owner
        with owner._views_lock:
            view = owner._views.get(namespace)
            if view is None:
                view = owner._views[namespace] = owner._make_view(namespace)
                while len(owner._views) > VIEW_CACHE_SIZE:
                    owner._views.popitem(last=False)
            else:
                owner._views.move_to_end(namespace)
        return view  # type: ignore[return-value]  # the owner's class is this class

    def _make_view(self, namespace: str) -> Self:
        """A view of this (owning) backend under ``namespace``: a shallow copy, then
        :meth:`_init_view`.

        The copy shares every attribute with its owner, so a backend's shared resources must be
        objects created in ``__init__`` and never re-bound afterwards (a client created lazily
        lives in a holder object both point to, not in an attribute set on first use).
        Override :meth:`_init_view` for state that belongs to one namespace.
        """
        view = copy.copy(self)
        view.namespace = namespace
        view.key_prefix = f"{KEY_PREFIX}:{namespace}:"
        view._owner = self
        view._views = OrderedDict()  # unused: in_namespace on a view goes to the owner
        view._init_view()
        return view

    def _init_view(self) -> None:  # noqa: B027 - optional hook
        """Set up the per-namespace state of a view just copied from its owner (``self.owner``)."""

    def _key(self, key: str) -> str:
        """The store key for a relative key: namespace prefix + key."""
        return self.key_prefix + key

    def _ttl(self, ttl: float | None) -> float | None:
        """``ttl`` if given, else the backend default; a non-positive ttl is a config error."""
        ttl = self.default_ttl if ttl is None else ttl
        if ttl is not None and not ttl > 0:
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
        """Release connections and files. Idempotent. On a view (:meth:`in_namespace`), nothing:
        the owner's resources stay open for it and its other views."""

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


def describe(backend: Backend) -> dict[str, Any]:
    """What a backend can say about its namespace, for ``stats`` (see ``Inspectable``)."""
    from llmcache.backends.capabilities import Inspectable

    base = {"backend": type(backend).__name__, "namespace": backend.namespace}
    if isinstance(backend, Inspectable):
        return {**base, **backend.info()}
    return base
