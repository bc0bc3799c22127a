"""The built-in KPIs (kpis/builtins.py): the rows the migration installs, and each KPI on a small hand-built
fixture with its exact value, through the formula compiler and through the hand-written SQL of
kpis/reference_sql.py (the two must agree).

Times are local (Europe/Istanbul, UTC+3 all year). Weekly periods are ISO weeks: 2026-W41 is Mon 5 Oct –
Mon 12 Oct 2026. The tests run on 23 Nov 2026 (time_machine), so every period used has ended and "at the period
end" is the period's end — except December's forecast, which only reads the current status.
"""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.utils import translation

from accounts.models import User
from contacts.models import Activity, CustomFieldDefinition, Entity, LifecycleChange
from crm_okr.models import FieldChange
from kpis import builtins, periods, reference_sql
from kpis.dimensions import Dimension
from kpis.models import (
    DimensionKind,
    ExchangeRate,
    ExternalMetric,
    Frequency,
    Kpi,
    KpiSnapshot,
    MetricValue,
    SurveyResponse,
)
from pipeline import services as deal_services
from pipeline.models import Deal, StageChange
from tests.factories import ActivityFactory, CompanyFactory, ContactFactory, LeadSourceFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = settings.CRM_CURRENCY


def at(year, month, day, hour=0, minute=0, second=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=periods.company_tz())


def period(frequency: str, key: str) -> periods.Period:
    return periods.parse(frequency, key)


def evaluated(slug: str, the_period, dimension=None) -> Decimal | None:
    """The KPI's value through the formula compiler (kpis.services.evaluate)."""
    from kpis.services import evaluate

    return evaluate(Kpi.objects.get(slug=slug), the_period, dimension)


def assert_value(slug: str, the_period, expected: Decimal) -> None:
    """The same exact value through the hand-written SQL and through the formula."""
    reference = reference_sql.value(slug, the_period)
    assert reference == expected, f"reference SQL of {slug}: {reference} != {expected}"
    compiled = evaluated(slug, the_period)
    assert compiled == expected, f"formula of {slug}: {compiled} != {expected}"


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC), tick=True):
        yield


@pytest.fixture
def deal(make_deal, stages, price, alice):
    """``deal(created=…, status="won", closed=…, amount=…)``: made and moved through the services, then placed
    in time with ``.update()``."""

    def make(*, created, status="open", closed=None, amount=Decimal("1000"), currency=BASE, stage="Lead",
             owner=None, expected=dt.date(2026, 12, 31), **data):
        owner = owner or alice
        made = make_deal(owner, stage=stages[stage], amount=amount, currency=currency,
                         expected_close_date=expected, **data)
        if status != "open":
            made = deal_services.deal_move(actor=owner, deal=made, stage=stages["Won" if status == "won" else "Lost"],
                                           lost_reason=price if status == "lost" else None)
        Deal.objects.filter(pk=made.pk).update(created_at=created, closed_at=closed if status != "open" else None)
        made.refresh_from_db()
        return made

    return make


def metric_value(key: str, first_day: dt.date, last_day: dt.date, value, dimension_id: int = 0) -> MetricValue:
    return MetricValue.objects.create(metric=ExternalMetric.objects.get(key=key), period_start=first_day,
                                      period_end=last_day, dimension_id=dimension_id, value=Decimal(value))


def lifecycle(contact, *steps) -> None:
    """Write a contact's lifecycle history ``(stage, when), …`` and leave it in the last stage."""
    previous = ""
    for stage, when in steps:
        LifecycleChange.objects.create(contact=contact, from_stage=previous, to_stage=stage, changed_at=when)
        previous = stage
    type(contact).objects.filter(pk=contact.pk).update(lifecycle_stage=previous, lifecycle_changed_at=steps[-1][1])


# --- the definitions ---------------------------------------------------------------------------------------


def test_the_migration_installed_every_builtin_kpi_and_metric():
    assert set(Kpi.objects.filter(is_builtin=True).values_list("slug", flat=True)) == set(builtins.BUILTIN_SLUGS)
    assert len(builtins.BUILTIN_SLUGS) == 16  # the 15 and the sales forecast forecast accuracy reads
    assert dict(ExternalMetric.objects.values_list("key", "dimension_kind")).items() >= {
        "marketing_spend": "source", "sales_spend": "", "customer_lifetime_years": ""}.items()
    assert ExternalMetric.objects.get(key="customer_lifetime_years").unit == "number"
    win_rate = Kpi.objects.get(slug="win-rate")
    assert (win_rate.name, win_rate.unit, win_rate.frequency, win_rate.benchmark_low, win_rate.benchmark_high) == (
        "Win rate", "percent", "weekly", Decimal("20"), Decimal("30"))
    assert win_rate.description == ("Win rate (%) = deals won in the period ÷ deals won or lost in the period "
                                     "× 100.")
    forecast = Kpi.objects.get(slug="sales-forecast")
    assert forecast.snapshot_at_start and not Kpi.objects.get(slug="forecast-accuracy").snapshot_at_start
    assert Kpi.objects.get(slug="pipeline-value").frequency == "daily"
    assert Kpi.objects.get(slug="sales-cycle-length").direction == "lower"
    assert Kpi.objects.get(slug="lead-source-roi").dimensions == ["source"]


def test_definitions_use_known_choices():
    for kpi in builtins.BUILTIN_KPIS:
        assert kpi.unit in Kpi.Unit.values and kpi.frequency in Frequency.values, kpi.slug
        assert kpi.direction in Kpi.Direction.values, kpi.slug
        assert set(kpi.dimensions) <= set(DimensionKind.values), kpi.slug
        assert list(kpi.dimensions) == [k for k in DimensionKind.values if k in kpi.dimensions], kpi.slug
        assert kpi.benchmark_low is None or kpi.benchmark_high is None or kpi.benchmark_low <= kpi.benchmark_high
    orders = [kpi.order for kpi in builtins.BUILTIN_KPIS]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert set(reference_sql.QUERIES) == set(builtins.BUILTIN_SLUGS)


def test_install_is_idempotent_and_repairs_a_changed_builtin():
    assert builtins.install_builtins() == {"created": 0, "updated": 0}
    kpi = Kpi.objects.get(slug="nps")
    Kpi.objects.filter(pk=kpi.pk).update(formula="count(contacts)", benchmark_low=1, name="x")
    Kpi.objects.get(slug="ltv").delete()
    assert builtins.install_builtins() == {"created": 1, "updated": 1}
    again = Kpi.objects.get(slug="nps")
    assert (again.formula, again.benchmark_low, again.name, again.formula_version) == (
        builtins.BY_SLUG["nps"].formula, Decimal("50"), "Net Promoter Score (NPS)", kpi.formula_version + 1)
    assert builtins.install_builtins() == {"created": 0, "updated": 0}


def test_names_are_stored_in_english_and_shown_in_the_readers_language():
    with translation.override("tr"):
        builtins.install_builtins()
    kpi = Kpi.objects.get(slug="lead-conversion-rate")
    assert kpi.name == "Lead conversion rate"
    with translation.override("en"):
        assert builtins.display_name(kpi) == "Lead conversion rate"
    kpi.name = "Dönüşüm (bizim tanım)"  # an admin's own name is shown as written
    assert builtins.display_name(kpi) == "Dönüşüm (bizim tanım)"


def test_every_formula_compiles_with_the_dimensions_stored():
    from kpis.formula import compile_formula

    for kpi in builtins.BUILTIN_KPIS:
        compiled = compile_formula(kpi.formula, slug=kpi.slug)
        assert list(compiled.dimensions) == list(kpi.dimensions), kpi.slug
    assert set(compile_formula(builtins.BY_SLUG["pipeline-velocity"].formula).references) == {
        "average-deal-value", "win-rate", "sales-cycle-length"}


# --- each KPI on a hand-built fixture ---------------------------------------------------------------------


def test_lead_conversion_rate(deal):
    week = period("weekly", "2026-W41")  # [Mon 5 Oct 00:00, Mon 12 Oct 00:00)
    for when in [week.start, at(2026, 10, 6, 9), at(2026, 10, 7), at(2026, 10, 8), at(2026, 10, 9),
                 at(2026, 10, 10), at(2026, 10, 11, 23, 59, 59)]:
        ContactFactory(created_at=when)
    ContactFactory(created_at=at(2026, 10, 8), archived_at=at(2026, 10, 9))  # archived: still created that week
    ContactFactory(created_at=week.end)  # the next week
    ContactFactory(created_at=at(2026, 10, 4, 23, 59))  # the week before
    deal(created=at(2026, 10, 5, 10))
    deal(created=at(2026, 10, 9, 15), status="won", closed=at(2026, 10, 20))
    deal(created=week.end)
    # 2 deals created in the week * 100 / 8 contacts created in the week = 25
    assert_value("lead-conversion-rate", week, Decimal("25"))


def test_sales_cycle_length(deal):
    october = period("monthly", "2026-10")
    deal(created=at(2026, 9, 1), status="won", closed=at(2026, 10, 1, 12))  # 30.5 days
    deal(created=at(2026, 7, 3, 12), status="won", closed=at(2026, 10, 31, 12))  # 28 + 31 + 30 + 31 = 120 days
    deal(created=at(2026, 10, 2, 6), status="won", closed=at(2026, 10, 19, 18))  # 17.5 days
    deal(created=at(2026, 9, 1), status="lost", closed=at(2026, 10, 5))  # lost: not counted
    deal(created=at(2026, 9, 1), status="won", closed=october.end)  # won in November
    deal(created=at(2026, 9, 1), status="won", closed=at(2026, 9, 30, 23, 59))  # won in September
    # (30.5 + 120 + 17.5) / 3 = 168 / 3 = 56 days
    assert_value("sales-cycle-length", october, Decimal("56"))


def test_pipeline_value_converts_currencies_and_leaves_out_the_ones_without_a_rate(deal):
    day = period("daily", "2026-10-15")  # the end: 16 Oct 00:00; the rate of the last day (15 Oct) counts
    ExchangeRate.objects.create(currency="EUR", rate=Decimal("35"), valid_from=dt.date(2026, 10, 1))
    ExchangeRate.objects.create(currency="EUR", rate=Decimal("40"), valid_from=dt.date(2026, 10, 16))
    ExchangeRate.objects.create(currency="EUR", rate=Decimal("45"), valid_from=dt.date(2026, 10, 17))
    deal(created=at(2026, 10, 1), amount=Decimal("100000"))  # open
    deal(created=at(2026, 10, 1), amount=Decimal("50000"), status="won", closed=at(2026, 10, 20))  # open then
    deal(created=at(2026, 10, 1), amount=Decimal("7000"), status="lost", closed=day.end)  # closed at the end
    deal(created=at(2026, 10, 2), amount=Decimal("1000"), currency="EUR")  # 1,000 EUR × 35
    deal(created=at(2026, 10, 2), amount=Decimal("500"), currency="USD")  # no USD rate: left out
    deal(created=at(2026, 10, 2), amount=None)  # no amount
    deal(created=at(2026, 10, 1), amount=Decimal("9000"), status="won", closed=at(2026, 10, 10))  # won before
    deal(created=day.end, amount=Decimal("8000"))  # created after the end
    # 100,000 + 50,000 + 7,000 + 1,000 × 35 = 192,000
    assert_value("pipeline-value", day, Decimal("192000"))


def test_win_rate(deal):
    week = period("weekly", "2026-W41")
    for when in [week.start, at(2026, 10, 7), at(2026, 10, 11, 23)]:
        deal(created=at(2026, 9, 1), status="won", closed=when)
    for when in [at(2026, 10, 5, 8), at(2026, 10, 6), at(2026, 10, 8), at(2026, 10, 9), at(2026, 10, 10)]:
        deal(created=at(2026, 9, 1), status="lost", closed=when)
    deal(created=at(2026, 9, 1), status="won", closed=week.end)
    deal(created=at(2026, 9, 1), status="lost", closed=at(2026, 10, 4, 23))
    deal(created=at(2026, 10, 6))  # open
    # 3 won * 100 / (3 won + 5 lost) = 300 / 8 = 37.5
    assert_value("win-rate", week, Decimal("37.5"))


def test_average_deal_value(deal):
    october = period("monthly", "2026-10")
    ExchangeRate.objects.create(currency="EUR", rate=Decimal("35"), valid_from=dt.date(2026, 9, 1))
    deal(created=at(2026, 9, 1), status="won", closed=at(2026, 10, 3), amount=Decimal("100000"))
    deal(created=at(2026, 9, 1), status="won", closed=at(2026, 10, 13), amount=Decimal("165000"))
    deal(created=at(2026, 9, 1), status="won", closed=at(2026, 10, 23), amount=Decimal("1000"), currency="EUR")
    deal(created=at(2026, 9, 1), status="lost", closed=at(2026, 10, 5), amount=Decimal("999999"))
    deal(created=at(2026, 9, 1), status="won", closed=october.end, amount=Decimal("999999"))
    # (100,000 + 165,000 + 1,000 EUR × 35) / 3 = 300,000 / 3 = 100,000
    assert_value("average-deal-value", october, Decimal("100000"))


def test_cac():
    october = period("monthly", "2026-10")
    web, fair = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Fuar")
    oct1, oct31 = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
    metric_value("marketing_spend", oct1, oct31, 60000, web.pk)
    metric_value("marketing_spend", oct1, oct31, 30000, fair.pk)
    metric_value("sales_spend", oct1, oct31, 90000)
    metric_value("marketing_spend", dt.date(2026, 9, 1), dt.date(2026, 9, 30), 99999, web.pk)  # September
    metric_value("sales_spend", dt.date(2026, 11, 1), dt.date(2026, 11, 30), 99999)  # November
    first, second, third, late = (ContactFactory(created_at=at(2026, 1, 1)) for _ in range(4))
    lifecycle(first, ("lead", at(2026, 1, 1)), ("customer", at(2026, 10, 1)))
    lifecycle(second, ("lead", at(2026, 1, 1)), ("customer", at(2026, 10, 15)))
    # Became a customer twice in the month: one customer.
    lifecycle(third, ("lead", at(2026, 1, 1)), ("customer", at(2026, 10, 2)), ("churned", at(2026, 10, 9)),
              ("customer", at(2026, 10, 30)))
    lifecycle(late, ("lead", at(2026, 1, 1)), ("customer", october.end))
    # (60,000 + 30,000 marketing + 90,000 sales) / 3 new customers = 180,000 / 3 = 60,000
    assert_value("cac", october, Decimal("60000"))


def test_cac_per_lead_source_counts_that_sources_spend_only():
    """The company's sales spend is not each lead source's: per source, CAC = the source's marketing spend ÷ the
    source's new customers (the company-wide value is unchanged)."""
    october = period("monthly", "2026-10")
    web, fair = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Fuar")
    oct1, oct31 = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
    metric_value("marketing_spend", oct1, oct31, 60000, web.pk)
    metric_value("marketing_spend", oct1, oct31, 30000, fair.pk)
    metric_value("sales_spend", oct1, oct31, 90000)
    web_a, web_b, fair_a = (ContactFactory(created_at=at(2026, 1, 1), lead_source=source)
                            for source in (web, web, fair))
    for contact in (web_a, web_b, fair_a):
        lifecycle(contact, ("lead", at(2026, 1, 1)), ("customer", at(2026, 10, 5)))
    cac = Kpi.objects.get(slug="cac")
    assert cac.dimensions == ["source"]
    # company: (60,000 + 30,000 + 90,000) / 3 = 60,000
    assert_value("cac", october, Decimal("60000"))
    # Web: 60,000 / 2 = 30,000 (not (60,000 + 90,000) / 2 = 75,000); Fuar: 30,000 / 1 = 30,000
    assert evaluated("cac", october, Dimension("source", web.pk)) == Decimal("30000")
    assert evaluated("cac", october, Dimension("source", fair.pk)) == Decimal("30000")
    from kpis.formula import compile_formula

    members = compile_formula(cac.formula, slug="cac").evaluate_members(october, "source")
    assert {web.pk: members[web.pk], fair.pk: members[fair.pk]} == {web.pk: 30000, fair.pk: 30000}


def test_customer_lifetime_applies_to_breakdowns_and_spend_does_not():
    flags = dict(ExternalMetric.objects.filter(key__in=[m.key for m in builtins.BUILTIN_METRICS])
                 .values_list("key", "applies_to_breakdowns"))
    assert flags == {"marketing_spend": False, "sales_spend": False, "customer_lifetime_years": True}
    ExternalMetric.objects.filter(key="customer_lifetime_years").update(applies_to_breakdowns=False)
    assert builtins.install_builtins() == {"created": 0, "updated": 1}
    assert ExternalMetric.objects.get(key="customer_lifetime_years").applies_to_breakdowns is True


def test_ltv(deal, alice):
    q3 = period("quarterly", "2026-Q3")  # [1 Jul, 1 Oct); the 365 days before its end start on 1 Oct 2025
    first, second, other = (ContactFactory(owner=alice) for _ in range(3))
    firm = CompanyFactory(owner=alice)
    won = {"status": "won", "created": at(2025, 6, 1)}
    # In the quarter: 100,000 and 200,000 → average deal value 150,000.
    deal(**won, closed=at(2026, 7, 10), amount=Decimal("100000"), contact=first)
    deal(**won, closed=at(2026, 9, 30, 23), amount=Decimal("200000"), contact=second)
    # Earlier in the 365 days: two more for the same contacts, two for a company without a contact.
    deal(**won, closed=at(2026, 1, 15), amount=Decimal("5000"), contact=first)
    deal(**won, closed=at(2026, 3, 15), amount=Decimal("5000"), contact=second)
    deal(**won, closed=at(2025, 10, 1), amount=Decimal("5000"), company=firm)
    deal(**won, closed=at(2026, 2, 1), amount=Decimal("5000"), company=firm)
    deal(**won, closed=at(2025, 9, 30, 23, 59), amount=Decimal("5000"), contact=other)  # 365 days and a minute
    deal(**won, closed=q3.end, amount=Decimal("5000"), contact=other)  # after the period end
    deal(created=at(2026, 7, 1), status="lost", closed=at(2026, 8, 1), contact=other)
    metric_value("customer_lifetime_years", dt.date(2025, 1, 1), dt.date(2025, 12, 31), 2)
    metric_value("customer_lifetime_years", dt.date(2026, 1, 1), dt.date(2026, 12, 31), 3)  # the latest by 1 Oct
    metric_value("customer_lifetime_years", dt.date(2026, 10, 1), dt.date(2026, 10, 31), 9)  # after the end
    # purchase frequency: 6 won deals / 3 customers (first, second, the company) = 2
    # 150,000 × 2 × 3 years = 900,000
    assert_value("ltv", q3, Decimal("900000"))


def test_churn_rate():
    october = period("monthly", "2026-10")
    early = at(2025, 1, 1)
    stayed, advocate, churned, new, brand_new, gone, back, quiet = (
        ContactFactory(created_at=early) for _ in range(8))
    lifecycle(stayed, ("lead", early), ("customer", at(2026, 9, 1)))
    lifecycle(advocate, ("customer", early), ("advocate", at(2026, 8, 1)))
    lifecycle(churned, ("lead", early), ("customer", at(2026, 3, 1)), ("churned", at(2026, 10, 10)))
    lifecycle(new, ("lead", early), ("customer", at(2026, 10, 5)))  # a lead at the start
    type(brand_new).objects.filter(pk=brand_new.pk).update(created_at=at(2026, 10, 3))
    lifecycle(brand_new, ("customer", at(2026, 10, 3)))  # created in the month
    lifecycle(gone, ("customer", early), ("churned", at(2026, 9, 15)))  # churned before the start
    lifecycle(back, ("customer", early), ("churned", at(2026, 10, 20)), ("customer", at(2026, 10, 25)))
    lifecycle(quiet, ("customer", early))
    # customers at 1 Oct: stayed, advocate, churned, back, quiet = 5; churned in October: churned, back = 2
    # 2 * 100 / 5 = 40
    assert_value("churn-rate", october, Decimal("40"))


def test_pipeline_velocity(deal):
    week = period("weekly", "2026-W41")
    deal(created=at(2026, 9, 5, 12), status="won", closed=at(2026, 10, 5, 12), amount=Decimal("100000"))  # 30 d
    deal(created=at(2026, 9, 27, 12), status="won", closed=at(2026, 10, 7, 12), amount=Decimal("300000"))  # 10 d
    deal(created=at(2026, 9, 1), status="lost", closed=at(2026, 10, 6))
    deal(created=at(2026, 9, 1), status="lost", closed=at(2026, 10, 8))
    for when in [at(2026, 8, 1), at(2026, 9, 1), at(2026, 10, 6), at(2026, 10, 11, 23)]:
        deal(created=when)  # open at the end of the week
    deal(created=week.end)  # not yet created
    deal(created=at(2026, 9, 1), status="won", closed=at(2026, 10, 20), amount=Decimal("1"))  # open at the end
    # open at the end: 5; average deal value (100,000 + 300,000) / 2 = 200,000; win rate 2 * 100 / 4 = 50;
    # sales cycle (30 + 10) / 2 = 20 days
    # 5 × 200,000 × 50 / 100 / 20 = 25,000 per day
    assert_value("pipeline-velocity", week, Decimal("25000"))


def test_lead_source_roi_for_the_company_and_per_source(deal):
    october = period("monthly", "2026-10")
    web, fair = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Fuar")
    oct1, oct31 = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
    metric_value("marketing_spend", oct1, oct31, 50000, web.pk)
    metric_value("marketing_spend", oct1, oct31, 40000, fair.pk)
    metric_value("marketing_spend", dt.date(2026, 9, 1), dt.date(2026, 9, 30), 99999, web.pk)
    metric_value("sales_spend", oct1, oct31, 77777)  # not marketing
    won = {"status": "won", "created": at(2026, 9, 1)}
    deal(**won, closed=at(2026, 10, 2), amount=Decimal("120000"), lead_source=web)
    deal(**won, closed=at(2026, 10, 12), amount=Decimal("80000"), lead_source=web)
    deal(**won, closed=at(2026, 10, 22), amount=Decimal("100000"), lead_source=fair)
    deal(**won, closed=at(2026, 10, 25), amount=Decimal("60000"))  # no source: counts for the company
    deal(**won, closed=october.end, amount=Decimal("99999"), lead_source=web)
    # company: (360,000 won − 90,000 spend) * 100 / 90,000 = 300
    assert_value("lead-source-roi", october, Decimal("300"))
    # Web: (200,000 − 50,000) * 100 / 50,000 = 300; Fuar: (100,000 − 40,000) * 100 / 40,000 = 150
    assert evaluated("lead-source-roi", october, Dimension("source", web.pk)) == Decimal("300")
    assert evaluated("lead-source-roi", october, Dimension("source", fair.pk)) == Decimal("150")


def test_activities_per_opportunity(deal, alice):
    week = period("weekly", "2026-W41")
    contact = ContactFactory(owner=alice)
    for kind, when in [("call", week.start), ("email", at(2026, 10, 6)), ("meeting", at(2026, 10, 7)),
                       ("note", at(2026, 10, 8)), ("call", at(2026, 10, 11, 23, 59))]:
        ActivityFactory(kind=kind, contact=contact, occurred_at=when)
    task = {"kind": Activity.Kind.TASK, "contact": contact, "assignee": alice, "due_at": at(2026, 10, 9)}
    ActivityFactory(**task, occurred_at=at(2026, 10, 9), done_at=at(2026, 10, 9, 10))
    ActivityFactory(**task, occurred_at=at(2026, 10, 10), done_at=at(2026, 10, 20))  # done later: done now
    ActivityFactory(**task, occurred_at=at(2026, 10, 10))  # not done: not counted
    ActivityFactory(kind="call", contact=contact, occurred_at=week.end)
    ActivityFactory(kind="call", contact=contact, occurred_at=at(2026, 10, 4, 23))
    deal(created=at(2026, 10, 6))
    deal(created=at(2026, 10, 9), status="lost", closed=at(2026, 10, 10))
    deal(created=at(2026, 10, 4))
    # 7 activities (5 + 2 done tasks) / 2 deals created in the week = 3.5
    assert_value("activities-per-opportunity", week, Decimal("3.5"))


def test_forecast_accuracy_reads_the_forecast_snapshotted_at_the_period_start(deal, north):
    october = period("monthly", "2026-10")
    forecast = Kpi.objects.get(slug="sales-forecast")
    row = {"kpi": forecast, "frequency": "monthly", "period_end": october.end, "formula_version": 1}
    KpiSnapshot.objects.create(**row, period_start=october.start, value=Decimal("200000"))
    KpiSnapshot.objects.create(**row, period_start=october.start, dimension_kind="team", dimension_id=north.pk,
                               value=Decimal("120000"))
    KpiSnapshot.objects.create(**{**row, "period_end": october.start}, period_start=october.previous().start,
                               value=Decimal("1"))
    won = {"status": "won", "created": at(2026, 9, 1)}
    deal(**won, closed=at(2026, 10, 10), amount=Decimal("120000"))
    deal(**won, closed=at(2026, 10, 20), amount=Decimal("30000"))
    deal(**won, closed=october.end, amount=Decimal("50000"))
    # (120,000 + 30,000) * 100 / 200,000 = 75
    assert_value("forecast-accuracy", october, Decimal("75"))
    # North (alice's team, all three deals): 150,000 * 100 / 120,000 = 125
    assert evaluated("forecast-accuracy", october, Dimension("team", north.pk)) == Decimal("125")


def test_forecast_accuracy_has_no_value_without_a_forecast(deal):
    october = period("monthly", "2026-10")
    deal(created=at(2026, 9, 1), status="won", closed=at(2026, 10, 10), amount=Decimal("120000"))
    assert reference_sql.value("forecast-accuracy", october) is None
    assert evaluated("forecast-accuracy", october) is None


def test_sales_forecast(deal):
    december = period("monthly", "2026-12")  # the rate valid on 31 Dec counts
    ExchangeRate.objects.create(currency="EUR", rate=Decimal("40"), valid_from=dt.date(2026, 11, 1))
    created = at(2026, 11, 1)
    deal(created=created, stage="Proposal", amount=Decimal("100000"), expected=dt.date(2026, 12, 1))  # 60 %
    deal(created=created, stage="Negotiation", amount=Decimal("50000"), expected=dt.date(2026, 12, 31))  # 80 %
    deal(created=created, stage="Lead", amount=Decimal("1000"), currency="EUR", expected=dt.date(2026, 12, 15))
    deal(created=created, stage="Proposal", amount=Decimal("99999"), expected=dt.date(2027, 1, 1))
    deal(created=created, stage="Proposal", amount=Decimal("99999"), expected=dt.date(2026, 11, 30))
    deal(created=created, status="won", closed=at(2026, 11, 20), amount=Decimal("99999"),
         expected=dt.date(2026, 12, 10))
    # 100,000 × 60 % + 50,000 × 80 % + 1,000 EUR × 40 × 10 % = 60,000 + 40,000 + 4,000 = 104,000
    assert_value("sales-forecast", december, Decimal("104000"))


def test_crm_user_adoption(alice, bob, charlie, mona, sam, make_deal):
    week = period("weekly", "2026-W41")  # the 7 days to the end: [5 Oct 00:00, 12 Oct 00:00)
    frank = UserFactory(username="frank", role=User.Role.REP)
    idle = UserFactory(username="idle", role=User.Role.REP, is_active=False)
    newcomer = UserFactory(username="newcomer", role=User.Role.REP)
    User.objects.update(date_joined=at(2026, 1, 1))
    User.objects.filter(pk=newcomer.pk).update(date_joined=at(2026, 10, 20))
    contact = ContactFactory(owner=alice)
    ActivityFactory(contact=contact, owner=alice, occurred_at=at(2026, 10, 8))
    FieldChange.objects.create(record_type="contacts.contact", record_id=contact.pk, actor=bob,
                               changed_at=at(2026, 10, 11, 23))
    made = make_deal(charlie)
    StageChange.objects.filter(deal=made).update(changed_at=at(2026, 10, 6))
    ActivityFactory(contact=contact, owner=mona, occurred_at=at(2026, 10, 4, 23, 59))  # before the 7 days
    ActivityFactory(contact=contact, owner=frank, occurred_at=week.end)  # after
    for user in (idle, sam, newcomer):  # inactive, an admin, joined after the period
        ActivityFactory(contact=contact, owner=user, occurred_at=at(2026, 10, 8))
    # active reps and managers who had joined: alice, bob, charlie, mona, frank = 5; of them active in the
    # 7 days: alice (activity), bob (record change), charlie (stage change) = 3 → 3 * 100 / 5 = 60
    assert_value("crm-user-adoption", week, Decimal("60"))


def test_data_accuracy_counts_complete_records_by_the_admins_rules():
    october = period("monthly", "2026-10")  # at the end: 1 Nov 00:00
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="sector", label="Sector", field_type="text",
                                         is_important=True)
    company, source = CompanyFactory(), LeadSourceFactory(name="Web")
    complete = {"first_name": "Ayşe", "last_name": "Yılmaz", "phone": "+905321234567", "company": company,
                "job_title": "CFO", "lead_source": source, "city": "İzmir", "custom_fields": {"sector": "Retail"},
                "created_at": at(2026, 5, 1)}
    for _ in range(3):
        ContactFactory(**complete)
    ContactFactory(**{**complete, "phone": ""})
    ContactFactory(**{**complete, "custom_fields": {}})
    ContactFactory(**complete, archived_at=at(2026, 10, 15))  # archived before the end: left out
    ContactFactory(**{**complete, "city": ""}, archived_at=at(2026, 11, 5))  # archived later: counted
    ContactFactory(**{**complete, "created_at": at(2026, 11, 2)})  # created after the end
    # 3 complete / 6 not archived at the end (3 + no phone + no sector + archived later) * 100 = 50
    assert_value("data-accuracy", october, Decimal("50"))


def test_nps():
    q3 = period("quarterly", "2026-Q3")
    contact = ContactFactory()
    for score, when in [(10, q3.start), (9, at(2026, 7, 10)), (9, at(2026, 8, 1)), (8, at(2026, 8, 2)),
                        (7, at(2026, 8, 3)), (6, at(2026, 8, 4)), (0, at(2026, 9, 1)), (10, at(2026, 9, 30, 23))]:
        SurveyResponse.objects.create(kind="nps", score=score, contact=contact, responded_at=when)
    SurveyResponse.objects.create(kind="csat", score=5, contact=contact, responded_at=at(2026, 8, 1))
    SurveyResponse.objects.create(kind="nps", score=0, contact=contact, responded_at=q3.end)
    SurveyResponse.objects.create(kind="nps", score=0, contact=None, responded_at=at(2026, 6, 30, 23))
    # promoters 10, 9, 9, 10 = 4; detractors 6, 0 = 2; of 8 answers: (4 − 2) * 100 / 8 = 25
    assert_value("nps", q3, Decimal("25"))


def test_empty_periods_have_no_value_or_zero():
    """Nothing happened in 2020: ratios have no value (n/a), sums are 0."""
    zero = {"pipeline-value", "sales-forecast"}
    for kpi in builtins.BUILTIN_KPIS:
        the_period = periods.containing(kpi.frequency, dt.date(2020, 3, 4))
        expected = Decimal(0) if kpi.slug in zero else None
        assert reference_sql.value(kpi.slug, the_period) == expected, kpi.slug
        if kpi.snapshot_at_start:
            # the forecast of a period that has started is the snapshot taken as it started: none in 2020
            assert evaluated(kpi.slug, the_period) is None, kpi.slug
            from kpis.formula import compile_formula

            assert compile_formula(kpi.formula, slug=kpi.slug).evaluate(the_period) == expected, kpi.slug
        else:
            assert evaluated(kpi.slug, the_period) == expected, kpi.slug
