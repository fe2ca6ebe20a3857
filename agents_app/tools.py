"""Tools, built already bound to one tenant (and, in the inbox, to one conversation).

The model never chooses the tenant: a ``ToolBox`` is made for a tenant and every tool reads
and writes only through that tenant's selectors and services. The same box serves the offline
brain (plain method calls) and CrewAI (``crewai_tools()`` wraps each method in a ``BaseTool``
with a typed argument schema). Every call is traced as a step when a tracer is attached.

Tools return plain JSON-able dicts; a failure a user can fix comes back as
``{"error": ...}`` rather than an exception, so an agent can recover.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from morvo.text import normalize_arabic, words

_SIZE_RANGE = re.compile(r"(?:المقاسات|مقاسات|sizes?)\s*(?:من\s*)?(\d{2,3})\s*(?:الى|الي|إلى|-|to)\s*(\d{2,3})")
_VOLUME = re.compile(r"(\d{1,4})\s*(?:مل|ml)\b")
_SIZE_LETTERS = re.compile(r"(?<![\w])(XS|S|M|L|XL|XXL)(?![\w])")


def product_sizes(description: str) -> list[str]:
    """Sizes a product comes in, as its description states them."""
    text = normalize_arabic(description)
    match = _SIZE_RANGE.search(text)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        step = 2 if (high - low) % 2 == 0 and high - low > 6 else 1
        return [str(size) for size in range(low, high + 1, step)]
    volumes = [f"{value} ml" for value in _VOLUME.findall(text)]
    if volumes:
        return list(dict.fromkeys(volumes))
    return list(dict.fromkeys(_SIZE_LETTERS.findall(description)))


def product_card(product: Any) -> dict[str, Any]:
    return {
        "id": product.pk,
        "sku": product.sku,
        "name": product.name_ar or product.name_en,
        "name_en": product.name_en,
        "category": product.category,
        "price": str(product.price),
        "currency": product.currency,
        "stock": product.stock_quantity,
        "in_stock": product.stock_quantity > 0,
        "status": product.status,
        "sizes": product_sizes(product.description),
        "description": product.description[:300],
    }


class ToolBox:
    """The tenant's tools. ``conversation`` binds the inbox tools (stock alerts, bookings, tags,
    follow-ups, escalation) to the customer being served; without it they refuse."""

    names = (
        "search_products",
        "get_product",
        "check_stock",
        "kpi_summary",
        "campaign_history",
        "search_knowledge",
        "create_stock_alert",
        "book_appointment",
        "tag_contact",
        "schedule_follow_up",
        "escalate_to_human",
    )

    memoised = frozenset({"kpi_summary", "campaign_history", "get_product"})

    def __init__(self, tenant: Any, conversation: Any = None, message: Any = None, tracer: Any = None) -> None:
        self.tenant = tenant
        self.conversation = conversation
        self.message = message
        self.tracer = tracer
        # Reads repeated within one turn (the figures behind a plan and its post) are made once.
        self._memo: dict[tuple[str, str], dict[str, Any]] = {}

    # -- plumbing -------------------------------------------------------------------------

    def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        if name not in self.names:
            return {"error": f"unknown tool {name}"}
        method: Callable[..., dict[str, Any]] = getattr(self, name)
        started = time.perf_counter()
        error = ""
        key = (name, repr(sorted(arguments.items())))
        if name in self.memoised and key in self._memo:
            return self._memo[key]
        try:
            result = method(**arguments)
            if name in self.memoised:
                self._memo[key] = result
        except TypeError as exc:
            result, error = {"error": f"bad arguments: {exc}"}, str(exc)
        if self.tracer is not None:
            self.tracer.step(
                "tool",
                name,
                latency_ms=int((time.perf_counter() - started) * 1000),
                detail={"arguments": _jsonable(arguments), "ok": "error" not in result},
                error=error or str(result.get("error", "")),
            )
        return result

    def _contact(self) -> Any:
        if self.conversation is None or self.conversation.kind != "customer":
            return None
        from crm.services import contact_for_conversation

        return contact_for_conversation(self.tenant, self.conversation)

    def _products(self) -> Any:
        from crm.selectors import product_list

        return product_list(self.tenant)

    # -- catalogue ------------------------------------------------------------------------

    def search_products(self, query: str = "", limit: int = 5, in_stock_only: bool = False) -> dict[str, Any]:
        """Products whose name, category, SKU or description match the query, best first."""
        from agents_app.router.products import products_resolve

        limit = max(1, min(int(limit), 20))
        products = self._products().exclude(status="archived")
        if not (query or "").strip():
            # No query: the products most worth talking about, active and in stock first.
            ordered = products.filter(status="active").order_by("-stock_quantity", "pk")[:limit]
            return {"products": [product_card(product) for product in ordered]}
        resolved = [entry["id"] for entry in products_resolve(self.tenant, query, limit=limit)] if query else []
        matches = list(products.filter(pk__in=resolved)) if resolved else []
        matches.sort(key=lambda product: resolved.index(product.pk))
        if len(matches) < limit and query:
            terms = [term for term in words(query) if len(term) >= 3][:6]
            condition = Q()
            for term in terms:
                for stem in {term, term[2:] if term.startswith("ال") and len(term) > 4 else term}:
                    condition |= (
                        Q(name_ar__icontains=stem)
                        | Q(name_en__icontains=stem)
                        | Q(category__icontains=stem)
                        | Q(sku__iexact=stem)
                    )
            if terms:
                extra = products.filter(condition).exclude(pk__in=[p.pk for p in matches]).order_by("-stock_quantity")
                matches.extend(extra[: limit - len(matches)])
        if in_stock_only:
            matches = [product for product in matches if product.stock_quantity > 0]
        return {"products": [product_card(product) for product in matches[:limit]]}

    def get_product(self, product_id: int) -> dict[str, Any]:
        product = self._products().filter(pk=product_id).first()
        if product is None:
            return {"error": "no such product"}
        return {"product": product_card(product)}

    def check_stock(self, product_id: int) -> dict[str, Any]:
        product = self._products().filter(pk=product_id).first()
        if product is None:
            return {"error": "no such product"}
        return {
            "product_id": product.pk,
            "name": product.name_ar or product.name_en,
            "in_stock": product.stock_quantity > 0 and product.status == "active",
            "quantity": product.stock_quantity,
        }

    # -- analytics ------------------------------------------------------------------------

    def kpi_summary(self, days: int = 30) -> dict[str, Any]:
        """Revenue, orders and average order value over ``days`` days, the best seller, growth
        against the previous ``days`` days, and campaign ROI; every figure from the tenant's data."""
        from crm.models import Order, OrderItem

        days = max(1, min(int(days), 365))
        now = timezone.now()
        since, before = now - timedelta(days=days), now - timedelta(days=2 * days)
        orders = Order.objects.for_tenant(self.tenant).filter(status__in=Order.REVENUE_STATUSES)
        current = orders.filter(created_at__gte=since).aggregate(revenue=Sum("total"), count=Count("id"))
        previous = orders.filter(created_at__gte=before, created_at__lt=since).aggregate(
            revenue=Sum("total"), count=Count("id")
        )
        revenue = current["revenue"] or Decimal("0")
        count = current["count"] or 0
        previous_revenue = previous["revenue"] or Decimal("0")
        best = (
            OrderItem.objects.for_tenant(self.tenant)
            .filter(order__created_at__gte=since, order__status__in=Order.REVENUE_STATUSES)
            .values("product_id", "product__name_ar", "product__name_en")
            .annotate(units=Sum("quantity"), revenue=Sum(F("quantity") * F("unit_price")))
            .order_by("-revenue", "product_id")
            .first()
        )
        growth = (
            ((revenue - previous_revenue) / previous_revenue * 100).quantize(Decimal("0.1"))
            if previous_revenue
            else None
        )
        return {
            "days": days,
            "currency": self.tenant.currency,
            "revenue": str(revenue.quantize(Decimal("0.01"))),
            "orders": count,
            "average_order_value": str((revenue / count).quantize(Decimal("0.01"))) if count else "0.00",
            "previous_revenue": str(previous_revenue.quantize(Decimal("0.01"))),
            "previous_orders": previous["count"] or 0,
            "growth_percent": str(growth) if growth is not None else None,
            "best_seller": (
                {
                    "product_id": best["product_id"],
                    "name": best["product__name_ar"] or best["product__name_en"],
                    "units": best["units"],
                    "revenue": str(best["revenue"].quantize(Decimal("0.01"))),
                }
                if best
                else None
            ),
            "campaign_roi": self._campaign_roi(since),
        }

    def _campaign_roi(self, since: datetime) -> dict[str, Any] | None:
        try:
            from campaigns.models import CampaignDailyMetric
        except ImportError:
            return None
        try:
            totals = (
                CampaignDailyMetric.objects.for_tenant(self.tenant)
                .filter(date__gte=since.date())
                .aggregate(spend=Sum("spend"), revenue=Sum("revenue"))
            )
        except Exception:  # the campaigns schema is not there yet (an old database)
            return None
        spend, revenue = totals["spend"] or Decimal("0"), totals["revenue"] or Decimal("0")
        if not spend:
            return None
        return {
            "spend": str(spend.quantize(Decimal("0.01"))),
            "revenue": str(revenue.quantize(Decimal("0.01"))),
            "roi_percent": str(((revenue - spend) / spend * 100).quantize(Decimal("0.1"))),
        }

    def campaign_history(self, limit: int = 10) -> dict[str, Any]:
        """The tenant's recent ad campaigns with spend, revenue and ROAS, newest first."""
        try:
            from campaigns.models import AdCampaign
        except ImportError:
            return {"campaigns": []}
        limit = max(1, min(int(limit), 50))
        try:
            campaigns = list(
                AdCampaign.objects.for_tenant(self.tenant)
                .annotate(spend=Sum("daily_metrics__spend"), revenue=Sum("daily_metrics__revenue"))
                .order_by("-id")[:limit]
            )
        except Exception:  # the campaigns schema is not there yet
            return {"campaigns": []}
        rows = []
        for campaign in campaigns:
            spend = getattr(campaign, "spend", None) or Decimal("0")
            revenue = getattr(campaign, "revenue", None) or Decimal("0")
            rows.append(
                {
                    "id": campaign.pk,
                    "name": campaign.name,
                    "platform": getattr(campaign, "platform", ""),
                    "status": getattr(campaign, "status", ""),
                    "objective": getattr(campaign, "objective", ""),
                    "spend": str(spend),
                    "revenue": str(revenue),
                    "roas": str(((revenue - spend) / spend).quantize(Decimal("0.01"))) if spend else None,
                }
            )
        return {"campaigns": rows}

    def search_knowledge(self, query: str, k: int = 5, own_only: bool = False) -> dict[str, Any]:
        """Passages from the tenant's documents and the global marketing library, with sources.
        ``own_only``: the business's own documents only (what a customer is answered from: the
        global library is marketing advice for the business, not shop policy)."""
        if not (query or "").strip():
            return {"error": "empty query"}
        try:
            from knowledge.selectors import documents_own, knowledge_search
        except ImportError:
            return {"results": []}
        k = max(1, min(int(k), 10))
        hits = knowledge_search(self.tenant, query, k=k * 3 if own_only else k)
        if own_only and hits:
            own = set(
                documents_own(self.tenant).filter(pk__in={hit.document_id for hit in hits}).values_list("pk", flat=True)
            )
            hits = [hit for hit in hits if hit.document_id in own][:k]
        return {
            "results": [
                {
                    "document_id": hit.document_id,
                    "title": hit.title,
                    "source": hit.source,
                    "snippet": hit.snippet,
                    "score": round(float(hit.score), 4),
                    "position": hit.position,
                    "language": hit.language,
                }
                for hit in hits
            ]
        }

    # -- the customer being served --------------------------------------------------------

    def create_stock_alert(self, product_id: int) -> dict[str, Any]:
        """Tell this customer once the product is back in stock."""
        contact = self._contact()
        if contact is None:
            return {"error": "stock alerts are for customer conversations"}
        product = self._products().filter(pk=product_id).first()
        if product is None:
            return {"error": "no such product"}
        from crm.services import CrmError, stock_alert_create

        try:
            alert, created = stock_alert_create(
                self.tenant,
                contact=contact,
                product=product,
                conversation=self.conversation,
                channel_type=self.conversation.inbox.channel_type,
                message_text=getattr(self.message, "content", "")[:1000],
                context={"message_id": getattr(self.message, "pk", None)},
            )
        except CrmError as exc:
            return {"error": str(exc)}
        return {
            "alert_id": alert.pk,
            "created": created,
            "product": product.name_ar or product.name_en,
            "in_stock": product.stock_quantity > 0,
        }

    def book_appointment(self, service: str, start: str, duration_minutes: int = 60) -> dict[str, Any]:
        """Book ``service`` at ``start`` (ISO 8601, the tenant's local time when naive)."""
        from crm.services import CrmError, appointment_book

        try:
            when = datetime.fromisoformat(start)
        except ValueError:
            return {"error": "start must be an ISO 8601 date and time"}
        if timezone.is_naive(when):
            when = when.replace(tzinfo=ZoneInfo(self.tenant.timezone or "UTC"))
        contact = self._contact()
        try:
            appointment = appointment_book(
                self.tenant,
                service=service,
                start=when,
                contact=contact,
                conversation=self.conversation,
                duration_minutes=int(duration_minutes),
            )
        except CrmError as exc:
            return {"error": str(exc)}
        return {"appointment_id": appointment.pk, "service": service, "start": appointment.start.isoformat()}

    def tag_contact(self, labels: list[str]) -> dict[str, Any]:
        contact = self._contact()
        if contact is None:
            return {"error": "no customer in this conversation"}
        from crm.services import CrmError, contact_tag

        clean = [str(label).strip()[:50] for label in labels if str(label).strip()][:10]
        if not clean:
            return {"error": "no labels"}
        try:
            return {"labels": [label.name for label in contact_tag(self.tenant, contact, clean)]}
        except CrmError as exc:
            return {"error": str(exc)}

    def schedule_follow_up(self, due: str, reason: str) -> dict[str, Any]:
        contact = self._contact()
        if contact is None:
            return {"error": "no customer in this conversation"}
        try:
            due_at = datetime.fromisoformat(due)
        except ValueError:
            return {"error": "due must be an ISO 8601 date and time"}
        if timezone.is_naive(due_at):
            due_at = due_at.replace(tzinfo=ZoneInfo(self.tenant.timezone or "UTC"))
        from crm.services import CrmError, follow_up_schedule

        try:
            follow_up = follow_up_schedule(
                self.tenant, contact=contact, due_at=due_at, reason=reason[:500], conversation=self.conversation
            )
        except CrmError as exc:
            return {"error": str(exc)}
        return {"follow_up_id": follow_up.pk, "due": follow_up.due_at.isoformat()}

    def escalate_to_human(self, reason: str, priority: str = "high") -> dict[str, Any]:
        if self.conversation is None:
            return {"error": "no conversation"}
        from conversations.services import conversation_escalate

        priority = priority if priority in ("high", "urgent") else "high"
        conversation = conversation_escalate(self.tenant, self.conversation.pk, reason=reason[:500], priority=priority)
        return {"escalated": True, "priority": conversation.priority}

    # -- CrewAI ---------------------------------------------------------------------------

    def crewai_tools(self, names: tuple[str, ...] | None = None) -> list[Any]:
        from agents_app.crew.tools import build_crewai_tools

        return build_crewai_tools(self, names or self.names)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
