"""Entities in a message: budget and currency, quantity, size, dates, times, channel.

Arabic and English, with Arabic-Indic digits, number words ("خمسة آلاف", "ألفين"), currency
words in the Gulf, Egypt and the Levant, and the day-part words people use for times
("الساعة ٤ العصر" is 16:00). Products are resolved against the tenant's catalogue by
:func:`agents_app.router.products.products_resolve`. Everything here runs on the normalised
text (``morvo.text.normalize_arabic``), so hamza, ta marbuta and digit forms never matter.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from morvo.text import normalize_arabic

# --- numbers ---------------------------------------------------------------------------

_UNITS = {
    # normalised forms (ta marbuta → ha, alef forms → alef)
    "صفر": 0,
    "واحد": 1,
    "وحده": 1,
    "اثنين": 2,
    "اثنان": 2,
    "اتنين": 2,
    "ثنين": 2,
    "ثلاث": 3,
    "ثلاثه": 3,
    "تلاته": 3,
    "تلات": 3,
    "اربع": 4,
    "اربعه": 4,
    "خمس": 5,
    "خمسه": 5,
    "ست": 6,
    "سته": 6,
    "سبع": 7,
    "سبعه": 7,
    "ثمان": 8,
    "ثمانيه": 8,
    "تمانيه": 8,
    "تمن": 8,
    "تسع": 9,
    "تسعه": 9,
    "عشر": 10,
    "عشره": 10,
    "عشرين": 20,
    "ثلاثين": 30,
    "تلاتين": 30,
    "اربعين": 40,
    "خمسين": 50,
    "ستين": 60,
    "سبعين": 70,
    "ثمانين": 80,
    "تمانين": 80,
    "تسعين": 90,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twenty": 20,
    "fifty": 50,
}
_HUNDREDS = {"مئه": 100, "ميه": 100, "مية": 100, "مائه": 100, "ميتين": 200, "مئتين": 200, "مئتان": 200}
# Spoken hundreds are one word: "خمسمية" (normalised "خمسميه") is 500.
_COMPOUND_HUNDREDS = {
    f"{prefix}{suffix}": value * 100
    for prefix, value in (
        ("ثلاث", 3),
        ("تلت", 3),
        ("ثلث", 3),
        ("اربع", 4),
        ("خمس", 5),
        ("ست", 6),
        ("سبع", 7),
        ("ثمان", 8),
        ("ثمن", 8),
        ("تمن", 8),
        ("تسع", 9),
    )
    for suffix in ("ميه", "مئه", "مائه")
}
_THOUSANDS = {"الف": 1000, "الاف": 1000, "آلاف": 1000, "thousand": 1000, "k": 1000}
_DUAL_THOUSAND = {"الفين": 2000, "الفان": 2000}
_MILLIONS = {"مليون": 1_000_000, "ملايين": 1_000_000, "million": 1_000_000, "m": 1_000_000}

_NUMBER = r"\d+(?:[.,]\d+)*"


def _parse_number(token: str) -> Decimal | None:
    token = token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", token) else token.replace(",", ".")
    try:
        return Decimal(token)
    except InvalidOperation:
        return None


def _word_number(words: list[str], start: int) -> tuple[Decimal | None, int]:
    """A number spelled in words starting at ``words[start]``: (value, words used)."""
    index = start
    total = Decimal(0)
    current = Decimal(0)
    used = 0
    while index < len(words):
        word = words[index]
        bare = word[1:] if word.startswith("و") and len(word) > 2 and word[1:] in _UNITS else word
        if bare in _UNITS:
            current += _UNITS[bare]
        elif word in _COMPOUND_HUNDREDS:
            current += _COMPOUND_HUNDREDS[word]
        elif word in _HUNDREDS:
            current = (
                (current or Decimal(1)) * _HUNDREDS[word] if word not in ("ميتين", "مئتين", "مئتان") else current + 200
            )
        elif word in _DUAL_THOUSAND:
            total += _DUAL_THOUSAND[word]
        elif word in _THOUSANDS and (current or used or word == "الف"):
            total += (current or 1) * 1000
            current = Decimal(0)
        elif word in _MILLIONS and (current or used):
            total += (current or 1) * 1_000_000
            current = Decimal(0)
        elif word in ("و", "and") and used:
            pass
        else:
            break
        index += 1
        used = index - start
    value = total + current
    return (value if used and value else None), used


# --- currency --------------------------------------------------------------------------

_CURRENCY_WORDS = [
    (r"ريال(?: سعودي)?|ريالات|ر\.س|رس|sar|sr|riyals?", "SAR"),
    (r"درهم(?: اماراتي)?|دراهم|aed|dirhams?|dhs?", "AED"),
    (r"دينار(?: كويتي)?|دنانير|kwd|kd", "KWD"),
    (r"دينار بحريني|bhd", "BHD"),
    (r"ريال قطري|qar", "QAR"),
    (r"ريال عماني|omr", "OMR"),
    (r"جنيه(?: مصري)?|جنيهات|جنية|egp|le|egyptian pounds?|pounds? egyptian", "EGP"),
    (r"دينار اردني|jod", "JOD"),
    (r"دولار|دولارات|usd|dollars?|\$", "USD"),
    (r"يورو|eur|euros?|€", "EUR"),
]
_CURRENCY_RE = re.compile(
    "(?:" + "|".join(f"(?P<c{i}>{pattern})" for i, (pattern, _) in enumerate(_CURRENCY_WORDS)) + r")(?![\w])"
)
_AMOUNT_SCALE = r"(?:\s*(?P<scale>الف|الاف|k|thousand|مليون|million|m)\b)?"
_AMOUNT_RE = re.compile(rf"(?P<num>{_NUMBER}){_AMOUNT_SCALE}")


def _currency_at(text: str, start: int, end: int) -> tuple[str, int] | None:
    """A currency word right before ``start`` or right after ``end`` (within a few characters)."""
    after = _CURRENCY_RE.match(text, end + (1 if end < len(text) and text[end] == " " else 0))
    if after:
        return _currency_code(after), after.end()
    window = text[max(0, start - 6) : start]
    before = list(_CURRENCY_RE.finditer(window))
    if before and window[before[-1].end() :].strip() == "":
        return _currency_code(before[-1]), end
    return None


def _currency_code(match: re.Match[str]) -> str:
    for index, (_, code) in enumerate(_CURRENCY_WORDS):
        if match.group(f"c{index}"):
            return code
    return ""


_BUDGET_CUES = re.compile(
    r"ميزاني|بميزاني|budget|spend|اصرف|نصرف|بصرف|مبلغ|بحدود|في حدود|around|about|حوالي|تقريبا|ب\s?\d"
)


# --- dates and times -------------------------------------------------------------------

_WEEKDAYS = {
    "monday": ["الاثنين", "الاتنين", "اثنين", "monday", "mon"],
    "tuesday": ["الثلاثاء", "الثلاثا", "التلات", "ثلاثاء", "tuesday", "tue"],
    "wednesday": ["الاربعاء", "الاربع", "اربعاء", "wednesday", "wed"],
    "thursday": ["الخميس", "خميس", "thursday", "thu"],
    "friday": ["الجمعه", "جمعه", "friday", "fri"],
    "saturday": ["السبت", "سبت", "saturday", "sat"],
    "sunday": ["الاحد", "احد", "الحد", "sunday", "sun"],
}
_WEEKDAY_INDEX = {name: index for index, name in enumerate(_WEEKDAYS)}
_RELATIVE_DAYS = [
    (r"بعد بكر[اه]|بعد بكره|بعد باكر|day after tomorrow", 2),
    (r"اليوم|النهارده|النهاردا|هاليوم|today|tonight|الليله|الليلة", 0),
    (r"بكر[اه]|بكرة|باكر|غدا|غدًا|الغد|tomorrow|tmrw", 1),
    (r"امس|امبارح|مبارح|yesterday", -1),
]
_MONTHS = {
    1: ["يناير", "كانون الثاني", "january", "jan"],
    2: ["فبراير", "شباط", "february", "feb"],
    3: ["مارس", "اذار", "march", "mar"],
    4: ["ابريل", "نيسان", "april", "apr"],
    5: ["مايو", "ايار", "may"],
    6: ["يونيو", "حزيران", "june", "jun"],
    7: ["يوليو", "تموز", "july", "jul"],
    8: ["اغسطس", "اب", "august", "aug"],
    9: ["سبتمبر", "ايلول", "september", "sep", "sept"],
    10: ["اكتوبر", "تشرين الاول", "october", "oct"],
    11: ["نوفمبر", "تشرين الثاني", "november", "nov"],
    12: ["ديسمبر", "كانون الاول", "december", "dec"],
}
_MONTH_RE = "|".join(sorted((re.escape(name) for names in _MONTHS.values() for name in names), key=len, reverse=True))
_MONTH_LOOKUP = {name: number for number, names in _MONTHS.items() for name in names}

# Day parts decide between am and pm when the hour alone is ambiguous.
_PM_WORDS = r"in the evening|in the afternoon|at night|العصر|عصرا|عصر|المغرب|مغرب|العشا|العشاء|بالليل|الليل|ليلا|مساء|مساءا|م\b|pm|p\.m\.|evening|tonight|afternoon|الظهر|ظهرا|بعد الظهر"
_AM_WORDS = r"in the morning|الصبح|صباحا|صباح|الفجر|ص\b|am|a\.m\.|morning"
_TIME_RE = re.compile(
    r"(?:(?:الساعه|الساعة|ساعه|at|@)\s*)?(?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?"
    r"(?:\s*(?P<half>ونص|و نص|والنص|ونصف|وربع|و ربع|الا ربع|إلا ربع))?"
    rf"\s*(?P<part>{_PM_WORDS}|{_AM_WORDS})?",
)
_TIME_CUE = re.compile(r"الساعه|ساعه|at\s*\d|\d\s*(?:am|pm)|\d:\d\d|" + _PM_WORDS + "|" + _AM_WORDS)

_SIZES = re.compile(
    r"(?P<ml>\d{1,4})\s*(?:ml|مل|ملي|مللي)\b"
    r"|(?<![\w])(?P<size>xxs|xs|xxl|xxxl|2xl|3xl|xl|s|m|l|small|medium|large|سمول|ميديم|لارج|اكس لارج|صغير|وسط|كبير)(?![\w])"
    r"|(?:مقاس|size|سايز|قياس)\s*(?P<numeric>\d{1,3})(?!\d|\s*(?:ml|مل))"
)
_SIZE_CANONICAL = {
    "small": "S",
    "سمول": "S",
    "صغير": "S",
    "medium": "M",
    "ميديم": "M",
    "وسط": "M",
    "large": "L",
    "لارج": "L",
    "كبير": "L",
    "اكس لارج": "XL",
    "2xl": "XXL",
    "3xl": "XXXL",
}

_QUANTITY_RE = re.compile(
    r"(?P<num>\d{1,4})\s*(?:حبه|حبات|قطعه|قطع|علبه|علب|زجاجه|زجاجات|عبوه|عبوات|pieces?|pcs|bottles?|units?|items?|x\b)"
    r"|(?:x|×)\s*(?P<num2>\d{1,3})\b"
    r"|(?P<word>حبتين|قطعتين|علبتين|زجاجتين)"
)

_CHANNELS = {
    "instagram": r"انستقرام|انستغرام|انستجرام|انستا|insta|instagram|ig\b",
    "snapchat": r"سناب|سناب شات|snapchat|snap\b",
    "tiktok": r"تيك توك|تك توك|تيكتوك|tiktok|tik tok",
    "whatsapp": r"واتساب|واتس اب|واتس|whatsapp|whats app|wa\b",
    "x": r"تويتر|تويتير|منصه اكس|twitter|\bx\b(?= ?(?:ads|اعلان|platform))|\b(?:on|to|in) x\b",
    "google": r"جوجل|قوقل|غوغل|google|search ads",
    "email": r"ايميل|الايميل|البريد|email|e-mail|newsletter",
    "sms": r"رسائل نصيه|رساله نصيه|sms|text message",
    "facebook": r"فيسبوك|فيس بوك|facebook|fb\b",
    "youtube": r"يوتيوب|youtube",
}
_CHANNEL_RES = {name: re.compile(pattern) for name, pattern in _CHANNELS.items()}


@dataclass
class Entities:
    products: list[dict[str, Any]] = field(default_factory=list)
    budget_amount: Decimal | None = None
    currency: str | None = None
    quantity: int | None = None
    size: str | None = None
    dates: list[dict[str, Any]] = field(default_factory=list)
    times: list[dict[str, int]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["budget_amount"] = str(self.budget_amount) if self.budget_amount is not None else None
        return data


def extract_money(text: str) -> tuple[Decimal | None, str | None]:
    """The first amount of money: digits or words, with a scale ("5 آلاف", "3k") and a currency."""
    normalised = normalize_arabic(text)
    for match in _AMOUNT_RE.finditer(normalised):
        value = _parse_number(match.group("num"))
        if value is None:
            continue
        if match.group("scale"):
            scale = match.group("scale")
            value *= 1_000_000 if scale in ("مليون", "million", "m") else 1000
        currency = _currency_at(normalised, match.start(), match.end())
        if currency:
            return value, currency[0]
        context = normalised[max(0, match.start() - 25) : match.start()]
        if _BUDGET_CUES.search(context) and not _TIME_CUE.match(normalised[match.end() :].lstrip()):
            return value, None
    words = normalised.split()
    for index in range(len(words)):
        value, used = _word_number(words, index)
        if value is None or value < 10:
            continue
        tail = " ".join(words[index + used : index + used + 2])
        currency_match = _CURRENCY_RE.match(tail)
        if currency_match:
            return value, _currency_code(currency_match)
        if _BUDGET_CUES.search(" ".join(words[max(0, index - 3) : index])):
            return value, None
    return None, None


_HOUR_WORDS = {word: value for word, value in _UNITS.items() if 1 <= value <= 12}
_HOUR_WORDS.update(
    {"حداش": 11, "احدعش": 11, "حدعش": 11, "اتناشر": 12, "اثنعش": 12, "ثنعش": 12, "eleven": 11, "twelve": 12}
)
_SPELLED_HOUR = re.compile(r"(?P<cue>الساعه|ساعه|at)\s+(?P<word>[\w]+)")


def _spelled_hours(text: str) -> str:
    """ "الساعه ثلاثه العصر" → "الساعه 3 العصر": a spelled hour becomes digits."""

    def digits(match: re.Match[str]) -> str:
        value = _HOUR_WORDS.get(match.group("word"))
        return f"{match.group('cue')} {value}" if value else match.group(0)

    return _SPELLED_HOUR.sub(digits, text)


def extract_times(text: str) -> list[dict[str, int]]:
    normalised = _spelled_hours(normalize_arabic(text))
    found: list[dict[str, int]] = []
    for match in _TIME_RE.finditer(normalised):
        hour = int(match.group("hour"))
        cued = (
            match.group(0).lstrip().startswith(("الساعه", "الساعة", "ساعه", "at", "@"))
            or match.group("minute")
            or match.group("part")
        )
        if not cued or hour > 24:
            continue
        # A date such as 15/3 or an amount is not a time.
        before = normalised[max(0, match.start() - 1) : match.start()]
        after = normalised[match.end() : match.end() + 1]
        if (before and before in "/-") or after in ("/", "-"):
            continue
        minute = int(match.group("minute") or 0)
        half = match.group("half") or ""
        if "نص" in half:
            minute = 30
        elif "الا ربع" in half or "إلا ربع" in half:
            hour, minute = (hour - 1) % 24, 45
        elif "ربع" in half:
            minute = 15
        part = match.group("part") or ""
        if part and re.fullmatch(_PM_WORDS, part) and hour < 12:
            # "الظهر" at 12 stays 12; "1 الظهر" is 13.
            hour += 12
        elif part and re.fullmatch(_AM_WORDS, part) and hour == 12:
            hour = 0
        elif not part and 1 <= hour <= 7:
            # A shop appointment "at 4" means the afternoon.
            hour += 12
        if minute < 60:
            found.append({"hour": hour % 24, "minute": minute})
    return found


def extract_dates(text: str, today: date | None = None) -> list[dict[str, Any]]:
    """Dates as the user said them, resolved against ``today`` when given: relative days,
    weekdays ("الخميس", "next Sunday") and day + month ("٢٠ مارس", "March 20", "15/3")."""
    normalised = normalize_arabic(text)
    found: list[dict[str, Any]] = []
    for pattern, offset in _RELATIVE_DAYS:
        match = re.search(rf"(?<![\w]){pattern}(?![\w])", normalised)
        if match:
            entry: dict[str, Any] = {"relative_days": offset}
            if today:
                entry["date"] = (today + timedelta(days=offset)).isoformat()
            found.append(entry)
            normalised = normalised[: match.start()] + " " + normalised[match.end() :]
            break
    if not found:
        match = re.search(
            r"(?:بعد|خلال)\s*(?P<days>\d{1,2})\s*(?:يوم|ايام)|\bin (?P<days_en>\d{1,2}) days\b", normalised
        )
        if match:
            offset = int(match.group("days") or match.group("days_en"))
            entry = {"relative_days": offset}
            if today:
                entry["date"] = (today + timedelta(days=offset)).isoformat()
            found.append(entry)
    for weekday, names in _WEEKDAYS.items():
        pattern = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
        if re.search(rf"(?<![\w])(?:يوم\s+)?(?:{pattern})(?![\w])", normalised):
            entry = {"weekday": weekday}
            if today:
                ahead = (_WEEKDAY_INDEX[weekday] - today.weekday()) % 7 or 7
                entry["date"] = (today + timedelta(days=ahead)).isoformat()
            found.append(entry)
    for match in re.finditer(rf"(?P<day>\d{{1,2}})\s*(?:من\s+)?(?:شهر\s+)?(?P<month>{_MONTH_RE})(?![\w])", normalised):
        found.append(_day_month(int(match.group("day")), _MONTH_LOOKUP[match.group("month")], today))
    for match in re.finditer(rf"(?<![\w])(?P<month>{_MONTH_RE})\s+(?P<day>\d{{1,2}})(?!\d)", normalised):
        found.append(_day_month(int(match.group("day")), _MONTH_LOOKUP[match.group("month")], today))
    for match in re.finditer(
        r"(?<![\d/])(?P<day>\d{1,2})/(?P<month>\d{1,2})(?:/(?P<year>\d{2,4}))?(?![\d/])", normalised
    ):
        day, month = int(match.group("day")), int(match.group("month"))
        if 1 <= month <= 12 and 1 <= day <= 31:
            found.append(_day_month(day, month, today))
    return [entry for entry in found if entry]


def _day_month(day: int, month: int, today: date | None) -> dict[str, Any]:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return {}
    entry: dict[str, Any] = {"month": month, "day": day}
    if today:
        for year in (today.year, today.year + 1):
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
            if candidate >= today:
                entry["date"] = candidate.isoformat()
                break
    return entry


def extract_size(text: str) -> str | None:
    normalised = normalize_arabic(text)
    match = _SIZES.search(normalised)
    if not match:
        return None
    if match.group("numeric"):
        return match.group("numeric")
    if match.group("ml"):
        return f"{match.group('ml')}ml"
    size = match.group("size")
    # A lone "s", "m" or "l" is a size only next to a size word.
    if size in ("s", "m", "l") and not re.search(r"مقاس|size|سايز|قياس|مقاسي", normalised):
        return None
    return _SIZE_CANONICAL.get(size, size.upper())


# Words after a number that make it something other than a count of items.
_NOT_ITEMS = re.compile(
    r"(ريال|ريالات|درهم|دينار|جنيه|دولار|يورو|sar|aed|kwd|egp|usd|k|الف|الاف|مليون|thousand|million|%|٪|"
    r"يوم|ايام|ساعه|ساعات|دقيقه|دقايق|دقائق|اسبوع|اسابيع|شهر|شهور|سنه|سنين|مره|مرات|الصبح|العصر|المغرب|الظهر|بالليل|"
    r"days?|hours?|minutes?|weeks?|months?|years?|times|am|pm|o'?clock|in|at|ml|مل|percent|riyals?|dirhams?|dollars?|pounds?|"
    + _MONTH_RE
    + r")\b"
)
_COUNT_BEFORE_NOUN = re.compile(r"(?<![\d.:/])(?P<num>\d{1,2})\s+(?:of\s+(?:the\s+)?)?(?P<noun>[^\W\d_]{2,})")
_PURCHASE_CUES = re.compile(
    r"ابي|ابغي|ابغا|عايز|عاوز|بدي|اريد|احتاج|اطلب|اشتري|خذ|جيب|ارسل|want|need|order|buy|give me|get me|can i|i'?d like|send"
)


def extract_quantity(text: str) -> int | None:
    normalised = normalize_arabic(text)
    match = _QUANTITY_RE.search(normalised)
    if match:
        if match.group("word"):
            return 2
        return int(match.group("num") or match.group("num2"))
    if _PURCHASE_CUES.search(normalised):
        for candidate in _COUNT_BEFORE_NOUN.finditer(normalised):
            if not _NOT_ITEMS.match(candidate.group("noun")) and 0 < int(candidate.group("num")) <= 50:
                return int(candidate.group("num"))
        words_list = normalised.split()
        for index, word in enumerate(words_list[:-1]):
            value = _UNITS.get(word)
            following = words_list[index + 1]
            if (
                value
                and 1 < value <= 10
                and not _NOT_ITEMS.match(following)
                and (following in ("من", "of") or len(following) > 2)
            ):
                return value
    words = normalised.split()
    for index, word in enumerate(words):
        if (
            word in ("حبه", "قطعه", "علبه", "زجاجه")
            and index + 1 < len(words)
            and words[index + 1] in ("وحده", "واحده")
        ):
            return 1
    return None


def extract_channels(text: str) -> list[str]:
    normalised = normalize_arabic(text)
    # In the order the user named them: the first is the one they care most about.
    found = [(match.start(), name) for name, pattern in _CHANNEL_RES.items() if (match := pattern.search(normalised))]
    return [name for _, name in sorted(found)]


def extract(text: str, today: date | None = None) -> Entities:
    amount, currency = extract_money(text)
    return Entities(
        budget_amount=amount,
        currency=currency,
        quantity=extract_quantity(text),
        size=extract_size(text),
        dates=extract_dates(text, today),
        times=extract_times(text),
        channels=extract_channels(text),
    )
