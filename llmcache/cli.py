"""The ``llmcache`` command: demo, key, stats, clear, doctor, replay.

Every command takes ``--url`` and ``--namespace``; without them the settings decide
(``LLMCACHE_URL``, ``.env``, ``llmcache.toml``; default: a disk cache in the user cache dir).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmcache._bench_cli import bench
from llmcache.backends.base import describe
from llmcache.cache import DEFAULT_TTL, LLMCache
from llmcache.config import Settings, load_settings
from llmcache.errors import LLMCacheError
from llmcache.registry import redact_url, scheme_of
from llmcache.replay import DEFAULT_INPUT_PRICE, DEFAULT_OUTPUT_PRICE, DEFAULT_POLICIES
from llmcache.replay import replay as run_replay

__all__ = ["app", "main"]

app = typer.Typer(
    name="llmcache",
    help="Cache LLM responses in memory, on disk, in Redis/Valkey or in Momento.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

UrlOpt = Annotated[
    str | None, typer.Option("--url", "-u", help="backend URL, e.g. disk:///tmp/c, redis://h:6379")
]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="tenant/app namespace")]


def _settings(url: str | None, namespace: str | None, **extra: Any) -> Settings:
    overrides: dict[str, Any] = dict(extra)
    if url is not None:
        overrides["url"] = url
    if namespace is not None:
        overrides["namespace"] = namespace
    return load_settings(**overrides)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    return typer.Exit(code=1)


@app.command()
def demo(
    url: UrlOpt = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "demo",
    runs: Annotated[int, typer.Option(min=1, max=20, help="calls with and without")] = 3,
    latency: Annotated[float, typer.Option(min=0.0, help="offline model's seconds")] = 2.0,
    question: Annotated[str, typer.Option(help="what to ask")] = "What does a cache do?",
    openai: Annotated[
        bool, typer.Option(help="use OpenAI when OPENAI_API_KEY and langchain-openai are there")
    ] = True,
) -> None:
    """Ask the same question RUNS times without a cache, then RUNS times with one."""
    try:
        from llmcache._demo import demo_model
        from llmcache.adapters.langchain import LangChainCache
    except ImportError as exc:
        err_console.print(
            f"[bold red]error:[/] llmcache demo runs a LangChain model and needs {exc.name!r}: "
            + escape("pip install 'llmcache[langchain]'"),
            soft_wrap=True,
        )
        raise typer.Exit(code=1) from None

    try:
        settings = _settings(url, namespace)
        cache = LangChainCache.from_settings(settings)
    except LLMCacheError as exc:
        raise _fail(exc) from None
    model, label = demo_model(latency, use_openai=openai and bool(os.environ.get("OPENAI_API_KEY")))
    console.print(
        f"model: [bold]{label}[/]   cache: [bold]{redact_url(settings.url)}[/] ({namespace})"
    )
    without: list[float] = []
    with_cache: list[float] = []
    with console.status("asking without a cache..."):
        for _ in range(runs):
            without.append(_timed(lambda: model.invoke(question, config={"callbacks": []})))
    cached = model.model_copy(update={"cache": cache})
    with console.status("asking with the cache..."):
        for _ in range(runs):
            with_cache.append(_timed(lambda: cached.invoke(question)))
    table = Table(title=f"{question!r}, {runs} times each")
    for column in ("run", "without cache (s)", "with cache (s)", "speed-up"):
        table.add_column(column, justify="right")
    for i, (a, b) in enumerate(zip(without, with_cache, strict=True), start=1):
        table.add_row(str(i), f"{a:.4f}", f"{b:.6f}", f"{a / b:,.0f}x" if b else "-")
    console.print(table)
    stats = cache.stats
    # Only a store that outlives the process, and that took this run's writes, serves the next.
    persists = scheme_of(settings.url) != "memory" and not stats["errors"]
    console.print(
        f"hits {stats['hits']}, misses {stats['misses']}, errors {stats['errors']}; "
        f"total {sum(without):.2f} s without, {sum(with_cache):.2f} s with the cache."
        + (" Run it again: the next process hits the entries this one wrote." if persists else "")
    )
    cache.close()


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@app.command()
def key(
    prompt: Annotated[str, typer.Argument(help="the prompt text")],
    llm_string: Annotated[
        str | None, typer.Option(help="LangChain's llm_string; default built from --model/--param")
    ] = None,
    model: Annotated[str, typer.Option(help="model identity")] = "gpt-4o-mini",
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (JSON value), repeatable")
    ] = None,
    temperature_mode: Annotated[
        str | None, typer.Option("--temperature-mode", help="include|ignore|bypass_above:T|...")
    ] = None,
) -> None:
    """Explain the key of a request: what identifies it, what was dropped, the key itself."""
    from llmcache.keys import KeyPolicy

    try:
        key_settings = _settings(None, None).key
        params: dict[str, Any] = {"_type": model}
        for item in param or []:
            name, sep, raw = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--param {item!r}: expected NAME=VALUE")
            try:
                params[name] = json.loads(raw)
            except json.JSONDecodeError:
                params[name] = raw
        policy = KeyPolicy(
            temperature=temperature_mode or key_settings.temperature,
            version=key_settings.version,
            ignore_params=frozenset(key_settings.ignore_params),
        )
        console.print_json(
            policy.explain(prompt, llm_string or str(sorted(params.items())))
        )
    except LLMCacheError as exc:
        raise _fail(exc) from None


@app.command(name="new-key")
def new_key() -> None:
    """Print a fresh random key for LLMCACHE_ENCRYPTION_KEY (client-side encryption)."""
    from llmcache.codec import new_encryption_key

    print(new_encryption_key())


@app.command()
def stats(url: UrlOpt = None, namespace: NamespaceOpt = None) -> None:
    """What the store says about the namespace (entries, bytes, server facts)."""
    try:
        cache = LLMCache.from_settings(_settings(url, namespace))
        info = describe(cache.backend)
        cache.close()
    except LLMCacheError as exc:
        raise _fail(exc) from None
    table = Table(show_header=False)
    for name, value in info.items():
        table.add_row(name, str(value))
    console.print(table)


@app.command()
def clear(
    url: UrlOpt = None,
    namespace: NamespaceOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Remove every entry of one namespace (other namespaces and foreign keys stay)."""
    try:
        settings = _settings(url, namespace)
        if not yes:
            typer.confirm(
                f"Clear namespace {settings.namespace!r} of {redact_url(settings.url)}?",
                abort=True,
            )
        cache = LLMCache.from_settings(settings.model_copy(update={"on_error": "raise"}))
        cache.clear()
        cache.close()
    except LLMCacheError as exc:
        raise _fail(exc) from None
    console.print(f"cleared namespace {settings.namespace!r}")


@app.command()
def doctor(url: UrlOpt = None, namespace: NamespaceOpt = None) -> None:
    """Check the configuration and the store: write, read back, delete, with timings."""
    checks = Table("check", "result", "ms")
    ok = True
    try:
        settings = _settings(url, namespace)
        checks.add_row(
            "settings", f"url={redact_url(settings.url)} namespace={settings.namespace}", ""
        )
        start = time.perf_counter()
        cache = LLMCache.from_settings(settings)
        checks.add_row("connect", type(cache.backend).__name__, _ms(start))
        probe, value = f"doctor:{uuid.uuid4().hex}", os.urandom(64)
        for name, op in (
            ("set", lambda: cache.backend.set(probe, value, 60)),
            ("get", lambda: cache.backend.get(probe) == value or _raise("read back other bytes")),
            ("delete", lambda: cache.backend.delete(probe)),
        ):
            start = time.perf_counter()
            op()
            checks.add_row(name, "ok", _ms(start))
        cache.close()
    except (LLMCacheError, OSError) as exc:
        ok = False
        problem = f"{type(exc).__name__}: {exc}"
        checks.add_row("[red]failed[/]", "see below", "")
    console.print(checks)
    if not ok:
        # Unwrapped, so the whole message can be read and searched (and copied into a ticket).
        console.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)
        raise typer.Exit(code=1)


@app.command()
def replay(
    log: Annotated[Path, typer.Argument(help="request log (JSONL), see docs/replay.md")],
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            "-p",
            help="temperature mode, repeatable: include | ignore | bypass_above:T | sample:K "
            "(default: all four: include, ignore, bypass_above:0.5, sample:3)",
        ),
    ] = None,
    ttl: Annotated[
        float, typer.Option(min=0.0, help="entry lifetime in seconds of the log's ts; 0 = never")
    ] = DEFAULT_TTL,
    input_price: Annotated[
        float, typer.Option(min=0.0, help="USD per 1M input tokens (example: gpt-4o-mini)")
    ] = DEFAULT_INPUT_PRICE,
    output_price: Annotated[
        float, typer.Option(min=0.0, help="USD per 1M output tokens (example: gpt-4o-mini)")
    ] = DEFAULT_OUTPUT_PRICE,
    ignore_param: Annotated[
        list[str] | None, typer.Option("--ignore-param", help="leave this parameter out of keys")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="count and skip bad lines instead of stopping")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Replay a log of real requests through key policies: hit rate, tokens and $ saved."""
    try:
        report = run_replay(
            log,
            policy or DEFAULT_POLICIES,
            ttl=ttl or None,
            skip_bad=skip_bad,
            input_price=input_price,
            output_price=output_price,
            ignore_params=ignore_param or (),
        )
    except LLMCacheError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    requests = report.results[0].requests
    span = (report.last_ts or 0.0) - (report.first_ts or 0.0)
    table = Table(
        title=f"{log.name}: {requests} requests over {span / 3600:.1f} h, "
        f"TTL {'none' if report.ttl is None else f'{report.ttl:g} s'}"
    )
    table.add_column("policy", no_wrap=True)
    for column in ("requests", "hit rate", "hits", "bypasses", "tokens saved"):
        table.add_column(column, justify="right")
    table.add_column("$ saved", justify="right")
    for r in report.results:
        table.add_row(
            r.policy,
            f"{r.requests:,}",
            f"{r.hit_rate:.1%}",
            f"{r.hits:,}",
            f"{r.bypasses:,}",
            f"{r.tokens_saved:,}",
            f"{r.cost_saved:,.4f}",
        )
    console.print(table)
    console.print(
        f"prices: ${report.input_price:g} / ${report.output_price:g} per 1M input / output "
        "tokens (example prices; override with --input-price / --output-price)"
    )
    unknown = max(r.hits_without_usage for r in report.results)
    if unknown:
        console.print(f"[yellow]{unknown} hits had no usage: counted as 0 tokens saved[/]")
    if report.out_of_order:
        console.print(
            f"[yellow]{report.out_of_order} lines are older than a line before them: "
            "lines are replayed in file order (sort merged logs by ts)[/]"
        )
    if report.bad_lines:
        err_console.print(f"[yellow]skipped {report.bad_lines} bad lines[/]; first:")
        for error in report.errors[:5]:
            err_console.print(f"  {error}")


def _ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:.2f}"


def _raise(message: str) -> bool:
    raise LLMCacheError(message)


app.command(name="bench")(bench)


def main() -> None:
    """Console-script entry point."""
    app()
