"""URL scheme → backend class, by import string so drivers import only when used.

Built-in schemes are listed in :data:`BUILTIN_SCHEMES`; third-party packages add schemes through
the ``llmcache.backends`` entry-point group (``scheme = "package.module:Class"``).

Example::

    from llmcache.registry import create_backend

    store = create_backend("memory://?max_entries=1000", namespace="app")
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from llmcache.backends.base import Backend, BackendOptions, option_env
from llmcache.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    from llmcache.config import Settings

__all__ = [
    "BUILTIN_SCHEMES",
    "all_options_classes",
    "available_schemes",
    "backend_class",
    "backend_from_settings",
    "create_backend",
    "redact_url",
    "scheme_of",
]

#: scheme → (backend class, pip extra that brings its driver or None). Backends import lazily.
BUILTIN_SCHEMES: dict[str, tuple[str, str | None]] = {
    "memory": ("llmcache.backends.memory:MemoryBackend", None),
    "disk": ("llmcache.backends.disk:DiskBackend", None),
    "redis": ("llmcache.backends.redis.backend:RedisBackend", "redis"),
    "rediss": ("llmcache.backends.redis.backend:RedisBackend", "redis"),
    "valkey": ("llmcache.backends.redis.backend:RedisBackend", "redis"),
    "valkeys": ("llmcache.backends.redis.backend:RedisBackend", "redis"),
    "redis+cluster": ("llmcache.backends.redis.cluster:RedisClusterBackend", "redis"),
    "rediss+cluster": ("llmcache.backends.redis.cluster:RedisClusterBackend", "redis"),
    "valkey+cluster": ("llmcache.backends.redis.cluster:RedisClusterBackend", "redis"),
    "valkeys+cluster": ("llmcache.backends.redis.cluster:RedisClusterBackend", "redis"),
    "momento": ("llmcache.backends.momento.backend:MomentoBackend", "momento"),
}
#: Options models of the built-in backends, importable without their drivers (settings need
#: every backend's declared environment variables, installed or not).
BUILTIN_OPTIONS: tuple[str, ...] = (
    "llmcache.backends.memory:MemoryOptions",
    "llmcache.backends.disk:DiskOptions",
    "llmcache.backends.redis.options:RedisOptions",
    "llmcache.backends.momento.options:MomentoOptions",
)
ENTRY_POINT_GROUP = "llmcache.backends"


def _schemes() -> dict[str, tuple[str, str | None]]:
    found = dict(BUILTIN_SCHEMES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, (ep.value, None))
    return found


def _import(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def all_options_classes() -> list[type[BackendOptions]]:
    """The options model of every built-in backend and of every plug-in that imports."""
    found: list[type[BackendOptions]] = [_import(t) for t in BUILTIN_OPTIONS]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = _import(ep.value)
        except Exception:  # a broken plug-in must not break settings; using it says why
            continue
        if isinstance(cls, type) and issubclass(cls, Backend) and cls.Options not in found:
            found.append(cls.Options)
    return found


def available_schemes() -> list[str]:
    """Every scheme a URL may use: built-ins plus installed plug-ins."""
    return sorted(_schemes())


def scheme_of(url: str) -> str:
    """The scheme of ``url``, lower-cased; a URL without one is a :class:`ConfigError`."""
    if "://" not in url:
        raise ConfigError(
            f"invalid cache URL {url!r}: expected scheme://..., "
            f"one of {', '.join(s + '://' for s in available_schemes())}"
        )
    return urlsplit(url).scheme.lower()


def backend_class(scheme: str) -> type[Backend]:
    """Import and return the class serving ``scheme``."""
    schemes = _schemes()
    if scheme not in schemes:
        raise ConfigError(
            f"unknown cache URL scheme {scheme!r}; valid schemes: "
            f"{', '.join(sorted(schemes))}"
        )
    target, extra = schemes[scheme]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or "a dependency"
        hint = f"pip install 'llmcache[{extra}]'" if extra else "check the installation"
        raise BackendUnavailable(
            f"the {scheme}:// backend needs {missing!r}, which is not installed: {hint}"
        ) from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"{target!r} (scheme {scheme!r}) is not an llmcache Backend class")
    return cls


def create_backend(url: str, *, namespace: str = "default", **options: Any) -> Backend:
    """Build the backend a URL names; keyword options override the URL's query parameters."""
    return backend_class(scheme_of(url)).from_url(url, namespace=namespace, **options)


_SECRET_OPTIONS = ("password", "api_key", "token", "auth", "secret", "key")


def backend_from_settings(settings: Settings, *, namespace: str | None = None) -> Backend:
    """The backend :class:`~llmcache.Settings` describe (URL, secrets, options), in ``namespace``
    (default: the ``namespace`` setting)."""
    backend_cls = backend_class(scheme_of(settings.url))
    from_env: dict[str, Any] = {}
    for field, names in option_env(backend_cls.Options).items():
        for name in names:
            if name in settings.backend_env:
                from_env[field] = settings.backend_env[name].get_secret_value()
                break
    options = {**from_env, **settings.options}
    return backend_cls.from_url(settings.url, namespace=namespace or settings.namespace, **options)


def redact_url(url: str) -> str:
    """``url`` safe to print: the password and secret-looking query values become ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hosts}" if ":" in userinfo else f"***@{hosts}"
    query = urlencode(
        [
            (k, "***" if any(s in k.lower() for s in _SECRET_OPTIONS) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="/:*",
    )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret: print it as the user wrote it
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
