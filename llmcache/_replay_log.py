"""Reading request logs for :func:`llmcache.replay.replay` (public names re-exported there).

A request log is JSON Lines, one request per line (see ``docs/replay.md``): the form
:class:`llmcache.requestlog.RequestRecorder` writes::

    {"ts": 1718000000.5, "prompt": "<prompt as LangChain passes it>", "llm_string": "<as passed>",
     "usage": {"input_tokens": 31, "output_tokens": 120}}

or, written by hand or exported from elsewhere, the chat form, converted by :func:`chat_request`::

    {"ts": 1718000000.5, "messages": [{"role": "user", "content": "What is a cache?"}],
     "model": "gpt-4o-mini", "params": {"temperature": 0.7},
     "usage": {"input_tokens": 31, "output_tokens": 120}}

Example::

    from llmcache.replay import read_requests

    with open("requests.jsonl", "rb") as lines:
        for request in read_requests(lines):
            print(request.ts, request.input_tokens)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from llmcache.errors import LLMCacheError

__all__ = ["LogLineError", "Request", "chat_request", "parse_request", "read_requests"]

_MEMO_SIZE = 65_536  # distinct conversations whose conversion is remembered


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
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            request = parse_request(_loads(line))
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


def _loads(line: str | bytes) -> Any:
    """orjson, or the stdlib for the lines the writer escaped (a prompt's lone surrogates,
    which orjson refuses to read back)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if "\\ud" not in text.lower():
            raise
        try:
            return json.loads(text)
        except ValueError:
            raise orjson.JSONDecodeError("invalid JSON", str(line), 0) from None
