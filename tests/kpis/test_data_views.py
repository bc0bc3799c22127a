"""The KPI data pages: survey responses, external metrics and their values, exchange rates (/kpis/data/…)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from kpis import services_data
from kpis.models import ExchangeRate, ExternalMetric, Kpi, KpiSnapshot, MetricValue, SurveyResponse
from tests.factories import ContactFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_metrics(db):
    """Start without the built-in metrics (migration 0002): each test creates the ones it uses."""
    ExternalMetric.objects.all().delete()


@pytest.fixture
def web():
    return LeadSourceFactory(name="Web")


@pytest.fixture
def spend(sam):
    return services_data.metric_create(actor=sam, data={"key": "marketing_spend", "name": "Marketing spend",
                                                        "dimension_kind": "source"})


def _answer(actor, contact, **data):
    response, _created = services_data.survey_response_create(actor=actor, data={"score": 9, "contact": contact,
                                                                                  **data})
    return response


# --- survey responses --------------------------------------------------------------------------------------


def test_the_list_shows_answers_of_visible_contacts_only(client_for, alice, charlie, integ):
    mine = ContactFactory(owner=alice, first_name="Işıl", last_name="Çelik")
    theirs = ContactFactory(owner=charlie, first_name="Gizli", last_name="Kişi")
    _answer(alice, mine, comment="Harika hizmet")
    _answer(charlie, theirs, comment="gizli yorum")
    services_data.survey_response_create(actor=integ, data={"score": 1, "comment": "anonim yorum"})
    page = client_for(alice).get(reverse("survey-list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Işıl Çelik" in html and "Harika hizmet" in html
    assert "Gizli" not in html and "gizli yorum" not in html and "anonim yorum" not in html


def test_survey_filters(client_for, alice):
    contact = ContactFactory(owner=alice)
    now = timezone.now()
    _answer(alice, contact, comment="old email", channel="email", responded_at=now - dt.timedelta(days=60))
    _answer(alice, contact, comment="new sms", channel="sms", kind="csat", score=4,
            responded_at=now - dt.timedelta(days=1))
    client = client_for(alice)

    def comments(params):
        html = client.get(reverse("survey-list"), params).content.decode()
        return {c for c in ("old email", "new sms") if c in html}

    assert comments({}) == {"old email", "new sms"}
    assert comments({"kind": "csat"}) == {"new sms"}
    assert comments({"channel": "email"}) == {"old email"}
    since = timezone.localdate() - dt.timedelta(days=7)
    assert comments({"date_from": since.isoformat()}) == {"new sms"}
    assert comments({"date_to": since.isoformat()}) == {"old email"}
    # Bad filters are reported and not applied; never a 500.
    bad = client.get(reverse("survey-list"), {"kind": "ces", "date_from": "dün", "cursor": "bozuk"})
    assert bad.status_code == 200
    assert "Some filters were not understood" in bad.content.decode()


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize("who, queries", [("alice", 4), ("mona", 5), ("sam", 4)])
def test_the_survey_list_uses_a_fixed_number_of_queries(request, client_for, django_assert_num_queries, alice, integ,
                                                        rows, who, queries):
    for n in range(rows):
        _answer(integ, ContactFactory(owner=alice), score=n % 11)
    client = client_for(request.getfixturevalue(who))
    client.get(reverse("survey-list"))
    # The session, the user, the unread-notification count of the header, (a manager's teams,) and the page of
    # answers with their contacts and who entered them.
    with django_assert_num_queries(queries):
        response = client.get(reverse("survey-list"), {"kind": "nps", "channel": "", "date_from": "2000-01-01"})
    assert response.status_code == 200
    assert len(response.context["page"].items) == rows


def test_the_survey_list_pages(client_for, integ, sam):
    for n in range(55):
        services_data.survey_response_create(actor=integ, data={
            "score": n % 11, "responded_at": timezone.now() - dt.timedelta(minutes=n)})
    client = client_for(sam)
    first = client.get(reverse("survey-list")).context["page"]
    assert len(first.items) == 50 and first.next_cursor
    second = client.get(reverse("survey-list"), {"cursor": first.next_cursor}).context["page"]
    assert len(second.items) == 5


def test_a_rep_records_an_answer(client_for, alice, bob):
    contact = ContactFactory(owner=alice, first_name="Ayşe")
    client = client_for(bob)
    form = client.get(reverse("survey-create"), {"contact": contact.pk})
    assert form.status_code == 200
    assert f'<option value="{contact.pk}" selected>' in form.content.decode()
    response = client.post(reverse("survey-create"), {
        "contact": contact.pk, "kind": "nps", "score": "10", "responded_at": "2026-01-05T10:30", "channel": "phone",
        "comment": "Çok memnun"})
    assert response.status_code == 302 and response.url == reverse("survey-list")
    answer = SurveyResponse.objects.get()
    assert (answer.contact, answer.score, answer.channel, answer.created_by) == (contact, 10, "phone", bob)
    assert timezone.localtime(answer.responded_at).replace(tzinfo=None) == dt.datetime(2026, 1, 5, 10, 30)


def test_a_rep_cannot_record_an_answer_for_a_contact_they_do_not_see(client_for, alice, charlie):
    contact = ContactFactory(owner=alice, first_name="Saklı")
    client = client_for(charlie)
    assert "Saklı" not in client.get(reverse("survey-create"), {"contact": contact.pk}).content.decode()
    response = client.post(reverse("survey-create"), {
        "contact": contact.pk, "kind": "nps", "score": "10", "responded_at": "2026-01-05T10:30"})
    assert response.status_code == 422
    assert response.context["form"].errors == {"contact": ["Unknown contact."]}
    assert not SurveyResponse.objects.exists()


@pytest.mark.parametrize("data, field, message", [
    ({"kind": "csat", "score": "9"}, "score", "A CSAT score is a whole number from 1 to 5."),
    ({"score": "on"}, "score", "Enter a whole number."),
    ({"responded_at": "yarın"}, "responded_at", "Enter a valid date/time."),
    ({"comment": "ğ" * 5001}, "comment", "Ensure this value has at most 5000 characters (it has 5001)."),
    ({"channel": "pigeon"}, "channel", "Select a valid choice. pigeon is not one of the available choices."),
    ({"contact": "x" * 5000}, "contact", "Unknown contact."),
])
def test_bad_answers_are_refused_next_to_the_field(client_for, alice, data, field, message):
    contact = ContactFactory(owner=alice)
    body = {"contact": contact.pk, "kind": "nps", "score": "5", "responded_at": "2026-01-05T10:30", **data}
    response = client_for(alice).post(reverse("survey-create"), body)
    assert response.status_code == 422
    assert response.context["form"].errors[field] == [message]
    assert not SurveyResponse.objects.exists()


def test_a_future_answer_is_refused(client_for, alice):
    contact = ContactFactory(owner=alice)
    future = (timezone.localtime() + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = client_for(alice).post(reverse("survey-create"), {
        "contact": contact.pk, "kind": "nps", "score": "5", "responded_at": future})
    assert response.context["form"].errors == {"responded_at": ["The answer cannot be dated in the future."]}


def test_integrations_do_not_use_the_pages(client_for, integ):
    assert client_for(integ).get(reverse("survey-list")).status_code == 403


# --- external metrics --------------------------------------------------------------------------------------


def test_everyone_reads_metrics_only_admins_create_them(client_for, alice, sam, spend):
    page = client_for(alice).get(reverse("metric-list"))
    assert page.status_code == 200 and "marketing_spend" in page.content.decode()
    assert page.context["form"] is None
    assert client_for(alice).post(reverse("metric-list"), {"key": "x", "name": "X", "unit": "number"}).status_code \
        == 403
    admin_client = client_for(sam)
    created = admin_client.post(reverse("metric-list"), {"key": "sales_spend", "name": "Satış harcaması",
                                                         "unit": "currency", "dimension_kind": ""})
    assert created.status_code == 302 and created.url == reverse("metric-detail", args=["sales_spend"])
    bad = admin_client.post(reverse("metric-list"), {"key": "Satış Gideri", "name": "S", "unit": "currency"})
    assert bad.status_code == 422
    assert bad.context["form"].errors["key"][0].startswith("Use lower-case letters")
    assert set(ExternalMetric.objects.values_list("key", flat=True)) == {"marketing_spend", "sales_spend"}


def test_an_admin_sets_values_on_the_metric_page(client_for, sam, alice, spend, web):
    client = client_for(sam)
    url = reverse("metric-detail", args=["marketing_spend"])
    assert client.get(url).status_code == 200
    response = client.post(url, {"period": "2026-11", "dimension": web.pk, "value": "12500.50"})
    assert response.status_code == 302
    response = client.post(url, {"period_start": "2026-11-01", "period_end": "2026-11-30", "dimension": web.pk,
                                 "value": "13000"})
    assert response.status_code == 302
    value = MetricValue.objects.get()
    assert (value.period_start, value.period_end, value.dimension_id, value.value) == (
        dt.date(2026, 11, 1), dt.date(2026, 11, 30), web.pk, Decimal("13000"))
    html = client_for(alice).get(url).content.decode()
    assert "Web" in html and "13.000" in html or "13,000" in html
    assert client_for(alice).post(url, {"period": "2026-12", "dimension": web.pk, "value": "1"}).status_code == 403


@pytest.mark.parametrize("data, field", [
    ({"period": "Kasım 2026", "value": "1"}, "period"),
    ({"period": "2026-W48", "value": "1"}, "period_start"),  # overlaps November
    ({"period_start": "2026-12-05", "value": "1"}, "period_end"),
    ({"period": "2026-12", "value": "on iki"}, "value"),
    ({"period": "2026-12", "value": "1", "dimension": ""}, "dimension"),
    ({"period": "2026-12", "value": "1", "dimension": "99999"}, "dimension"),
])
def test_bad_values_are_refused_next_to_the_field(client_for, sam, spend, web, data, field):
    services_data.metric_value_upsert(actor=sam, metric=spend, data={"period": "2026-11", "dimension": web.pk,
                                                                     "value": 1})
    response = client_for(sam).post(reverse("metric-detail", args=["marketing_spend"]),
                                    {"dimension": web.pk, **data})
    assert response.status_code == 422
    assert field in response.context["value_form"].errors
    assert MetricValue.objects.count() == 1


def test_an_admin_edits_a_metric_and_deletes_a_value(client_for, sam, alice, spend, web):
    value, _created = services_data.metric_value_upsert(actor=sam, metric=spend, data={
        "period": "2026-11", "dimension": web.pk, "value": 1})
    client = client_for(sam)
    edited = client.post(reverse("metric-edit", args=["marketing_spend"]), {
        "name": "Pazarlama harcaması", "unit": "currency", "description": "Kaynağa göre aylık"})
    assert edited.status_code == 302
    assert ExternalMetric.objects.get().name == "Pazarlama harcaması"
    delete_url = reverse("metric-value-delete", args=["marketing_spend", value.pk])
    assert client_for(alice).post(delete_url).status_code == 403
    assert client_for(sam).post(delete_url).status_code == 302
    assert not MetricValue.objects.exists()
    assert client_for(sam).get(reverse("metric-detail", args=["nope"])).status_code == 404


# --- exchange rates ----------------------------------------------------------------------------------------


def test_exchange_rate_page(client_for, sam, alice, settings):
    settings.CRM_CURRENCY = "TRY"
    client = client_for(sam)
    url = reverse("exchange-rate-list")
    assert client.post(url, {"currency": "usd", "rate": "34.1", "valid_from": "2026-11-01"}).status_code == 302
    assert client.post(url, {"currency": "USD", "rate": "34.2", "valid_from": "2026-11-01"}).status_code == 302
    assert ExchangeRate.objects.get().rate == Decimal("34.2")
    own = client.post(url, {"currency": "TRY", "rate": "1", "valid_from": "2026-11-01"})
    assert own.status_code == 422
    assert own.context["form"].errors == {"currency": ["TRY is the company currency; it needs no rate."]}
    zero = client.post(url, {"currency": "EUR", "rate": "0", "valid_from": "2026-11-01"})
    assert zero.context["form"].errors == {"rate": ["The rate must be more than 0."]}
    page = client_for(alice).get(url)
    assert page.status_code == 200 and "USD" in page.content.decode() and page.context["form"] is None
    assert client_for(alice).post(url, {"currency": "EUR", "rate": "1", "valid_from": "2026-11-01"}).status_code \
        == 403
    rate = ExchangeRate.objects.get()
    assert client_for(alice).post(reverse("exchange-rate-delete", args=[rate.pk])).status_code == 403
    assert client_for(sam).post(reverse("exchange-rate-delete", args=[rate.pk])).status_code == 302
    assert not ExchangeRate.objects.exists()


# --- admin -------------------------------------------------------------------------------------------------


def test_every_kpi_model_is_in_the_admin_and_renders(client, sam, alice, integ, spend, web):
    sam.is_superuser = True
    sam.save(update_fields=["is_superuser"])
    kpi = Kpi.objects.create(slug="test-kpi", name="Test KPI", formula="count(deals)")
    KpiSnapshot.objects.create(kpi=kpi, frequency="monthly", period_start=timezone.now(), period_end=timezone.now(),
                               value=Decimal("1.5"), formula_version=1)
    _answer(alice, ContactFactory(owner=alice))
    services_data.metric_value_upsert(actor=sam, metric=spend, data={"period": "2026-11", "dimension": web.pk,
                                                                     "value": 1})
    services_data.exchange_rate_upsert(actor=sam, data={"currency": "EUR", "rate": "36", "valid_from": "2026-11-01"})
    client.force_login(sam)
    for model in (Kpi, KpiSnapshot, SurveyResponse, ExternalMetric, MetricValue, ExchangeRate):
        assert model in admin.site._registry
        meta = model._meta
        changelist = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert changelist.status_code == 200, meta.model_name
        row = model.objects.first()
        change = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[row.pk]))
        assert change.status_code == 200, meta.model_name
    assert client.get(reverse("admin:kpis_kpi_add")).status_code == 403


def test_the_survey_date_filter_labels_have_their_own_context():
    """'From'/'To' of a date range are not the 'From'/'To' of a stage change (other words in Turkish): the
    labels are pgettext_lazy("date range", …)."""
    from kpis.forms_data import SurveyFilterForm

    fields = SurveyFilterForm().fields
    assert (str(fields["date_from"].label), str(fields["date_to"].label)) == ("From", "To")
    # The lazy proxy keeps the arguments it will translate with.
    assert fields["date_from"].label._args == ("date range", "From")
    assert fields["date_to"].label._args == ("date range", "To")


def test_opening_the_metric_edit_address_leads_to_the_metric_page(client_for, sam):
    metric = ExternalMetric.objects.create(key="ad_budget", name="Ad budget")
    response = client_for(sam).get(f"/kpis/data/metrics/{metric.key}/edit/")
    assert response.status_code == 302 and response["Location"] == f"/kpis/data/metrics/{metric.key}/"
