"""Helpers of the CRM tests."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

RIYADH = ZoneInfo("Asia/Riyadh")


def next_weekday(weekday: int, weeks_ahead: int = 1) -> date:
    """A date ``weeks_ahead`` weeks from now falling on ``weekday`` (0 = Monday)."""
    today = date.today() + timedelta(days=7 * weeks_ahead)
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def riyadh(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=RIYADH)


@pytest.fixture(autouse=True)
def english_messages(settings):
    """Messages are asserted in English unless a test switches to Arabic."""
    settings.LANGUAGE_CODE = "en"
