"""``evaluate_members(period, kind)`` gives every member exactly what ``evaluate(period, Dimension(kind, m))``
gives — for every built-in KPI and every kind it allows, and for random valid formulas — on a small fixture
with members that have rows, members that have none (a team, an owner, a lead source, a pipeline without
data) and rows that belong to no member (no owner, no team, no lead source, no deal)."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings

from accounts.models import User
from contacts.models import Activity, LifecycleChange
from crm_okr.models import FieldChange
from kpis import periods
from kpis.dimensions import Dimension, members
from kpis.formula import compile_formula
from kpis.models import ExchangeRate, ExternalMetric, Kpi, KpiSnapshot, MetricValue, SurveyResponse
from pipeline.models import Pipeline, StageChange
from tests.factories import ActivityFactory, ContactFactory, DealFactory, LeadSourceFactory, TeamFactory
from tests.kpis.test_formula_properties import formula

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def at(year, month, day, hour=12) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=periods.company_tz())


def lifecycle(contact, *steps) -> None:
    previous = ""
    for stage, when in steps:
        LifecycleChange.objects.create(contact=contact, from_stage=previous, to_stage=stage, changed_at=when)
        previous = stage
    type(contact).objects.filter(pk=contact.pk).update(lifecycle_stage=previous, lifecycle_changed_at=steps[-1][1])


@pytest.fixture
def world(stages, alice, bob, charlie, mona, sam, north, south):
    """Data around October 2026 for every source; nobody in team East, nothing from lead source Idle, nothing
    owned by mona, no deal in the second pipeline."""
    TeamFactory(name="East")
    Pipeline.objects.create(name="Empty pipeline", order=9)
    web, fair = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Fair")
    LeadSourceFactory(name="Idle")
    User.objects.update(date_joined=at(2025, 1, 1))
    ExchangeRate.objects.create(currency="USD", rate=Decimal("30"), valid_from=dt.date(2026, 1, 1))

    early = at(2025, 6, 1)
    people = []
    for i, (owner, source) in enumerate([(alice, web), (alice, fair), (bob, web), (charlie, None), (None, web),
                                         (charlie, fair), (bob, None), (None, None)]):
        contact = ContactFactory(owner=owner, lead_source=source, created_at=early if i < 5 else at(2026, 10, 3 + i))
        people.append(contact)
    lifecycle(people[0], ("lead", early), ("customer", at(2026, 9, 1)), ("churned", at(2026, 10, 10)))
    lifecycle(people[1], ("customer", early), ("advocate", at(2026, 8, 1)))
    lifecycle(people[2], ("lead", early), ("customer", at(2026, 10, 5)))
    lifecycle(people[3], ("customer", early), ("churned", at(2026, 10, 20)), ("customer", at(2026, 10, 25)))
    lifecycle(people[4], ("customer", early))
    lifecycle(people[5], ("lead", at(2026, 10, 8)), ("customer", at(2026, 11, 2)))
    type(people[6]).objects.filter(pk=people[6].pk).update(archived_at=at(2026, 10, 20))

    def deal(owner, stage, amount, created, closed=None, **data):
        return DealFactory(owner=owner, stage=stages[stage], amount=Decimal(amount), created_at=created,
                           stage_entered_at=closed or created, closed_at=closed,
                           expected_close_date=dt.date(2026, 10, 20), **data)

    deals = [
        deal(alice, "Won", 1000, at(2026, 9, 1), at(2026, 10, 6), lead_source=web, contact=people[0]),
        deal(alice, "Won", 500, at(2026, 10, 2), at(2026, 10, 13), lead_source=fair, contact=people[1]),
        deal(bob, "Lost", 300, at(2026, 10, 5), at(2026, 10, 14), lead_source=web),
        deal(bob, "Won", 100, at(2026, 10, 6), at(2026, 10, 21), currency="USD", contact=people[2]),
        deal(charlie, "Negotiation", 400, at(2026, 8, 1), lead_source=fair),
        deal(charlie, "Lead", 200, at(2026, 10, 12)),
        deal(None, "Won", 700, at(2026, 10, 7), at(2026, 10, 15), lead_source=web),
        deal(alice, "Proposal", 900, at(2026, 10, 14), company=None),
        deal(bob, "Won", 50, at(2026, 11, 2), at(2026, 11, 20), currency="EUR"),
    ]
    for i, contact in enumerate(people):
        task = {"kind": Activity.Kind.TASK, "due_at": at(2026, 10, 6 + i), "assignee": alice} if i % 3 == 0 else {}
        ActivityFactory(contact=contact, owner=contact.owner, occurred_at=at(2026, 10, 5 + i),
                        done_at=at(2026, 10, 6 + i) if i % 2 else None, deal=deals[i % len(deals)], **task)
    ActivityFactory(contact=None, deal=deals[6], owner=None, team=None, occurred_at=at(2026, 10, 9))
    ActivityFactory(contact=None, deal=deals[8], owner=bob, team=north, occurred_at=at(2026, 11, 20))
    FieldChange.objects.create(record_type="contacts.contact", record_id=people[0].pk, actor=charlie,
                               changed_at=at(2026, 11, 19), changes={})
    StageChange.objects.create(deal=deals[1], to_stage_name="Won", direction="won", actor=alice,
                               changed_at=at(2026, 10, 13), seconds_in_from_stage=86400)
    for score, contact in ((10, people[0]), (9, people[1]), (3, people[2]), (7, people[3]), (0, None),
                           (9, people[4])):
        SurveyResponse.objects.create(kind="nps", score=score, contact=contact, responded_at=at(2026, 10, 11))

    def metric(key, value, dimension_id=0, first=dt.date(2026, 10, 1), last=dt.date(2026, 10, 31)):
        MetricValue.objects.create(metric=ExternalMetric.objects.get(key=key), period_start=first, period_end=last,
                                   dimension_id=dimension_id, value=Decimal(value))

    metric("marketing_spend", 400, web.pk)
    metric("marketing_spend", 100, fair.pk)
    metric("sales_spend", 900)
    metric("customer_lifetime_years", 3, first=dt.date(2026, 1, 1), last=dt.date(2026, 12, 31))

    forecast = Kpi.objects.get(slug="sales-forecast")
    october = periods.parse("monthly", "2026-10")
    rows = [("", 0, 5000), ("team", north.pk, 3000), ("owner", alice.pk, 2000), ("source", web.pk, 0)]
    for kind, member, value in rows:
        KpiSnapshot.objects.create(kpi=forecast, frequency="monthly", period_start=october.start,
                                   period_end=october.end, dimension_kind=kind, dimension_id=member,
                                   value=Decimal(value), formula_version=1)


def assert_members_agree(compiled, period):
    for kind in compiled.dimensions:
        got = compiled.evaluate_members(period, kind, now=NOW)
        expected = {pk: compiled.evaluate(period, Dimension(kind, pk), now=NOW)
                    for pk in members(kind).values_list("pk", flat=True)}
        assert got == expected, f"{compiled.text!r} by {kind} for {period.key}"


BUILTINS = ["lead-conversion-rate", "sales-cycle-length", "pipeline-value", "win-rate", "average-deal-value", "cac",
            "ltv", "churn-rate", "pipeline-velocity", "lead-source-roi", "activities-per-opportunity",
            "forecast-accuracy", "sales-forecast", "crm-user-adoption", "data-accuracy", "nps"]


@pytest.mark.parametrize("slug", BUILTINS)
def test_builtin_members_agree_with_single_evaluations(world, slug):
    kpi = Kpi.objects.get(slug=slug)
    compiled = compile_formula(kpi.formula, slug=slug)
    assert compiled.dimensions
    for instant in (at(2026, 10, 14), NOW):  # a period that has ended, and the running one (as of NOW)
        assert_members_agree(compiled, periods.containing(kpi.frequency, instant))


def test_builtins_are_all_covered(db):
    assert set(BUILTINS) == set(Kpi.objects.filter(is_builtin=True).values_list("slug", flat=True))


def test_the_fixture_has_values_to_compare(world, north):
    october = periods.parse("monthly", "2026-10")
    win_rate = compile_formula(Kpi.objects.get(slug="win-rate").formula)
    values = win_rate.evaluate_members(october, "owner", now=NOW)
    # won by closed_at in October: alice 2 (the 6th and 13th), bob 1 of 2 (lost on the 14th) → 100 and 50;
    # charlie and mona closed nothing → no value
    assert sorted(v for v in values.values() if v is not None) == [50, 100]
    assert sum(v is None for v in values.values()) == 2


def test_members_without_rows_get_the_value_over_no_rows(world, alice, bob, charlie, mona):
    october = periods.parse("monthly", "2026-10")
    # deals created in October per owner: alice 2 (2nd, 14th), bob 2 (5th, 6th), charlie 1 (12th), mona 0
    compiled = compile_formula("count(deals) / (count(deals) - 1) + sum(deals.probability) * 0")
    assert compiled.evaluate_members(october, "owner", now=NOW) == {
        alice.pk: 2,  # 2 / 1 + 0
        bob.pk: 2,
        charlie.pk: None,  # 1 / NULLIF(0, 0) → no value, not the value over no rows
        mona.pk: 0,  # no rows: 0 / (0 − 1) + 0 × 0 = 0
    }
    averages = compile_formula("avg(deals.amount) + 1").evaluate_members(october, "owner", now=NOW)
    assert averages[mona.pk] is None  # avg over no rows → no value
    # alice: (500 + 900) / 2 + 1 = 701
    assert averages[alice.pk] == 701


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=formula())
def test_random_formulas_members_agree(world, text):
    compiled = compile_formula(text)
    assert_members_agree(compiled, periods.parse("monthly", "2026-10"))
