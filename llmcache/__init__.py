"""llmcache: one cache for LLM responses, with the store chosen by configuration.

Example::

    from llmcache import from_url

    cache = from_url("memory://")
    cache.update("2+2?", "[('_type', 'fake')]", [{"text": "4"}])
    cache.lookup("2+2?", "[('_type', 'fake')]")   # [{'text': '4'}]
"""

from __future__ import annotations

from typing import Any

from llmcache._breaker import CircuitBreaker
from llmcache.backends.base import Backend
from llmcache.cache import LLMCache
from llmcache.codec import Codec
from llmcache.config import Settings, load_settings
from llmcache.errors import (
    BackendError,
    BackendUnavailable,
    CodecError,
    ConfigError,
    LLMCacheError,
    UnsupportedOperation,
)
from llmcache.keys import KeyPolicy, TemperatureMode
from llmcache.registry import create_backend

__all__ = [
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

__version__ = "0.1.0"


def from_url(url: str, **options: Any) -> LLMCache:
    """An :class:`LLMCache` on the backend named by ``url`` (options as in the query string)."""
    return LLMCache.from_url(url, **options)


def from_settings(settings: Settings | None = None) -> LLMCache:
    """An :class:`LLMCache` configured by ``LLMCACHE_*`` env, ``.env`` and TOML files."""
    return LLMCache.from_settings(settings)
