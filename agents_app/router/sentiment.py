"""Sentiment in −1..1 from an Arabic and English lexicon with negation and intensifiers.

Lexicon words are in normalised form (``morvo.text.normalize_arabic``). A negator flips the
next two words ("مو حلو", "not good"); an intensifier multiplies the next one ("مره سيء",
"very bad"); repeated "!" and angry emoji add weight. The result is squashed with tanh.
"""

from __future__ import annotations

import math
import re

from morvo.text import normalize_arabic

_POSITIVE = {
    # Arabic (MSA and dialects)
    "شكرا",
    "مشكور",
    "مشكورين",
    "يعطيك",
    "العافيه",
    "ممتاز",
    "ممتازه",
    "رائع",
    "رائعه",
    "جميل",
    "جميله",
    "حلو",
    "حلوه",
    "روعه",
    "تحفه",
    "عظيم",
    "سعيد",
    "سعيده",
    "مبسوط",
    "مبسوطه",
    "احب",
    "حبيت",
    "عجبني",
    "عجبتني",
    "يجنن",
    "تجنن",
    "فخم",
    "فخمه",
    "راقي",
    "راقيه",
    "افضل",
    "احسن",
    "ممتن",
    "الله يسعدك",
    "يسلمو",
    "تسلم",
    "كفو",
    "بطل",
    "سريع",
    "سريعه",
    "نظيف",
    "موفقين",
    "جيد",
    "جيده",
    "زين",
    "زينه",
    "حلوين",
    "اهنيكم",
    # English
    "thanks",
    "thank",
    "great",
    "excellent",
    "amazing",
    "love",
    "loved",
    "good",
    "nice",
    "perfect",
    "awesome",
    "happy",
    "wonderful",
    "fantastic",
    "best",
    "fast",
    "helpful",
    "beautiful",
    "appreciate",
    "glad",
}
_NEGATIVE = {
    "سيء",
    "سيئ",
    "سيئه",
    "زفت",
    "خايس",
    "خايسه",
    "تعبان",
    "تعبانه",
    "متاخر",
    "متاخره",
    "تاخير",
    "تاخر",
    "اتاخر",
    "تأخر",
    "خربان",
    "خربانه",
    "مكسور",
    "مكسوره",
    "غلط",
    "خطا",
    "مشكله",
    "مشاكل",
    "شكوي",
    "اشتكي",
    "زعلان",
    "زعلانه",
    "معصب",
    "غضبان",
    "مقرف",
    "فاشل",
    "فاشله",
    "نصب",
    "نصابين",
    "حرامي",
    "حراميه",
    "احتيال",
    "مزيف",
    "مغشوش",
    "تالف",
    "تالفه",
    "ناقص",
    "ناقصه",
    "مايرد",
    "محد",
    "اسوا",
    "ابدا",
    "للاسف",
    "خساره",
    "ضايع",
    "ضاع",
    "استرجاع",
    "ارجاع",
    "مرتجع",
    "كذب",
    "كذابين",
    "وسخ",
    "ريحته",
    "مستاء",
    "مستاءه",
    "غاضب",
    "قرف",
    "حرام",
    "ظلم",
    "bad",
    "terrible",
    "awful",
    "worst",
    "late",
    "delay",
    "delayed",
    "broken",
    "damaged",
    "wrong",
    "problem",
    "issue",
    "complaint",
    "angry",
    "upset",
    "disappointed",
    "disappointing",
    "fake",
    "scam",
    "refund",
    "never",
    "horrible",
    "useless",
    "rude",
    "missing",
    "lost",
    "poor",
    "hate",
    "unacceptable",
    "ridiculous",
    "fraud",
}
_NEGATORS = {
    "مو",
    "مش",
    "ما",
    "لا",
    "ليس",
    "مب",
    "مهوب",
    "مافي",
    "بدون",
    "not",
    "no",
    "never",
    "don't",
    "dont",
    "isn't",
    "wasn't",
}
_INTENSIFIERS = {"جدا", "مره", "كتير", "كثير", "بزاف", "خالص", "اوي", "قوي", "very", "so", "really", "extremely", "too"}
_ANGRY_EMOJI = re.compile("[😡😠🤬👎😤💔😞😢😭]")
_HAPPY_EMOJI = re.compile("[😍🥰😊❤👍🙏😁🌹✨💯]")
_WORD = re.compile(r"[\w']+")


def sentiment_score(text: str) -> float:
    normalised = normalize_arabic(text)
    tokens = _WORD.findall(normalised)
    total = 0.0
    flip = 0
    boost = 1.0
    for token in tokens:
        bare = (
            token[1:]
            if token.startswith(("و", "ف", "ب")) and len(token) > 3 and token[1:] in (_POSITIVE | _NEGATIVE)
            else token
        )
        value = 1.0 if bare in _POSITIVE else -1.0 if bare in _NEGATIVE else 0.0
        if token in _NEGATORS:
            flip = 2
            continue
        if token in _INTENSIFIERS:
            boost = 1.8
            continue
        if value:
            if flip:
                value = -value * 0.8
            total += value * boost
            boost = 1.0
        if flip:
            flip -= 1
    total -= 0.6 * len(_ANGRY_EMOJI.findall(text))
    total += 0.5 * len(_HAPPY_EMOJI.findall(text))
    exclamations = text.count("!") + text.count("！")
    if exclamations >= 2 and total < 0:
        total -= 0.5
    return round(math.tanh(total / 2), 3)
