"""The report pages: forecast, weekly pipeline review, win/loss analysis.

Thin doors to ``pipeline.reports``: read the parameters with the shared forms, compute, render. Bad
parameters answer 400 with the form's messages on the page (no figures). The charts are plain SVG drawn
here from the report's figures (no JavaScript, no CDN); the tables under them carry the same numbers.
"""

from decimal import Decimal

from django.conf import settings
from django.shortcuts import render
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from accounts.views import browser_user_required

from . import reports

# Rows listed per section of the review page (the API lists up to reports.REVIEW_LIMIT).
REVIEW_PAGE_LIMIT = 50
CHART_HEIGHT = 180
CHART_WIDTH = 960
CHART_LEFT = 104


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at least ``value``: the top of a chart's axis."""
    if value <= 0:
        return Decimal(1)
    power = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _height(value: Decimal, top: Decimal) -> float:
    return float(value / top) * CHART_HEIGHT if value > 0 else 0.0


def _svg(number: float) -> str:
    """A coordinate as SVG wants it, whatever the language (templates would write 12,5 in Turkish)."""
    return f"{number:.1f}"


def forecast_chart(report: dict) -> dict:
    """Bar geometry: per month, the weighted open amount beside the amount won."""
    months = report["months"]
    top = nice_ceiling(max([m["weighted"] for m in months] + [m["won_amount"] for m in months] + [Decimal(0)]))
    base = CHART_HEIGHT + 10
    slot = (CHART_WIDTH - CHART_LEFT) / max(len(months), 1)
    bar = min(slot * 0.3, 40)
    bars = []
    for index, month in enumerate(months):
        middle = CHART_LEFT + index * slot + slot / 2
        weighted, won = _height(month["weighted"], top), _height(month["won_amount"], top)
        bars.append({
            "month": month, "x": _svg(middle - bar - 1), "label_x": _svg(middle), "won_x": _svg(middle + 1),
            "weighted_y": _svg(base - weighted), "weighted_h": _svg(weighted),
            "won_y": _svg(base - won), "won_h": _svg(won),
        })
    ticks = [{"value": top * share / 4, "y": _svg(base - CHART_HEIGHT * share / 4)} for share in range(5)]
    return {"bars": bars, "ticks": ticks, "bar_width": _svg(bar), "width": _svg(CHART_WIDTH),
            "height": _svg(CHART_HEIGHT + 40), "base_y": _svg(base), "label_y": _svg(CHART_HEIGHT + 28),
            "axis_x": _svg(CHART_LEFT - 8), "tick_x": _svg(CHART_LEFT - 12)}


def forecast_breakdowns(report: dict) -> list[dict]:
    """The per-owner and per-team tables: each row's cells in column order (overdue, the months, no date,
    later, total)."""

    def rows(groups):
        return [{"name": g["name"], "cells": [g["overdue"], *g["months"], g["no_date"], g["outside"], g["total"]]}
                for g in groups]

    return [
        {"key": "owners", "title": _("Per owner"), "label": _("Owner"), "none": _("No owner"),
         "rows": rows(report["owners"])},
        {"key": "teams", "title": _("Per team"), "label": _("Team"), "none": _("No team"),
         "rows": rows(report["teams"])},
    ]


def funnel_chart(report: dict) -> list[dict]:
    """Bar widths for the funnel: entered per stage (percent of the widest), and inside each bar the
    part that went further (percent of the bar)."""
    rows = report["funnel"]
    top = max([row["entered"] for row in rows] + [1])
    return [{
        "row": row,
        "width": _svg(100 * row["entered"] / top),
        "advanced_width": _svg(100 * (row["advanced"] or 0) / row["entered"] if row["entered"] else 0),
    } for row in rows]


def _amount(deal, currency: str) -> tuple[str, str]:
    """A deal's amount as the tables show it, and its currency when it is not the company's."""
    if deal.amount is None:
        return "—", ""
    return floatformat(deal.amount, "2g"), deal.currency if deal.currency != currency else ""


def _when(value, fmt: str) -> str:
    return date_format(timezone.localtime(value), fmt) if value else "—"


def _cell(text: str, css: str = "", sub: str = "") -> dict:
    # Dicts, not tuples: the template engine looks an index up in dir(tuple) first, which is slow.
    return {"css": css, "text": text, "sub": sub}


def review_rows(section: dict, currency: str) -> list[dict]:
    """A review section's items as display rows: the deal, the cells between, the amount."""
    rows = []
    for item in section["items"]:
        if section["key"] in (reports.NEW, reports.STALE):
            deal = item
            cells = [_cell(deal.stage.name), _cell(str(deal.owner or "—"), "nowrap")]
            if section["key"] == reports.NEW:
                cells += [_cell(str(deal.created_by or "—"), "nowrap"),
                          _cell(_when(deal.created_at, "j M, H:i"), "nowrap muted")]
            else:
                cells += [_cell(str(deal.in_stage.days), "num"), _cell(_when(deal.rots_at, "j M Y"), "nowrap muted")]
            sub = ""
        else:
            deal = item.deal
            cells = [_cell(f"{item.from_stage_name or '—'} → {item.to_stage_name}", "nowrap"),
                     _cell(str(item.actor or "—"), "nowrap"),
                     _cell(_when(item.changed_at, "D j M, H:i"), "nowrap muted")]
            if section["key"] == "lost":
                cells.append(_cell(deal.lost_reason.name if deal.lost_reason else "—",
                                   sub=Truncator(deal.lost_note).chars(80)))
            sub = str(deal.owner or "")
        amount, other = _amount(deal, currency)
        rows.append({"pk": deal.pk, "name": deal.name, "sub": sub, "cells": cells, "amount": amount,
                     "currency": other})
    return rows


def review_titles() -> dict[str, str]:
    return {
        "forward": _("Moved forward"), "backward": _("Moved backward"), "won": _("Won"), "lost": _("Lost"),
        "reopened": _("Reopened"), "new": _("New deals"), "stale": _("Stuck: stale now"),
    }


def _render(request, template: str, params, compute, extra=None):
    context = {"params": params, "report": None, "currency": settings.CRM_CURRENCY}
    if not params.is_valid():
        return render(request, template, context, status=400)
    context["report"] = compute(params.cleaned_data, params.filters())
    if extra:
        context.update(extra(context["report"]))
    return render(request, template, context)


@browser_user_required
def forecast(request):
    params = reports.ForecastParams(request.GET, user=request.user)
    return _render(
        request, "pipeline/report_forecast.html", params,
        lambda data, filters: reports.forecast(
            user=request.user, first_month=data["from"], last_month=data["to"], **filters),
        lambda report: {"chart": forecast_chart(report), "breakdowns": forecast_breakdowns(report)},
    )


@browser_user_required
def pipeline_review(request):
    params = reports.ReviewParams(request.GET, user=request.user)
    return _render(
        request, "pipeline/report_review.html", params,
        lambda data, filters: reports.pipeline_review(user=request.user, since=data["since"], limit=REVIEW_PAGE_LIMIT,
                                                      **filters),
        lambda report: {"sections": [
            {**report["sections"][key], "title": title, "rows": review_rows(report["sections"][key], report["currency"])}
            for key, title in review_titles().items()]},
    )


@browser_user_required
def win_loss(request):
    params = reports.WinLossParams(request.GET, user=request.user)
    return _render(
        request, "pipeline/report_win_loss.html", params,
        lambda data, filters: reports.win_loss(
            user=request.user, date_from=data["from"], date_to=data["to"], **filters),
        lambda report: {
            "funnel_bars": funnel_chart(report),
            "several_pipelines": len({row["pipeline"] for row in report["by_lost_stage"] if row["pipeline"]}) > 1,
        },
    )
