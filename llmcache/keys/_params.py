"""Which parameters of a parsed ``llm_string`` identify a request, in canonical form.

Parameters that never change the answer are dropped, each with the reason :meth:`KeyPolicy.explain`
shows: secrets (by name, or LangChain's ``{"lc": 1, "type": "secret"}`` references), callbacks,
tracing, timeouts, retries, streaming flags, HTTP clients and proxies. Containers of more
parameters (``model_kwargs``, ``extra_body``, ...) and of HTTP headers lose their secret entries.
The rest is made canonical (JSON-safe, integral floats as ints, sets sorted) so that equal
requests give equal bytes, and hashed with BLAKE2b. The canonical form is injective on what a
request means: values JSON cannot hold (lone surrogates, big ints, non-finite floats, non-text
dict keys, reprs that are not literals) become one-key marker objects (``{"__str__": ...}``,
``{"__int__": ...}``, ...), and a real dict that uses a marker name is itself wrapped, so no
two different requests give the same bytes.

:func:`redact_llm_string` applies the same credential rule to the text the request log keeps.

Example::

    from llmcache.keys._params import model_params

    found = model_params("[('_type', 'chat'), ('api_key', 'sk-..'), ('temperature', 1.0)]")
    assert found.params == {"temperature": 1} and found.dropped == {"api_key": "secret"}
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from llmcache.keys.llm_string import OPAQUE, Opaque, opaque, parse_llm_string

__all__ = [
    "CREDENTIAL_REASONS",
    "DIGEST_SIZE",
    "ModelParams",
    "canon",
    "digest",
    "drop_reason",
    "dumps",
    "model_params",
    "redact_llm_string",
]

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


#: keys of the one-key objects that stand for values JSON cannot hold (and "__unparsed__",
#: text of an llm_string that could not be read). A real dict using one is wrapped in "__dict__".
MARKERS = frozenset({OPAQUE, "__int__", "__float__", "__str__", "__dict__", "__unparsed__"})


def _utf8(text: str) -> bool:
    """Whether ``text`` is valid UTF-8 text (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(text: str) -> Any:
    # orjson refuses lone surrogates; their exact code points (hex of UTF-8 with surrogatepass)
    # keep "\ud83d\ude00" (two code points) apart from the one emoji it looks like.
    return text if _utf8(text) else {"__str__": text.encode("utf-8", "surrogatepass").hex()}


def _plain_key(key: Any) -> bool:
    return isinstance(key, str) and key not in MARKERS and _utf8(key)


def canon_mapping(items: dict[Any, Any]) -> Any:
    """``items`` (values already canonical) as JSON: as is when every key is plain text, else
    ``{"__dict__": [[key, value], ...]}`` sorted, so ``{1: x}``, ``{"1": x}`` and a dict using
    a marker name stay apart."""
    if all(_plain_key(k) for k in items):
        return items
    pairs = [[canon(k), v] for k, v in items.items()]
    return {"__dict__": sorted(pairs, key=dumps)}


def canon(value: Any) -> Any:
    """Return a JSON-safe, canonical copy: integral floats as ints, tuples/sets as lists."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else {"__int__": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"__float__": repr(value)}
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, dict):
        return canon_mapping({k: canon(v) for k, v in value.items() if not _is_secret_ref(v)})
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value if not _is_secret_ref(v)]
    if isinstance(value, (set, frozenset)):
        return sorted((canon(v) for v in value), key=dumps)
    if isinstance(value, Opaque):
        return {OPAQUE: _text(value.text)}
    if isinstance(value, (bytes, complex)):
        return {OPAQUE: repr(value)}
    return canon(opaque(repr(value)))  # pragma: no cover - literal_eval yields nothing else


def dumps(value: Any) -> bytes:
    """Canonical bytes of a :func:`canon` value (sorted keys)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


#: BLAKE2b digest size of keys, bytes (128 bits).
DIGEST_SIZE = 16


def digest(data: bytes) -> str:
    """The 128-bit BLAKE2b hex digest keys are made of."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


# --------------------------------------------------------------------------- model and params


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The model and the parameters that identify a request, before policy-specific drops."""

    form: str  # "serialized" | "params" | "opaque" (see llm_string.ParsedLLMString)
    model: Any
    params: dict[str, Any]  # effective, canonical
    dropped: dict[str, str]  # name -> reason (built-in rules)


def _opaque_params(llm_string: str) -> ModelParams:
    ident = digest(llm_string.encode("utf-8", "surrogatepass"))
    return ModelParams("opaque", f"opaque:{ident}", {}, {})


@lru_cache(maxsize=512)
def model_params(llm_string: str) -> ModelParams:
    """Parse ``llm_string`` and apply the built-in drop rules (cached: treat as read-only).

    Never raises: an ``llm_string`` whose values cannot be made canonical (say, nested deeper
    than JSON encoders go) is identified by its whole text, like any text that does not parse.
    """
    try:
        found = _model_params(llm_string)
        dumps({"model": found.model, "params": canon_mapping(found.params)})  # encodable?
    except Exception:
        return _opaque_params(llm_string)
    return found


def _model_params(llm_string: str) -> ModelParams:
    parsed = parse_llm_string(llm_string)
    if parsed.form == "opaque":
        return _opaque_params(llm_string)
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
    model = canon(parsed.model)
    if parsed.rest is not None:  # unreadable text after the last pair is part of the identity
        model = {"__unparsed__": [model, canon(opaque(parsed.rest))]}
    return ModelParams(parsed.form, model, params, dropped)


# Containers whose entries are more request parameters (same drop rules as top-level ones) or
# HTTP headers (whose credentials rotate: in a key they would also empty the cache on rotation).
_HEADER_PARAMS = frozenset({"default_headers", "extra_headers", "headers"})
_NESTED_PARAMS = _HEADER_PARAMS | {"model_kwargs", "extra_body", "client_kwargs"}
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _entry_reason(name: Any, item: Any, *, headers: bool) -> str | None:
    """Why entry ``name`` of a parameter container never changes the answer (or ``None``)."""
    low = str(name).lower()
    if headers and (low in _SECRET_HEADERS or any(p in low for p in ("api-key", "token"))):
        return "secret header"
    return drop_reason(str(name).replace("-", "_"), item, frozenset())


def _scrub(
    parent: str, value: dict[Any, Any], dropped: dict[str, str], *, headers: bool
) -> dict[Any, Any]:
    """``value`` without its secret entries (recorded in ``dropped`` as ``parent.name``);
    containers inside it (``model_kwargs={"extra_headers": {...}}``) are scrubbed too."""
    kept: dict[Any, Any] = {}
    for name, item in value.items():
        reason = _entry_reason(name, item, headers=headers)
        if reason is not None:
            dropped[f"{parent}.{name}"] = reason
            continue
        low = str(name).lower()
        if isinstance(item, dict) and low in _NESTED_PARAMS:
            item = _scrub(f"{parent}.{name}", item, dropped, headers=low in _HEADER_PARAMS)
        kept[name] = item
    return kept


# --------------------------------------------------------------------------- redaction

#: drop reasons that mean "this value is a credential": the request log blanks these out.
CREDENTIAL_REASONS = frozenset({"secret", "secret header", "network proxy"})
REDACTED = "***"


def _redact_value(name: str, value: Any, *, headers: bool = False, top: bool = True) -> Any:
    """``value`` with its credentials replaced by ``"***"`` (the same object if none)."""
    if value is None or _is_secret_ref(value):
        return value  # nothing secret in it (a reference names an env variable)
    reason = (
        drop_reason(name, value, frozenset())
        if top
        else _entry_reason(name, value, headers=headers)
    )
    if reason in CREDENTIAL_REASONS:
        return REDACTED
    low = name.lower()
    if isinstance(value, dict) and low in _NESTED_PARAMS:
        inner = low in _HEADER_PARAMS
        new = {k: _redact_value(str(k), v, headers=inner, top=False) for k, v in value.items()}
        if any(new[k] is not value[k] for k in value):
            return new
    return value


@lru_cache(maxsize=256)
def redact_llm_string(llm_string: str) -> str:
    """``llm_string`` with every credential value replaced by ``'***'`` and the same key.

    The credential rule is the key policy's: parameters dropped as secrets (by name, e.g.
    ``api_key``, ``*_password``), secret HTTP headers (``Authorization``, ...), proxies (their
    URLs may hold passwords), also inside ``model_kwargs``/``extra_body``/headers containers.
    Dropped parameters never enter the key, so the redacted text gives the same key (the
    request log and ``llmcache replay`` rely on it). Text that does not parse is returned as
    is: nothing in it was recognised as a parameter.
    """
    try:
        return _redact(llm_string)
    except Exception:  # pragma: no cover - defensive: never log what could not be checked
        return "[('__redacted__', 'llm_string could not be redacted')]"


def _redact(llm_string: str) -> str:
    parsed = parse_llm_string(llm_string)
    if parsed.form == "opaque":
        return llm_string
    edits: list[tuple[int, int, str]] = []
    if parsed.form == "serialized":
        obj = json.loads(llm_string[: parsed.json_end])
        kwargs = obj.get("kwargs")
        if isinstance(kwargs, dict):
            new = {k: _redact_value(str(k), v) for k, v in kwargs.items()}
            if any(new[k] is not kwargs[k] for k in kwargs):
                obj["kwargs"] = new
                edits.append((0, parsed.json_end, json.dumps(obj, sort_keys=True)))
    for name, value, start, end in parsed.spans:
        new_value = _redact_value(name, value)
        if new_value is not value:
            edits.append((start, end, repr(new_value)))
    for start, end, text in sorted(edits, reverse=True):
        llm_string = llm_string[:start] + text + llm_string[end:]
    return llm_string
