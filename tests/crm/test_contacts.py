"""Contacts, identities, labels, attributes, notes, lead qualification, follow-ups."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from conversations import services as conversation_services
from crm import services
from crm.models import Contact, ContactAttributeDefinition, ContactIdentity, FollowUp, Label, LeadQualification
from tests.factories import ContactFactory, MembershipFactory, TenantFactory, UserFactory


def test_phone_numbers_become_e164():
    assert services.phone_normalize("0501234567") == "+966501234567"
    assert services.phone_normalize("٠٥٠١٢٣٤٥٦٧") == "+966501234567"
    assert services.phone_normalize("00971501234567") == "+971501234567"
    assert services.phone_normalize("+44 20 7946 0958") == "+442079460958"
    assert services.phone_normalize("") == ""
    with pytest.raises(services.CrmError) as error:
        services.phone_normalize("12")
    assert error.value.code == "invalid_phone"


@pytest.mark.django_db
def test_contact_resolve_creates_a_contact_with_its_identity_once():
    tenant = TenantFactory()

    first = services.contact_resolve(
        tenant, channel_type="whatsapp", external_id="966501234567", name="نورة", phone="966501234567", language="ar"
    )
    again = services.contact_resolve(tenant, channel_type="whatsapp", external_id="966501234567", name="Other")

    assert again.pk == first.pk
    assert (first.name, first.phone, first.language, first.lifecycle_stage) == ("نورة", "+966501234567", "ar", "lead")
    assert Contact.objects.for_tenant(tenant).count() == 1
    identities = ContactIdentity.objects.for_tenant(tenant).values_list("channel_type", "external_id", "contact_id")
    assert list(identities) == [("whatsapp", "966501234567", first.pk)]


@pytest.mark.django_db
def test_contact_resolve_links_a_second_channel_by_phone_and_fills_blanks():
    tenant = TenantFactory()
    whatsapp = services.contact_resolve(tenant, channel_type="whatsapp", external_id="wa-1", phone="+966501234567")

    sms = services.contact_resolve(
        tenant, channel_type="sms", external_id="+966501234567", phone="0501234567", name="Noura", email="N@x.com"
    )

    assert sms.pk == whatsapp.pk
    assert (sms.name, sms.email) == ("Noura", "n@x.com")
    assert ContactIdentity.objects.for_tenant(tenant).filter(contact=sms).count() == 2


@pytest.mark.django_db
def test_contact_resolve_keeps_tenants_apart_and_drops_a_bad_phone():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    a = services.contact_resolve(tenant_a, channel_type="telegram", external_id="42", phone="not a phone")
    b = services.contact_resolve(tenant_b, channel_type="telegram", external_id="42")

    assert a.pk != b.pk
    assert a.phone == ""
    assert Contact.objects.for_tenant(tenant_a).count() == 1
    assert Contact.objects.for_tenant(tenant_b).count() == 1


@pytest.mark.django_db
def test_contact_resolve_refuses_an_empty_identity():
    tenant = TenantFactory()
    with pytest.raises(services.CrmError):
        services.contact_resolve(tenant, channel_type="whatsapp", external_id="  ")
    assert Contact.objects.for_tenant(tenant).count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_webhooks_of_a_new_sender_at_once_make_one_contact():
    tenant = TenantFactory()
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            barrier.wait()
            results.append(services.contact_resolve(tenant, channel_type="whatsapp", external_id="race").pk)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(results)) == 1 and len(results) == 4
    assert Contact.objects.for_tenant(tenant).count() == 1
    assert ContactIdentity.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db
def test_custom_attributes_are_checked_against_typed_definitions():
    tenant = TenantFactory()
    for key, kind, choices in [
        ("size", "choice", ["S", "M", "L"]),
        ("spend", "number", []),
        ("vip", "boolean", []),
        ("birthday", "date", []),
    ]:
        ContactAttributeDefinition.objects.for_tenant(tenant).create(
            tenant=tenant, key=key, label=key, type=kind, choices=choices
        )
    contact = services.contact_create(tenant, name="Sara", attributes={"size": "M", "spend": "١٢٠", "vip": "yes"})
    assert contact.attributes == {"size": "M", "spend": 120, "vip": True}

    updated = services.contact_update(tenant, contact.pk, attributes={"birthday": "1990-05-01", "vip": None})
    assert updated.attributes == {"size": "M", "spend": 120, "birthday": "1990-05-01"}

    for bad, code in [
        ({"colour": "red"}, "unknown_attribute"),
        ({"size": "XXL"}, "invalid_attribute"),
        ({"spend": "lots"}, "invalid_attribute"),
        ({"birthday": "yesterday"}, "invalid_attribute"),
        ({"vip": 3}, "invalid_attribute"),
    ]:
        with pytest.raises(services.CrmError) as error:
            services.contact_update(tenant, contact.pk, attributes=bad)
        assert error.value.code == code, bad
    assert Contact.objects.for_tenant(tenant).get(pk=contact.pk).attributes == updated.attributes


@pytest.mark.django_db
def test_another_tenants_attribute_definition_does_not_apply():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    ContactAttributeDefinition.objects.for_tenant(tenant_a).create(tenant=tenant_a, key="size", label="Size")
    with pytest.raises(services.CrmError):
        services.contact_create(tenant_b, attributes={"size": "M"})
    assert Contact.objects.for_tenant(tenant_b).count() == 0


@pytest.mark.django_db
def test_contact_tag_creates_labels_once_and_merges():
    tenant = TenantFactory()
    contact = ContactFactory(tenant=tenant)

    rows = services.contact_tag(tenant, contact, [" VIP ", "oud", "vip"])
    again = services.contact_tag(tenant, contact, ["oud", "wholesale"])

    assert [label.name for label in rows] == ["vip", "oud"]
    assert [label.name for label in again] == ["oud", "wholesale"]
    assert Contact.objects.for_tenant(tenant).get(pk=contact.pk).labels == ["vip", "oud", "wholesale"]
    assert sorted(Label.objects.for_tenant(tenant).values_list("name", flat=True)) == ["oud", "vip", "wholesale"]
    assert services.contact_untag(tenant, contact, ["OUD"]) == ["vip", "wholesale"]


@pytest.mark.django_db
def test_contact_tag_refuses_another_tenants_contact():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    contact = ContactFactory(tenant=tenant_a)
    with pytest.raises(Contact.DoesNotExist):
        services.contact_tag(tenant_b, contact, ["vip"])
    assert Label.objects.for_tenant(tenant_b).count() == 0
    assert Contact.objects.for_tenant(tenant_a).get(pk=contact.pk).labels == []


@pytest.mark.django_db
def test_lead_qualification_keeps_history_and_updates_the_contact():
    tenant = TenantFactory()
    contact = ContactFactory(tenant=tenant)

    first = services.lead_qualification_record(
        tenant, contact, scores={"budget": 40, "intent": 50}, fields={"budget": "500 SAR"}, labels=["perfume"]
    )
    second = services.lead_qualification_record(
        tenant, contact, scores={"overall": 80, "intent": 90}, fields={}, labels=["Hot"], source="agent"
    )

    assert (first.score, second.score) == (45, 80)
    history = list(LeadQualification.objects.for_tenant(tenant).filter(contact=contact).order_by("id"))
    assert [(row.score, row.source, row.labels) for row in history] == [
        (45, "extraction", ["perfume"]),
        (80, "agent", ["hot"]),
    ]
    contact = Contact.objects.for_tenant(tenant).get(pk=contact.pk)
    assert (contact.lead_score, contact.lifecycle_stage, contact.labels) == (80, "qualified", ["perfume", "hot"])


@pytest.mark.django_db
@pytest.mark.parametrize("scores", [{}, {"intent": 101}, {"intent": -1}, {"intent": "high"}, {"intent": True}])
def test_lead_qualification_refuses_bad_scores(scores):
    tenant = TenantFactory()
    contact = ContactFactory(tenant=tenant)
    with pytest.raises(services.CrmError):
        services.lead_qualification_record(tenant, contact, scores=scores, fields={}, labels=[])
    assert LeadQualification.objects.for_tenant(tenant).count() == 0
    assert Contact.objects.for_tenant(tenant).get(pk=contact.pk).lead_score is None


@pytest.mark.django_db
def test_contact_for_conversation_links_a_web_visitor_once():
    tenant = TenantFactory()
    conversation = conversation_services.conversation_start_visitor(tenant, "visitor-1")

    contact = services.contact_for_conversation(tenant, conversation)
    again = services.contact_for_conversation(tenant, conversation)

    assert contact is not None and again is not None and again.pk == contact.pk
    assert conversation.contact_id == contact.pk
    identity = ContactIdentity.objects.for_tenant(tenant).get()
    assert (identity.channel_type, identity.external_id, identity.contact_id) == ("web", "visitor-1", contact.pk)


@pytest.mark.django_db
def test_contact_for_conversation_is_none_for_the_companion():
    tenant = TenantFactory()
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user)
    conversation = conversation_services.conversation_start_companion(tenant, user)

    assert services.contact_for_conversation(tenant, conversation) is None
    assert Contact.objects.for_tenant(tenant).count() == 0


@pytest.mark.django_db
def test_contact_for_conversation_refuses_another_tenants_conversation():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    conversation = conversation_services.conversation_start_visitor(tenant_a, "visitor-1")
    with pytest.raises(Exception) as error:
        services.contact_for_conversation(tenant_b, conversation)
    assert type(error.value).__name__ == "DoesNotExist"
    assert Contact.objects.for_tenant(tenant_b).count() == 0


@pytest.mark.django_db
def test_note_add_and_bad_note():
    tenant = TenantFactory()
    contact = ContactFactory(tenant=tenant)
    note = services.note_add(tenant, contact, content=" prefers oud ")
    assert note.content == "prefers oud"
    with pytest.raises(services.CrmError):
        services.note_add(tenant, contact, content="   ")
    assert contact.notes.count() == 1


@pytest.mark.django_db
def test_follow_up_reminder_goes_to_the_assignee_once(django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    staff = UserFactory(email="agent@shop.test")
    MembershipFactory(tenant=tenant, user=staff, role="agent")
    contact = ContactFactory(tenant=tenant, name="Noura")
    due = services.follow_up_schedule(
        tenant,
        contact=contact,
        due_at=timezone.now() - timedelta(minutes=1),
        reason="Call about the oud",
        assignee=staff,
    )
    services.follow_up_schedule(tenant, contact=contact, due_at=timezone.now() + timedelta(days=1), reason="Later")

    with django_capture_on_commit_callbacks(execute=True):
        sent = services.follow_up_reminders_send(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        sent_again = services.follow_up_reminders_send(tenant)

    assert (sent, sent_again) == (1, 0)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["agent@shop.test"]
    assert "Call about the oud" in mail.outbox[0].body
    assert FollowUp.objects.for_tenant(tenant).get(pk=due.pk).reminded_at is not None


@pytest.mark.django_db
def test_follow_up_refuses_a_non_member_assignee_and_no_reason():
    tenant = TenantFactory()
    contact = ContactFactory(tenant=tenant)
    with pytest.raises(services.CrmError):
        services.follow_up_schedule(tenant, contact=contact, due_at=timezone.now(), reason="x", assignee=UserFactory())
    with pytest.raises(services.CrmError):
        services.follow_up_schedule(tenant, contact=contact, due_at=timezone.now(), reason=" ")
    assert FollowUp.objects.for_tenant(tenant).count() == 0


@pytest.mark.django_db
def test_beat_fans_out_follow_up_reminders_per_tenant_with_work(monkeypatch, django_capture_on_commit_callbacks):
    from crm import tasks

    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    owner = UserFactory(email="owner@a.test")
    MembershipFactory(tenant=tenant_a, user=owner, role="owner")
    services.follow_up_schedule(
        tenant_a, contact=ContactFactory(tenant=tenant_a), due_at=timezone.now() - timedelta(minutes=5), reason="Call"
    )
    services.follow_up_schedule(
        tenant_b, contact=ContactFactory(tenant=tenant_b), due_at=timezone.now() + timedelta(days=1), reason="Later"
    )
    fanned: list[tuple] = []
    monkeypatch.setattr(
        tasks.follow_up_reminders_tenant_task, "apply_async", lambda args, **options: fanned.append((args, options))
    )

    assert tasks.follow_up_reminders_task() == 1
    assert fanned == [((tenant_a.pk,), {"expires": 300})]
    assert tasks.follow_up_reminders_tenant_task(tenant_b.pk) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.follow_up_reminders_tenant_task(tenant_a.pk) == 1
    assert [message.to for message in mail.outbox] == [["owner@a.test"]]


@pytest.mark.django_db
def test_resolving_a_known_sender_records_activity():
    tenant = TenantFactory()
    contact = services.contact_resolve(tenant, channel_type="telegram", external_id="9")
    Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(last_activity_at=timezone.now() - timedelta(days=3))

    again = services.contact_resolve(tenant, channel_type="telegram", external_id="9")

    assert timezone.now() - Contact.objects.for_tenant(tenant).get(pk=again.pk).last_activity_at < timedelta(minutes=1)
