"""Tokenising and normalising prompt text: the patterns, a word's and a number's normal form."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

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
_GLUED = re.compile(r"^(\d+(?:[.,]\d+)?)([a-z°]+)$")
_DOTTED = re.compile(r"\b(?:[A-Za-z]\.){1,}[A-Za-z]{1,3}\b\.?(?!\w)")
_NUMBER_ABBREV = re.compile(r"\b[Nn]o\.\s?(?=[a-z0-9])")  # "mobile no. of", "no.5"
_WITH_NO = re.compile(r"\bwith\s+no\b", re.IGNORECASE)  # = "without" (not a "with" + "no")
_ANSWER_NO = re.compile(r"(?:^|[.!?]\s+)no\s*[,.!]", re.IGNORECASE)
_ARROWS = re.compile(r"\s*(?:->|=>|→|⇒|⟶)\s*")


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
