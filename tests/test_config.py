"""Settings from env, .env and TOML; URLs and registry errors; the public API."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmcache
from llmcache import (
    BackendUnavailable,
    ConfigError,
    LLMCache,
    Settings,
    from_settings,
    load_settings,
)
from llmcache.backends.disk import DiskBackend
from llmcache.backends.memory import MemoryBackend
from llmcache.registry import BUILTIN_SCHEMES, create_backend

pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults_are_a_disk_cache_for_a_day() -> None:
    settings = Settings()
    assert settings.url.startswith("disk://") and "llmcache" in settings.url
    assert (settings.ttl, settings.namespace, settings.on_error) == (86_400.0, "default", "miss")
    assert str(settings.key.temperature) == "include"


def test_env_sets_every_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCACHE_URL", "memory://?max_entries=5")
    monkeypatch.setenv("LLMCACHE_TTL", "60")
    monkeypatch.setenv("LLMCACHE_NAMESPACE", "tenant-a")
    monkeypatch.setenv("LLMCACHE_KEY__TEMPERATURE", "bypass_above:0.5")
    monkeypatch.setenv("MOMENTO_API_KEY", "secret-key")
    cache = from_settings()
    assert isinstance(cache.backend, MemoryBackend)
    assert (cache.backend.max_entries, cache.backend.namespace, cache.ttl) == (5, "tenant-a", 60)
    assert str(cache.policy.temperature) == "bypass_above:0.5"
    settings = Settings()
    assert "secret-key" not in repr(settings)  # secrets never print
    assert settings.backend_env["MOMENTO_API_KEY"].get_secret_value() == "secret-key"


def test_dotenv_toml_and_pyproject_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.llmcache]\nnamespace = "from-pyproject"\nttl = 10\n'
    )
    assert (Settings().namespace, Settings().ttl) == ("from-pyproject", 10)
    (tmp_path / "llmcache.toml").write_text(
        'namespace = "from-toml"\n[key]\ntemperature = "ignore"\n'
    )
    assert (Settings().namespace, Settings().ttl) == ("from-toml", 10)
    assert str(Settings().key.temperature) == "ignore"
    (tmp_path / ".env").write_text("LLMCACHE_NAMESPACE=from-dotenv\n")
    assert Settings().namespace == "from-dotenv"
    monkeypatch.setenv("LLMCACHE_NAMESPACE", "from-env")
    assert Settings().namespace == "from-env"


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("LLMCACHE_TTL", "-5", "'ttl'"),
        ("LLMCACHE_ON_ERROR", "explode", "'on_error'"),
        ("LLMCACHE_NAMESPACE", "a b", "'a b'"),
        ("LLMCACHE_KEY__TEMPERATURE", "hot", "'hot'"),
        ("LLMCACHE_COLOUR", "blue", "unknown setting LLMCACHE_COLOUR"),
    ],
)
def test_bad_settings_name_field_and_value(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_from_settings_on_disk_url(tmp_path: Path) -> None:
    cache = LLMCache.from_settings(Settings(url=f"disk://{tmp_path}/c", options={"timeout": 1}))
    assert isinstance(cache.backend, DiskBackend)
    assert cache.backend.options.timeout == 1.0  # the option reached the store
    assert cache.backend.directory == tmp_path / "c"
    cache.close()


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"'memcached'.*disk.*memory.*momento.*redis"):
        create_backend("memcached://localhost")
    with pytest.raises(ConfigError, match="expected scheme://"):
        create_backend("localhost:6379")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUILTIN_SCHEMES, "fancy", ("no_such_driver_pkg.backend:Fancy", "fancy"))
    with pytest.raises(BackendUnavailable, match=r"pip install 'llmcache-kit\[fancy\]'"):
        create_backend("fancy://x")


def test_public_api_is_pinned() -> None:
    assert sorted(llmcache.__all__) == [
        "Backend",
        "BackendError",
        "BackendUnavailable",
        "CircuitBreaker",
        "Codec",
        "CodecError",
        "ConfigError",
        "KeyPolicy",
        "LLMCache",
        "LLMCacheError",
        "Settings",
        "TemperatureMode",
        "UnsupportedOperation",
        "__version__",
        "create_backend",
        "from_settings",
        "from_url",
        "load_settings",
    ]
    for name in llmcache.__all__:
        assert hasattr(llmcache, name)


def test_third_party_backends_register_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import llmcache.registry as registry

    plugin = EntryPoint(
        name="mystore", value="llmcache.backends.memory:MemoryBackend", group="llmcache.backends"
    )
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [plugin] if group == "llmcache.backends" else []
    )
    assert "mystore" in registry.available_schemes()
    assert isinstance(create_backend("mystore://?max_entries=2"), MemoryBackend)
    # A built-in scheme cannot be hijacked by a plug-in of the same name.
    monkeypatch.setattr(
        registry,
        "entry_points",
        lambda group: [EntryPoint(name="memory", value="os:path", group="llmcache.backends")],
    )
    assert isinstance(create_backend("memory://"), MemoryBackend)


def test_urls_are_redacted_for_printing() -> None:
    from llmcache.registry import redact_url

    assert redact_url("rediss://app:s3cret@h:6380/0?ssl_ca_certs=/ca.crt") == (
        "rediss://app:***@h:6380/0?ssl_ca_certs=/ca.crt"
    )
    assert redact_url("redis://:token@h:6379/0") == "redis://:***@h:6379/0"
    assert "xyz" not in redact_url("momento://c?api_key=xyz&local=h:1")
    assert redact_url("disk:///tmp/x?size_limit=1GB") == "disk:///tmp/x?size_limit=1GB"
