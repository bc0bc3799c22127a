"""Reads of KPI values from their snapshots, for the dashboard, the KPI page, the API and the Monday report.

Everyone signed in may read KPI values (they are aggregates), so nothing here is scoped by visibility.
Every function reads snapshots only — it never evaluates a formula — and its query count does not grow
with the number of KPIs or periods:

- ``series(kpi, dimension=None, n=12)``: one KPI's last ``n`` periods → ``[(Period, value)]`` (1 query).
- ``series_many(kpis, dimension=None, n=12)``: the same for many KPIs → ``{kpi.id: [(Period, value)]}``
  (1 query; the dashboard's trend lines).
- ``latest_values(kpis, dimension=None, now=None)``: current and previous period per KPI →
  ``{kpi.id: LatestValue}`` (1 query).
- ``values_for(kpis_periods, dimension=None)``: the snapshot rows of chosen periods (1 query).
- ``benchmark_status(kpi, value)``: "inside" | "above" | "below" | None.
- ``change(current, previous)``: a ``Change`` (difference and percent) or None.
- ``format_value(kpi, value)``: a value as people read it (12.5%, 1,234.00 TRY, 45 days, n/a).
- ``uses_money(kpi)`` / ``unconverted_currencies(last_day)``: which currencies' deal amounts money KPIs leave
  out for want of an exchange rate (1 query, for a whole page or report).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Q
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import periods
from .dimensions import Dimension
from .models import Kpi, KpiSnapshot
from .periods import Period

INSIDE, ABOVE, BELOW = "inside", "above", "below"


def _dimension_q(dimension: Dimension | None) -> Q:
    if dimension is None:
        return Q(dimension_kind="", dimension_id=0)
    return Q(dimension_kind=dimension.kind, dimension_id=dimension.id)


def values_for(
    kpis_periods: list[tuple[Kpi, list[Period]]], dimension: Dimension | None = None
) -> dict[tuple[int, dt.datetime], KpiSnapshot]:
    """The snapshot rows of the given KPIs and periods for one dimension (None: the company), in one query,
    keyed by ``(kpi.id, period.start)``. A period's row is only matched when the KPI's frequency is the
    period's (rows kept from before a frequency change are ignored)."""
    condition = Q()
    for kpi, kpi_periods in kpis_periods:
        starts = [period.start for period in kpi_periods]
        if starts:
            condition |= Q(kpi_id=kpi.pk, frequency=kpi_periods[0].frequency, period_start__in=starts)
    if not condition:
        return {}
    rows = KpiSnapshot.objects.filter(condition, _dimension_q(dimension)).only(
        "kpi_id", "period_start", "value", "computed_at", "is_final", "error", "formula_version",
        "dimension_kind", "dimension_id", "dimension_label", "frequency", "period_end",
    )
    return {(row.kpi_id, row.period_start): row for row in rows}


def series(kpi: Kpi, dimension: Dimension | None = None, n: int = 12, *, until: Period | None = None):
    """The last ``n`` periods of the KPI's frequency up to ``until`` (the current period), oldest first, as
    ``[(Period, Decimal | None)]``: None where no snapshot was taken or it had no value. One query."""
    return series_many([kpi], dimension, n, until=until)[kpi.pk]


def series_many(
    kpis: list[Kpi], dimension: Dimension | None = None, n: int = 12, *, now: dt.datetime | None = None,
    until: Period | None = None,
) -> dict[int, list[tuple[Period, Decimal | None]]]:
    """``series`` for many KPIs in one query: ``{kpi.id: [(Period, value)]}``. ``until`` (a period of the
    same frequency) applies to KPIs of its frequency; the others end with their current period."""
    plans = []
    for kpi in kpis:
        last = until if until is not None and until.frequency == kpi.frequency else None
        plans.append((kpi, periods.last_n(kpi.frequency, max(n, 0), last or periods.containing(kpi.frequency, now))))
    rows = values_for(plans, dimension)
    return {
        kpi.pk: [(period, _value(rows.get((kpi.pk, period.start)))) for period in kpi_periods]
        for kpi, kpi_periods in plans
    }


def _value(row: KpiSnapshot | None) -> Decimal | None:
    return None if row is None else row.value


@dataclass(frozen=True)
class Change:
    """How a value moved: ``delta`` = current − previous (in the KPI's unit: points for a percent KPI);
    ``percent`` = delta ÷ |previous| × 100, None when previous is 0."""

    delta: Decimal
    percent: Decimal | None

    @property
    def direction(self) -> str:
        """"up", "down" or "flat"."""
        return "up" if self.delta > 0 else "down" if self.delta < 0 else "flat"

    def is_better(self, kpi: Kpi) -> bool | None:
        """True when the move is good for this KPI (up for higher-is-better), None when flat."""
        if self.delta == 0:
            return None
        return (self.delta > 0) == (kpi.direction == Kpi.Direction.HIGHER)


def change(current: Decimal | None, previous: Decimal | None) -> Change | None:
    """The change from ``previous`` to ``current``; None when either has no value."""
    if current is None or previous is None:
        return None
    delta = Decimal(current) - Decimal(previous)
    percent = None if previous == 0 else delta * 100 / abs(Decimal(previous))
    return Change(delta, percent)


def benchmark_status(kpi: Kpi, value: Decimal | None) -> str | None:
    """Where ``value`` sits against the KPI's benchmark band: "inside", "above" or "below" (either end of the
    band may be open, ends included); None when there is no value or the KPI has no band (text only)."""
    low, high = kpi.benchmark_low, kpi.benchmark_high
    if value is None or (low is None and high is None):
        return None
    if low is not None and value < low:
        return BELOW
    if high is not None and value > high:
        return ABOVE
    return INSIDE


@dataclass(frozen=True)
class LatestValue:
    """A KPI's value for the current period and the one before, as the dashboard shows it."""

    kpi: Kpi
    period: Period
    previous_period: Period
    snapshot: KpiSnapshot | None  # the current period's row (computed_at, error, is_final); None if not taken
    previous_snapshot: KpiSnapshot | None

    @property
    def current(self) -> Decimal | None:
        return _value(self.snapshot)

    @property
    def previous(self) -> Decimal | None:
        return _value(self.previous_snapshot)

    @property
    def change(self) -> Change | None:
        return change(self.current, self.previous)

    @property
    def status(self) -> str | None:
        return benchmark_status(self.kpi, self.current)


def latest_values(
    kpis: list[Kpi], dimension: Dimension | None = None, now: dt.datetime | None = None
) -> dict[int, LatestValue]:
    """For each KPI, its current period (of its own frequency) and the previous one: ``{kpi.id: LatestValue}``.
    One query whatever the number of KPIs."""
    plans = []
    for kpi in kpis:
        current = periods.containing(kpi.frequency, now)
        plans.append((kpi, [current, current.previous()]))
    rows = values_for(plans, dimension)
    return {
        kpi.pk: LatestValue(kpi, current, previous, rows.get((kpi.pk, current.start)), rows.get((kpi.pk, previous.start)))
        for kpi, (current, previous) in plans
    }


def format_value(kpi: Kpi, value: Decimal | None, *, decimals: int | None = None) -> str:
    """A value in the KPI's unit as the active language writes it: "12.5%" (Turkish "%12,5"), "1,234.50 TRY",
    "45.2 days"; "n/a" when there is no value."""
    if value is None:
        return _("n/a")
    places = kpi.decimals if decimals is None else decimals
    # A negative value takes the minus sign the changes use ("−12.5%", Turkish "−%12,5"); one that rounds
    # to zero none.
    sign = "−" if rounded(value, places) < 0 else ""
    number = floatformat(abs(Decimal(value)), f"{places}g")
    if kpi.unit == Kpi.Unit.PERCENT:
        from contacts.templatetags.crm import format_percent

        return sign + format_percent(number)
    if kpi.unit == Kpi.Unit.CURRENCY:
        return f"{sign}{number} {settings.CRM_CURRENCY}"
    if kpi.unit == Kpi.Unit.CURRENCY_PER_DAY:
        # Translators: money per day, e.g. "1,250 TRY/day".
        return _("%(value)s %(currency)s/day") % {"value": sign + number, "currency": settings.CRM_CURRENCY}
    if kpi.unit == Kpi.Unit.DAYS:
        return ngettext("%(value)s day", "%(value)s days", 1 if value == 1 else 2) % {"value": sign + number}
    return sign + number


def rounded(value: Decimal | None, places: int) -> Decimal | None:
    """``value`` rounded half up to ``places`` decimals, as it is shown."""
    if value is None:
        return None
    return Decimal(value).quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)


def format_change(kpi: Kpi, delta: Change | None) -> str:
    """A change with its sign: "+2.5 pts" for a percent KPI, "+1,200.00 TRY", "−3 days"; "" without one."""
    if delta is None:
        return ""
    sign = "+" if delta.delta > 0 else "−" if delta.delta < 0 else "±"
    magnitude = abs(delta.delta)
    if kpi.unit == Kpi.Unit.PERCENT:
        # Translators: a change of a percentage, in percentage points ("+2.5 pts").
        text = _("%(value)s pts") % {"value": floatformat(magnitude, f"{kpi.decimals}g")}
    else:
        text = format_value(kpi, magnitude)
    return f"{sign}{text}"


MONEY_UNITS = frozenset({"currency", "currency_per_day"})


def uses_money(kpi: Kpi) -> bool:
    """Whether the KPI is about deal amounts (converted to the company currency): its unit is money, or its
    formula reads amounts (``deals.amount``, ``weighted_amount``). Decided without compiling (no query)."""
    return kpi.unit in MONEY_UNITS or "amount" in (kpi.formula or "").lower()


def unconverted_currencies(last_day: dt.date) -> list[str]:
    """Currencies of deals with an amount and no exchange rate valid on or before ``last_day`` (their amounts are
    left out of money KPIs), sorted. One query."""
    from pipeline.models import Deal

    from .models import ExchangeRate

    rated = ExchangeRate.objects.filter(valid_from__lte=last_day).values("currency")
    return sorted(
        Deal.objects.filter(amount__isnull=False).exclude(currency=settings.CRM_CURRENCY).exclude(currency__in=rated)
        .order_by().values_list("currency", flat=True).distinct()
    )


def unconverted_for(kpis: list[Kpi], kpi_periods: list[Period]) -> list[str]:
    """``unconverted_currencies`` for the money KPIs among ``kpis`` shown for ``kpi_periods`` (parallel lists):
    a currency without a rate by the earliest last day is left out of at least one of them. [] without a money
    KPI (no query then)."""
    days = [period.last_day for kpi, period in zip(kpis, kpi_periods, strict=True) if uses_money(kpi)]
    return unconverted_currencies(min(days)) if days else []
