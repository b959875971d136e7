"""LangGraph adapter: a backend as LangGraph's node cache (``graph.compile(cache=...)``).

Example::

    from langgraph.types import CachePolicy
    from llmcache.adapters.langgraph import LangGraphCache

    builder.add_node("summarise", summarise, cache_policy=CachePolicy(ttl=3600))
    graph = builder.compile(cache=LangGraphCache.from_url("redis://localhost:6379/0"))

What LangGraph hands a cache: ``get(keys)`` / ``set(pairs)`` / ``clear(namespaces)`` and their
async twins, where a key is ``(namespace tuple, key string)`` and a pair's value is
``(node writes, ttl seconds or None)``. The node writes are ``(channel, value)`` pairs whose
values are whatever the node returned.

- **No pickle, ever.** Values are stored as tagged JSON inside llmcache's envelope
  (:mod:`llmcache.codec`: key check, bounded decode, AES-GCM when keys are configured). JSON
  types, tuples, sets, bytes, LangChain messages (an allowlist), ``Document``, LangGraph's
  ``Send``, pydantic models, dataclasses and enums are stored; classes are named in the data
  but never imported from it: a class is rebuilt only if it is in ``allowed_types`` or this
  process has stored one itself. A value that cannot be stored is not cached (``unstorable``,
  logged once); a stored value that does not decode, or that is not node writes in LangGraph's
  writes namespace, is a miss (``decode_errors``). The envelope's key check stops values moved
  between keys; only encryption (``encryption_key``) stops someone who can write to the store
  from forging a node's output outright, as with any cache.
- **Namespaces.** Each LangGraph namespace tuple is a namespace view of the backend
  (:meth:`~llmcache.backends.base.Backend.in_namespace`) named ``lg.<node>.<hash>``: the
  hash covers the backend's namespace and the whole tuple, so graphs, nodes and caches never
  share entries. ``clear(namespaces)`` clears those views only. ``clear()`` clears every
  namespace this cache (in any process sharing the store) wrote: each write registers its
  namespace tuple in a registry view ``lg-registry.<hash>`` (an atomic add, then a list push
  the first time), and ``clear()`` reads the registry, empties it, then clears each view.
- **TTL.** ``CachePolicy(ttl=seconds)`` is the entry's lifetime; ``ttl=None`` means this
  cache's ``ttl`` (default one day), not "forever".
- **Failure policy** (:mod:`llmcache._guard`): a store fault never fails the graph run, a
  ``get`` is a miss and a ``set`` is skipped, counted and logged once per burst;
  ``on_error="raise"`` raises :class:`~llmcache.errors.BackendError` instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

import orjson

try:
    from langgraph.cache.base import BaseCache, FullKey, Namespace
except ImportError as _missing:
    from llmcache.errors import install_line

    raise ImportError(
        f"llmcache.adapters.langgraph needs langgraph: {install_line('langgraph')}"
    ) from _missing

from llmcache import _defaults
from llmcache._breaker import CircuitBreaker
from llmcache._guard import Guard, OnError, as_fault, check_ttl
from llmcache.adapters._langgraph_values import CACHE_NS_WRITES, ValueCodec, node_writes
from llmcache.backends import capabilities as cap
from llmcache.backends.base import Backend
from llmcache.codec import Codec
from llmcache.config import Settings, encryption_keys, load_settings
from llmcache.errors import ConfigError
from llmcache.registry import backend_from_settings, create_backend
from llmcache.stats import Stats

__all__ = [
    "CACHE_NS_WRITES",
    "DEFAULT_NAMESPACE",
    "LangGraphCache",
    "ValueCodec",
    "namespace_name",
    "node_writes",
]

#: Namespace of ``from_url`` caches; ``from_settings`` uses ``<namespace setting>.langgraph``.
DEFAULT_NAMESPACE = "langgraph"
_REGISTRY_LIST = "namespaces"
_MARKER = "ns:"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")


# -- namespaces -------------------------------------------------------------------------------
def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=10).hexdigest()


def namespace_name(base: str, ns: Namespace) -> str:
    """The llmcache namespace holding LangGraph namespace ``ns`` for a cache on ``base``:
    ``lg.<last part, sanitised>.<hash of base and the whole tuple>`` (at most 55 chars)."""
    readable = _UNSAFE.sub("_", ns[-1] if ns else "").strip("_")[:30] or "root"
    return f"lg.{readable}.{_digest(base, orjson.dumps(list(ns)).decode())}"


def _registry_name(base: str) -> str:
    return f"lg-registry.{_digest(base, 'registry')}"


def _parse_registry(data: list[bytes]) -> list[Namespace]:
    """Namespace tuples from the registry list; anything else in it is skipped. Only tuples are
    stored, never namespace names: a forged entry can only name one of this cache's own."""
    found: list[Namespace] = []
    for item in data:
        try:
            parts = orjson.loads(item)
        except orjson.JSONDecodeError:
            continue
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            found.append(tuple(parts))
    return found


# -- the cache ----------------------------------------------------------------------------------
_Plan = dict[str, tuple[Namespace, list[tuple[FullKey, str]]]]
_Writes = dict[tuple[str, float | None], tuple[Namespace, dict[str, bytes]]]


class LangGraphCache(BaseCache[Any]):
    """LangGraph ``BaseCache`` on any llmcache backend, sync and native async.

    ``ttl``: seconds an entry lives when the node's ``CachePolicy`` gives none (default one
    day; ``None``: the backend's default). ``codec``: the envelope (encryption, bounded decode).
    ``allowed_types``: classes (pydantic models, dataclasses, enums) rebuilt from the store even
    before this process has stored one itself. LangGraph's ``serde`` is not used.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        codec: Codec | None = None,
        ttl: float | None = _defaults.TTL,
        on_error: OnError = "miss",
        breaker: CircuitBreaker | None = None,
        allowed_types: Iterable[type] = (),
    ) -> None:
        super().__init__()
        self.backend = backend
        self.codec = codec or Codec()
        self.values = ValueCodec(allowed_types)
        self.ttl = check_ttl(ttl)
        self.guard = Guard(backend, on_error=on_error, breaker=breaker, what="LangGraph cache")
        self.on_error: OnError = self.guard.on_error
        self.breaker = self.guard.breaker
        self._stats: Stats = self.guard.stats
        #: Where the namespaces this cache wrote are listed (for ``clear()``), apart from them.
        self.registry = backend.in_namespace(_registry_name(backend.namespace))
        shared = isinstance(self.registry, cap.Lists) and isinstance(self.registry, cap.AtomicAdd)
        self._lists: cap.Lists | None = self.registry if shared else None  # type: ignore[assignment]
        self._adder: cap.AtomicAdd | None = self.registry if shared else None  # type: ignore[assignment]
        # Namespaces this process wrote: the registry where the store cannot keep one.
        self._written: set[Namespace] = set()
        self._written_lock = threading.Lock()  # LangGraph writes from its background threads

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        ttl: float | None = _defaults.TTL,
        on_error: OnError = "miss",
        encryption_key: str | None = None,
        allowed_types: Iterable[type] = (),
        **options: Any,
    ) -> Self:
        """A cache on the backend named by ``url``; ``options`` go to the backend."""
        backend = create_backend(url, namespace=namespace, **options)
        codec = Codec(encryption_keys=[encryption_key] if encryption_key else ())
        return cls(backend, codec=codec, ttl=ttl, on_error=on_error, allowed_types=allowed_types)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        namespace: str | None = None,
        allowed_types: Iterable[type] = (),
    ) -> Self:
        """A cache configured by :class:`~llmcache.Settings`, in ``<namespace>.langgraph``."""
        settings = settings or load_settings()
        backend = backend_from_settings(
            settings, namespace=namespace or f"{settings.namespace}.{DEFAULT_NAMESPACE}"
        )
        codec = Codec(
            compress_min_bytes=settings.compress_min_bytes,
            encryption_keys=encryption_keys(settings),
            max_decoded_bytes=settings.max_decoded_bytes,
        )
        return cls(
            backend,
            codec=codec,
            ttl=settings.ttl,
            on_error=settings.on_error,
            breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown),
            allowed_types=allowed_types,
        )

    @property
    def stats(self) -> dict[str, Any]:
        """Hits, misses, writes, errors, decode errors and unstorable outputs of this cache."""
        return self._stats.as_dict()

    def namespace_for(self, ns: Namespace) -> str:
        """The llmcache namespace that holds LangGraph namespace ``ns``."""
        return namespace_name(self.backend.namespace, tuple(ns))

    # -- sync ---------------------------------------------------------------------------------
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """Cached values of ``keys`` that are present and decode (faults: misses)."""
        plan = self._plan(keys)
        if not plan or not self._allow(len(keys)):
            return {}
        found: dict[FullKey, Any] = {}
        for name, (_, items) in plan.items():
            try:
                values = cap.get_many(self.backend.in_namespace(name), [k for _, k in items])
            except Exception as exc:
                self._read_fault(exc, len(items))
                continue
            found.update(self._decode(name, items, values))
        return found

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """Store each node output under its key for its ttl (faults: skipped)."""
        writes = self._encode(pairs)
        if not writes or not self._allow():
            return
        for (name, ttl), (ns, items) in writes.items():
            try:
                cap.set_many(self.backend.in_namespace(name), items, ttl)
                self._register(ns)
            except ConfigError as exc:  # a ttl this store refuses (Momento: 24 h at most)
                self._refused(items, exc)
                continue
            except Exception as exc:
                self.guard.fault("set", exc, "skipping writes")
                continue
            self._wrote(items)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Remove the entries of ``namespaces``; all this cache wrote when ``None``."""
        with self.guard.run("clear"):
            todo = self._to_clear(namespaces, self._take_registry() if namespaces is None else [])
            for i, ns in enumerate(todo):
                try:
                    self.backend.in_namespace(self.namespace_for(ns)).clear()
                except Exception:
                    if namespaces is None:  # keep what is left findable by the next clear()
                        self._put_back(todo[i:])
                    raise

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()

    # -- async (the backend's native async path) ----------------------------------------------
    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """Async :meth:`get`; the namespaces of one call are read concurrently."""
        plan = self._plan(keys)
        if not plan or not self._allow(len(keys)):
            return {}
        reads = [
            cap.aget_many(self.backend.in_namespace(name), [key for _, key in items])
            for name, (_, items) in plan.items()
        ]
        results = await asyncio.gather(*reads, return_exceptions=True)
        found: dict[FullKey, Any] = {}
        for (name, (_, items)), result in zip(plan.items(), results, strict=True):
            if isinstance(result, BaseException):
                self._read_fault(as_fault(result), len(items))
                continue
            found.update(self._decode(name, items, result))
        return found

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """Async :meth:`set`."""
        writes = self._encode(pairs)
        if not writes or not self._allow():
            return
        for (name, ttl), (ns, items) in writes.items():
            try:
                await cap.aset_many(self.backend.in_namespace(name), items, ttl)
                await self._aregister(ns)
            except ConfigError as exc:  # a ttl this store refuses (Momento: 24 h at most)
                self._refused(items, exc)
                continue
            except BaseException as exc:  # the caller's own cancellation is re-raised by as_fault
                self.guard.fault("set", as_fault(exc), "skipping writes")
                continue
            self._wrote(items)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Async :meth:`clear`."""
        with self.guard.run("clear"):
            registered = await self._atake_registry() if namespaces is None else []
            todo = self._to_clear(namespaces, registered)
            for i, ns in enumerate(todo):
                try:
                    await self.backend.in_namespace(self.namespace_for(ns)).aclear()
                except BaseException:
                    if namespaces is None:
                        await self._aput_back(todo[i:])
                    raise

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self.backend.aclose()

    # -- the registry of written namespaces ---------------------------------------------------
    # Each namespace is registered *after* its entries are written, and clear() empties the
    # registry *before* it clears the namespaces: a write racing a clear() either is cleared or
    # finds its marker gone and registers again. (A namespace registered for the first time
    # between clear()'s read and its emptying of the registry escapes it: its entries expire.)
    def _register(self, ns: Namespace) -> None:
        with self._written_lock:
            self._written.add(ns)
        adder, lists = self._adder, self._lists
        if (
            adder is not None
            and lists is not None
            and adder.add(_MARKER + self.namespace_for(ns), b"1")
        ):
            lists.list_push(_REGISTRY_LIST, [_ns_bytes(ns)])

    async def _aregister(self, ns: Namespace) -> None:
        with self._written_lock:
            self._written.add(ns)
        adder, lists = self._adder, self._lists
        if (
            adder is not None
            and lists is not None
            and await adder.aadd(_MARKER + self.namespace_for(ns), b"1")
        ):
            await lists.alist_push(_REGISTRY_LIST, [_ns_bytes(ns)])

    def _take_registry(self) -> list[Namespace]:
        """The registered namespaces, leaving the registry empty."""
        if self._lists is None:
            return []
        data = self._lists.list_range(_REGISTRY_LIST)
        self.registry.clear()
        return _parse_registry(data)

    async def _atake_registry(self) -> list[Namespace]:
        if self._lists is None:
            return []
        data = await self._lists.alist_range(_REGISTRY_LIST)
        await self.registry.aclear()
        return _parse_registry(data)

    def _put_back(self, namespaces: list[Namespace]) -> None:
        with self.guard.run("clear", "some namespaces may be left out of the next clear()"):
            for ns in namespaces:
                self._register(ns)

    async def _aput_back(self, namespaces: list[Namespace]) -> None:
        with self.guard.run("clear", "some namespaces may be left out of the next clear()"):
            for ns in namespaces:
                await self._aregister(ns)

    def _to_clear(
        self, namespaces: Sequence[Namespace] | None, registered: list[Namespace]
    ) -> list[Namespace]:
        if namespaces is not None:
            return list(dict.fromkeys(tuple(ns) for ns in namespaces))
        with self._written_lock:
            found = list(dict.fromkeys([*registered, *self._written]))
            self._written.clear()
        return found

    # -- pure helpers both sides share -----------------------------------------------------------
    def _allow(self, reads: int = 0) -> bool:
        if self.guard.allow():
            return True
        self._stats.incr("misses" if reads else "skipped_writes", max(reads, 1))
        return False

    def _plan(self, keys: Sequence[FullKey]) -> _Plan:
        plan: _Plan = {}
        for full in keys:
            ns, key = full
            name = self.namespace_for(ns)
            plan.setdefault(name, (tuple(ns), []))[1].append((full, key))
        return plan

    def _decode(
        self, name: str, items: list[tuple[FullKey, str]], values: list[bytes | None]
    ) -> dict[FullKey, Any]:
        self.breaker.success()
        found: dict[FullKey, Any] = {}
        for (full, key), data in zip(items, values, strict=True):
            if data is None:
                self._stats.incr("misses")
                continue
            try:
                value = self.values.decode(self.codec.decode(f"{name}/{key}", data))
                if full[0][:1] == (CACHE_NS_WRITES,):
                    value = node_writes(value)
            except Exception:  # CodecError; nothing a stored value holds may raise to callers
                self._stats.incr("decode_errors")
                self._stats.incr("misses")
                continue
            self._stats.hit(len(data))
            found[full] = value
        return found

    def _encode(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> _Writes:
        writes: _Writes = {}
        for (ns, key), (value, ttl) in pairs.items():
            if ttl is not None and not ttl > 0:
                self._stats.incr("skipped_writes")  # expired on arrival, as LangGraph's own
                continue
            name = self.namespace_for(ns)
            try:
                data = self.codec.encode(f"{name}/{key}", self.values.encode(value))
            except Exception as exc:  # CodecError: no safe form, too big; never raised
                self._stats.incr("unstorable")
                self.guard.note("set", exc, "not caching this node's output")
                continue
            lifetime = self.ttl if ttl is None else float(ttl)
            writes.setdefault((name, lifetime), (tuple(ns), {}))[1][key] = data
        return writes

    def _read_fault(self, exc: Exception, count: int) -> None:
        self._stats.incr("misses", count)
        self.guard.fault("get", exc, "serving misses")

    def _refused(self, items: dict[str, bytes], exc: ConfigError) -> None:
        """Not a store fault (the breaker stays closed): those writes are skipped, logged once."""
        self._stats.incr("skipped_writes", len(items))
        self.guard.note("set", exc, "not caching these node outputs")

    def _wrote(self, items: dict[str, bytes]) -> None:
        self.breaker.success()
        self._stats.incr("writes", len(items))
        self._stats.incr("bytes_written", sum(len(v) for v in items.values()))

    def __repr__(self) -> str:
        return f"LangGraphCache({self.backend!r})"


def _ns_bytes(ns: Namespace) -> bytes:
    return orjson.dumps(list(ns))
