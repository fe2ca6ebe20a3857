"""Channel-layer groups and sends. Group names always carry the tenant."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def tenant_group(tenant_id: int) -> str:
    return f"tenant-{tenant_id}"


def group_send(group: str, event: dict[str, Any]) -> None:
    """Send to a group from synchronous code (a task, a service's ``on_commit``)."""
    layer = get_channel_layer()
    send_sync = getattr(layer, "group_send_sync", None)
    if send_sync is not None:
        send_sync(group, event)
    else:
        async_to_sync(layer.group_send)(group, event)


def group_send_many(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Several ``(group, event)`` sends from synchronous code; in one statement on the
    embedded layer, one by one on the others."""
    if not sends:
        return
    layer = get_channel_layer()
    send_many = getattr(layer, "group_send_many_sync", None)
    if send_many is not None:
        send_many(sends)
        return
    for group, event in sends:
        group_send(group, event)


def tenant_broadcast(tenant_id: int, payload: dict[str, Any]) -> None:
    """Send ``payload`` to every socket of the tenant."""
    group_send(tenant_group(tenant_id), {"type": "tenant.broadcast", "payload": payload})
