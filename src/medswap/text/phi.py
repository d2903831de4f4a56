"""``--text phi``: which lines of burned-in text read as protected health information.

A line is redacted when its reading contains a date, a time, a number of four or more digits
(record numbers, years, phone numbers) or a capitalised name-like word, or when the recogniser
is too unsure of it to rule these out. Everything else (an instruction such as "Tap your
fingers") is kept. This is a pattern filter, not an understanding of the text: see the README
for what it misses.
"""

from __future__ import annotations

import re

from medswap.text.regions import TextReading, TextReason

#: Below this mean character confidence a reading is not trusted to be free of PHI.
MIN_CONFIDENCE = 0.8

_MONTHS = (
    "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|"
    "july|august|september|october|november|december"
)
#: Numbers are delimited by what is not a digit, not by word boundaries: the recogniser drops
#: spaces ("Visit2018-04-07", "at10:30"), and a date glued to a word is still a date.
_DATE = re.compile(
    r"(?<!\d)\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,4}(?!\d)"  # 2018-04-07, 07/04/18, 7.4.2018
    rf"|(?<!\d)\d{{1,2}}\s*(?:{_MONTHS})\b"  # 7 Apr, 7April
    rf"|\b(?:{_MONTHS})\.?\s*\d{{1,4}}(?!\d)",  # Apr 7, April 2018
    re.IGNORECASE,
)
_TIME = re.compile(
    r"(?<!\d)\d{1,2}\s*[:h]\s*\d{2}(?:\s*:\s*\d{2})?(?!\d)|(?<!\d)\d{1,2}\s*[ap]\.?m\b", re.I
)
_NUMBER = re.compile(r"\d(?:[\s\-./]?\d){3,}")
_WORD = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*")
#: Capitalised words that start sentences or label things without naming anyone.
_NOT_NAMES = frozenset(
    re.split(
        r"\s+",
        "i a the and or of to in on at by for with left right hand hands finger fingers foot "
        "feet tap tapping open close closing walk walking stand sit rest eyes mouth face speak "
        "read repeat follow look now start stop begin end trial task test rep part",
    )
)


def _name_like(text: str) -> bool:
    """A capitalised word that is not just the first word of an ordinary sentence.

    "Tap your fingers" starts with a capital because it is a sentence. "John Smith",
    "Smith", "Patient: Mary Jones" or "SMITH, JOHN" read as names. A line whose words are
    all capitalised (a title card) counts, so "Open And Close" is redacted too: fail closed.
    """
    words = _WORD.findall(text)
    if not words:
        return False
    caps = [w[0].isupper() and len(w) >= 2 for w in words]
    if any(c and w.lower() not in _NOT_NAMES for c, w in zip(caps[1:], words[1:])):
        return True  # a capital after the first word: "Patient: Mary", "Dr. Brown"
    first = words[0]
    all_caps_title = caps[0] and all(caps) and first.lower() not in _NOT_NAMES
    shouted = len(words) == 1 and first.isupper() and len(first) >= 2
    return all_caps_title or shouted


def classify(reading: TextReading) -> TextReason:
    """The reason to redact a line of text, or ``NO_PHI`` to keep it."""
    text = reading.text
    if reading.confidence < MIN_CONFIDENCE or not text:
        return TextReason.UNREADABLE
    if _DATE.search(text):
        return TextReason.DATE
    if _TIME.search(text):
        return TextReason.TIME
    if _NUMBER.search(text):
        return TextReason.NUMBER
    if _name_like(text):
        return TextReason.NAME
    return TextReason.NO_PHI
