"""Property tests of the key policy: every text LangChain can hand us is a key or a bypass.

For arbitrary prompt and llm_string text (lone surrogates, NULs, backslashes, quotes, brackets)
and for llm_strings built in LangChain's three shapes (FACTS.md) with arbitrary parameter names
and values, ``KeyPolicy().decide`` never raises, is deterministic, and two requests that differ
in the prompt or in a parameter that is not dropped never share a key.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from llmcache.keys import KeyPolicy
from llmcache.keys._params import drop_reason, model_params, redact_llm_string

POLICIES = [
    KeyPolicy(),
    KeyPolicy(temperature="ignore"),
    KeyPolicy(temperature="bypass_above:0.5"),
    KeyPolicy(temperature="sample:3", ignore_params=frozenset({"x"})),
]

# --------------------------------------------------------------------------- strategies

#: characters that break naive parsers: quotes, escapes, brackets, NUL, lone surrogates.
_NASTY = st.sampled_from(
    [
        *"\\'\"()[]{}<>,:=-_ \t\n\r\x00Nux0",
        "\ud83d",
        "\ude00",
        "\udfff",
        "\ud800",
        "\\N",
        "\\x",
        "\\u",
        "---",
        "<class 'a.B'>",
    ]
)
_ANY_CHAR = st.one_of(
    st.characters(),  # any code point except surrogates
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    _NASTY,
)
ODD_TEXT = st.lists(_ANY_CHAR, max_size=40).map("".join)

#: fragments of LangChain's shapes, glued in random order: almost-valid llm_strings.
_FRAGMENTS = st.sampled_from(
    [
        "[",
        "]",
        "(",
        ")",
        "'",
        '"',
        ", ",
        "('",
        "', ",
        "('stop', ",
        "None",
        "['\\n']",
        "'\\N'",
        "'\\ud83d'",
        "\ud83d",
        "\x00",
        "{",
        "}",
        '{"id": ["a", "B"], "kwargs": {}}',
        "---",
        "<class 'x.Y'>",
        "<function f at 0x7f00>",
        "1e400",
        "nan",
        "b'\\xff'",
        "9" * 30,
        "[" * 300,
        "(" * 300,
    ]
)
ALMOST_VALID = st.lists(st.one_of(_FRAGMENTS, ODD_TEXT), max_size=12).map("".join)

_MARKERS = ["__int__", "__float__", "__repr__", "__str__", "__dict__", "__unparsed__"]
NAMES = st.one_of(ODD_TEXT, st.sampled_from([*_MARKERS, "stop", "model", "top_p"]))
_TEXT_VALUES = st.one_of(ODD_TEXT, st.sampled_from(["\ud83d\ude00", "😀", "__repr__", "1"]))
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT_VALUES,
)
#: Python literals as LangChain's str(sorted(params.items())) may hold them.
PY_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(NAMES, st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)
#: JSON values, as a serialisable model's kwargs hold them.
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(NAMES, inner, max_size=4)),
    max_leaves=12,
)


def _identifying(name: str) -> bool:
    """A generated name the key must keep (not dropped, no special meaning)."""
    low = name.lower()
    return (
        drop_reason(name, 0, frozenset()) is None
        and low not in {"temperature", "_type", "model_kwargs", "extra_body", "client_kwargs"}
        and "headers" not in low
    )


PARAMS = st.dictionaries(NAMES.filter(_identifying), PY_VALUES, max_size=5)
JSON_PARAMS = st.dictionaries(NAMES.filter(_identifying), JSON_VALUES, max_size=5)


def shape_serialized(model: str, kwargs: dict[str, Any], call: dict[str, Any]) -> str:
    """Shape 1: a serialisable chat model (json.dumps(dumpd(model)) + '---' + call kwargs)."""
    obj = {
        "id": ["langchain", "chat_models", model],
        "kwargs": kwargs,
        "lc": 1,
        "name": model,
        "type": "constructor",
    }
    return json.dumps(obj, sort_keys=True) + "---" + str(sorted({"stop": None, **call}.items()))


def shape_chat(model: str, params: dict[str, Any]) -> str:
    """Shape 2: a non-serialisable chat model."""
    return str(sorted({"_type": model, "stop": None, **params}.items()))


def shape_llm(model: str, params: dict[str, Any]) -> str:
    """Shape 3: an LLM (identifying params, _type and stop)."""
    return str(sorted({"stop": None, **params, "_type": model}.items()))


def _norm(value: Any) -> Any:
    """What a request means: integral floats are ints, tuples are lists, None is absent."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return ("int", int(value))
        return ("float", repr(value))
    if isinstance(value, (list, tuple)):
        return ("list", [_norm(v) for v in value])
    if isinstance(value, dict):
        return ("dict", sorted((repr(_norm(k)), repr(_norm(v))) for k, v in value.items()))
    raise AssertionError(value)  # pragma: no cover


def meaning(params: dict[str, Any]) -> dict[str, Any]:
    return {k: _norm(v) for k, v in params.items() if v is not None}


def decide_all(prompt: str, llm_string: str) -> list[Any]:
    out = []
    for policy in POLICIES:
        first = policy.decide(prompt, llm_string)
        again = policy.decide(prompt, llm_string)
        assert first == again, "decisions must be deterministic"
        assert (first.key is None) == (first.reason is not None)
        if first.key is not None:
            assert first.key.startswith(policy.version + ":")
            assert first.key.isascii() and first.key.isprintable()
        out.append(first)
    return out


# --------------------------------------------------------------------------- never raises

SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@SETTINGS
@given(prompt=ODD_TEXT, llm_string=st.one_of(ODD_TEXT, ALMOST_VALID))
@example(prompt="hi", llm_string="[('\\N', 1)]")
@example(prompt="hi", llm_string="[('stop', ['\ud83d'])]")
@example(prompt="hi", llm_string="[('\\x', 1), ('a\x00', 2)]")
@example(prompt="\ud83d", llm_string='{"id": ["a"], "kwargs": {"x": "\\ud83d"}}---[]')
@example(prompt="hi", llm_string="[('a', " + "[" * 400 + "]" * 400 + ")]")
@example(
    prompt="hi", llm_string='{"id": ["a"], "kwargs": {"x": ' + "[" * 400 + "]" * 400 + "}}---[]"
)
def test_any_text_is_a_key_or_a_bypass(prompt: str, llm_string: str) -> None:
    decide_all(prompt, llm_string)
    explained = KeyPolicy().explain(prompt, llm_string)
    # Printable and writable as UTF-8 whatever the prompt held (lone surrogates from argv).
    assert json.loads(explained.encode("utf-8").decode("utf-8"))["prompt"]["chars"] == len(prompt)


@settings(max_examples=60, deadline=None)
@given(prompt=ODD_TEXT.filter(lambda t: t and not t.startswith("-") and "\x00" not in t))
def test_the_key_command_prints_any_prompt(prompt: str) -> None:
    """``llmcache key`` (pretty and --json) never crashes on what a shell can pass it."""
    from typer.testing import CliRunner

    from llmcache.cli import app

    for extra in ([], ["--json"]):
        result = CliRunner().invoke(app, ["key", prompt, *extra])
        assert result.exit_code == 0, (result.output, result.exception)
        result.output.encode("utf-8")
    assert json.loads(result.output)["prompt"]["chars"] == len(prompt)


@SETTINGS
@given(model=_TEXT_VALUES, kwargs=JSON_PARAMS, call=PARAMS, prompt=ODD_TEXT)
def test_the_three_shapes_with_any_params_never_raise(
    model: str, kwargs: dict[str, Any], call: dict[str, Any], prompt: str
) -> None:
    for llm_string in (
        shape_serialized(model, kwargs, call),
        shape_chat(model, call),
        shape_llm(model, call),
    ):
        decisions = decide_all(prompt, llm_string)
        assert decisions[0].key is not None  # the default policy never bypasses


# --------------------------------------------------------------------------- no collisions


@SETTINGS
@given(model=_TEXT_VALUES, a=PARAMS, b=PARAMS, pa=ODD_TEXT, pb=ODD_TEXT)
@example(model="m", a={"n": 2**64 + 1}, b={"n": {"__int__": str(2**64 + 1)}}, pa="q", pb="q")
@example(model="m", a={"n": "\ud83d\ude00"}, b={"n": "😀"}, pa="q", pb="q")
@example(model="m", a={"n": {1: "x"}}, b={"n": {"1": "x"}}, pa="q", pb="q")
@example(model="m", a={"n": {"__repr__": "nan"}}, b={"n": float("nan")}, pa="q", pb="q")
@example(model="m", a={"\ud83d": 1}, b={"\ude00": 1}, pa="q", pb="q")
@example(model="m", a={}, b={}, pa="\ud83d\ude00", pb="😀")
def test_different_requests_never_share_a_key(
    model: str, a: dict[str, Any], b: dict[str, Any], pa: str, pb: str
) -> None:
    policy = KeyPolicy()
    same = meaning(a) == meaning(b) and pa == pb
    for shape in (shape_chat, shape_llm):
        ka = policy.decide(pa, shape(model, a)).key
        kb = policy.decide(pb, shape(model, b)).key
        assert ka is not None and kb is not None
        assert (ka == kb) == same, (shape(model, a), shape(model, b))


@SETTINGS
@given(
    model=_TEXT_VALUES,
    kwargs_a=JSON_PARAMS,
    kwargs_b=JSON_PARAMS,
    call_a=PARAMS,
    call_b=PARAMS,
)
def test_serialized_models_differing_in_a_param_never_share_a_key(
    model: str,
    kwargs_a: dict[str, Any],
    kwargs_b: dict[str, Any],
    call_a: dict[str, Any],
    call_b: dict[str, Any],
) -> None:
    def effective(kwargs: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        # JSON text cannot tell a surrogate pair from the character it encodes: LangChain's
        # json.dumps gives "\ud83d\ude00" for both, so the kwargs mean what JSON reads back.
        merged = {k: _norm(v) for k, v in json.loads(json.dumps(kwargs)).items()}
        for k, v in call.items():  # call-time values other than None win
            if v is not None or k not in merged:
                merged[k] = _norm(v)
        return {k: v for k, v in merged.items() if v is not None}

    ka = KeyPolicy().decide("q", shape_serialized(model, kwargs_a, call_a)).key
    kb = KeyPolicy().decide("q", shape_serialized(model, kwargs_b, call_b)).key
    same = effective(kwargs_a, call_a) == effective(kwargs_b, call_b)
    assert ka is not None and kb is not None
    assert (ka == kb) == same


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # a parameter literally named like the parser's marker for unreadable text
        ("[('_type', 'm'), ('__unparsed__', <x>)]", "[('_type', 'm'), <x>]"),
        (
            "[('_type', 'm'), ('__unparsed__', 1), <x>]",
            "[('_type', 'm'), ('__unparsed__', 2), <x>]",
        ),
        ("[('_type', 'm'), ('k', {'__int__': '1'})]", "[('_type', 'm'), ('k', {'__dict__': '1'})]"),
    ],
)
def test_marker_lookalikes_do_not_collide(a: str, b: str) -> None:
    assert KeyPolicy().decide("q", a).key != KeyPolicy().decide("q", b).key


# --------------------------------------------------------------------------- request-log redaction


@SETTINGS
@given(model=_TEXT_VALUES, call=PARAMS, secret=st.text(min_size=1, max_size=20))
def test_redacting_an_llm_string_keeps_its_key(
    model: str, call: dict[str, Any], secret: str
) -> None:
    secrets = {
        "api_key": "sk-" + secret,
        "model_kwargs": {"api_key": "sk-" + secret, "top_k": 3},
        "default_headers": {"Authorization": "Bearer " + secret, "X-Trace": "1"},
    }
    for llm_string in (
        shape_chat(model, {**call, **secrets}),
        shape_serialized(model, {"openai_api_key": "sk-" + secret}, {**call, **secrets}),
        shape_llm(model, call),
    ):
        redacted = redact_llm_string(llm_string)
        assert model_params(redacted) == model_params(llm_string)
        assert KeyPolicy().decide("q", redacted).key == KeyPolicy().decide("q", llm_string).key


@SETTINGS
@given(llm_string=st.one_of(ODD_TEXT, ALMOST_VALID))
def test_redacting_odd_text_never_raises(llm_string: str) -> None:
    assert isinstance(redact_llm_string(llm_string), str)


# --------------------------------------------------------------------------- end to end


def _fake_model() -> Any:
    fake = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    from llmcache.adapters.langchain import LangChainCache

    cache = LangChainCache.from_url("memory://")
    return fake.FakeListChatModel(responses=["a", "b"], cache=cache), cache


def test_langchain_invoke_with_a_lone_surrogate_stop_does_not_raise() -> None:
    model, cache = _fake_model()
    assert model.invoke("hi", stop=["\ud83d"]).content == "a"
    assert model.invoke("hi", stop=["\ud83d"]).content == "a"  # and it is cached
    assert model.invoke("hi", stop=["\ude00"]).content == "b"  # another stop, another key
    assert cache.stats["hits"] == 1 and cache.stats["errors"] == 0


async def test_langchain_ainvoke_with_odd_text_does_not_raise() -> None:
    model, cache = _fake_model()
    assert (await model.ainvoke("\ud83d hi", stop=["\\N", "\x00"])).content == "a"
    assert (await model.ainvoke("\ud83d hi", stop=["\\N", "\x00"])).content == "a"
    assert cache.stats["hits"] == 1
