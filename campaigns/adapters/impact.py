"""An HTTP client for an Impact.com-style advertiser REST API.

Resources live under ``{base}/Advertisers/{AccountSID}/``; requests authenticate with HTTP
Basic (the account SID and auth token), send and accept JSON:

- ``POST   Campaigns``                       create → ``{"Id": …}``
- ``GET    Campaigns/{Id}``                  details (``Id``, ``Name``, ``State``, ``DailyBudget``)
- ``PUT    Campaigns/{Id}``                  ``{"State": "PAUSED" | "ACTIVE"}`` or ``{"DailyBudget": "12.50"}``
- ``GET    Reports/CampaignDailyPerformance?StartDate=…&EndDate=…&PageSize=…``
  → ``{"@page", "@numpages", "@nextpageuri", "Records": [{"CampaignId", "Date", "Spend",
  "Impressions", "Clicks", "Actions", "Revenue", "NewCustomers"}]}``, followed page by page
  through ``@nextpageuri``.

Network errors, 429 and 5xx are transient (retried behind the circuit breaker); other 4xx
answers are permanent.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import httpx

from campaigns.adapters.base import AdapterError, AdPlatformAdapter, MetricRecord, PermanentAdapterError
from campaigns.models import Platform

if TYPE_CHECKING:
    from campaigns.models import AdCampaign

REPORT_PAGE_SIZE = 1000
MAX_REPORT_PAGES = 1000

_ssl_context: Any = None


def _shared_ssl_context() -> Any:
    """httpx builds a fresh SSL context (reading the CA bundle, ~0.5 s) per client; one per process."""
    global _ssl_context
    if _ssl_context is None:
        import ssl

        import certifi

        _ssl_context = ssl.create_default_context(cafile=certifi.where())
    return _ssl_context


class ImpactAdapter(AdPlatformAdapter):
    platform = Platform.IMPACT
    concurrent = True  # httpx.Client is thread-safe

    def __init__(self, base_url: str, account_sid: str, auth_token: str, timeout: float = 10.0) -> None:
        if not (base_url and account_sid and auth_token):
            raise PermanentAdapterError("The platform's base URL, account SID and auth token are all needed.")
        self.root = f"/Advertisers/{account_sid}"
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=(account_sid, auth_token),
            headers={"Accept": "application/json"},
            timeout=timeout,
            verify=_shared_ssl_context(),
        )

    # --- plumbing ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise AdapterError(f"{method} {path}: {error.__class__.__name__}: {error}") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise AdapterError(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentAdapterError(f"{method} {path}: HTTP {response.status_code}: {response.text[:200]}")
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as error:
            raise AdapterError(f"{method} {path}: the answer is not JSON") from error

    def _campaign_path(self, campaign: AdCampaign) -> str:
        if not campaign.external_id:
            raise PermanentAdapterError(f"Campaign {campaign.pk} has no id on the platform.")
        return f"{self.root}/Campaigns/{campaign.external_id}"

    # --- the interface ----------------------------------------------------------------------

    def create(self, campaign: AdCampaign) -> str:
        body = {
            "Name": campaign.name,
            "Objective": campaign.objective.upper(),
            "DailyBudget": str(campaign.daily_budget),
            "Currency": campaign.currency,
            "StartDate": campaign.start_date.isoformat(),
            "EndDate": campaign.end_date.isoformat() if campaign.end_date else None,
            "Creative": campaign.creative_text,
            "Targeting": campaign.targeting,
        }
        answer = self._request("POST", f"{self.root}/Campaigns", json=body)
        external_id = str(answer.get("Id") or "")
        if not external_id:
            raise AdapterError("The platform created the campaign without an id.")
        return external_id

    def fetch_details(self, campaign: AdCampaign) -> dict[str, Any]:
        answer = self._request("GET", self._campaign_path(campaign))
        return answer if isinstance(answer, dict) else {}

    def fetch_metrics(self, campaigns: list[AdCampaign], start: date, end: date) -> dict[int, list[MetricRecord]]:
        by_external = {campaign.external_id: campaign.pk for campaign in campaigns if campaign.external_id}
        if not by_external:
            return {}
        found: dict[int, list[MetricRecord]] = {}
        path: str | None = f"{self.root}/Reports/CampaignDailyPerformance"
        params: dict[str, Any] | None = {
            "StartDate": start.isoformat(),
            "EndDate": end.isoformat(),
            "PageSize": REPORT_PAGE_SIZE,
        }
        for _page in range(MAX_REPORT_PAGES):
            if not path:
                break
            answer = self._request("GET", path, params=params)
            for record in answer.get("Records", []):
                campaign_id = by_external.get(str(record.get("CampaignId", "")))
                if campaign_id is not None:
                    found.setdefault(campaign_id, []).append(_record(record))
            path, params = answer.get("@nextpageuri") or None, None
        return found

    def pause(self, campaign: AdCampaign) -> None:
        self._request("PUT", self._campaign_path(campaign), json={"State": "PAUSED"})

    def resume(self, campaign: AdCampaign) -> None:
        self._request("PUT", self._campaign_path(campaign), json={"State": "ACTIVE"})

    def set_budget(self, campaign: AdCampaign, daily_budget: Decimal) -> None:
        self._request("PUT", self._campaign_path(campaign), json={"DailyBudget": str(daily_budget)})

    def close(self) -> None:
        self.client.close()


def _record(raw: dict[str, Any]) -> MetricRecord:
    try:
        record = MetricRecord(
            date=date.fromisoformat(str(raw["Date"])[:10]),
            spend=Decimal(str(raw.get("Spend", "0"))),
            impressions=int(raw.get("Impressions", 0)),
            clicks=int(raw.get("Clicks", 0)),
            conversions=int(raw.get("Actions", 0)),
            revenue=Decimal(str(raw.get("Revenue", "0"))),
            new_customers=int(raw.get("NewCustomers", 0)),
        )
    except (KeyError, ValueError, TypeError, InvalidOperation) as error:
        raise PermanentAdapterError(f"A report record is malformed: {raw!r}") from error
    amounts = (record.spend, record.revenue)
    counts = (record.impressions, record.clicks, record.conversions, record.new_customers)
    if not all(amount.is_finite() and amount >= 0 for amount in amounts) or min(counts) < 0:
        raise PermanentAdapterError(f"A report record has negative or invalid figures: {raw!r}")
    return MetricRecord(
        date=record.date,
        spend=record.spend.quantize(Decimal("0.01")),
        impressions=record.impressions,
        clicks=record.clicks,
        conversions=record.conversions,
        revenue=record.revenue.quantize(Decimal("0.01")),
        new_customers=record.new_customers,
    )
