"""Which language a text is written in. (The brain's router refines this; this is the
floor every reply path can rely on.)"""

from __future__ import annotations

import unicodedata


def detect_language(text: str, default: str = "ar") -> str:
    """``ar``, ``en`` or ``mixed``, by the letters used (digits and punctuation don't count)."""
    arabic = latin = 0
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith("ARABIC"):
            arabic += 1
        elif name.startswith("LATIN"):
            latin += 1
    if arabic == 0 and latin == 0:
        return default
    if arabic and latin and min(arabic, latin) / (arabic + latin) >= 0.3:
        return "mixed"
    return "ar" if arabic >= latin else "en"


def reply_language(text: str, default: str = "ar") -> str:
    """The language to answer in: the user's; a mixed message is answered in Arabic."""
    language = detect_language(text, default)
    return "ar" if language == "mixed" else language
