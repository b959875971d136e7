"""Internal: which exporters are on, and how a cache reports to them.

Every :class:`~llmcache.LLMCache` registers itself here when it is built and holds
``_observer``: ``None`` while no exporter is on for it (the hot path then pays one attribute
check, nothing more), else a :class:`Hub` that turns what happened into one :class:`Event` and
hands it to each exporter. Exporters are attached globally (every cache, those that exist and
those built later) or to one cache. This module imports no third-party package.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmcache._guard import fault_kind
from llmcache.pricing import ModelPrices, TokenPrice

if TYPE_CHECKING:
    from llmcache.backends.base import Backend
    from llmcache.cache import LLMCache
    from llmcache.keys import KeyDecision

__all__ = [
    "Event",
    "Exporter",
    "Hub",
    "Usage",
    "attach",
    "backend_label",
    "detach",
    "model_param",
    "register",
    "request_model",
]

log = logging.getLogger("llmcache")

#: What a hit saved: (model name, input tokens, output tokens).
Usage = tuple[str, int, int]
#: Lookup latency buckets, seconds: an in-process hit takes ~10 us, a Redis or Momento round
#: trip 0.3-5 ms, a store timeout 0.1-1 s (the default bucket set of either library starts at
#: 5 ms and would put every hit in its first bucket).
LATENCY_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


@dataclass(slots=True)
class Event:
    """One lookup or update, as the exporters see it."""

    op: str  # "lookup" | "update"
    #: lookup: hit | miss | bypass | error | skipped (breaker open);
    #: update: written | not_stored | bypass | error | skipped (breaker open or failed lookup)
    result: str
    backend: str
    namespace: str
    seconds: float | None  # time spent on the store (None: the store was not asked)
    nbytes: int  # bytes read (a hit) or written
    fault: str | None  # the fault's kind (see llmcache._guard.fault_kind)
    end_ns: int  # wall clock (ns since the epoch) when it ended, for spans
    model: str = "unknown"  # the model the request names (see request_model)
    #: What a hit saved, when the adapter knows it. Its model is the one the request names;
    #: when it names none (only a model type), the one the stored answer names.
    usage: Usage | None = None


class Exporter(ABC):
    """Receives every event of the caches it is attached to; reads their breakers on demand."""

    def __init__(self, prices: ModelPrices | Mapping[str, Any] | None = None) -> None:
        self.prices = model_prices(prices)
        #: the caches this exporter reports (for the breaker gauge, read at collection time)
        self.caches: weakref.WeakSet[LLMCache] = weakref.WeakSet()

    @abstractmethod
    def record(self, event: Event) -> None:
        """Count one event (never called with the cache's locks held; may be concurrent)."""

    def breakers(self) -> dict[tuple[str, str], int]:
        """(backend, namespace) → 1 while a cache there skips its store (breaker open or
        half-open), else 0; several caches on the same labels: the worst."""
        found: dict[tuple[str, str], int] = {}
        for cache in list(self.caches):
            labels = (backend_label(cache.backend), cache.backend.namespace)
            value = 0 if cache.breaker.state == "closed" else 1
            found[labels] = max(value, found.get(labels, 0))
        return found

    def money(self, usage: Usage) -> float | None:
        """USD the tokens of ``usage`` would have cost (None: the model's price is unknown)."""
        return self.prices.cost(*usage)


def model_prices(prices: ModelPrices | Mapping[str, Any] | None) -> ModelPrices:
    """``prices`` as :class:`ModelPrices`: a mapping adds to (or replaces) the default ones."""
    if prices is None:
        return ModelPrices.default()
    if isinstance(prices, ModelPrices):
        return prices
    return ModelPrices.default().with_models(
        {k: v if isinstance(v, TokenPrice) else TokenPrice(*v) for k, v in prices.items()}
    )


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def backend_label(backend: Backend) -> str:
    """A short name for a backend: ``memory``, ``disk``, ``redis``, ``redis-cluster``,
    ``momento``; a store behind an in-process tier is ``redis+l1``."""
    l2 = getattr(backend, "l2", None)
    if l2 is not None and l2 is not backend:
        return f"{backend_label(l2)}+l1"
    for cls in type(backend).__mro__:
        name = cls.__name__
        if name.endswith("Backend") and name != "Backend":
            return _CAMEL.sub("-", name[: -len("Backend")]).lower()
    return type(backend).__name__.lower()


#: Parameters that name the model in LangChain's llm_string, most specific first.
_MODEL_PARAMS = ("model_name", "model", "model_id", "deployment_name", "azure_deployment")


def model_param(decision: KeyDecision) -> str | None:
    """The model a request names: the ``model_name``/``model``/... parameter of its
    llm_string, or None."""
    params = decision.material.get("params")
    if isinstance(params, dict):
        for name in _MODEL_PARAMS:
            value = params.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def request_model(decision: KeyDecision) -> str:
    """The model a request names (:func:`model_param`), else its model type (``_type``, e.g.
    ``openai-chat``), else ``unknown``."""
    named = model_param(decision)
    if named is not None:
        return named
    kind = decision.material.get("model")
    if isinstance(kind, str) and kind and not kind.startswith("opaque:"):
        return kind
    return "unknown"


class Hub:
    """What a cache calls when an exporter is on: builds the event once, fans it out."""

    __slots__ = ("backend", "exporters", "namespace")

    def __init__(self, cache: LLMCache, exporters: tuple[Exporter, ...]) -> None:
        self.exporters = exporters
        self.backend = backend_label(cache.backend)
        self.namespace = cache.backend.namespace

    def event(
        self,
        cache: LLMCache,
        op: str,
        result: str,
        seconds: float | None = None,
        *,
        nbytes: int = 0,
        namespace: str | None = None,
        exc: BaseException | None = None,
        decision: KeyDecision | None = None,
        answer: Any = None,
    ) -> None:
        """Report one lookup or update; an exporter's failure is logged, never raised."""
        named = None if decision is None else model_param(decision)
        model = named or ("unknown" if decision is None else request_model(decision))
        usage = None
        if answer is not None and cache.usage_of is not None:
            try:
                usage = cache.usage_of(answer)
            except Exception as error:  # an odd answer: the hit is still counted
                log.debug("llmcache: no usage in a hit: %s", error)
            if usage is not None and (named or usage[0] == "unknown"):
                usage = (model, usage[1], usage[2])
        event = Event(
            op,
            result,
            self.backend,
            namespace or self.namespace,
            seconds,
            nbytes,
            None if exc is None else fault_kind(exc),
            time.time_ns(),
            model,
            usage,
        )
        for exporter in self.exporters:
            try:
                exporter.record(event)
            except Exception as error:  # metrics never fail the caller's call
                log.debug("llmcache: exporter %r failed: %s", exporter, error)


# -- which exporters are on -----------------------------------------------------------------
_lock = threading.Lock()
_global: list[Exporter] = []
_own: weakref.WeakKeyDictionary[LLMCache, list[Exporter]] = weakref.WeakKeyDictionary()
_caches: weakref.WeakSet[LLMCache] = weakref.WeakSet()


def register(cache: LLMCache) -> None:
    """Called by every new cache: it reports to the exporters that are on globally."""
    with _lock:
        _caches.add(cache)
        if _global:
            _refresh(cache)


def attach(exporter: Exporter, cache: LLMCache | None = None) -> None:
    """Report ``cache``'s events (every cache's, when None) to ``exporter``."""
    with _lock:
        if cache is None:
            if exporter not in _global:
                _global.append(exporter)
            targets: Iterable[LLMCache] = list(_caches)
        else:
            own = _own.setdefault(cache, [])
            if exporter not in own:
                own.append(exporter)
            targets = [cache]
        for target in targets:
            _refresh(target)


def detach(exporter: Exporter | None = None, cache: LLMCache | None = None) -> None:
    """Stop reporting to ``exporter`` (every exporter when None) for ``cache`` (every cache and
    the global list when None)."""
    with _lock:
        if cache is None:
            _global[:] = [] if exporter is None else [e for e in _global if e is not exporter]
            for own in _own.values():
                own[:] = [] if exporter is None else [e for e in own if e is not exporter]
            targets: Iterable[LLMCache] = list(_caches)
        else:
            own = _own.get(cache, [])
            own[:] = [] if exporter is None else [e for e in own if e is not exporter]
            targets = [cache]
        for target in targets:
            _refresh(target)


def exporters_of(cache: LLMCache) -> tuple[Exporter, ...]:
    """The exporters ``cache`` reports to now."""
    hub = cache._observer
    return () if hub is None else hub.exporters


def _refresh(cache: LLMCache) -> None:
    """Point ``cache._observer`` at its exporters (global first); called with ``_lock`` held."""
    exporters = tuple(dict.fromkeys([*_global, *_own.get(cache, ())]))
    for exporter in exporters_of(cache):
        if exporter not in exporters:
            exporter.caches.discard(cache)
    for exporter in exporters:
        exporter.caches.add(cache)
    cache._observer = Hub(cache, exporters) if exporters else None
