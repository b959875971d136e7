"""No secret reaches output: exception text, CLI output, bench reports, the request log.

Each test plants a recognisable secret and checks that it never appears where a user (or a log
collector) would see it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from llmcache.cli import app
from llmcache.errors import ConfigError
from llmcache.keys import KeyPolicy
from llmcache.registry import create_backend, redact_url
from llmcache.requestlog import RequestRecorder

SECRET = "s3cretPW"
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("clean_env")


def config_error(url: str, **options: Any) -> str:
    with pytest.raises(ConfigError) as info:
        create_backend(url, **options)
    return str(info.value)


# --------------------------------------------------------------------------- URL errors

BAD_URLS = [
    # an option given twice (the lead's fix in backends/base.py:url_options)
    f"memory://:{SECRET}@x?max_entries=1&max_entries=2",
    f"redis://:{SECRET}@localhost:6379/0?socket_timeout=1&socket_timeout=2",
    # the one-slash typo, and other malformed Redis URLs
    f"redis:/:{SECRET}@host",
    f"redis:/:{SECRET}@host:6379/0",
    f"redis://:{SECRET}",  # "@host" forgotten: the password looks like a port
    f"redis://default:{SECRET}",
    f"redis://:{SECRET}@h/notadb",
    f"redis://:{SECRET}@a:1,b:2",  # several hosts without +cluster
    f"redis://:{SECRET}@h:99999",
    f"redis+cluster://:{SECRET}@h:7000/3",
    f"redis://:{quote(SECRET + '/?#')}@h/x",  # percent-encoded password
    f"redis://:{SECRET}/x@h/y",  # an unencoded "/" in the password
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_config_errors_never_show_the_password(url: str) -> None:
    pytest.importorskip("redis") if url.startswith("redis") else None
    message = config_error(url)
    assert SECRET not in message, message


@pytest.mark.parametrize("url", BAD_URLS[:4])
def test_cli_doctor_never_shows_the_password(url: str) -> None:
    result = runner.invoke(app, ["doctor", "--url", url])
    assert result.exit_code == 3  # configuration error (docs/cli.md)
    assert "error" in result.stderr
    assert SECRET not in result.output, result.output


def test_unknown_settings_option_error_never_shows_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMCACHE_URL", f"memory://:{SECRET}@x")
    monkeypatch.setenv("LLMCACHE_OPTIONS", '{"socket_timeout": 0.5}')
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 3 and "socket_timeout" in result.stderr
    assert SECRET not in result.output


# --------------------------------------------------------------------------- redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:pw@h:6379/0", "redis://user:***@h:6379/0"),
        ("redis:/:pw@host", "redis:/:***@host"),
        ("redis://:pw@", "redis://:***@"),
        ("redis://:p%40ss@h", "redis://:***@h"),
        ("redis://pw@h", "redis://***@h"),
        ("redis://:pw", "redis://***"),
        ("redis://h:6379?password=x&db=1", "redis://h:6379?password=***&db=1"),
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
        ("rediss+cluster://a:7000,b:7001", "rediss+cluster://a:7000,b:7001"),
        ("disk:///tmp/x?size_limit=1GB", "disk:///tmp/x?size_limit=1GB"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url_examples(url: str, shown: str) -> None:
    assert redact_url(url) == shown


_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=12)
#: passwords hold any printable character (URL separators too), and start with a marker
#: no other part of the generated URL can contain.
_PASSWORD = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=16
).map(lambda s: "PW" + s.replace("PW", ""))
_TEMPLATES = [
    "{scheme}://{user}:{pw}@{host}:6379/0",
    "{scheme}://:{pw}@{host}",
    "{scheme}://{pw}@{host}",
    "{scheme}:/:{pw}@{host}",
    "{scheme}:/{user}:{pw}@{host}/1",
    "{scheme}:///:{pw}@{host}",
    "{scheme}://:{pw}@",
    "{scheme}://:{pw}",
    "{scheme}://{host}:{pw}",
    "{scheme}://:{qpw}@{host}",
    "{scheme}://{user}:{qpw}@{host}?db=1",
    "{scheme}://{host}/0?password={qpw}",
    "{scheme}://{host}?api_key={qpw}&x=1",
    "{scheme}://{user}:{pw}@{host}?token={qpw}",
    "{scheme}%3A%2F%2F%3A{qpw}%40{host}",
    "{scheme}://{user}%3A{qpw}%40{host}",
]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=st.sampled_from(_TEMPLATES),
    scheme=st.sampled_from(["redis", "rediss", "redis+cluster", "memory", "disk", "momento"]),
    user=_NAME,
    host=_NAME,
    pw=_PASSWORD,
)
@example(template="{scheme}:/:{pw}@{host}", scheme="redis", user="u", host="h", pw="PWx")
@example(template="{scheme}://:{pw}@", scheme="redis", user="u", host="h", pw="PW@x")
def test_redact_url_never_shows_a_password(
    template: str, scheme: str, user: str, host: str, pw: str
) -> None:
    if "//{pw}@" in template:  # the whole userinfo: a ":" in it would start the password
        pw = pw.replace(":", "")
    url = template.format(scheme=scheme, user=user, host=host, pw=pw, qpw=quote(pw, safe=""))
    shown = redact_url(url)
    assert "PW" not in shown, (url, shown)
    assert "PW" not in redact_url(shown)


@settings(max_examples=300, deadline=None)
@given(url=st.text(max_size=60))
def test_redact_url_never_raises_and_leaves_plain_urls_alone(url: str) -> None:
    assert isinstance(redact_url(url), str)


# --------------------------------------------------------------------------- bench --json


def test_bench_json_never_shows_the_password(tmp_path: Path) -> None:
    url = f"memory://:{SECRET}@x"
    result = runner.invoke(
        app,
        ["bench", "--url", url, "--keys", "5", "--ops", "10", "--concurrency", "1", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["results"][0]["url"] == "memory://:***@x"
    assert SECRET not in result.output


# --------------------------------------------------------------------------- request log

#: a serialisable model (shape 1) with a secret in model_kwargs and in headers, and call-time
#: secrets in the tail (shape 1's second half)
SHAPE1 = (
    json.dumps(
        {
            "id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
            "kwargs": {
                "model_name": "gpt-4o-mini",
                "openai_api_key": {"id": ["OPENAI_API_KEY"], "lc": 1, "type": "secret"},
                "model_kwargs": {"api_key": f"sk-{SECRET}", "top_k": 3},
                "default_headers": {"Authorization": f"Bearer {SECRET}", "X-Team": "a"},
                "openai_proxy": f"http://u:{SECRET}@proxy:8080",
                "temperature": 0.2,
            },
            "lc": 1,
            "name": "ChatOpenAI",
            "type": "constructor",
        },
        sort_keys=True,
    )
    + "---"
    + str(
        sorted(
            {
                "stop": None,
                "extra_headers": {"authorization": f"Bearer {SECRET}"},
                "api_key": f"sk-{SECRET}",
            }.items()
        )
    )
)
#: a non-serialisable chat model (shape 2) with the same secrets
SHAPE2 = str(
    sorted(
        {
            "_type": "custom-chat",
            "model_kwargs": {"api_key": f"sk-{SECRET}", "extra_headers": {"X-Api-Key": SECRET}},
            "headers": {"Authorization": f"Bearer {SECRET}", "Accept": "json"},
            "password": SECRET,
            "stop": ["\n"],
            "temperature": 0.7,
        }.items()
    )
)


@pytest.mark.parametrize("llm_string", [SHAPE1, SHAPE2], ids=["serialized", "params"])
def test_request_log_never_stores_credentials_and_keeps_the_key(
    tmp_path: Path, llm_string: str
) -> None:
    path = tmp_path / "log.jsonl"
    recorder = RequestRecorder(path)
    recorder.record("hello", llm_string, {"input_tokens": 1, "output_tokens": 2}, hit=False)
    recorder.close()
    text = path.read_text()
    assert SECRET not in text
    logged = json.loads(text)["llm_string"]
    assert "'***'" in logged or '"***"' in logged
    # the logged request has the live request's key (replay depends on it)
    for mode in ("include", "ignore", "bypass_above:0.5"):
        policy = KeyPolicy(temperature=mode)
        assert policy.decide("hello", logged) == policy.decide("hello", llm_string)
    # what is not a credential stays readable
    assert "top_k" in logged or "temperature" in logged


def test_request_log_through_langchain_never_stores_credentials(tmp_path: Path) -> None:
    fake = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    from llmcache.adapters.langchain import LangChainCache
    from llmcache.replay import replay

    path = tmp_path / "log.jsonl"
    cache = LangChainCache.from_url("memory://", record_to=path)
    model = fake.FakeListChatModel(responses=["a"], cache=cache)
    secrets = {
        "api_key": f"sk-{SECRET}",
        "model_kwargs": {"api_key": f"sk-{SECRET}"},
        "extra_headers": {"Authorization": f"Bearer {SECRET}"},
    }
    model.invoke("hi", **secrets)
    model.invoke("hi", **secrets)
    model.invoke("hi", stop=["\ud83d"])  # a request orjson cannot write must not stop the log
    model.invoke("bye", **secrets)
    cache.close()
    text = path.read_text()
    assert SECRET not in text
    assert len(text.splitlines()) == 4
    assert replay(path, ["include"], skip_bad=True)["include"].hits == cache.stats["hits"] == 1
