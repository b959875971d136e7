"""OpenTelemetry exporter: a span per lookup and update, and the cache's metrics.

Uses ``opentelemetry-api`` only (``pip install 'llmcache-kit[otel]'``); the application installs
and configures the SDK and its exporters. Turned on by :func:`llmcache.metrics.enable_otel`.

Spans ``llmcache.lookup`` / ``llmcache.update`` (attributes ``llmcache.hit``,
``llmcache.result``, ``llmcache.backend``, ``llmcache.namespace``, ``llmcache.model``,
``llmcache.bytes`` and, on a
store fault, ``llmcache.fault`` with an error status) are recorded when the call ends, with
its start and end times, as children of the span current at the caller: store-driver spans
are their siblings, not their children. Instruments of the meter ``llmcache``:

=========================  ===========  ==========================================
``llmcache.lookups``       counter      attributes ``llmcache.result``, backend, namespace, model
``llmcache.lookup.duration`` histogram  seconds spent on the store (hits, misses, errors)
``llmcache.updates``       counter      ``llmcache.result``: written, not_stored, bypass, ...
``llmcache.bytes``         counter      ``llmcache.direction``: read (hits) or written
``llmcache.breaker.open``  gauge        1 while the breaker skips the store, else 0
``llmcache.tokens.saved``  counter      ``llmcache.model``; tokens hits did not spend
``llmcache.money.saved``   counter      ``llmcache.model``, ``llmcache.currency`` (USD)
=========================  ===========  ==========================================
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from llmcache.errors import ConfigError, install_line
from llmcache.metrics._observer import LATENCY_BUCKETS, Event, Exporter, model_prices

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ConfigError(
        "OpenTelemetry metrics need the opentelemetry-api package: " + install_line("otel")
    ) from exc

__all__ = ["OTelExporter"]

_SCOPE = "llmcache"
_exporters: dict[tuple[int, int], OTelExporter] = {}
_exporters_lock = threading.Lock()


class OTelExporter(Exporter):
    """Reports events as spans and as instruments of the ``llmcache`` meter."""

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        prices: Any = None,
        traces: bool = True,
    ) -> None:
        super().__init__(prices)
        self.traces = traces
        from llmcache import __version__

        # Kept alive: the exporters made are found again by the providers' ids.
        self._providers = (tracer_provider, meter_provider)
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        meter = otel_metrics.get_meter(_SCOPE, __version__, meter_provider)
        self.lookups = meter.create_counter(
            "llmcache.lookups", unit="{lookup}", description="Cache lookups by result"
        )
        self.latency = meter.create_histogram(
            "llmcache.lookup.duration",
            unit="s",
            description="Time a lookup spent on the store (hits, misses and faults)",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS),
        )
        self.updates = meter.create_counter(
            "llmcache.updates", unit="{update}", description="Cache updates by result"
        )
        self.bytes = meter.create_counter(
            "llmcache.bytes", unit="By", description="Bytes read by hits and written by updates"
        )
        self.tokens_saved = meter.create_counter(
            "llmcache.tokens.saved", unit="{token}", description="Tokens hits did not spend"
        )
        self.money_saved = meter.create_counter(
            "llmcache.money.saved", unit="USD", description="What those tokens would have cost"
        )
        meter.create_observable_gauge(
            "llmcache.breaker.open",
            callbacks=[self._observe_breakers],
            unit="1",
            description="1 while the circuit breaker skips the store (open or half-open)",
        )
        self._attrs: dict[tuple[str, ...], dict[str, str]] = {}

    @classmethod
    def get(
        cls,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        prices: Any = None,
        traces: bool = True,
    ) -> OTelExporter:
        """The exporter for these providers (made once: instruments are not registered twice);
        ``prices``, when given, and ``traces`` replace the existing exporter's."""
        key = (id(tracer_provider), id(meter_provider))
        with _exporters_lock:
            exporter = _exporters.get(key)
            if exporter is None:
                exporter = _exporters[key] = cls(
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                    prices=prices,
                    traces=traces,
                )
            elif prices is not None:
                exporter.prices = model_prices(prices)
            exporter.traces = traces
            return exporter

    def record(self, event: Event) -> None:
        labels = self._labels("llmcache.result", event.result, event)
        span_attrs: dict[str, Any] = {
            **labels,
            "llmcache.model": event.model,
            "llmcache.bytes": event.nbytes,
        }
        if event.op == "lookup":
            span_attrs["llmcache.hit"] = event.result == "hit"
            self.lookups.add(1, self._lookup_labels(event))
            if event.seconds is not None:
                self.latency.record(event.seconds, self._labels("", "", event))
            if event.nbytes:
                self.bytes.add(event.nbytes, self._labels("llmcache.direction", "read", event))
            if event.usage is not None:
                self._saved(event)
        else:
            self.updates.add(1, labels)
            if event.nbytes:
                self.bytes.add(event.nbytes, self._labels("llmcache.direction", "written", event))
        if not self.traces:
            return
        if event.fault is not None:
            span_attrs["llmcache.fault"] = event.fault
        start_ns = event.end_ns - int((event.seconds or 0.0) * 1e9)
        span = self.tracer.start_span(
            f"llmcache.{event.op}", start_time=start_ns, attributes=span_attrs
        )
        if event.fault is not None:
            span.set_status(Status(StatusCode.ERROR, f"store fault: {event.fault}"))
        span.end(end_time=event.end_ns)

    def _saved(self, event: Event) -> None:
        assert event.usage is not None
        model, input_tokens, output_tokens = event.usage
        attrs = self._model_attrs(model)
        self.tokens_saved.add(input_tokens + output_tokens, attrs)
        money = self.money(event.usage)
        if money is not None:
            self.money_saved.add(money, {**attrs, "llmcache.currency": "USD"})

    def _labels(self, name: str, value: str, event: Event) -> dict[str, str]:
        """Attributes of a metric point, one dict per distinct set (never changed after)."""
        key = (name, value, event.backend, event.namespace)
        attrs = self._attrs.get(key)
        if attrs is None:
            attrs = {"llmcache.backend": event.backend, "llmcache.namespace": event.namespace}
            if name:
                attrs[name] = value
            self._attrs[key] = attrs
        return attrs

    def _lookup_labels(self, event: Event) -> dict[str, str]:
        key = ("lookup", event.result, event.backend, event.namespace, event.model)
        attrs = self._attrs.get(key)
        if attrs is None:
            attrs = {**self._labels("llmcache.result", event.result, event)}
            attrs["llmcache.model"] = event.model
            self._attrs[key] = attrs
        return attrs

    def _model_attrs(self, model: str) -> dict[str, str]:
        key = ("llmcache.model", model)
        attrs = self._attrs.get(key)
        if attrs is None:
            attrs = self._attrs[key] = {"llmcache.model": model}
        return attrs

    def _observe_breakers(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(value, {"llmcache.backend": backend, "llmcache.namespace": namespace})
            for (backend, namespace), value in self.breakers().items()
        ]

    def __repr__(self) -> str:
        return f"OTelExporter({len(self.caches)} caches)"
