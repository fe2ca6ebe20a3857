"""The ad-platform adapter interface, and what every implementation shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from campaigns.models import AdCampaign


class AdapterError(Exception):
    """A platform call failed. ``transient`` failures (network, 5xx, 429) are retried and
    count towards the circuit breaker; the others (a refused request) are not."""

    transient = True


class PermanentAdapterError(AdapterError):
    transient = False


class CircuitOpenError(AdapterError):
    """The platform failed too often lately: calls are refused without being made."""

    transient = False


@dataclass(frozen=True)
class MetricRecord:
    date: date
    spend: Decimal
    impressions: int
    clicks: int
    conversions: int
    revenue: Decimal
    new_customers: int


class AdPlatformAdapter:
    """Create a campaign, read its details and daily metrics, pause, resume, set its budget.

    ``fetch_metrics`` takes every campaign of one tenant at once (one report call, not one
    per campaign) and answers ``{campaign id: [records]}``; campaigns the platform does not
    report are missing from the answer.
    """

    platform: str = ""
    # Whether independent calls may run in parallel threads (they must not touch the database).
    concurrent: bool = False

    def create(self, campaign: AdCampaign) -> str:
        raise NotImplementedError

    def fetch_details(self, campaign: AdCampaign) -> dict[str, Any]:
        raise NotImplementedError

    def fetch_metrics(self, campaigns: list[AdCampaign], start: date, end: date) -> dict[int, list[MetricRecord]]:
        raise NotImplementedError

    def pause(self, campaign: AdCampaign) -> None:
        raise NotImplementedError

    def resume(self, campaign: AdCampaign) -> None:
        raise NotImplementedError

    def set_budget(self, campaign: AdCampaign, daily_budget: Decimal) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Write what the adapter collected (the manual adapter's staff tasks). Called by the
        loop inside its transaction."""

    def close(self) -> None:
        """Release connections."""
