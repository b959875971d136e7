"""Names of a backend package imported on first use, so its options import without the driver."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from llmcache.errors import BackendUnavailable, install_line

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: Mapping[str, str], extra: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing ``names`` (name → module) on first access.

    A missing driver is a :class:`BackendUnavailable` naming the pip extra that brings it.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(names[name])
        except ImportError as exc:
            raise BackendUnavailable(
                f"{package}.{name} needs {exc.name or 'a driver'!r}, which is not installed: "
                + install_line(extra)
            ) from exc
        return getattr(module, name)

    return __getattr__
