"""seed_demo's KPI data (kpis/demo.py): every built-in KPI has a value on the demo site, and the data agrees
with the contacts and deals it was made from."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from contacts.models import Contact, LeadSource, LifecycleChange
from kpis import builtins, periods, reference_sql
from kpis.demo import PRE_CUSTOMER
from kpis.models import ExchangeRate, Kpi, KpiSnapshot, MetricValue, SurveyResponse
from pipeline.models import Deal

pytestmark = pytest.mark.django_db

WEEKLY_LOOKBACK = 4


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{"contacts": 400, "deals": 150, "password": "pw", "seed": 3, **options})
    return out.getvalue()


@pytest.fixture
def seeded():
    return seed()


def close(a: Decimal | None, b: Decimal | None) -> bool:
    """Equal up to the last digits of a long division (the two sides may carry different scales)."""
    if a is None or b is None:
        return a is b
    return abs(a - b) <= Decimal("1e-6") * max(Decimal(1), abs(b))


def test_every_builtin_kpi_has_a_value_and_the_formula_agrees_with_the_reference_sql(seeded):
    from kpis.services import evaluate

    assert "KPI demo data:" in seeded
    missing = []
    for kpi in Kpi.objects.filter(slug__in=builtins.BUILTIN_SLUGS):
        current = periods.containing(kpi.frequency)
        # Weeks are short: a quiet week can happen; most of the last few have a value. Longer periods all do.
        recent = [current.shift(-i) for i in range(1, WEEKLY_LOOKBACK + 1 if kpi.frequency == "weekly" else 2)]
        found = 0
        for period in recent:
            value = evaluate(kpi, period)
            if kpi.snapshot_at_start:
                # Taken once as the period starts (the demo rebuilds those): evaluate() answers the stored value.
                stored = KpiSnapshot.objects.get(kpi=kpi, period_start=period.start, dimension_kind="").value
                assert close(value, stored), (kpi.slug, period.key, value, stored)
            else:
                reference = reference_sql.value(kpi.slug, period)
                assert close(value, reference), (kpi.slug, period.key, value, reference)
            found += value is not None
        if found < max(1, len(recent) - 1):
            missing.append((kpi.slug, [p.key for p in recent], found))
    assert not missing


def test_contacts_with_a_won_deal_became_customers_and_histories_still_end_in_the_stage(seeded):
    assert "contacts became customers with their won deals" in seeded
    for deal in Deal.objects.filter(status="won", contact__isnull=False).select_related("contact"):
        contact = deal.contact
        assert not (contact.lifecycle_stage in PRE_CUSTOMER and contact.lifecycle_changed_at < deal.closed_at), deal
    converted = LifecycleChange.objects.filter(to_stage="customer", changed_at__in=Deal.objects.filter(
        status="won").values("closed_at"))
    assert converted.exists()
    for contact in Contact.objects.prefetch_related("lifecycle_changes"):
        changes = sorted(contact.lifecycle_changes.all(), key=lambda c: (c.changed_at, c.id))
        assert (changes[-1].to_stage, changes[-1].changed_at) == (contact.lifecycle_stage,
                                                                   contact.lifecycle_changed_at)
        for before, after in zip(changes, changes[1:], strict=False):
            assert after.from_stage == before.to_stage, contact


def test_spend_rates_lifetime_and_survey_answers(seeded):
    now = timezone.now()
    sources = set(LeadSource.objects.filter(is_active=True).values_list("pk", flat=True))
    month = periods.containing("monthly")
    this_month = MetricValue.objects.filter(period_start=month.first_day)
    assert set(this_month.filter(metric__key="marketing_spend").values_list("dimension_id", flat=True)) == sources
    assert this_month.filter(metric__key="sales_spend", dimension_id=0).count() == 1
    assert not MetricValue.objects.filter(value__lte=0).exists()
    lifetime = MetricValue.objects.filter(metric__key="customer_lifetime_years").order_by("-period_start").first()
    assert lifetime.value == Decimal("3") and lifetime.period_start.year == now.year
    foreign = set(Deal.objects.exclude(currency="TRY").values_list("currency", flat=True))
    assert foreign and foreign <= set(ExchangeRate.objects.values_list("currency", flat=True))
    answers = SurveyResponse.objects.select_related("contact")
    assert answers.filter(kind="nps").count() > 20 and answers.filter(kind="csat").exists()
    quarter = periods.containing("quarterly")
    for back in range(6):
        period = quarter.shift(-back)
        assert answers.filter(kind="nps", responded_at__gte=period.start, responded_at__lt=period.end).exists()
    for answer in answers:
        assert answer.responded_at <= now
        assert answer.contact.lifecycle_stage in ("customer", "advocate", "churned")
        assert (0 <= answer.score <= 10) if answer.kind == "nps" else (1 <= answer.score <= 5)


def test_sales_forecast_snapshots_as_at_each_months_start(seeded):
    forecast = Kpi.objects.get(slug="sales-forecast")
    rows = KpiSnapshot.objects.filter(kpi=forecast)
    company = {row.period_start: row for row in rows.filter(dimension_kind="")}
    current = periods.containing("monthly")
    assert current.start in company and current.previous().start in company
    for start, row in company.items():
        assert row.value > 0 or start < current.shift(-3).start
        assert row.is_final == (row.period_end <= timezone.now())
        # Every deal has a pipeline: the pipelines' rows add up to the company's.
        per_pipeline = rows.filter(period_start=start, dimension_kind="pipeline").values_list("value", flat=True)
        assert sum(per_pipeline, Decimal(0)) == row.value
        assert rows.filter(period_start=start, dimension_kind="team").exists()
        assert rows.filter(period_start=start, dimension_kind="owner").exists()
        assert rows.filter(period_start=start, dimension_kind="source").exists()


def test_nothing_without_deals():
    out = seed(deals=0, contacts=50)
    assert "KPI demo data: none added (there are no deals yet)." in out
    assert not MetricValue.objects.exists() and not SurveyResponse.objects.exists()


def test_running_again_adds_nothing(seeded):
    counts = (MetricValue.objects.count(), SurveyResponse.objects.count(), KpiSnapshot.objects.count(),
              LifecycleChange.objects.count())
    again = seed()
    assert "KPI demo data: none added (the database already has metric values or survey responses)." in again
    assert counts == (MetricValue.objects.count(), SurveyResponse.objects.count(), KpiSnapshot.objects.count(),
                      LifecycleChange.objects.count())
