"""The word lists the guards read: negations, antonyms, numbers, dates, units, common words."""

from __future__ import annotations


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
