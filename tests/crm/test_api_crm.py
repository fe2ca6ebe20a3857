"""The CRM endpoints: contacts (identities, tags, notes, CSV), labels, attributes, segments,
follow-ups, appointments, stock alerts, the product CSV import."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm import services, tasks
from crm.models import (
    Appointment,
    Contact,
    ContactAttributeDefinition,
    ContactIdentity,
    FollowUp,
    Label,
    Note,
    Product,
    Segment,
    StockAlert,
)
from tests.crm.conftest import next_weekday, riyadh
from tests.factories import ContactFactory, ProductFactory

NOT_FOUND = {"error": {"status": 404, "code": "not_found", "message": "Not found."}}


def fields_error(response, field):
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] in ("invalid", *body.get("fields", {}).keys(), body["code"])
    return body["fields"][field]


# --- contacts ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_read_and_update_a_contact(two_tenants):
    api = two_tenants.a.api
    ContactAttributeDefinition.objects.for_tenant(two_tenants.a.tenant).create(
        tenant=two_tenants.a.tenant, key="size", label="Size", type="choice", choices=["S", "M"]
    )

    created = api.post(
        "/api/v1/contacts",
        {"name": "نورة", "phone": "0501234567", "language": "ar", "labels": ["VIP"], "attributes": {"size": "M"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["phone"], body["labels"], body["attributes"], body["lifecycle_stage"]) == (
        "+966501234567",
        ["vip"],
        {"size": "M"},
        "lead",
    )
    updated = api.patch(
        f"/api/v1/contacts/{body['id']}", {"blocked": True, "attributes": {"size": None}}, format="json"
    )
    assert updated.status_code == 200
    assert (updated.json()["blocked"], updated.json()["attributes"]) == (True, {})
    listed = api.get("/api/v1/contacts?label=vip")
    assert [row["id"] for row in listed.json()["results"]] == [body["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"language": "fr"}, "language"),
        ({"attributes": {"unknown": 1}}, "attributes"),
        ({"lead_score": 90}, "lead_score"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_bad_contact_input_is_a_400_and_writes_nothing(two_tenants, body, field):
    response = two_tenants.a.api.post("/api/v1/contacts", body, format="json")
    assert field in fields_error(response, field) or fields_error(response, field)
    assert Contact.objects.for_tenant(two_tenants.a.tenant).count() == 0


@pytest.mark.django_db
def test_another_tenants_contact_is_a_404_everywhere(two_tenants):
    contact = ContactFactory(tenant=two_tenants.a.tenant)
    two_tenants.assert_isolated(f"/api/v1/contacts/{contact.pk}")
    two_tenants.assert_isolated(f"/api/v1/contacts/{contact.pk}", "patch", {"name": "x"})
    two_tenants.assert_isolated(f"/api/v1/contacts/{contact.pk}/notes")
    two_tenants.assert_isolated(f"/api/v1/contacts/{contact.pk}/qualifications")
    for action, data in [
        ("tag", {"labels": ["x"]}),
        ("untag", {"labels": ["x"]}),
        ("notes", {"content": "hi"}),
        ("identities", {"channel_type": "sms", "external_id": "+966501234567"}),
    ]:
        response = two_tenants.b.api.post(f"/api/v1/contacts/{contact.pk}/{action}", data, format="json")
        assert (response.status_code, response.json()) == (404, NOT_FOUND), action
    assert Note.objects.for_tenant(two_tenants.a.tenant).count() == 0
    assert ContactIdentity.objects.all_tenants().count() == 0
    assert Label.objects.all_tenants().count() == 0
    assert two_tenants.b.api.get("/api/v1/contacts").json()["count"] == 0


@pytest.mark.django_db
def test_anonymous_and_viewer_callers_are_refused(two_tenants):
    contact = ContactFactory(tenant=two_tenants.a.tenant)
    anonymous = APIClient()
    for path in ["/api/v1/contacts", "/api/v1/stock-alerts", "/api/v1/segments", "/api/v1/appointments"]:
        assert anonymous.get(path).status_code == 401, path
    _, _, viewer = two_tenants.a.member("viewer")
    assert viewer.get("/api/v1/contacts").status_code == 200
    refused = viewer.patch(f"/api/v1/contacts/{contact.pk}", {"name": "x"}, format="json")
    assert refused.status_code == 403
    _, _, agent = two_tenants.a.member("agent")
    assert agent.post(f"/api/v1/contacts/{contact.pk}/notes", {"content": "called"}, format="json").status_code == 201
    assert agent.post("/api/v1/segments", {"name": "x"}, format="json").status_code == 403
    assert Contact.objects.for_tenant(two_tenants.a.tenant).get().name == contact.name


@pytest.mark.django_db
def test_tags_notes_identities_and_qualifications(two_tenants):
    tenant = two_tenants.a.tenant
    contact = ContactFactory(tenant=tenant)
    api = two_tenants.a.api

    tagged = api.post(f"/api/v1/contacts/{contact.pk}/tag", {"labels": ["Oud", "vip"]}, format="json")
    note = api.post(f"/api/v1/contacts/{contact.pk}/notes", {"content": "prefers oud"}, format="json")
    identity = api.post(
        f"/api/v1/contacts/{contact.pk}/identities", {"channel_type": "telegram", "external_id": "555"}, format="json"
    )
    other = ContactFactory(tenant=tenant)
    taken = api.post(
        f"/api/v1/contacts/{other.pk}/identities", {"channel_type": "telegram", "external_id": "555"}, format="json"
    )
    services.lead_qualification_record(tenant, contact, scores={"overall": 70}, fields={}, labels=[])

    assert tagged.json()["labels"] == ["oud", "vip"]
    assert (note.status_code, note.json()["content"], note.json()["author"]) == (
        201,
        "prefers oud",
        two_tenants.a.owner.pk,
    )
    assert identity.status_code == 201
    assert taken.status_code == 400 and taken.json()["error"]["fields"] == {
        "external_id": ["This identity belongs to another contact."]
    }
    assert [row["score"] for row in api.get(f"/api/v1/contacts/{contact.pk}/qualifications").json()["results"]] == [70]
    assert api.get(f"/api/v1/contacts/{contact.pk}/notes").json()["count"] == 1


# --- CSV --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_contacts_csv_import_then_export_round_trip(two_tenants):
    tenant = two_tenants.a.tenant
    ContactAttributeDefinition.objects.for_tenant(tenant).create(tenant=tenant, key="city", label="City")
    ContactFactory(tenant=tenant, name="Old name", email="noura@example.com")
    csv_body = (
        "name,email,phone,language,labels,attribute:city\n"
        "Noura,noura@example.com,0501234567,ar,vip;oud,Riyadh\n"
        "Sara,sara@example.com,,en,,Jeddah\n"
    )

    response = two_tenants.a.api.generic("POST", "/api/v1/contacts/import", csv_body, content_type="text/csv")

    assert response.status_code == 200, response.content
    assert response.json() == {"created": 1, "updated": 1}
    noura = Contact.objects.for_tenant(tenant).get(email="noura@example.com")
    assert (noura.name, noura.phone, noura.labels, noura.attributes) == (
        "Noura",
        "+966501234567",
        ["vip", "oud"],
        {"city": "Riyadh"},
    )
    exported = two_tenants.a.api.get("/api/v1/contacts/export")
    assert exported.status_code == 200
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(exported.streaming_content).decode().splitlines()
    assert lines[0] == "name,email,phone,language,lifecycle_stage,blocked,labels,attribute:city"
    assert sorted(lines[1:]) == [
        "Noura,noura@example.com,+966501234567,ar,lead,false,vip;oud,Riyadh",
        "Sara,sara@example.com,,en,lead,false,,Jeddah",
    ]
    assert two_tenants.b.api.get("/api/v1/contacts/export").streaming_content is not None
    other_lines = b"".join(two_tenants.b.api.get("/api/v1/contacts/export").streaming_content).decode().splitlines()
    assert other_lines == ["name,email,phone,language,lifecycle_stage,blocked,labels"]


@pytest.mark.django_db
def test_a_csv_with_bad_rows_names_their_lines_and_imports_nothing(two_tenants):
    csv_body = "name,email,phone\nGood,good@example.com,\nBad phone,,12\n,,\nDup,good@example.com,\nNo mail,x@,\n"
    response = two_tenants.a.api.generic("POST", "/api/v1/contacts/import", csv_body, content_type="text/csv")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == [
        "Line 3: 12 is not a valid phone number.",
        "Line 5: Same email as line 2.",
        "Line 6: x@ is not an e-mail address.",
    ]
    assert Contact.objects.for_tenant(two_tenants.a.tenant).count() == 0


@pytest.mark.django_db
def test_csv_import_refuses_unknown_columns_wrong_type_too_large_and_agents(two_tenants, settings):
    api = two_tenants.a.api
    unknown = api.generic("POST", "/api/v1/contacts/import", "name,shoe\nA,42\n", content_type="text/csv")
    assert unknown.json()["error"]["fields"]["file"] == ["Line 1: Unknown columns: shoe"]
    assert api.post("/api/v1/contacts/import", {"a": 1}, format="json").status_code == 415
    settings.CRM_CSV_MAX_BYTES = 20
    too_large = api.generic("POST", "/api/v1/contacts/import", "name\n" + "x" * 40 + "\n", content_type="text/csv")
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "payload_too_large")
    _, _, agent = two_tenants.a.member("agent")
    assert agent.generic("POST", "/api/v1/contacts/import", "name\nA\n", content_type="text/csv").status_code == 403
    assert Contact.objects.for_tenant(two_tenants.a.tenant).count() == 0


@pytest.mark.django_db
def test_product_csv_import_creates_updates_and_restock_notifies(
    two_tenants, monkeypatch, django_capture_on_commit_callbacks
):
    tenant = two_tenants.a.tenant
    enqueued: list[tuple] = []
    monkeypatch.setattr(tasks.stock_alert_notify_task, "apply_async", lambda args, **options: enqueued.append(args))
    product = ProductFactory(tenant=tenant, sku="OUD-1", stock_quantity=0)
    services.stock_alert_create(tenant, contact=ContactFactory(tenant=tenant), product=product)
    csv_body = "sku,name_ar,price,stock_quantity\nOUD-1,,,7\nMSK-2,مسك,٩٩.٥,3\n"

    with django_capture_on_commit_callbacks(execute=True):
        response = two_tenants.a.api.generic("POST", "/api/v1/products/import", csv_body, content_type="text/csv")

    assert response.status_code == 200, response.content
    assert response.json() == {"created": 1, "updated": 1}
    assert Product.objects.for_tenant(tenant).get(sku="OUD-1").stock_quantity == 7
    new = Product.objects.for_tenant(tenant).get(sku="MSK-2")
    assert (new.name_ar, str(new.price), new.stock_quantity) == ("مسك", "99.50", 3)
    assert enqueued == [(tenant.pk, product.pk)]
    assert Product.objects.for_tenant(two_tenants.b.tenant).count() == 0


@pytest.mark.django_db
def test_product_csv_import_with_a_bad_row_changes_nothing(two_tenants):
    tenant = two_tenants.a.tenant
    ProductFactory(tenant=tenant, sku="OUD-1", stock_quantity=0)
    csv_body = "sku,name_ar,price,stock_quantity\nOUD-1,,,7\nNEW,,10,1\nOUD-2,عود,-5,1\n"
    response = two_tenants.a.api.generic("POST", "/api/v1/products/import", csv_body, content_type="text/csv")
    assert response.json()["error"]["fields"]["file"] == [
        "Line 3: A new product needs: name_ar",
        "Line 4: The price must be a number.",
    ]
    assert Product.objects.for_tenant(tenant).get(sku="OUD-1").stock_quantity == 0
    assert Product.objects.for_tenant(tenant).count() == 1


# --- labels, attributes, segments ---------------------------------------------------------------


@pytest.mark.django_db
def test_labels_and_attribute_definitions(two_tenants):
    api = two_tenants.a.api
    label = api.post("/api/v1/labels", {"name": " VIP ", "color": "#ff0000"}, format="json")
    duplicate = api.post("/api/v1/labels", {"name": "vip"}, format="json")
    attribute = api.post(
        "/api/v1/contact-attributes", {"key": "size", "label": "Size", "type": "choice"}, format="json"
    )

    assert (label.status_code, label.json()["name"]) == (201, "vip")
    assert duplicate.json()["error"]["fields"] == {"name": ["This label exists."]}
    assert attribute.json()["error"]["fields"] == {"choices": ["A choice attribute needs choices."]}
    two_tenants.assert_isolated(f"/api/v1/labels/{label.json()['id']}")
    two_tenants.assert_isolated(f"/api/v1/labels/{label.json()['id']}", "delete", {})
    created = api.post("/api/v1/contact-attributes", {"key": "city", "label": "City"}, format="json")
    two_tenants.assert_isolated(f"/api/v1/contact-attributes/{created.json()['id']}")


@pytest.mark.django_db
def test_segments_are_evaluated_in_sql(two_tenants, django_assert_max_num_queries):
    tenant = two_tenants.a.tenant
    api = two_tenants.a.api
    ContactAttributeDefinition.objects.for_tenant(tenant).create(tenant=tenant, key="city", label="City")
    hot = services.contact_create(tenant, name="Hot", labels=["vip", "oud"], attributes={"city": "Riyadh"})
    services.lead_qualification_record(tenant, hot, scores={"overall": 85}, fields={}, labels=[])
    services.contact_resolve(tenant, channel_type="whatsapp", external_id="1")
    cold = services.contact_create(tenant, name="Cold", labels=["vip"], attributes={"city": "Riyadh"})
    services.lead_qualification_record(tenant, cold, scores={"overall": 20}, fields={}, labels=[])
    services.contact_create(tenant, name="Blocked", labels=["vip", "oud"], blocked=True)

    created = api.post(
        "/api/v1/segments",
        {
            "name": "Hot oud buyers",
            "definition": {
                "labels_all": ["VIP"],
                "labels_any": ["oud"],
                "min_score": 60,
                "attributes": {"city": "Riyadh"},
            },
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    segment_id = created.json()["id"]
    with django_assert_max_num_queries(7):
        members = api.get(f"/api/v1/segments/{segment_id}/contacts")
    assert [row["name"] for row in members.json()["results"]] == ["Hot"]
    assert api.get(f"/api/v1/segments/{segment_id}").json()["contact_count"] == 1
    whatsapp = api.post(
        "/api/v1/segments", {"name": "On WhatsApp", "definition": {"channel_types": ["whatsapp"]}}, format="json"
    )
    assert api.get(f"/api/v1/segments/{whatsapp.json()['id']}").json()["contact_count"] == 1

    bad = api.post("/api/v1/segments", {"name": "Bad", "definition": {"min_score": "high"}}, format="json")
    unknown = api.post("/api/v1/segments", {"name": "Bad", "definition": {"favourite": 1}}, format="json")
    assert bad.json()["error"]["fields"] == {"definition": ["min_score is a whole number of 0 or more."]}
    assert unknown.json()["error"]["fields"] == {"definition": ["Unknown segment conditions: favourite"]}
    assert Segment.objects.for_tenant(tenant).count() == 2
    two_tenants.assert_isolated(f"/api/v1/segments/{segment_id}")
    two_tenants.assert_isolated(f"/api/v1/segments/{segment_id}/contacts")
    two_tenants.assert_isolated(f"/api/v1/segments/{segment_id}", "patch", {"name": "Mine"})


# --- follow-ups and appointments --------------------------------------------------------------


@pytest.mark.django_db
def test_follow_ups_api(two_tenants):
    tenant = two_tenants.a.tenant
    contact = ContactFactory(tenant=tenant)
    other_contact = ContactFactory(tenant=two_tenants.b.tenant)
    api = two_tenants.a.api
    due = (timezone.now() + timedelta(days=1)).isoformat()

    created = api.post(
        "/api/v1/follow-ups", {"contact": contact.pk, "due_at": due, "reason": "Call back"}, format="json"
    )
    foreign = api.post("/api/v1/follow-ups", {"contact": other_contact.pk, "due_at": due, "reason": "x"}, format="json")
    stranger = api.post(
        "/api/v1/follow-ups",
        {"contact": contact.pk, "due_at": due, "reason": "x", "assignee": two_tenants.b.owner.pk},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert foreign.status_code == 400 and list(foreign.json()["error"]["fields"]) == ["contact"]
    assert stranger.status_code == 400 and list(stranger.json()["error"]["fields"]) == ["assignee"]
    follow_up_id = created.json()["id"]
    done = api.patch(f"/api/v1/follow-ups/{follow_up_id}", {"status": "done"}, format="json")
    assert (done.json()["status"], done.json()["completed_at"] is not None) == ("done", True)
    assert FollowUp.objects.for_tenant(tenant).count() == 1
    two_tenants.assert_isolated(f"/api/v1/follow-ups/{follow_up_id}")
    two_tenants.assert_isolated(f"/api/v1/follow-ups/{follow_up_id}", "patch", {"status": "cancelled"})


@pytest.mark.django_db
def test_appointments_api_books_refuses_clashes_and_lists_slots(two_tenants):
    api = two_tenants.a.api
    day = next_weekday(0)
    start = riyadh(day, 11).isoformat()

    booked = api.post(
        "/api/v1/appointments", {"service": "Haircut", "start": start, "duration_minutes": 30}, format="json"
    )
    clash = api.post("/api/v1/appointments", {"service": "Colour", "start": start}, format="json")
    past = api.post(
        "/api/v1/appointments",
        {"service": "Colour", "start": (timezone.now() - timedelta(days=1)).isoformat()},
        format="json",
    )
    slots = api.get(f"/api/v1/appointments/slots?date={day.isoformat()}&duration_minutes=30")
    bad_slots = api.get("/api/v1/appointments/slots?date=tomorrow")

    assert booked.status_code == 201, booked.content
    assert clash.json()["error"]["fields"] == {"start": ["That time is already taken. Please choose another time."]}
    assert past.json()["error"]["fields"] == {
        "start": ["That time has already passed. Please choose a time in the future."]
    }
    assert len(slots.json()["slots"]) == 11
    assert bad_slots.status_code == 400
    assert Appointment.objects.for_tenant(two_tenants.a.tenant).count() == 1
    appointment_id = booked.json()["id"]
    cancelled = api.patch(f"/api/v1/appointments/{appointment_id}", {"status": "cancelled"}, format="json")
    assert cancelled.json()["status"] == "cancelled"
    two_tenants.assert_isolated(f"/api/v1/appointments/{appointment_id}")
    two_tenants.assert_isolated(f"/api/v1/appointments/{appointment_id}", "patch", {"status": "booked"})
    assert len(two_tenants.b.api.get(f"/api/v1/appointments/slots?date={day.isoformat()}").json()["slots"]) == 12


# --- stock alerts -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_stock_alerts_api(two_tenants, monkeypatch, django_capture_on_commit_callbacks):
    tenant = two_tenants.a.tenant
    api = two_tenants.a.api
    enqueued: list[tuple] = []
    monkeypatch.setattr(tasks.stock_alert_notify_task, "apply_async", lambda args, **options: enqueued.append(args))
    contact = ContactFactory(tenant=tenant)
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    foreign_product = ProductFactory(tenant=two_tenants.b.tenant, stock_quantity=0)

    created = api.post(
        "/api/v1/stock-alerts",
        {"contact": contact.pk, "product": product.pk, "channel_type": "whatsapp", "message_text": "back?"},
        format="json",
    )
    again = api.post("/api/v1/stock-alerts", {"contact": contact.pk, "product": product.pk}, format="json")
    foreign = api.post("/api/v1/stock-alerts", {"contact": contact.pk, "product": foreign_product.pk}, format="json")

    assert created.status_code == 201, created.content
    assert (again.status_code, again.json()["id"]) == (200, created.json()["id"])
    assert foreign.status_code == 400 and list(foreign.json()["error"]["fields"]) == ["product"]
    assert api.get("/api/v1/stock-alerts/queue").json() == [
        {"product_id": product.pk, "sku": product.sku, "name": product.name_ar, "stock_quantity": 0, "pending": 1}
    ]
    out_of_stock = api.post("/api/v1/stock-alerts/notify", {"product": product.pk}, format="json")
    assert out_of_stock.json()["error"]["fields"] == {"product": ["The product is not in stock."]}
    Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=2)
    with django_capture_on_commit_callbacks(execute=True):
        queued = api.post("/api/v1/stock-alerts/notify", {"product": product.pk}, format="json")
    assert (queued.status_code, enqueued) == (202, [(tenant.pk, product.pk)])
    assert (
        two_tenants.b.api.post("/api/v1/stock-alerts/notify", {"product": product.pk}, format="json").status_code == 400
    )

    alert_id = created.json()["id"]
    two_tenants.assert_isolated(f"/api/v1/stock-alerts/{alert_id}")
    assert two_tenants.b.api.post(f"/api/v1/stock-alerts/{alert_id}/cancel").json() == NOT_FOUND
    assert two_tenants.b.api.get("/api/v1/stock-alerts/queue").json() == []
    cancelled = api.post(f"/api/v1/stock-alerts/{alert_id}/cancel")
    twice = api.post(f"/api/v1/stock-alerts/{alert_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert twice.json()["error"]["fields"] == {"status": ["Only a pending alert can be cancelled."]}
    assert api.get("/api/v1/stock-alerts?status=cancelled").json()["count"] == 1
    assert StockAlert.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db
def test_imports_never_match_another_tenants_rows(two_tenants):
    theirs_product = ProductFactory(tenant=two_tenants.b.tenant, sku="OUD-1", stock_quantity=0)
    theirs_contact = ContactFactory(tenant=two_tenants.b.tenant, email="noura@example.com", name="Theirs")

    products = two_tenants.a.api.generic(
        "POST", "/api/v1/products/import", "sku,name_ar,price,stock_quantity\nOUD-1,عود,10,5\n", content_type="text/csv"
    )
    contacts = two_tenants.a.api.generic(
        "POST", "/api/v1/contacts/import", "name,email\nMine,noura@example.com\n", content_type="text/csv"
    )

    assert (products.json(), contacts.json()) == ({"created": 1, "updated": 0}, {"created": 1, "updated": 0})
    theirs_product.refresh_from_db()
    theirs_contact.refresh_from_db()
    assert (theirs_product.stock_quantity, theirs_contact.name) == (0, "Theirs")
    assert Product.objects.for_tenant(two_tenants.a.tenant).get().stock_quantity == 5
    assert (
        APIClient().generic("POST", "/api/v1/products/import", "sku\nX\n", content_type="text/csv").status_code == 401
    )


@pytest.mark.django_db
def test_refusals_follow_accept_language(two_tenants):
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = two_tenants.a.api.post(
        "/api/v1/appointments", {"service": "قص شعر", "start": past}, format="json", HTTP_ACCEPT_LANGUAGE="ar"
    )
    assert response.json()["error"]["fields"] == {"start": ["هذا الوقت قد مضى. يُرجى اختيار وقت في المستقبل."]}
    bad_csv = two_tenants.a.api.generic(
        "POST", "/api/v1/contacts/import", "name,phone\nنورة,12\n", content_type="text/csv", HTTP_ACCEPT_LANGUAGE="ar"
    )
    assert bad_csv.json()["error"]["fields"]["file"] == ["السطر 2: 12 ليس رقم هاتف صالحًا."]
    assert Appointment.objects.for_tenant(two_tenants.a.tenant).count() == 0
