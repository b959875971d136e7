"""Request logs and ``llmcache replay``: exact counts on hand-written logs, live == replayed."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import FakeListChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from typer.testing import CliRunner

from llmcache import ConfigError, KeyPolicy
from llmcache.adapters.langchain import LangChainCache
from llmcache.cli import app
from llmcache.replay import LogLineError, chat_request, parse_request, replay
from llmcache.requestlog import RequestRecorder
from tests.fakes import CountingChat

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "benchmarks" / "data" / "requests.jsonl"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_global_cache() -> Iterator[None]:
    yield
    set_llm_cache(None)


def llm(temperature: float | None = None, model: str = "m") -> str:
    params: dict[str, Any] = {"_type": "chat", "model": model}
    if temperature is not None:
        params["temperature"] = temperature
    return str(sorted(params.items()))


def line(ts: float, prompt: str, temperature: float | None = 0.0, **extra: Any) -> str:
    return json.dumps({"ts": ts, "prompt": prompt, "llm_string": llm(temperature), **extra})


def counts(report: Any, policy: str) -> tuple[int, int, int]:
    r = report[policy]
    assert r.requests == r.hits + r.misses + r.bypasses
    return r.hits, r.misses, r.bypasses


# --------------------------------------------------------------------------- exact counts


def test_hand_written_log_gives_exact_counts_per_policy() -> None:
    log = [
        line(0, "A", 0.0),  # miss everywhere (temperature 0: sample:3 keeps one answer)
        line(10, "A", 0.0),  # hit
        line(20, "A", 0.0),  # hit
        line(30, "A", 0.7),  # include/sample: new key, miss; ignore: hit; bypass_above: bypass
        line(40, "A", 0.0),  # hit everywhere
        line(50, "B", 0.0),  # a new prompt: miss everywhere
    ]
    report = replay(log, ["include", "ignore", "bypass_above:0.5", "sample:3"])
    assert counts(report, "include") == (3, 3, 0)
    assert counts(report, "ignore") == (4, 2, 0)
    assert counts(report, "bypass_above:0.5") == (3, 2, 1)
    assert counts(report, "sample:3") == (3, 3, 0)
    assert report["include"].hit_rate == pytest.approx(0.5)


def test_three_identical_requests_give_two_hits_and_temperature_splits_include() -> None:
    same = [line(t, "Q", 0.0) for t in (0, 1, 2)]
    assert replay(same, ["include"])["include"].hits == 2
    mixed = [line(0, "Q", 0.0), line(1, "Q", 0.7)]
    report = replay(mixed, ["include", "ignore", "bypass_above:0.5"])
    assert report["ignore"].hits == 1
    assert report["include"].hits == 0
    assert counts(report, "bypass_above:0.5") == (0, 1, 1)


def test_ttl_expires_entries_by_the_logged_timestamps() -> None:
    log = [line(t, "A") for t in (0, 99, 100, 150)]
    # 0 miss (stored at 0), 99 hit, 100 expired -> miss (stored at 100), 150 hit
    assert counts(replay(log, ["include"], ttl=100), "include") == (2, 2, 0)
    assert counts(replay(log, ["include"], ttl=None), "include") == (3, 1, 0)
    assert counts(replay(log, ["include"], ttl=1000), "include") == (3, 1, 0)


def test_sample_mode_fills_k_answers_and_each_write_restarts_the_ttl() -> None:
    log = [line(t, "A", 1.0) for t in (0, 90, 150, 185, 300)]
    # 0: 1/2, 90: 2/2 stored at 90; 150 hit (age 60); 185 expired (age 95): miss, restarts 1/2;
    # 300: expired again (stored 185, age 115): miss
    assert counts(replay(log, ["sample:2"], ttl=95), "sample:2") == (1, 4, 0)


def test_tokens_saved_use_the_hit_usage_else_the_filling_request() -> None:
    usage_a = {"input_tokens": 1_000_000, "output_tokens": 500_000}
    log = [
        line(0, "A", usage=usage_a),
        line(1, "A", usage={"input_tokens": 10, "output_tokens": 20}),  # hit: its own usage
        line(2, "A"),  # hit without usage: the usage of the request that filled the entry
        line(3, "B"),
        line(4, "B"),  # hit, no usage anywhere
    ]
    report = replay(log, ["include"], input_price=1.0, output_price=2.0)
    r = report["include"]
    assert (r.hits, r.input_tokens_saved, r.output_tokens_saved) == (3, 1_000_010, 500_020)
    assert r.hits_without_usage == 1
    assert r.cost_saved == pytest.approx((1_000_010 * 1.0 + 500_020 * 2.0) / 1e6)
    assert r.as_dict()["tokens_saved"] == 1_500_030


def test_chat_form_builds_langchains_prompt_and_matches_itself() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Wie spät ist es? 日本"},
        {"role": "assistant", "content": "Noon.", "name": "bot"},
        {"role": "tool", "content": "12:00", "tool_call_id": "c1"},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
    ]
    prompt, llm_string = chat_request(messages, "gpt-4o-mini", {"temperature": 0.7})
    expected = dumps(
        [
            SystemMessage(content="Be brief."),
            HumanMessage(content="Wie spät ist es? 日本"),
            AIMessage(content="Noon.", name="bot"),
            ToolMessage(content="12:00", tool_call_id="c1"),
            HumanMessage(content=[{"type": "text", "text": "thanks"}]),
        ]
    )
    assert prompt == expected
    assert llm_string == "[('_type', 'chat'), ('model', 'gpt-4o-mini'), ('temperature', 0.7)]"
    policy = KeyPolicy(temperature="include")
    assert policy.decide(prompt, llm_string).material["params"] == {
        "model": "gpt-4o-mini",
        "temperature": 0.7,
    }
    chat = {"messages": messages, "model": "gpt-4o-mini", "params": {"temperature": 0.7}}
    log = [json.dumps({"ts": t, **chat}) for t in (0, 1)]
    log.append(json.dumps({"ts": 2, "prompt": prompt, "llm_string": llm_string}))
    assert replay(log, ["include"])["include"].hits == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"prompt": "a", "llm_string": "b"}', '"ts"'),
        ('{"ts": 1, "prompt": "a"}', '"prompt" and "llm_string"'),
        ('{"ts": 1, "messages": [{"role": "user", "content": "x"}]}', '"model"'),
        ('{"ts": 1, "messages": [{"role": "robot", "content": "x"}], "model": "m"}', "role"),
        ('{"ts": 1, "prompt": "a", "llm_string": "b", "usage": {"input_tokens": -1}}', "usage"),
    ],
)
def test_bad_line_names_its_line_number(text: str, message: str) -> None:
    log = [line(0, "A"), "", text]  # the blank line is skipped but still counted
    with pytest.raises(LogLineError) as info:
        replay(log)
    assert info.value.line_no == 3
    assert str(info.value).startswith("line 3: ")
    assert message in str(info.value)
    report = replay(log, skip_bad=True)
    assert report.bad_lines == 1 and report["include"].requests == 1


def test_invalid_arguments_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid temperature mode"):
        replay([], ["sometimes"])
    with pytest.raises(ConfigError, match="ttl"):
        replay([], ttl=0)
    with pytest.raises(ConfigError, match="cannot read request log"):
        replay(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="ts"):
        parse_request({"ts": True, "prompt": "a", "llm_string": "b"})


# --------------------------------------------------------------------------- recording


def ask(model: Any, prompts: list[tuple[str, dict[str, Any]]]) -> None:
    for text, kwargs in prompts:
        model.invoke(text, **kwargs)


WORKLOAD: list[tuple[str, dict[str, Any]]] = [
    ("hello", {}),
    ("hello", {}),
    ("weather?", {"temperature": 0.0}),
    ("weather?", {"temperature": 0.9}),
    ("weather?", {"temperature": 0.9}),
    ("hello", {}),
    ("weather?", {"temperature": 0.0}),
    ("weather?", {"temperature": 0.9}),
    ("bye", {"temperature": 0.2}),
    ("weather?", {"temperature": 0.9}),
]


@pytest.mark.parametrize("mode", ["include", "ignore", "bypass_above:0.5", "sample:2"])
def test_recorded_log_replays_to_the_live_hit_count(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "log.jsonl"
    cache = LangChainCache.from_url("memory://", record_to=path, policy=KeyPolicy(temperature=mode))
    model = FakeListChatModel(responses=["a", "b", "c"], cache=cache)
    ask(model, WORKLOAD)
    live = cache.stats
    cache.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == len(WORKLOAD)  # every request: hits, misses and bypasses
    assert sum(x["hit"] for x in lines) == live["hits"]
    report = replay(path, [mode])
    assert report[mode].hits == live["hits"] > 0
    # LLMCache counts a bypassed request twice (in lookup and in update); replay counts requests
    expected_bypasses = 4 if mode == "bypass_above:0.5" else 0
    assert report[mode].bypasses == expected_bypasses == live["bypasses"]


def test_default_cache_log_replays_to_live_counts_and_usage(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    cache = LangChainCache.from_url("memory://", record_to=path)
    model = CountingChat(cache=cache)
    for q in ["a", "b", "a", "a", "b"]:
        model.invoke(q)
    cache.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    # CountingChat's n-th answer has 12 input and 7+n output tokens; hits carry the cached usage
    assert [x["usage"] for x in lines] == [
        {"input_tokens": 12, "output_tokens": 7},
        {"input_tokens": 12, "output_tokens": 8},
        {"input_tokens": 12, "output_tokens": 7},
        {"input_tokens": 12, "output_tokens": 7},
        {"input_tokens": 12, "output_tokens": 8},
    ]
    assert [x["hit"] for x in lines] == [False, False, True, True, True]
    r = replay(path, ["include"])["include"]
    assert (r.hits, r.input_tokens_saved, r.output_tokens_saved) == (3, 36, 22)


async def test_async_calls_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    cache = LangChainCache.from_url("memory://", record_to=path)
    model = FakeListChatModel(responses=["x"], cache=cache)
    await asyncio.gather(*(model.ainvoke(q) for q in ["p", "q"]))
    await model.ainvoke("p")
    await cache.aclose()
    assert replay(path, ["include"])["include"].hits == 1


def test_recorder_buffers_then_flushes_and_a_failed_write_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.jsonl"
    cache = LangChainCache.from_url("memory://", record_to=path)
    assert cache.recorder is not None
    model = FakeListChatModel(responses=["x"], cache=cache)
    model.invoke("one")
    model.invoke("one")
    cache.recorder.flush()
    assert len(path.read_text().splitlines()) == 2

    def broken_write(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("llmcache.requestlog.os.write", broken_write)
    with caplog.at_level(logging.WARNING, logger="llmcache"):
        for _ in range(3):
            model.invoke("two")
            cache.recorder.flush()
    assert model.invoke("one").content == "x"  # the caller's calls never fail
    failures = [r for r in caplog.records if "request log" in r.getMessage()]
    assert len(failures) == 1 and "No space left" in failures[0].getMessage()
    assert cache.recorder.failed
    cache.close()


def test_record_to_an_unwritable_path_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open request log"):
        LangChainCache.from_url("memory://", record_to=tmp_path / "no" / "such" / "dir.jsonl")
    from llmcache import load_settings

    settings = load_settings(url="memory://")
    cache = LangChainCache.from_settings(settings, record_to=tmp_path / "s.jsonl")
    assert isinstance(cache.recorder, RequestRecorder)
    cache.close()


def test_without_record_to_nothing_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMCACHE_RECORD_TO", raising=False)
    cache = LangChainCache.from_url("memory://")
    assert cache.recorder is None
    FakeListChatModel(responses=["x"], cache=cache).invoke("hi")
    cache.close()
    assert list(tmp_path.rglob("*")) == []  # no log file anywhere it could have gone


# --------------------------------------------------------------------------- example and CLI


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_requests", ROOT / "benchmarks" / "data" / "make_requests.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_log_is_reproducible_and_include_differs_from_ignore() -> None:
    generator = load_generator()
    regenerated = [json.dumps(x, separators=(",", ":")) for x in generator.make(400)]
    assert EXAMPLE.read_text().splitlines() == regenerated
    report = replay(EXAMPLE)
    assert report["include"].requests == 400
    assert report["ignore"].hit_rate > report["include"].hit_rate + 0.05
    assert report["bypass_above:0.5"].bypasses > 0
    assert report["ignore"].cost_saved > 0


def test_cli_prints_a_table_and_json() -> None:
    result = runner.invoke(app, ["replay", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    for policy in ("include", "ignore", "bypass_above:0.5", "sample:3"):
        assert policy in result.output
    assert "example prices" in result.output
    result = runner.invoke(
        app, ["replay", str(EXAMPLE), "-p", "include", "--policy", "ignore", "--ttl", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [p["policy"] for p in doc["policies"]] == ["include", "ignore"]
    assert doc["ttl"] is None
    assert doc["policies"][0]["hits"] < doc["policies"][1]["hits"]


def test_cli_bad_line_is_a_clear_error_or_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(line(0, "A") + "\n{oops\n" + line(1, "A") + "\n")
    result = runner.invoke(app, ["replay", str(path)])
    assert result.exit_code == 1
    assert "line 2: not JSON" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["replay", str(path), "--skip-bad", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["bad_lines"] == 1 and doc["policies"][0]["hits"] == 1
    result = runner.invoke(app, ["replay", str(path), "--skip-bad"])
    assert result.exit_code == 0 and "skipped 1 bad lines" in result.output
    result = runner.invoke(app, ["replay", str(path), "-p", "sample:1"])
    assert result.exit_code == 3 and "sample needs k >= 2" in result.output


def test_record_to_setting_turns_recording_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMCACHE_URL", "memory://")
    monkeypatch.setenv("LLMCACHE_RECORD_TO", str(log))
    cache = LangChainCache.from_settings()
    model = FakeListChatModel(responses=["a"], cache=cache)
    model.invoke("q")
    model.invoke("q")
    cache.close()
    assert len(log.read_text().splitlines()) == 2


def test_a_logged_prompt_with_a_lone_surrogate_replays(tmp_path: Path) -> None:
    """The writer escapes lone surrogates (orjson refuses them); the reader takes them back."""
    from llmcache.requestlog import RequestRecorder

    log = tmp_path / "s.jsonl"
    recorder = RequestRecorder(log)
    recorder.record("half \ud83d emoji", "[('_type', 'fake')]", None, hit=False)
    recorder.record("half \ud83d emoji", "[('_type', 'fake')]", None, hit=True)
    recorder.close()
    report = replay(log)
    assert report.bad_lines == 0
    assert report["include"].requests == 2 and report["include"].hits == 1
