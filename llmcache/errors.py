"""Exceptions raised by llmcache.

::

    LLMCacheError                 root: catch this to catch everything llmcache raises
     ├── ConfigError              bad settings, URL or option (names the field and value)
     ├── BackendError             a store operation failed (driver error chained ``from``)
     │    ├── BackendUnavailable  the driver is not installed, or the store cannot be reached
     │    │    └── PartialOutage   one part of the store (a cluster node) fails; the rest answers
     │    └── UnsupportedOperation  the store cannot do this at all (Momento cannot list keys)
     └── CodecError               bytes that are not ours, are corrupt, or need another key
"""

from __future__ import annotations

__all__ = [
    "DISTRIBUTION",
    "BackendError",
    "BackendUnavailable",
    "CodecError",
    "ConfigError",
    "LLMCacheError",
    "PartialOutage",
    "UnsupportedOperation",
    "install_line",
    "require_extra",
]

#: The name llmcache is published under (the import package is ``llmcache``).
DISTRIBUTION = "llmcache-kit"


def install_line(extra: str) -> str:
    """The pip command that brings an optional part: ``pip install 'llmcache-kit[redis]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require_extra(module: str, extra: str, what: str) -> None:
    """Import ``module`` or raise an ``ImportError`` naming the install line of ``extra``."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs {exc.name or module!r}, which is not installed: {install_line(extra)}"
        ) from exc


class LLMCacheError(Exception):
    """Root of every exception llmcache raises."""


class ConfigError(LLMCacheError, ValueError):
    """A setting, URL or option is invalid; the message names the field and the value."""


class BackendError(LLMCacheError):
    """The store failed an operation."""


class BackendUnavailable(BackendError):
    """The store's driver is missing or the store cannot be reached."""


class PartialOutage(BackendUnavailable):
    """One part of the store (a cluster node) failed or is skipped; the other parts answer.

    Counted as a fault, but it does not open the cache-wide circuit breaker: the healthy parts
    keep serving hits (the part's own breaker skips it).
    """


class UnsupportedOperation(BackendError, NotImplementedError):
    """The backend lacks an optional capability (the message names the backend and the limit)."""


class CodecError(LLMCacheError):
    """Stored bytes could not be decoded into an entry."""
