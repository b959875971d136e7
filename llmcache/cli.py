"""The ``llmcache`` command: demo, key, forget, stats, clear, doctor, replay, bench, new-key.

Every store command takes ``--url`` and ``--namespace``; without them the settings decide
(``LLMCACHE_URL``, ``.env``, ``llmcache.toml``; default: a disk cache in the user cache dir).

Habits every command keeps (docs/cli.md):

- results on stdout; errors, warnings and progress on stderr;
- ``--json`` (``key``, ``forget``, ``stats``, ``doctor``, ``replay``, ``bench``): one JSON
  document on stdout and nothing else;
- the exit code says what went wrong (:class:`ExitCode`), the same way in every command;
- no secret (a password in a URL, a Momento API key, an encryption key) is ever printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmcache import __version__
from llmcache._bench_cli import bench
from llmcache.backends.base import describe
from llmcache.cache import DEFAULT_TTL, LLMCache
from llmcache.config import ENV_PREFIX, Settings, backend_env_names, load_settings
from llmcache.errors import BackendError, ConfigError, LLMCacheError, install_line
from llmcache.keys import KeyPolicy, TemperatureMode
from llmcache.keys.policy import printable
from llmcache.registry import redact_url, scheme_of
from llmcache.replay import DEFAULT_INPUT_PRICE, DEFAULT_OUTPUT_PRICE, DEFAULT_POLICIES
from llmcache.replay import replay as run_replay

__all__ = ["ExitCode", "app", "exit_code", "fail", "main", "print_error"]


class ExitCode(IntEnum):
    """What the exit status of ``llmcache`` means, in every command."""

    OK = 0
    #: the answer is "no": nothing to forget, a doctor check failed, a bad log line, aborted
    FAILED = 1
    #: the command line is malformed (typer/click: unknown option, missing argument, ...)
    USAGE = 2
    #: a value llmcache rejects (URL, setting, option, key policy) or a missing pip extra
    CONFIG = 3
    #: the store failed: unreachable, refused the credentials, or failed an operation
    STORE = 4


EPILOG = (
    "Exit codes: 0 ok; 1 no / failed (nothing to forget, a check failed, bad input, "
    "aborted); 2 usage error; 3 configuration error (URL, setting, option, missing extra); "
    "4 store error (unreachable, authentication, failed operation).\n\n"
    "Results go to stdout, errors to stderr; --json prints one JSON document. "
    "See docs/cli.md."
)

app = typer.Typer(
    name="llmcache",
    help="Cache LLM responses in memory, on disk, in Redis/Valkey or in Momento.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    # A traceback must not show local variables: they may hold a URL with its password.
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

UrlOpt = Annotated[
    str | None, typer.Option("--url", "-u", help="backend URL, e.g. disk:///tmp/c, redis://h:6379")
]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="tenant/app namespace")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="print one JSON document on stdout (docs/cli.md)")
]
LlmStringOpt = Annotated[
    str | None, typer.Option(help="LangChain's llm_string; default built from --model/--param")
]
ModelOpt = Annotated[str, typer.Option(help="model identity")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (JSON value), repeatable")
]
TemperatureModeOpt = Annotated[
    str | None,
    typer.Option(
        "--temperature-mode", help="include|ignore|bypass_above:T|sample:K (default: settings)"
    ),
]

# -- secrets, errors, output --------------------------------------------------------------------

# Option/variable names whose values are secrets (a Redis password, a Momento API key, ...).
_SECRET_NAMES = ("password", "api_key", "apikey", "token", "secret", "auth", "encryption")
_MIN_SECRET_CHARS = 4  # shorter values are not scrubbed from messages (they would garble them)
_secrets: set[str] = set()


def _note_secrets(url: str | None = None, settings: Settings | None = None) -> None:
    """Remember the secret values in play, so that no message can print them (see _scrub)."""
    found: list[str] = []
    secret_env = {ENV_PREFIX + "ENCRYPTION_KEY", ENV_PREFIX + "ENCRYPTION_PREVIOUS_KEYS"}
    secret_env |= {
        env
        for env, field in backend_env_names().items()
        if any(s in field.lower() for s in _SECRET_NAMES)
    }
    for name in secret_env:
        value = os.environ.get(name)
        if value:
            found.append(value)
            try:  # a list of keys, as JSON
                parsed = json.loads(value)
                if isinstance(parsed, list):
                    found.extend(str(v) for v in parsed)
            except ValueError:
                pass
    for text in (url, settings.url if settings else None):
        if text:
            found.extend(_url_secrets(text))
    if settings is not None:
        keys = [settings.encryption_key, *settings.encryption_previous_keys]
        found.extend(k.get_secret_value() for k in keys if k is not None)
        found.extend(v.get_secret_value() for v in settings.backend_env.values())
    _secrets.update(s for s in found if len(s) >= _MIN_SECRET_CHARS)


def _url_secrets(url: str) -> list[str]:
    found: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        # Whatever precedes the last "@" is credentials, even in a URL urlsplit misreads.
        userinfo = url.partition("://")[2].rpartition("@")[0]
        if userinfo:
            found += [userinfo, userinfo.partition(":")[2], unquote(userinfo.partition(":")[2])]
        found += [
            v for k, v in parse_qsl(parts.query) if any(s in k.lower() for s in _SECRET_NAMES)
        ]
    except ValueError:
        pass
    return found


def _scrub(text: str) -> str:
    """``text`` with every known secret value replaced by ``***`` (longest first), and lone
    surrogates (undecodable bytes of a command-line argument) escaped so it prints as UTF-8."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return str(printable(text))


def exit_code(exc: BaseException) -> ExitCode:
    """The exit code an error stands for (the same in every command)."""
    if isinstance(exc, ConfigError):
        return ExitCode.CONFIG
    if isinstance(exc, BackendError):
        # A driver that is not installed is an installation problem, not a store that failed.
        missing = isinstance(exc.__cause__, ImportError)
        return ExitCode.CONFIG if missing else ExitCode.STORE
    if isinstance(exc, OSError):
        return ExitCode.STORE
    return ExitCode.FAILED


def print_error(message: str) -> None:
    """Print ``error: message`` on stderr, secrets scrubbed, unwrapped (whole, searchable)."""
    err_console.print(f"[bold red]error:[/] {escape(_scrub(message))}", soft_wrap=True)


def fail(exc: BaseException) -> typer.Exit:
    """Print ``exc`` on stderr and return the exit to raise (``raise fail(exc) from None``)."""
    print_error(str(exc) or type(exc).__name__)
    return typer.Exit(code=int(exit_code(exc)))


def _emit_json(doc: Any) -> None:
    """The one JSON document a ``--json`` run prints on stdout."""
    typer.echo(_scrub(json.dumps(printable(doc), indent=2, ensure_ascii=False, default=str)))


def _settings(url: str | None, namespace: str | None, **extra: Any) -> Settings:
    _note_secrets(url)
    overrides: dict[str, Any] = dict(extra)
    if url is not None:
        overrides["url"] = url
    if namespace is not None:
        overrides["namespace"] = namespace
    settings = load_settings(**overrides)
    _note_secrets(settings=settings)
    return settings


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmcache {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    pass


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
        print_error(
            f"llmcache demo runs a LangChain model and needs {exc.name!r}: "
            + install_line("langchain")
        )
        raise typer.Exit(code=int(ExitCode.CONFIG)) from None

    try:
        settings = _settings(url, namespace)
        cache = LangChainCache.from_settings(settings)
    except LLMCacheError as exc:
        raise fail(exc) from None
    model, label = demo_model(latency, use_openai=openai and bool(os.environ.get("OPENAI_API_KEY")))
    console.print(
        f"model: [bold]{label}[/]   cache: [bold]{redact_url(settings.url)}[/] ({namespace})"
    )
    without: list[float] = []
    with_cache: list[float] = []
    try:
        with err_console.status("asking without a cache..."):
            for _ in range(runs):
                without.append(_timed(lambda: model.invoke(question, config={"callbacks": []})))
        cached = model.model_copy(update={"cache": cache})
        with err_console.status("asking with the cache..."):
            for _ in range(runs):
                with_cache.append(_timed(lambda: cached.invoke(question)))
    except Exception as exc:  # the model (OpenAI: a bad key, no network) failed the call
        cache.close()
        print_error(f"the model failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(code=int(ExitCode.FAILED)) from None
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
    if stats["errors"]:
        # The demo ran (a cache never fails the call), but the store did not work: say so.
        print_error(
            f"the store failed {stats['errors']} operations (served as misses); "
            "`llmcache doctor` says why"
        )
        raise typer.Exit(code=int(ExitCode.STORE))


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _llm_string(llm_string: str | None, model: str, param: list[str] | None) -> str:
    """The ``llm_string`` of a request as ``key`` and ``forget`` take it (the same for both)."""
    if llm_string is not None:
        return llm_string
    params: dict[str, Any] = {"_type": model}
    for item in param or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="'--param'")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return str(sorted(params.items()))


def _key_policy(settings: Settings, temperature_mode: str | None) -> KeyPolicy:
    """The key policy of the settings, with ``--temperature-mode`` when given."""
    try:
        mode = TemperatureMode.parse(temperature_mode or settings.key.temperature)
        return KeyPolicy(
            temperature=mode,
            version=settings.key.version,
            ignore_params=frozenset(settings.key.ignore_params),
        )
    except ValidationError as exc:  # e.g. a key version the policy refuses
        message = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        raise ConfigError(f"invalid key setting: {message}") from None


SemanticOpt = Annotated[
    str | None,
    typer.Option(
        "--semantic",
        metavar="MODULE:ATTR",
        help="also explain the semantic decision against the store (--url), with these "
        "embeddings: an importable Embeddings class or factory, e.g. "
        "llmcache.semantic:HashingEmbeddings",
    ),
]


def _embeddings(spec: str) -> Any:
    """The embeddings ``MODULE:ATTR`` names (a class or factory, called with no arguments)."""
    import importlib

    module, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"--semantic {spec!r}: cannot import it ({exc})") from None
    return factory() if callable(factory) else factory


@app.command()
def key(
    prompt: Annotated[str, typer.Argument(help="the prompt text")],
    llm_string: LlmStringOpt = None,
    model: ModelOpt = "gpt-4o-mini",
    param: ParamOpt = None,
    temperature_mode: TemperatureModeOpt = None,
    semantic: SemanticOpt = None,
    url: UrlOpt = None,
    namespace: NamespaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Explain the key of a request: what identifies it, what was dropped, the key itself.

    With --semantic: also which stored prompts the semantic layer would consider, their
    similarity and the guards' verdicts (docs/semantic.md).
    """
    text = _llm_string(llm_string, model, param)
    try:
        settings = _settings(url, namespace)
        policy = _key_policy(settings, temperature_mode)
        doc = json.loads(policy.explain(prompt, text))
        if semantic is not None:
            cache = LLMCache.from_settings(settings, embeddings=_embeddings(semantic))
            with cache:
                assert cache.semantic is not None
                cache.policy = cache.semantic.policy = policy
                doc["semantic"] = cache.semantic.explain(prompt, text)
    except LLMCacheError as exc:
        raise fail(exc) from None
    if as_json:
        _emit_json(doc)
    else:
        console.print_json(_scrub(json.dumps(printable(doc), ensure_ascii=False, default=str)))


@app.command()
def forget(
    prompt: Annotated[str, typer.Argument(help="the prompt text")],
    llm_string: LlmStringOpt = None,
    model: ModelOpt = "gpt-4o-mini",
    param: ParamOpt = None,
    temperature_mode: TemperatureModeOpt = None,
    url: UrlOpt = None,
    namespace: NamespaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete one request's cached answer (all its sample:k answers), namespace kept.

    The request is keyed as `llmcache key` keys it (same PROMPT and request options).

    Exit 0: deleted; 1: there was no entry; 3: configuration error; 4: the store failed.
    """
    text = _llm_string(llm_string, model, param)
    try:
        settings = _settings(url, namespace)
        policy = _key_policy(settings, temperature_mode)
        decision = policy.decide(prompt, text)
        deleted = False
        if decision.key is not None:
            # on_error="raise": a store that fails is an error here, not "nothing to forget".
            cache = LLMCache.from_settings(settings.model_copy(update={"on_error": "raise"}))
            with cache:
                cache.policy = policy
                deleted = cache.forget(prompt, text)
    except LLMCacheError as exc:
        raise fail(exc) from None
    doc = {
        "deleted": deleted,
        "key": decision.key,
        "namespace": settings.namespace,
        "url": redact_url(settings.url),
        "bypass": decision.reason,
    }
    if as_json:
        _emit_json(doc)
    elif deleted:
        console.print(f"deleted the entry {decision.key} from namespace {settings.namespace!r}")
    elif decision.key is None:
        console.print(
            "nothing to forget: the policy does not cache this request "
            f"({escape(str(decision.reason))})"
        )
    else:
        console.print(f"no entry {decision.key} in namespace {settings.namespace!r}")
    if not deleted:
        raise typer.Exit(code=int(ExitCode.FAILED))


@app.command(name="new-key")
def new_key() -> None:
    """Print a fresh random key for LLMCACHE_ENCRYPTION_KEY (client-side encryption)."""
    from llmcache.codec import new_encryption_key

    print(new_encryption_key())


@app.command()
def stats(url: UrlOpt = None, namespace: NamespaceOpt = None, as_json: JsonOpt = False) -> None:
    """What the store says about the namespace (entries, bytes, server facts)."""
    try:
        settings = _settings(url, namespace)
        cache = LLMCache.from_settings(settings)
        try:
            info = {"url": redact_url(settings.url), **describe(cache.backend)}
        finally:
            cache.close()
    except (LLMCacheError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        _emit_json(info)
        return
    table = Table(show_header=False)
    for name, value in info.items():
        table.add_row(name, escape(_scrub(str(value))))
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
                err=True,
            )
        cache = LLMCache.from_settings(settings.model_copy(update={"on_error": "raise"}))
        with cache:
            cache.clear()
    except (LLMCacheError, OSError) as exc:
        raise fail(exc) from None
    console.print(f"cleared namespace {settings.namespace!r}")


@app.command()
def doctor(url: UrlOpt = None, namespace: NamespaceOpt = None, as_json: JsonOpt = False) -> None:
    """Check the configuration and the store: write, read back, delete, with timings."""
    checks: list[dict[str, Any]] = []
    shown: dict[str, str | None] = {
        "url": redact_url(url) if url else None,
        "namespace": namespace,
    }
    step, problem, cache = "settings", None, None
    try:
        settings = _settings(url, namespace)
        shown = {"url": redact_url(settings.url), "namespace": settings.namespace}
        checks.append(_check("settings", f"url={shown['url']} namespace={shown['namespace']}"))
        step, start = "connect", time.perf_counter()
        cache = LLMCache.from_settings(settings)
        checks.append(_check("connect", type(cache.backend).__name__, start))
        store = cache.backend
        probe, value = f"doctor:{uuid.uuid4().hex}", os.urandom(64)
        for step, op in (
            ("set", lambda: store.set(probe, value, 60)),
            ("get", lambda: store.get(probe) == value or _raise("read back other bytes")),
            ("delete", lambda: store.delete(probe)),
        ):
            start = time.perf_counter()
            op()
            checks.append(_check(step, "ok", start))
    except (LLMCacheError, OSError) as exc:
        problem = exc
        checks.append({"name": step, "ok": False, "detail": "failed", "ms": None})
    finally:
        if cache is not None:
            # The check already passed or failed; closing says nothing new.
            with contextlib.suppress(Exception):
                cache.close()
    error = (
        None
        if problem is None
        else {"type": type(problem).__name__, "message": _scrub(str(problem))}
    )
    if as_json:
        _emit_json({"ok": problem is None, **shown, "checks": checks, "error": error})
    else:
        table = Table("check", "result", "ms")
        for check in checks:
            result = escape(_scrub(check["detail"])) if check["ok"] else "[red]failed[/]"
            ms = "" if check["ms"] is None else f"{check['ms']:.2f}"
            table.add_row(check["name"], result, ms)
        console.print(table)
    if problem is not None:
        print_error(f"{type(problem).__name__}: {problem}")
        raise typer.Exit(code=int(exit_code(problem)))


def _check(name: str, detail: str, start: float | None = None) -> dict[str, Any]:
    ms = None if start is None else round((time.perf_counter() - start) * 1000, 3)
    return {"name": name, "ok": True, "detail": detail, "ms": ms}


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
    as_json: JsonOpt = False,
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
        raise fail(exc) from None
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
        err_console.print(f"[yellow]{unknown} hits had no usage: counted as 0 tokens saved[/]")
    if report.out_of_order:
        err_console.print(
            f"[yellow]{report.out_of_order} lines are older than a line before them: "
            "lines are replayed in file order (sort merged logs by ts)[/]"
        )
    if report.bad_lines:
        err_console.print(f"[yellow]skipped {report.bad_lines} bad lines[/]; first:")
        for error in report.errors[:5]:
            err_console.print(f"  {error}")


def _raise(message: str) -> bool:
    raise LLMCacheError(message)


app.command(name="bench")(bench)


def main() -> None:
    """Console-script entry point (also ``python -m llmcache``)."""
    app(prog_name="llmcache")
