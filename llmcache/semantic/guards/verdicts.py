"""The guards by name, and the verdict on two prompts: differences() and vetoes()."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llmcache.semantic.guards.checks import (
    _antonym,
    _direction,
    _entity,
    _negation,
    _number,
    _quoted,
    _set_diff,
    _swap,
    _unit,
)
from llmcache.semantic.guards.reader import Features, features

#: Guard name → check; each returns what differs ("" when nothing does).
GUARDS: dict[str, Callable[[Features, Features], str]] = {
    "negation": _negation,
    "antonym": _antonym,
    "number": _number,
    "date": _set_diff("dates"),
    "entity": _entity,
    "quoted": _quoted,
    "unit": _unit,
    "direction": _direction,
    "swap": _swap,
}
#: Guard name → the similarity at which the embedding overrules that guard (the others it never
#: overrules): a minimal pair this close is a rewording (a typo, a synonym) after all.
OVERRULED_AT: dict[str, float] = {"swap": 0.9}
ALL_GUARDS: tuple[str, ...] = tuple(GUARDS)
DEFAULT_GUARDS: tuple[str, ...] = ALL_GUARDS


def differences(
    a: str, b: str, guards: Sequence[str] = DEFAULT_GUARDS, similarity: float | None = None
) -> dict[str, str]:
    """Guard name → what differs between prompts ``a`` and ``b``, for each guard that vetoes.

    ``similarity``: the cosine of their embeddings, if known; at :data:`OVERRULED_AT` or above it
    overrules a guard listed there (unknown: never). Never raises: if reading the prompts fails,
    the answer is ``{"error": ...}`` (a veto). Identical prompts never veto each other.
    """
    if a == b:
        return {}
    try:
        fa, fb = features(a), features(b)
        found: dict[str, str] = {}
        for name in guards:
            overruled = OVERRULED_AT.get(name)
            if overruled is not None and similarity is not None and similarity >= overruled:
                continue
            detail = GUARDS[name](fa, fb)
            if detail:
                found[name] = detail
        return found
    except Exception as exc:  # a bug in a heuristic must not serve a wrong answer
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}


def vetoes(
    a: str, b: str, guards: Sequence[str] = DEFAULT_GUARDS, similarity: float | None = None
) -> list[str]:
    """The names of the guards that veto serving ``b``'s answer for ``a`` (empty: no veto)."""
    return list(differences(a, b, guards, similarity))
