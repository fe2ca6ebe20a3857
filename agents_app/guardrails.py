"""Guardrails, before and after the brain.

Before: a message that tries to rewrite the rules (prompt injection), to pull out the system
prompt, to reach another business's data or another customer's personal data, or that asks
for unsafe content (self-harm, weapons, drugs, hate, sexual content involving minors) gets a
safe answer in the user's language instead of a turn. Everything else passes; instructions
inside user content are then only ever handed to a model as quoted data
(:func:`quote_user_content`), never as instructions.

After: the reply may not echo the system prompt, may not carry personal data (e-mail
addresses, phone numbers) other than the current customer's own, and may not contain unsafe
content; a reply that fails is replaced by the safe fallback.

Matching runs on the normalised text (``morvo.text.normalize_arabic``), so spelling
variants of the same words match once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from morvo.text import normalize_arabic


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    category: str = "allow"  # allow, block_injection, block_unsafe, block_privacy
    reason: str = ""


ALLOW = Verdict(True)

_INJECTION = [
    # English
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,30}\b(previous|prior|above|earlier|all|your|the|system|these)\b.{0,20}\b(instructions?|rules|prompts?|guidelines|directions|messages)\b",
    r"\b(system|developer|hidden|initial|original)\s+(prompt|instructions?|message|rules)\b",
    r"\b(reveal|show|print|repeat|output|display|tell me|give me|leak|dump)\b.{0,40}\b(prompt|instructions|configuration|rules you)\b",
    r"\byou are (now|no longer)\b|\bfrom now on,? you\b|\bpretend (to be|you are)\b|\bact as (an? )?(unrestricted|jailbroken|dan|evil)",
    r"\b(developer|god|dan|jailbreak|sudo|admin) mode\b|\bdo anything now\b",
    r"\bnew (rules|instructions)\s*:|\bbegin (system|admin) (message|override)\b|<\s*/?\s*system\s*>|\[\s*system\s*\]",
    # Arabic (normalised forms)
    r"(تجاهل|انس|انسي|اترك|لا تلتزم|تخط|تخطي|الغ|الغي|اهمل).{0,25}(التعليمات|الاوامر|القواعد|التوجيهات|الارشادات|تعليماتك|قواعدك|اوامرك)",
    r"(اعرض|اظهر|اطبع|اكتب|كرر|ارسل|اعطني|عطني|ورني|قول|قل).{0,30}(التعليمات|البرومبت|برومبت|الموجه|تعليمات النظام|رساله النظام|الاعدادات السريه|تعليماتك|اوامرك)",
    r"(برومبت|تعليمات|رساله|اوامر) (النظام|السيستم|المطور)",
    r"(انت الان|من الان انت|من الحين انت|تقمص|تظاهر انك|اصبحت الان).{0,30}(بدون قيود|بلا قيود|مساعد اخر|غير مقيد|شخصيه|نظام)",
    r"(وضع المطور|وضع المطورين|وضع بلا قيود|كسر الحمايه)",
]
_INJECTION += [
    # Asking for the instructions themselves, in any words
    r"\b(instructions?|rules|prompt)\b.{0,40}\b(word for word|verbatim|exactly as|you were given|you've been given|you have been given)\b",
    r"\bwhat (instructions|rules|prompt)\b.{0,30}\b(given|told|have|follow)\b",
    r"(التعليمات|الاوامر|القواعد|الاعدادات)\s*(المخفيه|السريه|الداخليه|اللي معطينك|اللي عطوك|اللي عندك)",
    r"(انسخ|انسخها|انقل|انقلها|اكتبها).{0,20}(حرفيا|بالحرف|كما هي)",
    # Fake system or developer turns, and switching the rules off
    r"^\s*(system|developer|admin)\s*:",
    r"\b(disable|turn off|switch off|remove|bypass)\b.{0,20}\b(safety|filters?|checks|guardrails|restrictions|moderation)\b",
    r"\b(without|no)\s+(any\s+)?(restrictions|limits|filters)\b",
    r"\b(new )?instructions? (for|to) the (ai|assistant|bot|model)\b",
    r"\b(disregard|ignore|forget)\s+(everything|all of that|the above|what i said)\b",
    r"\byour (configuration|config|settings file|hidden rules)\b",
    r"(تجاهل|انس|اهمل)\s*(اللي فوق|ما سبق|كل شي|كل شيء|كل ما سبق|الكلام اللي فوق)",
    r"(نلعب دور|خلينا نلعب|تقمص دور|العب دور).{0,40}(مطور|النظام|المسؤول|الادمن|بدون قيود)",
    r"\b(you (have been|are|got) (hacked|pwned|jailbroken))\b|تم اختراقك",
]
_PRIVACY = [
    r"\b(phone|mobile|number|e-?mail|address|details|data|info(rmation)?|orders?|list|names?)\b.{0,40}\b(other|another|all (the |your )?|every|previous|last|that)\s+(customers?|clients?|users?|buyers?|shoppers?)",
    r"\b(customers?|clients?|buyers?)\b.{0,20}\bwho (ordered|bought|wrote|complained|came)\b",
    r"\b(other|another|competitor'?s?|different)\s+(shops?|stores?|tenants?|businesses|company|companies|brands?)\b.{0,40}\b(data|customers|sales|orders|revenue|numbers|info)",
    r"\b(data|customers|sales|orders|revenue)\b.{0,30}\b(of|from|for)\s+(another|other|a different|competitor'?s?)\s+(shop|store|tenant|business|company)",
    r"(رقم|ارقام|جوال|جوالات|ايميل|ايميلات|عنوان|عناوين|بيانات|معلومات|طلبات|اسماء|اسم).{0,25}(عميل|عملاء|زبون|زباين|زبائن|الزبون|العميل|العملاء|الزبائن)\s*(اخر|اخرين|ثاني|ثانيين|غيري|الاخرين|اللي طلب|الي طلب|اللي اشتكي|الي اشتكي|اللي قبلي|الي قبلي)",
    r"(العميل|الزبون|العملاء|الزباين)\s*(اللي|الي|الذي|الذين)\s*(طلب|طلبوا|اشتري|اشتروا|اشتكي|كلمكم|راسلكم)",
    r"(متجر|محل|شركه|متاجر|محلات|منافس|المنافس)\s*(ثاني|اخر|اخري|غيركم|منافس|المنافسين)?.{0,25}(بيانات|عملاء|مبيعات|ارقام|طلبات|ارباح|دخل)",
    r"(بيانات|عملاء|مبيعات|ارقام|طلبات)\s*(متجر|محل|شركه)\s*(ثاني|اخر|اخري|غيركم|منافس)",
    r"(بيانات|عملاء|مبيعات|ارقام|طلبات)\s*(عملاء\s*)?(متجر|محل|شركه|المتاجر|المحلات)",
    # Platform-wide questions: other businesses on Morvo
    r"\b(shops?|stores?|businesses|tenants|sellers)\b.{0,40}\b(on|across) (this|the) platform\b",
    r"(المتاجر|المحلات|متاجر|محلات).{0,30}(المنصه)",
    r"\b(give|show|send|tell)\b.{0,15}\b\w+(\s\w+)?'s (sales|revenue|customers|orders|figures|numbers)\b",
    # Another person's purchases, address or payment details
    r"\bwhat did (?!i\b|we\b)[\w-]+(\s[\w-]+){0,2} (buy|order|purchase)\b",
    r"\b(address|phone|number|email|name)\b.{0,20}\b(of )?the (lady|woman|girl|man|guy|person|customer|client) who\b",
    r"\b(contact list|customer list|mailing list|list of (all )?(your )?customers|all (of )?your customers|every customer)\b",
    r"\b(card|credit card|payment|bank) (details|number|info)\b",
    r"(مين|من هو|من هي|وش اسم|ايش اسم).{0,25}(اخر واحد|اللي|الي)\s*(اشتري|اشترت|طلب|طلبت)",
    r"(عنوان|رقم|جوال|اسم|ايميل)\s*(البنت|الرجل|الحرمه|المره|الست|الشخص|العميله|العميل|الزبونه|الزبون)\s*(اللي|الي|الذي|التي)",
    r"(شو|وش|ايش|ايه|ماذا)\s*(اشترت|اشتري|طلبت|طلب)\s*(جارتي|جاري|صاحبتي|صاحبي|اختي|اخوي|زوجتي|فلانه|فلان)",
    r"(ايميلات|ارقام|جوالات|عناوين|اسماء|قائمه|بيانات)\s*(كل|جميع)?\s*(العملاء|العملا|الزبائن|الزباين|عملائكم|زباينكم)",
    r"(رقم|بيانات|تفاصيل)\s*(البطاقه|الفيزا|الدفع)",
]
_UNSAFE = [
    # Self-harm
    (r"\b(kill myself|suicide|end my life|hurt myself|self[- ]harm|want to die)\b", "self_harm"),
    (r"(انتحر|انتحار|اقتل نفسي|انهي حياتي|اذي نفسي|ابي اموت|ابغي اموت|بدي موت)", "self_harm"),
    # Weapons, explosives and drugs
    (
        r"\b(make|build|buy|get|cook|produce|synthesi[sz]e|grow)\b.{0,20}\b(bomb|explosives?|gun|weapon|silencer|meth|cocaine|heroin|drugs|fentanyl)\b",
        "weapons_drugs",
    ),
    (
        r"(اصنع|اسوي|صنع|تصنيع|اشتري|شراء|وين القي|مكان بيع|اعمل|اطبخ|احضر|اجيب).{0,20}(قنبله|متفجرات|سلاح|مسدس|رشاش|حشيش|مخدرات|كوكايين|شبو|كبتاجون|هيروين)",
        "weapons_drugs",
    ),
    # Violence against a person
    (
        r"\b(how (to|do i|can i)|ways to)\b.{0,20}\b(poison|kill|stab|strangle|hurt|harm)\b.{0,20}\b(someone|somebody|a person|him|her|my|people)\b",
        "violence",
    ),
    (r"(كيف|ازاي|طريقه|شلون|كيفيه).{0,20}(اسمم|تسميم)", "violence"),
    (
        r"(كيف|ازاي|طريقه|شلون|كيفيه).{0,20}(اقتل|اطعن|اخنق|قتل|اذي)\s*(شخص|احد|واحد|انسان|ناس|زوجي|زوجتي|جاري|جارتي|ولد|بنت|طفل)",
        "violence",
    ),
    # Hate
    (
        r"\b(hate|kill|exterminate)\b.{0,20}\b(jews|christians|muslims|blacks|arabs|shia|sunni|gays|immigrants)\b",
        "hate",
    ),
    (r"(اكره|اقتل|ابيد|اباده).{0,20}(اليهود|المسيحيين|المسلمين|الشيعه|السنه|السود|العرب|الاجانب)", "hate"),
    (
        r"\b(people|they|those|immigrants|foreigners|refugees)\b.{0,40}\b(are|is)\s+(vermin|cockroaches|rats|animals|parasites|subhuman|a disease)\b",
        "hate",
    ),
    (r"(اهل|شعب|جماعه|الاجانب|اللاجئين|العماله).{0,40}(حشرات|صراصير|جرذان|فئران|طفيليات|وباء)", "hate"),
    (
        r"\b(should be|must be|need to be)\s+(expelled|exterminated|wiped out|eliminated)\b|(لازم|يجب)\s*(ينطردون|يطردون|يبادون|ينبادون)",
        "hate",
    ),
    # Sexual content involving minors
    (r"\b(child|minor|underage|kid|teen)\w*\b.{0,30}\b(sex|sexual|nude|naked|porn)", "minors"),
    (r"\b(sex|sexual|nude|naked|porn)\w*\b.{0,30}\b(child|minor|underage|kid)", "minors"),
    (r"(طفل|اطفال|قاصر|قاصرات|بنت صغيره).{0,30}(جنس|جنسي|عاري|عاريه|اباحي)", "minors"),
    (r"(جنس|جنسيه|جنسي|اباحي|اباحيه|عاري).{0,30}(طفل|اطفال|قاصر|قاصرات|بنت صغيره|ولد صغير)", "minors"),
]
# Questions about other businesses' data: refused for staff too (indices into _PRIVACY).
_OTHER_BUSINESSES = {2, 3, 6, 7, 8, 9, 10, 11}
# The business speaking of its own customers ("our customers", "عملائنا") is staff work.
_OWN_CUSTOMERS = re.compile(r"\bour (customers|clients|buyers)\b|عملائنا|زبايننا|زبائننا|عملاءنا")
_INJECTION_RES = [re.compile(pattern) for pattern in _INJECTION]
_PRIVACY_RES = [re.compile(pattern) for pattern in _PRIVACY]
_UNSAFE_RES = [(re.compile(pattern), kind) for pattern, kind in _UNSAFE]

# An e-mail address or a phone number in text (the output check; lead qualification).
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
PHONE = re.compile(r"(?<!\d)(?:\+|00)?\d[\d\s-]{7,14}\d(?!\d)")


def check_input(text: str, *, companion: bool = False) -> Verdict:
    """Whether the message may go to the brain. ``companion``: the tenant's own staff, who may
    ask about their own customers but never about another business's."""
    normalised = normalize_arabic(text)
    for pattern, kind in _UNSAFE_RES:
        if pattern.search(normalised):
            return Verdict(False, "block_unsafe", kind)
    for pattern in _INJECTION_RES:
        if pattern.search(normalised):
            return Verdict(False, "block_injection", pattern.pattern[:60])
    own_customers = bool(_OWN_CUSTOMERS.search(normalised))
    for index, pattern in enumerate(_PRIVACY_RES):
        if pattern.search(normalised):
            # Staff may ask about their own customers; questions about other businesses are
            # refused for everyone.
            if (companion or own_customers) and index not in _OTHER_BUSINESSES:
                continue
            return Verdict(False, "block_privacy", pattern.pattern[:60])
    return ALLOW


def check_output(reply: str, *, system_prompt: str = "", allowed_contacts: tuple[str, ...] = ()) -> Verdict:
    """Whether the composed reply may be sent."""
    normalised = normalize_arabic(reply)
    for pattern, kind in _UNSAFE_RES:
        if kind != "self_harm" and pattern.search(normalised):
            return Verdict(False, "block_unsafe", kind)
    if system_prompt and _echoes(system_prompt, reply):
        return Verdict(False, "block_injection", "reply repeats the system prompt")
    allowed = {normalize_arabic(value).replace(" ", "") for value in allowed_contacts if value}
    for match in EMAIL.finditer(reply):
        if normalize_arabic(match.group(0)).replace(" ", "") not in allowed:
            return Verdict(False, "block_privacy", "an e-mail address that is not the customer's own")
    for match in PHONE.finditer(normalize_arabic(reply)):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) >= 9 and not any(digits[-9:] in re.sub(r"\D", "", value) for value in allowed_contacts):
            return Verdict(False, "block_privacy", "a phone number that is not the customer's own")
    return ALLOW


def _echoes(system_prompt: str, reply: str, window: int = 8) -> bool:
    """True when the reply contains any run of ``window`` consecutive words of the system prompt."""
    prompt_words = normalize_arabic(system_prompt).split()
    reply_text = " " + " ".join(normalize_arabic(reply).split()) + " "
    for start in range(0, max(0, len(prompt_words) - window + 1)):
        if " " + " ".join(prompt_words[start : start + window]) + " " in reply_text:
            return True
    return False


SAFE_REPLIES = {
    "block_injection": (
        "أقدر أساعدك في أسئلة المتجر والتسويق، لكن ما أقدر أغيّر طريقة عملي أو أشارك تعليماتي الداخلية. وش تحتاج؟",
        "I can help with questions about the shop and its marketing, but I can't change how I work or share my internal instructions. What do you need?",
    ),
    "block_privacy": (
        "ما أقدر أشارك بيانات عملاء آخرين أو بيانات متاجر أخرى، حفاظًا على خصوصيتهم. أقدر أساعدك في طلبك أنت.",
        "I can't share other customers' or other businesses' data — that's private. I'm happy to help with your own request.",
    ),
    "block_unsafe": (
        "ما أقدر أساعد في هذا الطلب. إذا عندك سؤال عن منتجاتنا أو طلبك، أنا حاضر.",
        "I can't help with that. If you have a question about our products or your order, I'm here.",
    ),
    "self_harm": (
        "يؤسفني أنك تمر بهذا، ولست وحدك. إذا كنت في خطر الآن فاتصل بالطوارئ (997 أو 911)، وتقدر تكلم شخصًا تثق فيه أو مختصًا نفسيًا — في السعودية خط الدعم النفسي 920033360.",
        "I'm sorry you're going through this, and you're not alone. If you're in danger right now, call your local emergency number, and please reach out to someone you trust or a mental-health professional.",
    ),
}


def safe_reply(verdict: Verdict, language: str) -> str:
    key = "self_harm" if verdict.reason == "self_harm" else verdict.category
    arabic, english = SAFE_REPLIES.get(key, SAFE_REPLIES["block_unsafe"])
    return arabic if language == "ar" else english


def quote_user_content(text: str) -> str:
    """The user's message as data for a model: fenced, with any fence inside neutralised."""
    cleaned = text.replace("<<<", "‹‹‹").replace(">>>", "›››")
    return f"<<<USER_MESSAGE\n{cleaned}\nUSER_MESSAGE>>>"
