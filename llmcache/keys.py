"""Key policy: turn LangChain's ``(prompt, llm_string)`` into a cache key.

A key identifies *what the model was asked and how*: the prompt, the model identity and the
parameters that change the answer. Parameters that never change the answer (secrets, callbacks,
timeouts, retries, streaming flags, ...) are dropped; the rest is canonicalised (sorted JSON,
integral floats as ints) and hashed with BLAKE2b. No prompt text appears in a key.

Example::

    from llmcache.keys import KeyPolicy

    policy = KeyPolicy(temperature="bypass_above:0.5")
    decision = policy.decide(prompt, llm_string)
    if decision.key is None:
        ...  # do not look up, do not store (decision.reason says why)
    print(policy.explain(prompt, llm_string))

LangChain hands a cache three shapes of ``llm_string`` (see FACTS.md):

1. serialisable chat models:
   ``json.dumps(dumpd(model), sort_keys=True) + "---" + str(sorted(call_params.items()))``;
2. other chat models and LLMs: ``str(sorted(params.items()))`` with ``_type`` naming the model;
3. anything else is hashed whole as an opaque model identity.

The ``str(sorted(...))`` parts are Python reprs. They are split by a small scanner and each value
is read with :func:`ast.literal_eval`; values that are not literals (``<class 'x.Y'>``, object
reprs) are kept as opaque text, with memory addresses removed so keys stay stable across
processes. Nothing is ever evaluated.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, field_validator, model_validator

from llmcache.errors import ConfigError

__all__ = ["KeyDecision", "KeyPolicy", "TemperatureMode"]

_FORMS = '"include", "ignore", "bypass_above:<T>" (e.g. "bypass_above:0.5"), "sample:<k>" (k >= 2)'


class TemperatureMode(BaseModel, frozen=True):
    """How temperature enters the key.

    - ``include`` (default): temperature is part of the key;
    - ``ignore``: temperature is left out (0.0 and 0.7 share an entry);
    - ``bypass_above:T``: calls with temperature > T are neither looked up nor stored;
    - ``sample:k``: temperature is part of the key and up to k answers are kept per key.
    """

    kind: Literal["include", "ignore", "bypass_above", "sample"] = "include"
    threshold: float | None = None
    samples: int = 1

    @model_validator(mode="after")
    def _check(self) -> TemperatureMode:
        if self.kind == "bypass_above":
            if self.threshold is None or not math.isfinite(self.threshold):
                raise ValueError("bypass_above needs a finite threshold, e.g. bypass_above:0.5")
        elif self.threshold is not None:
            raise ValueError(f"threshold is only valid with bypass_above, not {self.kind}")
        if self.kind == "sample":
            if self.samples < 2:
                raise ValueError(f"sample needs k >= 2 answers per key, got {self.samples}")
        elif self.samples != 1:
            raise ValueError(f"samples is only valid with sample, not {self.kind}")
        return self

    @classmethod
    def parse(cls, text: str) -> TemperatureMode:
        """Read ``include``, ``ignore``, ``bypass_above:0.5`` or ``sample:3`` (``=`` also works)."""
        if not isinstance(text, str):
            raise ConfigError(f"temperature mode {text!r} is not text; valid forms: {_FORMS}")
        raw = text.strip().lower()
        name, sep, arg = raw.replace("=", ":", 1).partition(":")
        name, arg = name.strip(), arg.strip()
        try:
            if name in ("include", "ignore") and not sep:
                return cls(kind=name)  # type: ignore[arg-type]
            if name == "bypass_above" and arg:
                return cls(kind="bypass_above", threshold=float(arg))
            if name == "sample" and arg:
                return cls(kind="sample", samples=int(arg))
        except ValueError as exc:  # float()/int() failures and pydantic's ValidationError
            raise ConfigError(
                f"invalid temperature mode {text!r}: {_first_line(exc)}; valid forms: {_FORMS}"
            ) from exc
        raise ConfigError(f"invalid temperature mode {text!r}; valid forms: {_FORMS}")

    def __str__(self) -> str:
        if self.kind == "bypass_above":
            return f"bypass_above:{_num_text(self.threshold)}"
        if self.kind == "sample":
            return f"sample:{self.samples}"
        return self.kind


def _first_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic ValidationError: use the message, not the whole dump
        try:
            return "; ".join(str(e.get("msg", "")) for e in errors())
        except Exception:  # pragma: no cover - defensive
            pass
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _num_text(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if x.is_integer() else repr(x)


@dataclass(frozen=True, slots=True)
class KeyDecision:
    """What the policy decided for one request.

    ``key`` is ``None`` for a bypass (do not look up, do not store) and ``reason`` says why.
    ``samples`` is how many answers to keep under the key (1, or k in sample mode).
    ``material`` is what was hashed: ``{"model", "params", "prompt"}`` (the prompt as a digest).
    Treat it as read-only: its nested values are shared with the policy's parse cache.
    """

    key: str | None
    reason: str | None
    samples: int
    material: dict[str, Any]


# --------------------------------------------------------------------------- dropping rules

#: exact parameter names (lower-cased) that never change the answer, with the reason shown.
_DROP_NAMES: dict[str, str] = {
    **dict.fromkeys(("callbacks", "callback_manager", "run_manager"), "callbacks"),
    **dict.fromkeys(("tags", "metadata", "run_name", "run_id", "verbose"), "tracing"),
    **dict.fromkeys(("timeout", "request_timeout", "default_request_timeout"), "timeout"),
    **dict.fromkeys(("max_retries", "retries", "num_retries"), "retries"),
    **dict.fromkeys(("streaming", "stream", "stream_usage", "disable_streaming"), "streaming flag"),
    "rate_limiter": "rate limiter",
    "cache": "cache setting",
    **dict.fromkeys(
        (
            "http_client",
            "http_async_client",
            "client",
            "async_client",
            "root_client",
            "root_async_client",
        ),
        "http client object",
    ),
    **dict.fromkeys(("openai_proxy", "proxy", "proxies"), "network proxy"),
    **dict.fromkeys(("organization", "openai_organization"), "billing organization"),
    **dict.fromkeys(
        (
            "password",
            "token",
            "access_token",
            "auth_token",
            "bearer_token",
            "session_token",
            "hf_token",
            "aws_access_key_id",
            "credentials",
        ),
        "secret",
    ),
}
#: substrings of parameter names that mark a secret.
_SECRET_PARTS = ("api_key", "apikey", "api_token", "secret", "password")


def _drop_reason(name: str, value: Any, ignore: frozenset[str]) -> str | None:
    if name in ignore:
        return "ignore_params"
    if _is_secret_ref(value):
        return "secret"
    low = name.lower()
    reason = _DROP_NAMES.get(low)
    if reason is not None:
        return reason
    if any(part in low for part in _SECRET_PARTS):
        return "secret"
    return None


def _is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "secret" and value.get("lc") == 1


# --------------------------------------------------------------------------- canonical form

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_OPAQUE = "__repr__"  # marks a value kept as text because it is not a Python literal


def _opaque(text: str) -> dict[str, str]:
    return {_OPAQUE: _ADDRESS.sub("", text.strip())}


def _canon(value: Any) -> Any:
    """Return a JSON-safe, canonical copy: integral floats as ints, tuples/sets as lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else {"__int__": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"__float__": repr(value)}
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items() if not _is_secret_ref(v)}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value if not _is_secret_ref(v)]
    if isinstance(value, (set, frozenset)):
        items = [_canon(v) for v in value]
        return sorted(items, key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    if isinstance(value, (bytes, complex)):
        return {_OPAQUE: repr(value)}
    return _opaque(repr(value))  # pragma: no cover - literal_eval yields nothing else


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# --------------------------------------------------------------------------- repr list scanner

_OPEN = {"(": ")", "[": "]", "{": "}"}
_BEFORE_ANGLE = "([{, ="  # a "<" after these (or first) opens an object repr


def _scan_string(s: str, i: int) -> int:
    """``s[i]`` is a quote; return the index just after the closing quote (or -1)."""
    q = s[i]
    i += 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == q:
            return i + 1
        i += 1
    return -1


def _scan_value(s: str, i: int, angles: bool = True) -> int:
    """Return the index of the ``)`` that closes the tuple whose value starts at ``i`` (or -1).

    With ``angles``, ``<...>`` object reprs nest like brackets (their text may hold commas and
    parentheses); the caller retries without when a stray ``<`` never closes.
    """
    n = len(s)
    stack: list[str] = []
    start = i
    while i < n:
        c = s[i]
        if c in "'\"":
            j = _scan_string(s, i)
            if j < 0:
                return -1
            i = j
            continue
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif (
            angles
            and c == "<"
            and (i == start or s[i - 1] in _BEFORE_ANGLE)
            and s[i + 1 : i + 2].isalpha()
        ):
            stack.append(">")  # object repr such as <class 'x.Y'> or <function f at 0x..>
        elif stack and c == stack[-1]:
            stack.pop()
        elif not stack and c == ")":
            return i
        elif c in ")]}" and not stack:
            return -1
        i += 1
    return -1


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _opaque(text)


_KEY = re.compile(r"""\(\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*,\s*""")


def _parse_pairs(s: str) -> tuple[list[tuple[str, Any]], str | None]:
    """Parse ``str(sorted(d.items()))``; return the pairs and any unparsed remainder."""
    s = s.strip()
    if not (s.startswith("[") and s.endswith("]")):
        return [], s or None
    body = s[1:-1]
    pairs: list[tuple[str, Any]] = []
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in ", \t\r\n":
            i += 1
        if i >= n:
            break
        m = _KEY.match(body, i)
        if m is None:
            return pairs, body[i:]
        end = _scan_value(body, m.end())
        if end < 0:
            end = _scan_value(body, m.end(), angles=False)
        if end < 0:
            return pairs, body[i:]
        key = ast.literal_eval(m.group(1))
        pairs.append((str(key), _literal(body[m.end() : end].strip())))
        i = end + 1
    return pairs, None


# --------------------------------------------------------------------------- llm_string parse


@dataclass(frozen=True, slots=True)
class _Parsed:
    form: str  # "serialized" | "params" | "opaque"
    model: Any
    params: dict[str, Any]  # effective, canonical, before policy-specific drops
    dropped: dict[str, str]  # name -> reason (built-in rules)


_DECODER = json.JSONDecoder()


@lru_cache(maxsize=512)
def _parse_llm_string(llm_string: str) -> _Parsed:
    merged: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    model: Any = None
    form = "opaque"
    tail: str | None = None
    if llm_string.startswith("{"):
        try:
            obj, end = _DECODER.raw_decode(llm_string)
        except (ValueError, RecursionError):
            obj, end = None, -1
        if isinstance(obj, dict) and llm_string.startswith("---", end):
            form = "serialized"
            ident = obj.get("id")
            model = ".".join(map(str, ident)) if isinstance(ident, list) else _canon(ident)
            kwargs = obj.get("kwargs")
            if isinstance(kwargs, dict):
                merged.update(kwargs)
            tail = llm_string[end + 3 :]
    elif llm_string.startswith("["):
        form = "params"
        tail = llm_string
    if tail is not None:
        pairs, rest = _parse_pairs(tail)
        if form == "params" and not pairs:
            form = "opaque"
        else:
            for name, value in pairs:
                if value is not None or name not in merged:
                    merged[name] = value  # call-time values override constructor values
            if rest is not None:
                merged["__unparsed__"] = _opaque(rest)
            if form == "params":
                model = merged.pop("_type", None)
    if form == "opaque":
        ident = _digest(llm_string.encode("utf-8", "surrogatepass"))
        return _Parsed(form, f"opaque:{ident}", {}, {})
    params: dict[str, Any] = {}
    for name, value in merged.items():
        if value is None:
            continue
        reason = _drop_reason(name, value, frozenset())
        if reason is not None:
            dropped[name] = reason
            continue
        if isinstance(value, dict) and name.lower() in _NESTED_PARAMS:
            value = _scrub(name, value, dropped, headers=name.lower() in _HEADER_PARAMS)
        params[name] = _canon(value)
    return _Parsed(form, _canon(model), params, dropped)


# Containers whose entries are more request parameters (same drop rules as top-level ones) or
# HTTP headers (whose credentials rotate: in a key they would also empty the cache on rotation).
_HEADER_PARAMS = frozenset({"default_headers", "extra_headers", "headers"})
_NESTED_PARAMS = _HEADER_PARAMS | {"model_kwargs", "extra_body", "client_kwargs"}
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _scrub(
    parent: str, value: dict[Any, Any], dropped: dict[str, str], *, headers: bool
) -> dict[Any, Any]:
    """``value`` without its secret entries (recorded in ``dropped`` as ``parent.name``)."""
    kept: dict[Any, Any] = {}
    for name, item in value.items():
        low = str(name).lower()
        if headers and (low in _SECRET_HEADERS or any(p in low for p in ("api-key", "token"))):
            reason: str | None = "secret header"
        else:
            reason = _drop_reason(str(name).replace("-", "_"), item, frozenset())
        if reason is None:
            kept[name] = item
        else:
            dropped[f"{parent}.{name}"] = reason
    return kept


def _temperature_of(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class _Prepared:
    parsed: _Parsed
    model: Any
    params: dict[str, Any]
    dropped: dict[str, str]
    bypass: str | None
    greedy: bool  # temperature is known to be 0: one answer is all there is to keep
    prefix: bytes  # canonical bytes of {"model":..,"params":..,"prompt":" ; digest + '"}' follow


@lru_cache(maxsize=1024)
def _prepare(
    llm_string: str, kind: str, threshold: float | None, ignore: frozenset[str]
) -> _Prepared:
    parsed = _parse_llm_string(llm_string)
    params = dict(parsed.params)
    dropped = dict(parsed.dropped)
    for name in ignore & params.keys():
        del params[name]
        dropped[name] = "ignore_params"
    bypass = None
    greedy = False
    if "temperature" in params:
        raw = params["temperature"]
        temp = _temperature_of(raw)
        greedy = temp == 0
        if temp is not None:
            params["temperature"] = _canon(temp)
        if kind == "ignore":
            del params["temperature"]
            dropped["temperature"] = "temperature mode ignore"
        elif kind == "bypass_above" and threshold is not None:
            if temp is None:
                bypass = f"temperature {raw!r} is not a number (bypass_above {threshold:g})"
            elif temp > threshold:
                bypass = f"temperature {temp:g} > bypass_above {threshold:g}"
    head = _dumps({"model": parsed.model, "params": params})
    prefix = head[:-1] + b',"prompt":"'
    return _Prepared(parsed, parsed.model, params, dropped, bypass, greedy, prefix)


# --------------------------------------------------------------------------- the policy


class KeyPolicy(BaseModel, frozen=True, extra="forbid"):
    """Which parts of a request make up its cache key (serialisable; see module docstring)."""

    temperature: TemperatureMode = TemperatureMode()
    version: str = "v1"
    ignore_params: frozenset[str] = frozenset()

    if TYPE_CHECKING:  # let type checkers accept the text forms the validators accept

        def __init__(
            self,
            *,
            temperature: TemperatureMode | str = ...,
            version: str = ...,
            ignore_params: Iterable[str] = ...,
        ) -> None: ...

    @field_validator("temperature", mode="before")
    @classmethod
    def _temperature_text(cls, value: Any) -> Any:
        return TemperatureMode.parse(value) if isinstance(value, str) else value

    @field_validator("version")
    @classmethod
    def _version_text(cls, value: str) -> str:
        if not value or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError(f"key version {value!r} must be non-empty letters, digits, _ . -")
        return value

    def decide(self, prompt: str, llm_string: str) -> KeyDecision:
        """Return the key for ``(prompt, llm_string)``, or a bypass with its reason."""
        mode = self.temperature
        prep = _prepare(llm_string, mode.kind, mode.threshold, self.ignore_params)
        pdig = _digest(prompt.encode("utf-8", "surrogatepass"))
        material = {"model": prep.model, "params": dict(prep.params), "prompt": pdig}
        if prep.bypass is not None:
            return KeyDecision(key=None, reason=prep.bypass, samples=1, material=material)
        body = prep.prefix + pdig.encode() + b'"}'
        key = f"{self.version}:{_digest(body)}"
        # sample:k is for sampled calls; a temperature-0 call keeps (and serves) one answer.
        samples = 1 if prep.greedy else mode.samples
        return KeyDecision(key=key, reason=None, samples=samples, material=material)

    def explain(self, prompt: str, llm_string: str) -> str:
        """Return the key material as indented JSON: key, model, params and what was dropped."""
        decision = self.decide(prompt, llm_string)
        mode = self.temperature
        prep = _prepare(llm_string, mode.kind, mode.threshold, self.ignore_params)
        preview = prompt if len(prompt) <= 120 else prompt[:117] + "..."
        doc = {
            "key": decision.key,
            "bypass": decision.reason,
            "samples": decision.samples,
            "policy": {
                "temperature": str(mode),
                "version": self.version,
                "ignore_params": sorted(self.ignore_params),
            },
            "llm_string_form": prep.parsed.form,
            "model": decision.material["model"],
            "params": decision.material["params"],
            "prompt": {"digest": decision.material["prompt"], "chars": len(prompt)},
            "prompt_preview": preview,
            "dropped": dict(sorted(prep.dropped.items())),
        }
        return json.dumps(doc, indent=2, ensure_ascii=False)
