"""ExternalMetric.applies_to_breakdowns: which company-wide metrics count for each team, owner, pipeline and lead
source when a KPI is broken down, and how an admin sets it (service, page, API)."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from kpis import services_data
from kpis.dimensions import Dimension
from kpis.formula import compile_formula
from kpis.models import ExternalMetric, MetricValue
from kpis.periods import Period
from tests.factories import LeadSourceFactory

pytestmark = pytest.mark.django_db

OCT = Period("monthly", dt.date(2026, 10, 1))
METRICS = "/api/v1/metrics/"


def metric(key, kind="", applies=False):
    return ExternalMetric.objects.update_or_create(
        key=key, defaults={"name": key, "dimension_kind": kind, "applies_to_breakdowns": applies})[0]


def put(row, value, dimension_id=0):
    MetricValue.objects.create(metric=row, dimension_id=dimension_id, value=Decimal(value),
                               period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31))


def test_per_dimension_a_company_wide_amount_is_left_out_and_a_constant_counts(north, south, alice):
    web = LeadSourceFactory(name="Web")
    rent, rate, per_team = metric("rent"), metric("tax_rate", applies=True), metric("team_budget", "team")
    put(rent, 900)
    put(rate, 20)
    put(per_team, 300, north.pk)
    put(per_team, 100, south.pk)
    text = "sum(metrics.value where metric in ('rent', 'tax_rate', 'team_budget'))"
    compiled = compile_formula(text)
    assert compiled.dimensions == ["team"]  # team_budget is kept per team
    # company: every row, 900 + 20 + 300 + 100 = 1320
    assert compiled.evaluate(OCT) == 1320
    # north: its budget 300 + the tax rate that holds for every team 20 = 320 (the company's rent is not north's)
    assert compiled.evaluate(OCT, Dimension("team", north.pk)) == 320
    assert compiled.evaluate_members(OCT, "team") == {north.pk: 320, south.pk: 120}  # south: 100 + 20
    # a metric kept per team contributes nothing per lead source; a company-wide amount alone computes 0 there
    constant = compile_formula("sum(metrics.value where metric in ('rent', 'tax_rate'))")
    assert constant.dimensions == ["team", "owner", "pipeline", "source"]  # allowed dimensions unchanged
    assert constant.evaluate(OCT, Dimension("source", web.pk)) == 20
    assert constant.evaluate_members(OCT, "owner")[alice.pk] == 20
    assert compile_formula("sum(metrics.value where metric = 'rent')").evaluate(OCT, Dimension("owner", alice.pk)) == 0
    assert compile_formula("latest(metrics.value where metric = 'rent')").evaluate(
        OCT, Dimension("owner", alice.pk)) is None


def test_the_service_sets_the_flag_for_company_wide_metrics_only(sam):
    made = services_data.metric_create(actor=sam, data={"key": "churn_years", "name": "Years",
                                                        "applies_to_breakdowns": True})
    assert made.applies_to_breakdowns is True
    assert services_data.metric_create(actor=sam, data={"key": "ads", "name": "Ads"}).applies_to_breakdowns is False
    changed = services_data.metric_update(made, actor=sam, data={"applies_to_breakdowns": False})
    assert ExternalMetric.objects.get(pk=changed.pk).applies_to_breakdowns is False
    with pytest.raises(ValidationError) as bad:
        services_data.metric_update(made, actor=sam, data={"applies_to_breakdowns": "yes"})
    assert bad.value.message_dict == {"applies_to_breakdowns": ["Expected true or false."]}
    with pytest.raises(ValidationError) as per_kind:
        services_data.metric_create(actor=sam, data={"key": "spend", "name": "S", "dimension_kind": "source",
                                                     "applies_to_breakdowns": True})
    assert per_kind.value.message_dict == {"applies_to_breakdowns": [
        "Only a company-wide metric can apply to every breakdown; a metric kept per lead source counts for its own "
        "lead source."]}
    assert not ExternalMetric.objects.filter(key="spend").exists()


def test_the_metric_pages_edit_the_flag(client_for, sam):
    client = client_for(sam)
    created = client.post(reverse("metric-list"), {"key": "life_years", "name": "Life", "unit": "number",
                                                   "applies_to_breakdowns": "on"})
    assert created.status_code == 302
    assert ExternalMetric.objects.get(key="life_years").applies_to_breakdowns is True
    page = client.get(reverse("metric-detail", args=["life_years"])).content.decode()
    assert re.search(r'<input type="checkbox" name="applies_to_breakdowns"[^>]* checked', page)
    edited = client.post(reverse("metric-edit", args=["life_years"]), {"name": "Life", "unit": "number"})
    assert edited.status_code == 302  # the box left unticked
    assert ExternalMetric.objects.get(key="life_years").applies_to_breakdowns is False


def test_the_api_reads_and_writes_the_flag(api_for, sam):
    api = api_for(sam)
    created = api.post(METRICS, {"key": "life_years", "name": "Life", "unit": "number",
                                 "applies_to_breakdowns": True}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["applies_to_breakdowns"] is True
    patched = api.patch(f"{METRICS}life_years/", {"applies_to_breakdowns": False}, format="json")
    assert patched.status_code == 200 and patched.json()["applies_to_breakdowns"] is False
    bad = api.patch(f"{METRICS}life_years/", {"dimension_kind": "team", "applies_to_breakdowns": True},
                    format="json")
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"applies_to_breakdowns"}
