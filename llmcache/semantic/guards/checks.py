"""The nine guard checks: two prompts' Features in, what differs between them out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from llmcache.semantic.guards.lexicon import _COMMON, _NEG_PREFIXES, _NEGATIONS, _OPPOSITES
from llmcache.semantic.guards.names import _acronyms, _forms, _mentions, _spelled_out
from llmcache.semantic.guards.reader import Features, _root


# -- the guards: (a, b) -> what differs, or "" ---------------------------------------------------
def _show(items: Iterable[object]) -> str:
    return ", ".join(sorted(map(str, items))[:5])


def _negation(a: Features, b: Features) -> str:
    """A different number of negations *and* a negated word the other prompt says plainly ("is
    it not safe" / "is it safe"). When the other never says the negated word, the negation is
    the wording's ("not mandatory" / "optional", "doesn't have any" / "in the absence of"):
    left to the threshold (and to the antonym guard)."""
    if a.negations == b.negations:
        return ""
    # "" stands for a negation of nothing in particular: never explained away by the wording.
    roots_a = {_root(w) for w in a.tokens} | {""}
    roots_b = {_root(w) for w in b.tokens} | {""}
    flipped = ((a.negated - b.negated) & roots_b) | ((b.negated - a.negated) & roots_a)
    if not flipped:
        return ""
    return f"{a.negations} vs {b.negations} negations ({_show(w or '-' for w in flipped)})"


def _antonym(a: Features, b: Features) -> str:
    only_a, only_b = a.tokens - b.tokens, b.tokens - a.tokens
    for word in only_a:
        if _OPPOSITES.get(word, frozenset()) & only_b:
            return f"{word} vs {_show(_OPPOSITES[word] & only_b)}"
        for prefix in _NEG_PREFIXES:
            stem = word[len(prefix) :]
            if len(stem) > 2 and word.startswith(prefix) and stem in only_b:
                return f"{word} vs {word[len(prefix) :]}"
            if prefix + word in only_b and len(word) > 2:
                return f"{word} vs {prefix + word}"
    return ""


def _number(a: Features, b: Features) -> str:
    """Each prompt holds a number the other does not (15 % of 80 / of 90). A number only one
    adds, beside the ones both hold ("a 10 hour layover" / "... for the first time", "under 7k" /
    "7k to 8k"), narrows the question: left to the threshold, as a number only one holds is.
    Counted with repeats: "11 times 12" / "12 times 12" replaces the 11."""
    ca, cb = Counter(a.numbers), Counter(b.numbers)
    only_a, only_b = ca - cb, cb - ca
    if not (only_a and only_b):
        return ""
    return f"{_show(only_a.elements())} vs {_show(only_b.elements())}"


def _set_diff(name: str) -> Callable[[Features, Features], str]:
    """Both prompts hold some (dates, units) and not the same: a substitution. One only one
    holds ("... today?") narrows the question and is left to the threshold."""

    def check(a: Features, b: Features) -> str:
        sa: frozenset[str] = getattr(a, name)
        sb: frozenset[str] = getattr(b, name)
        if sa == sb or not (sa and sb):
            return ""
        return f"{_show(sa - sb)} vs {_show(sb - sa)}"

    return check


def _unit(a: Features, b: Features) -> str:
    """Units both hold that differ ("100 g" / "100 oz", "5 miles to km" / "5 km"). A unit only
    one holds ("1 million" / "1 million dollars", "a 3.5mm port") is left to the threshold."""
    if a.units == b.units or not (a.units and b.units):
        return ""
    return f"{_show(a.units - b.units)} vs {_show(b.units - a.units)}"


def _quoted(a: Features, b: Features) -> str:
    """A literal quoted in one that the other does not contain at all (quoted or not), or the
    same literals in another order ("replace 'a' with 'b'")."""
    if a.quoted == b.quoted or not (a.quoted and b.quoted):
        return ""  # quotes only one uses are emphasis as often as literals
    if set(a.quoted) == set(b.quoted) and len(a.quoted) == len(b.quoted):
        if a.frame != b.frame:
            return ""  # reworded around the literals: their order follows the sentence
        return f"{' | '.join(a.quoted)[:80]} vs {' | '.join(b.quoted)[:80]}"
    missing_in_b = [q for q in a.quoted if q.casefold() not in b.text]
    missing_in_a = [q for q in b.quoted if q.casefold() not in a.text]
    if missing_in_a or missing_in_b:
        return f"{' | '.join(missing_in_b)[:80]} vs {' | '.join(missing_in_a)[:80]}"
    return ""


def _entity(a: Features, b: Features) -> str:
    """Each prompt names something the other does not mention (a substitution: Austria vs
    Australia). A name only one adds ("How do I learn" + "Python") is left to the threshold."""
    acronyms_a, acronyms_b = _acronyms(a.words), _acronyms(b.words)

    def missing(x: Features, y: Features, y_acronyms: set[str]) -> set[str]:
        x_humps = dict(x.humps)
        y_short = {short for _, short in y.humps}
        return {
            e
            for e in x.entities
            if not _mentions(e, y.tokens)
            and e not in y_acronyms  # "NZ" / "New Zealand"
            and not _spelled_out(e, x.words, y.tokens)
            and e not in y_short  # "TS" / "TypeScript"
            and x_humps.get(e) not in y.tokens  # "TypeScript" / "TS"
        }

    missing_in_b = missing(a, b, acronyms_b)
    missing_in_a = missing(b, a, acronyms_a)
    if missing_in_a and missing_in_b:
        return f"{_show(missing_in_b)} vs {_show(missing_in_a)}"
    return ""


def _swap(a: Features, b: Features) -> str:
    """A minimal pair: the same words around one or two words replaced by others that are not
    forms of them ("How do I *lock* X" / "How do I *disable* X"). The shared frame lifts the
    similarity whatever the swapped words mean, so the similarity cannot vouch for them; only a
    near-certain one overrules this guard (:data:`OVERRULED_AT`)."""
    x, y = a.words, b.words
    if x == y:
        return ""
    head = 0
    while head < min(len(x), len(y)) and x[head] == y[head]:
        head += 1
    tail = 0
    while tail < min(len(x), len(y)) - head and x[-1 - tail] == y[-1 - tail]:
        tail += 1
    mid_a, mid_b = x[head : len(x) - tail], y[head : len(y) - tail]
    if not (1 <= len(mid_a) <= 2 and 1 <= len(mid_b) <= 2) or head + tail < 2:
        return ""  # an insertion, a deletion, or no shared frame: not a minimal pair
    if all(w in _COMMON or w in _NEGATIONS for w in (*mid_a, *mid_b)):
        return ""  # function words swapped ("how do I" / "how can I"): the other guards' job
    if any(_forms(p, q) for p in mid_a for q in mid_b):
        return ""
    return f"{' '.join(mid_a)} vs {' '.join(mid_b)}"


def _direction(a: Features, b: Features) -> str:
    flipped = ((a.sources & b.targets) - a.targets - b.sources) | (
        (a.targets & b.sources) - a.sources - b.targets
    )
    if flipped:
        return f"{_show(flipped)} reversed"
    if a.order and b.order:
        shared = set(a.order) & set(b.order)
        ours = [e for e in a.order if e in shared]
        theirs = [e for e in b.order if e in shared]
        if len(shared) >= 2 and ours != theirs:
            return f"{' '.join(ours[:4])} vs {' '.join(theirs[:4])}"
    return ""
