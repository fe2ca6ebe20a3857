"""The offline brain: a useful answer for every intent with no language model.

It executes the same plan the specialists would, through the same tenant-bound tools, and
writes the answer from what the tools returned: every number in an analytics report, every
price and size in a product answer, every source in a knowledge answer comes from the
tenant's data. Sentences are composed in the user's language (Arabic or English) and in the
tenant's register (its business type and brand voice decide the greeting, the emoji and
the call to action).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from agents_app.router import Analysis
from agents_app.tools import ToolBox
from morvo.text import normalize_arabic

CHANNEL_NAMES = {
    "instagram": ("إنستغرام", "Instagram"),
    "snapchat": ("سناب شات", "Snapchat"),
    "tiktok": ("تيك توك", "TikTok"),
    "whatsapp": ("واتساب", "WhatsApp"),
    "x": ("إكس", "X"),
    "google": ("إعلانات جوجل", "Google Ads"),
    "email": ("البريد الإلكتروني", "e-mail"),
    "sms": ("الرسائل النصية", "SMS"),
    "facebook": ("فيسبوك", "Facebook"),
    "youtube": ("يوتيوب", "YouTube"),
}
# Default channel mix for the Gulf when the user names none: share of the budget, by
# what MENA retail audiences use most (Snapchat and Instagram lead in Saudi Arabia).
DEFAULT_CHANNEL_MIX = (("snapchat", 35), ("instagram", 30), ("tiktok", 20), ("google", 15))
WEEKDAY_NAMES = {
    "monday": ("الاثنين", "Monday"),
    "tuesday": ("الثلاثاء", "Tuesday"),
    "wednesday": ("الأربعاء", "Wednesday"),
    "thursday": ("الخميس", "Thursday"),
    "friday": ("الجمعة", "Friday"),
    "saturday": ("السبت", "Saturday"),
    "sunday": ("الأحد", "Sunday"),
}
SERVICES_BY_BUSINESS = {
    "beauty_salon": (
        ("قص وتصفيف الشعر", "Haircut and styling"),
        ("مكياج مناسبات", "Event make-up"),
        ("عناية بالبشرة", "Facial"),
    ),
    "restaurant": (("حجز طاولة", "Table reservation"), ("حجز مناسبة خاصة", "Private event")),
    "retail": (
        ("استشارة عطور", "Fragrance consultation"),
        ("قياس وتفصيل", "Fitting and tailoring"),
        ("استلام من المتجر", "In-store pickup"),
    ),
    "general": (("استشارة", "Consultation"), ("موعد زيارة", "Visit")),
}


# Suggestion chips: the next message a click sends. Each says which intent it asks for, so a
# clicked chip is understood exactly, whatever the classifier would make of a short phrase.
CHIPS: dict[str, tuple[str, str, str]] = {
    "best_seller_campaign": (
        "اقترح حملة للمنتج الأكثر مبيعًا",
        "Suggest a campaign for the best seller",
        "campaign_strategy",
    ),
    "best_seller_post": ("اكتب منشورًا عن الأكثر مبيعًا", "Write a post about the best seller", "content_creation"),
    "slow_products": ("ما المنتجات الراكدة؟", "Which products are slow?", "analytics_report"),
    "shorter_snapchat": ("اكتب نسخة أقصر لسناب شات", "Write a shorter version for Snapchat", "content_creation"),
    "product_campaign": ("اقترح حملة لهذا المنتج", "Suggest a campaign for this product", "campaign_strategy"),
    "ad_copy": ("اكتب نص الإعلان", "Write the ad copy", "content_creation"),
    "past_campaigns": ("كيف كان أداء حملاتي السابقة؟", "How did my past campaigns do?", "analytics_report"),
    "product_description": ("اكتب وصفًا لمنتج", "Write a product description", "content_creation"),
    "order_it": ("أبغى أطلبه", "I'd like to order it", "product_inquiry"),
    "similar": ("عندكم شي مشابه؟", "Anything similar?", "product_inquiry"),
    "tell_when_back": ("نبهني إذا رجع", "Tell me when it's back", "stock_alert"),
    "best_seller_question": ("وش الأكثر مبيعًا؟", "What's your best seller?", "product_inquiry"),
    "sales_summary_30": ("ملخص مبيعات آخر 30 يومًا", "Sales summary for the last 30 days", "analytics_report"),
    "suggest_campaign": ("اقترح حملة", "Suggest a campaign", "campaign_strategy"),
    "instagram_post": ("اكتب منشورًا لإنستغرام", "Write an Instagram post", "content_creation"),
    "shipping": ("الشحن والتوصيل", "Shipping and delivery", "other"),
    "talk_to_person": ("أبغى أكلم موظف", "Talk to a person", "human_handoff"),
    "sales_summary": ("ملخص المبيعات", "Sales summary", "analytics_report"),
    "products_in_stock": ("المنتجات المتوفرة", "Products in stock", "product_inquiry"),
}
CHIP_INTENTS: dict[str, str] = {
    normalize_arabic(text): intent for arabic, english, intent in CHIPS.values() for text in (arabic, english)
}


def chip(language: str, key: str) -> str:
    arabic, english, _ = CHIPS[key]
    return arabic if language == "ar" else english


@dataclass
class Reply:
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = None  # the conversation state to store, when it changes
    escalated: bool = False


def say(language: str, arabic: str, english: str) -> str:
    return arabic if language == "ar" else english


def money(amount: Any, currency: str, language: str) -> str:
    value = Decimal(str(amount))
    text = f"{value:,.2f}" if value != value.to_integral() else f"{value:,.0f}"
    if language == "ar":
        names = {"SAR": "ريال", "AED": "درهم", "KWD": "دينار", "EGP": "جنيه", "USD": "دولار", "QAR": "ريال قطري"}
        return f"{text} {names.get(currency, currency)}"
    return f"{currency} {text}"


def _emoji(tenant: Any, symbol: str) -> str:
    voice = (tenant.brand_voice or "").lower()
    # The brand voice decides: "no emoji" / "بدون إيموجي" turns them off.
    if "بدون إيموجي" in voice or "no emoji" in voice or "بلا إيموجي" in voice:
        return ""
    return f" {symbol}"


class OfflineBrain:
    def __init__(self, tenant: Any, toolbox: ToolBox, *, companion: bool, today: date) -> None:
        self.tenant = tenant
        self.tools = toolbox
        self.companion = companion
        self.today = today
        # Deterministic per tenant and day: the same question gets the same answer today.
        self.random = random.Random(f"{tenant.pk}-{today.isoformat()}")
        self.text = ""

    # -- entry ----------------------------------------------------------------------------

    def answer(
        self, analysis: Analysis, language: str, text: str, state: dict[str, Any], knowledge: list[dict[str, Any]]
    ) -> Reply:
        self.text = text
        flow = state.get("flow")
        if flow == "booking" and analysis.intent not in ("human_handoff", "complaint", "greeting"):
            return self.booking(analysis, language, state)
        if flow == "stock_alert" and analysis.intent in ("other", "stock_alert", "product_inquiry"):
            return self.stock_alert(analysis, language, state)
        handler = getattr(self, analysis.intent)
        if analysis.intent in ("other", "complaint"):
            return handler(analysis, language, text, knowledge)
        if analysis.intent in ("booking", "stock_alert"):
            return handler(analysis, language, state)
        return handler(analysis, language)

    # -- companion ------------------------------------------------------------------------

    def analytics_report(self, analysis: Analysis, language: str) -> Reply:
        days = 30
        kpis = self.tools.call("kpi_summary", days=days)
        currency = kpis["currency"]
        growth = kpis["growth_percent"]
        cards = [
            {
                "label": say(language, "الإيرادات (30 يومًا)", "Revenue (30 days)"),
                "value": money(kpis["revenue"], currency, language),
                "delta": growth,
            },
            {
                "label": say(language, "الطلبات", "Orders"),
                "value": str(kpis["orders"]),
                "delta": _delta(kpis["orders"], kpis["previous_orders"]),
            },
            {
                "label": say(language, "متوسط قيمة الطلب", "Average order value"),
                "value": money(kpis["average_order_value"], currency, language),
            },
        ]
        lines = [
            say(
                language,
                f"هذا ملخص أداء {self.tenant.name} لآخر {days} يومًا:",
                f"Here is {self.tenant.name}'s performance over the last {days} days:",
            ),
            say(
                language,
                f"• الإيرادات: {money(kpis['revenue'], currency, language)} من {kpis['orders']} طلبًا، بمتوسط {money(kpis['average_order_value'], currency, language)} للطلب.",
                f"• Revenue: {money(kpis['revenue'], currency, language)} from {kpis['orders']} orders, {money(kpis['average_order_value'], currency, language)} per order on average.",
            ),
        ]
        if growth is not None:
            direction = Decimal(growth) >= 0
            lines.append(
                say(
                    language,
                    f"• مقارنة بالثلاثين يومًا السابقة ({money(kpis['previous_revenue'], currency, language)}): {'نمو' if direction else 'تراجع'} {abs(Decimal(growth))}٪.",
                    f"• Against the previous 30 days ({money(kpis['previous_revenue'], currency, language)}): {'up' if direction else 'down'} {abs(Decimal(growth))}%.",
                )
            )
        best = kpis["best_seller"]
        if best:
            lines.append(
                say(
                    language,
                    f"• الأكثر مبيعًا: {best['name']} — {best['units']} قطعة بإيرادات {money(best['revenue'], currency, language)}.",
                    f"• Best seller: {best['name']} — {best['units']} units, {money(best['revenue'], currency, language)} in revenue.",
                )
            )
            cards.append({"label": say(language, "الأكثر مبيعًا", "Best seller"), "value": best["name"]})
        roi = kpis["campaign_roi"]
        if roi:
            lines.append(
                say(
                    language,
                    f"• الحملات الإعلانية: صرف {money(roi['spend'], currency, language)} وعائد {money(roi['revenue'], currency, language)}، أي عائد على الاستثمار {roi['roi_percent']}٪.",
                    f"• Ad campaigns: {money(roi['spend'], currency, language)} spent, {money(roi['revenue'], currency, language)} returned, an ROI of {roi['roi_percent']}%.",
                )
            )
            cards.append({"label": say(language, "عائد الحملات", "Campaign ROI"), "value": f"{roi['roi_percent']}%"})
        if not kpis["orders"]:
            lines.append(
                say(language, "لا توجد طلبات مدفوعة في هذه الفترة بعد.", "There are no paid orders in this period yet.")
            )
        elif growth is not None and Decimal(growth) < 0:
            lines.append(
                say(
                    language,
                    "اقتراحي: نراجع المنتجات التي تراجعت مبيعاتها ونطلق عرضًا قصيرًا عليها.",
                    "My suggestion: review the products whose sales fell and run a short offer on them.",
                )
            )
        return Reply(
            "\n".join(lines),
            {
                "kpis": cards,
                "suggestions": [
                    chip(language, "best_seller_campaign"),
                    chip(language, "best_seller_post"),
                    chip(language, "slow_products"),
                ],
            },
        )

    def _focus_product(self, analysis: Analysis) -> dict[str, Any] | None:
        products = analysis.entities.get("products") or []
        if products:
            return self.tools.call("get_product", product_id=products[0]["id"]).get("product")
        best = self.tools.call("kpi_summary", days=30).get("best_seller")
        if best:
            return self.tools.call("get_product", product_id=best["product_id"]).get("product")
        found = self.tools.call("search_products", query="", limit=1).get("products") or []
        return found[0] if found else None

    def content_creation(self, analysis: Analysis, language: str) -> Reply:
        product = self._focus_product(analysis)
        channel = (analysis.entities.get("channels") or ["instagram"])[0]
        if product is None:
            return Reply(
                say(
                    language,
                    "أضف منتجًا إلى المتجر أولًا لأكتب عنه.",
                    "Add a product to the store first and I'll write about it.",
                ),
                {"suggestions": []},
            )
        post = ad_copy(self.tenant, product, language, channel=channel, seed=self.random.random())
        channel_name = CHANNEL_NAMES.get(channel, (channel, channel))[0 if language == "ar" else 1]
        body = f"{post['headline']}\n\n{post['body']}\n\n{post['call_to_action']}\n\n{' '.join(post['hashtags'])}"
        content = "\n".join(
            [
                say(
                    language,
                    f"هذا منشور لـ{channel_name} عن «{product['name']}»:",
                    f"Here is a {channel_name} post about “{product['name']}”:",
                ),
                "",
                body,
                "",
                say(language, f"فكرة الصورة: {post['image_idea']}", f"Image idea: {post['image_idea']}"),
            ]
        )
        return Reply(
            content,
            {
                "attachments": [
                    {
                        "type": "content",
                        "title": say(language, f"منشور {channel_name}", f"{channel_name} post"),
                        "text": body,
                    },
                    {
                        "type": "image_idea",
                        "title": say(language, "فكرة الصورة", "Image idea"),
                        "text": post["image_idea"],
                    },
                ],
                "suggestions": [
                    chip(language, "shorter_snapchat"),
                    chip(language, "product_campaign"),
                ],
            },
        )

    def campaign_strategy(self, analysis: Analysis, language: str) -> Reply:
        product = self._focus_product(analysis)
        history = self.tools.call("campaign_history", limit=20).get("campaigns", [])
        kpis = self.tools.call("kpi_summary", days=30)
        currency = analysis.entities.get("currency") or self.tenant.currency
        budget = analysis.entities.get("budget_amount")
        if budget is None:
            # Without a stated budget: 10 % of last month's revenue, at least 1,000.
            budget = max(Decimal(kpis["revenue"]) * Decimal("0.10"), Decimal("1000")).quantize(Decimal("1"))
        budget = Decimal(str(budget))
        mix = self._channel_mix(analysis.entities.get("channels") or [], history)
        split = [(name, share, (budget * share / 100).quantize(Decimal("1"))) for name, share in mix]
        objective = self._objective(history, kpis)
        product_name = product["name"] if product else self.tenant.name
        audience = (self.tenant.target_audience or "").strip() or say(
            language, "عملاؤك الحاليون ومن يشبههم في مدينتك", "your current customers and people like them in your city"
        )
        lines = [
            say(language, f"خطة حملة لـ«{product_name}»:", f"A campaign plan for “{product_name}”:"),
            say(language, f"• الهدف: {objective[0]}", f"• Objective: {objective[1]}"),
            say(
                language,
                f"• الميزانية: {money(budget, currency, language)} لمدة 14 يومًا، موزعة هكذا:",
                f"• Budget: {money(budget, currency, language)} over 14 days, split:",
            ),
        ]
        for name, share, amount in split:
            label = CHANNEL_NAMES.get(name, (name, name))[0 if language == "ar" else 1]
            lines.append(f"   - {label}: {share}% ({money(amount, currency, language)})")
        lines.append(say(language, f"• الجمهور: {audience[:220]}", f"• Audience: {audience[:220]}"))
        lines.append(
            say(
                language,
                "• اختبار A/B: نسختان من الإعلان — (أ) تبرز السعر والتوصيل السريع، (ب) تبرز القصة والجودة — 50/50 لأول 3 أيام ثم نضاعف الفائزة.",
                "• A/B test: two versions — (A) leads with price and fast delivery, (B) with the story and quality — 50/50 for the first 3 days, then scale the winner.",
            )
        )
        target_roas = self._target_roas(history)
        lines.append(
            say(
                language,
                f"• مؤشرات النجاح: عائد على الإنفاق ≥ {target_roas}، تكلفة اكتساب عميل أقل من {money(product['price'], currency, language) if product else '—'}، ونسبة نقر ≥ 1.5٪.",
                f"• KPIs: ROAS ≥ {target_roas}, cost per acquisition below {money(product['price'], currency, language) if product else '—'}, click-through ≥ 1.5%.",
            )
        )
        if history:
            best = max(history, key=lambda row: Decimal(row["roas"]) if row["roas"] is not None else Decimal("-99"))
            if best["roas"] is not None:
                lines.append(
                    say(
                        language,
                        f"• من سجلك: أفضل حملة كانت «{best['name']}» بعائد {best['roas']} على كل ريال — بنيت التوزيع على نتائجها.",
                        f"• From your history: your best campaign was “{best['name']}” with a ROAS of {best['roas']} — the split builds on it.",
                    )
                )
        plan = {
            "objective": objective[0 if language == "ar" else 1],
            "budget": str(budget),
            "currency": currency,
            "channels": [{"channel": name, "share": share, "amount": str(amount)} for name, share, amount in split],
            "target_roas": str(target_roas),
        }
        return Reply(
            "\n".join(lines),
            {
                "attachments": [
                    {
                        "type": "campaign_plan",
                        "title": say(language, "خطة الحملة", "Campaign plan"),
                        "text": "\n".join(lines[1:]),
                        "data": plan,
                    }
                ],
                "suggestions": [
                    chip(language, "ad_copy"),
                    chip(language, "past_campaigns"),
                ],
            },
        )

    def _channel_mix(self, named: list[str], history: list[dict[str, Any]]) -> list[tuple[str, int]]:
        if named:
            share = 100 // len(named)
            mix = [(name, share) for name in named]
            mix[0] = (named[0], share + 100 - share * len(named))
            return mix
        by_platform: dict[str, list[Decimal]] = {}
        for row in history:
            if row["roas"] is not None and row["platform"]:
                by_platform.setdefault(row["platform"].lower(), []).append(Decimal(row["roas"]))
        if by_platform:
            # Weight channels by their average ROAS in the tenant's own history (floored at 0.1).
            weights = {
                name: max(sum(values, Decimal(0)) / len(values), Decimal("0.1")) for name, values in by_platform.items()
            }
            total = sum(weights.values(), Decimal(0))
            mix = [(name, int(weight / total * 100)) for name, weight in sorted(weights.items(), key=lambda p: -p[1])]
            mix[0] = (mix[0][0], mix[0][1] + 100 - sum(share for _, share in mix))
            return mix[:4]
        return list(DEFAULT_CHANNEL_MIX)

    def _objective(self, history: list[dict[str, Any]], kpis: dict[str, Any]) -> tuple[str, str]:
        growth = kpis.get("growth_percent")
        if growth is not None and Decimal(growth) < 0:
            return (
                "استعادة المبيعات: تحويلات من جمهور زار المتجر ولم يشترِ",
                "Win back sales: conversions from people who visited and did not buy",
            )
        if not history:
            return (
                "الوعي والمبيعات معًا: نبدأ بجمهور واسع ثم نعيد الاستهداف",
                "Awareness and sales: start broad, then retarget",
            )
        return (
            "زيادة المبيعات بعائد إنفاق أعلى من حملاتك السابقة",
            "Grow sales at a better return than your past campaigns",
        )

    def _target_roas(self, history: list[dict[str, Any]]) -> Decimal:
        values = [Decimal(row["roas"]) for row in history if row["roas"] is not None]
        if not values:
            return Decimal("2.0")
        return max(Decimal("1.5"), (sum(values, Decimal(0)) / len(values) * Decimal("1.1")).quantize(Decimal("0.1")))

    def seo(self, analysis: Analysis, language: str) -> Reply:
        products = analysis.entities.get("products") or []
        found: list[Any]
        if products:
            found = [self.tools.call("get_product", product_id=entry["id"]).get("product") for entry in products[:3]]
        else:
            found = self.tools.call("search_products", query="", limit=3).get("products") or []
        cards: list[dict[str, Any]] = [card for card in found if card]
        keywords = seo_keywords(self.tenant, cards)
        lines = [say(language, "اقتراحات SEO من كتالوجك:", "SEO suggestions from your catalogue:")]
        lines.append(
            say(language, "• كلمات مفتاحية: ", "• Keywords: ") + "، ".join(keywords[:10])
            if language == "ar"
            else "• Keywords: " + ", ".join(keywords[:10])
        )
        for card in cards[:3]:
            title, meta = seo_title_meta(self.tenant, card, language)
            lines.append(say(language, f"• «{card['name']}»", f"• “{card['name_en'] or card['name']}”"))
            lines.append(say(language, f"   العنوان: {title}", f"   Title: {title}"))
            lines.append(say(language, f"   الوصف: {meta}", f"   Meta description: {meta}"))
        lines.append(
            say(
                language,
                "• نصيحة: اكتب أوصاف المنتجات بالعربية أولًا بلهجة بحث العميل (مثل «دهن عود أصلي») وأضف نسخة إنجليزية.",
                "• Tip: write product descriptions in Arabic first, in the words customers search with (such as “دهن عود أصلي”), then add English.",
            )
        )
        return Reply(
            "\n".join(lines),
            {
                "attachments": [
                    {"type": "seo", "title": "SEO", "text": "\n".join(lines[1:]), "data": {"keywords": keywords}}
                ],
                "suggestions": [chip(language, "product_description")],
            },
        )

    # -- customers ------------------------------------------------------------------------

    def product_inquiry(self, analysis: Analysis, language: str) -> Reply:
        products = analysis.entities.get("products") or []
        if not products:
            return self._catalogue_answer(analysis, language)
        if len(products) > 1 and products[0]["score"] == products[1]["score"]:
            return self._which_product(products, language)
        card = self.tools.call("get_product", product_id=products[0]["id"]).get("product")
        if card is None:
            return self._catalogue_answer(analysis, language)
        price = money(card["price"], card["currency"], language)
        if card["in_stock"]:
            stock = say(language, f"متوفر الآن ({card['stock']} قطعة).", f"In stock now ({card['stock']} available).")
        else:
            stock = say(
                language,
                "نفد حاليًا، وأقدر أبلغك أول ما يرجع.",
                "Sold out right now — I can tell you as soon as it's back.",
            )
        lines = [
            say(
                language,
                f"«{card['name']}»: السعر {price}. {stock}",
                f"“{card['name_en'] or card['name']}”: {price}. {stock}",
            )
        ]
        if card["sizes"]:
            lines.append(say(language, "المقاسات: " + "، ".join(card["sizes"]), "Sizes: " + ", ".join(card["sizes"])))
        size = analysis.entities.get("size")
        if size and card["sizes"]:
            available = any(
                size.lower().replace(" ", "") in option.lower().replace(" ", "") for option in card["sizes"]
            )
            lines.append(
                say(
                    language,
                    f"المقاس {size} {'متوفر' if available else 'غير متوفر'}.",
                    f"Size {size} is {'available' if available else 'not available'}.",
                )
            )
        if card["description"]:
            lines.append(card["description"])
        suggestions = (
            [chip(language, "order_it"), chip(language, "similar")]
            if card["in_stock"]
            else [chip(language, "tell_when_back")]
        )
        return Reply("\n".join(lines), {"suggestions": suggestions, "products": [card]})

    def _catalogue_answer(self, analysis: Analysis, language: str) -> Reply:
        query = self.text
        found = self.tools.call("search_products", query=query, limit=4).get("products") or []
        if not found:
            return Reply(
                say(
                    language,
                    "عن أي منتج تسأل؟ اكتب اسمه أو نوعه وأعطيك السعر والتوفر.",
                    "Which product do you mean? Tell me its name or type and I'll give you the price and availability.",
                ),
                {"suggestions": [chip(language, "best_seller_question")]},
            )
        lines = [say(language, "هذا ما وجدته:", "Here is what I found:")]
        for card in found:
            availability = say(
                language, "متوفر" if card["in_stock"] else "نفد", "in stock" if card["in_stock"] else "sold out"
            )
            lines.append(
                f"• {card['name'] if language == 'ar' else card['name_en'] or card['name']} — {money(card['price'], card['currency'], language)} ({availability})"
            )
        return Reply(
            "\n".join(lines),
            {
                "suggestions": [
                    card["name"] if language == "ar" else card["name_en"] or card["name"] for card in found[:3]
                ],
                "products": found,
            },
        )

    def _which_product(self, products: list[dict[str, Any]], language: str) -> Reply:
        names = [entry["name"] for entry in products[:3]]
        return Reply(
            say(language, "تقصد أي واحد منها؟\n", "Which one do you mean?\n")
            + "\n".join(f"• {name}" for name in names),
            {"suggestions": names},
        )

    def stock_alert(self, analysis: Analysis, language: str, state: dict[str, Any]) -> Reply:
        products = analysis.entities.get("products") or []
        if not products:
            return Reply(
                say(
                    language,
                    "أكيد! أي منتج تبغى أبلغك عنه إذا رجع؟",
                    "Sure! Which product should I tell you about when it's back?",
                ),
                {"suggestions": []},
                state={**state, "flow": "stock_alert"},
            )
        if len(products) > 1 and products[0]["score"] == products[1]["score"]:
            reply = self._which_product(products, language)
            reply.state = {**state, "flow": "stock_alert"}
            return reply
        product = products[0]
        stock = self.tools.call("check_stock", product_id=product["id"])
        cleared = {key: value for key, value in state.items() if key != "flow"}
        if stock.get("in_stock"):
            return Reply(
                say(
                    language,
                    f"خبر حلو: «{stock['name']}» متوفر الآن ({stock['quantity']} قطعة)، تقدر تطلبه مباشرة.",
                    f"Good news: “{stock['name']}” is in stock now ({stock['quantity']} available) — you can order it right away.",
                ),
                {"suggestions": [chip(language, "order_it")]},
                state=cleared,
            )
        created = self.tools.call("create_stock_alert", product_id=product["id"])
        if "error" in created:
            return Reply(
                say(
                    language,
                    f"«{stock.get('name', product['name'])}» غير متوفر حاليًا. تابع صفحة المنتج وسيظهر فور توفره.",
                    f"“{stock.get('name', product['name'])}” is sold out for now; it will show on its page as soon as it's back.",
                ),
                {},
                state=cleared,
            )
        already = not created["created"]
        return Reply(
            say(
                language,
                f"تم{'، وطلبك مسجل من قبل' if already else ''}! بنرسل لك هنا أول ما يرجع «{created['product']}» للمخزون.{_emoji(self.tenant, '🔔')}",
                f"Done{' — you were already on the list' if already else ''}! We'll message you here as soon as “{created['product']}” is back in stock.",
            ),
            {"stock_alert": {"id": created["alert_id"], "product": created["product"]}},
            state=cleared,
        )

    def booking(self, analysis: Analysis, language: str, state: dict[str, Any]) -> Reply:
        slots = dict(state.get("booking") or {})
        services = SERVICES_BY_BUSINESS.get(self.tenant.business_type, SERVICES_BY_BUSINESS["general"])
        text = self.text
        if not slots.get("service"):
            service = _match_service(text, services)
            if service:
                slots["service"] = service
        dates = analysis.entities.get("dates") or []
        dated = [entry for entry in dates if entry.get("date")]
        if dated:
            slots["day"] = dated[0]["date"]
        times = analysis.entities.get("times") or []
        if times:
            slots["time"] = f"{times[0]['hour']:02d}:{times[0]['minute']:02d}"
        new_state = {**state, "flow": "booking", "booking": slots}
        if not slots.get("service"):
            options = [name[0] if language == "ar" else name[1] for name in services]
            return Reply(
                say(language, "حيّاك! أي خدمة تبغى تحجز؟", "Happy to book you in! Which service would you like?"),
                {"suggestions": options},
                state=new_state,
            )
        if not slots.get("day"):
            days = [self.today + timedelta(days=offset) for offset in (1, 2, 3)]
            return Reply(
                say(
                    language,
                    f"تمام، {slots['service']}. أي يوم يناسبك؟",
                    f"Great — {slots['service']}. Which day suits you?",
                ),
                {"suggestions": [_day_label(day, language) for day in days]},
                state=new_state,
            )
        if not slots.get("time"):
            day = date.fromisoformat(slots["day"])
            free = _free_slots(self.tenant, day, slots["service"])
            if not free:
                slots.pop("day", None)
                return Reply(
                    say(
                        language,
                        f"يوم {_day_label(day, language)} ما فيه مواعيد متاحة. أي يوم ثاني يناسبك؟",
                        f"There are no free times on {_day_label(day, language)}. Which other day suits you?",
                    ),
                    {"suggestions": [_day_label(day + timedelta(days=offset), language) for offset in (1, 2)]},
                    state={**new_state, "booking": slots},
                )
            return Reply(
                say(
                    language,
                    f"وأي ساعة يوم {_day_label(day, language)}؟ المتاح مثلًا: {'، '.join(free[:3])}",
                    f"And what time on {_day_label(day, language)}? Free, for example: {', '.join(free[:3])}",
                ),
                {"suggestions": free[:3]},
                state=new_state,
            )
        start = f"{slots['day']}T{slots['time']}"
        booked = self.tools.call("book_appointment", service=slots["service"], start=start)
        if "error" in booked:
            slots.pop("time", None)
            return Reply(
                say(
                    language,
                    f"ما قدرت أحجز هذا الوقت: {booked['error']}. اختر وقتًا آخر؟",
                    f"I couldn't book that time: {booked['error']}. Pick another time?",
                ),
                {"suggestions": []},
                state={**new_state, "booking": slots},
            )
        when = datetime.fromisoformat(booked["start"])
        cleared = {key: value for key, value in state.items() if key not in ("flow", "booking")}
        cleared["last_booking"] = booked["appointment_id"]
        return Reply(
            say(
                language,
                f"تم الحجز ✅ {slots['service']} يوم {_day_label(when.date(), language)} الساعة {when:%H:%M}. نرسل لك تذكيرًا قبلها.",
                f"Booked ✅ {slots['service']} on {_day_label(when.date(), language)} at {when:%H:%M}. We'll remind you beforehand.",
            ),
            {"appointment": {"id": booked["appointment_id"], "service": slots["service"], "start": booked["start"]}},
            state=cleared,
        )

    def complaint(self, analysis: Analysis, language: str, text: str, knowledge: list[dict[str, Any]]) -> Reply:
        urgent = analysis.priority == "urgent"
        self.tools.call(
            "escalate_to_human",
            reason=say(language, "شكوى: ", "Complaint: ") + text[:400],
            priority="urgent" if urgent else "high",
        )
        lines = [
            say(
                language,
                "نعتذر منك على هذه التجربة، ومعك حق تنزعج. حوّلت شكواك لفريق خدمة العملاء بأولوية عالية وبيتواصلون معك هنا في أقرب وقت.",
                "We're sorry about this — you're right to be upset. I've passed your complaint to our customer team as a priority, and they'll reply to you here shortly.",
            )
        ]
        policy = knowledge[:1]
        if policy:
            lines.append(
                say(
                    language,
                    f"وللمعلومية، من «{policy[0]['title']}»: {policy[0]['snippet']}",
                    f"For reference, from “{policy[0]['title']}”: {policy[0]['snippet']}",
                )
            )
        return Reply("\n".join(lines), {"escalated": True, "sources": _sources(policy)}, escalated=True)

    def human_handoff(self, analysis: Analysis, language: str) -> Reply:
        self.tools.call(
            "escalate_to_human",
            reason=say(language, "العميل طلب التحدث مع موظف", "The customer asked for a person"),
            priority="high",
        )
        return Reply(
            say(
                language,
                "أبشر، حوّلتك لأحد الزملاء وبيرد عليك هنا قريبًا.",
                "Of course — I've passed you to a colleague, who will reply here shortly.",
            ),
            {"escalated": True},
            escalated=True,
        )

    def greeting(self, analysis: Analysis, language: str) -> Reply:
        hour = datetime.now().hour
        if self.companion:
            opener = say(
                language,
                f"{'صباح الخير' if hour < 12 else 'مساء الخير'}! أنا مورفو، رفيقك التسويقي في {self.tenant.name}.",
                f"Good {'morning' if hour < 12 else 'evening'}! I'm Morvo, {self.tenant.name}'s marketing companion.",
            )
            headline = self.tools.call("kpi_summary", days=7)
            detail = say(
                language,
                f"آخر 7 أيام: {headline['orders']} طلبًا بإيرادات {money(headline['revenue'], headline['currency'], language)}. بماذا نبدأ؟",
                f"Last 7 days: {headline['orders']} orders, {money(headline['revenue'], headline['currency'], language)} in revenue. Where shall we start?",
            )
            suggestions = [
                chip(language, "sales_summary_30"),
                chip(language, "suggest_campaign"),
                chip(language, "instagram_post"),
            ]
            return Reply(f"{opener}\n{detail}", {"suggestions": suggestions})
        welcome = say(
            language,
            f"هلا والله! حيّاك في {self.tenant.name}{_emoji(self.tenant, '🌷')} كيف أقدر أخدمك؟",
            f"Hello and welcome to {self.tenant.name}! How can I help?",
        )
        return Reply(
            welcome,
            {
                "suggestions": [
                    chip(language, "best_seller_question"),
                    chip(language, "shipping"),
                    chip(language, "talk_to_person"),
                ]
            },
        )

    def other(self, analysis: Analysis, language: str, text: str, knowledge: list[dict[str, Any]]) -> Reply:
        # A passage in the user's language first, when one is among the best.
        knowledge = sorted(knowledge, key=lambda hit: hit.get("language") != language)
        if knowledge:
            top = knowledge[0]
            lines = [say(language, f"من «{top['title']}»:", f"From “{top['title']}”:"), top["snippet"]]
            if len(knowledge) > 1 and knowledge[1]["document_id"] != top["document_id"]:
                lines.append(
                    say(
                        language,
                        f"وأيضًا من «{knowledge[1]['title']}»: {knowledge[1]['snippet']}",
                        f"And from “{knowledge[1]['title']}”: {knowledge[1]['snippet']}",
                    )
                )
            return Reply("\n".join(lines), {"sources": _sources(knowledge[:3])})
        if self.companion:
            return Reply(
                say(
                    language,
                    "ما فهمت طلبك تمامًا. أقدر أساعدك في أرقام المبيعات، وكتابة المحتوى، وخطط الحملات، وSEO. وش تحتاج؟",
                    "I didn't quite get that. I can help with sales figures, content, campaign plans and SEO — what do you need?",
                ),
                {
                    "suggestions": [
                        chip(language, "sales_summary"),
                        chip(language, "suggest_campaign"),
                    ]
                },
            )
        return Reply(
            say(
                language,
                f"ما لقيت جوابًا أكيدًا لسؤالك في معلومات {self.tenant.name}. تحب أحولك لموظف؟",
                f"I couldn't find a sure answer in {self.tenant.name}'s information. Would you like a person to help?",
            ),
            {
                "suggestions": [
                    chip(language, "talk_to_person"),
                    chip(language, "products_in_stock"),
                ]
            },
        )


def _delta(current: int, previous: int) -> str | None:
    if not previous:
        return None
    return str((Decimal(current - previous) / previous * 100).quantize(Decimal("0.1")))


def _sources(knowledge: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"title": hit["title"], "source": hit["source"], "document_id": hit["document_id"]} for hit in knowledge]


def _day_label(day: date, language: str) -> str:
    name = WEEKDAY_NAMES[day.strftime("%A").lower()][0 if language == "ar" else 1]
    return f"{name} {day.day}/{day.month}"


def _free_slots(tenant: Any, day: date, service: str) -> list[str]:
    """Free start times on ``day`` as HH:MM in the tenant's time zone."""
    from zoneinfo import ZoneInfo

    from crm.services import appointment_slots_free

    zone = ZoneInfo(tenant.timezone or "UTC")
    return [slot.astimezone(zone).strftime("%H:%M") for slot in appointment_slots_free(tenant, day, service)]


def _match_service(text: str, services: tuple[tuple[str, str], ...]) -> str | None:
    from morvo.text import normalize_arabic, words

    tokens = set(words(text))
    for arabic, english in services:
        candidate = set(words(arabic)) | set(words(english))
        significant = {token for token in candidate if len(token) >= 3}
        if tokens & significant:
            return arabic if any(0x0600 <= ord(c) <= 0x06FF for c in normalize_arabic(text)) else english
    return None


def ad_copy(
    tenant: Any, product: dict[str, Any], language: str, *, channel: str = "instagram", seed: float = 0.0
) -> dict[str, Any]:
    """A post for ``product`` from its own facts (name, price, category, description, stock) and
    the tenant's voice: headline, body, call to action, hashtags and an image idea."""
    name = product["name"] if language == "ar" else (product.get("name_en") or product["name"])
    price = money(product["price"], product["currency"], language)
    category = product.get("category") or ""
    first_sentence = (product.get("description") or "").split("،")[0].split(".")[0].strip()
    low_stock = 0 < product.get("stock", 0) <= 10
    openers_ar = ["✨ جديدك المفضل", "لعشّاق التميّز", "هديتك جاهزة", "لمسة فخامة ليومك"]
    openers_en = [
        "✨ Your new favourite",
        "For those who love the finest",
        "Your gift is ready",
        "A touch of luxury for your day",
    ]
    index = int(seed * len(openers_ar)) % len(openers_ar)
    emoji = _emoji(tenant, "🤍")
    if language == "ar":
        headline = f"{openers_ar[index]}: {name}"
        body = f"{first_sentence}." if first_sentence else f"{name} من {tenant.name}."
        body += f" بسعر {price}"
        body += " — الكمية محدودة!" if low_stock else "."
        cta = f"اطلبه الآن من {tenant.name} والتوصيل لباب بيتك{emoji}"
        image = (
            f"صورة قريبة لـ«{name}» على خلفية دافئة بألوان {tenant.name}، مع ضوء ناعم وعناصر من {category or 'المنتج'}."
        )
    else:
        headline = f"{openers_en[index]}: {name}"
        english_description = product.get("description_en") or ""
        body = f"{english_description or name + ' from ' + tenant.name}."
        body += f" Now {price}"
        body += " — limited stock!" if low_stock else "."
        cta = f"Order now from {tenant.name}, delivered to your door.{emoji}"
        image = f"A close-up of “{name}” on a warm background in {tenant.name}'s colours, soft light, with {category or 'product'} details."
    hashtags = hashtags_for(tenant, product, language, channel)
    return {"headline": headline, "body": body, "call_to_action": cta, "hashtags": hashtags, "image_idea": image}


def hashtags_for(tenant: Any, product: dict[str, Any], language: str, channel: str) -> list[str]:
    from morvo.text import words

    tags = []
    category = product.get("category") or ""
    for word in words(category)[:2]:
        tags.append("#" + word)
    shop = "".join(word for word in words(tenant.name) if word.isalnum())[:30]
    if shop:
        tags.append("#" + shop)
    if language == "ar":
        tags += ["#عروض", "#السعودية" if tenant.currency == "SAR" else "#الخليج", "#هدايا"]
    else:
        tags += ["#offers", "#KSA" if tenant.currency == "SAR" else "#Gulf", "#gifts"]
    if channel == "tiktok":
        tags.append("#tiktokmademebuyit" if language == "en" else "#تيك_توك")
    return list(dict.fromkeys(tags))[:7]


def seo_keywords(tenant: Any, cards: list[dict[str, Any]]) -> list[str]:
    keywords: list[str] = []
    for card in cards:
        if card.get("category"):
            keywords += [
                card["category"],
                f"{card['category']} أصلي",
                f"أفضل {card['category']}",
                f"{card['category']} أونلاين",
            ]
        keywords.append(card["name"])
        if card.get("name_en"):
            keywords.append(card["name_en"].lower())
    city_words = ["الرياض", "جدة"] if tenant.currency == "SAR" else ["دبي"] if tenant.currency == "AED" else []
    for card in cards[:1]:
        for city in city_words:
            if card.get("category"):
                keywords.append(f"{card['category']} {city}")
    return list(dict.fromkeys(keyword for keyword in keywords if keyword))


def seo_title_meta(tenant: Any, card: dict[str, Any], language: str) -> tuple[str, str]:
    price = money(card["price"], card["currency"], language)
    if language == "ar":
        title = f"{card['name']} | {card.get('category') or ''} أصلي من {tenant.name}"[:60]
        meta = (
            f"اشترِ {card['name']} بسعر {price}. {(card.get('description') or '')[:80]} توصيل سريع والدفع عند الاستلام."[
                :155
            ]
        )
    else:
        name = card.get("name_en") or card["name"]
        title = f"{name} | Authentic {card.get('category') or ''} at {tenant.name}"[:60]
        meta = f"Buy {name} for {price}. Fast delivery and cash on delivery across the region."[:155]
    return title, meta
