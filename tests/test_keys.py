"""Key policy: what a user notices about which requests share a cache entry."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from llmcache.errors import ConfigError
from llmcache.keys import KeyDecision, KeyPolicy, TemperatureMode

# --------------------------------------------------------------------------- llm_strings

#: FACTS.md's ChatOpenAI example, byte for byte.
OPENAI = (
    '{"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {"model_name": '
    '"gpt-4o-mini", "openai_api_key": {"id": ["OPENAI_API_KEY"], "lc": 1, "type": "secret"}, '
    '"stream_usage": true, "temperature": 0.2}, "lc": 1, "name": "ChatOpenAI", '
    '"type": "constructor"}'
)
OPENAI_PLAIN = OPENAI + "---[('stop', None)]"
PROMPT = (
    '[{"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "HumanMessage"], '
    '"kwargs": {"content": "What is the capital of France?", "type": "human"}}]'
)


def openai_with(tail: str, **kwargs: Any) -> str:
    """FACTS.md's ChatOpenAI string with other constructor kwargs and a given call tail."""
    obj = json.loads(OPENAI)
    obj["kwargs"].update(kwargs)
    return json.dumps(obj, sort_keys=True) + "---" + tail


def key(llm_string: str, prompt: str = PROMPT, **policy: Any) -> str | None:
    return KeyPolicy(**policy).decide(prompt, llm_string).key


class Recorder:
    """Build a LangChain cache that records the (prompt, llm_string) LangChain hands it."""

    def __new__(cls) -> Any:
        caches = pytest.importorskip("langchain_core.caches")

        class _Recorder(caches.BaseCache):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                self.calls: list[tuple[str, str]] = []

            def lookup(self, prompt: str, llm_string: str) -> None:
                self.calls.append((prompt, llm_string))

            def update(self, prompt: str, llm_string: str, return_val: Any) -> None:
                pass

            def clear(self, **kwargs: Any) -> None:
                pass

        return _Recorder()


def chat_string(temperature: float | None = None, **call: Any) -> str:
    """The llm_string LangChain builds for a real (non-serialisable) fake chat model call."""
    fake = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    rec = Recorder()
    model = fake.FakeListChatModel(responses=["Paris"], cache=rec)
    if temperature is not None:
        call["temperature"] = temperature
    model.invoke("What is the capital of France?", **call)
    (_, llm_string) = rec.calls[-1]
    assert isinstance(llm_string, str)
    return llm_string


def serializable_chat_model(**fields: Any) -> Any:
    """A real serialisable chat model shaped like ChatOpenAI (secret, timeout, stream_usage)."""
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from pydantic import SecretStr

    class ServedChat(FakeListChatModel):
        model_name: str = "served-1"
        temperature: float | None = None
        api_key: SecretStr | None = None
        request_timeout: float | None = None
        stream_usage: bool = False

        @classmethod
        def is_lc_serializable(cls) -> bool:
            return True

        @property
        def lc_secrets(self) -> dict[str, str]:
            return {"api_key": "SERVED_API_KEY"}

    return ServedChat(responses=["Paris"], **fields)


# --------------------------------------------------------------------------- temperature modes


def test_ignore_shares_entries_across_temperatures_and_include_does_not() -> None:
    cold, warm = chat_string(temperature=0.0), chat_string(temperature=0.7)
    assert key(cold, temperature="ignore") == key(warm, temperature="ignore")
    assert key(cold) != key(warm)
    assert key(cold, temperature="include") != key(warm, temperature="include")


def test_ignore_and_include_on_the_serialised_form() -> None:
    a = openai_with("[('stop', None), ('temperature', 0.0)]")
    b = openai_with("[('stop', None), ('temperature', 0.7)]")
    assert (
        key(a, temperature="ignore")
        == key(b, temperature="ignore")
        == key(OPENAI_PLAIN, temperature="ignore")
    )
    assert key(a) != key(b)


def test_bypass_above_skips_hot_calls_only() -> None:
    policy = KeyPolicy(temperature="bypass_above:0.5")
    hot = policy.decide(PROMPT, chat_string(temperature=0.7))
    assert hot.key is None
    assert hot.reason == "temperature 0.7 > bypass_above 0.5"
    cool = policy.decide(PROMPT, chat_string(temperature=0.3))
    assert cool.key is not None and cool.reason is None
    # the threshold itself is cached, and a model without temperature is cached
    assert policy.decide(PROMPT, chat_string(temperature=0.5)).key is not None
    assert policy.decide(PROMPT, chat_string()).key is not None
    # temperature still separates the entries that are cached
    assert cool.key != policy.decide(PROMPT, chat_string(temperature=0.1)).key


def test_bypass_above_sees_the_constructor_temperature() -> None:
    policy = KeyPolicy(temperature="bypass_above:0.1")
    assert policy.decide(PROMPT, OPENAI_PLAIN).key is None  # kwargs temperature 0.2
    call_cold = openai_with("[('stop', None), ('temperature', 0)]")
    assert policy.decide(PROMPT, call_cold).key is not None


def test_temperature_given_as_text_is_read_as_a_number() -> None:
    s = "[('_type', 'x'), ('temperature', '{}')]"
    assert key(s.format("0.7")) == key("[('_type', 'x'), ('temperature', 0.7)]")
    assert KeyPolicy(temperature="bypass_above:0.5").decide(PROMPT, s.format("0.7")).key is None
    odd = KeyPolicy(temperature="bypass_above:0.5").decide(PROMPT, s.format("hot"))
    assert odd.key is None and odd.reason is not None and "'hot'" in odd.reason


def test_sample_mode_keeps_k_answers_under_the_include_key() -> None:
    s = chat_string(temperature=1.0)
    decision = KeyPolicy(temperature="sample:3").decide(PROMPT, s)
    assert decision.samples == 3 and decision.reason is None
    assert decision.key == key(s)
    assert KeyPolicy().decide(PROMPT, s).samples == 1


def test_integral_floats_equal_ints() -> None:
    one = "[('_type', 'x'), ('temperature', 1.0)]"
    assert key(one) == key("[('_type', 'x'), ('temperature', 1)]")
    assert key("[('_type', 'x'), ('flag', True)]") != key("[('_type', 'x'), ('flag', 1)]")


# --------------------------------------------------------------------------- what enters a key


def test_call_time_params_override_constructor_params() -> None:
    m = serializable_chat_model(temperature=0.2)
    at_call = m._get_llm_string(stop=None, temperature=0.9)
    made_hot = serializable_chat_model(temperature=0.9)._get_llm_string(stop=None)
    assert key(at_call) == key(made_hot)
    material = KeyPolicy().decide(PROMPT, at_call).material
    assert material["params"]["temperature"] == 0.9
    assert key(at_call) != key(m._get_llm_string(stop=None))


def test_secrets_timeouts_and_streaming_flags_do_not_change_the_key() -> None:
    base = serializable_chat_model(temperature=0.2)._get_llm_string(stop=None)
    others = serializable_chat_model(
        temperature=0.2, api_key="sk-other", request_timeout=5.0, stream_usage=True
    )._get_llm_string(stop=None)
    assert base != others  # LangChain itself would miss here
    assert key(base) == key(others)
    # the FACTS.md ChatOpenAI string: key, timeout, retries and stream flags are all dropped
    noisy = openai_with(
        "[('stop', None), ('stream', True), ('timeout', 30)]",
        openai_api_key={"id": ["OTHER_KEY"], "lc": 1, "type": "secret"},
        stream_usage=False,
        max_retries=6,
        request_timeout=60,
        callbacks=None,
        http_client={"lc": 1, "type": "not_implemented", "id": ["httpx", "Client"]},
    )
    assert key(noisy) == key(OPENAI_PLAIN)


def test_non_serialisable_models_drop_the_same_params() -> None:
    base = chat_string(temperature=0.2)
    assert key(base) == key(chat_string(temperature=0.2, api_key="sk-x", timeout=3, stream=True))


def test_stop_sequences_and_model_name_change_the_key() -> None:
    m = serializable_chat_model()
    assert key(m._get_llm_string(stop=["\n"])) != key(m._get_llm_string(stop=None))
    assert key(m._get_llm_string(stop=["\n"])) != key(m._get_llm_string(stop=["END"]))
    other = serializable_chat_model(model_name="served-2")
    assert key(other._get_llm_string(stop=None)) != key(m._get_llm_string(stop=None))
    assert key(chat_string(stop=["\n"])) != key(chat_string())
    assert key(openai_with("[('stop', None)]", model_name="gpt-4o")) != key(OPENAI_PLAIN)


def test_stop_none_equals_absent_stop() -> None:
    assert key("[('_type', 'x'), ('stop', None)]") == key("[('_type', 'x')]")


def test_model_type_and_prompt_change_the_key() -> None:
    assert key("[('_type', 'a')]") != key("[('_type', 'b')]")
    assert key(OPENAI_PLAIN, prompt="a") != key(OPENAI_PLAIN, prompt="b")


def test_real_llm_strings_are_parsed() -> None:
    llms = pytest.importorskip("langchain_core.language_models")
    rec = Recorder()
    llm = llms.FakeListLLM(responses=["Paris"], cache=rec)
    llm.invoke("What is the capital of France?")
    llm.invoke("What is the capital of France?", stop=["\n"])
    (p1, s1), (p2, s2) = rec.calls
    assert p1 == "What is the capital of France?"
    d1 = KeyPolicy().decide(p1, s1)
    assert d1.material["model"] == "fake-list"
    assert d1.material["params"] == {"responses": ["Paris"]}
    assert d1.key != KeyPolicy().decide(p2, s2).key


def test_response_format_class_repr_is_kept_not_evaluated() -> None:
    tail = "[('response_format', <class 'app.schemas.Answer'>), ('stop', None)]"
    decision = KeyPolicy().decide(PROMPT, openai_with(tail))
    assert decision.key is not None and decision.key != key(OPENAI_PLAIN)
    assert decision.material["params"]["response_format"] == {
        "__repr__": "<class 'app.schemas.Answer'>"
    }
    other = openai_with("[('response_format', <class 'app.schemas.Other'>), ('stop', None)]")
    assert key(other) != decision.key


def test_one_opaque_value_does_not_hide_the_others() -> None:
    s = (
        "[('_type', 'x'), ('fn', <function pick at 0x7f3a2c1d>), "
        "('prompt', ChatPromptValue(messages=[HumanMessage(content='a), b', "
        "additional_kwargs={})])), "
        "('stray', <oops), ('stop', ['\\n', \"it's\"]), ('temperature', 0.7)]"
    )
    params = KeyPolicy().decide(PROMPT, s).material["params"]
    assert params["stop"] == ["\n", "it's"]
    assert params["temperature"] == 0.7
    assert params["fn"] == {"__repr__": "<function pick>"}  # address removed: stable keys
    assert params["stray"] == {"__repr__": "<oops"}
    assert key(s) == key(s.replace("0x7f3a2c1d", "0x55aa"))


def test_literal_values_are_never_evaluated(tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    s = f"[('_type', 'x'), ('x', __import__('pathlib').Path({str(marker)!r}).touch())]"
    assert KeyPolicy().decide(PROMPT, s).key is not None
    assert not marker.exists()


@pytest.mark.parametrize(
    "llm_string",
    [
        "",
        "[",
        "[(",
        "]",
        "{",
        "{}",
        "{}---",
        "{not json}---[('a', 1)]",
        '{"id": 3}---garbage',
        "[('a', 'unterminated)]",
        "[('a' 1)]",
        "[1, 2, 3]",
        "[" * 5000 + "]" * 5000,
        "[('x', " + "[" * 5000 + "]" * 5000 + ")]",
        "\ud800 lone surrogate",
        "just some model name",
    ],
)
def test_malformed_llm_strings_give_a_key_and_never_raise(llm_string: str) -> None:
    policy = KeyPolicy(temperature="bypass_above:0.5")
    decision = policy.decide("\ud800", llm_string)
    assert decision.key is not None and decision.key.startswith("v1:")
    json.loads(policy.explain("p", llm_string))


def test_unknown_strings_are_distinct_opaque_identities() -> None:
    assert key("model-a") != key("model-b")
    assert key("model-a") == key("model-a")


def test_ignore_params_drops_named_params() -> None:
    s = "[('_type', 'x'), ('seed', 1), ('user', 'alice')]"
    t = "[('_type', 'x'), ('seed', 1), ('user', 'bob')]"
    assert key(s) != key(t)
    assert key(s, ignore_params={"user"}) == key(t, ignore_params=["user"])


# --------------------------------------------------------------------------- key format


def test_key_has_version_prefix_and_no_prompt_text() -> None:
    secret_prompt = "my social security number is 123-45-6789"
    decision = KeyPolicy().decide(secret_prompt, OPENAI_PLAIN)
    assert decision.key is not None
    version, digest = decision.key.split(":")
    assert version == "v1" and len(digest) == 32 and int(digest, 16) >= 0
    assert "123-45" not in json.dumps(decision.material)
    bumped = key(OPENAI_PLAIN, prompt=secret_prompt, version="v2")
    assert bumped is not None and bumped.startswith("v2:") and bumped != decision.key


def test_key_is_the_hash_of_the_material() -> None:
    import hashlib

    import orjson

    decision = KeyPolicy().decide(PROMPT, openai_with("[('stop', ['x']), ('temperature', 1.0)]"))
    body = orjson.dumps(decision.material, option=orjson.OPT_SORT_KEYS)
    assert decision.key == "v1:" + hashlib.blake2b(body, digest_size=16).hexdigest()


def test_keys_are_equal_across_processes() -> None:
    s = openai_with("[('response_format', <class 'a.B'>), ('stop', ['\\n']), ('tools', [{'x'}])]")
    code = textwrap.dedent(
        f"""
        from llmcache.keys import KeyPolicy
        print(KeyPolicy(temperature="sample:2").decide({PROMPT!r}, {s!r}).key)
        """
    )
    here = KeyPolicy(temperature="sample:2").decide(PROMPT, s).key
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        assert out.stdout.strip() == here


def test_material_mutation_does_not_leak_into_later_decisions() -> None:
    first = KeyPolicy().decide(PROMPT, OPENAI_PLAIN)
    first.material["params"]["temperature"] = 99
    again = KeyPolicy().decide(PROMPT, OPENAI_PLAIN)
    assert again.material["params"]["temperature"] == 0.2
    assert again.key == first.key


# --------------------------------------------------------------------------- explain()


def test_explain_is_json_with_the_key_and_what_was_dropped() -> None:
    policy = KeyPolicy(temperature="ignore")
    s = openai_with("[('stop', None), ('temperature', 0.9), ('timeout', 10)]")
    doc = json.loads(policy.explain(PROMPT, s))
    assert doc["key"] == policy.decide(PROMPT, s).key
    assert doc["model"] == "langchain.chat_models.openai.ChatOpenAI"
    assert doc["params"] == {"model_name": "gpt-4o-mini"}
    assert doc["dropped"] == {
        "openai_api_key": "secret",
        "stream_usage": "streaming flag",
        "temperature": "temperature mode ignore",
        "timeout": "timeout",
    }
    assert doc["policy"]["temperature"] == "ignore"
    assert "OPENAI_API_KEY" not in policy.explain(PROMPT, s)
    assert "\n  " in policy.explain(PROMPT, s)  # indented for people


def test_explain_shows_the_bypass_reason_and_a_short_preview() -> None:
    policy = KeyPolicy(temperature="bypass_above:0.5")
    doc = json.loads(policy.explain("x" * 5000, "[('_type', 'x'), ('temperature', 0.9)]"))
    assert doc["key"] is None
    assert doc["bypass"] == "temperature 0.9 > bypass_above 0.5"
    assert len(doc["prompt_preview"]) <= 120 and doc["prompt"]["chars"] == 5000


# --------------------------------------------------------------------------- TemperatureMode


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("include", TemperatureMode()),
        ("ignore", TemperatureMode(kind="ignore")),
        ("bypass_above:0.5", TemperatureMode(kind="bypass_above", threshold=0.5)),
        ("sample:3", TemperatureMode(kind="sample", samples=3)),
    ],
)
def test_temperature_mode_text_round_trips(text: str, mode: TemperatureMode) -> None:
    assert TemperatureMode.parse(text) == mode
    assert str(mode) == text
    assert KeyPolicy(temperature=text).temperature == mode


def test_temperature_mode_accepts_design_spelling() -> None:
    assert TemperatureMode.parse(" Bypass_Above=0.5 ") == TemperatureMode.parse("bypass_above:0.5")


@pytest.mark.parametrize(
    "text", ["hot", "", "sample", "sample:1", "sample:x", "bypass_above", "bypass_above:inf",
             "bypass_above:warm", "include:1"]
)  # fmt: skip
def test_temperature_mode_errors_name_the_value_and_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        TemperatureMode.parse(text)
    message = str(info.value)
    assert repr(text) in message
    assert "bypass_above:" in message and "sample:" in message and "ignore" in message


def test_key_policy_rejects_unknown_fields_and_bad_modes() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        KeyPolicy(namespace="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="'sample:0'"):
        KeyPolicy(temperature="sample:0")
    with pytest.raises(ValidationError):
        KeyPolicy(version="")


def test_key_policy_round_trips_through_json() -> None:
    policy = KeyPolicy(temperature="sample:3", version="v7", ignore_params={"user"})
    assert KeyPolicy.model_validate_json(policy.model_dump_json()) == policy


def test_decision_type() -> None:
    d = KeyPolicy().decide(PROMPT, OPENAI_PLAIN)
    assert isinstance(d, KeyDecision)
    with pytest.raises(AttributeError):
        d.key = "x"  # type: ignore[misc]


def test_credentials_inside_headers_and_model_kwargs_are_not_key_material() -> None:
    """A rotated token must not empty the cache, and explain() must not print it."""

    def llm_string(token: str, tools_choice: str = "auto") -> str:
        params = {
            "_type": "openai-chat",
            "model_name": "gpt-4o-mini",
            "default_headers": {"Authorization": f"Bearer {token}", "X-Team": "search"},
            "model_kwargs": {"api_key": token, "tool_choice": tools_choice},
        }
        return str(sorted(params.items()))

    policy = KeyPolicy()
    first = policy.decide(PROMPT, llm_string("tok-1"))
    assert first.key == policy.decide(PROMPT, llm_string("tok-2")).key
    assert first.key != policy.decide(PROMPT, llm_string("tok-1", "none")).key
    explained = policy.explain(PROMPT, llm_string("tok-1"))
    assert "tok-1" not in explained
    assert "default_headers.Authorization" in explained and "X-Team" in explained
