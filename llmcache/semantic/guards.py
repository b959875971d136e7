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

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

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


def _words(text: str) -> list[str]:
    return text.split()


# -- vocabularies -------------------------------------------------------------------------------
_NEGATIONS = frozenset(
    _words(
        "not no never none nobody nothing nowhere neither nor cannot unable "
        "dont doesnt didnt isnt arent wasnt werent cant couldnt wont wouldnt shouldnt "
        "havent hasnt hadnt mustnt neednt aint nope nein"
    )
)
_ANTONYMS = [
    # "without" negates only against "with": "without streaming" / "in non-streaming mode" agree
    ("with", "without"),
    ("enable", "disable"),
    ("add", "remove"),
    ("increase", "decrease"),
    ("import", "export"),
    ("upload", "download"),
    ("encrypt", "decrypt"),
    ("push", "pull"),
    ("input", "output"),
    ("above", "below"),
    ("more", "less"),
    ("higher", "lower"),
    ("larger", "smaller"),
    ("bigger", "smaller"),
    ("best", "worst"),
    ("first", "last"),
    ("left", "right"),
    ("north", "south"),
    ("east", "west"),
    ("up", "down"),
    ("win", "lose"),
    ("rise", "fall"),
    ("love", "hate"),
    ("male", "female"),
    ("men", "women"),
    ("man", "woman"),
    ("positive", "negative"),
    ("ascending", "descending"),
    ("inner", "outer"),
    ("internal", "external"),
    ("plus", "minus"),
    ("subtract", "add"),
    ("multiply", "divide"),
    ("hot", "cold"),
    ("fast", "slow"),
    ("faster", "slower"),
    ("cheap", "expensive"),
    ("old", "new"),
    ("young", "old"),
    ("past", "future"),
    ("before", "after"),
    ("max", "min"),
    ("maximum", "minimum"),
    ("buy", "sell"),
    ("open", "close"),
    ("start", "stop"),
    ("on", "off"),
    ("true", "false"),
    ("yes", "no"),
    ("allow", "deny"),
    ("accept", "reject"),
    ("include", "exclude"),
    ("inside", "outside"),
    ("over", "under"),
    ("lend", "borrow"),
    ("give", "take"),
    ("send", "receive"),
    ("win", "loss"),
    ("profit", "loss"),
    ("gain", "lose"),
    ("light", "heavy"),
    ("light", "dark"),
    ("long", "short"),
    ("easy", "hard"),
    ("easy", "difficult"),
    ("safe", "dangerous"),
    ("legal", "illegal"),
    ("good", "bad"),
    ("better", "worse"),
    ("early", "late"),
    ("earlier", "later"),
    ("lock", "unlock"),
    ("install", "uninstall"),
    ("show", "hide"),
    ("mount", "unmount"),
    ("attach", "detach"),
    ("connect", "disconnect"),
    ("join", "leave"),
    ("sync", "async"),
    ("synchronous", "asynchronous"),
    ("client", "server"),
    ("sender", "receiver"),
    ("buyer", "seller"),
    ("import", "export"),
    ("weak", "strong"),
    ("rich", "poor"),
    ("wet", "dry"),
    ("full", "empty"),
    ("forward", "backward"),
    ("horizontal", "vertical"),
    ("row", "column"),
    ("rows", "columns"),
    ("odd", "even"),
    ("prefix", "suffix"),
    ("head", "tail"),
    ("lowercase", "uppercase"),
    ("upper", "lower"),
    ("compress", "decompress"),
    ("encode", "decode"),
    ("serialize", "deserialize"),
    ("min", "max"),
    ("smallest", "largest"),
    ("shortest", "longest"),
    ("oldest", "newest"),
    ("least", "most"),
    ("lowest", "highest"),
    ("fewer", "more"),
]
_OPPOSITES: dict[str, frozenset[str]] = {}
for _a, _b in _ANTONYMS:
    _OPPOSITES[_a] = _OPPOSITES.get(_a, frozenset()) | {_b}
    _OPPOSITES[_b] = _OPPOSITES.get(_b, frozenset()) | {_a}
_NEG_PREFIXES = ("un", "dis", "non", "in", "im", "il", "ir", "de", "anti", "mis")

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        _words("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty")
    )
} | {
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90, "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9,
    "trillion": 10**12, "dozen": 12, "half": 0.5, "twice": 2, "double": 2, "triple": 3,
    "thrice": 3,
}  # fmt: skip
# Number words that are mostly not numbers ("how should one prepare", "a single page").
for _word in ("one", "half", "twice", "double", "triple"):
    _NUMBER_WORDS.pop(_word, None)
_ORDINALS = {
    w: i + 1
    for i, w in enumerate(
        _words("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth")
    )
}
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
         ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
         ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
         ("december", "dec")]
    )
    for name in names
}  # fmt: skip
_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        [("monday", "mon"), ("tuesday", "tue", "tues"), ("wednesday", "wed"),
         ("thursday", "thu", "thurs"), ("friday", "fri"), ("saturday", "sat"),
         ("sunday", "sun")]
    )
    for name in names
}  # fmt: skip
_RELATIVE_DAYS = frozenset(
    _words(
        "today tomorrow yesterday tonight now currently weekend weekday morning evening "
        "afternoon night spring summer autumn fall winter ago"
    )
)
_PERIOD_WORDS = frozenset(_words("last next this previous coming upcoming past"))
_PERIODS = frozenset(_words("week month year decade century quarter day hour"))

_UNITS: dict[str, str] = {}
for _canon, _aliases in {
    "km": "km kms kilometer kilometers kilometre kilometres",
    "m": "meter meters metre metres",
    "cm": "cm centimeter centimeters centimetre centimetres",
    "mm": "mm millimeter millimeters millimetre millimetres",
    "mile": "mile miles mi",
    "foot": "ft foot feet",
    "inch": "inch inches",
    "yard": "yard yards yd",
    "kg": "kg kgs kilogram kilograms kilo kilos",
    "g": "g gram grams",
    "mg": "mg milligram milligrams",
    "lb": "lb lbs pound pounds",
    "oz": "oz ounce ounces",
    "ton": "ton tons tonne tonnes",
    "l": "liter liters litre litres",
    "ml": "ml milliliter milliliters millilitre millilitres",
    "gallon": "gallon gallons gal",
    "cup": "cup cups",
    "celsius": "celsius centigrade °c",
    "fahrenheit": "fahrenheit °f",
    "kelvin": "kelvin",
    "second": "second seconds sec secs",
    "minute": "minute minutes min mins",
    "hour": "hour hours hr hrs",
    "day": "day days",
    "week": "week weeks",
    "month": "month months",
    "year": "year years yr yrs",
    "mph": "mph",
    "kph": "kph kmh km/h",
    "usd": "usd $ dollar dollars",
    "eur": "eur € euro euros",
    "gbp": "gbp £ sterling",
    "jpy": "jpy ¥ yen",
    "inr": "inr ₹ rupee rupees",
    "byte": "byte bytes",
    "kb": "kb kib kilobyte kilobytes",
    "mb": "mb mib megabyte megabytes",
    "gb": "gb gib gigabyte gigabytes",
    "tb": "tb tib terabyte terabytes",
    "bit": "bit bits",
    "hz": "hz hertz",
    "ghz": "ghz gigahertz",
    "mhz": "mhz megahertz",
    "watt": "w watt watts",
    "kw": "kw kilowatt kilowatts",
    "kwh": "kwh",
    "volt": "v volt volts",
    "amp": "amp amps ampere amperes",
    "percent": "% percent percentage",
    "calorie": "calorie calories kcal cal",
    "acre": "acre acres",
    "hectare": "hectare hectares ha",
}.items():
    for _alias in _aliases.split():
        _UNITS[_alias] = _canon

# Capitalised words that start a sentence without naming anything: question words, auxiliaries,
# pronouns, articles and the imperatives prompts open with. Lower case.
_COMMON = frozenset(
    _words("""a an the this that these those there here it its i i'm im me my we our you your he she
    they them their his her what whats how hows why when where who whom whose which is are was
    were be been being am do does did can could should would will shall may might must have has
    had if in on at of for to from by with about as and or but so not no yes please hi hello hey
    dear ok okay also then than just only all any some every each many much more most few
    explain describe tell give list write summarize summarise translate show find make create
    generate compare define name provide suggest recommend help let lets imagine consider
    calculate compute convert solve rewrite paraphrase answer identify classify analyze analyse
    discuss outline draft compose continue fix debug implement build design plan is isn't
    are aren't should shouldn't would wouldn't could couldn't does doesn't did didn't do don't
    best good top new old other another same why's what's who's where's when's how's there's
    after before since until while during over under between among into onto upon""")
)

# -- tokenisation -------------------------------------------------------------------------------
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:st|nd|rd|th)?", re.UNICODE)
_DATE = re.compile(
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b", re.UNICODE
)
_QUOTED = re.compile(
    r'"([^"\n]{1,200})"|“([^”\n]{1,200})”|«([^»\n]{1,200})»|`([^`\n]{1,200})`'
    r"|(?<!\w)'([^'\n]{1,200})'(?!\w)|\u2018([^\u2019\n]{1,200})\u2019"
)
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")
_SYMBOL_UNITS = re.compile(r"[$€£¥₹%]|°\s?[cCfF]\b")
_TO_WORDS = frozenset({"to", "into", "towards", "toward", "onto", "than", "vs", "versus"})
_FROM_WORDS = frozenset({"from"})
# Words that make the order of two names matter: "A than B", "A vs B", "A beat B".
# ("to"/"from" are read as roles instead; "vs", "and", "between" are symmetric.)
_RELATIONS = frozenset(
    _words(
        "than against beat beats defeat defeated kill killed owe owes pay pays paid sue sued "
        "bigger smaller larger faster slower better worse older younger taller shorter cheaper"
    )
)
# Units that matter without a number next to them: currencies and temperature scales.
_BARE_UNITS = frozenset(_words("usd eur gbp jpy inr celsius fahrenheit kelvin"))
_GLUED = re.compile(r"^(\d+(?:[.,]\d+)?)([a-z°]+)$")
_DOTTED = re.compile(r"\b(?:[A-Za-z]\.){1,}[A-Za-z]{1,3}\b\.?(?!\w)")
_NUMBER_ABBREV = re.compile(r"\b[Nn]o\.\s?(?=[a-z0-9])")  # "mobile no. of", "no.5"
_WITH_NO = re.compile(r"\bwith\s+no\b", re.IGNORECASE)  # = "without" (not a "with" + "no")
_ANSWER_NO = re.compile(r"(?:^|[.!?]\s+)no\s*[,.!]", re.IGNORECASE)
_ARROWS = re.compile(r"\s*(?:->|=>|→|⇒|⟶)\s*")


@dataclass(frozen=True, slots=True)
class Features:
    """What the guards compare, read once per prompt."""

    tokens: frozenset[str]  # lower-cased words, possessive 's stripped
    negations: int
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


def _norm_word(word: str) -> str:
    word = word.lower()
    if word.endswith("'s"):
        word = word[:-2]
    return word


def _norm_number(text: str) -> str:
    text = text.lstrip("+")
    suffix = ""
    if text[-2:].lower() in ("st", "nd", "rd", "th"):
        text, suffix = text[:-2], "#"  # an ordinal: "1st" = "first"
    if text.count(",") and re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")  # 1,000 (a thousands separator, not a decimal comma)
    elif text.count(",") == 1 and text.count(".") == 0:
        text = text.replace(",", ".")  # 1,5 (a decimal comma)
    if text.count(".") <= 1:
        try:
            value = Decimal(text)
        except InvalidOperation:
            return text + suffix
        if value == value.to_integral_value():
            return f"{int(value)}{suffix}"
        return f"{value.normalize()}{suffix}"
    return text + suffix  # a version string: 1.2.3


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
    )


# -- the guards: (a, b) -> what differs, or "" ---------------------------------------------------
def _show(items: Iterable[object]) -> str:
    return ", ".join(sorted(map(str, items))[:5])


def _negation(a: Features, b: Features) -> str:
    return f"{a.negations} vs {b.negations} negations" if a.negations != b.negations else ""


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
    if a.numbers == b.numbers or not (a.numbers and b.numbers):
        return ""  # a number only one holds narrows the question: left to the threshold
    ca, cb = Counter(a.numbers), Counter(b.numbers)
    return f"{_show((ca - cb).elements())} vs {_show((cb - ca).elements())}"


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
    """Units both hold that differ, or a unit only one holds next to a number both hold
    ("100 g" vs "100 oz"); a unit only one adds with its own number is left to the threshold."""
    if a.units == b.units:
        return ""
    if (a.units and b.units) or set(a.numbers) & set(b.numbers):
        return f"{_show(a.units - b.units)} vs {_show(b.units - a.units)}"
    return ""


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
        return {
            e
            for e in x.entities
            if not _mentions(e, y.tokens)
            and e not in y_acronyms  # "NZ" / "New Zealand"
            and not _spelled_out(e, x.words, y.tokens)
        }

    missing_in_b = missing(a, b, acronyms_b)
    missing_in_a = missing(b, a, acronyms_a)
    if missing_in_a and missing_in_b:
        return f"{_show(missing_in_b)} vs {_show(missing_in_a)}"
    return ""


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
