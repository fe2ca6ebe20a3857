from __future__ import annotations

from typing import Any

import pytest

from conversations import services
from conversations.models import Conversation, ConversationState


def test_state_writes_are_compare_and_swap(two_tenants: Any) -> None:
    tenant = two_tenants.a.tenant
    conversation = services.conversation_start_companion(tenant, two_tenants.a.owner)
    state = services.conversation_state_get(tenant, conversation)
    assert (state.data, state.version) == ({}, 0)

    booking = {"flow": "booking", "service": "حناء", "day": None}
    first = services.conversation_state_update(tenant, conversation, expected_version=0, data=booking)
    assert (first.data, first.version) == (booking, 1)

    # A second worker that also read version 0 loses, and changes nothing.
    with pytest.raises(services.StateConflict):
        services.conversation_state_update(tenant, conversation, expected_version=0, data={"flow": "other"})
    assert services.conversation_state_get(tenant, conversation).data == booking

    second = services.conversation_state_update(
        tenant, conversation, expected_version=1, data={**booking, "day": "2026-11-26"}
    )
    assert (second.data["day"], second.version) == ("2026-11-26", 2)


def test_state_of_another_tenants_conversation_is_not_reachable(two_tenants: Any) -> None:
    conversation = services.conversation_start_companion(two_tenants.a.tenant, two_tenants.a.owner)
    services.conversation_state_update(two_tenants.a.tenant, conversation, expected_version=0, data={"x": 1})
    with pytest.raises(Conversation.DoesNotExist):
        services.conversation_state_get(two_tenants.b.tenant, conversation)
    with pytest.raises(Conversation.DoesNotExist):
        services.conversation_state_update(two_tenants.b.tenant, conversation, expected_version=1, data={"x": 2})
    assert not ConversationState.objects.for_tenant(two_tenants.b.tenant).exists()
    assert services.conversation_state_get(two_tenants.a.tenant, conversation).data == {"x": 1}
