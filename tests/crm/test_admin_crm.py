"""The CRM in the back office: contacts (with CSV import and export), segments, follow-ups,
appointments, stock alerts and the stock-alert queue with "mark in stock and notify all"."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm import services, tasks
from crm.models import Contact, FollowUp, Product, Segment, StockAlert
from tests.factories import ContactFactory, ProductFactory


@pytest.fixture
def enqueued(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(tasks.stock_alert_notify_task, "apply_async", lambda args, **options: calls.append(args))
    return calls


def waiting(tenant, product, count):
    for _ in range(count):
        services.stock_alert_create(tenant, contact=ContactFactory(tenant=tenant), product=product)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    ["contact", "label", "segment", "followup", "appointment", "stockalert", "leadqualification", "businesshours"],
)
def test_crm_admin_lists_open_for_members(two_tenants, model):
    response = two_tenants.a.web.get(f"/admin/crm/{model}/")
    assert response.status_code == 200


@pytest.mark.django_db
def test_another_tenants_rows_are_404_in_the_admin(two_tenants):
    tenant = two_tenants.a.tenant
    contact = ContactFactory(tenant=tenant, name="Alpha secret")
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    alert, _ = services.stock_alert_create(tenant, contact=contact, product=product)
    segment = services.segment_save(tenant, name="VIPs", definition={"labels_all": ["vip"]})
    follow_up = services.follow_up_schedule(tenant, contact=contact, due_at=alert.expires_at, reason="call")
    for path in [
        f"/admin/crm/contact/{contact.pk}/change/",
        f"/admin/crm/stockalert/{alert.pk}/change/",
        f"/admin/crm/segment/{segment.pk}/change/",
        f"/admin/crm/followup/{follow_up.pk}/change/",
    ]:
        assert two_tenants.a.web.get(path).status_code == 200, path
        assert two_tenants.b.web.get(path).status_code == 404, path
    other_list = two_tenants.b.web.get("/admin/crm/contact/")
    assert "Alpha secret" not in other_list.content.decode()
    queue = two_tenants.b.web.get("/admin/crm/stockalertqueue/")
    assert product.sku not in queue.content.decode()


@pytest.mark.django_db
def test_contact_form_normalises_the_phone_and_refuses_bad_attributes(two_tenants):
    tenant = two_tenants.a.tenant
    data = {
        "name": "Noura",
        "email": "",
        "phone": "0501234567",
        "language": "ar",
        "lifecycle_stage": "lead",
        "labels": "VIP,oud",
        "attributes": "{}",
        "identities-TOTAL_FORMS": "0",
        "identities-INITIAL_FORMS": "0",
        "notes-TOTAL_FORMS": "0",
        "notes-INITIAL_FORMS": "0",
    }
    created = two_tenants.a.web.post("/admin/crm/contact/add/", data)
    assert created.status_code == 302, created.content.decode()[:3000]
    contact = Contact.objects.for_tenant(tenant).get()
    assert (contact.phone, contact.labels) == ("+966501234567", ["vip", "oud"])

    refused = two_tenants.a.web.post("/admin/crm/contact/add/", {**data, "attributes": '{"shoe": 42}'})
    assert refused.status_code == 200
    assert "Unknown custom attribute: shoe." in refused.content.decode()
    assert Contact.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db
def test_contact_csv_import_in_the_admin_all_or_nothing(two_tenants):
    tenant = two_tenants.a.tenant
    bad = SimpleUploadedFile("c.csv", b"name,phone\nGood,\nBad,12\n", content_type="text/csv")
    refused = two_tenants.a.web.post("/admin/crm/contact/import/", {"file": bad})
    assert refused.status_code == 200
    assert "Line 3: 12 is not a valid phone number." in refused.content.decode()
    assert Contact.objects.for_tenant(tenant).count() == 0

    good = SimpleUploadedFile("c.csv", "name,phone\nنورة,0501234567\n".encode(), content_type="text/csv")
    imported = two_tenants.a.web.post("/admin/crm/contact/import/", {"file": good})
    assert imported.status_code == 302
    assert list(Contact.objects.for_tenant(tenant).values_list("name", "phone")) == [("نورة", "+966501234567")]
    assert Contact.objects.for_tenant(two_tenants.b.tenant).count() == 0


@pytest.mark.django_db
def test_contact_csv_export_action_exports_only_the_tenants_selection(two_tenants):
    mine = ContactFactory(tenant=two_tenants.a.tenant, name="Mine", email="mine@example.com")
    theirs = ContactFactory(tenant=two_tenants.b.tenant, name="Theirs")
    response = two_tenants.a.web.post(
        "/admin/crm/contact/", {"action": "export_csv", "_selected_action": [mine.pk, theirs.pk]}
    )
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == [
        "name,email,phone,language,lifecycle_stage,blocked,labels",
        "Mine,mine@example.com,,ar,lead,false,",
    ]


@pytest.mark.django_db
def test_segment_form_checks_the_definition(two_tenants):
    response = two_tenants.a.web.post(
        "/admin/crm/segment/add/", {"name": "Bad", "description": "", "definition": '{"min_score": "x"}'}
    )
    assert response.status_code == 200
    assert "min_score is a whole number of 0 or more." in response.content.decode()
    assert Segment.objects.for_tenant(two_tenants.a.tenant).count() == 0


@pytest.mark.django_db
def test_stock_alert_queue_counts_per_product_and_restocks_and_notifies(
    two_tenants, enqueued, django_capture_on_commit_callbacks
):
    tenant = two_tenants.a.tenant
    popular = ProductFactory(tenant=tenant, stock_quantity=0, sku="POP")
    quiet = ProductFactory(tenant=tenant, stock_quantity=0, sku="QUIET")
    ProductFactory(tenant=tenant, stock_quantity=0, sku="NOBODY")
    waiting(tenant, popular, 3)
    waiting(tenant, quiet, 1)

    page = two_tenants.a.web.get("/admin/crm/stockalertqueue/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index("POP") < html.index("QUIET") and "NOBODY" not in html

    missing_quantity = two_tenants.a.web.post(
        "/admin/crm/stockalertqueue/",
        {"action": "mark_in_stock_and_notify", "_selected_action": [popular.pk], "quantity": ""},
        follow=True,
    )
    assert "Enter the new stock (1 or more) next to the action." in missing_quantity.content.decode()
    assert enqueued == []
    with django_capture_on_commit_callbacks(execute=True):
        done = two_tenants.a.web.post(
            "/admin/crm/stockalertqueue/",
            {"action": "mark_in_stock_and_notify", "_selected_action": [popular.pk, quiet.pk], "quantity": "12"},
            follow=True,
        )
    assert "2 products in stock; 4 waiting customers are being notified." in done.content.decode()
    assert sorted(enqueued) == sorted([(tenant.pk, popular.pk), (tenant.pk, quiet.pk)])
    assert Product.objects.for_tenant(tenant).get(pk=popular.pk).stock_quantity == 12


@pytest.mark.django_db
def test_the_queue_action_cannot_reach_another_tenants_product(
    two_tenants, enqueued, django_capture_on_commit_callbacks
):
    product = ProductFactory(tenant=two_tenants.a.tenant, stock_quantity=0)
    waiting(two_tenants.a.tenant, product, 1)
    with django_capture_on_commit_callbacks(execute=True):
        two_tenants.b.web.post(
            "/admin/crm/stockalertqueue/",
            {"action": "mark_in_stock_and_notify", "_selected_action": [product.pk], "quantity": "5"},
        )
    assert enqueued == []
    assert Product.objects.for_tenant(two_tenants.a.tenant).get(pk=product.pk).stock_quantity == 0


@pytest.mark.django_db
def test_an_admin_stock_edit_notifies_waiting_customers(two_tenants, enqueued, django_capture_on_commit_callbacks):
    tenant = two_tenants.a.tenant
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    waiting(tenant, product, 2)
    with django_capture_on_commit_callbacks(execute=True):
        response = two_tenants.a.web.post(
            "/admin/crm/product/",
            {
                "form-TOTAL_FORMS": "1",
                "form-INITIAL_FORMS": "1",
                "form-0-id": str(product.pk),
                "form-0-stock_quantity": "9",
                "_save": "Save",
            },
        )
    assert response.status_code == 302
    assert enqueued == [(tenant.pk, product.pk)]
    assert StockAlert.objects.for_tenant(tenant).filter(status="pending").count() == 2


@pytest.mark.django_db
def test_viewers_cannot_restock_from_the_queue(two_tenants, enqueued):
    from django.test import Client

    from morvo.models import Membership
    from tests.factories import UserFactory

    product = ProductFactory(tenant=two_tenants.a.tenant, stock_quantity=0)
    waiting(two_tenants.a.tenant, product, 1)
    viewer = UserFactory()
    Membership.objects.create(user=viewer, tenant=two_tenants.a.tenant, role="viewer")
    client = Client()
    client.force_login(viewer)
    client.post(
        "/admin/crm/stockalertqueue/",
        {"action": "mark_in_stock_and_notify", "_selected_action": [product.pk], "quantity": "5"},
    )
    assert Product.objects.for_tenant(two_tenants.a.tenant).get(pk=product.pk).stock_quantity == 0
    assert enqueued == []
    assert FollowUp.objects.all_tenants().count() == 0


@pytest.mark.django_db
def test_the_queue_page_speaks_arabic(two_tenants, settings):
    settings.LANGUAGE_CODE = "ar"
    product = ProductFactory(tenant=two_tenants.a.tenant, stock_quantity=0)
    waiting(two_tenants.a.tenant, product, 2)
    page = two_tenants.a.web.get("/admin/crm/stockalertqueue/", HTTP_ACCEPT_LANGUAGE="ar")
    html = page.content.decode()
    assert page.status_code == 200
    assert "العملاء المنتظرون" in html and "تعليم كمتوفر وإبلاغ الجميع" in html
