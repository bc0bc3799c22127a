"""``manage.py backfill_kpis``: snapshots of past periods, final rows kept unless --force, a summary."""

import datetime as dt
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from kpis.models import Frequency, Kpi, KpiSnapshot
from kpis.periods import Period
from tests.factories import ContactFactory

ISTANBUL = ZoneInfo("Europe/Istanbul")
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=ISTANBUL)  # Wednesday of week 48


@pytest.fixture(autouse=True)
def setup(db, time_machine, alice):
    time_machine.move_to(NOW, tick=False)
    Kpi.objects.filter(is_builtin=True).update(is_active=False)
    # One contact on Monday 2 Nov (week 45), two on 10 Nov (week 46), none in week 47, one on 24 Nov (week 48).
    for day in (2, 10, 10, 24):
        ContactFactory(owner=alice, created_at=dt.datetime(2026, 11, day, 9, tzinfo=ISTANBUL))


@pytest.fixture
def kpi(db):
    return Kpi.objects.create(slug="new-contacts", name="New contacts", formula="count(contacts)",
                              frequency=Frequency.WEEKLY)


def backfill(*args) -> str:
    out = StringIO()
    call_command("backfill_kpis", *args, stdout=out)
    return out.getvalue()


def company_values(kpi) -> dict[str, tuple]:
    rows = KpiSnapshot.objects.filter(kpi=kpi, dimension_kind="").order_by("period_start")
    return {Period(row.frequency, row.period_start.astimezone(ISTANBUL).date()).key: (row.value, row.is_final)
            for row in rows}


def test_backfill_snapshots_every_period_in_the_range(kpi):
    out = backfill("--kpi", "new-contacts", "--from", "2026-11-02", "--to", "2026-11-29")
    assert company_values(kpi) == {
        "2026-W45": (Decimal("1"), True),
        "2026-W46": (Decimal("2"), True),
        "2026-W47": (Decimal("0"), True),
        "2026-W48": (Decimal("1"), False),  # still running
    }
    # Each period: the company row + North, alice (the owner dimension lists active reps and managers).
    per_period = KpiSnapshot.objects.filter(kpi=kpi, period_start=Period("weekly", dt.date(2026, 11, 2)).start).count()
    assert "Backfill 2026-11-02 – 2026-11-29:" in out
    assert f"new-contacts (weekly): 4 periods — 4 computed ({4 * per_period} rows), 0 kept, 0 failed" in out
    assert f"Total: 4 computed ({4 * per_period} rows), 0 kept, 0 failed" in out


def test_a_second_backfill_keeps_final_rows_unless_forced(kpi, alice):
    backfill("--kpi", "new-contacts", "--from", "2026-11-02", "--to", "2026-11-29")
    ContactFactory(owner=alice, created_at=dt.datetime(2026, 11, 3, 9, tzinfo=ISTANBUL))  # a late import

    out = backfill("--kpi", "new-contacts", "--from", "2026-11-02", "--to", "2026-11-29")
    assert "4 periods — 1 computed" in out and "3 kept" in out
    assert company_values(kpi)["2026-W45"] == (Decimal("1"), True)

    out = backfill("--kpi", "new-contacts", "--from", "2026-11-02", "--to", "2026-11-08", "--force")
    assert "1 periods — 1 computed" in out
    assert company_values(kpi)["2026-W45"] == (Decimal("2"), True)
    assert KpiSnapshot.objects.filter(kpi=kpi, dimension_kind="").count() == 4  # replaced, not duplicated


def test_periods_that_have_not_started_are_left_out(kpi):
    backfill("--kpi", "new-contacts", "--from", "2026-11-23", "--to", "2026-12-31")
    assert list(company_values(kpi)) == ["2026-W48"]


def test_by_default_every_active_kpi_and_a_failure_is_reported(kpi):
    monthly = Kpi.objects.create(slug="monthly-contacts", name="M", formula="count(contacts)",
                                 frequency=Frequency.MONTHLY)
    Kpi.objects.create(slug="broken", name="Broken", formula="count(contacts where stauts = 'x')")
    Kpi.objects.create(slug="off", name="Off", formula="count(contacts)", is_active=False)

    out = backfill("--from", "2026-10-01", "--to", "2026-11-29")

    assert company_values(monthly) == {"2026-10": (Decimal("0"), True), "2026-11": (Decimal("4"), False)}
    assert len(company_values(kpi)) == 9  # weeks 40 (29 Sep – 5 Oct) to 48
    assert "broken (monthly): 2 periods — 0 computed (0 rows), 0 kept, 2 failed" in out
    assert "    2026-10: " in out and "stauts" in out
    assert "  off (" not in out
    row = KpiSnapshot.objects.get(kpi__slug="broken", period_start=Period("monthly", dt.date(2026, 10, 1)).start)
    assert (row.value, row.is_final) == (None, False) and "stauts" in row.error
    assert "Total: 11 computed" in out and "2 failed" in out


def test_default_range_is_the_last_365_days(kpi):
    out = backfill("--kpi", "new-contacts")
    assert "Backfill 2025-11-25 – 2026-11-25:" in out
    # Weeks from the one containing 25 Nov 2025 (a Tuesday; week 48 of 2025) to week 48 of 2026: 53 weeks.
    assert len(company_values(kpi)) == 53


@pytest.mark.parametrize(("args", "message"), [
    (["--kpi", "new-contacs"], "Unknown KPI “new-contacs” (did you mean “new-contacts”?). Nothing was computed."),
    (["--kpi", "zzz", "new-contacts"], "Unknown KPI “zzz”. Nothing was computed."),
    (["--from", "2026-13-01"], "--from: “2026-13-01” is not a date; expected YYYY-MM-DD, e.g. 2026-01-31."),
    (["--to", "yesterday"], "--to: “yesterday” is not a date; expected YYYY-MM-DD, e.g. 2026-01-31."),
    (["--from", "2026-11-10", "--to", "2026-11-01"], "--from 2026-11-10 is after --to 2026-11-01."),
    (["--from", "2010-01-01", "--to", "2026-01-01"], "--from..--to spans more than 3660 days"),
])
def test_bad_arguments_are_refused_and_change_nothing(kpi, args, message):
    with pytest.raises(CommandError) as error:
        backfill(*args)
    assert message in str(error.value)
    assert not KpiSnapshot.objects.exists()


def test_a_start_of_period_kpi_is_not_backfilled_for_started_periods_unless_forced():
    forecast = Kpi.objects.create(slug="forecast-x", name="Forecast", formula="count(contacts)",
                                  frequency=Frequency.WEEKLY, snapshot_at_start=True)
    out = backfill("--kpi", "forecast-x", "--from", "2026-11-02", "--to", "2026-12-31")
    # Weeks 45–48 have started (the forecast would be today's, not the one each week began with); 49+ have not.
    assert "forecast-x (weekly): 4 periods — 0 computed (0 rows), 4 kept, 0 failed" in out
    assert "    kept: taken only when a period starts" in out
    assert not KpiSnapshot.objects.filter(kpi=forecast).exists()

    out = backfill("--kpi", "forecast-x", "--from", "2026-11-02", "--to", "2026-11-29", "--force")
    assert "4 periods — 4 computed" in out and "kept: taken only" not in out
    assert company_values(forecast)["2026-W46"] == (Decimal("2"), True)
