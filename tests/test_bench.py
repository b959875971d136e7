"""llmcache bench and the cost model: numbers a user would act on must be consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcache import ConfigError
from llmcache.bench import BenchConfig, make_answers, percentiles, run_bench
from llmcache.cli import app
from llmcache.pricing import Prices, Traffic, monthly_costs


def test_bench_measures_every_op_and_honours_the_hit_ratio(tmp_path: Path) -> None:
    config = BenchConfig(
        urls=["memory://", f"disk://{tmp_path}"],
        keys=50,
        ops=400,
        hit_ratio=0.75,
        concurrency=[1, 8],
        rounds=2,
    )
    results = run_bench(config)
    assert [r.url for r in results] == config.urls
    for result in results:
        assert result.error is None
        ops = result.ops
        assert len(ops["sync set"].latencies) == 50
        looked = len(ops["sync hit warm"].latencies) + len(ops["sync miss"].latencies)
        assert looked == 400
        assert 0.6 < len(ops["sync hit warm"].latencies) / looked < 0.9
        assert len(ops["async hit c=8 warm"].latencies) == len(ops["sync hit warm"].latencies)
        # Cold and warm apart: every cold entry read exactly once, sync and at each level.
        for name in ("sync hit cold", "async hit c=1 cold", "async hit c=8 cold"):
            assert len(ops[name].latencies) == 50 and ops[name].errors == 0
        summary = ops["async hit c=8 warm"].summary()
        # Throughput is hits over the time they took: consistent with the measured latencies.
        assert 0 < summary["ops_per_s"] * summary["p50_ms"] / 1000 < 8 * 20
        # Stored entries are compressed JSON: smaller than the raw answer text they hold.
        raw = sum(len(json.dumps(a)) for a in make_answers(config)) / config.keys
        assert 0 < result.bytes_per_entry < raw


def test_an_unreachable_backend_is_reported_not_fatal() -> None:
    pytest.importorskip("redis")
    results = run_bench(
        BenchConfig(urls=["memory://", "redis://127.0.0.1:1/0"], keys=5, ops=20, rounds=1)
    )
    assert results[0].error is None
    assert results[1].error is not None and "127.0.0.1:1" in results[1].error


def test_answers_cover_the_size_range_and_scripts() -> None:
    answers = make_answers(BenchConfig(urls=[], keys=300))
    sizes = [len(a[0]["m"]["content"].encode()) for a in answers]
    assert min(sizes) < 400 and max(sizes) > 10_000
    assert any(ord(a[0]["m"]["content"][0]) > 0x3000 for a in answers)  # CJK answers too


def test_percentiles_use_nearest_rank() -> None:
    samples = [i / 1000 for i in range(1, 1001)]  # 1..1000 ms
    assert percentiles(samples) == {"p50_ms": 500, "p95_ms": 950, "p99_ms": 990, "p999_ms": 999}


def test_costs_follow_traffic_and_storage() -> None:
    small = monthly_costs(Traffic(10, 0.5, 2000), Prices())
    big = monthly_costs(Traffic(100, 0.5, 2000), Prices())
    assert big["Momento"] == pytest.approx(small["Momento"] * 10, rel=0.01)  # per GB moved
    assert big["ElastiCache Serverless"] > small["ElastiCache Serverless"]
    # Nodes are a fixed price until the data outgrows a node, then shards are added.
    assert small["ElastiCache nodes"] == pytest.approx(0.065 * 2 * 730, rel=0.01)
    assert (
        monthly_costs(Traffic(100, 0.1, 20_000), Prices())["ElastiCache nodes"]
        > big["ElastiCache nodes"]
    )


def test_price_overrides_are_checked() -> None:
    assert Prices().with_overrides(["momento_per_gb=0.25"]).momento_per_gb == 0.25
    with pytest.raises(ConfigError, match="momento_per_tb"):
        Prices().with_overrides(["momento_per_tb=1"])
    with pytest.raises(ConfigError, match="'cheap'"):
        Prices().with_overrides(["node_per_hour=cheap"])


def test_cli_json_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "b.png"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--url",
            "memory://",
            "--keys",
            "20",
            "--ops",
            "40",
            "--concurrency",
            "1,4",
            "--json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    ops = report["results"][0]["ops"]
    assert ops["sync hit cold"]["count"] == 20 and ops["sync hit warm"]["count"] > 0
    assert report["results"][0]["layer_overhead_cold_p50"] > 0
    assert set(report["monthly_cost_usd"]) == {
        "Momento",
        "ElastiCache Serverless",
        "ElastiCache nodes",
    }
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_bench_llm_string_is_what_langchain_builds_for_a_tool_calling_chat_openai() -> None:
    """The ~1 KB llm_string of the benchmarks is built as LangChain builds it (not hand-made)."""
    import sys

    from llmcache.bench import LLM_STRING
    from llmcache.keys import KeyPolicy

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        from _workload import chat_openai_llm_string
    finally:
        sys.path.pop(0)
    assert chat_openai_llm_string() == LLM_STRING and len(LLM_STRING) > 1000
    decision = KeyPolicy().decide("p", LLM_STRING)
    assert decision.material["model"] == "langchain.chat_models.openai.ChatOpenAI"
    assert "openai_api_key" not in decision.material["params"]  # a secret: never in the key
