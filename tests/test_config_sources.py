"""Configuration errors say where the bad value came from and what is expected.

What a new user meets first: a ``.env`` full of other apps' variables, an empty variable, a
backend option in ``llmcache.toml`` that does not apply to the URL's scheme, a disk path that is
a file, ``disk://tmp/x`` with two slashes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcache import ConfigError, from_settings, load_settings
from llmcache.backends.memory import MemoryBackend
from llmcache.cli import app
from llmcache.config import Settings
from llmcache.registry import backend_from_settings, create_backend

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("clean_env")


def error_of(**overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    return str(info.value)


# --------------------------------------------------------------------------- environment


def test_options_that_are_not_json_name_the_variable_and_the_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMCACHE_OPTIONS", "notjson")
    message = error_of()
    assert "LLMCACHE_OPTIONS" in message and "JSON" in message


def test_an_unknown_variable_is_named_and_the_valid_names_include_nested_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMCACHE_TTLL", "5")
    message = error_of()
    assert "LLMCACHE_TTLL" in message and "environment" in message
    valid = message.split("valid:", 1)[1]
    for name in ("LLMCACHE_TTL", "LLMCACHE_KEY__TEMPERATURE", "LLMCACHE_OPTIONS"):
        assert name in valid


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("LLMCACHE_TTL", "ttl"),
        ("LLMCACHE_URL", "url"),
        ("LLMCACHE_NAMESPACE", "namespace"),
        ("LLMCACHE_KEY__TEMPERATURE", "key"),
        ("LLMCACHE_OPTIONS", "options"),
        ("LLMCACHE_REDIS_PASSWORD", "backend_env"),
    ],
)
def test_an_empty_variable_means_unset(
    monkeypatch: pytest.MonkeyPatch, name: str, field: str
) -> None:
    default = getattr(Settings(), field)
    monkeypatch.setenv(name, "")
    assert getattr(load_settings(), field) == default


def test_empty_ttl_gives_the_default_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCACHE_TTL", "")
    assert load_settings().ttl == 86_400


def test_dotenv_with_other_apps_variables_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "OPENAI_API_KEY=sk-not-ours\n"
        "DATABASE_URL=postgres://u:p@db/app\n"
        "LLMCACHE_URL=memory://?max_entries=7\n"
        "LLMCACHE_NAMESPACE=from-dotenv\n"
    )
    settings = load_settings()
    assert (settings.url, settings.namespace) == ("memory://?max_entries=7", "from-dotenv")
    cache = from_settings(settings)
    assert isinstance(cache.backend, MemoryBackend) and cache.backend.max_entries == 7
    assert "sk-not-ours" not in repr(settings)
    result = runner.invoke(app, ["stats"])  # the CLI reads the same settings
    assert result.exit_code == 0, result.output


def test_a_misspelt_llmcache_name_in_dotenv_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-not-ours\nLLMCACHE_TTLL=5\n")
    message = error_of()
    assert "LLMCACHE_TTLL" in message and ".env" in message
    assert "OPENAI_API_KEY" not in message and "sk-not-ours" not in message


# --------------------------------------------------------------------------- backend options


def test_env_options_that_do_not_apply_to_the_scheme_name_their_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMCACHE_URL", "memory://")
    monkeypatch.setenv("LLMCACHE_OPTIONS", '{"socket_timeout": 0.5}')
    with pytest.raises(ConfigError) as info:
        backend_from_settings(load_settings())
    message = str(info.value)
    assert "socket_timeout" in message and "memory://" in message
    assert "LLMCACHE_OPTIONS" in message and "llmcache.toml" in message
    assert "max_entries" in message  # and what would apply


def test_toml_options_that_do_not_apply_to_the_scheme_name_their_source(tmp_path: Path) -> None:
    (tmp_path / "llmcache.toml").write_text('url = "memory://"\n[options]\nsocket_timeout = 0.5\n')
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 3  # configuration error (docs/cli.md)
    assert "socket_timeout" in result.output and "llmcache.toml" in result.output


def test_options_that_apply_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCACHE_URL", "memory://")
    monkeypatch.setenv("LLMCACHE_OPTIONS", '{"max_entries": 3}')
    backend = backend_from_settings(load_settings())
    assert isinstance(backend, MemoryBackend) and backend.max_entries == 3


def test_an_unknown_option_in_the_url_is_still_named_as_such() -> None:
    with pytest.raises(ConfigError, match="unknown option 'socket_timeout' for memory://"):
        create_backend("memory://?socket_timeout=1")


# --------------------------------------------------------------------------- disk paths


def test_a_disk_path_that_is_a_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    with pytest.raises(ConfigError, match="not-a-dir"):
        create_backend(f"disk://{file}")
    with pytest.raises(ConfigError, match="not-a-dir/sub"):  # a directory under a file
        create_backend(f"disk://{file}/sub")
    result = runner.invoke(app, ["stats", "--url", f"disk://{file}"])
    assert result.exit_code == 3 and "not-a-dir" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root writes into read-only directories; the directory-under-a-file case covers it",
)
def test_a_read_only_disk_directory_is_a_config_error_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="read-only"):
            create_backend(f"disk://{directory}")
    finally:
        directory.chmod(0o700)


def test_disk_url_with_two_slashes_is_refused_with_both_spellings() -> None:
    with pytest.raises(ConfigError) as info:
        create_backend("disk://tmp/x")
    message = str(info.value)
    assert "disk:///tmp/x" in message and "disk://./tmp/x" in message


# --------------------------------------------------------------------------- docstrings


def test_from_url_says_where_keys_and_passwords_come_from() -> None:
    from llmcache.adapters.langchain import LangChainCache
    from llmcache.cache import LLMCache

    for method in (LLMCache.from_url, LangChainCache.from_url):
        doc = method.__doc__ or ""
        for name in ("LLMCACHE_REDIS_PASSWORD", "LLMCACHE_MOMENTO_API_KEY", "from_settings"):
            assert name in doc, (method.__qualname__, name)
