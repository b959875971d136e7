"""Replay a request log through key policies without a model: hits, misses and savings.

:func:`replay` runs every request of a log (see :mod:`llmcache.requestlog` for the writer and
``docs/replay.md`` for the format) through a simulated cache per temperature mode (no store, no
model: a dict of key -> (stored_at, answers stored)) and reports hits, misses, bypasses and the
tokens and money the hits would have saved::

    from llmcache.replay import replay

    report = replay("requests.jsonl", ["include", "ignore", "bypass_above:0.5", "sample:3"])
    for result in report.results:
        print(result.policy, result.hits, f"{result.hit_rate:.1%}")

Used by ``llmcache replay`` only; the reader of log lines (:func:`read_requests`,
:func:`parse_request`, :func:`chat_request`) is re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmcache import _defaults
from llmcache._replay_log import (
    LogLineError,
    Request,
    chat_request,
    parse_request,
    read_requests,
)
from llmcache.errors import ConfigError
from llmcache.keys import KeyPolicy, TemperatureMode

__all__ = [
    "DEFAULT_INPUT_PRICE",
    "DEFAULT_OUTPUT_PRICE",
    "DEFAULT_POLICIES",
    "LogLineError",
    "PolicyResult",
    "ReplayReport",
    "Request",
    "chat_request",
    "parse_request",
    "read_requests",
    "replay",
]

#: the four temperature modes, compared by default.
DEFAULT_POLICIES: tuple[str, ...] = ("include", "ignore", "bypass_above:0.5", "sample:3")
#: example prices in USD per 1M tokens: OpenAI gpt-4o-mini list prices (openai.com/api/pricing,
#: at the model's launch, July 2024). Override them (``--input-price`` / ``--output-price``).
DEFAULT_INPUT_PRICE = 0.15
DEFAULT_OUTPUT_PRICE = 0.60

_MAX_ERRORS_KEPT = 20  # bad lines listed in a report (all are counted)
_MEMO_SIZE = 65_536  # distinct requests whose key decision is remembered


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
    ttl: float | None = _defaults.TTL,
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
