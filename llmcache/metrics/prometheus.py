"""Prometheus exporter: the cache's metrics in a ``prometheus_client`` registry.

``pip install 'llmcache-kit[prometheus]'``; turned on by
:func:`llmcache.metrics.enable_prometheus` (default: the global ``REGISTRY``; tests pass their
own ``CollectorRegistry``), served by :func:`llmcache.metrics.start_http_server` or by the
app's own ``/metrics`` handler. The series:

- ``llmcache_lookups_total{result, backend, namespace, model}``: result is hit, miss, bypass,
  error or skipped (breaker open); model is the one the request names;
- ``llmcache_lookup_seconds{backend, namespace}``: histogram of the time a lookup spent on the
  store (hits, misses and faults; bypasses and skips never reach it);
- ``llmcache_updates_total{result, backend, namespace}``: written, not_stored, bypass, error or
  skipped;
- ``llmcache_bytes_total{direction, backend, namespace}``: direction is read (hits) or written;
- ``llmcache_breaker_open{backend, namespace}``: 1 while the breaker skips the store (open or
  half-open), else 0, read when scraped;
- ``llmcache_tokens_saved_total{model}`` and ``llmcache_money_saved_total{model, currency}``:
  what hits saved (input plus output tokens; USD at :mod:`llmcache.pricing` prices).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from llmcache.errors import ConfigError, install_line
from llmcache.metrics._observer import LATENCY_BUCKETS, Event, Exporter, model_prices

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ConfigError(
        "Prometheus metrics need the prometheus-client package: " + install_line("prometheus")
    ) from exc

__all__ = ["PrometheusExporter", "serve"]

_exporters: weakref.WeakKeyDictionary[CollectorRegistry, PrometheusExporter] = (
    weakref.WeakKeyDictionary()
)
_exporters_lock = threading.Lock()
_STORE = ("backend", "namespace")


class PrometheusExporter(Exporter):
    """Counts events into counters and a histogram of one registry."""

    def __init__(self, registry: CollectorRegistry | None = None, prices: Any = None) -> None:
        super().__init__(prices)
        self.registry = prometheus_client.REGISTRY if registry is None else registry
        r = self.registry
        self.lookups = Counter(
            "llmcache_lookups",
            "Cache lookups by result",
            ("result", *_STORE, "model"),
            registry=r,
        )
        self.latency = Histogram(
            "llmcache_lookup_seconds",
            "Time a lookup spent on the store (hits, misses and faults)",
            _STORE,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.updates = Counter(
            "llmcache_updates", "Cache updates by result", ("result", *_STORE), registry=r
        )
        self.bytes = Counter(
            "llmcache_bytes",
            "Bytes read by hits and written by updates",
            ("direction", *_STORE),
            registry=r,
        )
        self.tokens_saved = Counter(
            "llmcache_tokens_saved",
            "Tokens (input + output) hits did not spend",
            ("model",),
            registry=r,
        )
        self.money_saved = Counter(
            "llmcache_money_saved",
            "What the tokens hits did not spend would have cost",
            ("model", "currency"),
            registry=r,
        )
        r.register(_Breakers(self))
        self._children: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def get(
        cls, *, registry: CollectorRegistry | None = None, prices: Any = None
    ) -> PrometheusExporter:
        """The registry's exporter (made once: a registry refuses the same series twice);
        ``prices``, when given, replace the existing exporter's."""
        registry = prometheus_client.REGISTRY if registry is None else registry
        with _exporters_lock:
            exporter = _exporters.get(registry)
            if exporter is None:
                exporter = _exporters[registry] = cls(registry, prices)
            elif prices is not None:
                exporter.prices = model_prices(prices)
            return exporter

    def record(self, event: Event) -> None:
        store = (event.backend, event.namespace)
        if event.op == "lookup":
            self._child(self.lookups, event.result, *store, event.model).inc()
            if event.seconds is not None:
                self._child(self.latency, *store).observe(event.seconds)
            if event.nbytes:
                self._child(self.bytes, "read", *store).inc(event.nbytes)
            if event.usage is not None:
                model, input_tokens, output_tokens = event.usage
                self._child(self.tokens_saved, model).inc(input_tokens + output_tokens)
                money = self.money(event.usage)
                if money is not None:
                    self._child(self.money_saved, model, "USD").inc(money)
        else:
            self._child(self.updates, event.result, *store).inc()
            if event.nbytes:
                self._child(self.bytes, "written", *store).inc(event.nbytes)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered (skips the library's lock and checks)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def __repr__(self) -> str:
        return f"PrometheusExporter({len(self.caches)} caches)"


class _Breakers(Collector):
    """``llmcache_breaker_open``, read from the caches' breakers when the registry is scraped."""

    def __init__(self, exporter: PrometheusExporter) -> None:
        self.exporter = weakref.ref(exporter)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        exporter = self.exporter()
        if exporter is not None:
            for (backend, namespace), value in sorted(exporter.breakers().items()):
                family.add_metric([backend, namespace], value)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "llmcache_breaker_open",
            "1 while the circuit breaker skips the store (open or half-open), else 0",
            labels=list(_STORE),
        )


def serve(
    port: int, addr: str = "0.0.0.0", registry: CollectorRegistry | None = None
) -> tuple[Any, Any]:
    """``prometheus_client.start_http_server`` on ``registry`` (default: the global one)."""
    registry = prometheus_client.REGISTRY if registry is None else registry
    return prometheus_client.start_http_server(port, addr, registry=registry)
