"""Settings, read once from the environment, ``.env``, ``llmcache.toml`` or ``pyproject.toml``.

Every field can be set as an environment variable ``LLMCACHE_<FIELD>`` (nested fields with ``__``,
e.g. ``LLMCACHE_KEY__TEMPERATURE=bypass_above:0.5``). Precedence, highest first: keyword arguments,
environment, ``.env``, ``llmcache.toml``, ``[tool.llmcache]`` in ``pyproject.toml``, defaults.

Example::

    from llmcache import Settings, from_settings

    settings = Settings(url="memory://", ttl=3600, namespace="my-app")
    cache = from_settings(settings)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from llmcache.keys import TemperatureMode

__all__ = ["ENV_PREFIX", "KeySettings", "Settings", "default_url"]

ENV_PREFIX = "LLMCACHE_"


def default_url() -> str:
    """A disk cache in the platform's user cache directory (e.g. ``~/.cache/llmcache``)."""
    return f"disk://{Path(platformdirs.user_cache_dir('llmcache')).as_posix()}"


class KeySettings(BaseModel):
    """What identifies a request (see :class:`llmcache.KeyPolicy`)."""

    model_config = ConfigDict(extra="forbid")

    # A string in settings (env values are text); checked here, parsed by KeyPolicy.
    temperature: str = Field(
        default="include", description="include | ignore | bypass_above:T | sample:K"
    )
    version: str = Field(default="v1", min_length=1, description="key-format version")
    ignore_params: list[str] = Field(default_factory=list, description="extra params to drop")

    @field_validator("temperature", mode="before")
    @classmethod
    def _parse_temperature(cls, value: Any) -> Any:
        if isinstance(value, TemperatureMode):
            return str(value)
        return str(TemperatureMode.parse(value)) if isinstance(value, str) else value


class Settings(BaseSettings):
    """All of llmcache's configuration. Secrets are :class:`~pydantic.SecretStr`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        toml_file="llmcache.toml",
        pyproject_toml_table_header=("tool", "llmcache"),
        validate_default=True,
        populate_by_name=True,
    )

    url: str = Field(default_factory=default_url, description="backend URL (scheme picks it)")
    ttl: float | None = Field(default=86_400.0, gt=0, description="entry lifetime, seconds")
    namespace: str = Field(default="default", description="tenant/app namespace")
    on_error: Literal["miss", "raise"] = Field(
        default="miss", description="store faults: become misses, or raise"
    )
    compress_min_bytes: int | None = Field(
        default=1024, ge=0, description="zlib-compress values at least this big; None = never"
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="client-side AES-256-GCM key, URL-safe base64 (`llmcache new-key`)",
    )
    encryption_previous_keys: list[SecretStr] = Field(
        default_factory=list, description="older keys still accepted for reading (rotation)"
    )
    breaker_failures: int = Field(default=5, ge=1, description="faults in a row that open it")
    breaker_cooldown: float = Field(default=10.0, gt=0, description="seconds before a probe")
    key: KeySettings = Field(default_factory=KeySettings)
    record_to: Path | None = Field(
        default=None, description="append every request to this JSONL log (llmcache replay)"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="backend options, as in the URL query string"
    )

    redis_username: str | None = Field(default=None, description="Redis ACL user")
    redis_password: SecretStr | None = Field(default=None, description="Redis AUTH password")
    momento_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LLMCACHE_MOMENTO_API_KEY", "MOMENTO_API_KEY"),
        description="Momento API key (falls back to MOMENTO_API_KEY)",
    )
    momento_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LLMCACHE_MOMENTO_ENDPOINT", "MOMENTO_ENDPOINT"),
        description="Momento endpoint for v2 API keys (falls back to MOMENTO_ENDPOINT)",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        from llmcache.backends.base import check_namespace

        return check_namespace(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
            PyprojectTomlConfigSettingsSource(settings_cls),
        )
