"""The chat turn's public entry point.

``handle_turn`` answers one user message. This is the offline floor: it replies in the
user's language with the tenant's voice and suggestions to continue. The full pipeline
(analysis, knowledge, KPIs, specialists) replaces the body, keeping the contract:
it returns a :class:`TurnReply` or raises, and the caller persists and delivers the reply
(a raise becomes a polite failure notice, never silence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents_app.language import reply_language


@dataclass(frozen=True)
class TurnReply:
    content: str
    language: str
    metadata: dict[str, Any] = field(default_factory=dict)


def handle_turn(tenant: Any, conversation: Any, message: Any) -> TurnReply:
    language = reply_language(message.content, default=tenant.default_language)
    companion = conversation.kind == "companion"
    if language == "ar":
        if companion:
            content = (
                f"أهلًا! أنا مورفو، رفيقك التسويقي في {tenant.name}. وصلتني رسالتك، "
                "ويمكنني مساعدتك في قراءة المبيعات، وكتابة المحتوى، وتخطيط الحملات."
            )
            suggestions = ["ملخص مبيعات آخر 30 يومًا", "اقترح حملة لمنتج راكد", "اكتب منشورًا لإنستغرام"]
        else:
            content = f"أهلًا بك في {tenant.name}! وصلتنا رسالتك، وسنساعدك حالًا."
            suggestions = ["المنتجات المتوفرة", "الشحن والتوصيل", "التحدث مع موظف"]
    elif companion:
        content = (
            f"Hi! I'm Morvo, {tenant.name}'s marketing companion. I got your message and can help "
            "with your sales figures, content and campaign plans."
        )
        suggestions = ["Sales summary for the last 30 days", "Suggest a campaign", "Write an Instagram post"]
    else:
        content = f"Welcome to {tenant.name}! We got your message and will help you right away."
        suggestions = ["Products in stock", "Shipping and delivery", "Talk to a person"]
    return TurnReply(content=content, language=language, metadata={"suggestions": suggestions, "brain": "offline"})
