"""The chat pages in a real browser: the companion and the public customer chat, with
daphne serving the websocket, a Celery worker answering, and headless Chromium clicking."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, in_thread

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (CI installs Debian's chromium package)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")
expect = sync_api.expect

from django.utils import timezone  # noqa: E402

from conversations import services  # noqa: E402
from conversations.models import Conversation, Message  # noqa: E402
from morvo.models import Membership  # noqa: E402
from tests.factories import (  # noqa: E402
    MembershipFactory,
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # UserFactory's
REPLY_TIMEOUT_MS = 30_000


@pytest.fixture
def shop(db: Any) -> tuple[Any, Any]:
    tenant = TenantFactory(slug="dar-al-oud", name="دار العود", primary_color="#7a4b1f")
    owner = UserFactory(username="owner@dar.test", email="owner@dar.test")
    MembershipFactory(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    oud = ProductFactory(tenant=tenant, name_ar="دهن عود ملكي", name_en="Royal Oud Oil", price=Decimal("500.00"))
    order = OrderFactory(tenant=tenant, total=Decimal("1000.00"), created_at=timezone.now() - timedelta(days=2))
    OrderItemFactory(order=order, tenant=tenant, product=oud, quantity=2, unit_price=Decimal("500.00"))
    return tenant, owner


def wait_online(page: Any) -> None:
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "online", timeout=15_000)


def send(page: Any, text: str) -> None:
    page.locator("[data-input]").fill(text)
    page.locator("[data-input]").press("Enter")


def test_companion_chat_in_arabic(shop: tuple[Any, Any], server: str, browser: Any) -> None:
    tenant, owner = shop
    context = browser.new_context(locale="ar")
    page = context.new_page()

    page.goto(f"{server}/accounts/login/")
    page.locator("input[name=login]").fill(owner.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(f"{server}/app/")

    page.goto(f"{server}/app/chat/")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.locator("[data-new-conversation]").click()
    page.wait_for_url(re.compile(r".*/app/chat/\d+/$"))
    conversation_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    wait_online(page)
    expect(page.locator("[data-send]")).to_be_disabled()

    send(page, "كيف كانت مبيعات هذا الأسبوع؟")
    expect(page.locator(".message--user .message__content").first).to_have_text("كيف كانت مبيعات هذا الأسبوع؟")
    reply = page.locator(".message--assistant").first
    # The analytics report, from the demo store's own orders, with its KPI cards.
    expect(reply.locator(".message__content")).to_contain_text("ملخص أداء", timeout=REPLY_TIMEOUT_MS)
    expect(reply.locator(".message__content")).to_have_attribute("dir", "auto")
    expect(reply.locator(".kpi")).to_have_count(4)
    expect(reply.locator(".kpi__label").first).to_have_text("الإيرادات (30 يومًا)")
    expect(reply.locator(".kpi__value").first).to_have_text("1,000 ريال")
    expect(reply.locator(".kpi__value").last).to_have_text("دهن عود ملكي")

    chip = reply.locator("[data-suggestion]").first
    suggestion = chip.inner_text()
    assert suggestion == "اقترح حملة للمنتج الأكثر مبيعًا"
    chip.click()
    expect(page.locator(".message--user .message__content").nth(1)).to_have_text(suggestion)
    expect(page.locator(".message--assistant")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
    # Only the latest reply offers suggestions; the campaign plan comes with a copy button.
    expect(page.locator(".message--assistant").first.locator("[data-suggestion]")).to_have_count(0)
    latest = page.locator(".message--assistant").nth(1)
    expect(latest.locator("[data-suggestion]").first).to_be_visible()
    expect(latest.locator(".attachment .attachment__copy")).to_have_count(1)
    expect(latest.locator(".attachment__title")).to_have_text("خطة الحملة")

    page.reload()
    wait_online(page)
    expect(page.locator("[data-messages] > .message")).to_have_count(4)
    expect(page.locator(".message--user .message__content").nth(1)).to_have_text(suggestion)

    def stored() -> list[tuple[str, str]]:
        messages = Message.objects.for_tenant(tenant).filter(conversation_id=conversation_id)
        return list(messages.order_by("id").values_list("role", "content"))

    rows = in_thread(stored)
    assert [role for role, _ in rows] == ["user", "assistant", "user", "assistant"]
    assert rows[0][1] == "كيف كانت مبيعات هذا الأسبوع؟"
    assert rows[2][1] == suggestion
    context.close()


def test_visitor_sees_html_as_text_and_the_takeover_live(shop: tuple[Any, Any], server: str, browser: Any) -> None:
    tenant, owner = shop
    context = browser.new_context(locale="ar")
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    page.goto(f"{server}/c/{tenant.slug}/")
    expect(page.locator(".chat__title")).to_have_text("دار العود")
    wait_online(page)

    hostile = "<img src=x onerror=alert(1)>مرحبا"
    send(page, hostile)
    expect(page.locator(".message--user .message__content").first).to_have_text(hostile)
    expect(page.locator(".message--assistant")).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
    expect(page.locator(".message--assistant .message__content").first).not_to_be_empty()
    assert page.locator("[data-messages] img").count() == 0

    def conversation_id() -> int:
        return Conversation.objects.for_tenant(tenant).get(kind=Conversation.Kind.CUSTOMER).pk

    expect(page.locator("[data-person-banner]")).to_be_hidden()
    # The operator, in a browser of their own, takes over from the back office.
    operator_context = browser.new_context(locale="ar")
    operator = operator_context.new_page()
    operator.on("dialog", on_dialog)  # the hostile message is on the operator's page too
    operator.goto(f"{server}/accounts/login/?next=/admin/")
    operator.locator("input[name=login]").fill(owner.email)
    operator.locator("input[name=password]").fill(PASSWORD)
    operator.locator("form button[type=submit]").last.click()
    operator.wait_for_url(re.compile(r".*/admin/$"))
    operator.goto(f"{server}/admin/conversations/conversation/{in_thread(conversation_id)}/change/")
    expect(operator.locator(".operator-message--user .operator-message__content").first).to_have_text(hostile)
    assert operator.locator(".operator-message img").count() == 0
    operator.locator('form[action$="/act/take-over/"] button[type=submit]').click()
    operator.wait_for_load_state()

    def language() -> str:
        return Conversation.objects.for_tenant(tenant).get(kind=Conversation.Kind.CUSTOMER).language

    conversation_language = in_thread(language)  # the notice speaks the conversation's language
    expect(page.locator(".message--system .message__notice")).to_have_text(
        services.TAKEOVER_NOTICE[conversation_language], timeout=15_000
    )
    expect(page.locator("[data-person-banner]")).to_be_visible()
    expect(page.locator("[data-person-banner]")).to_contain_text("دار العود")

    page.reload()  # the history shows it as text too, and the person is still there
    wait_online(page)
    expect(page.locator(".message--user .message__content").first).to_have_text(hostile)
    expect(page.locator("[data-person-banner]")).to_be_visible()
    assert page.locator("[data-messages] img").count() == 0
    assert dialogs == []
    assert in_thread(lambda: Conversation.objects.for_tenant(tenant).get(kind="customer").handled_by) == "human"
    operator_context.close()
    context.close()


def test_the_page_reconnects_on_its_own_and_sends_what_was_written_meanwhile(
    shop: tuple[Any, Any], tmp_path: Any, browser: Any
) -> None:
    from contextlib import ExitStack

    from tests import live

    tenant, _ = shop
    port = live.free_port()
    env = live.live_env()
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as services_running:
        services_running.enter_context(live.running(live.worker_command(), env, tmp_path / "worker.log"))
        first_server = ExitStack()
        first_server.enter_context(live.running(live.daphne_command(port), env, tmp_path / "daphne-1.log"))
        live.wait_for_http(f"{base}/healthz")

        context = browser.new_context(locale="ar")
        page = context.new_page()
        page.goto(f"{base}/c/{tenant.slug}/")
        wait_online(page)
        send(page, "مرحبا")
        expect(page.locator(".message--assistant")).to_have_count(1, timeout=REPLY_TIMEOUT_MS)

        # The server goes away: the page says so and keeps trying, with backoff.
        first_server.close()
        expect(page.locator("[data-connection]")).to_have_attribute("data-state", "reconnecting", timeout=15_000)
        # What the visitor writes meanwhile waits, marked as sending, instead of being lost.
        send(page, "هل دهن العود متوفر؟")
        waiting = page.locator(".message--user").nth(1)
        expect(waiting).to_have_class(re.compile(r"\bmessage--sending\b"))

        # The server is back on the same address: the page reconnects by itself, sends the
        # waiting message once, and its reply arrives.
        services_running.enter_context(live.running(live.daphne_command(port), env, tmp_path / "daphne-2.log"))
        live.wait_for_http(f"{base}/healthz")
        expect(page.locator("[data-connection]")).to_have_attribute("data-state", "online", timeout=40_000)
        expect(page.locator(".message--assistant")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
        expect(waiting).not_to_have_class(re.compile(r"\bmessage--sending\b"))

        def stored() -> list[tuple[str, str]]:
            conversation = Conversation.objects.for_tenant(tenant).get(kind=Conversation.Kind.CUSTOMER)
            messages = Message.objects.for_tenant(tenant).filter(conversation=conversation)
            return list(messages.order_by("id").values_list("role", "content"))

        rows = in_thread(stored)
        assert [role for role, _ in rows] == ["user", "assistant", "user", "assistant"]
        assert rows[2][1] == "هل دهن العود متوفر؟"
        context.close()
