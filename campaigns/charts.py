"""Inline SVG charts of the campaign page (no script, no CDN): spend and revenue, and ROAS,
per day, with the autopilot's decisions marked on the days they were taken."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

WIDTH, HEIGHT, PAD_X, PAD_Y = 720, 220, 48, 24
DECISION_COLOURS = {
    "CONTINUE": "#15803d",
    "OPTIMIZE": "#0369a1",
    "MONITOR": "#6b7280",
    "PAUSE": "#b45309",
    "EMERGENCY_PAUSE": "#b91c1c",
}


def _scale(values: list[Decimal], low: Decimal | None = None) -> tuple[Decimal, Decimal]:
    top = max(values, default=Decimal("1"))
    bottom = min(values, default=Decimal("0")) if low is None else min(low, min(values, default=low))
    if top == bottom:
        top = bottom + 1
    return bottom, top


def _x(index: int, count: int) -> float:
    span = WIDTH - 2 * PAD_X
    return PAD_X + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: Decimal, bottom: Decimal, top: Decimal) -> float:
    return HEIGHT - PAD_Y - float((value - bottom) / (top - bottom)) * (HEIGHT - 2 * PAD_Y)


def _polyline(values: list[Decimal], bottom: Decimal, top: Decimal, colour: str, name: str) -> str:
    points = " ".join(f"{_x(i, len(values)):.1f},{_y(v, bottom, top):.1f}" for i, v in enumerate(values))
    return str(
        format_html(
            '<polyline class="campaign-series" data-series="{}" fill="none" stroke="{}" stroke-width="2" points="{}"/>',
            name,
            colour,
            points,
        )
    )


def _markers(days: list[date], decisions: list[dict[str, Any]], label: str) -> str:
    if not days:
        return ""
    index = {day: position for position, day in enumerate(days)}
    parts = []
    for item in decisions:
        position = index.get(item["window_end"])
        if position is None:
            continue
        x = f"{_x(position, len(days)):.1f}"
        colour = DECISION_COLOURS.get(item["decision"], "#6b7280")
        parts.append(
            str(
                format_html(
                    '<g class="campaign-decision" data-decision="{}"><line x1="{}" x2="{}" y1="{}" y2="{}" '
                    'stroke="{}" stroke-dasharray="3 3"/><circle cx="{}" cy="{}" r="5" fill="{}">'
                    "<title>{} {}: {}</title></circle></g>",
                    item["decision"],
                    x,
                    x,
                    PAD_Y,
                    HEIGHT - PAD_Y,
                    colour,
                    x,
                    PAD_Y,
                    colour,
                    label,
                    item["window_end"].isoformat(),
                    item["decision_label"],
                )
            )
        )
    return "".join(parts)


def _frame(title: str, body: str, days: list[date], bottom: Decimal, top: Decimal) -> SafeString:
    axis = format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d1d5db"/>'
        '<text x="4" y="{}" font-size="11" fill="#6b7280">{}</text>'
        '<text x="4" y="{}" font-size="11" fill="#6b7280">{}</text>',
        PAD_X,
        WIDTH - PAD_X,
        HEIGHT - PAD_Y,
        HEIGHT - PAD_Y,
        PAD_Y + 4,
        f"{top:.2f}",
        HEIGHT - PAD_Y,
        f"{bottom:.2f}",
    )
    dates = ""
    if days:
        dates = str(
            format_html(
                '<text x="{}" y="{}" font-size="11" fill="#6b7280">{}</text>'
                '<text x="{}" y="{}" font-size="11" fill="#6b7280" text-anchor="end">{}</text>',
                PAD_X,
                HEIGHT - 6,
                days[0].isoformat(),
                WIDTH - PAD_X,
                HEIGHT - 6,
                days[-1].isoformat(),
            )
        )
    return mark_safe(  # noqa: S308  every piece above was escaped by format_html
        f'<svg class="campaign-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg" direction="ltr"><title>{escape(title)}</title>'
        f"{axis}{dates}{body}</svg>"
    )


def campaign_charts(series: dict[str, Any], decision_labels: dict[str, str]) -> dict[str, SafeString]:
    metrics = series["metrics"]
    days = [row["date"] for row in metrics]
    decisions = [
        {**item, "decision_label": decision_labels.get(item["decision"], item["decision"])}
        for item in series["decisions"]
    ]
    spend = [row["spend"] for row in metrics]
    revenue = [row["revenue"] for row in metrics]
    roas = [((row["revenue"] - row["spend"]) / row["spend"]) if row["spend"] else Decimal("0") for row in metrics]
    label = gettext("Decision")

    bottom, top = _scale(spend + revenue, Decimal("0"))
    money_body = ""
    if metrics:
        money_body = _polyline(spend, bottom, top, "#b91c1c", "spend") + _polyline(
            revenue, bottom, top, "#15803d", "revenue"
        )
    money = _frame(
        gettext("Spend and revenue per day"), money_body + _markers(days, decisions, label), days, bottom, top
    )

    roas_bottom, roas_top = _scale(roas, Decimal("0"))
    zero = format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#9ca3af" stroke-dasharray="2 4"/>',
        PAD_X,
        WIDTH - PAD_X,
        f"{_y(Decimal('0'), roas_bottom, roas_top):.1f}",
        f"{_y(Decimal('0'), roas_bottom, roas_top):.1f}",
    )
    roas_body = (_polyline(roas, roas_bottom, roas_top, "#0369a1", "roas") if metrics else "") + str(zero)
    roas_chart = _frame(
        gettext("ROAS per day"), roas_body + _markers(days, decisions, label), days, roas_bottom, roas_top
    )
    return {"money": money, "roas": roas_chart}
