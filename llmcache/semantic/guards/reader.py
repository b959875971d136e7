"""Reading a prompt once into the Features that the guards compare."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from llmcache.semantic.guards.lexicon import (
    _BARE_UNITS,
    _FROM_WORDS,
    _MONTHS,
    _NEGATIONS,
    _NUMBER_WORDS,
    _ORDINALS,
    _PERIOD_WORDS,
    _PERIODS,
    _RELATIONS,
    _RELATIVE_DAYS,
    _TO_WORDS,
    _UNITS,
    _WEEKDAYS,
    _words,
)
from llmcache.semantic.guards.names import _entities, _humps
from llmcache.semantic.guards.tokens import (
    _ANSWER_NO,
    _APOSTROPHES,
    _ARROWS,
    _DATE,
    _DOTTED,
    _GLUED,
    _NUMBER,
    _NUMBER_ABBREV,
    _QUOTED,
    _SYMBOL_UNITS,
    _WITH_NO,
    _WORD,
    _norm_number,
    _norm_word,
)


@dataclass(frozen=True, slots=True)
class Features:
    """What the guards compare, read once per prompt."""

    tokens: frozenset[str]  # lower-cased words, possessive 's stripped
    negations: int
    negated: frozenset[str]  # roots of the word each negation applies to ("not safe": saf)
    numbers: tuple[str, ...]  # sorted normalised numbers (a multiset)
    dates: frozenset[str]
    entities: frozenset[str]  # lower-cased proper nouns
    quoted: tuple[str, ...]  # in order: "replace 'a' with 'b'" is not the reverse
    units: frozenset[str]
    sources: frozenset[str]  # words something goes *from*
    targets: frozenset[str]  # words something goes *to*
    order: tuple[str, ...]  # entities in order of first appearance, when a relation joins them
    text: str  # the normalised text, case-folded
    frame: tuple[str, ...]  # the words outside quoted literals, in order
    words: tuple[str, ...]  # all words, in order (lower-cased, possessive 's stripped)
    humps: tuple[tuple[str, str], ...] = ()  # camel-case word -> its hump initials (ts)


#: Words between a negation and what it negates ("not *be* able", "no *longer*", "not *a* ...").
_SCOPE_SKIP = frozenset(
    _words(
        "a an the be been being to any very so too really always ever yet even just only quite "
        "all at that this it longer more much"
    )
)


def _root(word: str) -> str:
    """A crude root, the same on both sides: "having"/"have", "sleeps"/"sleep", "used"/"use"."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _roles(words: list[str], named: set[str]) -> tuple[set[str], set[str]]:
    """Names, units and numbers that are sources (after "from", before "to") and targets (after
    "to"); other words ("how to", "choose to learn") play no role."""
    sources: set[str] = set()
    targets: set[str] = set()

    def name(word: str | None) -> bool:
        return word is not None and (word in named or word in _UNITS or word[:1].isdigit())

    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else None
        if word in _FROM_WORDS and name(nxt):
            sources.add(str(nxt))
        elif word in _TO_WORDS:
            if name(nxt):
                targets.add(str(nxt))
            if i > 0 and name(words[i - 1]):
                sources.add(words[i - 1])
    return sources, targets


@lru_cache(maxsize=4096)
def features(text: str) -> Features:
    """The guards' view of ``text`` (cached: a query is compared with several candidates)."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = _DOTTED.sub(lambda m: m.group().replace(".", ""), text)  # U.S. -> US
    text = _WITH_NO.sub("without", _NUMBER_ABBREV.sub("number ", text))  # no. 5, with no money
    words = [_norm_word(w) for w in _WORD.findall(text)]
    negations = sum(1 for w in words if w in _NEGATIONS or w.endswith("n't"))
    # "... or not?", "why or why not?", "if not, why?": both polarities asked, not a negated
    # question; "yes/no" names both answers; a leading "No," answers, it does not negate.
    negations -= sum(
        1
        for i, w in enumerate(words)
        if (w == "not" and {"or", "if"} & set(words[max(0, i - 2) : i]))
        or (w == "no" and "yes" in words[max(0, i - 2) : i + 3])
    )
    negations -= len(_ANSWER_NO.findall(text))
    # What each counted negation applies to ("" for nothing in particular: "... or is it not"):
    # read without an answer's "No," and without both-polarity phrases, as the count is.
    scoped = [_norm_word(w) for w in _WORD.findall(_ANSWER_NO.sub(" . ", text))]
    negated = {
        _root(next((x for x in scoped[i + 1 : i + 4] if x not in _SCOPE_SKIP), ""))
        for i, w in enumerate(scoped)
        if (w in _NEGATIONS or w.endswith("n't"))
        and not (w == "not" and {"or", "if"} & set(scoped[max(0, i - 2) : i]))
        and not (w == "no" and "yes" in scoped[max(0, i - 2) : i + 3])
    }
    numbers = [_norm_number(m.group()) for m in _NUMBER.finditer(text)]
    for w in words:
        if w in _NUMBER_WORDS:
            numbers.append(_norm_number(str(_NUMBER_WORDS[w])))
        elif w in _ORDINALS:
            numbers.append(f"{_ORDINALS[w]}#")
    dates = {m.group().replace("/", "-").replace(".", "-") for m in _DATE.finditer(text)}
    for i, w in enumerate(words):
        if w in _MONTHS and (w != "may" or (i + 1 < len(words) and words[i + 1].isdigit())):
            dates.add(f"month:{_MONTHS[w]}")  # "may" is a month only before a number
        elif w in _WEEKDAYS and (len(w) > 3 or w in ("mon", "tue", "wed", "thu", "fri")):
            dates.add(f"weekday:{_WEEKDAYS[w]}")
        elif w in _RELATIVE_DAYS:
            dates.add(w)
        elif w in _PERIODS and i > 0 and words[i - 1] in _PERIOD_WORDS:
            dates.add(f"{words[i - 1]} {w}")
    quoted = [next(g for g in m.groups() if g is not None).strip() for m in _QUOTED.finditer(text)]
    units: set[str] = set()  # units next to a number ("5 miles", "100g"), and currencies
    for i, w in enumerate(words):
        glued = _GLUED.match(w)
        if glued and glued.group(2) in _UNITS:
            units.add(_UNITS[glued.group(2)])
        elif w in _UNITS and (
            w in _BARE_UNITS
            or (i and (words[i - 1][:1].isdigit() or words[i - 1] in _NUMBER_WORDS))
        ):
            units.add(_UNITS[w])
    units |= {
        _UNITS.get(s.group().replace(" ", "").lower(), s.group())
        for s in _SYMBOL_UNITS.finditer(text)
    }
    entities, openers = _entities(text)
    role_words = _WORD.findall(_ARROWS.sub(" → ", text).replace("→", " to "))
    sources, targets = _roles([_norm_word(w) for w in role_words], set(entities))
    related = bool(_RELATIONS & set(words))
    return Features(
        tokens=frozenset(words),
        negations=negations,
        negated=frozenset(negated),
        numbers=tuple(sorted(numbers)),
        dates=frozenset(dates),
        # A sentence opener is not compared as a name ("Employ the method" / "Use the method"),
        # but it still takes part in roles and order ("Python is faster than Java").
        entities=frozenset(entities) - openers,
        quoted=tuple(q for q in quoted if q),
        text=text.casefold(),
        frame=tuple(_norm_word(w) for w in _WORD.findall(_QUOTED.sub(" ", text))),
        words=tuple(words),
        units=frozenset(units),
        sources=frozenset(sources),
        targets=frozenset(targets),
        order=tuple(entities) if related else (),
        humps=tuple(_humps(text).items()),
    )
