"""Request logs: write them from LangChain, replay them through key policies without a model.

A request log is JSON Lines, one request per line (see ``docs/replay.md``)::

    {"ts": 1718000000.5, "prompt": "<prompt as LangChain passes it>", "llm_string": "<as passed>",
     "usage": {"input_tokens": 31, "output_tokens": 120}}

or, written by hand or exported from elsewhere, the chat form::

    {"ts": 1718000000.5, "messages": [{"role": "user", "content": "What is a cache?"}],
     "model": "gpt-4o-mini", "params": {"temperature": 0.7},
     "usage": {"input_tokens": 31, "output_tokens": 120}}

:func:`replay` runs every request through a simulated cache per temperature mode (no store, no
model: a dict of key -> (stored_at, answers stored)) and reports hits, misses, bypasses and the
tokens and money the hits would have saved::

    from llmcache.replay import replay

    report = replay("requests.jsonl", ["include", "ignore", "bypass_above:0.5", "sample:3"])
    for result in report.results:
        print(result.policy, result.hits, f"{result.hit_rate:.1%}")

:class:`RequestRecorder` appends such lines; ``LangChainCache(..., record_to=path)`` uses it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from llmcache.cache import DEFAULT_TTL
from llmcache.errors import ConfigError, LLMCacheError
from llmcache.keys import KeyPolicy, TemperatureMode

__all__ = [
    "DEFAULT_INPUT_PRICE",
    "DEFAULT_OUTPUT_PRICE",
    "DEFAULT_POLICIES",
    "LogLineError",
    "PolicyResult",
    "ReplayReport",
    "Request",
    "RequestRecorder",
    "chat_request",
    "parse_request",
    "read_requests",
    "replay",
]

log = logging.getLogger("llmcache")

#: the four temperature modes, compared by default.
DEFAULT_POLICIES: tuple[str, ...] = ("include", "ignore", "bypass_above:0.5", "sample:3")
#: example prices in USD per 1M tokens: OpenAI gpt-4o-mini list prices (openai.com/api/pricing,
#: at the model's launch, July 2024). Override them (``--input-price`` / ``--output-price``).
DEFAULT_INPUT_PRICE = 0.15
DEFAULT_OUTPUT_PRICE = 0.60

_MAX_ERRORS_KEPT = 20  # bad lines listed in a report (all are counted)
_MEMO_SIZE = 65_536  # distinct requests whose conversion / key decision is remembered


class LogLineError(LLMCacheError):
    """A line of a request log that is not a request; names the file and line number."""

    def __init__(self, message: str, *, line_no: int, source: str = "") -> None:
        where = f"{source} line {line_no}" if source else f"line {line_no}"
        super().__init__(f"{where}: {message}")
        self.line_no = line_no
        self.reason = message


# --------------------------------------------------------------------------- the format


@dataclass(frozen=True, slots=True)
class Request:
    """One logged request: when, what LangChain passed to the cache, and its token usage."""

    ts: float
    prompt: str
    llm_string: str
    input_tokens: int | None = None
    output_tokens: int | None = None


# LangChain's own names for message types (langchain_core.load.dumps of a list of messages).
_ROLES: dict[str, tuple[str, str]] = {
    "user": ("HumanMessage", "human"),
    "human": ("HumanMessage", "human"),
    "assistant": ("AIMessage", "ai"),
    "ai": ("AIMessage", "ai"),
    "system": ("SystemMessage", "system"),
    "tool": ("ToolMessage", "tool"),
}


# fields LangChain's dumps() writes even when left at their defaults
_DEFAULTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "ai": (("tool_calls", []), ("invalid_tool_calls", [])),
    "tool": (("status", "success"),),
}


def chat_request(
    messages: Sequence[Mapping[str, Any]], model: str, params: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """The ``(prompt, llm_string)`` pair of a chat call, built the way LangChain builds it.

    The prompt is what ``langchain_core.load.dumps(messages)`` gives for plain messages
    (``role`` user/human, assistant/ai, system, tool; extra fields such as ``tool_call_id`` go
    into the message's kwargs). The llm_string is LangChain's ``str(sorted(params.items()))``
    form with ``_type="chat"`` and ``model`` added: a chat model that is not serialisable.
    """
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"messages[{i}] is not an object")
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise ValueError(f"messages[{i}].role {role!r} is not one of {sorted(_ROLES)}")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise ValueError(f"messages[{i}].content must be text or a list of content blocks")
        cls, kind = _ROLES[role]
        kwargs: dict[str, Any] = {"content": content, "type": kind}
        kwargs.update((k, v) for k, v in message.items() if k not in ("role", "content", "type"))
        for name, default in _DEFAULTS.get(kind, ()):
            kwargs.setdefault(name, default)
        out.append(
            {
                "lc": 1,
                "type": "constructor",
                "id": ["langchain", "schema", "messages", cls],
                "kwargs": kwargs,
            }
        )
    llm_params: dict[str, Any] = {"_type": "chat", "model": model, **(params or {})}
    return json.dumps(out), str(sorted(llm_params.items()))


_CHAT_MEMO: dict[bytes, tuple[str, str]] = {}


def _chat_request_memo(
    messages: list[Any], model: str, params: dict[str, Any] | None
) -> tuple[str, str]:
    """:func:`chat_request`, remembered: a log repeats the same conversations many times."""
    try:
        memo_key = orjson.dumps([messages, model, params])
    except TypeError:  # pragma: no cover - decoded JSON always dumps
        return chat_request(messages, model, params)
    pair = _CHAT_MEMO.get(memo_key)
    if pair is None:
        pair = chat_request(messages, model, params)
        if len(_CHAT_MEMO) >= _MEMO_SIZE:
            _CHAT_MEMO.clear()
        _CHAT_MEMO[memo_key] = pair
    return pair


def _tokens(usage: Mapping[str, Any], name: str) -> int | None:
    value = usage.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"usage.{name} must be a non-negative integer, not {value!r}")
    return value


def parse_request(obj: Any) -> Request:
    """Read one decoded log line; :class:`ValueError` says what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    ts = obj.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise ValueError('"ts" (unix seconds, a number) is missing or not a number')
    if "messages" in obj:
        messages, model, params = obj["messages"], obj.get("model"), obj.get("params")
        if not isinstance(messages, list) or not messages:
            raise ValueError('"messages" must be a non-empty list of {"role", "content"}')
        if not isinstance(model, str) or not model:
            raise ValueError('"model" (text) is required with "messages"')
        if params is not None and not isinstance(params, dict):
            raise ValueError('"params" must be an object, e.g. {"temperature": 0.7}')
        prompt, llm_string = _chat_request_memo(messages, model, params)
    else:
        raw_prompt, raw_llm_string = obj.get("prompt"), obj.get("llm_string")
        if not isinstance(raw_prompt, str) or not isinstance(raw_llm_string, str):
            raise ValueError('expected "prompt" and "llm_string" (text), or "messages" and "model"')
        prompt, llm_string = raw_prompt, raw_llm_string
    usage = obj.get("usage")
    input_tokens = output_tokens = None
    if usage is not None:
        if not isinstance(usage, dict):
            raise ValueError('"usage" must be an object {"input_tokens", "output_tokens"}')
        input_tokens = _tokens(usage, "input_tokens")
        output_tokens = _tokens(usage, "output_tokens")
    return Request(float(ts), prompt, llm_string, input_tokens, output_tokens)


def read_requests(
    lines: Iterable[str | bytes],
    *,
    source: str = "",
    errors: list[LogLineError] | None = None,
) -> Iterator[Request]:
    """Parse log lines (blank lines are skipped).

    A bad line raises :class:`LogLineError` naming its number, unless ``errors`` is a list: then
    the error is appended there and the line skipped.
    """
    loads = orjson.loads
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            request = parse_request(loads(line))
        except (orjson.JSONDecodeError, ValueError) as exc:
            if isinstance(exc, orjson.JSONDecodeError):
                reason = f"not JSON ({exc.msg} at column {exc.colno})"
            else:
                reason = str(exc)
            error = LogLineError(reason, line_no=line_no, source=source)
            if errors is None:
                raise error from None
            errors.append(error)
            continue
        yield request


# --------------------------------------------------------------------------- the replay


@dataclass(slots=True)
class PolicyResult:
    """What one temperature mode would have done with the log."""

    policy: str
    requests: int = 0
    hits: int = 0
    misses: int = 0
    bypasses: int = 0
    input_tokens_saved: int = 0
    output_tokens_saved: int = 0
    hits_without_usage: int = 0  # hits whose tokens are unknown (counted as 0 saved)
    input_price: float = DEFAULT_INPUT_PRICE
    output_price: float = DEFAULT_OUTPUT_PRICE

    @property
    def hit_rate(self) -> float:
        """Hits over all requests (bypasses included: they reach the model)."""
        return self.hits / self.requests if self.requests else 0.0

    @property
    def tokens_saved(self) -> int:
        return self.input_tokens_saved + self.output_tokens_saved

    @property
    def cost_saved(self) -> float:
        """USD the hits would have cost at the report's per-1M-token prices."""
        return (
            self.input_tokens_saved * self.input_price
            + self.output_tokens_saved * self.output_price
        ) / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "requests": self.requests,
            "hits": self.hits,
            "misses": self.misses,
            "bypasses": self.bypasses,
            "hit_rate": round(self.hit_rate, 6),
            "input_tokens_saved": self.input_tokens_saved,
            "output_tokens_saved": self.output_tokens_saved,
            "tokens_saved": self.tokens_saved,
            "hits_without_usage": self.hits_without_usage,
            "usd_saved": round(self.cost_saved, 6),
        }


@dataclass(slots=True)
class ReplayReport:
    """Results per policy plus facts about the log."""

    results: list[PolicyResult]
    ttl: float | None
    input_price: float
    output_price: float
    bad_lines: int = 0
    errors: list[LogLineError] = field(default_factory=list)  # the first few bad lines
    out_of_order: int = 0  # lines whose ts is earlier than a line before them
    first_ts: float | None = None
    last_ts: float | None = None

    def __getitem__(self, policy: str) -> PolicyResult:
        """The result of one policy, by its text form (``report["ignore"]``)."""
        wanted = str(TemperatureMode.parse(policy))
        for result in self.results:
            if result.policy == wanted:
                return result
        raise KeyError(policy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ttl": self.ttl,
            "prices_usd_per_1m_tokens": {"input": self.input_price, "output": self.output_price},
            "requests": self.results[0].requests if self.results else 0,
            "bad_lines": self.bad_lines,
            "bad_line_errors": [str(e) for e in self.errors],
            "out_of_order": self.out_of_order,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "policies": [r.as_dict() for r in self.results],
        }


class _Simulated:
    """One policy's cache: key -> [stored_at, answers stored, input tokens, output tokens].

    Mirrors :class:`~llmcache.LLMCache` with a LangChain host: a lookup is a hit when the entry
    is younger than the TTL and holds the policy's ``samples`` answers; a miss is followed by
    the model's answer being stored, which (re)starts the entry's TTL, as ``backend.set`` does.
    """

    __slots__ = ("decisions", "entries", "policy", "result", "ttl")

    def __init__(self, policy: KeyPolicy, result: PolicyResult, ttl: float | None) -> None:
        self.policy = policy
        self.result = result
        self.ttl = ttl
        self.entries: dict[str, list[Any]] = {}
        # (prompt, llm_string) -> (key, samples): logs repeat requests, decide() hashes
        self.decisions: dict[tuple[str, str], tuple[str | None, int]] = {}

    def step(self, req: Request) -> None:
        result = self.result
        result.requests += 1
        request_id = (req.prompt, req.llm_string)
        decided = self.decisions.get(request_id)
        if decided is None:
            decision = self.policy.decide(req.prompt, req.llm_string)
            decided = (decision.key, decision.samples)
            if len(self.decisions) >= _MEMO_SIZE:
                self.decisions.clear()
            self.decisions[request_id] = decided
        key, samples = decided
        if key is None:
            result.bypasses += 1
            return
        entry = self.entries.get(key)
        if entry is not None and self.ttl is not None and req.ts - entry[0] >= self.ttl:
            entry = None  # expired: the store no longer has it
        if entry is not None and entry[1] >= samples:
            result.hits += 1
            in_tok = req.input_tokens if req.input_tokens is not None else entry[2]
            out_tok = req.output_tokens if req.output_tokens is not None else entry[3]
            if in_tok is None and out_tok is None:
                result.hits_without_usage += 1
            result.input_tokens_saved += in_tok or 0
            result.output_tokens_saved += out_tok or 0
            return
        result.misses += 1
        if entry is None:
            self.entries[key] = [req.ts, 1, req.input_tokens, req.output_tokens]
        else:  # sample:k filling up
            entry[0] = req.ts
            entry[1] += 1
            if entry[2] is None and entry[3] is None:
                entry[2], entry[3] = req.input_tokens, req.output_tokens


def replay(
    log: str | os.PathLike[str] | Iterable[str | bytes],
    policies: Sequence[str | TemperatureMode] = DEFAULT_POLICIES,
    *,
    ttl: float | None = DEFAULT_TTL,
    skip_bad: bool = False,
    input_price: float = DEFAULT_INPUT_PRICE,
    output_price: float = DEFAULT_OUTPUT_PRICE,
    ignore_params: Iterable[str] = (),
) -> ReplayReport:
    """Replay a request log (a path, or an iterable of lines) through each temperature mode.

    ``ttl`` is in seconds of the log's ``ts`` clock (``None``: entries never expire). A bad line
    raises :class:`LogLineError` (with its line number) unless ``skip_bad``: then it is counted
    in ``report.bad_lines`` and skipped.
    """
    if ttl is not None and not ttl > 0:
        raise ConfigError(f"invalid ttl {ttl!r}: a positive number of seconds, or None")
    for name, price in (("input_price", input_price), ("output_price", output_price)):
        if not price >= 0:
            raise ConfigError(f"invalid {name} {price!r}: USD per 1M tokens, >= 0")
    if not policies:
        raise ConfigError("no policy to replay; e.g. include, ignore, bypass_above:0.5, sample:3")
    ignored = frozenset(ignore_params)
    sims: list[_Simulated] = []
    seen: set[str] = set()
    for spec in policies:
        mode = TemperatureMode.parse(spec) if isinstance(spec, str) else spec
        if str(mode) in seen:
            continue
        seen.add(str(mode))
        result = PolicyResult(str(mode), input_price=input_price, output_price=output_price)
        sims.append(_Simulated(KeyPolicy(temperature=mode, ignore_params=ignored), result, ttl))
    report = ReplayReport(
        [s.result for s in sims], ttl=ttl, input_price=input_price, output_price=output_price
    )
    errors: list[LogLineError] | None = [] if skip_bad else None
    if isinstance(log, (str, os.PathLike)):
        path = Path(log)
        try:
            with path.open("rb") as lines:
                _run(read_requests(lines, source=str(path), errors=errors), sims, report)
        except OSError as exc:
            raise ConfigError(f"cannot read request log {str(path)!r}: {exc}") from exc
    else:
        _run(read_requests(log, errors=errors), sims, report)
    if errors:
        report.bad_lines = len(errors)
        report.errors = errors[:_MAX_ERRORS_KEPT]
    return report


def _run(requests: Iterable[Request], sims: list[_Simulated], report: ReplayReport) -> None:
    latest = float("-inf")
    out_of_order = 0
    first: float | None = None
    for req in requests:
        if first is None:
            first = req.ts
        if req.ts < latest:
            out_of_order += 1
        else:
            latest = req.ts
        for sim in sims:
            sim.step(req)
    report.first_ts = first
    report.last_ts = latest if first is not None else None
    report.out_of_order = out_of_order


# --------------------------------------------------------------------------- the recorder

_FLUSH_BYTES = 64 * 1024
_FLUSH_SECONDS = 1.0
_RECORDERS: weakref.WeakSet[RequestRecorder] = weakref.WeakSet()


class RequestRecorder:
    """Appends request-log lines to a file: buffered, thread-safe, never raising on write.

    Lines are buffered and written with one ``write`` of whole lines to a file opened with
    ``O_APPEND`` (so several processes may share one log), when 64 KiB are pending, when a
    second has passed since the last write, before ``os.fork`` and at exit, and on
    :meth:`flush` / :meth:`close`. The first failed write is logged and recording stops.

    The log holds prompt text: treat it like the prompts themselves.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fd: int | None = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                0o600,
            )
        except OSError as exc:
            raise ConfigError(f"cannot open request log {str(self.path)!r}: {exc}") from exc
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._last_write = time.monotonic()
        self.lines = 0  # lines accepted
        self.failed = False
        _RECORDERS.add(self)

    def record(
        self,
        prompt: str,
        llm_string: str,
        usage: Mapping[str, int] | None = None,
        *,
        hit: bool | None = None,
    ) -> None:
        """Append one request (``hit`` is informational: replay ignores it)."""
        if self.failed:
            return
        try:
            doc: dict[str, Any] = {
                "ts": round(time.time(), 3),
                "prompt": prompt,
                "llm_string": llm_string,
            }
            if usage:
                doc["usage"] = usage
            if hit is not None:
                doc["hit"] = hit
            line = orjson.dumps(doc) + b"\n"
            with self._lock:
                self._pending.append(line)
                self._pending_bytes += len(line)
                self.lines += 1
                now = time.monotonic()
                if self._pending_bytes >= _FLUSH_BYTES or now - self._last_write >= _FLUSH_SECONDS:
                    self._write_locked(now)
        except Exception as exc:
            self._fail(exc)

    def flush(self) -> None:
        """Write pending lines now."""
        if self.failed:
            return
        try:
            with self._lock:
                self._write_locked(time.monotonic())
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        """Flush and close the file (later records are dropped)."""
        self.flush()
        with self._lock:
            fd, self._fd = self._fd, None
            self.failed = True  # nothing more to write to
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _write_locked(self, now: float) -> None:
        self._last_write = now
        if not self._pending or self._fd is None:
            return
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        self._pending_bytes = 0
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def _fail(self, exc: Exception) -> None:
        with self._lock:
            if self.failed:
                return
            self.failed = True
            self._pending.clear()
        log.warning(
            "llmcache: writing request log %s failed (%s); recording stopped", self.path, exc
        )

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._pending = []
        self._pending_bytes = 0

    def __repr__(self) -> str:
        return f"RequestRecorder({str(self.path)!r}, lines={self.lines})"


def _flush_all() -> None:
    for recorder in list(_RECORDERS):
        recorder.flush()


def _reset_in_child() -> None:
    for recorder in list(_RECORDERS):
        recorder._after_fork_in_child()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_flush_all, after_in_child=_reset_in_child)
