"""Reading KPI values from snapshots: series, latest values, benchmark status, change, formatting."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import translation

from kpis import periods, selectors
from kpis.dimensions import Dimension
from kpis.models import Frequency, Kpi, KpiSnapshot
from kpis.periods import Period

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)  # Wednesday of ISO week 48 (Istanbul: 15:00)
THIS_WEEK = Period(Frequency.WEEKLY, dt.date(2026, 11, 23))


def make_kpi(slug, **fields):
    fields.setdefault("name", slug)
    fields.setdefault("formula", "count(deals)")
    return Kpi.objects.create(slug=slug, **fields)


def snap(kpi, period, value, *, kind="", member=0, **fields):
    return KpiSnapshot.objects.create(
        kpi=kpi, frequency=period.frequency, period_start=period.start, period_end=period.end,
        dimension_kind=kind, dimension_id=member, value=value, formula_version=1, **fields,
    )


# --- benchmark_status ----------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high", "value", "expected"), [
    ("20", "30", "19.99", "below"),
    ("20", "30", "20", "inside"),  # the ends belong to the band
    ("20", "30", "30", "inside"),
    ("20", "30", "30.01", "above"),
    ("80", None, "79", "below"),
    ("80", None, "500", "inside"),
    (None, "10", "11", "above"),
    (None, "10", "-3", "inside"),
    (None, None, "5", None),  # text-only benchmark: no band
    ("20", "30", None, None),  # no value
])
def test_benchmark_status(low, high, value, expected):
    kpi = Kpi(slug="k", benchmark_low=low and Decimal(low), benchmark_high=high and Decimal(high))
    assert selectors.benchmark_status(kpi, value and Decimal(value)) == expected


# --- change --------------------------------------------------------------------------------------


def test_change_is_the_difference_and_the_percent_of_the_previous_value():
    delta = selectors.change(Decimal("25"), Decimal("20"))
    # 25 − 20 = 5; 5 ÷ 20 × 100 = 25 %
    assert (delta.delta, delta.percent, delta.direction) == (Decimal("5"), Decimal("25"), "up")
    delta = selectors.change(Decimal("15"), Decimal("-20"))
    # 15 − (−20) = 35; 35 ÷ |−20| × 100 = 175 %
    assert (delta.delta, delta.percent) == (Decimal("35"), Decimal("175"))


def test_change_from_zero_has_no_percent_and_missing_values_have_no_change():
    assert selectors.change(Decimal("3"), Decimal("0")) == selectors.Change(Decimal("3"), None)
    assert selectors.change(None, Decimal("1")) is None
    assert selectors.change(Decimal("1"), None) is None
    assert selectors.change(Decimal("2"), Decimal("2")).direction == "flat"


def test_change_is_better_follows_the_kpi_direction():
    up = selectors.change(Decimal("40"), Decimal("30"))
    assert up.is_better(Kpi(direction=Kpi.Direction.HIGHER)) is True
    assert up.is_better(Kpi(direction=Kpi.Direction.LOWER)) is False
    assert selectors.change(Decimal("1"), Decimal("1")).is_better(Kpi()) is None


# --- series --------------------------------------------------------------------------------------


def test_series_lists_the_last_n_periods_oldest_first_with_gaps(db, django_assert_num_queries):
    kpi = make_kpi("weekly", frequency=Frequency.WEEKLY)
    snap(kpi, THIS_WEEK, Decimal("7"))
    snap(kpi, THIS_WEEK.shift(-2), Decimal("5"))
    snap(kpi, THIS_WEEK.shift(-3), Decimal("4"))  # outside n=3
    snap(kpi, THIS_WEEK, Decimal("99"), kind="team", member=1)  # another dimension
    with django_assert_num_queries(1):
        result = selectors.series(kpi, n=3, until=THIS_WEEK)
    assert result == [(THIS_WEEK.shift(-2), Decimal("5")), (THIS_WEEK.shift(-1), None), (THIS_WEEK, Decimal("7"))]
    assert selectors.series(kpi, Dimension("team", 1), n=1, until=THIS_WEEK) == [(THIS_WEEK, Decimal("99"))]


def test_series_defaults_to_the_current_period(db, time_machine):
    time_machine.move_to(NOW, tick=False)
    kpi = make_kpi("monthly", frequency=Frequency.MONTHLY)
    november = Period(Frequency.MONTHLY, dt.date(2026, 11, 1))
    snap(kpi, november, Decimal("1.5"))
    assert selectors.series(kpi, n=2) == [(november.previous(), None), (november, Decimal("1.5"))]


def test_series_many_reads_every_kpi_in_one_query(db, django_assert_num_queries):
    kpis = [make_kpi(f"k{i}", frequency=freq) for i, freq in enumerate(Frequency.values * 3)]
    for kpi in kpis:
        current = periods.containing(kpi.frequency, NOW)
        snap(kpi, current, Decimal(kpi.pk))
        snap(kpi, current.shift(-5), Decimal(-kpi.pk))
    with django_assert_num_queries(1):
        result = selectors.series_many(kpis, n=6, now=NOW)
    for kpi in kpis:
        assert [value for _period, value in result[kpi.pk]] == [Decimal(-kpi.pk), None, None, None, None, Decimal(kpi.pk)]


def test_rows_of_another_frequency_are_not_read(db):
    # The KPI was monthly and is weekly now: a monthly row that starts on a Monday is not this week's value.
    kpi = make_kpi("changed", frequency=Frequency.WEEKLY)
    june = Period(Frequency.MONTHLY, dt.date(2026, 6, 1))  # 1 June 2026 is a Monday
    snap(kpi, june, Decimal("10"))
    assert selectors.series(kpi, n=1, until=Period(Frequency.WEEKLY, dt.date(2026, 6, 1))) == [
        (Period(Frequency.WEEKLY, dt.date(2026, 6, 1)), None)]


# --- latest_values -------------------------------------------------------------------------------


def test_latest_values_gives_current_and_previous_per_kpi_in_one_query(db, django_assert_num_queries):
    weekly = make_kpi("win-rate-x", frequency=Frequency.WEEKLY, benchmark_low=Decimal("20"),
                      benchmark_high=Decimal("30"))
    monthly = make_kpi("cycle-x", frequency=Frequency.MONTHLY, direction=Kpi.Direction.LOWER)
    empty = make_kpi("empty-x", frequency=Frequency.QUARTERLY)
    snap(weekly, THIS_WEEK, Decimal("32.5"))
    snap(weekly, THIS_WEEK.previous(), Decimal("25"), is_final=True)
    november = Period(Frequency.MONTHLY, dt.date(2026, 11, 1))
    snap(monthly, november, None, error="boom")
    snap(monthly, november.previous(), Decimal("40"))
    with django_assert_num_queries(1):
        values = selectors.latest_values([weekly, monthly, empty], now=NOW)

    w = values[weekly.pk]
    assert (w.period, w.previous_period) == (THIS_WEEK, THIS_WEEK.previous())
    assert (w.current, w.previous, w.status) == (Decimal("32.5"), Decimal("25"), "above")
    # 32.5 − 25 = 7.5; 7.5 ÷ 25 × 100 = 30 %
    assert (w.change.delta, w.change.percent) == (Decimal("7.5"), Decimal("30"))
    m = values[monthly.pk]
    assert (m.current, m.previous, m.change, m.status, m.snapshot.error) == (None, Decimal("40"), None, None, "boom")
    e = values[empty.pk]
    assert (e.snapshot, e.previous_snapshot, e.current) == (None, None, None)
    assert e.period == Period(Frequency.QUARTERLY, dt.date(2026, 10, 1))


def test_latest_values_for_a_dimension(db, north):
    kpi = make_kpi("per-team", frequency=Frequency.WEEKLY)
    snap(kpi, THIS_WEEK, Decimal("1"))
    snap(kpi, THIS_WEEK, Decimal("2"), kind="team", member=north.pk)
    assert selectors.latest_values([kpi], Dimension("team", north.pk), now=NOW)[kpi.pk].current == Decimal("2")
    assert selectors.latest_values([kpi], now=NOW)[kpi.pk].current == Decimal("1")
    assert selectors.latest_values([], now=NOW) == {}


# --- formatting ----------------------------------------------------------------------------------


def test_format_value_in_the_kpi_unit_and_the_reader_language(settings):
    settings.CRM_CURRENCY = "TRY"
    percent = Kpi(unit=Kpi.Unit.PERCENT, decimals=1)
    money = Kpi(unit=Kpi.Unit.CURRENCY, decimals=2)
    days = Kpi(unit=Kpi.Unit.DAYS, decimals=0)
    with translation.override("en"):
        assert selectors.format_value(percent, Decimal("12.345")) == "12.3%"
        assert selectors.format_value(money, Decimal("1234.5")) == "1,234.50 TRY"
        assert selectors.format_value(days, Decimal("45.4")) == "45 days"
        assert selectors.format_value(percent, None) == "n/a"
        assert selectors.format_change(percent, selectors.change(Decimal("30"), Decimal("27.5"))) == "+2.5 pts"
        assert selectors.format_change(money, selectors.change(Decimal("1"), Decimal("3"))) == "−2.00 TRY"
        assert selectors.format_change(money, None) == ""
    with translation.override("tr"):
        assert selectors.format_value(percent, Decimal("12.345")) == "%12,3"
        assert selectors.format_value(money, Decimal("1234.5")) == "1.234,50 TRY"
