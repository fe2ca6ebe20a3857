"""Arabic text normalisation, in one place.

Matching (intent examples, product names, keyword search, deduplication) runs on the
normalised form; what is stored and shown is always the text as the user wrote it.
"""

from __future__ import annotations

import re
import unicodedata

# Harakat, tanween, shadda, sukun, superscript alef and Quranic marks.
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
_TATWEEL = "\u0640"
_LETTER_FORMS = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ئ": "ي",
        "ؤ": "و",
        "ة": "ه",
        "ک": "ك",
        "ی": "ي",
    }
)
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_PUNCTUATION = str.maketrans({"،": ",", "؛": ";", "؟": "?", "٫": ".", "٬": ","})
_SPACES = re.compile(r"\s+")


def to_ascii_digits(text: str) -> str:
    """Arabic-Indic and Eastern Arabic-Indic digits become 0-9; the Arabic decimal separator a point."""
    return text.translate(_DIGITS).replace("٫", ".").replace("٬", ",")


def normalize_arabic(text: str) -> str:
    """The matching form of ``text``: no diacritics or tatweel, one alef, ya for alef maqsura,
    ha for ta marbuta, ASCII digits and punctuation, lower-case Latin, single spaces."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = _DIACRITICS.sub("", text).replace(_TATWEEL, "")
    text = text.translate(_LETTER_FORMS).translate(_DIGITS).translate(_PUNCTUATION)
    return _SPACES.sub(" ", text).strip().lower()


_WORD = re.compile(r"[\w\u0600-\u06ff]+", re.UNICODE)


def words(text: str) -> list[str]:
    """The normalised words of ``text`` (letters and digits, Arabic or Latin)."""
    return _WORD.findall(normalize_arabic(text))
