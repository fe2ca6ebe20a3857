"""Appointments: booking, free slots, reminders 24 h and 1 h before."""

from __future__ import annotations

import threading
from datetime import time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conversations import services as conversation_services
from conversations.models import Message
from crm import services
from crm.models import Appointment, BusinessHours
from tests.crm.conftest import next_weekday, riyadh
from tests.factories import ContactFactory, TenantFactory

MONDAY, FRIDAY = 0, 4


@pytest.mark.django_db
def test_booking_a_free_slot():
    tenant = TenantFactory()
    contact = ContactFactory(tenant=tenant)
    day = next_weekday(MONDAY)

    appointment = services.appointment_book(
        tenant, service="Haircut", start=riyadh(day, 11), contact=contact, duration_minutes=45, notes="first visit"
    )

    assert (appointment.service, appointment.status, appointment.contact_id) == ("Haircut", "booked", contact.pk)
    assert appointment.end - appointment.start == timedelta(minutes=45)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hour", "code"),
    [(9, "closed"), (22, "closed"), (21.5, "closed")],
)
def test_booking_outside_business_hours_is_refused(hour, code):
    tenant = TenantFactory()
    day = next_weekday(MONDAY)
    start = riyadh(day, int(hour), int((hour % 1) * 60))
    with pytest.raises(services.CrmError) as error:
        services.appointment_book(tenant, service="Haircut", start=start)
    assert error.value.code == code
    assert Appointment.objects.for_tenant(tenant).count() == 0


@pytest.mark.django_db
def test_booking_in_the_past_or_a_taken_slot_is_refused_with_a_readable_message():
    tenant = TenantFactory()
    day = next_weekday(MONDAY)
    services.appointment_book(tenant, service="Haircut", start=riyadh(day, 11))

    with pytest.raises(services.CrmError) as past:
        services.appointment_book(tenant, service="Haircut", start=timezone.now() - timedelta(hours=1))
    with pytest.raises(services.CrmError) as clash:
        services.appointment_book(tenant, service="Colour", start=riyadh(day, 11, 30))

    assert (past.value.code, str(past.value)) == (
        "past_start",
        "That time has already passed. Please choose a time in the future.",
    )
    assert (clash.value.code, str(clash.value)) == (
        "slot_taken",
        "That time is already taken. Please choose another time.",
    )
    assert Appointment.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db
def test_another_tenants_booking_does_not_clash():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    day = next_weekday(MONDAY)
    services.appointment_book(tenant_a, service="Haircut", start=riyadh(day, 11))
    services.appointment_book(tenant_b, service="Haircut", start=riyadh(day, 11))
    with pytest.raises(services.CrmError):
        services.appointment_book(tenant_b, service="Haircut", start=riyadh(day, 11), contact=ContactFactory())
    assert Appointment.objects.for_tenant(tenant_b).count() == 1


@pytest.mark.django_db
def test_free_slots_follow_business_hours_and_bookings():
    tenant = TenantFactory()
    monday, friday = next_weekday(MONDAY), next_weekday(FRIDAY)
    services.appointment_book(tenant, service="Haircut", start=riyadh(monday, 12))

    slots = services.appointment_slots_free(tenant, monday)
    friday_slots = services.appointment_slots_free(tenant, friday)

    assert [timezone.localtime(slot, slot.tzinfo).hour for slot in slots] == [
        10,
        11,
        13,
        14,
        15,
        16,
        17,
        18,
        19,
        20,
        21,
    ]
    assert [slot.hour for slot in friday_slots] == [16, 17, 18, 19, 20, 21]


@pytest.mark.django_db
def test_a_tenants_own_hours_replace_the_defaults():
    tenant = TenantFactory()
    monday = next_weekday(MONDAY)
    BusinessHours.objects.for_tenant(tenant).create(tenant=tenant, weekday=MONDAY, opens=time(9), closes=time(12))

    assert [slot.hour for slot in services.appointment_slots_free(tenant, monday)] == [9, 10, 11]
    assert services.appointment_slots_free(tenant, next_weekday(1)) == []


@pytest.mark.django_db(transaction=True)
def test_two_customers_taking_the_same_slot_at_once_one_wins():
    tenant = TenantFactory()
    start = riyadh(next_weekday(MONDAY), 15)
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def book() -> None:
        try:
            barrier.wait()
            services.appointment_book(tenant, service="Haircut", start=start)
            outcomes.append("booked")
        except services.CrmError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=book) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["booked", "slot_taken", "slot_taken"]
    assert Appointment.objects.for_tenant(tenant).count() == 1


def _appointment_at(tenant, start, *, created_at, contact, conversation):
    appointment = Appointment.objects.for_tenant(tenant).create(
        tenant=tenant,
        service="Haircut",
        start=start,
        end=start + timedelta(hours=1),
        contact=contact,
        conversation=conversation,
    )
    Appointment.objects.for_tenant(tenant).filter(pk=appointment.pk).update(created_at=created_at)
    return appointment


@pytest.mark.django_db
def test_reminders_go_out_24h_and_1h_before_exactly_once_in_the_contacts_language():
    tenant = TenantFactory()
    conversation = conversation_services.conversation_start_visitor(tenant, "v-1")
    contact = services.contact_for_conversation(tenant, conversation)
    services.contact_update(tenant, contact.pk, language="ar")
    now = timezone.now()
    start = now + timedelta(hours=23)
    appointment = _appointment_at(
        tenant, start, created_at=now - timedelta(days=3), contact=contact, conversation=conversation
    )

    first = services.appointment_reminders_send(tenant, now=now)
    again = services.appointment_reminders_send(tenant, now=now + timedelta(minutes=5))
    hour_before = services.appointment_reminders_send(tenant, now=start - timedelta(minutes=50))
    hour_again = services.appointment_reminders_send(tenant, now=start - timedelta(minutes=45))

    assert first == {"24h": 1, "1h": 0, "skipped": 0}
    assert again == {"24h": 0, "1h": 0, "skipped": 0}
    assert hour_before == {"24h": 0, "1h": 1, "skipped": 0}
    assert hour_again == {"24h": 0, "1h": 0, "skipped": 0}
    messages = list(Message.objects.for_tenant(tenant).filter(conversation=conversation).order_by("id"))
    assert [message.metadata["reminder"] for message in messages] == ["24h", "1h"]
    assert all(message.role == "assistant" for message in messages)
    assert messages[0].content.startswith("تذكير")
    appointment.refresh_from_db()
    assert appointment.reminded_24h_at is not None and appointment.reminded_1h_at is not None


@pytest.mark.django_db
def test_a_late_booking_gets_no_24h_reminder_and_a_cancelled_one_none():
    tenant = TenantFactory()
    conversation = conversation_services.conversation_start_visitor(tenant, "v-1")
    contact = services.contact_for_conversation(tenant, conversation)
    now = timezone.now()
    late = _appointment_at(
        tenant,
        now + timedelta(hours=3),
        created_at=now - timedelta(minutes=5),
        contact=contact,
        conversation=conversation,
    )
    cancelled = _appointment_at(
        tenant,
        now + timedelta(hours=20),
        created_at=now - timedelta(days=2),
        contact=contact,
        conversation=conversation,
    )
    services.appointment_set_status(tenant, cancelled.pk, "cancelled")

    assert services.appointment_reminders_send(tenant, now=now) == {"24h": 0, "1h": 0, "skipped": 1}
    assert Message.objects.for_tenant(tenant).filter(conversation=conversation).count() == 0
    late.refresh_from_db()
    assert late.reminded_24h_at is not None and late.reminded_1h_at is None


@pytest.mark.django_db
def test_beat_fans_out_reminders_per_tenant_and_a_tenant_job_touches_only_its_tenant(monkeypatch):
    from crm import tasks

    tenant_a, tenant_b, quiet = TenantFactory(), TenantFactory(), TenantFactory()
    now = timezone.now()
    for tenant, visitor in [(tenant_a, "a"), (tenant_b, "b")]:
        conversation = conversation_services.conversation_start_visitor(tenant, visitor)
        contact = services.contact_for_conversation(tenant, conversation)
        _appointment_at(
            tenant,
            now + timedelta(hours=5),
            created_at=now - timedelta(days=2),
            contact=contact,
            conversation=conversation,
        )
    _appointment_at(quiet, now + timedelta(days=3), created_at=now, contact=None, conversation=None)
    fanned: list[tuple] = []
    monkeypatch.setattr(
        tasks.appointment_reminders_tenant_task, "apply_async", lambda args, **options: fanned.append((args, options))
    )

    assert tasks.appointment_reminders_task() == 2
    assert sorted(fanned) == sorted([((tenant_a.pk,), {"expires": 300}), ((tenant_b.pk,), {"expires": 300})])
    assert tasks.appointment_reminders_tenant_task(tenant_a.pk) == {"24h": 1, "1h": 0, "skipped": 0}
    assert Message.objects.for_tenant(tenant_a).count() == 1
    assert Message.objects.for_tenant(tenant_b).count() == 0
    assert Appointment.objects.for_tenant(tenant_b).get().reminded_24h_at is None
