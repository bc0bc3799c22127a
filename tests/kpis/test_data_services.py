"""kpis.services_data: survey responses, external metrics and their values, exchange rates."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from kpis import services_data as services
from kpis.models import ExchangeRate, ExternalMetric, MetricValue, SurveyResponse
from tests.factories import ContactFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


@pytest.fixture(autouse=True)
def no_metrics(db):
    """Start without the built-in metrics (migration 0002): each test creates the ones it uses."""
    ExternalMetric.objects.all().delete()


@pytest.fixture
def web():
    return LeadSourceFactory(name="Web")


@pytest.fixture
def fair():
    return LeadSourceFactory(name="Fuar")


@pytest.fixture
def spend(sam):
    return services.metric_create(actor=sam, data={"key": "marketing_spend", "name": "Marketing spend",
                                                   "dimension_kind": "source"})


@pytest.fixture
def lifetime(sam):
    return services.metric_create(actor=sam, data={"key": "customer_lifetime_years", "name": "Customer lifetime",
                                                   "unit": "number"})


# --- survey responses --------------------------------------------------------------------------------------


def test_rep_adds_a_response_for_a_contact_they_see(alice, bob):
    contact = ContactFactory(owner=alice)
    response, created = services.survey_response_create(actor=bob, data={
        "kind": "nps", "score": 9, "contact": contact.pk, "channel": "email", "comment": "Çok iyi, teşekkürler!"})
    assert created
    response.refresh_from_db()
    assert (response.kind, response.score, response.contact, response.channel, response.created_by) == (
        "nps", 9, contact, "email", bob)
    assert response.comment == "Çok iyi, teşekkürler!"


def test_rep_cannot_add_a_response_for_a_contact_they_do_not_see(alice, charlie):
    contact = ContactFactory(owner=alice)
    with pytest.raises(ValidationError) as excinfo:
        services.survey_response_create(actor=charlie, data={"score": 9, "contact": contact})
    assert errors_of(excinfo) == {"contact": ["Unknown contact."]}
    assert not SurveyResponse.objects.exists()


def test_reps_must_name_the_contact_but_integrations_may_push_anonymous_answers(alice, integ):
    with pytest.raises(ValidationError) as excinfo:
        services.survey_response_create(actor=alice, data={"score": 9})
    assert errors_of(excinfo) == {"contact": ["Choose the contact who answered."]}
    response, created = services.survey_response_create(actor=integ, data={"score": 3, "kind": "csat"})
    assert created and response.contact is None


@pytest.mark.parametrize("kind, score, message", [
    ("nps", 11, "A NPS score is a whole number from 0 to 10."),
    ("nps", -1, "A NPS score is a whole number from 0 to 10."),
    ("csat", 0, "A CSAT score is a whole number from 1 to 5."),
    ("csat", 6, "A CSAT score is a whole number from 1 to 5."),
    ("nps", "dokuz", "Enter a whole number."),
    ("nps", 9.5, "Enter a whole number."),
    ("nps", True, "Enter a whole number."),
    ("nps", 10**40, "A NPS score is a whole number from 0 to 10."),
])
def test_scores_out_of_range_are_refused(integ, kind, score, message):
    with pytest.raises(ValidationError) as excinfo:
        services.survey_response_create(actor=integ, data={"kind": kind, "score": score})
    assert errors_of(excinfo) == {"score": [message]}


def test_bad_fields_each_get_their_error(integ):
    with pytest.raises(ValidationError) as excinfo:
        services.survey_response_create(actor=integ, data={
            "kind": "ces", "score": 5, "channel": "pigeon", "comment": "x" * 6000, "contact": 10**30,
            "responded_at": "yarın"})
    assert set(errors_of(excinfo)) == {"kind", "channel", "comment", "contact", "responded_at"}


def test_a_future_answer_is_refused(integ):
    with pytest.raises(ValidationError) as excinfo:
        services.survey_response_create(actor=integ, data={
            "score": 5, "responded_at": timezone.now() + dt.timedelta(days=2)})
    assert errors_of(excinfo) == {"responded_at": ["The answer cannot be dated in the future."]}


def test_pushing_the_same_external_id_again_updates_the_answer(integ, alice):
    contact = ContactFactory(owner=alice)
    first, created = services.survey_response_create(actor=integ, data={
        "score": 6, "contact": contact.pk, "external_id": "typeform-123"})
    assert created
    second, created = services.survey_response_create(actor=integ, data={
        "score": 10, "contact": contact.pk, "external_id": "typeform-123"})
    assert not created and second.pk == first.pk
    assert SurveyResponse.objects.get().score == 10


def test_a_rep_cannot_overwrite_an_answer_of_a_contact_they_do_not_see(integ, alice, charlie):
    contact = ContactFactory(owner=alice)
    services.survey_response_create(actor=integ, data={"score": 6, "contact": contact.pk, "external_id": "x-1"})
    own = ContactFactory(owner=charlie)
    with pytest.raises(ValidationError) as excinfo:
        services.survey_response_create(actor=charlie, data={"score": 0, "contact": own.pk, "external_id": "x-1"})
    assert errors_of(excinfo) == {"external_id": ["This external id is already used by another answer."]}
    assert SurveyResponse.objects.get().score == 6


def test_unknown_fields_are_refused(integ):
    with pytest.raises(ValidationError) as excinfo:
        services.survey_response_create(actor=integ, data={"score": 5, "puan": 5})
    assert errors_of(excinfo) == {"puan": ["Unknown field."]}


# --- external metrics --------------------------------------------------------------------------------------


def test_only_admins_create_metrics(alice, integ, mona):
    for user in (alice, integ, mona):
        with pytest.raises(PermissionDenied):
            services.metric_create(actor=user, data={"key": "x", "name": "X"})


def test_metric_key_rules(sam, spend):
    for key, message in [
        ("Marketing Spend", "Use lower-case letters"), ("ödeme", "Use lower-case letters"),
        ("1abc", "Use lower-case letters"), ("a" * 61, "Use lower-case letters"),
        ("marketing_spend", "There is already a metric with the key “marketing_spend”."),
    ]:
        with pytest.raises(ValidationError) as excinfo:
            services.metric_create(actor=sam, data={"key": key, "name": "N"})
        assert errors_of(excinfo)["key"][0].startswith(message)
    with pytest.raises(ValidationError) as excinfo:
        services.metric_create(actor=sam, data={"key": "k", "name": "", "unit": "euro", "dimension_kind": "city"})
    assert set(errors_of(excinfo)) == {"name", "unit", "dimension_kind"}


def test_metric_update_keeps_the_key_and_the_kind_once_it_has_values(sam, spend, web):
    services.metric_value_upsert(actor=sam, metric=spend, data={"period": "2026-11", "dimension": web.pk,
                                                                "value": "100"})
    metric = services.metric_update(spend, actor=sam, data={"name": "Pazarlama harcaması", "unit": "currency"})
    assert metric.name == "Pazarlama harcaması"
    with pytest.raises(ValidationError) as excinfo:
        services.metric_update(spend, actor=sam, data={"key": "spend", "dimension_kind": ""})
    assert set(errors_of(excinfo)) == {"key", "dimension_kind"}


# --- metric values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, start, end", [
    ("2026-11", dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
    ("2026-Q4", dt.date(2026, 10, 1), dt.date(2026, 12, 31)),
    ("2026-q1", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
    ("2026-W48", dt.date(2026, 11, 23), dt.date(2026, 11, 29)),
    ("2026-11-23", dt.date(2026, 11, 23), dt.date(2026, 11, 23)),
    ("2024-02", dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
])
def test_period_keys(key, start, end):
    period = services.parse_period_key(key)
    assert (period.first_day, period.last_day) == (start, end)


@pytest.mark.parametrize("key", ["2026-13", "2026-W54", "2026-Q5", "November", "", "2026-02-30", "1999-01", 2026])
def test_bad_period_keys(key):
    with pytest.raises(ValueError):
        services.parse_period_key(key)


def test_upsert_per_metric_period_and_source(integ, spend, web, fair):
    value, created = services.metric_value_upsert(actor=integ, metric=spend, data={
        "period": "2026-11", "dimension": web.pk, "value": "12500.50"})
    assert created
    assert (value.period_start, value.period_end, value.dimension_id, value.value, value.updated_by) == (
        dt.date(2026, 11, 1), dt.date(2026, 11, 30), web.pk, Decimal("12500.5000"), integ)
    services.metric_value_upsert(actor=integ, metric=spend, data={
        "period": "2026-11", "dimension": fair.pk, "value": 3000})
    again, created = services.metric_value_upsert(actor=integ, metric=spend, data={
        "period_start": "2026-11-01", "period_end": "2026-11-30", "dimension": str(web.pk), "value": 13000})
    assert not created and again.pk == value.pk
    assert dict(MetricValue.objects.values_list("dimension_id", "value")) == {
        web.pk: Decimal("13000.0000"), fair.pk: Decimal("3000.0000")}


def test_company_wide_metric_takes_no_dimension(sam, lifetime, web):
    with pytest.raises(ValidationError) as excinfo:
        services.metric_value_upsert(actor=sam, metric=lifetime, data={"period": "2026", "dimension": web.pk,
                                                                       "value": 3})
    assert set(errors_of(excinfo)) == {"period", "dimension"}
    value, _created = services.metric_value_upsert(actor=sam, metric=lifetime, data={
        "period_start": dt.date(2026, 1, 1), "period_end": dt.date(2026, 12, 31), "value": "3.5"})
    assert value.dimension_id == 0


def test_dimension_rules(integ, spend, web):
    cases = [
        ({}, "“marketing_spend” is kept per lead source: give the lead source id."),
        ({"dimension": 999999}, "There is no lead source with id 999999."),
        ({"dimension": "web"}, "Enter the lead source id (a whole number)."),
        ({"dimension": -3}, "Enter the lead source id (a whole number)."),
        ({"dimension": 10**30}, "Enter the lead source id (a whole number)."),
    ]
    for extra, message in cases:
        with pytest.raises(ValidationError) as excinfo:
            services.metric_value_upsert(actor=integ, metric=spend, data={"period": "2026-11", "value": 1, **extra})
        assert errors_of(excinfo) == {"dimension": [message]}
    assert not MetricValue.objects.exists()


@pytest.mark.parametrize("data, errors", [
    ({"period_start": "2026-11-30", "period_end": "2026-11-01"}, {"period_end"}),
    ({"period_start": "2026-11-01"}, {"period_end"}),
    ({"period_start": "30.11.2026", "period_end": "2026-11-30"}, {"period_start"}),
    ({"period_start": "1900-01-01", "period_end": "1900-01-31"}, {"period_start", "period_end"}),
    ({"period_start": "2026-01-01", "period_end": "2027-12-31"}, {"period_end"}),
    ({"period": "2026-11", "period_start": "2026-11-01"}, {"period"}),
    ({}, {"period_start", "period_end"}),
])
def test_period_errors(integ, spend, web, data, errors):
    with pytest.raises(ValidationError) as excinfo:
        services.metric_value_upsert(actor=integ, metric=spend, data={"dimension": web.pk, "value": 1, **data})
    assert set(errors_of(excinfo)) == errors


@pytest.mark.parametrize("value", ["abc", "", None, True, "NaN", "Infinity", "1e20", "1.23456", [1], {"a": 1}])
def test_bad_values(integ, spend, web, value):
    with pytest.raises(ValidationError) as excinfo:
        services.metric_value_upsert(actor=integ, metric=spend, data={"period": "2026-11", "dimension": web.pk,
                                                                      "value": value})
    assert set(errors_of(excinfo)) == {"value"}


def test_overlapping_periods_are_refused(integ, spend, web, fair):
    services.metric_value_upsert(actor=integ, metric=spend, data={"period": "2026-11", "dimension": web.pk,
                                                                  "value": 1})
    with pytest.raises(ValidationError) as excinfo:
        services.metric_value_upsert(actor=integ, metric=spend, data={"period": "2026-W48", "dimension": web.pk,
                                                                      "value": 1})
    assert errors_of(excinfo) == {"period_start": [
        "Overlaps the value for 2026-11-01 – 2026-11-30; a KPI would count both. Use the same period start to "
        "replace it, or delete it first."]}
    # Another source, and the next month, are fine.
    services.metric_value_upsert(actor=integ, metric=spend, data={"period": "2026-W48", "dimension": fair.pk,
                                                                  "value": 1})
    services.metric_value_upsert(actor=integ, metric=spend, data={"period": "2026-12", "dimension": web.pk,
                                                                  "value": 1})
    assert MetricValue.objects.count() == 3


def test_reps_and_managers_do_not_write_values(alice, mona, spend, web):
    for user in (alice, mona):
        with pytest.raises(PermissionDenied):
            services.metric_value_upsert(actor=user, metric=spend, data={"period": "2026-11", "dimension": web.pk,
                                                                         "value": 1})


def test_bulk_upsert_is_all_or_nothing_with_errors_per_item(integ, spend, lifetime, web, fair):
    items = [
        {"metric": "marketing_spend", "period": "2026-10", "dimension": web.pk, "value": 100},
        {"metric": "marketing_spend", "period": "2026-10", "dimension": fair.pk, "value": "ten"},
        {"metric": "nope", "period": "2026-10", "value": 1},
        {"metric": "customer_lifetime_years", "period": "2026-Q4", "value": 3},
        {"metric": "marketing_spend", "period": "2026-10", "dimension": web.pk, "value": 5},
        "not an object",
    ]
    with pytest.raises(ValidationError) as excinfo:
        services.metric_values_bulk_upsert(actor=integ, items=items)
    assert errors_of(excinfo) == {
        "1.value": ["Enter a number, e.g. 12500.50."],
        "2.metric": ["Unknown metric “nope”."],
        "4.period_start": ["Item 0 has the same metric, period and dimension."],
        "5.non_field_errors": ["Expected an object."],
    }
    assert not MetricValue.objects.exists()


def test_bulk_upsert_rolls_back_when_a_late_item_overlaps(integ, spend, web):
    items = [
        {"metric": "marketing_spend", "period": "2026-10", "dimension": web.pk, "value": 100},
        {"metric": "marketing_spend", "period": "2026-10-15", "dimension": web.pk, "value": 5},
    ]
    with pytest.raises(ValidationError) as excinfo:
        services.metric_values_bulk_upsert(actor=integ, items=items)
    assert errors_of(excinfo) == {"1.period_start": [
        "Overlaps item 0 (2026-10-01 – 2026-10-31); a KPI would count both."]}
    assert not MetricValue.objects.exists()


def test_bulk_upsert_rolls_back_when_an_item_overlaps_a_stored_value(integ, spend, web, fair):
    services.metric_value_upsert(actor=integ, metric=spend, data={"period": "2026-09-30", "dimension": web.pk,
                                                                  "value": 1})
    items = [
        {"metric": "marketing_spend", "period": "2026-10", "dimension": fair.pk, "value": 100},
        {"metric": "marketing_spend", "period": "2026-Q3", "dimension": web.pk, "value": 5},
    ]
    with pytest.raises(ValidationError) as excinfo:
        services.metric_values_bulk_upsert(actor=integ, items=items)
    assert list(errors_of(excinfo)) == ["1.period_start"]
    assert MetricValue.objects.count() == 1  # item 0 was written, then rolled back


def test_bulk_upsert_writes_every_item(integ, spend, lifetime, web, fair):
    items = [{"metric": "marketing_spend", "period": f"2026-{month:02d}", "dimension": source.pk, "value": month}
             for month in range(1, 13) for source in (web, fair)]
    items.append({"metric": "customer_lifetime_years", "period": "2026-Q4", "value": 3})
    results = services.metric_values_bulk_upsert(actor=integ, items=items)
    assert len(results) == 25 and all(created for _row, created in results)
    assert MetricValue.objects.filter(metric=spend).count() == 24
    with pytest.raises(ValidationError):
        services.metric_values_bulk_upsert(actor=integ, items=items * 21)  # 525 > 500


def test_metric_value_delete(integ, alice, spend, web):
    value, _created = services.metric_value_upsert(actor=integ, metric=spend, data={
        "period": "2026-11", "dimension": web.pk, "value": 1})
    with pytest.raises(PermissionDenied):
        services.metric_value_delete(actor=alice, value=value)
    services.metric_value_delete(actor=integ, value=value)
    assert not MetricValue.objects.exists()


# --- exchange rates ----------------------------------------------------------------------------------------


def test_exchange_rate_upsert(sam, settings):
    settings.CRM_CURRENCY = "TRY"
    rate, created = services.exchange_rate_upsert(actor=sam, data={"currency": "eur", "rate": "36.12345678",
                                                                    "valid_from": "2026-11-01"})
    assert created and (rate.currency, rate.rate, rate.valid_from) == ("EUR", Decimal("36.12345678"),
                                                                       dt.date(2026, 11, 1))
    again, created = services.exchange_rate_upsert(actor=sam, data={"currency": "EUR", "rate": 37,
                                                                     "valid_from": "2026-11-01"})
    assert not created and again.pk == rate.pk and ExchangeRate.objects.get().rate == Decimal("37")


@pytest.mark.parametrize("data, field", [
    ({"currency": "TRY"}, "currency"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "ÇĞŞ"}, "currency"),
    ({"currency": 978}, "currency"),
    ({"rate": 0}, "rate"),
    ({"rate": "-1"}, "rate"),
    ({"rate": "1.123456789"}, "rate"),
    ({"rate": "1e12"}, "rate"),
    ({"valid_from": "2026-13-01"}, "valid_from"),
    ({"valid_from": None}, "valid_from"),
])
def test_exchange_rate_errors(sam, settings, data, field):
    settings.CRM_CURRENCY = "TRY"
    with pytest.raises(ValidationError) as excinfo:
        services.exchange_rate_upsert(actor=sam, data={"currency": "USD", "rate": "34.5", "valid_from": "2026-11-01",
                                                       **data})
    assert list(errors_of(excinfo)) == [field]
    assert not ExchangeRate.objects.exists()


def test_reps_do_not_change_rates(alice):
    with pytest.raises(PermissionDenied):
        services.exchange_rate_upsert(actor=alice, data={"currency": "USD", "rate": 1, "valid_from": "2026-11-01"})


def test_metric_fixture_rows(spend, lifetime):
    assert set(ExternalMetric.objects.values_list("key", "dimension_kind", "unit")) == {
        ("marketing_spend", "source", "currency"), ("customer_lifetime_years", "", "number")}
