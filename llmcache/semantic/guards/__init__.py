"""False-hit vetoes: two prompts close in meaning that must not share an answer.

An embedding puts "How do I enable X?" next to "How do I disable X?" and "flights from Paris to
London" next to "flights from London to Paris". After the similarity threshold, each guard
compares one feature of the two prompts and *vetoes* the hit when one says something *in place
of* what the other says (a substitution). What only one prompt adds (a number, a date, a name:
"How do I train a Labrador?" / "... a two year old Labrador?") is left to the threshold: in real
paraphrase data such additions are mostly rewordings.

============  =====================================================================
guard         vetoes when the two prompts differ in
============  =====================================================================
negation      how many negations they hold (not, no, never, n't, unable...; "or not",
              "if not", "yes/no" and an answer's "No," ask or answer, not negate)
antonym       a word against its opposite (enable/disable, with/without,
              import/export; un-/dis-/non-/in- prefixes)
number        the numbers both hold (digits, number words, ordinals: "2" = "two")
date          the dates both hold: months, weekdays, relative days, written dates
entity        each prompt names something (capitalised words, acronyms, mixed-case
              names) that the other does not mention, in any case, form, one-letter
              misspelling or acronym (NZ / New Zealand) (a substitution: Austria vs
              Australia)
quoted        quoted literals ("...", '...', `...`, “...”) both hold that differ, or the
              same literals in another order around the same words
unit          units both hold (5 km, 100g, currencies, temperature scales), or a unit
              changed next to a number both hold (100 g / 100 oz)
direction     who goes where: a name, unit or number that is a source in one and a
              target in the other ("A to B" vs "B to A", "from X" vs "to X"), or two
              names in another order around than/beat/against ("A than B")
swap          a minimal pair: the same words around one or two words replaced by others
              that are not forms of them ("how do I *lock* X" / "... *disable* X"); the
              only guard a similarity overrules (at :data:`OVERRULED_AT`)
============  =====================================================================

Heuristics, with no model and no download: they err on the side of a veto (a paraphrase that
changes a number's spelling to "a couple" is a miss, a paid call, never a wrong answer). They
never raise: text a guard cannot read vetoes the hit as ``error``.

Example::

    from llmcache.semantic.guards import vetoes

    assert vetoes("How do I enable SSO?", "How do I disable SSO?") == ["antonym", "swap"]
    assert vetoes("What is 2+2?", "what is 2 + 2") == []
"""

from __future__ import annotations

from llmcache.semantic.guards.reader import Features, features
from llmcache.semantic.guards.verdicts import (
    ALL_GUARDS,
    DEFAULT_GUARDS,
    GUARDS,
    OVERRULED_AT,
    differences,
    vetoes,
)

__all__ = [
    "ALL_GUARDS",
    "DEFAULT_GUARDS",
    "GUARDS",
    "OVERRULED_AT",
    "Features",
    "differences",
    "features",
    "vetoes",
]
