"""Template helpers for the KPI pages: values formatted by unit, changes, and server-drawn SVG charts.

The geometry is computed here in Python and written with a dot as the decimal separator whatever the
language (a template would write 12,5 in Turkish, which SVG does not read).
"""

from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext as _

from contacts.templatetags.crm import format_percent
from kpis import selectors

register = template.Library()

SPARK_WIDTH = 240
SPARK_HEIGHT = 36
CHART_WIDTH = 1080
CHART_HEIGHT = 240
CHART_LEFT = 72
CHART_TOP = 12
CHART_BOTTOM = 28


def _svg(number: float) -> str:
    return f"{number:.1f}"


def _decimals(kpi) -> int:
    decimals = getattr(kpi, "decimals", 1)
    return 1 if decimals is None else int(decimals)


def format_number(value, decimals: int) -> str:
    """A number with thousands grouping as the language writes it (1,234.5 / 1.234,5)."""
    return floatformat(value, f"{decimals}g")


def format_value(value, kpi) -> str:
    """A KPI value as people read it (see ``kpis.selectors.format_value``); kept here for callers that
    format with the page's helpers (the API's ``formatted``)."""
    return selectors.format_value(kpi, None if value == "" else value)


@register.filter
def kpi_value(value, kpi) -> str:
    """``{{ value|kpi_value:kpi }}``: the value in the KPI's unit and decimals (12.5%, Turkish %12,5;
    1,234.50 TRY; 45.2 days); “n/a” for no value. The same text as the API and the Monday report."""
    if value == "":
        value = None
    return selectors.format_value(kpi, value)


@register.filter
def kpi_number(value, kpi) -> str:
    """The value with the KPI's decimals but without the unit (chart axes, the formula's parts)."""
    if value is None or value == "":
        return _("n/a")
    return format_number(value, _decimals(kpi))


@register.filter
def plain_number(value) -> str:
    """A number without a unit: whole numbers as such (12), others with up to two decimals (12.35)."""
    if value is None or value == "":
        return _("n/a")
    return floatformat(value, "-2g")


def change_tone(delta: selectors.Change | None, kpi) -> str:
    """good / bad / flat: whether the move is welcome for the KPI (up is good when higher is better)."""
    better = delta.is_better(kpi) if delta is not None else None
    return "flat" if better is None else "good" if better else "bad"


@register.simple_tag
def kpi_change(delta, kpi) -> str:
    """The change with its sign in the KPI's unit: +2.5 pts for a percent KPI, +1,200.00 TRY, −3.0 days."""
    return selectors.format_change(kpi, delta)


@register.filter
def relative_change(delta) -> str:
    """The relative change in percent (+12%), empty when there is none (previous value zero)."""
    percent = getattr(delta, "percent", None)
    if percent is None:
        return ""
    value = Decimal(percent)
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    # Whole percents, except below 10 % where a tenth still says something (−0.2%, not −0%).
    return sign + format_percent(floatformat(abs(value), "0" if abs(value) >= 10 else "-1"))


ARROWS = {"up": "▲", "down": "▼", "flat": "▬"}


@register.filter
def trend_arrow(trend: str | None) -> str:
    return ARROWS.get(trend or "", "")


def _scale(values: list[Decimal], extra: list[Decimal] = ()) -> tuple[Decimal, Decimal]:
    numbers = [v for v in values if v is not None] + [v for v in extra if v is not None]
    if not numbers:
        return Decimal(0), Decimal(1)
    low, high = min(numbers), max(numbers)
    if low == high:
        pad = abs(low) / 10 or Decimal(1)
        low, high = low - pad, high + pad
    return low, high


def _path(points: list[tuple[float, float] | None]) -> str:
    """An SVG path through the points; a missing value breaks the line."""
    parts, pen_down = [], False
    for point in points:
        if point is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{_svg(point[0])} {_svg(point[1])}")
        pen_down = True
    return " ".join(parts)


def sparkline(values: list, *, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT, band=(None, None)) -> dict:
    """The geometry of a small trend line: ``values`` oldest first (None where a period has no value)."""
    numbers = [Decimal(v) if v is not None else None for v in values]
    low, high = _scale(numbers)
    pad = 3
    span = high - low
    step = (width - 2 * pad) / max(len(numbers) - 1, 1)

    def y(value: Decimal) -> float:
        return pad + float((high - value) / span) * (height - 2 * pad)

    points = [(pad + i * step, y(v)) if v is not None else None for i, v in enumerate(numbers)]
    drawn = [p for p in points if p is not None]
    band_low, band_high = band
    band_rect = None
    if band_low is not None or band_high is not None:
        top = y(min(Decimal(band_high), high)) if band_high is not None else 0.0
        bottom = y(max(Decimal(band_low), low)) if band_low is not None else float(height)
        top, bottom = max(top, 0.0), min(bottom, float(height))
        if bottom > top:
            band_rect = {"y": _svg(top), "height": _svg(bottom - top)}
    return {
        "width": width, "height": height, "path": _path(points), "count": len(drawn),
        "last": {"x": _svg(drawn[-1][0]), "y": _svg(drawn[-1][1])} if drawn else None,
        "band": band_rect,
    }


def nice_step(span: Decimal, ticks: int = 4) -> Decimal:
    """A round tick step (1, 2, 2.5 or 5 × 10ⁿ) so that about ``ticks`` steps cover ``span``."""
    raw = span / ticks if span > 0 else Decimal(1)
    power = Decimal(10) ** raw.adjusted()
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if raw <= step * power:
            return step * power
    return 10 * power


def chart(points: list[tuple], kpi, *, width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> dict:
    """The geometry of a KPI's history chart: ``points`` = [(period, value)], oldest first; the benchmark
    band of the KPI is shaded (an open end reaches the chart's edge)."""
    values = [Decimal(v) if v is not None else None for _p, v in points]
    band_low, band_high = kpi.benchmark_low, kpi.benchmark_high
    low, high = _scale(values, [band_low, band_high])
    step = nice_step(high - low)
    # Round the axis out to whole steps; keep zero on the axis when the values are all on one side of it.
    axis_low = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    axis_high = (high / step).to_integral_value(rounding="ROUND_CEILING") * step
    if axis_low > 0 and axis_low <= step * 2:
        axis_low = Decimal(0)
    if axis_high == axis_low:
        axis_high = axis_low + step
    plot_w, plot_h = width - CHART_LEFT - 36, height - CHART_TOP - CHART_BOTTOM
    span = axis_high - axis_low

    def y(value: Decimal) -> float:
        value = min(max(value, axis_low), axis_high)
        return CHART_TOP + float((axis_high - value) / span) * plot_h

    slot = plot_w / max(len(points), 1)

    def x(index: int) -> float:
        return CHART_LEFT + slot * index + slot / 2

    coords = [(x(i), y(v)) if v is not None else None for i, v in enumerate(values)]
    dots = [{"x": _svg(c[0]), "y": _svg(c[1]), "period": points[i][0], "value": values[i]}
            for i, c in enumerate(coords) if c is not None]
    # Label every period when they fit, otherwise every second/third… so the labels never overlap.
    every = max(1, -(-len(points) * 64 // plot_w))
    labels = [{"x": _svg(x(i)), "period": period} for i, (period, _v) in enumerate(points)
              if (len(points) - 1 - i) % every == 0]
    ticks, tick = [], axis_low
    while tick <= axis_high:
        ticks.append({"value": tick, "y": _svg(y(tick))})
        tick += step
    band = None
    if band_low is not None or band_high is not None:
        top = y(band_high) if band_high is not None else float(CHART_TOP)
        bottom = y(band_low) if band_low is not None else float(CHART_TOP + plot_h)
        if bottom > top:
            band = {"y": _svg(top), "height": _svg(bottom - top), "low": band_low, "high": band_high}
    return {
        "width": width, "height": height, "left": CHART_LEFT, "right": _svg(CHART_LEFT + plot_w),
        "axis_x": _svg(CHART_LEFT - 8), "base_y": _svg(CHART_TOP + plot_h), "label_y": _svg(height - 8),
        "path": _path(coords), "dots": dots, "labels": labels, "ticks": ticks, "band": band,
        "plot_width": _svg(plot_w), "has_values": bool(dots),
    }
