"""The KPI data API: /api/v1/survey-responses/, /metrics/, /metric-values/, /exchange-rates/."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from kpis import services_data
from kpis.models import ExchangeRate, ExternalMetric, MetricValue, SurveyResponse
from tests.factories import ContactFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db

SURVEYS = "/api/v1/survey-responses/"
METRICS = "/api/v1/metrics/"
VALUES = "/api/v1/metric-values/"
RATES = "/api/v1/exchange-rates/"


def errors(response) -> dict:
    return response.json()["errors"]


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
    return services_data.metric_create(actor=sam, data={"key": "marketing_spend", "name": "Marketing spend",
                                                        "dimension_kind": "source"})


@pytest.fixture
def lifetime(sam):
    return services_data.metric_create(actor=sam, data={"key": "customer_lifetime_years",
                                                        "name": "Customer lifetime", "unit": "number"})


# --- survey responses --------------------------------------------------------------------------------------


def test_a_rep_records_an_answer_of_a_contact_they_see(api_for, alice, bob):
    contact = ContactFactory(owner=alice)
    response = api_for(bob).post(SURVEYS, {
        "kind": "nps", "score": 9, "contact": contact.pk, "channel": "whatsapp",
        "comment": "Işıl Hanım çok memnun; ürün güzel.", "responded_at": "2026-01-05T10:00:00+03:00"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["contact"] == contact.pk and body["score"] == 9 and body["created_by"] == bob.pk
    assert body["comment"] == "Işıl Hanım çok memnun; ürün güzel."
    assert SurveyResponse.objects.get().responded_at == dt.datetime(2026, 1, 5, 7, 0, tzinfo=dt.UTC)


def test_a_hidden_contact_is_refused_like_an_unknown_one(api_for, alice, charlie):
    contact = ContactFactory(owner=alice)
    api = api_for(charlie)
    hidden = api.post(SURVEYS, {"score": 9, "contact": contact.pk}, format="json")
    unknown = api.post(SURVEYS, {"score": 9, "contact": 987654321}, format="json")
    assert hidden.status_code == unknown.status_code == 400
    assert errors(hidden) == errors(unknown) == {"contact": ["Unknown contact."]}
    assert not SurveyResponse.objects.exists()


@pytest.mark.parametrize("body, fields", [
    ({}, {"score"}),
    ({"score": "dokuz"}, {"score"}),
    ({"score": 11}, {"score"}),
    ({"score": 3, "kind": "csat", "channel": "güvercin"}, {"channel"}),
    ({"score": 5, "comment": "ş" * 5001}, {"comment"}),
    ({"score": 5, "comment": 12}, {"comment"}),
    ({"score": 5, "external_id": "x" * 101}, {"external_id"}),
    ({"score": 5, "contact": "abc"}, {"contact"}),
    ({"score": 5, "contact": 2**70}, {"contact"}),
    ({"score": 5, "responded_at": "dün"}, {"responded_at"}),
    ({"score": 5, "responded_at": "2999-01-01T00:00:00Z"}, {"responded_at"}),
    ({"score": 5, "puan": 5}, {"puan"}),
    ({"score": [5], "kind": {"a": 1}}, {"score", "kind"}),
])
def test_bad_answers_get_field_errors(api_for, integ, body, fields):
    response = api_for(integ).post(SURVEYS, body, format="json")
    assert response.status_code == 400, response.content
    assert set(errors(response)) == fields
    assert not SurveyResponse.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(api_for, integ):
    response = api_for(integ).post(SURVEYS, [1, 2], format="json")
    assert response.status_code == 400
    assert "non_field_errors" in errors(response)


def test_an_integration_pushes_the_same_answer_twice(api_for, integ, alice):
    contact = ContactFactory(owner=alice)
    api = api_for(integ)
    first = api.post(SURVEYS, {"score": 4, "contact": contact.pk, "external_id": "tf-1"}, format="json")
    second = api.post(SURVEYS, {"score": 8, "contact": contact.pk, "external_id": "tf-1"}, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert SurveyResponse.objects.get().score == 8


def test_reading_is_limited_to_answers_of_visible_contacts(api_for, alice, bob, charlie, mona, sam, integ):
    north_answer, _ = services_data.survey_response_create(actor=alice, data={
        "score": 9, "contact": ContactFactory(owner=alice)})
    south_answer, _ = services_data.survey_response_create(actor=charlie, data={
        "score": 2, "contact": ContactFactory(owner=charlie)})
    anonymous, _ = services_data.survey_response_create(actor=integ, data={"score": 7})

    def ids(user):
        return {row["id"] for row in api_for(user).get(SURVEYS).json()["results"]}

    assert ids(bob) == ids(mona) == {north_answer.pk}
    assert ids(charlie) == {south_answer.pk}
    assert ids(sam) == ids(integ) == {north_answer.pk, south_answer.pk, anonymous.pk}
    assert api_for(charlie).get(f"{SURVEYS}{north_answer.pk}/").status_code == 404
    assert api_for(bob).get(f"{SURVEYS}{north_answer.pk}/").status_code == 200


def test_survey_filters(api_for, integ, alice):
    contact = ContactFactory(owner=alice)
    now = timezone.now()
    services_data.survey_response_create(actor=integ, data={"score": 9, "contact": contact, "channel": "email",
                                                            "responded_at": now - dt.timedelta(days=40)})
    recent, _ = services_data.survey_response_create(actor=integ, data={
        "kind": "csat", "score": 4, "contact": contact, "channel": "sms", "responded_at": now - dt.timedelta(days=1)})
    api = api_for(integ)
    since = (now - dt.timedelta(days=7)).isoformat()
    for params in [{"kind": "csat"}, {"channel": "sms"}, {"responded_from": since}]:
        assert [row["id"] for row in api.get(SURVEYS, params).json()["results"]] == [recent.pk]
    bad = api.get(SURVEYS, {"kind": "ces", "contact": "x", "responded_from": "yesterday", "skor": 1})
    assert bad.status_code == 400
    assert set(errors(bad)) == {"kind", "contact", "responded_from", "skor"}


@pytest.mark.parametrize("rows", [3, 12])
@pytest.mark.parametrize("who, queries", [("alice", 2), ("mona", 3), ("sam", 2)])
def test_survey_list_uses_a_fixed_number_of_queries(request, api_for, django_assert_num_queries, integ, alice,
                                                    rows, who, queries):
    for n in range(rows):
        services_data.survey_response_create(actor=integ, data={"score": n % 11, "contact": ContactFactory(
            owner=alice)})
    api = api_for(request.getfixturevalue(who))
    api.get(SURVEYS)
    with django_assert_num_queries(queries):
        response = api.get(SURVEYS, {"page_size": 200})
    assert len(response.json()["results"]) == rows


def test_survey_list_pages_by_keyset(api_for, integ):
    for n in range(5):
        services_data.survey_response_create(actor=integ, data={
            "score": n, "responded_at": timezone.now() - dt.timedelta(hours=n)})
    api = api_for(integ)
    first = api.get(SURVEYS, {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    scores = [row["score"] for row in first["results"] + second["results"]]
    assert scores == [0, 1, 2, 3]


# --- metrics -----------------------------------------------------------------------------------------------


def test_admins_create_metrics_and_everyone_reads_them(api_for, sam, alice, integ):
    created = api_for(sam).post(METRICS, {"key": "sales_spend", "name": "Satış harcaması"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["unit"] == "currency" and created.json()["dimension_kind"] == ""
    assert api_for(alice).get(f"{METRICS}sales_spend/").json()["name"] == "Satış harcaması"
    assert api_for(alice).get(f"{METRICS}nope/").status_code == 404
    for user in (alice, integ):
        refused = api_for(user).post(METRICS, {"key": "x", "name": "X"}, format="json")
        assert refused.status_code == 403
    assert ExternalMetric.objects.count() == 1


@pytest.mark.parametrize("path", [f"{METRICS}%00/", f"{METRICS}ödeme/", f"{METRICS}{'x' * 5000}/",
                                  f"{VALUES}abc/", f"{VALUES}99999999999999999999999/", f"{SURVEYS}%00/",
                                  f"{RATES}-1/"])
def test_odd_urls_are_404s(api_for, integ, path):
    assert api_for(integ).get(path).status_code == 404


def test_nul_characters_and_odd_query_values_are_400s(api_for, integ, spend):
    api = api_for(integ)
    assert api.get(VALUES, {"metric": "a\x00b"}).status_code == 400
    assert api.get(SURVEYS, {"external_id": "a\x00b"}).status_code == 400
    assert api.get(RATES, {"currency": "\x00\x00"}).status_code == 400
    response = api.post(SURVEYS, {"score": 5, "comment": "a\x00b", "external_id": "\x00"}, format="json")
    assert response.status_code == 400 and set(errors(response)) == {"comment", "external_id"}
    response = api.post(VALUES, {"metric": "a\x00", "period": "\x00", "value": 1}, format="json")
    assert response.status_code == 400


def test_metric_errors(api_for, sam, spend):
    api = api_for(sam)
    taken = api.post(METRICS, {"key": "marketing_spend", "name": "Again"}, format="json")
    assert errors(taken) == {"key": ["There is already a metric with the key “marketing_spend”."]}
    bad = api.post(METRICS, {"key": "Pazarlama Gideri", "name": "", "unit": "euro", "dimension_kind": "city",
                             "colour": "red"}, format="json")
    assert bad.status_code == 400
    assert set(errors(bad)) == {"key", "name", "unit", "dimension_kind", "colour"}
    rename = api.patch(f"{METRICS}marketing_spend/", {"key": "spend"}, format="json")
    assert rename.status_code == 400 and set(errors(rename)) == {"key"}
    ok = api.patch(f"{METRICS}marketing_spend/", {"name": "Pazarlama harcaması"}, format="json")
    assert ok.status_code == 200 and ok.json()["name"] == "Pazarlama harcaması"


def test_metric_list_filter(api_for, alice, spend, lifetime):
    api = api_for(alice)
    assert [m["key"] for m in api.get(METRICS).json()["results"]] == ["customer_lifetime_years", "marketing_spend"]
    assert [m["key"] for m in api.get(METRICS, {"dimension_kind": "company"}).json()["results"]] == [
        "customer_lifetime_years"]
    assert api.get(METRICS, {"dimension_kind": "city"}).status_code == 400


# --- metric values: the integration pushes marketing spend per lead source -----------------------------------


def test_an_integration_pushes_marketing_spend_per_source(api_for, integ, spend, web, fair):
    api = api_for(integ)
    one = api.post(VALUES, {"metric": "marketing_spend", "period": "2026-11", "dimension": web.pk,
                            "value": "12500.50"}, format="json")
    assert one.status_code == 201, one.content
    assert one.json() == {
        "id": one.json()["id"], "metric": "marketing_spend", "period_start": "2026-11-01", "period_end": "2026-11-30",
        "dimension_kind": "source", "dimension": web.pk, "value": "12500.5000", "updated_by": integ.pk,
        "updated_at": one.json()["updated_at"]}
    again = api.post(VALUES, {"metric": "marketing_spend", "period_start": "2026-11-01", "period_end": "2026-11-30",
                              "dimension": web.pk, "value": 13000}, format="json")
    assert again.status_code == 200 and again.json()["id"] == one.json()["id"]

    bulk = api.post(VALUES, [
        {"metric": "marketing_spend", "period": "2026-11", "dimension": web.pk, "value": "14000"},
        {"metric": "marketing_spend", "period": "2026-11", "dimension": fair.pk, "value": "8000"},
        {"metric": "marketing_spend", "period": "2026-12", "dimension": fair.pk, "value": "9000"},
    ], format="json")
    assert bulk.status_code == 200, bulk.content
    assert (bulk.json()["created"], bulk.json()["updated"]) == (2, 1)
    assert [row["value"] for row in bulk.json()["results"]] == ["14000.0000", "8000.0000", "9000.0000"]
    assert {(v.period_start, v.dimension_id): v.value for v in MetricValue.objects.all()} == {
        (dt.date(2026, 11, 1), web.pk): Decimal("14000"), (dt.date(2026, 11, 1), fair.pk): Decimal("8000"),
        (dt.date(2026, 12, 1), fair.pk): Decimal("9000")}


def test_a_bulk_push_with_bad_items_saves_nothing_and_names_each_item(api_for, integ, spend, lifetime, web):
    response = api_for(integ).post(VALUES, [
        {"metric": "marketing_spend", "period": "2026-10", "dimension": web.pk, "value": "100"},
        {"metric": "marketing_spend", "period": "2026-10", "dimension": 99999999, "value": "100"},
        {"metric": "marketing_spend", "period": "Ekim 2026", "dimension": web.pk, "value": "100"},
        {"metric": "customer_lifetime_years", "period": "2026-Q4", "value": "üç"},
        {"metric": "nope", "period": "2026-10", "value": 1},
        "a string",
        {"metric": "marketing_spend", "period": "2026-10-05", "dimension": web.pk, "value": 1, "extra": True},
        {"metric": "marketing_spend", "period": "2026-10-06", "dimension": web.pk, "value": 1},
    ], format="json")
    assert response.status_code == 400
    body = errors(response)
    assert set(body) == {"1.dimension", "2.period", "3.value", "4.metric", "5.non_field_errors", "6.extra",
                         "7.period_start"}
    assert body["1.dimension"] == ["There is no lead source with id 99999999."]
    assert body["4.metric"] == ["Unknown metric “nope”."]
    assert body["7.period_start"] == ["Overlaps item 0 (2026-10-01 – 2026-10-31); a KPI would count both."]
    assert not MetricValue.objects.exists()


def test_bulk_limits_and_body_shapes(api_for, integ, spend, web):
    api = api_for(integ)
    item = {"metric": "marketing_spend", "period": "2026-10", "dimension": web.pk, "value": 1}
    too_many = api.post(VALUES, [item] * 501, format="json")
    assert too_many.status_code == 400 and set(errors(too_many)) == {"non_field_errors"}
    assert api.post(VALUES, [], format="json").status_code == 400
    assert api.post(VALUES, "12", format="json").status_code == 400
    assert api.post(VALUES, {"metric": "nope", "period": "2026-10", "value": 1}, format="json").json() == {
        "errors": {"metric": ["Unknown metric “nope”."]}}
    huge = api.post(VALUES, {"metric": "m" * 10000, "period": "p" * 10000, "value": "9" * 5000}, format="json")
    assert huge.status_code == 400 and set(errors(huge)) == {"metric", "period", "value"}
    assert not MetricValue.objects.exists()


def test_500_values_in_one_request(api_for, integ, spend, web, django_assert_max_num_queries):
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=n) for n in range(500)]
    items = [{"metric": "marketing_spend", "period": day.isoformat(), "dimension": web.pk, "value": n}
             for n, day in enumerate(days)]
    response = api_for(integ).post(VALUES, items, format="json")
    assert response.status_code == 200, response.content[:500]
    assert response.json()["created"] == 500
    assert MetricValue.objects.count() == 500


def test_only_admins_and_integrations_push_values(api_for, alice, mona, sam, spend, web):
    body = {"metric": "marketing_spend", "period": "2026-10", "dimension": web.pk, "value": 1}
    for user in (alice, mona):
        assert api_for(user).post(VALUES, body, format="json").status_code == 403
    assert api_for(sam).post(VALUES, body, format="json").status_code == 201
    value = MetricValue.objects.get()
    assert api_for(alice).delete(f"{VALUES}{value.pk}/").status_code == 403
    assert api_for(alice).get(f"{VALUES}{value.pk}/").status_code == 200
    assert api_for(sam).delete(f"{VALUES}{value.pk}/").status_code == 204
    assert not MetricValue.objects.exists()


def test_value_list_filters(api_for, alice, integ, spend, lifetime, web, fair):
    items = [{"metric": "marketing_spend", "period": f"2026-{m:02d}", "dimension": s.pk, "value": m}
             for m in (9, 10, 11) for s in (web, fair)]
    items.append({"metric": "customer_lifetime_years", "period": "2026-Q4", "value": 3})
    services_data.metric_values_bulk_upsert(actor=integ, items=items)
    api = api_for(alice)

    def rows(params):
        response = api.get(VALUES, params)
        assert response.status_code == 200, response.content
        return [(r["metric"], r["period_start"], r["dimension"]) for r in response.json()["results"]]

    assert rows({"metric": "customer_lifetime_years"}) == [("customer_lifetime_years", "2026-10-01", None)]
    assert rows({"metric": "marketing_spend", "dimension": web.pk, "period_from": "2026-10-01",
                 "period_to": "2026-11-01", "ordering": "period"}) == [
        ("marketing_spend", "2026-10-01", web.pk), ("marketing_spend", "2026-11-01", web.pk)]
    bad = api.get(VALUES, {"metric": "nope", "period_from": "Ekim", "dimension": "web", "donem": "2026-11"})
    assert bad.status_code == 400
    assert set(errors(bad)) == {"metric", "period_from", "dimension", "donem"}


@pytest.mark.parametrize("rows", [4, 16])
def test_value_list_uses_a_fixed_number_of_queries(api_for, django_assert_num_queries, integ, alice, spend, web,
                                                   rows):
    services_data.metric_values_bulk_upsert(actor=integ, items=[
        {"metric": "marketing_spend", "period": f"{2010 + n}-01", "dimension": web.pk, "value": n}
        for n in range(rows)])
    api = api_for(alice)
    api.get(VALUES)
    with django_assert_num_queries(2):
        response = api.get(VALUES, {"page_size": 200})
    assert len(response.json()["results"]) == rows
    with django_assert_num_queries(3):  # + the metric key checked
        api.get(VALUES, {"page_size": 200, "metric": "marketing_spend"})


# --- exchange rates ----------------------------------------------------------------------------------------


def test_exchange_rates(api_for, settings, integ, alice):
    settings.CRM_CURRENCY = "TRY"
    api = api_for(integ)
    created = api.post(RATES, {"currency": "eur", "rate": "36.25", "valid_from": "2026-11-01"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["currency"] == "EUR" and created.json()["rate"] == "36.25000000"
    replaced = api.post(RATES, {"currency": "EUR", "rate": "36.5", "valid_from": "2026-11-01"}, format="json")
    assert replaced.status_code == 200 and replaced.json()["id"] == created.json()["id"]
    own = api.post(RATES, {"currency": "TRY", "rate": "1", "valid_from": "2026-11-01"}, format="json")
    assert errors(own) == {"currency": ["TRY is the company currency; it needs no rate."]}
    bad = api.post(RATES, {"currency": 978, "rate": "-1", "valid_from": "01.11.2026", "source": "TCMB"},
                   format="json")
    assert set(errors(bad)) == {"currency", "rate", "valid_from", "source"}
    zero = api.post(RATES, {"currency": "USD", "rate": "0", "valid_from": "2026-11-01"}, format="json")
    assert errors(zero) == {"rate": ["The rate must be more than 0."]}
    assert api_for(alice).post(RATES, {"currency": "USD", "rate": "34", "valid_from": "2026-11-01"},
                               format="json").status_code == 403
    listed = api_for(alice).get(RATES, {"currency": "eur"}).json()["results"]
    assert [(r["currency"], r["rate"]) for r in listed] == [("EUR", "36.50000000")]
    assert ExchangeRate.objects.count() == 1


# --- the OpenAPI schema ------------------------------------------------------------------------------------


def test_schema_documents_the_data_api_and_is_warning_free(api_for, alice):
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
    schema = api_for(alice).get("/api/schema/", {"format": "json"}).json()
    assert {"/api/v1/survey-responses/", "/api/v1/survey-responses/{id}/", "/api/v1/metrics/",
            "/api/v1/metrics/{key}/", "/api/v1/metric-values/", "/api/v1/metric-values/{id}/",
            "/api/v1/exchange-rates/", "/api/v1/exchange-rates/{id}/"} <= set(schema["paths"])
    upsert = schema["paths"]["/api/v1/metric-values/"]["post"]
    assert set(upsert["responses"]) >= {"200", "201", "400", "401", "403"}
    params = {p["name"] for p in schema["paths"]["/api/v1/metric-values/"]["get"]["parameters"]}
    assert {"metric", "period_from", "period_to", "dimension", "cursor", "ordering"} <= params
