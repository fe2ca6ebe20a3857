"""``/ws/inbox/``: the operators' live conversations list.

Staff only (session or token; the Channels middleware sets ``scope["tenant"]``). The socket
joins its tenant's inbox group — group names carry the tenant, so another tenant's events
never reach it — and relays each change as ``{"type": "conversation", …fields…}``.
"""

from __future__ import annotations

from typing import Any

from conversations.models import Conversation
from conversations.realtime import inbox_group
from morvo.consumers import UNAUTHENTICATED, JsonFrameConsumer


class InboxConsumer(JsonFrameConsumer):
    metric_name = "inbox"

    async def connect(self) -> None:
        await self.accept()
        tenant = self.scope.get("tenant")
        user = self.scope.get("user")
        if tenant is None or user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.tenant = tenant
        await self.join(inbox_group(tenant.pk))

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        # The list only listens; there is nothing to send it.
        await self.send_error("unknown_type", f"Unknown frame type: {content['type']}")

    async def inbox_conversation(self, event: dict[str, Any]) -> None:
        conversation = event.get("conversation") or {}
        if conversation.get("kind") == Conversation.Kind.COMPANION:
            return  # a staff member's chat with Morvo is theirs alone, even its title
        await self.send_json({"type": "conversation", **conversation})
