"""URL scheme → backend class, by import string so drivers import only when used.

Built-in schemes are listed in :data:`BUILTIN_SCHEMES`; third-party packages add schemes through
the ``llmcache.backends`` entry-point group (``scheme = "package.module:Class"``).

Example::

    from llmcache.registry import create_backend

    store = create_backend("memory://?max_entries=1000", namespace="app")
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from llmcache.backends.base import Backend, BackendOptions, option_env
from llmcache.errors import BackendUnavailable, ConfigError, install_line

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
            f"invalid cache URL {redact_url(url)!r}: expected scheme://..., "
            f"one of {', '.join(s + '://' for s in available_schemes())}"
        )
    return urlsplit(url).scheme.lower()


def backend_class(scheme: str) -> type[Backend]:
    """Import and return the class serving ``scheme``."""
    schemes = _schemes()
    if scheme not in schemes:
        raise ConfigError(
            f"unknown cache URL scheme {scheme!r}; valid schemes: {', '.join(sorted(schemes))}"
        )
    target, extra = schemes[scheme]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or "a dependency"
        hint = install_line(extra) if extra else "check the installation"
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
    valid = backend_cls.Options.model_fields
    unknown = sorted(name for name in settings.options if name not in valid)
    if unknown:
        scheme = scheme_of(settings.url)
        raise ConfigError(
            f"option {unknown[0]!r} from the settings (LLMCACHE_OPTIONS / [options] in "
            f"llmcache.toml or [tool.llmcache.options] in pyproject.toml) does not apply to "
            f"the {scheme}:// backend of {redact_url(settings.url)!r}; valid options: "
            f"{', '.join(sorted(valid)) or '(none)'}"
        )
    options = {**from_env, **settings.options}
    return backend_cls.from_url(settings.url, namespace=namespace or settings.namespace, **options)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_PORT = re.compile(r"\d{0,5}")
_REDACTED = "***"


def redact_url(url: str) -> str:
    """``url`` safe to print: the password and secret-looking query values become ``***``.

    Made for URLs as people type them, malformed ones included: whatever precedes the last
    ``@`` after the scheme is credentials (``redis:/:pw@h``, ``redis://:pa/ss@h``,
    ``redis://:pw@``), a non-numeric "port" may be a password that lost its ``@``
    (``redis://:pw``), and percent-encoding that hides an ``@`` or ``:`` is decoded first.
    A URL without anything secret is returned exactly as written.
    """
    try:
        decoded = unquote(url)
        if decoded != url and (
            decoded.count("@") > url.count("@") or decoded.count(":") > url.count(":")
        ):
            url = decoded  # an encoded separator: judge (and show) the decoded form
        return _redact_url(url)
    except Exception:  # pragma: no cover - defensive: never echo what could not be checked
        return "<cache URL not shown>"


def _redact_url(url: str) -> str:
    m = _SCHEME.match(url)
    prefix, rest = (url[: m.end()], url[m.end() :]) if m else ("", url)
    body = rest.lstrip("/")
    lead = rest[: len(rest) - len(body)]
    at = body.rfind("@")
    if at >= 0:
        userinfo, after = body[:at], body[at + 1 :]
        user, colon, _ = userinfo.partition(":")
        keep_user = colon and not any(c in user for c in "/?#")
        head = f"{user}:{_REDACTED}@" if keep_user else f"{_REDACTED}@"
        return prefix + lead + head + _redact_after_host(after)
    # No "@": a "host:port" whose port is not a number may be "user:password" without host.
    cut = min((i for i in (body.find(c) for c in "/?#") if i >= 0), default=len(body))
    authority, tail = body[:cut], body[cut:]
    nodes = ",".join(_redact_node(node) for node in authority.split(","))
    return prefix + lead + nodes + _redact_after_host(tail)


def _redact_node(node: str) -> str:
    """``host[:port]`` as is; ``host:<not a number>`` as ``host:***``."""
    host, sep, port = node.rpartition("]:") if node.startswith("[") else node.partition(":")
    if not sep or _PORT.fullmatch(port.strip()):
        return node
    return f"{host}{sep}{_REDACTED}" if host else _REDACTED


def _redact_after_host(text: str) -> str:
    """``host/path?query#fragment`` with secret-looking query values as ``***``."""
    before, q, query = text.partition("?")
    if not q:
        return text
    query, hash_, fragment = query.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_secret_option(k) for k, _ in pairs):
        return text
    redacted = urlencode([(k, _REDACTED if _secret_option(k) else v) for k, v in pairs], safe="/:*")
    return f"{before}?{redacted}{hash_}{fragment}"


def _secret_option(name: str) -> bool:
    return any(s in name.lower() for s in _SECRET_OPTIONS)
