"""Campaign autopilot benchmark: ``.venv/bin/python bench/campaigns.py``.

10,000 active campaigns across 100 tenants, each with 90 days of daily metrics and the
advertised product's daily store stats, on an Impact-style platform served by a fake HTTP
server on 127.0.0.1 (a subprocess, so it does not share this process's CPU time slice
accounting). Then ONE full tick of the loop: the beat fan-out, and for every tenant its job
(run in order, eagerly, as one worker would): fetch the metrics report from the platform,
upsert, claim, evaluate, decide, act (pause / resume / budget calls to the platform), log,
notify. Reported: wall seconds, SQL queries per campaign (and per tenant job, min/max, to
show they do not grow with history), HTTP calls, peak memory of the tick process, and the
decisions. Target: ≤ 60 s.

It works in its own database (``morvo_bench_campaigns``) on the embedded server and its own
var folder (``var/bench-campaigns``). Seeding runs once (about a minute); later runs reset the
campaigns (status, budgets, evaluations) and tick again. ``--reseed`` starts over.
Exit status 0 when the target is missed (a report), 1 on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]

DATABASE = "morvo_bench_campaigns"
VAR_DIR = BASE_DIR / "var" / "bench-campaigns"
TENANTS = 100
CAMPAIGNS_PER_TENANT = 100
HISTORY_DAYS = 90
WINDOW_DAYS = 7
TOKEN = "bench-token"
TARGET_SECONDS = 60.0
SLUG_PREFIX = "bench-autopilot-"


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "morvo.settings",
            "DATABASE_URL": "",
            "MORVO_REDIS_URL": "",
            "MORVO_DATABASE_NAME": DATABASE,
            "MORVO_VAR_DIR": str(VAR_DIR),
            "PROMETHEUS_MULTIPROC_DIR": str(VAR_DIR / "prometheus"),
            "CAMPAIGNS_ADAPTER_BACKOFF_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def bench_today() -> date:
    """The tenants' today (their time zone is Asia/Riyadh, the default), as the loop sees it."""
    import zoneinfo
    from datetime import datetime

    return datetime.now(zoneinfo.ZoneInfo("Asia/Riyadh")).date()


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- the shape of the data (shared by the seed and the fake platform) -------------------------
# Campaign i of a tenant: i % 10 picks its story. Product stats and platform figures agree.
#   0-2 winners (sales +30 %, views +20 %)   3 loser (sales −25 %)   4 drowning (revenue < spend)
#   5-6 moderate (sales +10 %)              7-9 flat


def product_pattern(index: int) -> tuple[tuple[int, int], tuple[int, int]]:
    kind = index % 10
    if kind <= 2:
        return (10, 100), (13, 120)
    if kind == 3:
        return (12, 100), (9, 100)
    if kind in (5, 6):
        return (10, 100), (11, 101)
    return (10, 100), (10, 100)


def platform_day(index: int, offset: int) -> dict[str, Any]:
    kind = index % 10
    spend = 20 + (offset % 5)
    revenue = spend // 2 if kind == 4 else spend * 3
    return {
        "Spend": f"{spend}.00",
        "Impressions": 1000 + offset,
        "Clicks": 40 + offset % 7,
        "Actions": 2,
        "Revenue": f"{revenue}.00",
        "NewCustomers": 2,
    }


# --- the fake platform (``--serve``) ----------------------------------------------------------


def serve(port_file: Path, today: date) -> None:
    calls = {"GET": 0, "PUT": 0, "POST": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, body: Any, status: int = 200) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            calls["GET"] += 1
            parts = urlsplit(self.path)
            if parts.path == "/calls":
                return self._send(calls)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            sid = parts.path.split("/")[2]
            start, end = date.fromisoformat(query["StartDate"]), date.fromisoformat(query["EndDate"])
            size, page = int(query.get("PageSize", 1000)), int(query.get("Page", 1))
            days = (end - start).days + 1
            total = CAMPAIGNS_PER_TENANT * days
            records = []
            for position in range((page - 1) * size, min(total, page * size)):
                index, day_offset = divmod(position, days)
                day = start + timedelta(days=day_offset)
                records.append(
                    {"CampaignId": f"{sid}-{index}", "Date": day.isoformat(), **platform_day(index, (today - day).days)}
                )
            pages = -(-total // size)
            next_uri = ""
            if page < pages:
                next_uri = f"{parts.path}?StartDate={start}&EndDate={end}&PageSize={size}&Page={page + 1}"
            self._send({"@page": str(page), "@numpages": str(pages), "@nextpageuri": next_uri, "Records": records})

        def do_PUT(self) -> None:
            calls["PUT"] += 1
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._send({"Id": self.path.rsplit("/", 1)[1]})

        def do_POST(self) -> None:
            calls["POST"] += 1
            self._send({"Id": "new"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


# --- preparation ------------------------------------------------------------------------------


def prepare(reseed: bool, platform_url: str) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from campaigns.models import (
        AdapterCircuit,
        AdCampaign,
        AutopilotSettings,
        CampaignDailyMetric,
        CampaignEvaluation,
        CampaignNotification,
        CampaignTask,
    )
    from crm.models import Product, ProductDailyStat
    from morvo.models import Tenant

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    today = bench_today()
    tenants = list(Tenant.objects.filter(slug__startswith=SLUG_PREFIX).order_by("slug"))
    campaign_count = AdCampaign.objects.all_tenants().filter(tenant__slug__startswith=SLUG_PREFIX).count()
    seeded_today = (
        CampaignDailyMetric.objects.all_tenants().filter(tenant__slug__startswith=SLUG_PREFIX, date=today).exists()
    )
    if reseed or len(tenants) != TENANTS or campaign_count != TENANTS * CAMPAIGNS_PER_TENANT or not seeded_today:
        say("seeding 100 tenants, 10,000 products and campaigns, 90 days of metrics and store stats…")
        Tenant.objects.filter(slug__startswith=SLUG_PREFIX).delete()
        tenants = Tenant.objects.bulk_create(
            [Tenant(name=f"Bench {n:03d}", slug=f"{SLUG_PREFIX}{n:03d}") for n in range(TENANTS)]
        )
        start = today - timedelta(days=HISTORY_DAYS - 1)
        products = Product.objects.all_tenants().bulk_create(
            [
                Product(
                    tenant=tenant,
                    sku=f"B-{i:03d}",
                    name_ar=f"منتج {i}",
                    name_en=f"Product {i}",
                    category="bench",
                    price="150.00",
                    stock_quantity=100,
                )
                for tenant in tenants
                for i in range(CAMPAIGNS_PER_TENANT)
            ],
            batch_size=2000,
        )
        campaigns = AdCampaign.objects.all_tenants().bulk_create(
            [
                AdCampaign(
                    tenant=product.tenant,
                    product=product,
                    platform="impact",
                    external_id=f"{product.tenant.slug}-{int(product.sku[2:])}",
                    name=f"Campaign {product.sku}",
                    status="active",
                    daily_budget="40.00",
                    total_budget="4000.00",
                    start_date=start,
                )
                for product in products
            ],
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            raw = cursor.connection
            with raw.cursor().copy(
                f"COPY {ProductDailyStat._meta.db_table} "
                "(tenant_id, product_id, date, views, units_sold, revenue) FROM STDIN"
            ) as copy:
                for product in products:
                    before, during = product_pattern(int(product.sku[2:]))
                    for offset in range(-WINDOW_DAYS, HISTORY_DAYS):
                        day = start + timedelta(days=offset)
                        units, views = before if day < start or day <= today - timedelta(days=WINDOW_DAYS) else during
                        copy.write_row((product.tenant_id, product.pk, day, views, units, "0"))
            with raw.cursor().copy(
                f"COPY {CampaignDailyMetric._meta.db_table} "
                "(tenant_id, campaign_id, date, spend, impressions, clicks, conversions, revenue, new_customers) "
                "FROM STDIN"
            ) as copy:
                for campaign in campaigns:
                    index = int(campaign.external_id.rsplit("-", 1)[1])
                    for offset in range(HISTORY_DAYS):
                        day = start + timedelta(days=offset)
                        figures = platform_day(index, (today - day).days)
                        copy.write_row(
                            (
                                campaign.tenant_id,
                                campaign.pk,
                                day,
                                figures["Spend"],
                                figures["Impressions"],
                                figures["Clicks"],
                                figures["Actions"],
                                figures["Revenue"],
                                figures["NewCustomers"],
                            )
                        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        say(f"seeded in {time.perf_counter() - started:.1f}s")
    tenants = list(Tenant.objects.filter(slug__startswith=SLUG_PREFIX).order_by("slug"))
    # Reset what a tick changes, so every run measures the same work.
    with transaction.atomic():
        for model in (CampaignEvaluation, CampaignNotification, CampaignTask, AdapterCircuit):
            model.objects.all_tenants().filter(tenant__in=tenants).delete()
        AdCampaign.objects.all_tenants().filter(tenant__in=tenants).update(
            status="active", paused_by="", daily_budget="40.00", evaluated_slot=None, last_decision=""
        )
        AutopilotSettings.objects.all_tenants().filter(tenant__in=tenants).delete()
        AutopilotSettings.objects.all_tenants().bulk_create(
            [
                AutopilotSettings(
                    tenant=tenant,
                    impact_base_url=platform_url,
                    impact_account_sid=tenant.slug,
                    impact_auth_token=TOKEN,
                )
                for tenant in tenants
            ]
        )
    return {"tenants": len(tenants), "campaigns": TENANTS * CAMPAIGNS_PER_TENANT}


# --- the tick (``--tick``, its own process for a clean peak-memory figure) ----------------------


def run_jobs(tenant_ids: list[int]) -> dict[str, Any]:
    """One worker process: run these tenants' jobs in order, as a Celery worker child would."""
    import django

    django.setup()
    from django.db import connection

    from campaigns import tasks

    queries = {"count": 0}

    def counter(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries["count"] += 1
        return execute(sql, params, many, context)

    per_tenant = []
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        for tenant_id in tenant_ids:
            before = queries["count"]
            tasks.campaigns_tenant_tick_task.apply(args=(tenant_id,), throw=True)
            per_tenant.append(queries["count"] - before)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "queries": per_tenant,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def tick(workers: int) -> dict[str, Any]:
    """The beat's fan-out, then the jobs on ``workers`` worker processes (the embedded
    profile's Celery worker runs two), timed from the fan-out to the last job's end."""
    import django

    django.setup()
    from django.db.models import Count

    from campaigns import tasks
    from campaigns.models import CampaignEvaluation

    env = environment()
    started = time.perf_counter()
    queued: list[int] = []
    tasks.campaigns_tenant_tick_task.apply_async = lambda args, **options: queued.append(args[0])  # type: ignore[method-assign]
    tasks.campaigns_tick_task()
    shares = [queued[index::workers] for index in range(workers)]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--jobs", ",".join(map(str, share))],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in shares
        if share
    ]
    results = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(err[-3000:])
        results.append(json.loads(out.strip().splitlines()[-1]))
    seconds = time.perf_counter() - started
    per_tenant = [count for result in results for count in result["queries"]]
    decisions = dict(
        CampaignEvaluation.objects.all_tenants().values_list("decision").annotate(n=Count("id")).order_by()
    )
    actions = dict(
        CampaignEvaluation.objects.all_tenants().values_list("action_taken").annotate(n=Count("id")).order_by()
    )
    evaluated = sum(decisions.values())
    return {
        "tenant_jobs": len(queued),
        "workers": workers,
        "evaluated": evaluated,
        "seconds": round(seconds, 2),
        "queries": sum(per_tenant),
        "queries_per_campaign": round(sum(per_tenant) / max(1, evaluated), 3),
        "queries_per_tenant_min": min(per_tenant, default=0),
        "queries_per_tenant_max": max(per_tenant, default=0),
        "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
        "worker_cpu_seconds": round(sum(result["cpu_seconds"] for result in results), 1),
        "load_average": os.getloadavg()[0],
        "decisions": decisions,
        "actions": actions,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    parser.add_argument("--tick", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help="worker processes running the tenant jobs (default 2)")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, bench_today())
        return 0
    if args.prepare:
        print(json.dumps(prepare(bool(os.environ.get("BENCH_RESEED")), args.prepare)))
        return 0
    if args.jobs:
        print(json.dumps(run_jobs([int(value) for value in args.jobs.split(",")])))
        return 0
    if args.tick:
        print(json.dumps(tick(args.workers)))
        return 0

    env = environment()
    os.environ.update(env)
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    port_file = VAR_DIR / "platform.port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)], cwd=BASE_DIR, env=env)
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        else:
            say("the fake platform did not start")
            return 1
        url = f"http://127.0.0.1:{port_file.read_text()}"
        prepared = subprocess.run(
            [sys.executable, __file__, "--prepare", url],
            cwd=BASE_DIR,
            env={**env, "BENCH_RESEED": "1" if args.reseed else ""},
            capture_output=True,
            text=True,
        )
        sys.stdout.write("".join(line + "\n" for line in prepared.stdout.splitlines() if line.startswith("[bench]")))
        if prepared.returncode != 0:
            say("preparing failed:\n" + prepared.stderr[-3000:])
            return 1
        say("one full tick…")
        ticked = subprocess.run(
            [sys.executable, __file__, "--tick", "--workers", str(args.workers)],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        if ticked.returncode != 0:
            say("the tick failed:\n" + ticked.stderr[-3000:])
            return 1
        result = json.loads(ticked.stdout.strip().splitlines()[-1])
        import urllib.request

        with urllib.request.urlopen(f"{url}/calls", timeout=5) as response:
            calls = json.loads(response.read())
    finally:
        server.terminate()
        server.wait(10)

    rows = [
        (
            "campaigns evaluated",
            f"{result['evaluated']:,} in {result['tenant_jobs']} tenant jobs on {result['workers']} worker processes",
            "",
        ),
        ("tick wall time", f"{result['seconds']:.2f} s", f"≤ {TARGET_SECONDS:.0f} s"),
        (
            "worker CPU time",
            f"{result['worker_cpu_seconds']} s (machine load average {result['load_average']:.1f} on "
            f"{os.cpu_count()} cores)",
            "",
        ),
        ("SQL queries", f"{result['queries']:,} ({result['queries_per_campaign']} per campaign)", "constant"),
        (
            "SQL queries per tenant job",
            f"min {result['queries_per_tenant_min']}, max {result['queries_per_tenant_max']}",
            "",
        ),
        ("HTTP calls to the platform", f"{calls['GET'] - 1} report pages, {calls['PUT']} changes", ""),
        ("peak memory (largest worker)", f"{result['peak_rss_mb']} MB", ""),
        ("decisions", ", ".join(f"{k} {v}" for k, v in sorted(result["decisions"].items())), ""),
        ("actions", ", ".join(f"{k} {v}" for k, v in sorted(result["actions"].items())), ""),
    ]
    width = max(len(row[0]) for row in rows)
    print()
    for name, value, target in rows:
        verdict = ""
        if name == "tick wall time":
            verdict = "PASS" if result["seconds"] <= TARGET_SECONDS else "FAIL"
        print(f"{name.ljust(width)}  {value}  {target} {verdict}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
