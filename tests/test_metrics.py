"""Metrics and traces (``llmcache.metrics``): what an operator's dashboards and traces receive.

OpenTelemetry through the SDK's in-memory span exporter and metric reader; Prometheus through a
private ``CollectorRegistry`` scraped as text. Off, nothing is imported and nothing reported.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry, generate_latest

import llmcache.metrics as metrics
from llmcache import BackendError, CircuitBreaker, ConfigError, KeyPolicy, LLMCache
from llmcache._guard import fault_kind
from llmcache.adapters.langchain import LangChainCache, cached
from llmcache.backends.memory import MemoryBackend
from llmcache.errors import BackendUnavailable, PartialOutage
from llmcache.pricing import ModelPrices
from llmcache.stats import LatencyWindow
from tests.fakes import CountingChat

LLM = "[('_type', 'fake-model'), ('temperature', 0.0)]"
HOT = "[('_type', 'fake-model'), ('temperature', 1.0)]"
ANSWER = [{"text": "4"}]


class Otel:
    """An SDK tracer and meter provider whose spans and metric points the test reads."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def enable(self, target: Any, **kwargs: Any) -> metrics.Exporter:
        return metrics.enable_otel(
            target,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **kwargs,
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_out.get_finished_spans())

    def points(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Metric name → [(attributes, value)]; a histogram's value is its count."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    found[metric.name] = [
                        (dict(p.attributes or {}), getattr(p, "value", getattr(p, "count", None)))
                        for p in metric.data.data_points
                    ]
        return found

    def value(self, name: str, **attrs: Any) -> Any:
        wanted = {f"llmcache.{k}": v for k, v in attrs.items()}
        values = [v for a, v in self.points().get(name, []) if wanted.items() <= a.items()]
        return sum(values) if values else None


class Failing(MemoryBackend):
    """A memory store whose every operation raises ``ConnectionError`` while ``down``."""

    down = True

    def get(self, key: str) -> bytes | None:
        if self.down:
            raise ConnectionError("store down")
        return super().get(key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if self.down:
            raise ConnectionError("store down")
        super().set(key, value, ttl)


@pytest.fixture(autouse=True)
def _metrics_off() -> Iterator[None]:
    yield
    metrics.disable()


@pytest.fixture
def otel() -> Otel:
    return Otel()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


# -- OpenTelemetry ------------------------------------------------------------------------------
def test_a_hit_and_a_miss_are_spans_and_points(otel: Otel) -> None:
    cache = LLMCache(MemoryBackend(namespace="app"))
    otel.enable(cache)
    cache.update("2+2?", LLM, ANSWER)
    assert cache.lookup("2+2?", LLM) == ANSWER
    assert cache.lookup("3+3?", LLM) is None

    update, hit, miss = otel.spans()
    assert update.name == "llmcache.update" and hit.name == miss.name == "llmcache.lookup"
    assert hit.attributes is not None and miss.attributes is not None
    assert update.attributes is not None
    assert hit.attributes["llmcache.hit"] is True and miss.attributes["llmcache.hit"] is False
    assert hit.attributes["llmcache.backend"] == "memory"
    assert hit.attributes["llmcache.namespace"] == "app"
    assert hit.attributes["llmcache.bytes"] == update.attributes["llmcache.bytes"] > 0
    assert "llmcache.fault" not in hit.attributes
    assert hit.end_time is not None and hit.start_time is not None
    assert 0 <= hit.end_time - hit.start_time < 1e9

    assert otel.value("llmcache.lookups", result="hit", namespace="app") == 1
    assert otel.value("llmcache.lookups", result="miss") == 1
    assert otel.value("llmcache.lookup.duration", backend="memory") == 2  # histogram count
    assert otel.value("llmcache.updates", result="written") == 1
    written = otel.value("llmcache.bytes", direction="written")
    assert otel.value("llmcache.bytes", direction="read") == written > 0


async def test_async_calls_report_the_same(otel: Otel) -> None:
    cache = LLMCache(MemoryBackend())
    otel.enable(cache)
    await cache.aupdate("2+2?", LLM, ANSWER)
    assert await cache.alookup("2+2?", LLM) == ANSWER
    assert await cache.alookup_hit("3+3?", LLM) is None
    assert [s.name for s in otel.spans()] == ["llmcache.update", *["llmcache.lookup"] * 2]
    assert otel.value("llmcache.lookups", result="hit") == 1
    assert otel.value("llmcache.lookups", result="miss") == 1


def test_a_bypass_is_reported_without_touching_the_store(otel: Otel) -> None:
    cache = LLMCache(MemoryBackend(), policy=KeyPolicy(temperature="bypass_above:0.5"))
    otel.enable(cache)
    assert cache.lookup("roll a die", HOT) is None
    cache.update("roll a die", HOT, ANSWER)
    lookup, update = otel.spans()
    assert lookup.attributes is not None and update.attributes is not None
    assert lookup.attributes["llmcache.result"] == "bypass"
    assert update.attributes["llmcache.result"] == "bypass"
    assert otel.value("llmcache.lookups", result="bypass") == 1
    assert otel.value("llmcache.lookup.duration") is None  # the store was not asked


def test_a_store_fault_is_an_error_span_and_an_error_lookup(otel: Otel) -> None:
    cache = LLMCache(Failing())
    otel.enable(cache)
    assert cache.lookup("2+2?", LLM) is None  # a miss for the caller
    cache.update("3+3?", LLM, ANSWER)  # another request: its write is tried, and fails
    lookup, update = otel.spans()
    for span in (lookup, update):
        assert span.attributes is not None
        assert span.attributes["llmcache.fault"] == "unavailable"
        assert span.attributes["llmcache.result"] == "error"
        assert span.status.status_code is StatusCode.ERROR
    assert otel.value("llmcache.lookups", result="error", backend="memory") == 1
    assert otel.value("llmcache.updates", result="error") == 1
    assert otel.value("llmcache.lookup.duration") == 1  # a fault's time is added latency too


def test_a_fault_is_reported_before_on_error_raise_raises(otel: Otel) -> None:
    cache = LLMCache(Failing(), on_error="raise")
    otel.enable(cache)
    with pytest.raises(BackendError):
        cache.lookup("2+2?", LLM)
    assert otel.value("llmcache.lookups", result="error") == 1


def test_the_breaker_gauge_follows_the_breaker(otel: Otel) -> None:
    backend = Failing()
    cache = LLMCache(backend, breaker=CircuitBreaker(failures=2, cooldown=60))
    otel.enable(cache)
    assert otel.value("llmcache.breaker.open", backend="memory") == 0
    cache.lookup("a", LLM)
    cache.lookup("b", LLM)  # the second fault in a row opens it
    assert otel.value("llmcache.breaker.open", backend="memory") == 1
    cache.lookup("c", LLM)  # skipped: the store is not asked
    assert otel.value("llmcache.lookups", result="skipped") == 1
    assert otel.spans()[-1].attributes == {
        "llmcache.result": "skipped",
        "llmcache.backend": "memory",
        "llmcache.namespace": "default",
        "llmcache.model": "fake-model",
        "llmcache.bytes": 0,
        "llmcache.hit": False,
    }
    cache.breaker._open_until = 0.0  # the cooldown is over: the next lookup probes the store
    backend.down = False
    cache.lookup("d", LLM)
    assert otel.value("llmcache.breaker.open", backend="memory") == 0


def test_lookups_in_another_namespace_carry_that_namespace(otel: Otel) -> None:
    cache = LLMCache(MemoryBackend())
    otel.enable(cache)
    cache.update("q", LLM, ANSWER, namespace="tenant-b")
    assert cache.lookup_hit("q", LLM, namespace="tenant-b") is not None
    assert otel.value("llmcache.lookups", result="hit", namespace="tenant-b") == 1
    assert otel.value("llmcache.lookups", namespace="default") is None


def test_tokens_and_money_saved_on_langchain_hits(otel: Otel) -> None:
    store = LangChainCache(LLMCache(MemoryBackend()))
    otel.enable(store, prices={"rich-1": (1.0, 2.0)})  # USD per 1M input, output tokens
    model = CountingChat(cache=store)
    for _ in range(3):  # a miss, then two hits (the second from the decoded-answer memo)
        model.invoke("weather in Paris?")
    assert model.calls == 1
    # rich_answer(0): 12 input and 7 output tokens, model_name "rich-1"
    assert otel.value("llmcache.tokens.saved", model="rich-1") == 2 * 19
    money = otel.value("llmcache.money.saved", model="rich-1", currency="USD")
    assert money == pytest.approx(2 * (12 * 1.0 + 7 * 2.0) / 1e6)


def test_tokens_saved_by_the_cached_model_wrapper(otel: Otel) -> None:
    model = cached(CountingChat(), cache=LLMCache(MemoryBackend()), single_flight=False)
    otel.enable(model)  # the wrapper's LLMCache
    model.invoke("weather in Paris?")
    model.invoke("weather in Paris?")
    assert otel.value("llmcache.tokens.saved", model="rich-1") == 19
    # no price for a made-up model: tokens are counted, money is not
    assert otel.value("llmcache.money.saved") is None


def test_metrics_without_traces(otel: Otel) -> None:
    cache = LLMCache(MemoryBackend())
    otel.enable(cache, traces=False)
    cache.lookup("q", LLM)
    assert otel.spans() == []
    assert otel.value("llmcache.lookups", result="miss") == 1


def test_an_exporter_that_fails_never_fails_the_call() -> None:
    class Broken(metrics.Exporter):
        def record(self, event: metrics.Event) -> None:
            raise RuntimeError("exporter bug")

    cache = LLMCache(MemoryBackend())
    from llmcache.metrics._observer import attach

    attach(Broken(), cache)
    cache.update("q", LLM, ANSWER)
    assert cache.lookup("q", LLM) == ANSWER


# -- Prometheus ---------------------------------------------------------------------------------
def test_prometheus_series_match_what_happened(registry: CollectorRegistry) -> None:
    store = LangChainCache(LLMCache(MemoryBackend(namespace="app")))
    metrics.enable_prometheus(store, registry=registry, prices={"rich-1": (1.0, 2.0)})
    model = CountingChat(cache=store)
    model.invoke("weather in Paris?")
    model.invoke("weather in Paris?")
    store.cache.lookup("never asked", LLM)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    where = {"backend": "memory", "namespace": "app"}
    assert value("llmcache_lookups_total", result="hit", model="rich-1", **where) == 1
    assert value("llmcache_lookups_total", result="miss", model="rich-1", **where) == 1
    assert value("llmcache_lookups_total", result="miss", model="fake-model", **where) == 1
    assert value("llmcache_lookup_seconds_count", **where) == 3
    assert value("llmcache_updates_total", result="written", **where) == 1
    written = value("llmcache_bytes_total", direction="written", **where)
    assert value("llmcache_bytes_total", direction="read", **where) == written
    assert written is not None and written > 0
    assert value("llmcache_breaker_open", **where) == 0
    assert value("llmcache_tokens_saved_total", model="rich-1") == 19
    money = value("llmcache_money_saved_total", model="rich-1", currency="USD")
    assert money == pytest.approx((12 * 1.0 + 7 * 2.0) / 1e6)

    text = generate_latest(registry).decode()
    hits = 'llmcache_lookups_total{backend="memory",model="rich-1",namespace="app",result="hit"}'
    assert f"{hits} 1.0" in text
    assert 'llmcache_breaker_open{backend="memory",namespace="app"} 0.0' in text
    assert "# TYPE llmcache_lookup_seconds histogram" in text


def test_prometheus_breaker_gauge(registry: CollectorRegistry) -> None:
    cache = LLMCache(Failing(), breaker=CircuitBreaker(failures=1, cooldown=60))
    metrics.enable_prometheus(cache, registry=registry)
    cache.lookup("a", LLM)
    cache.lookup("b", LLM)
    labels = {"backend": "memory", "namespace": "default"}
    assert registry.get_sample_value("llmcache_breaker_open", labels) == 1
    for result in ("error", "skipped"):
        lookups = {"result": result, "model": "fake-model", **labels}
        assert registry.get_sample_value("llmcache_lookups_total", lookups) == 1


def test_enabled_globally_every_cache_reports_until_disabled(registry: CollectorRegistry) -> None:
    before = LLMCache(MemoryBackend(namespace="before"))
    exporter = metrics.enable_prometheus(registry=registry)
    assert metrics.enable_prometheus(registry=registry) is exporter  # one per registry
    after = LLMCache(MemoryBackend(namespace="after"))
    for cache in (before, after):
        cache.lookup("q", LLM)
        assert metrics.exporters_of(cache) == (exporter,)
    for ns in ("before", "after"):
        labels = {"result": "miss", "backend": "memory", "namespace": ns, "model": "fake-model"}
        assert registry.get_sample_value("llmcache_lookups_total", labels) == 1
    metrics.disable()
    assert metrics.exporters_of(before) == metrics.exporters_of(LLMCache(MemoryBackend())) == ()
    before.lookup("q", LLM)
    labels = {"result": "miss", "backend": "memory", "namespace": "before", "model": "fake-model"}
    assert registry.get_sample_value("llmcache_lookups_total", labels) == 1


def test_global_and_per_cache_exporters_both_report(
    otel: Otel, registry: CollectorRegistry
) -> None:
    cache = LLMCache(MemoryBackend())
    prom = metrics.enable_prometheus(registry=registry)
    tracer = otel.enable(cache)
    assert metrics.exporters_of(cache) == (prom, tracer)
    metrics.disable(tracer, cache)
    assert metrics.exporters_of(cache) == (prom,)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_start_http_server_serves_metrics(registry: CollectorRegistry) -> None:
    cache = LLMCache(MemoryBackend())
    metrics.enable_prometheus(cache, registry=registry)
    cache.lookup("q", LLM)
    port = _free_port()
    server, thread = metrics.start_http_server(port, "127.0.0.1", registry=registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    series = '{backend="memory",model="fake-model",namespace="default",result="miss"}'
    assert f"llmcache_lookups_total{series} 1.0" in body


# -- turning it on, and off ---------------------------------------------------------------------
def test_enable_by_names_checks_them() -> None:
    with pytest.raises(ConfigError, match=r"'statsd'.*otel, prometheus"):
        metrics.enable("otel,statsd")
    with pytest.raises(TypeError, match="LLMCache"):
        metrics.enable_otel(object())


def test_the_metrics_setting_turns_exporters_on_for_every_cache(otel: Otel) -> None:
    from llmcache import Settings

    settings = Settings(url="memory://")
    # LLMCACHE_METRICS: read with getattr until Settings declares the field (set it directly)
    object.__setattr__(settings, "metrics", "prometheus")
    cache = LLMCache.from_settings(settings)
    other = LLMCache(MemoryBackend())
    (exporter,) = metrics.exporters_of(cache)
    assert metrics.exporters_of(other) == (exporter,)
    assert type(exporter).__name__ == "PrometheusExporter"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_metrics_off_imports_no_exporter_package() -> None:
    result = _run(
        """
        import sys
        from llmcache import from_url
        cache = from_url("memory://")
        cache.update("q", "[('_type', 'x')]", [{"text": "a"}])
        assert cache.lookup("q", "[('_type', 'x')]") == [{"text": "a"}]
        roots = ("opentelemetry", "prometheus_client")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in roots)
        assert not loaded, loaded
        """
    )
    assert result.returncode == 0, result.stderr


def test_metrics_off_langchain_loads_no_exporter_of_ours() -> None:
    # langsmith (under langchain-core) imports opentelemetry by itself when it is installed;
    # what llmcache must not load is its exporters, nor prometheus_client.
    result = _run(
        """
        import sys
        from llmcache import LLMCache
        from llmcache.adapters.langchain import LangChainCache
        from tests.fakes import CountingChat
        model = CountingChat(cache=LangChainCache(LLMCache.from_url("memory://")))
        model.invoke("hello")
        model.invoke("hello")
        loaded = sorted(
            m for m in sys.modules
            if m.startswith(("llmcache.metrics.", "prometheus_client"))
            and m != "llmcache.metrics._observer"
        )
        assert not loaded, loaded
        """
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("name", "package"), [("otel", "opentelemetry"), ("prometheus", "prometheus_client")]
)
def test_a_missing_package_names_the_extra(name: str, package: str) -> None:
    result = _run(
        f"""
        import sys
        sys.modules[{package!r}] = None  # as if not installed
        import llmcache.metrics
        from llmcache import ConfigError
        try:
            llmcache.metrics.enable({name!r})
        except ConfigError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install 'llmcache-kit[{name}]'" in result.stdout


# -- the pieces ---------------------------------------------------------------------------------
def test_fault_kinds() -> None:
    try:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as exc:
            raise BackendUnavailable("redis get failed") from exc
    except BackendUnavailable as exc:
        assert fault_kind(exc) == "timeout"
    assert fault_kind(PartialOutage("node down")) == "partial_outage"
    assert fault_kind(ConnectionResetError()) == "unavailable"
    assert fault_kind(BackendError("x")) == "backend_error"
    assert fault_kind(KeyError("x")) == "KeyError"


def test_model_prices_match_the_longest_prefix() -> None:
    prices = ModelPrices.default()
    mini = prices.cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000)
    assert mini == pytest.approx(0.15 + 0.60)
    assert prices.cost("gpt-4o-2024-08-06", 1_000_000, 0) == pytest.approx(2.50)
    assert prices.cost("a-model-of-my-own", 10, 10) is None
    with pytest.raises(ConfigError, match="USD per 1M tokens"):
        prices.with_models({"x": (-1.0, 0.0)})


def test_latency_percentiles_interpolate() -> None:
    window = LatencyWindow()
    assert window.percentiles_ms() == {}
    window.add(0.002)
    assert window.percentiles_ms() == {"p50": 2.0, "p95": 2.0, "p99": 2.0, "max": 2.0, "count": 1}
    for ms in range(1, 101):
        window.add(ms / 1000)
    got = window.percentiles_ms()
    assert got["max"] == 100.0 and got["count"] == 101
    assert 49 <= got["p50"] <= 51 and 94 <= got["p95"] <= 96 and 98 <= got["p99"] <= 100
