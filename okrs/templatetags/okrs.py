"""Template helpers for the OKR pages: progress as percentages, key result values in their unit, status and
confidence badges, progress bars with the expected mark, and the server-drawn SVG chart of a key result
(its values over time, the target line and the expected-pace line).

Geometry is computed here in Python and written with a dot as the decimal separator whatever the language
(a template would write 12,5 in Turkish, which SVG and CSS do not read).
"""

import datetime as dt
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django import template
from django.conf import settings
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from contacts.templatetags.crm import format_percent
from kpis.periods import company_tz
from kpis.templatetags.kpis import nice_step

from .. import progress as P
from ..selectors import cycle_window, key_result_window, pace_line

register = template.Library()

STATUS_LABELS = {
    P.ON_TRACK: gettext_lazy("On track"),
    P.AT_RISK: gettext_lazy("At risk"),
    P.OFF_TRACK: gettext_lazy("Off track"),
}
STATUS_TONES = {P.ON_TRACK: "green", P.AT_RISK: "amber", P.OFF_TRACK: "red"}

CHART_WIDTH = 640
CHART_HEIGHT = 200
CHART_LEFT = 64
CHART_RIGHT = 36
CHART_TOP = 12
CHART_BOTTOM = 28


def _svg(number: float) -> str:
    return f"{number:.1f}"


# --- numbers -------------------------------------------------------------------------------------------


@register.filter
def okr_pct(fraction) -> str:
    """A fraction as a percentage with at most one decimal: 0.35 → 35%, 0.3889 → 38.9% (Turkish %35);
    “—” for no value."""
    if fraction is None or fraction == "":
        return "—"
    return format_percent(floatformat(percent_number(fraction), "-1"))


def percent_number(fraction) -> Decimal:
    """A fraction as a percentage rounded half up to one decimal, without a trailing zero: 0.8166 → 81.7,
    0.35 → 35 (the pages, the print page and the CSV all round progress so)."""
    percent = (Decimal(fraction) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return percent.normalize() if percent else Decimal(0)


@register.filter
def okr_pace(value) -> str:
    """A pace (progress ÷ expected) with two decimals: 0.4 → 0.40; “—” while nothing is expected."""
    if value is None or value == "":
        return "—"
    return floatformat(value, 2)


# Key result values are shown with at most two decimals and no trailing zeros (15.2, not 15.20).
VALUE_PLACES = Decimal("0.01")


def rounded(value) -> Decimal:
    """A value rounded half up to two decimals, without trailing zeros: 15.2000 → 15.2, 0.125 → 0.13."""
    number = Decimal(value).quantize(VALUE_PLACES, rounding=ROUND_HALF_UP)
    return number.normalize() if number else Decimal(0)


def format_number(value) -> str:
    """A number as the language writes it, with grouping and at most two decimals: 1,250 · 15.2 · 0.13
    (Turkish 1.250 · 15,2)."""
    number = rounded(value)
    decimals = max(0, -number.as_tuple().exponent)
    return floatformat(number, f"{decimals}g")


def _kpi_unit(key_result) -> str:
    """The unit of the KPI that measures the key result ("" when kept by hand)."""
    return key_result.kpi.unit if getattr(key_result, "kpi_id", None) else ""


def counts_days(key_result) -> bool:
    """A key result measured by a KPI counted in days (sales cycle length) reads its values in days."""
    return _kpi_unit(key_result) == "days"


def unit_label(key_result) -> str:
    """The unit a key result's values are read in: Number / Percent / Money, or Days (a KPI in days)."""
    from ..models import KeyResult

    if counts_days(key_result):
        return _("Days")
    if _kpi_unit(key_result) == "currency_per_day":
        return _("Money per day")
    return str(dict(KeyResult.Unit.choices).get(key_result.unit, key_result.unit))


def format_kr_value(value, key_result) -> str:
    """A key result's value in its unit — the one helper every OKR page, the print page and the e-mails use:
    81.7% (Turkish %81,7), 1,250.5 TRY (the company currency), 15.2, 32 days; “—” for no value. A milestone
    reads done / not done."""
    if value is None or value == "":
        return "—"
    if getattr(key_result, "kind", "") == P.MILESTONE:
        return _("Done") if Decimal(value) >= 1 else _("Not done")
    number = format_number(value)
    unit = getattr(key_result, "unit", "number")
    if _kpi_unit(key_result) == "currency_per_day":
        # the KPI's own wording (pipeline velocity; the key result's unit is money): 1,250 TRY/day
        return _("%(value)s %(currency)s/day") % {"value": number, "currency": settings.CRM_CURRENCY}
    if unit == "percent":
        return format_percent(number)
    if unit == "currency":
        return f"{number} {settings.CRM_CURRENCY}"
    if counts_days(key_result):
        return ngettext("%(value)s day", "%(value)s days", 1 if rounded(value) == 1 else 2) % {"value": number}
    return number


@register.filter
def okr_value(value, key_result) -> str:
    """``{{ value|okr_value:key_result }}``: see ``format_kr_value``."""
    return format_kr_value(value, key_result)


@register.filter
def okr_number(value) -> str:
    """A plain number (a weight): 1.5, 2; “—” for none."""
    return "—" if value is None or value == "" else format_number(value)


@register.filter
def okr_unit(key_result) -> str:
    return unit_label(key_result)


@register.filter
def okr_score(value) -> str:
    """A score on the 0.0–1.0 scale: a key result's one decimal (0.7, 1.0), an objective's weighted mean with
    two at most (0.47, 0.5); “—” for none."""
    if value is None or value == "":
        return "—"
    number = Decimal(value).quantize(VALUE_PLACES, rounding=ROUND_HALF_UP)
    return floatformat(number, 2 if number * 10 % 1 else 1)


def status_label(status: str | None) -> str:
    return str(STATUS_LABELS.get(status, "")) if status else _("No status yet")


@register.filter
def okr_status_label(status) -> str:
    return status_label(status or None)


@register.simple_tag
def okr_status(status) -> str:
    """A coloured badge for a computed status (no status in the grace days or while planning)."""
    if not status:
        return format_html('<span class="badge okr-status tone-slate" data-status="none" title="{}">{}</span>',
                           _("No status in the first days of a cycle, or while it is planned."),
                           _("No status yet"))
    return format_html('<span class="badge okr-status tone-{}" data-status="{}">{}</span>',
                       STATUS_TONES[status], status, STATUS_LABELS[status])


@register.simple_tag
def okr_confidence(confidence) -> str:
    """The owner's confidence (0–10) at the latest check-in, beside the computed status: 7+ green, 4–6 amber,
    0–3 red; “—” when the latest check-in gave none (an older confidence is not shown as if it were current)."""
    if confidence is None or confidence == "":
        return format_html('<span class="okr-confidence is-none" title="{}">—</span>',
                           _("The latest check-in gave no confidence"))
    value = int(confidence)
    tone = "green" if value >= 7 else "amber" if value >= 4 else "red"
    return format_html('<span class="okr-confidence tone-{}" title="{}">{}/10</span>', tone,
                       _("Owner confidence at the latest check-in"), value)


@register.simple_tag
def okr_bar(progress, expected=None, status=None) -> str:
    """A progress bar (0–100 %) coloured by status, with a tick at the expected mark."""
    value = P.clamp(Decimal(progress)) if progress not in (None, "") else P.ZERO
    width = _svg(float(value * 100))
    tone = STATUS_TONES.get(status or "", "slate")
    marker = ""
    if expected not in (None, ""):
        mark = P.clamp(Decimal(expected))
        marker = format_html('<span class="okr-bar-expected" style="left: {}%" title="{}"></span>',
                             _svg(float(mark * 100)),
                             _("Expected by now: %(value)s") % {"value": okr_pct(mark)})
    return format_html(
        '<span class="okr-bar tone-{}" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        'aria-valuenow="{}"><span class="okr-bar-fill" style="width: {}%"></span>{}</span>',
        tone, width, width, marker,
    )


# --- the key result chart ------------------------------------------------------------------------------


def _month_starts(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The first day of each month (00:00, company time) within ``[start, end)``."""
    tz = company_tz()
    local = start.astimezone(tz)
    day = local.date().replace(day=1)
    out = []
    while True:
        moment = dt.datetime.combine(day, dt.time(), tzinfo=tz)
        if moment >= end:
            return out
        if moment >= start:
            out.append(moment)
        day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def kr_chart(key_result, cycle, series, *, now: dt.datetime | None = None, width: int = CHART_WIDTH,
             height: int = CHART_HEIGHT) -> dict:
    """The geometry of a key result's chart.

    x: time, from the cycle's first day 00:00 to the end of the cycle (or of the due date when later);
    y: values, from the start/target/readings rounded out to whole ticks (``kpis`` nice steps). The readings
    (``series``: ``SeriesPoint``s oldest first, manual and automatic check-ins) are a line with dots; the
    target (or threshold) is a horizontal line; the expected pace runs from the start value at the cycle start
    to the target at the end of the due date (increase / decrease only); a vertical line marks now.
    """
    now = now or timezone.now()
    kind = key_result.kind
    start, cycle_end = cycle_window(cycle)
    _kr_start, kr_end = key_result_window(cycle, key_result)
    end = max(cycle_end, kr_end)
    plot_w = width - CHART_LEFT - CHART_RIGHT
    plot_h = height - CHART_TOP - CHART_BOTTOM
    values = [Decimal(p.value) for p in series]
    milestone = kind == P.MILESTONE
    if milestone:
        target = Decimal(1)
        axis_low, axis_high = Decimal(0), Decimal(1)
        tick_values = [Decimal(0), Decimal(1)]
    else:
        target = Decimal(key_result.target_value)
        refs = [target] + ([Decimal(key_result.start_value)] if kind in P.TO_TARGET else [])
        low, high = min(values + refs), max(values + refs)
        if low == high:
            pad = abs(low) / 10 or Decimal(1)
            low, high = low - pad, high + pad
        step = nice_step(high - low)
        axis_low = (low / step).to_integral_value(rounding=ROUND_FLOOR) * step
        axis_high = (high / step).to_integral_value(rounding=ROUND_CEILING) * step
        if axis_high == axis_low:
            axis_high = axis_low + step
        tick_values, tick = [], axis_low
        while tick <= axis_high:
            tick_values.append(tick)
            tick += step
    span_v = axis_high - axis_low
    span_t = (end - start).total_seconds()

    def x(moment: dt.datetime) -> float:
        share = min(max((moment - start).total_seconds() / span_t, 0.0), 1.0)
        return CHART_LEFT + share * plot_w

    def y(value: Decimal) -> float:
        value = min(max(Decimal(value), axis_low), axis_high)
        return CHART_TOP + float((axis_high - value) / span_v) * plot_h

    dots = [{"x": _svg(x(p.measured_at)), "y": _svg(y(p.value)), "value": p.value, "measured_at": p.measured_at,
             "is_automatic": p.is_automatic, "confidence": p.confidence} for p in series]
    path = " ".join(f"{'L' if i else 'M'}{d['x']} {d['y']}" for i, d in enumerate(dots))
    pace = None
    line = pace_line(key_result, cycle)
    if line is not None:
        (t1, v1), (t2, v2) = line
        pace = {"x1": _svg(x(t1)), "y1": _svg(y(v1)), "x2": _svg(x(t2)), "y2": _svg(y(v2))}
    today = _svg(x(now)) if start <= now < end else None
    expected_dot = None
    if line is not None and start <= now < kr_end:
        # where the value should be now: start + expected × (target − start)
        share = P.expected_progress(start, kr_end, now)
        value = Decimal(key_result.start_value) + share * (target - Decimal(key_result.start_value))
        expected_dot = {"x": _svg(x(now)), "y": _svg(y(value)), "value": value}
    right = CHART_LEFT + plot_w
    return {
        "width": width, "height": height, "left": CHART_LEFT, "right": _svg(right), "top": CHART_TOP,
        "axis_x": _svg(CHART_LEFT - 6), "base_y": _svg(CHART_TOP + plot_h), "label_y": _svg(height - 8),
        "dots": dots, "path": path, "has_values": bool(dots),
        "target": {"y": _svg(y(target)), "value": target},
        "pace": pace, "today": today, "expected": expected_dot,
        "ticks": [{"y": _svg(y(v)), "value": v, "label": okr_value(v, key_result)} for v in tick_values],
        "labels": [{"x": _svg(x(m)), "date": m.date()} for m in _month_starts(start, end)],
    }
