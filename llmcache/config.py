"""Settings, read once, here and nowhere else: environment, ``.env``, ``llmcache.toml``, pyproject.

Every field can be set as an environment variable ``LLMCACHE_<FIELD>`` (nested fields with ``__``,
e.g. ``LLMCACHE_KEY__TEMPERATURE=bypass_above:0.5``). Precedence, highest first: keyword arguments,
environment, ``.env``, ``llmcache.toml``, ``[tool.llmcache]`` in ``pyproject.toml``, defaults.
Only ``LLMCACHE_*`` names are ours: other variables in the environment or ``.env`` (an app's
``OPENAI_API_KEY``) are left alone, while a misspelt ``LLMCACHE_*`` name is an error. An empty
variable means unset.

Backends declare their own secrets and endpoints in their options model (e.g. Redis
``LLMCACHE_REDIS_PASSWORD``, Momento ``LLMCACHE_MOMENTO_API_KEY`` or ``MOMENTO_API_KEY``); they
are read here too, into :attr:`Settings.backend_env`, and handed to the backend the URL names.

Example::

    from llmcache import Settings, from_settings

    settings = Settings(url="memory://", ttl=3600, namespace="my-app")
    cache = from_settings(settings)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from llmcache import _defaults
from llmcache.backends.base import option_env
from llmcache.errors import ConfigError
from llmcache.keys import TemperatureMode

__all__ = [
    "ENV_PREFIX",
    "KeySettings",
    "L1Settings",
    "Settings",
    "backend_env_names",
    "default_url",
    "encryption_keys",
    "load_settings",
]

ENV_PREFIX = "LLMCACHE_"
DOTENV = ".env"
# LLMCACHE_* variables that are not settings (read by the test fixtures).
_OTHER_ENV = frozenset({"LLMCACHE_REQUIRE_SERVERS"})


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


class L1Settings(BaseModel):
    """The in-process first tier in front of the configured store (see docs/two-tiers.md)."""

    model_config = ConfigDict(extra="forbid")

    max_entries: int = Field(default=_defaults.L1_MAX_ENTRIES, gt=0, description="entries kept")
    ttl: float = Field(
        default=_defaults.L1_TTL, gt=0, description="seconds an entry is served from L1"
    )


def backend_env_names() -> dict[str, str]:
    """Environment variable → backend option field, for every registered backend's options."""
    from llmcache.registry import all_options_classes

    names: dict[str, str] = {}
    for options_cls in all_options_classes():
        for field_name, envs in option_env(options_cls).items():
            for env in envs:
                names.setdefault(env, field_name)
    return names


def _dotenv_values() -> dict[str, str]:
    """``.env``'s variables, parsed once per version of the file (a settings load reads them
    twice: the unknown-name check and the backend variables)."""
    path = Path(DOTENV)
    try:
        stat = path.stat()
    except OSError:
        return {}
    if not path.is_file():
        return {}
    return dict(_parsed_dotenv(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed_dotenv(path: str, mtime_ns: int, size: int) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


class _BackendEnvSource(PydanticBaseSettingsSource):
    """Backend secrets/endpoints from the variables their options declare (env, then ``.env``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        sources = (os.environ, _dotenv_values())
        for name in backend_env_names():
            for source in sources:
                value = source.get(name)
                if value:  # an empty variable means unset
                    found[name] = value
                    break
        return {"backend_env": found} if found else {}


class Settings(BaseSettings):
    """All of llmcache's configuration. Secrets are :class:`~pydantic.SecretStr`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=DOTENV,
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        # Not "forbid": .env files hold other apps' variables. Unknown LLMCACHE_* names are
        # refused by load_settings, which knows every name, backends' included.
        extra="ignore",
        toml_file="llmcache.toml",
        pyproject_toml_table_header=("tool", "llmcache"),
        validate_default=True,
        populate_by_name=True,
    )

    url: str = Field(default_factory=default_url, description="backend URL (scheme picks it)")
    ttl: float | None = Field(default=_defaults.TTL, gt=0, description="entry lifetime, seconds")
    namespace: str = Field(default=_defaults.NAMESPACE, description="tenant/app namespace")
    on_error: Literal["miss", "raise"] = Field(
        default="miss", description="store faults: become misses, or raise"
    )
    compress_min_bytes: int | None = Field(
        default=_defaults.COMPRESS_MIN_BYTES,
        ge=0,
        description="zlib-compress values at least this big; None = never",
    )
    max_decoded_bytes: int = Field(
        default=_defaults.MAX_DECODED_BYTES,
        gt=0,
        description="a stored value that decodes to more bytes than this is a miss",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="client-side AES-256-GCM key, URL-safe base64 (`llmcache new-key`)",
    )
    encryption_previous_keys: list[SecretStr] = Field(
        default_factory=list, description="older keys still accepted for reading (rotation)"
    )
    breaker_failures: int = Field(
        default=_defaults.BREAKER_FAILURES, ge=1, description="faults in a row that open it"
    )
    breaker_cooldown: float = Field(
        default=_defaults.BREAKER_COOLDOWN, gt=0, description="seconds before a probe"
    )
    key: KeySettings = Field(default_factory=KeySettings)
    l1: L1Settings | None = Field(
        default=None,
        description="in-process first tier (any LLMCACHE_L1__* setting turns it on)",
    )
    single_flight: bool | None = Field(
        default=None,
        description="concurrent identical misses make one model call; "
        "default: on for cached(), off for the global cache",
    )
    metrics: str | None = Field(
        default=None,
        description="exporters on for every cache: comma-separated otel, prometheus",
    )
    semantic: dict[str, Any] | None = Field(
        default=None,
        description="semantic layer settings (threshold, guards, tables, ...; docs/semantic.md); "
        "on when embeddings are passed to from_settings",
    )
    lease_ttl: float = Field(
        default=_defaults.LEASE_TTL,
        gt=0,
        description="single-flight: seconds waiters wait for the leader before calling themselves",
    )
    record_to: Path | None = Field(
        default=None, description="append every request to this JSONL log (llmcache replay)"
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="backend options as a JSON object, as in the URL query string",
    )
    backend_env: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="backend secrets/endpoints by the variable their options declare",
        exclude=True,
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
            _BackendEnvSource(settings_cls),
            TomlConfigSettingsSource(settings_cls),
            PyprojectTomlConfigSettingsSource(settings_cls),
        )


def _field_hint(field: str) -> str:
    if field in ("options", "encryption_previous_keys") or field.endswith("ignore_params"):
        return ' (a JSON value, e.g. \'{"socket_timeout": 0.5}\' or \'["a", "b"]\')'
    return ""


def _check_env_names() -> None:
    """An unknown ``LLMCACHE_*`` variable (env or ``.env``) is an error: a typo such as
    ``LLMCACHE_TTLL`` would otherwise be ignored without a word."""
    fields = {name.upper() for name in Settings.model_fields} - {"BACKEND_ENV"}
    backend = set(backend_env_names())
    for where, names in (("environment", os.environ), (DOTENV, _dotenv_values())):
        for name in names:
            if not name.startswith(ENV_PREFIX) or name in _OTHER_ENV or name in backend:
                continue
            if name[len(ENV_PREFIX) :].split("__")[0] not in fields:
                valid = sorted(
                    {ENV_PREFIX + f for f in fields}
                    | {f"{ENV_PREFIX}KEY__{k.upper()}" for k in KeySettings.model_fields}
                    | {f"{ENV_PREFIX}L1__{k.upper()}" for k in L1Settings.model_fields}
                    | {b for b in backend if b.startswith(ENV_PREFIX)}
                )
                raise ConfigError(f"unknown setting {name} (in {where}); valid: {', '.join(valid)}")


def load_settings(**overrides: Any) -> Settings:
    """Read :class:`Settings`; invalid values become a :class:`ConfigError` naming the field."""
    _check_env_names()
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "__".join(str(p) for p in err["loc"])
        top = str(err["loc"][0]) if err["loc"] else field
        value = "***" if "key" in top and "encryption" in top else repr(err.get("input"))
        raise ConfigError(
            f"invalid setting {field!r} (env {ENV_PREFIX}{field.upper()}): "
            f"{value}: {err['msg']}{_field_hint(top)}"
        ) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid settings: {exc}{_settings_error_hint(str(exc))}") from None


def _settings_error_hint(message: str) -> str:
    for field in Settings.model_fields:
        if f'"{field}"' in message:
            return f" (env {ENV_PREFIX}{field.upper()}){_field_hint(field)}"
    return ""


def encryption_keys(settings: Settings) -> list[str]:
    """The encryption keys settings name, newest first (empty: no encryption)."""
    if settings.encryption_key is None:
        return []
    keys = [settings.encryption_key, *settings.encryption_previous_keys]
    return [k.get_secret_value() for k in keys]
