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

__all__ = ["OPAQUE", "Opaque", "ParsedLLMString", "opaque", "parse_llm_string"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: marks a value kept as text because it is not a Python literal: ``{OPAQUE: "<class 'a.B'>"}``
#: in the canonical form (see :func:`llmcache.keys._params.canon`).
OPAQUE = "__repr__"


@dataclass(frozen=True, slots=True)
class Opaque:
    """The text of a value that is not a Python literal (``<class 'a.B'>``, an object repr).

    A type of its own, so that no literal (not even ``{'__repr__': '...'}``) can be mistaken
    for it."""

    text: str


def opaque(text: str) -> Opaque:
    """``text`` as an opaque value, without memory addresses (``<f at 0x7f..>`` -> ``<f>``)."""
    return Opaque(_ADDRESS.sub("", text.strip()))


@dataclass(frozen=True, slots=True)
class ParsedLLMString:
    """What an ``llm_string`` says, before any policy.

    ``form`` is ``"serialized"`` (shape 1), ``"params"`` (shape 2) or ``"opaque"`` (shape 3:
    ``model`` is ``None`` and ``params`` empty). ``model`` is the dotted LangChain id of a
    serialised model, or the ``_type`` of shape 2. ``params`` merges constructor and call-time
    parameters (a call-time value other than ``None`` wins); values are Python literals, JSON
    values or :class:`Opaque` text; text from the first pair that could not be read on is
    ``rest`` (``None`` when everything was read).

    ``json_end`` is where the JSON of a serialised model ends (0 for other forms) and ``spans``
    the ``(name, start, end)`` of each call-time value in ``llm_string``: what the request log
    needs to blank out credentials without changing the key.
    """

    form: Literal["serialized", "params", "opaque"]
    model: Any
    params: dict[str, Any]
    rest: str | None = None
    json_end: int = 0
    spans: tuple[tuple[str, Any, int, int], ...] = ()


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


class _NonFinite(ast.NodeTransformer):
    """``inf`` and ``nan`` as the floats whose repr they are (a model's ``float('inf')``)."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("inf", "nan"):
            return ast.copy_location(ast.Constant(float(node.id)), node)
        return node


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except Exception:  # SyntaxError (bad escapes, NUL), ValueError, MemoryError, RecursionError..
        pass
    if "inf" in text or "nan" in text:
        try:
            return ast.literal_eval(_NonFinite().visit(ast.parse(text, mode="eval")))
        except Exception:
            pass
    return opaque(text)


def _key_text(quoted: str) -> str | None:
    """The name a quoted key spells, or ``None`` when it is not a valid literal (``'\\N'``)."""
    try:
        name = ast.literal_eval(quoted)
    except Exception:
        return None
    return name if isinstance(name, str) else None


_KEY = re.compile(r"""\(\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*,\s*""")


def _parse_pairs(s: str, offset: int = 0) -> tuple[list[tuple[str, Any, int, int]], str | None]:
    """Parse ``str(sorted(d.items()))``; return the pairs and any unparsed remainder.

    Each pair is ``(name, value, start, end)``: ``s[start:end]`` is the value's text (indices
    shifted by ``offset``). Text that cannot be read (a key with a bad escape, an unclosed
    bracket) ends the scan: it and what follows are the remainder. Never raises.
    """
    stripped = s.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return [], stripped or None
    first = len(s) - len(s.lstrip()) + 1  # index of the body in s
    body = stripped[1:-1]
    pairs: list[tuple[str, Any, int, int]] = []
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in ", \t\r\n":
            i += 1
        if i >= n:
            break
        m = _KEY.match(body, i)
        if m is None:
            return pairs, body[i:]
        key = _key_text(m.group(1))
        end = _scan_value(body, m.end())
        if end < 0:
            end = _scan_value(body, m.end(), angles=False)
        if end < 0 or key is None:
            return pairs, body[i:]
        text = body[m.end() : end]
        start = m.end() + len(text) - len(text.lstrip())
        stop = m.end() + len(text.rstrip())
        base = offset + first
        pairs.append((key, _literal(text.strip()), base + start, base + stop))
        i = end + 1
    return pairs, None


# --------------------------------------------------------------------------- llm_string parse

_DECODER = json.JSONDecoder()


def parse_llm_string(llm_string: str) -> ParsedLLMString:
    """Split ``llm_string`` into its form, model identity and merged parameters.

    Never raises: text it cannot read is the ``opaque`` form, or the ``rest`` of a known one.
    """
    try:
        return _parse(llm_string)
    except Exception:  # pragma: no cover - the scanner is total; this is the last resort
        return ParsedLLMString("opaque", None, {})


def _parse(llm_string: str) -> ParsedLLMString:
    merged: dict[str, Any] = {}
    model: Any = None
    form: Literal["serialized", "params", "opaque"] = "opaque"
    tail: str | None = None
    json_end = 0
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
            json_end = end
            tail = llm_string[end + 3 :]
    elif llm_string.startswith("["):
        form = "params"
        tail = llm_string
    rest: str | None = None
    spans: tuple[tuple[str, Any, int, int], ...] = ()
    if tail is not None:
        pairs, rest = _parse_pairs(tail, len(llm_string) - len(tail))
        if form == "params" and not pairs:
            form = "opaque"
        else:
            for name, value, _, _ in pairs:
                if value is not None or name not in merged:
                    merged[name] = value  # call-time values override constructor values
            spans = tuple(pairs)
            if form == "params":
                model = merged.pop("_type", None)
    if form == "opaque":
        return ParsedLLMString("opaque", None, {})
    return ParsedLLMString(form, model, merged, rest, json_end, spans)
