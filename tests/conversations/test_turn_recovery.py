"""Nobody is left without an answer, even when a turn's task is lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conversations import services, tasks
from conversations.models import Message


@pytest.fixture
def no_turns(monkeypatch: Any) -> list[tuple[Any, ...]]:
    """Turn tasks are recorded instead of run (as if the worker lost them)."""
    enqueued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.conversation_turn_task, "delay", lambda *args: None)
    monkeypatch.setattr(tasks.conversation_turn_task, "apply_async", lambda args, **options: enqueued.append(args))
    return enqueued


def unanswered(world: Any, age_seconds: int, client_id: str, handled_by: str = "ai") -> Message:
    conversation = services.conversation_start_companion(world.tenant, world.owner)
    if handled_by != "ai":
        services.conversation_take_over(world.tenant, conversation.pk, world.owner)
    message, _ = services.message_post(world.tenant, conversation, content="وين طلبي؟", client_message_id=client_id)
    Message.objects.for_tenant(world.tenant).filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    return message


def test_a_late_turn_is_run_again_and_a_very_late_one_gets_the_failure_notice(
    two_tenants: Any, no_turns: list[tuple[Any, ...]]
) -> None:
    late = unanswered(two_tenants.a, 90, "late")
    very_late = unanswered(two_tenants.a, 600, "very-late")
    fresh = unanswered(two_tenants.a, 5, "fresh")
    human = unanswered(two_tenants.a, 600, "human", handled_by="human")
    other_tenant = unanswered(two_tenants.b, 600, "other")

    assert services.turns_recover(two_tenants.a.tenant) == {"retried": 1, "failed": 1}
    assert no_turns == [(two_tenants.a.tenant.pk, late.pk)]
    notice = Message.objects.for_tenant(two_tenants.a.tenant).get(reply_to=very_late)
    assert notice.content == services.FAILURE_NOTICE["ar"]
    assert notice.metadata == {"failure": True, "language": "ar", "overdue": True}
    replies = Message.objects.for_tenant(two_tenants.a.tenant).filter(role="assistant")
    assert set(replies.values_list("reply_to", flat=True)) == {very_late.pk}
    assert not Message.objects.all_tenants().filter(reply_to__in=[fresh.pk, human.pk, other_tenant.pk]).exists()

    # Run again: nothing more is sent for the very late one.
    assert services.turns_recover(two_tenants.a.tenant) == {"retried": 1, "failed": 0}
    assert Message.objects.for_tenant(two_tenants.a.tenant).filter(reply_to=very_late).count() == 1


def test_the_beat_job_fans_out_only_to_tenants_with_late_turns(
    two_tenants: Any, no_turns: Any, monkeypatch: Any
) -> None:
    unanswered(two_tenants.b, 120, "b-late")
    unanswered(two_tenants.a, 5, "a-fresh")
    fanned: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.turns_recover_tenant_task, "apply_async", lambda args, **options: fanned.append(args))
    assert tasks.turns_recover_task() == 1
    assert fanned == [(two_tenants.b.tenant.pk,)]
