"""``/ws/chat/<conversation_id>/``: the live chat. Protocol in docs/websocket.md.

Staff come with their session or a token (their tenant is set by the Channels middleware);
visitors of the public chat with their signed cookie, and only into their own
conversation. Another tenant's conversation, or someone else's, is closed 4404.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from conversations import selectors, services
from conversations.models import Conversation, Message
from conversations.realtime import conversation_group, message_to_wire
from conversations.visitors import COOKIE_NAME, visitor_id_from_cookie
from morvo import services as core_services
from morvo import tenancy
from morvo.consumers import NOT_FOUND, UNAUTHENTICATED, JsonFrameConsumer

MESSAGES_PER_MINUTE = 20


def in_parallel_thread(method: Any) -> Any:
    """Database work of a socket, on a thread of its own (each with a pooled connection).

    Channels' default runs every socket's database work on one shared thread, so 200
    chatters queued behind each other. A consumer still awaits its own events one at a
    time, so each socket keeps its order.
    """
    return database_sync_to_async(method, thread_sensitive=False)


class _Moved(Exception):
    """The visitor's conversation is gone; ``conversation`` is the one started instead."""

    def __init__(self, conversation: Conversation) -> None:
        super().__init__(conversation.pk)
        self.conversation = conversation


class ChatConsumer(JsonFrameConsumer):
    metric_name = "chat"

    async def connect(self) -> None:
        await self.accept()
        try:
            conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        except (KeyError, TypeError, ValueError):
            await self.close(code=NOT_FOUND)
            return
        code = await self._authorize(conversation_id)
        if code is not None:
            await self.close(code=code)
            return
        await self.join(conversation_group(self.tenant.pk, self.conversation.pk))
        after = parse_qs(self.scope.get("query_string", b"").decode()).get("after")
        if after:
            try:
                after_id = int(after[0])
            except ValueError:
                await self.send_error("bad_request", "after must be a message id.")
                after_id = None
            if after_id is not None:
                for message in await self._messages_after(after_id):
                    await self.send_json({"type": "message", **message})
        # The socket is in the conversation's group now: from this frame on, nothing is missed.
        conversation = self.conversation
        await self.send_json(
            {
                "type": "status",
                "status": conversation.status,
                "handled_by": conversation.handled_by,
                "priority": conversation.priority,
                "assignee": conversation.assignee_id,
            }
        )

    @in_parallel_thread
    def _authorize(self, conversation_id: int) -> int | None:
        """None when allowed (and sets tenant, conversation, identity), else a close code."""
        tenant = self.scope.get("tenant")
        user = self.scope.get("user")
        if tenant is not None and user is not None and user.is_authenticated:
            conversation = selectors.conversation_for_staff(tenant, conversation_id)
            if conversation is None:
                return NOT_FOUND
            if conversation.kind == Conversation.Kind.COMPANION and conversation.staff_user_id != user.pk:
                return NOT_FOUND  # a colleague's companion chat is theirs alone
            self.tenant, self.conversation, self.user = tenant, conversation, user
            self.is_staff, self.sender_key = True, f"user:{user.pk}"
            return None
        visitor_id = visitor_id_from_cookie(self.scope.get("cookies", {}).get(COOKIE_NAME))
        if visitor_id is None:
            return UNAUTHENTICATED
        conversation = selectors.conversation_for_visitor(conversation_id, visitor_id)
        if conversation is None:
            return NOT_FOUND
        self.tenant, self.conversation, self.user = conversation.tenant, conversation, None
        self.is_staff, self.sender_key = False, f"visitor:{visitor_id}"
        self.visitor_id = visitor_id
        return None

    @in_parallel_thread
    def _messages_after(self, after_id: int) -> list[dict[str, Any]]:
        messages = selectors.messages_after(self.tenant, self.conversation, after_id, include_notes=self.is_staff)
        return selectors.message_list_wire(messages)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content["type"]
        if kind == "user_message":
            await self._user_message(content)
        elif kind == "typing":
            role = "agent" if self.is_staff and self.conversation.kind == Conversation.Kind.CUSTOMER else "user"
            await self.channel_layer.group_send(
                self.group_name, {"type": "chat.typing", "role": role, "sender": self.channel_name}
            )
        elif kind == "read":
            message_id = content.get("message_id")
            if not isinstance(message_id, int) or isinstance(message_id, bool):
                await self.send_error("bad_request", "read needs an integer message_id.")
                return
            await self._mark_read(message_id)
        else:
            await self.send_error("unknown_type", f"Unknown frame type: {kind}")

    async def _user_message(self, content: dict[str, Any]) -> None:
        client_message_id = content.get("client_message_id")
        if client_message_id is not None and not isinstance(client_message_id, str | int):
            await self.send_error("bad_request", "client_message_id must be a string.")
            return
        client_message_id = str(client_message_id) if client_message_id is not None else None
        try:
            try:
                message, _created = await self._post(content.get("content"), client_message_id)
            except _Moved as moved:
                await self._moved_to(moved.conversation)
                message, _created = await self._post(content.get("content"), client_message_id)
        except services.ChatError as error:
            await self.send_error(error.code, str(error), client_message_id=client_message_id)
            return
        except (Conversation.DoesNotExist, _Moved):
            await self.send_error(
                "not_found", "This conversation no longer exists.", client_message_id=client_message_id
            )
            await self.close(code=NOT_FOUND)
            return
        await self.send_json({"type": "ack", "client_message_id": client_message_id, "message_id": message.pk})

    async def _moved_to(self, conversation: Conversation) -> None:
        """The visitor's conversation was pruned while the page stayed open: the socket joins
        the new one (before the message is posted, so the reply is heard), and the page learns
        where to reconnect."""
        await self.channel_layer.group_discard(self.group_name, self.channel_name)
        self.conversation = conversation
        await self.join(conversation_group(self.tenant.pk, conversation.pk))
        await self.send_json(
            {"type": "conversation", "id": conversation.pk, "socket_path": f"/ws/chat/{conversation.pk}/"}
        )

    @in_parallel_thread
    def _post(self, content: Any, client_message_id: str | None) -> tuple[Message, bool]:
        with tenancy.tenant_context(self.tenant):
            if client_message_id is not None:
                # A resend after a reconnect is answered with the original, and never counted.
                existing = Message.objects.for_tenant(self.tenant).filter(
                    conversation=self.conversation, client_message_id=client_message_id
                )
                found = existing.first()
                if found is not None:
                    return found, False
            conversation = Conversation.objects.for_tenant(self.tenant).filter(pk=self.conversation.pk).first()
            if conversation is None:
                if self.is_staff:
                    raise Conversation.DoesNotExist
                # An empty visitor conversation is pruned after a day: a visitor who kept the
                # page open that long and now writes goes on in their latest open one (another
                # tab's), else a new one, not an error. Checked before the rate limit, so the
                # message is counted once, when it is posted there.
                raise _Moved(
                    selectors.visitor_conversation_latest(self.tenant, self.visitor_id)
                    or services.conversation_start_visitor(self.tenant, self.visitor_id)
                )
            window = int(time.time() // 60 * 60)
            if core_services.throttle_hit(f"chat:{self.sender_key}", window, 60) > MESSAGES_PER_MINUTE:
                raise services.ChatError("rate_limited", f"Slow down: at most {MESSAGES_PER_MINUTE} messages a minute.")
            role = (
                Message.Role.AGENT
                if self.is_staff and conversation.kind == Conversation.Kind.CUSTOMER
                else Message.Role.USER
            )
            return services.message_post(
                self.tenant,
                conversation,
                content=content,
                role=role,
                client_message_id=client_message_id,
                author=self.user,
            )

    @in_parallel_thread
    def _mark_read(self, message_id: int) -> None:
        services.messages_mark_read(self.tenant, self.conversation, message_id, reader_is_staff=self.is_staff)

    # --- group events -------------------------------------------------------------------

    async def chat_message(self, event: dict[str, Any]) -> None:
        message = event["message"]
        if message["role"] == Message.Role.NOTE and not self.is_staff:
            return
        await self.send_json({"type": "message", **message})

    async def chat_typing(self, event: dict[str, Any]) -> None:
        if event.get("sender") == self.channel_name:
            return
        await self.send_json({"type": "typing", "role": event["role"]})

    async def chat_status(self, event: dict[str, Any]) -> None:
        payload = {key: value for key, value in event.items() if key != "type"}
        await self.send_json({"type": "status", **payload})


__all__ = ["ChatConsumer", "message_to_wire"]
