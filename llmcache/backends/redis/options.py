"""Typed options of the Redis backends: pydantic only, importable without the ``redis`` driver.

Settings read every backend's declared environment variables whether its driver is installed
or not, so this module must not import ``redis``. Each field is a URL query parameter
(``?socket_timeout=0.2``) or a keyword argument; ``url`` itself comes from the URL given to
:meth:`~llmcache.backends.base.Backend.from_url`.

Example::

    from llmcache.backends.redis import RedisBackend, RedisOptions

    store = RedisBackend(RedisOptions(url="redis://localhost:6379/0", socket_timeout=0.2))
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from llmcache.backends.base import BackendOptions

__all__ = ["DEFAULT_URL", "RedisOptions"]

DEFAULT_URL = "redis://localhost:6379/0"


class RedisOptions(BackendOptions):
    """Options of ``redis://`` and friends (URL query parameters or keyword arguments).

    ``username`` / ``password`` left at ``None`` mean "not given": the URL's credentials stand.
    """

    url: str = DEFAULT_URL  # scheme, credentials, host(s), database; may hold a password
    socket_timeout: float = Field(default=0.25, gt=0)  # seconds per read/write
    socket_connect_timeout: float = Field(default=0.25, gt=0)  # seconds to connect (+TLS)
    retries: int = Field(default=1, ge=0, le=5)  # reconnects after a dropped connection
    max_connections: int = Field(default=50, gt=0)  # per pool; sync cluster: per node
    health_check_interval: int = Field(default=0, ge=0)  # PING idle connections older than this
    username: str | None = Field(  # ACL / ElastiCache RBAC user (default: the URL's)
        default=None, json_schema_extra={"env": ["LLMCACHE_REDIS_USERNAME"]}
    )
    password: SecretStr | None = Field(  # password or AUTH token (default: the URL's)
        default=None, json_schema_extra={"env": ["LLMCACHE_REDIS_PASSWORD"]}
    )
    ssl_ca_certs: str | None = None  # CA bundle to verify the server (default: system CAs)
    ssl_certfile: str | None = None  # client certificate, for servers that require one
    ssl_keyfile: str | None = None  # its private key
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_check_hostname: bool = True
    default_ttl: float | None = Field(default=None, gt=0)

    def __repr_args__(self) -> Any:
        # The URL may carry a password: show it redacted, as messages do.
        from llmcache.registry import redact_url

        for name, value in super().__repr_args__():
            yield name, (redact_url(value) if name == "url" else value)
