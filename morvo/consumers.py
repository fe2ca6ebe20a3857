from __future__ import annotations

import json
from typing import Any

from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from morvo import metrics
from morvo.realtime import tenant_group

UNAUTHENTICATED = 4401
NOT_FOUND = 4404


class JsonFrameConsumer(AsyncJsonWebsocketConsumer):
    """Frames are JSON objects with a ``type``; anything else gets an error frame and the
    socket stays open. ``accepted`` says whether this socket passed authentication."""

    accepted = False
    metric_name = "socket"

    async def join(self, group_name: str) -> None:
        """The socket passed authentication: subscribe it to its group and count it."""
        self.group_name = group_name
        await self.channel_layer.group_add(group_name, self.channel_name)
        metrics.OPEN_WEBSOCKETS.labels(consumer=self.metric_name).inc()
        self.accepted = True

    async def disconnect(self, code: int) -> None:
        if self.accepted:
            metrics.OPEN_WEBSOCKETS.labels(consumer=self.metric_name).dec()
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        forget = getattr(self.channel_layer, "forget_channel", None)
        if forget is not None:
            forget(self.channel_name)

    async def send(self, *args: Any, **kwargs: Any) -> None:
        # An event can reach a consumer just after its client closed; the frame has no one
        # to go to (the client replays with ?after= when it comes back), so it is dropped
        # instead of failing the whole consumer.
        try:
            await super().send(*args, **kwargs)
        except Disconnected:
            return

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if not self.accepted:
            return
        if text_data is None:
            await self.send_error("bad_request", "Send JSON text frames.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("bad_request", 'A frame is a JSON object with a "type".')
            return
        await self.receive_json(content)

    async def send_error(self, code: str, detail: str, **extra: Any) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail, **extra})


class TenantConsumer(JsonFrameConsumer):
    """Base consumer: refuses sockets without a tenant (close 4401 before sending anything),
    joins the tenant's group, answers malformed frames with an error frame."""

    groups: list[str] = []
    metric_name = "tenant"

    async def connect(self) -> None:
        self.tenant = self.scope.get("tenant")
        await self.accept()
        if self.tenant is None:
            await self.close(code=UNAUTHENTICATED)
            return
        await self.join(tenant_group(self.tenant.pk))

    async def tenant_broadcast(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "broadcast", "payload": event.get("payload")})


class PingConsumer(TenantConsumer):
    """``/ws/ping/``: answers ``{"type":"ping"}`` with the caller's tenant; relays the
    tenant's broadcasts."""

    metric_name = "ping"

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content["type"] != "ping":
            await self.send_error("unknown_type", f"Unknown frame type: {content['type']}")
            return
        await self.send_json(
            {
                "type": "pong",
                "id": content.get("id"),
                "tenant": self.tenant.slug,
                "server_time": timezone.now().isoformat(),
            }
        )
