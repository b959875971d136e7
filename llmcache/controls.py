"""Per-call cache controls: what one call may read, write, and for how long.

Given to the cached chat model (``llmcache.adapters.langchain.cached``) per call::

    model.invoke("hi", config={"configurable": {"llmcache": {"refresh": True}}})

or built directly::

    from llmcache.controls import Controls

    controls = Controls.parse({"ttl": 60, "max_age": 3600})
    assert controls.reads and controls.writes
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmcache.backends.base import check_namespace, field_error
from llmcache.errors import ConfigError

__all__ = ["CONFIG_KEY", "Controls"]

#: The key under ``config["configurable"]`` that holds a call's controls.
CONFIG_KEY = "llmcache"


class Controls(BaseModel):
    """What a call may do with the cache; the defaults read and write as configured."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    no_cache: bool = Field(default=False, description="neither read nor write")
    no_store: bool = Field(default=False, description="read, do not write")
    refresh: bool = Field(default=False, description="do not read; write the new answer")
    ttl: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="seconds this answer is kept"
    )
    namespace: str | None = Field(default=None, description="read and write this namespace")
    max_age: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="accept a hit only if younger than this, seconds",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str | None) -> str | None:
        return None if value is None else check_namespace(value)

    @field_validator("no_cache", "no_store", "refresh", mode="before")
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        # "false" would be true in a truthiness test and pydantic's lax mode reads "no" as
        # False: for a switch that decides what is written, accept real booleans only.
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    @field_validator("ttl", "max_age", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True would be read as 1 second
            raise ValueError("must be a number of seconds")
        return value

    @property
    def reads(self) -> bool:
        """The call may be answered from the cache."""
        return not (self.no_cache or self.refresh)

    @property
    def writes(self) -> bool:
        """The model's answer may be stored."""
        return not (self.no_cache or self.no_store)

    @classmethod
    def parse(cls, value: Controls | Mapping[str, Any] | None) -> Self:
        """Controls from a mapping; a :class:`ConfigError` names an unknown key or a bad value."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"invalid llmcache controls {value!r}: a dict with keys {', '.join(cls.names())}"
            )
        unknown = sorted(str(k) for k in value if k not in cls.model_fields)
        if unknown:
            raise ConfigError(
                f"unknown llmcache control {unknown[0]!r}; valid: {', '.join(cls.names())}"
            )
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            field, bad, message = field_error(exc, value)
            raise ConfigError(f"invalid llmcache control {field}={bad!r}: {message}") from None

    @classmethod
    def names(cls) -> list[str]:
        """The valid control names."""
        return list(cls.model_fields)
