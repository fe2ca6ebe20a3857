"""Stock-alert benchmark: ``.venv/bin/python bench/stock_alerts.py``.

10,000 pending stock alerts over 50 out-of-stock products, spread over four channels (web
chat, WhatsApp, Telegram, SMS: one inbox each, a contact with an identity and a conversation
per alert). All 50 products are restocked at once (``crm.services.product_update``, as the
API's stock patch does), and while the workers notify, the hourly check is fired twice more,
so three triggers race over every product. Measured: the time from the restock until every
alert is notified, notifications per second, and duplicates (alerts with more than one
notification message, messages for an alert that is not notified).

Then the delivery: every WhatsApp, Telegram and SMS notification leaves through the outbox to
fake provider APIs on 127.0.0.1 (``tests/fake_providers.py``: the Graph API, the Bot API and
Twilio's Messages resource, checking tokens and request shapes), the bench inboxes allowing
``--provider-rate`` messages a second each (a sender cleared for volume; the adapters'
defaults are 80, 30 and 1). Measured: the time until the outbox is empty, requests per
second, and duplicates at the providers (a recipient who got more than one request). Web-chat
notifications are delivered on the site's socket and need no provider.

Runs in its own database (``morvo_bench_stock_alerts``) on the embedded server, with real
Celery workers on the embedded SQL broker (``--workers`` processes of ``--concurrency``).
Prints a table with the targets, writes
``bench/results/stock_alerts-<timestamp>.json``; exit status 1 on errors (a lost or
duplicated notification, a channel notification not delivered, a provider reached twice for
one recipient), 0 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
# Run as a script, bench/ comes first on sys.path, where bench/platform.py would shadow the
# standard library's ``platform``: drop it before anything imports that.
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]

_spec = importlib.util.spec_from_file_location("morvo_bench_platform", BASE_DIR / "bench" / "platform.py")
assert _spec is not None and _spec.loader is not None
bp = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bp
_spec.loader.exec_module(bp)

say = bp.say
RESULTS_DIR: Path = bp.RESULTS_DIR
LOG_DIR: Path = bp.LOG_DIR
DATABASE = "morvo_bench_stock_alerts"
TENANT_SLUG = "bench-stock-alerts"
CHANNELS = ["web", "whatsapp", "telegram", "sms"]

TIME_TARGET_S = 60.0
DUPLICATES_TARGET = 0


def environment(database: str) -> dict[str, str]:
    """The platform bench's environment for this database (no API is called here, so its
    throttle rates do not matter)."""
    return dict(bp.bench_environment(argparse.Namespace(database=database, throttle_rate="100000/s", debug=False)))


def inbox_configs(provider_url: str, rate: int) -> dict[str, dict[str, Any]]:
    """The bench inboxes' settings: each provider API at the fake server."""
    from tests import fake_providers as fake

    common = {"api_base_url": provider_url, "rate_per_second": rate}
    return {
        "web": {},
        "whatsapp": {
            **common,
            "phone_number_id": "100000000000001",
            "access_token": fake.ACCESS_TOKEN,
            "app_secret": "bench-app-secret",
            "verify_token": "bench-verify-token",
        },
        "telegram": {**common, "bot_token": fake.BOT_TOKEN, "secret_token": "bench-secret-token"},
        "sms": {
            **common,
            "account_sid": fake.TWILIO_ACCOUNT,
            "auth_token": fake.TWILIO_TOKEN,
            "from_number": "+15550001111",
        },
    }


def recipient(channel: str, index: int) -> str:
    """The customer's address on the channel (the conversation's thread id)."""
    return {
        "web": "",
        "whatsapp": f"9665{index:08d}",
        "telegram": str(700_000_000 + index),
        "sms": f"+9665{index:08d}",
    }[channel]


def prepare(alerts: int, products: int, provider_url: str, rate: int) -> dict[str, Any]:
    """A fresh bench tenant: ``products`` products out of stock, ``alerts`` contacts (one
    identity and one conversation each, channels in turn) each waiting for one product."""
    from decimal import Decimal

    from django.core.management import call_command
    from django.utils import timezone

    from conversations.models import Conversation, Inbox
    from crm.models import Contact, ContactIdentity, Product, StockAlert
    from morvo.models import Tenant

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    migrate_s = time.perf_counter() - started
    started = time.perf_counter()
    # A new tenant per run (earlier runs' tenants stay in the bench database, untouched).
    slug = f"{TENANT_SLUG}-{int(time.time())}"
    tenant = Tenant.objects.create(slug=slug, name="متجر القياس", default_language="ar")
    configs = inbox_configs(provider_url, rate)
    inboxes = {
        channel: Inbox.objects.for_tenant(tenant).create(
            tenant=tenant, name=f"bench {channel}", channel_type=channel, config=configs[channel]
        )
        for channel in CHANNELS
    }
    catalogue = Product.objects.for_tenant(tenant).bulk_create(
        [
            Product(
                tenant=tenant,
                sku=f"BENCH-{index:03d}",
                name_ar=f"عطر رقم {index}",
                name_en=f"Perfume {index}",
                price=Decimal("149.00"),
                stock_quantity=0,
            )
            for index in range(products)
        ]
    )
    contacts = Contact.objects.for_tenant(tenant).bulk_create(
        [
            Contact(
                tenant=tenant,
                name=f"عميل {index}" if index % 2 else f"Customer {index}",
                language="ar" if index % 2 else "en",
            )
            for index in range(alerts)
        ],
        batch_size=2000,
    )
    ContactIdentity.objects.for_tenant(tenant).bulk_create(
        [
            ContactIdentity(
                tenant=tenant, contact=contact, channel_type=CHANNELS[index % 4], external_id=f"bench-{index}"
            )
            for index, contact in enumerate(contacts)
        ],
        batch_size=2000,
    )
    conversations = Conversation.objects.for_tenant(tenant).bulk_create(
        [
            Conversation(
                tenant=tenant,
                inbox=inboxes[CHANNELS[index % 4]],
                kind=Conversation.Kind.CUSTOMER,
                contact=contact,
                visitor_id=f"bench-{index}" if CHANNELS[index % 4] == "web" else "",
                external_id=recipient(CHANNELS[index % 4], index),
                language=contact.language,
                # They asked an hour ago: inside WhatsApp's 24-hour window.
                customer_last_message_at=timezone.now() - timezone.timedelta(hours=1),
            )
            for index, contact in enumerate(contacts)
        ],
        batch_size=2000,
    )
    now = timezone.now()
    StockAlert.objects.for_tenant(tenant).bulk_create(
        [
            StockAlert(
                tenant=tenant,
                contact=contact,
                product=catalogue[index % products],
                conversation=conversation,
                channel_type=CHANNELS[index % 4],
                message_text="let me know when it's back",
                created_at=now,
                expires_at=now + timezone.timedelta(days=30),
            )
            for index, (contact, conversation) in enumerate(zip(contacts, conversations, strict=True))
        ],
        batch_size=2000,
    )
    return {"tenant_id": tenant.pk, "migrate_s": round(migrate_s, 2), "seed_s": round(time.perf_counter() - started, 2)}


def start_workers(env: dict[str, str], workers: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(workers):
        command = [
            sys.executable, "-m", "celery", "-A", "morvo", "worker", "--loglevel", "WARNING",
            "--concurrency", str(concurrency), "--hostname", f"stock-bench-{os.getpid()}-{index}@%h",
        ]  # fmt: skip
        with open(LOG_DIR / f"stock-alerts-worker-{index}.log", "wb") as log:
            processes.append(subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        bp.stop_process(process, grace=30)


def measure(tenant_id: int, alerts: int, timeout: float, providers: Any) -> dict[str, Any]:
    from django.db import transaction
    from django.db.models import Count

    from conversations.models import Message
    from crm import services, tasks
    from crm.models import Product, StockAlert
    from morvo.models import Tenant
    from morvo.tasks import echo_task

    tenant = Tenant.objects.get(pk=tenant_id)
    started = time.perf_counter()
    echo_task.delay("ready").get(timeout=120, interval=0.05)
    say(f"workers answering ({time.perf_counter() - started:.1f}s)")
    product_ids = list(Product.objects.for_tenant(tenant).order_by("id").values_list("pk", flat=True))
    alerts_pending = StockAlert.objects.for_tenant(tenant).filter(status="pending")

    say(f"restocking {len(product_ids)} products ({alerts} customers waiting)")
    started = time.perf_counter()
    with transaction.atomic():
        for product_id in product_ids:
            services.product_update(tenant, product_id, stock_quantity=100)
    restocked_s = time.perf_counter() - started
    load_before = os.getloadavg()[0]
    # Two more triggers race the first: the hourly check, fired twice.
    tasks.stock_alerts_check_task.delay()
    tasks.stock_alerts_check_task.delay()
    progress: list[tuple[float, int]] = []
    done_s = None
    while time.perf_counter() - started < timeout:
        remaining = alerts_pending.count()
        elapsed = time.perf_counter() - started
        progress.append((round(elapsed, 2), alerts - remaining))
        if remaining == 0:
            done_s = elapsed
            break
        time.sleep(0.25)
    notified = StockAlert.objects.for_tenant(tenant).filter(status="notified").count()
    messages = Message.objects.for_tenant(tenant).filter(metadata__kind="stock_alert")
    per_alert = messages.values("metadata__stock_alert_id").annotate(n=Count("id"))
    duplicates = sum(row["n"] - 1 for row in per_alert if row["n"] > 1)
    alerts_with_message = per_alert.count()
    by_channel = dict(
        messages.values_list("conversation__inbox__channel_type")
        .annotate(n=Count("id"))
        .values_list("conversation__inbox__channel_type", "n")
    )
    by_language = dict(
        messages.values_list("metadata__language").annotate(n=Count("id")).values_list("metadata__language", "n")
    )
    delivery = measure_delivery(tenant, started, timeout, providers)
    return {
        "delivery": delivery,
        "alerts": alerts,
        "products": len(product_ids),
        "restock_commit_s": round(restocked_s, 3),
        "notify_after_commit_s": round(done_s - restocked_s, 2) if done_s is not None else None,
        "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "all_notified_s": round(done_s, 2) if done_s is not None else None,
        "notified": notified,
        "messages": messages.count(),
        "alerts_with_a_message": alerts_with_message,
        "duplicates": duplicates,
        "messages_per_s": round(notified / done_s, 1) if done_s else None,
        "by_channel": by_channel,
        "by_language": by_language,
        "progress": progress[:: max(1, len(progress) // 40)],
    }


def measure_delivery(tenant: Any, started: float, timeout: float, providers: Any) -> dict[str, Any]:
    """Wait until the outbox has nothing left to send; what the fake providers received."""
    from django.db.models import Count

    from conversations.models import OutboxMessage

    outbox = OutboxMessage.objects.for_tenant(tenant)
    expected = outbox.count()
    say(f"delivering {expected} channel notifications through the outbox")
    done_s = None
    while time.perf_counter() - started < timeout:
        if not outbox.filter(status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING]).exists():
            done_s = time.perf_counter() - started
            break
        time.sleep(0.25)
    statuses = dict(outbox.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    recipients: dict[str, int] = {}
    by_provider: dict[str, int] = {}
    for request in list(providers.requests):
        if request.path.endswith("/messages"):
            provider, to = "whatsapp", (request.json or {}).get("to")
        elif request.path.endswith("/sendMessage"):
            provider, to = "telegram", (request.json or {}).get("chat_id")
        elif request.path.endswith("/Messages.json"):
            provider, to = "sms", request.form.get("To")
        else:
            continue
        by_provider[provider] = by_provider.get(provider, 0) + 1
        key = f"{provider}:{to}"
        recipients[key] = recipients.get(key, 0) + 1
    return {
        "outbox_rows": expected,
        "statuses": statuses,
        "all_sent_s": round(done_s, 2) if done_s is not None else None,
        "provider_requests": sum(by_provider.values()),
        "by_provider": by_provider,
        "recipients": len(recipients),
        "duplicates": sum(count - 1 for count in recipients.values() if count > 1),
        "requests_per_s": round(sum(by_provider.values()) / done_s, 1) if done_s else None,
    }


def table(figures: dict[str, Any]) -> str:
    rows = [
        ("alerts / products", f"{figures['alerts']} / {figures['products']}", "", ""),
        ("restock (product updates, one commit)", f"{figures['restock_commit_s']} s", "", ""),
        (
            "time until all notified",
            f"{figures['all_notified_s']} s" if figures["all_notified_s"] is not None else "not finished",
            f"<= {TIME_TARGET_S:.0f} s",
            "PASS" if figures["all_notified_s"] is not None and figures["all_notified_s"] <= TIME_TARGET_S else "FAIL",
        ),
        ("  of which after the restock committed", f"{figures['notify_after_commit_s']} s", "", ""),
        ("notifications per second", str(figures["messages_per_s"]), "", ""),
        (
            "alerts notified",
            str(figures["notified"]),
            str(figures["alerts"]),
            "PASS" if figures["notified"] == figures["alerts"] else "FAIL",
        ),
        (
            "notification messages",
            str(figures["messages"]),
            str(figures["alerts"]),
            "PASS" if figures["messages"] == figures["alerts"] else "FAIL",
        ),
        (
            "duplicates",
            str(figures["duplicates"]),
            str(DUPLICATES_TARGET),
            "PASS" if figures["duplicates"] == 0 else "FAIL",
        ),
        ("messages by channel", json.dumps(figures["by_channel"], sort_keys=True), "", ""),
        *delivery_rows(figures["delivery"]),
        ("messages by language", json.dumps(figures["by_language"], sort_keys=True), "", ""),
        ("load average (1 min) at restock / at the end", " / ".join(map(str, figures["load_average_1m"])), "", ""),
        ("CPUs", str(os.cpu_count()), "", ""),
    ]
    width = [max(len(str(row[column])) for row in rows) for column in range(4)]
    header = ("figure", "value", "target", "")
    lines = [" | ".join(cell.ljust(width[i]) for i, cell in enumerate(header))]
    lines.append("-+-".join("-" * w for w in width))
    lines += [" | ".join(str(cell).ljust(width[i]) for i, cell in enumerate(row)) for row in rows]
    return "\n".join(lines)


def delivery_rows(delivery: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    sent = delivery["statuses"].get("sent", 0)
    return [
        (
            "channel notifications delivered (outbox)",
            f"{sent} of {delivery['outbox_rows']} in {delivery['all_sent_s']} s after the restock"
            if delivery["all_sent_s"] is not None
            else f"{sent} of {delivery['outbox_rows']}, not finished",
            str(delivery["outbox_rows"]),
            "PASS" if sent == delivery["outbox_rows"] else "FAIL",
        ),
        ("  provider requests per second", str(delivery["requests_per_s"]), "", ""),
        ("  provider requests by provider", json.dumps(delivery["by_provider"], sort_keys=True), "", ""),
        (
            "  duplicates at the providers",
            str(delivery["duplicates"]),
            str(DUPLICATES_TARGET),
            "PASS" if delivery["duplicates"] == 0 else "FAIL",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size of each worker")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument(
        "--provider-rate", type=int, default=100, help="messages a second each bench inbox may send to its provider"
    )
    args = parser.parse_args(argv)

    env = environment(args.database)
    os.environ.update(env)
    import django

    django.setup()
    say(f"preparing {args.database}: {args.alerts} alerts over {args.products} products, channels {CHANNELS}")
    from tests.fake_providers import FakeProviders

    providers = FakeProviders()
    try:
        purged = bp.purge_broker()
        if purged:
            say(f"dropped {purged} tasks an earlier run left queued")
        prepared = prepare(args.alerts, args.products, providers.url, args.provider_rate)
        say(f"  migrate {prepared['migrate_s']} s, seed {prepared['seed_s']} s")
        say(f"starting {args.workers} worker(s) × concurrency {args.concurrency}")
        workers = start_workers(env, args.workers, args.concurrency)
        try:
            figures = measure(prepared["tenant_id"], args.alerts, args.timeout, providers)
        finally:
            stop(workers)
    finally:
        providers.close()
    figures["setup"] = {
        **prepared,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "provider_rate_per_s": args.provider_rate,
        "cpus": os.cpu_count(),
    }
    print(table(figures), flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"stock_alerts-{stamp}.json").write_text(json.dumps(figures, indent=2, default=str))
    delivery = figures["delivery"]
    lost = figures["notified"] != args.alerts or figures["messages"] != args.alerts
    undelivered = delivery["statuses"].get("sent", 0) != delivery["outbox_rows"]
    return 1 if lost or undelivered or figures["duplicates"] or delivery["duplicates"] else 0


if __name__ == "__main__":
    sys.exit(main())
