"""The command's habits (docs/cli.md): --version, forget, --json, stderr, exit codes, no secrets.

Every test reads stdout and stderr apart, as a script that pipes the command would.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from llmcache import LLMCache, __version__
from llmcache.cli import ExitCode, app
from llmcache.codec import new_encryption_key

try:  # older click mixes stderr into stdout unless told not to; newer keeps them apart
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()

SECRET = "s3cretPW-never-shown"
LLM_STRING = "[('_type', 'gpt-4o-mini'), ('temperature', 0.7)]"  # what `-p temperature=0.7` builds
REQUEST = ["-p", "temperature=0.7"]


@pytest.fixture(autouse=True)
def _clean(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def unreachable_redis(password: str | None = None) -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{free_port()}/0?socket_connect_timeout=0.5"


def assert_error(result: Result, code: ExitCode, *words: str) -> None:
    """Failed with ``code``, saying ``words`` on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error:"), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def as_json(result: Result) -> Any:
    """stdout is one JSON document and nothing else."""
    return json.loads(result.stdout)


def fill(url: str, namespace: str, *prompts: str, samples: int = 1) -> LLMCache:
    policy = "include" if samples == 1 else f"sample:{samples}"
    cache = LLMCache.from_url(url, namespace=namespace)
    cache.policy = cache.policy.model_copy(update={"temperature": _mode(policy)})
    for prompt in prompts:
        for i in range(samples):
            cache.update(prompt, LLM_STRING, {"text": f"{prompt}-{i}"})
    return cache


def _mode(text: str) -> Any:
    from llmcache.keys import TemperatureMode

    return TemperatureMode.parse(text)


# --------------------------------------------------------------------------- --version


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"llmcache {__version__}\n"


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "llmcache", "--version"],
        capture_output=True,
        text=True,
        cwd=root,  # this checkout's llmcache, whatever is installed
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"llmcache {__version__}\n"
    helped = subprocess.run(
        [sys.executable, "-m", "llmcache", "--help"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert "Usage: llmcache" in helped.stdout and "forget" in helped.stdout


def test_exit_codes_are_pinned() -> None:
    # Scripts depend on these numbers (docs/cli.md): changing one is a breaking change.
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "CONFIG": 3,
        "STORE": 4,
    }


def test_help_documents_the_exit_codes() -> None:
    text = " ".join(invoke("--help").stdout.split())
    for code in ("0 ok", "1 no / failed", "2 usage error", "3 configuration error", "4 store"):
        assert code in text, text


# --------------------------------------------------------------------------- forget


def test_forget_deletes_exactly_that_entry_on_disk(tmp_path: Path) -> None:
    url, ns = f"disk://{tmp_path}/c", "app"
    fill(url, ns, "hello", "other").close()
    fill(url, "elsewhere", "hello").close()
    key = as_json(invoke("key", "hello", *REQUEST, "--json"))["key"]

    result = invoke("forget", "hello", *REQUEST, "--url", url, "-n", ns)
    assert result.exit_code == 0, result.stderr
    assert key in result.stdout and result.stderr == ""

    cache = LLMCache.from_url(url, namespace=ns)
    assert cache.lookup("hello", LLM_STRING) is None
    assert cache.lookup("other", LLM_STRING) == {"text": "other-0"}  # the namespace stays
    assert cache.lookup_hit("hello", LLM_STRING, namespace="elsewhere") is not None
    cache.close()

    again = invoke("forget", "hello", *REQUEST, "--url", url, "-n", ns, "--json")
    assert again.exit_code == 1  # nothing left to forget
    assert as_json(again) == {
        "deleted": False,
        "key": key,
        "namespace": ns,
        "url": url,
        "bypass": None,
    }


def test_forget_removes_every_sample_of_the_key(tmp_path: Path) -> None:
    url = f"disk://{tmp_path}/c"
    fill(url, "app", "poem", "other", samples=3).close()
    mode = ["--temperature-mode", "sample:3"]
    result = invoke("forget", "poem", *REQUEST, *mode, "--url", url, "-n", "app", "--json")
    assert result.exit_code == 0 and as_json(result)["deleted"] is True
    cache = fill(url, "app", samples=3)  # same policy, nothing written
    assert cache.lookup("poem", LLM_STRING) is None
    assert cache.lookup("other", LLM_STRING) is not None
    cache.close()


def test_forget_with_llm_string_and_a_bypassed_request(tmp_path: Path) -> None:
    url = f"disk://{tmp_path}/c"
    fill(url, "app", "hello").close()
    bypassed = invoke(
        "forget", "hello", *REQUEST, "--temperature-mode", "bypass_above:0.5",
        "--url", url, "-n", "app", "--json",
    )  # fmt: skip
    doc = as_json(bypassed)
    assert bypassed.exit_code == 1 and doc["deleted"] is False and doc["key"] is None
    assert "bypass_above" in doc["bypass"]
    by_text = invoke("forget", "hello", "--llm-string", LLM_STRING, "--url", url, "-n", "app")
    assert by_text.exit_code == 0, by_text.stderr  # --llm-string names the same request


@pytest.mark.redis
def test_forget_on_redis(standalone: Any) -> None:
    ns = f"t{uuid.uuid4().hex[:8]}"
    cache = fill(standalone.url, ns, "hello", "other")
    result = invoke("forget", "hello", *REQUEST, "--url", standalone.url, "-n", ns, "--json")
    assert result.exit_code == 0, result.stderr
    assert as_json(result)["deleted"] is True
    assert cache.lookup("hello", LLM_STRING) is None
    assert cache.lookup("other", LLM_STRING) == {"text": "other-0"}
    missing = invoke("forget", "hello", *REQUEST, "--url", standalone.url, "-n", ns)
    assert missing.exit_code == 1 and "no entry" in missing.stdout
    cache.clear()
    cache.close()


def test_forget_on_an_unreachable_store_is_a_store_error() -> None:
    result = invoke("forget", "hello", "--url", unreachable_redis(SECRET))
    assert_error(result, ExitCode.STORE, "127.0.0.1")
    assert SECRET not in result.stderr


# --------------------------------------------------------------------------- --json


def test_key_json() -> None:
    result = invoke("key", "hello", *REQUEST, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    doc = as_json(result)
    assert set(doc) == {
        "key",
        "bypass",
        "samples",
        "policy",
        "llm_string_form",
        "model",
        "params",
        "prompt",
        "prompt_preview",
        "dropped",
    }
    assert doc["key"].startswith("v1:") and doc["params"] == {"temperature": 0.7}
    assert set(doc["policy"]) == {"temperature", "version", "ignore_params"}
    assert set(doc["prompt"]) == {"digest", "chars"}


def test_stats_json(tmp_path: Path) -> None:
    url = f"disk://{tmp_path}/c"
    fill(url, "app", "hello").close()
    doc = as_json(invoke("stats", "--url", url, "-n", "app", "--json"))
    assert {"url": url, "backend": "DiskBackend", "namespace": "app"}.items() <= doc.items()
    assert doc["entries_all_namespaces"] == 1
    memory = as_json(invoke("stats", "--url", "memory://", "--json"))
    assert memory["entries"] == 0 and memory["bytes"] == 0


def test_doctor_json_passes_and_fails(tmp_path: Path) -> None:
    result = invoke("doctor", "--url", f"disk://{tmp_path}/c", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    doc = as_json(result)
    assert set(doc) == {"ok", "url", "namespace", "checks", "error"}
    assert doc["ok"] is True and doc["error"] is None
    assert [c["name"] for c in doc["checks"]] == ["settings", "connect", "set", "get", "delete"]
    for check in doc["checks"]:
        assert set(check) == {"name", "ok", "detail", "ms"} and check["ok"] is True

    failed = invoke("doctor", "--url", unreachable_redis(SECRET), "--json")
    assert failed.exit_code == ExitCode.STORE
    doc = as_json(failed)  # the report still comes, on stdout; the error also on stderr
    assert doc["ok"] is False and doc["checks"][-1] == {
        "name": "set",
        "ok": False,
        "detail": "failed",
        "ms": None,
    }
    assert doc["error"]["type"] == "BackendUnavailable" and doc["error"]["message"]
    assert failed.stderr.startswith("error: BackendUnavailable")
    assert SECRET not in failed.stdout + failed.stderr


def test_json_mode_prints_nothing_but_json_even_when_the_store_fails() -> None:
    url = unreachable_redis()
    for command in (["stats"], ["forget", "hello"]):
        result = invoke(*command, "--url", url, "--json")
        assert_error(result, ExitCode.STORE)


# --------------------------------------------------------------------------- errors, exit codes


@pytest.mark.parametrize("command", [["stats"], ["doctor"], ["clear", "--yes"], ["forget", "q"]])
def test_a_bad_url_scheme_is_a_configuration_error_on_stderr(command: list[str]) -> None:
    result = invoke(*command, "--url", f"memcached://:{SECRET}@x")
    assert result.exit_code == 3
    assert "unknown cache URL scheme 'memcached'" in result.stderr
    assert "unknown" not in result.stdout and SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [["stats"], ["doctor"], ["clear", "--yes"], ["forget", "q"]])
def test_an_unreachable_store_is_a_store_error_on_stderr(command: list[str]) -> None:
    result = invoke(*command, "--url", unreachable_redis(SECRET))
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert "connecting to 127.0.0.1" in result.stderr
    assert "connecting" not in result.stdout and SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("LLMCACHE_TTL", "-1", "ttl"),
        ("LLMCACHE_TTLL", "60", "unknown setting LLMCACHE_TTLL"),
        ("LLMCACHE_KEY__TEMPERATURE", "warm", "temperature"),
    ],
)
def test_a_bad_setting_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    for command in (["stats", "--url", "memory://"], ["key", "q"], ["forget", "q"]):
        assert_error(invoke(*command), ExitCode.CONFIG, named)


def test_a_bad_option_value_is_a_configuration_error_not_a_traceback() -> None:
    assert_error(invoke("key", "q", "--temperature-mode", "warm"), ExitCode.CONFIG, "warm")
    bad = invoke("forget", "q", "--url", "memory://", "--temperature-mode", "sample:1")
    assert_error(bad, ExitCode.CONFIG, "sample")


def test_usage_errors_are_typers_exit_2_on_stderr() -> None:
    for args in (["forget"], ["key", "q", "-p", "temperature"], ["stats", "--no-such-option"]):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert result.stdout == "" and "Usage:" in result.stderr


def test_bench_errors_go_to_stderr() -> None:
    result = invoke("bench", "--url", "memory://", "--price", "node_per_hour=cheap", "--json")
    assert_error(result, ExitCode.CONFIG, "cheap")
    failed = invoke(
        "bench", "--url", unreachable_redis(SECRET), "--keys", "5", "--ops", "10",
        "--concurrency", "1", "--json",
    )  # fmt: skip
    assert failed.exit_code == ExitCode.STORE
    report = as_json(failed)  # the report still comes; each failed backend is named on stderr
    assert report["results"][0]["error"]
    assert "error: redis://:***@127.0.0.1" in failed.stderr
    assert SECRET not in failed.stdout + failed.stderr


def test_clear_asks_on_stderr_and_aborting_is_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["clear", "--url", f"disk://{tmp_path}/c"], input="n\n")
    assert result.exit_code == ExitCode.FAILED
    assert "Clear namespace" in result.stderr and "Clear" not in result.stdout


# --------------------------------------------------------------------------- secrets


def test_no_output_shows_the_encryption_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_key = new_encryption_key()
    monkeypatch.setenv("LLMCACHE_ENCRYPTION_KEY", secret_key)
    url = f"disk://{tmp_path}/c"
    runs = [
        invoke(*args, *mode)
        for args in (
            ["stats", "--url", url],
            ["doctor", "--url", url],
            ["forget", "q", "--url", url],
            ["key", "q"],
        )
        for mode in ([], ["--json"])
    ]
    assert [r.exit_code for r in runs] == [0, 0, 0, 0, 1, 1, 0, 0]
    monkeypatch.setenv("LLMCACHE_ENCRYPTION_KEY", secret_key[:-4])  # the wrong length
    broken = [invoke("doctor", "--url", url), invoke("stats", "--url", url, "--json")]
    assert [r.exit_code for r in broken] == [ExitCode.CONFIG] * 2
    for result in runs + broken:
        assert secret_key not in result.stdout + result.stderr
        assert secret_key[:-4] not in result.stdout + result.stderr


def test_no_output_shows_a_password_in_the_url(tmp_path: Path) -> None:
    url = f"memory://:{SECRET}@x"
    runs = [
        invoke("stats", "--url", url),
        invoke("stats", "--url", url, "--json"),
        invoke("doctor", "--url", url),
        invoke("doctor", "--url", url, "--json"),
        invoke("forget", "q", "--url", url, "--json"),
        invoke("clear", "--url", url, "--yes"),
    ]
    assert [r.exit_code for r in runs] == [0, 0, 0, 0, 1, 0], [r.stderr for r in runs]
    assert as_json(runs[1])["url"] == "memory://:***@x"
    for result in runs:
        assert SECRET not in result.stdout + result.stderr


def test_no_output_shows_the_momento_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("momento")
    api_key = f"eyJhbGciOiJIUzI1NiJ9.{SECRET}.c2lnbmF0dXJl"
    monkeypatch.setenv("MOMENTO_API_KEY", api_key)
    for args in (["doctor"], ["doctor", "--json"], ["stats"], ["forget", "q"]):
        result = invoke(*args, "--url", "momento://llmcache-test")
        assert result.exit_code == ExitCode.CONFIG, result.stderr  # the key is not valid
        assert SECRET not in result.stdout + result.stderr


def test_key_semantic_explains_which_stored_prompt_would_serve(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmcache.semantic import HashingEmbeddings

    url = f"disk://{tmp_path / 'cache'}"
    llm = "[('_type', 'fake'), ('model_name', 'demo'), ('temperature', 0.0)]"
    monkeypatch.setenv("LLMCACHE_SEMANTIC__THRESHOLD", "0.8")
    with LLMCache.from_url(
        url, semantic={"embeddings": HashingEmbeddings(), "threshold": 0.8}
    ) as c:
        c.update("what is the best way to cook rice at home", llm, "Simmer it.")
    args = ["--llm-string", llm, "--url", url, "--semantic", "llmcache.semantic:HashingEmbeddings"]
    found = invoke("key", "what is the best way to cook rice at home quickly", *args, "--json")
    assert found.exit_code == 0, found.stderr
    assert json.loads(found.stdout)["semantic"]["match"] is not None
    vetoed = invoke("key", "what is the best way to not cook rice at home", *args, "--json")
    candidates = json.loads(vetoed.stdout)["semantic"]["candidates"]
    assert json.loads(vetoed.stdout)["semantic"]["match"] is None
    assert any(c["verdict"] == "vetoed" for c in candidates)
    bad = invoke("key", "q", "--semantic", "no_such_module:Thing")
    assert bad.exit_code == ExitCode.CONFIG and "no_such_module" in bad.stderr
