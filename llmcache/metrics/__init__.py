"""Metrics and traces: OpenTelemetry and Prometheus, optional and free while off.

Turn an exporter on for every cache (those that exist and those built later: what "turn on
metrics" means), or for one cache::

    import llmcache.metrics

    llmcache.metrics.enable_prometheus()        # every cache, into prometheus_client's registry
    llmcache.metrics.start_http_server(9464)    # serves /metrics
    llmcache.metrics.enable_otel(cache)         # this cache only; the app sets up the OTel SDK

or with the setting ``LLMCACHE_METRICS=otel,prometheus`` (read by ``from_settings``). Nothing
here imports ``opentelemetry`` or ``prometheus_client`` until an exporter is turned on; while
none is, a cache's lookup pays one attribute check. A missing package is a
:class:`~llmcache.errors.ConfigError` naming the pip extra (``pip install 'llmcache-kit[otel]'``).

What is reported, the metric names and example queries: docs/observability.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from llmcache.errors import ConfigError
from llmcache.metrics._observer import Event, Exporter, attach, detach, exporters_of
from llmcache.pricing import ModelPrices

if TYPE_CHECKING:
    from llmcache.cache import LLMCache

__all__ = [
    "EXPORTERS",
    "Event",
    "Exporter",
    "disable",
    "enable",
    "enable_otel",
    "enable_prometheus",
    "exporters_of",
    "start_http_server",
]

#: The exporters the ``metrics`` setting may name.
EXPORTERS = ("otel", "prometheus")

Prices = ModelPrices | Mapping[str, Any] | None


def enable_otel(
    target: Any = None,
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    prices: Prices = None,
    traces: bool = True,
) -> Exporter:
    """Report spans and metrics through the OpenTelemetry API; returns the exporter.

    ``target``: an :class:`~llmcache.LLMCache` (or a ``LangChainCache`` / cached model built
    on one), or None for every cache. The providers default to the global ones the app set
    up (``opentelemetry-sdk``); set them later and the reports follow. ``prices``: model →
    (USD per 1M input, output tokens), added to :data:`llmcache.pricing.MODEL_PRICES`, or a
    :class:`~llmcache.pricing.ModelPrices`. ``traces=False``: metrics only, no spans (a span
    costs more than the metrics; the tracer provider's sampler is the other knob). Calling it
    again with the same providers returns the same exporter.
    """
    from llmcache.metrics.otel import OTelExporter

    exporter = OTelExporter.get(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        prices=prices,
        traces=traces,
    )
    attach(exporter, _cache_of(target))
    return exporter


def enable_prometheus(
    target: Any = None, *, registry: Any = None, prices: Prices = None
) -> Exporter:
    """Report metrics into a ``prometheus_client`` registry (default: its global ``REGISTRY``);
    returns the exporter. ``target`` and ``prices`` as for :func:`enable_otel`. One exporter
    per registry: calling it again with the same registry returns the same one."""
    from llmcache.metrics.prometheus import PrometheusExporter

    exporter = PrometheusExporter.get(registry=registry, prices=prices)
    attach(exporter, _cache_of(target))
    return exporter


def enable(names: str | Iterable[str], target: Any = None) -> list[Exporter]:
    """Turn on the exporters named (``"otel,prometheus"``, the ``metrics`` setting) with their
    defaults; an unknown name is a :class:`ConfigError` listing the valid ones."""
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    wanted = [n for n in wanted if n]
    for name in wanted:
        if name not in EXPORTERS:
            raise ConfigError(
                f"unknown metrics exporter {name!r} (setting LLMCACHE_METRICS): "
                f"use a comma-separated list of {', '.join(EXPORTERS)}"
            )
    return [
        enable_otel(target) if name == "otel" else enable_prometheus(target)
        for name in dict.fromkeys(wanted)
    ]


def disable(exporter: Exporter | None = None, target: Any = None) -> None:
    """Stop reporting to ``exporter`` (every exporter when None), for ``target`` (every cache,
    and caches built later, when None). Metrics already reported stay in their registry."""
    detach(exporter, _cache_of(target))


def start_http_server(port: int, addr: str = "0.0.0.0", *, registry: Any = None) -> tuple[Any, Any]:
    """Serve ``registry`` (default: prometheus_client's global one) at
    ``http://addr:port/metrics`` from a daemon thread; returns ``(server, thread)``
    (``server.shutdown()`` stops it). Turn the exporter on with :func:`enable_prometheus`."""
    from llmcache.metrics.prometheus import serve

    return serve(port, addr, registry)


def _cache_of(target: Any) -> LLMCache | None:
    """The :class:`LLMCache` of ``target``: itself, or the one a LangChain adapter wraps."""
    from llmcache.cache import LLMCache

    if target is None or isinstance(target, LLMCache):
        return target
    for attr in ("llmcache", "cache"):  # CachedChatModel.llmcache, LangChainCache.cache
        inner = getattr(target, attr, None)
        if isinstance(inner, LLMCache):
            return inner
    raise TypeError(f"metrics attach to an LLMCache (or an adapter built on one), not {target!r}")
