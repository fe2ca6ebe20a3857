"""The manual adapter: for platforms with no API. Every change becomes a task for staff;
metrics arrive by CSV upload or the metrics API, so fetching reads nothing new."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from campaigns.adapters.base import AdPlatformAdapter, MetricRecord
from campaigns.models import AdCampaign, CampaignTask, Platform


class ManualAdapter(AdPlatformAdapter):
    platform = Platform.MANUAL

    def __init__(self) -> None:
        self.pending: list[CampaignTask] = []

    def _task(self, campaign: AdCampaign, kind: str, **details: Any) -> None:
        self.pending.append(CampaignTask(tenant_id=campaign.tenant_id, campaign=campaign, kind=kind, details=details))

    def create(self, campaign: AdCampaign) -> str:
        self._task(campaign, CampaignTask.Kind.CREATE, daily_budget=str(campaign.daily_budget))
        return ""

    def fetch_details(self, campaign: AdCampaign) -> dict[str, Any]:
        return {"id": campaign.external_id, "name": campaign.name, "status": campaign.status}

    def fetch_metrics(self, campaigns: list[AdCampaign], start: date, end: date) -> dict[int, list[MetricRecord]]:
        return {}

    def pause(self, campaign: AdCampaign) -> None:
        self._task(campaign, CampaignTask.Kind.PAUSE)

    def resume(self, campaign: AdCampaign) -> None:
        self._task(campaign, CampaignTask.Kind.RESUME)

    def set_budget(self, campaign: AdCampaign, daily_budget: Decimal) -> None:
        self._task(campaign, CampaignTask.Kind.SET_BUDGET, old=str(campaign.daily_budget), new=str(daily_budget))

    def flush(self) -> None:
        if self.pending:
            CampaignTask.objects.all_tenants().bulk_create(self.pending)
            self.pending = []
