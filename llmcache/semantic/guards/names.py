"""Names in a prompt, and whether another prompt mentions them (forms, misspellings, acronyms)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from llmcache.semantic.guards.lexicon import _COMMON
from llmcache.semantic.guards.tokens import _SENTENCE_END, _WORD, _norm_word

_HUMP = re.compile(r"[A-Z][a-z]+")  # one hump of a camel-case word


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and len(word) > 3:
        return word[:-1]
    return word


def _mentions(entity: str, tokens: frozenset[str]) -> bool:
    """Whether ``tokens`` mention ``entity``: the word, its plural, or a form of it (India,
    Indian); never another name that merely starts alike (Austria, Australia)."""
    if entity in tokens:
        return True
    return any(_forms(entity, token) for token in tokens)


def _acronyms(words: Sequence[str]) -> set[str]:
    """The initials of every run of 2-4 words ("new zealand" -> "nz", "air force" -> "af")."""
    found: set[str] = set()
    for i in range(len(words)):
        for n in (2, 3, 4):
            if i + n <= len(words):
                found.add("".join(w[:1] for w in words[i : i + n]))
    return found


def _humps(text: str) -> dict[str, str]:
    """Camel-case words and the initials of their humps: TypeScript -> ts, JavaScript -> js,
    PyTorch -> pt (a name and its usual short form)."""
    found: dict[str, str] = {}
    for word in _WORD.findall(text):
        humps = _HUMP.findall(word)
        if len(humps) >= 2 and word[:1].isupper() and not word.isupper():
            found[_norm_word(word)] = "".join(h[0] for h in humps).lower()
    return found


def _spelled_out(entity: str, own: Sequence[str], other: frozenset[str]) -> bool:
    """Whether ``entity`` is part of a run of words in its own prompt whose initials the other
    prompt writes as one word ("Air Force" / "AF")."""
    for i, word in enumerate(own):
        if word != entity:
            continue
        for n in (2, 3, 4):
            for start in range(max(0, i - n + 1), i + 1):
                run = own[start : start + n]
                if len(run) == n and "".join(w[:1] for w in run) in other:
                    return True
    return False


def _entities(text: str) -> tuple[dict[str, None], set[str]]:
    """Capitalised words that name something, in order of first appearance, and those of them
    that are capitalised only as a sentence's first word (maybe names, maybe not)."""
    found: dict[str, None] = {}  # ordered: first appearance first
    matches = list(_WORD.finditer(text))
    initial: list[tuple[str, str]] = []  # (lower, next word) of capitalised sentence openers
    named_inside: set[str] = set()  # capitalised inside a sentence: a name for sure
    for k, match in enumerate(matches):
        word = match.group()
        if not any(c.isupper() for c in word):
            continue
        lower = _norm_word(word)
        before = text[: match.start()]
        starts_sentence = not before.strip() or bool(_SENTENCE_END.search(before))
        inner_caps = any(c.isupper() for c in word[1:]) or any(c.isdigit() for c in word)
        if word in ("I", "A"):  # a pronoun, an article (but C, R, X are names)
            continue
        if starts_sentence and not inner_caps and lower in _COMMON:
            continue
        if not starts_sentence and not inner_caps and lower in _COMMON and word.istitle():
            continue  # Title Case Prompts Capitalise Every Word
        if starts_sentence and not inner_caps and len(word) > 1:
            # Capitalised only because it opens a sentence or a list item ("Employ the ...",
            # "Furthermore, ...", "include: Introduction, ..."): a name only if the next word
            # is capitalised too ("New York is") or it is capitalised inside a sentence as well.
            nxt = matches[k + 1].group() if k + 1 < len(matches) else ""
            initial.append((lower, nxt))
            found[lower] = None
            continue
        if not starts_sentence:
            named_inside.add(lower)
        found[lower] = None
    openers = {lower for lower, nxt in initial if not (nxt[:1].isupper() or lower in named_inside)}
    return found, openers


def _forms(x: str, y: str) -> bool:
    """Whether two words are forms or misspellings of one word: learn/learning, India/Indian,
    Hilary/Hillary (one letter added, dropped or changed in a word of 5 or more, never the
    first); never two names that merely start alike (Austria/Australia) or rhyme (Jason/Mason)."""
    if x == y or _stem(x) == _stem(y):
        return True
    short, long = sorted((x, y), key=len)
    if len(short) >= 4 and len(long) - len(short) <= 4 and long.startswith(short):
        return True  # a suffix: chisel/chiselling, India/Indian
    if len(short) < 5 or len(long) - len(short) > 1 or x[0] != y[0]:
        return False
    if len(short) == len(long):
        return sum(p != q for p, q in zip(short, long, strict=True)) == 1
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
