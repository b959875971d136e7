"""Which parameters of a parsed ``llm_string`` identify a request, in canonical form.

Parameters that never change the answer are dropped, each with the reason :meth:`KeyPolicy.explain`
shows: secrets (by name, or LangChain's ``{"lc": 1, "type": "secret"}`` references), callbacks,
tracing, timeouts, retries, streaming flags, HTTP clients and proxies. Containers of more
parameters (``model_kwargs``, ``extra_body``, ...) and of HTTP headers lose their secret entries.
The rest is made canonical (JSON-safe, integral floats as ints, sets sorted) so that equal
requests give equal bytes, and hashed with BLAKE2b.

Example::

    from llmcache.keys._params import model_params

    found = model_params("[('_type', 'chat'), ('api_key', 'sk-..'), ('temperature', 1.0)]")
    assert found.params == {"temperature": 1} and found.dropped == {"api_key": "secret"}
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from llmcache.keys.llm_string import OPAQUE, opaque, parse_llm_string

__all__ = ["ModelParams", "canon", "digest", "drop_reason", "dumps", "model_params"]

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


def drop_reason(name: str, value: Any, ignore: frozenset[str]) -> str | None:
    """Why parameter ``name`` never changes the answer, or ``None`` when it may."""
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


def canon(value: Any) -> Any:
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
        return {str(k): canon(v) for k, v in value.items() if not _is_secret_ref(v)}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value if not _is_secret_ref(v)]
    if isinstance(value, (set, frozenset)):
        items = [canon(v) for v in value]
        return sorted(items, key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    if isinstance(value, (bytes, complex)):
        return {OPAQUE: repr(value)}
    return opaque(repr(value))  # pragma: no cover - literal_eval yields nothing else


def dumps(value: Any) -> bytes:
    """Canonical bytes of a :func:`canon` value (sorted keys)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def digest(data: bytes) -> str:
    """The 128-bit BLAKE2b hex digest keys are made of."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# --------------------------------------------------------------------------- model and params


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The model and the parameters that identify a request, before policy-specific drops."""

    form: str  # "serialized" | "params" | "opaque" (see llm_string.ParsedLLMString)
    model: Any
    params: dict[str, Any]  # effective, canonical
    dropped: dict[str, str]  # name -> reason (built-in rules)


@lru_cache(maxsize=512)
def model_params(llm_string: str) -> ModelParams:
    """Parse ``llm_string`` and apply the built-in drop rules (cached: treat as read-only)."""
    parsed = parse_llm_string(llm_string)
    if parsed.form == "opaque":
        ident = digest(llm_string.encode("utf-8", "surrogatepass"))
        return ModelParams("opaque", f"opaque:{ident}", {}, {})
    params: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for name, value in parsed.params.items():
        if value is None:
            continue
        reason = drop_reason(name, value, frozenset())
        if reason is not None:
            dropped[name] = reason
            continue
        if isinstance(value, dict) and name.lower() in _NESTED_PARAMS:
            value = _scrub(name, value, dropped, headers=name.lower() in _HEADER_PARAMS)
        params[name] = canon(value)
    return ModelParams(parsed.form, canon(parsed.model), params, dropped)


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
            reason = drop_reason(str(name).replace("-", "_"), item, frozenset())
        if reason is None:
            kept[name] = item
        else:
            dropped[f"{parent}.{name}"] = reason
    return kept
