"""Read LangChain's ``llm_string``: the model and its parameters, without evaluating anything.

LangChain hands a cache one of three shapes (see FACTS.md):

1. serialisable chat models:
   ``json.dumps(dumpd(model), sort_keys=True) + "---" + str(sorted(call_params.items()))``;
2. other chat models and LLMs: ``str(sorted(params.items()))`` with ``_type`` naming the model;
3. anything else: opaque text, which the key policy hashes whole as the model identity.

The ``str(sorted(...))`` parts are Python reprs. They are split by a small scanner and each value
is read with :func:`ast.literal_eval`; values that are not literals (``<class 'x.Y'>``, object
reprs) are kept as opaque text, with memory addresses removed so keys stay stable across
processes. Nothing is ever evaluated. Which of the parameters identify a request is the key
policy's business (:mod:`llmcache.keys.policy`), not this module's.

Example::

    from llmcache.keys.llm_string import parse_llm_string

    parsed = parse_llm_string("[('_type', 'chat'), ('model', 'm'), ('temperature', 0.7)]")
    assert parsed.form == "params" and parsed.model == "chat"
    assert parsed.params == {"model": "m", "temperature": 0.7}
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["OPAQUE", "ParsedLLMString", "opaque", "parse_llm_string"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: marks a value kept as text because it is not a Python literal: ``{OPAQUE: "<class 'a.B'>"}``.
OPAQUE = "__repr__"


def opaque(text: str) -> dict[str, str]:
    """``text`` as an opaque value, without memory addresses (``<f at 0x7f..>`` -> ``<f>``)."""
    return {OPAQUE: _ADDRESS.sub("", text.strip())}


@dataclass(frozen=True, slots=True)
class ParsedLLMString:
    """What an ``llm_string`` says, before any policy.

    ``form`` is ``"serialized"`` (shape 1), ``"params"`` (shape 2) or ``"opaque"`` (shape 3:
    ``model`` is ``None`` and ``params`` empty). ``model`` is the dotted LangChain id of a
    serialised model, or the ``_type`` of shape 2. ``params`` merges constructor and call-time
    parameters (a call-time value other than ``None`` wins); values are Python literals, JSON
    values or :func:`opaque` text; text after the last pair that could be read is kept as
    ``params["__unparsed__"]``.
    """

    form: Literal["serialized", "params", "opaque"]
    model: Any
    params: dict[str, Any]


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
        return opaque(text)


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

_DECODER = json.JSONDecoder()


def parse_llm_string(llm_string: str) -> ParsedLLMString:
    """Split ``llm_string`` into its form, model identity and merged parameters."""
    merged: dict[str, Any] = {}
    model: Any = None
    form: Literal["serialized", "params", "opaque"] = "opaque"
    tail: str | None = None
    if llm_string.startswith("{"):
        try:
            obj, end = _DECODER.raw_decode(llm_string)
        except (ValueError, RecursionError):
            obj, end = None, -1
        if isinstance(obj, dict) and llm_string.startswith("---", end):
            form = "serialized"
            ident = obj.get("id")
            model = ".".join(map(str, ident)) if isinstance(ident, list) else ident
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
                merged["__unparsed__"] = opaque(rest)
            if form == "params":
                model = merged.pop("_type", None)
    if form == "opaque":
        return ParsedLLMString("opaque", None, {})
    return ParsedLLMString(form, model, merged)
