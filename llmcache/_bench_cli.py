"""The ``llmcache bench`` command: run :mod:`llmcache.bench`, show tables, JSON or a plot."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from llmcache.bench import BenchConfig, BenchResult, run_bench, total_ops
from llmcache.errors import LLMCacheError, install_line
from llmcache.pricing import PRICES_AS_OF, Prices, Traffic, monthly_costs
from llmcache.registry import redact_url

__all__ = ["bench"]

DEFAULT_URLS = ["memory://", "disk:///tmp/llmcache-bench"]


def bench(
    url: Annotated[
        list[str] | None, typer.Option("--url", "-u", help="backend URL; repeat to compare")
    ] = None,
    keys: Annotated[int, typer.Option(min=1, help="distinct cached answers")] = 200,
    ops: Annotated[int, typer.Option(min=10, help="lookups per backend and mode")] = 2000,
    hit_ratio: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.9,
    concurrency: Annotated[str, typer.Option(help="async concurrency levels")] = "1,8,64",
    rps: Annotated[float, typer.Option(help="traffic to price, lookups per second")] = 50.0,
    price: Annotated[
        list[str] | None, typer.Option(help="override a unit price, NAME=VALUE; repeatable")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
    plot: Annotated[Path | None, typer.Option(help="write a PNG: latency CDF + cost")] = None,
) -> None:
    """Compare backends on one LLM-shaped workload: latency, throughput, bytes, cost."""
    # Pipes and CI logs get a table wide enough to read, terminals their own width.
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 132)
    try:
        levels = [int(c) for c in concurrency.split(",") if c.strip()]
        if not levels or min(levels) < 1:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(f"--concurrency {concurrency!r}: use e.g. 1,8,64") from None
    config = BenchConfig(
        urls=url or DEFAULT_URLS, keys=keys, ops=ops, hit_ratio=hit_ratio, concurrency=levels
    )
    try:
        prices = Prices().with_overrides(price or [])
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("benchmarking", total=total_ops(config))
            results = run_bench(config, tick=lambda n: progress.advance(task, n))
    except LLMCacheError as exc:
        from llmcache.cli import fail  # not at the top: the cli module imports this one

        raise fail(exc) from None
    value_bytes = (
        statistics.fmean(r.bytes_per_entry for r in results if r.bytes_per_entry)
        if any(r.bytes_per_entry for r in results)
        else 0.0
    )
    costs = monthly_costs(Traffic(rps, hit_ratio, value_bytes), prices)
    report = {
        "config": {**config.__dict__, "urls": [redact_url(u) for u in config.urls]},
        "results": [r.as_dict() for r in results],
        "monthly_cost_usd": costs,
        "cost_assumptions": {
            "requests_per_s": rps,
            "hit_ratio": hit_ratio,
            "value_bytes": round(value_bytes, 1),
            "prices": prices.__dict__,
            "prices_as_of": PRICES_AS_OF,
        },
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_tables(console, results, config, costs, rps, value_bytes)
    if plot is not None:
        _plot(results, costs, plot)
        console.print(f"plot written to {plot}")
    failed = [r for r in results if r.error]
    if failed:
        from llmcache.cli import ExitCode, print_error

        for result in failed:
            print_error(f"{_label(result.url)}: {result.error}")
        raise typer.Exit(code=int(ExitCode.STORE))


def _label(url: str) -> str:
    """How a backend is shown: no secrets; a local Momento server is marked as emulated."""
    label = redact_url(url)
    return f"{label} (emulated)" if url.startswith("momento:") and "local=" in url else label


def _print_tables(
    console: Console,
    results: list[BenchResult],
    config: BenchConfig,
    costs: dict[str, float],
    rps: float,
    value_bytes: float,
) -> None:
    table = Table(
        title=f"{config.keys} answers, {config.ops} lookups per mode, hit ratio "
        f"{config.hit_ratio:g} (latency in ms; cold = an entry's first read, warm = read before)"
    )
    for column in ("backend", "op", "count", "err", "p50", "p95", "p99", "p99.9", "ops/s"):
        table.add_column(column, justify="left" if column in ("backend", "op") else "right")
    for result in results:
        if result.error:
            failed = ("[red]failed[/]", "", "", escape(result.error), "", "", "", "")
            table.add_row(_label(result.url), *failed)
            continue
        for name, stats in result.ops.items():
            s = stats.summary()
            table.add_row(
                _label(result.url),
                name,
                str(s["count"]),
                str(s["errors"]),
                *(f"{s.get(k, 0):.3f}" for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms")),
                f"{s['ops_per_s']:,.0f}" if "ops_per_s" in s else "",
            )
        table.add_section()
    console.print(table)
    summary = Table(
        "backend",
        "bytes/entry",
        "bytes/hit",
        "hit ratio",
        "cold hit ÷ store op (p50)",
        "warm hit ÷ store op (p50)",
    )
    for result in results:
        d = result.as_dict()
        summary.add_row(
            _label(result.url),
            f"{d['bytes_per_entry']:,.0f}",
            f"{d['bytes_per_hit']:,.0f}",
            f"{d['hit_ratio_seen']:.3f}",
            f"{d['layer_overhead_cold_p50'] or 0:.2f}x",
            f"{d['layer_overhead_p50'] or 0:.2f}x",
        )
    console.print(summary)
    cost = Table(
        "pricing model",
        "USD / month",
        title=f"{rps:g} lookups/s, hit ratio "
        f"{config.hit_ratio:g}, {value_bytes:,.0f} B values (prices as of {PRICES_AS_OF})",
    )
    for name, usd in costs.items():
        cost.add_row(name, f"{usd:,.2f}")
    console.print(cost)


def _plot(results: list[BenchResult], costs: dict[str, float], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise typer.BadParameter(f"--plot needs matplotlib: {install_line('bench')}") from None
    fig, (cdf, bars) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=[2, 1])
    for result in results:
        for kind, style in (("cold", "--"), ("warm", "-")):
            op = result.ops.get(f"sync hit {kind}")
            hits = sorted(op.latencies) if op else []
            if hits:
                n = len(hits)
                cdf.plot(
                    [h * 1000 for h in hits],
                    [(i + 1) / n for i in range(n)],
                    style,
                    label=f"{_label(result.url)} ({kind})",
                )
    cdf.set_xscale("log")
    cdf.set_xlabel("hit latency, ms (log scale)")
    cdf.set_ylabel("fraction of hits")
    cdf.set_title("Sync hit latency CDF")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize=8)
    names: list[Any] = list(costs)
    bars.bar(names, list(costs.values()), color=["#4c72b0", "#dd8452", "#55a868"])
    bars.set_ylabel("USD / month")
    bars.set_title(f"Estimated cost (prices as of {PRICES_AS_OF})")
    bars.tick_params(axis="x", labelrotation=15, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
