"""Options of ``momento://``, and the Momento limits they check, without importing the SDK.

:mod:`llmcache.registry` and :mod:`llmcache.config` import this module to learn which environment
variables the backend declares (``LLMCACHE_MOMENTO_API_KEY`` / ``MOMENTO_API_KEY``,
``LLMCACHE_MOMENTO_ENDPOINT`` / ``MOMENTO_ENDPOINT``), so it needs pydantic only: the ``momento``
extra may be missing.

Example::

    from llmcache.backends.momento.options import MomentoOptions

    options = MomentoOptions(cache_name="llm", local="127.0.0.1:8080", default_ttl=3600)
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr

from llmcache.backends.base import BackendOptions
from llmcache.errors import ConfigError

__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_TTL_SECONDS",
    "ConfigurationName",
    "MomentoOptions",
    "check_cache_name",
    "url_fields",
]

#: Momento's maximum item TTL: 24 hours, in seconds.
MAX_TTL_SECONDS = 24 * 3600
#: Momento's maximum item size (key + value), in bytes: 5 MiB. Larger items are refused locally
#: (the SDK would send them and get RESOURCE_EXHAUSTED back, after paying for the transfer).
MAX_ITEM_BYTES = 5 * 1024 * 1024

ConfigurationName = Literal["laptop", "in_region", "low_latency", "lambda"]

# Momento cache names: letters, digits, '-', '_', '.'; no ':' or '@' (so no URL confusion).
_CACHE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")


class MomentoOptions(BackendOptions):
    """Options of ``momento://<cache_name>`` (``api_key``/``endpoint`` come from settings)."""

    cache_name: str = Field(description="the Momento cache (the URL host)")
    api_key: SecretStr | None = Field(
        default=None,
        description="Momento API key; never in the URL",
        json_schema_extra={"env": ["LLMCACHE_MOMENTO_API_KEY", "MOMENTO_API_KEY"]},
    )
    endpoint: str | None = Field(
        default=None,
        description="region endpoint, for v2 API keys",
        json_schema_extra={"env": ["LLMCACHE_MOMENTO_ENDPOINT", "MOMENTO_ENDPOINT"]},
    )
    local: str | None = Field(default=None, description="host:port of a local server (no key)")
    configuration: ConfigurationName = "in_region"
    timeout: float | None = Field(default=None, gt=0, le=300, description="seconds per request")
    default_ttl: float = Field(default=86_400.0, gt=0, le=MAX_TTL_SECONDS)
    create_cache: bool = False
    generation_refresh: float = Field(default=1.0, ge=0, le=3600)
    max_concurrency: int = Field(default=16, gt=0, le=256)


def check_cache_name(name: str) -> str:
    """``name`` if Momento accepts it as a cache name, else a :class:`ConfigError`."""
    if not name:
        raise ConfigError("momento:// URL needs a cache name: momento://<cache-name>")
    if not _CACHE_NAME_RE.match(name):
        raise ConfigError(
            f"invalid Momento cache name {name!r}: use letters, digits, '-', '_' and '.'"
        )
    return name


def url_fields(url: str) -> dict[str, Any]:
    """The cache name a ``momento://`` URL carries as its host, after the URL's own checks.

    - No API key in the URL, neither as ``user@`` nor as ``?api_key=``.
    - No path, and no ``?cache_name=`` (the host is the cache name).
    """
    from llmcache.registry import redact_url

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if "@" in parts.netloc or "api_key" in query:
        raise ConfigError(
            "never put the Momento API key in the cache URL: set LLMCACHE_MOMENTO_API_KEY "
            "(or MOMENTO_API_KEY) instead"
        )
    if parts.path not in ("", "/"):
        raise ConfigError(
            f"unexpected path {parts.path!r} in {redact_url(url)!r}: use momento://<cache>"
        )
    if "cache_name" in query:
        raise ConfigError(
            f"the cache name is the URL host in {redact_url(url)!r}: use momento://<cache>"
        )
    return {"cache_name": parts.netloc}  # checked by the backend, as a direct name is
