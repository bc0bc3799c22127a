"""The deals API: who sees and changes what, creating, changing, bad input, field history."""

from decimal import Decimal

import pytest

from crm_okr.models import Event, FieldChange
from pipeline.models import Deal, Pipeline
from tests.factories import CompanyFactory, ContactFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/deals/"
BIG = "x" * 100_000

FIELDS = [
    "id", "name", "pipeline", "stage", "status", "amount", "currency", "expected_close_date", "owner", "team",
    "contact", "company", "lead_source", "lost_reason", "lost_note", "custom_fields", "weighted_amount", "is_stale",
    "stage_entered_at", "rots_at", "created_at", "updated_at", "closed_at",
]


def detail(deal, path=""):
    return f"{URL}{deal.pk}/{path}"


def persona(request, name):
    return request.getfixturevalue(name)


@pytest.fixture
def deal(alice, make_deal, stages):
    return make_deal(alice, name="Yıllık lisans", stage=stages["Qualified"], amount=Decimal("1000.00"))


# --- visibility: the owner, the teammate, the outsider, the manager, the admin, the integration -------

READ = [("alice", 200), ("bob", 200), ("charlie", 404), ("mona", 200), ("sam", 200), ("integ", 200)]
WRITE = [("alice", 200), ("bob", 403), ("charlie", 404), ("mona", 200), ("sam", 200), ("integ", 200)]


@pytest.mark.parametrize("path", ["", "stage-history/", "history/"])
@pytest.mark.parametrize("name, status", READ)
def test_every_deal_read_route_follows_visibility(request, api_for, deal, name, status, path):
    response = api_for(persona(request, name)).get(detail(deal, path))

    assert response.status_code == status
    if status == 404:
        assert response.json() == {"errors": {"detail": ["Not found."]}}


@pytest.mark.parametrize("name, status", WRITE)
def test_only_editors_change_a_deal(request, api_for, deal, name, status):
    response = api_for(persona(request, name)).patch(detail(deal), {"name": "Yeni ad"}, format="json")

    assert response.status_code == status
    deal.refresh_from_db()
    assert deal.name == ("Yeni ad" if status == 200 else "Yıllık lisans")


@pytest.mark.parametrize("name, status", WRITE)
def test_only_editors_move_a_deal(request, api_for, deal, stages, name, status):
    response = api_for(persona(request, name)).post(detail(deal, "move-stage/"), {"stage": stages["Proposal"].pk,
                                                    "changes": {"expected_close_date": "2027-03-31"}}, format="json")

    assert response.status_code == status
    deal.refresh_from_db()
    moved = status == 200
    assert deal.stage == (stages["Proposal"] if moved else stages["Qualified"])
    assert str(deal.expected_close_date) == ("2027-03-31" if moved else "None")


def test_teammate_is_refused_before_the_body_is_looked_at(api_for, bob, deal):
    api = api_for(bob)

    patched = api.patch(detail(deal), {"amount": "lots"}, format="json")
    moved = api.post(detail(deal, "move-stage/"), {"stage": "nowhere"}, format="json")

    assert patched.status_code == moved.status_code == 403
    assert patched.json() == {"errors": {"detail": ["You may not edit this deal."]}}
    assert moved.json() == {"errors": {"detail": ["You may not edit this deal."]}}


def test_outsider_gets_404_on_every_deal_url_and_nothing_changes(api_for, charlie, deal, stages, price):
    api = api_for(charlie)

    assert api.patch(detail(deal), {"name": "X"}, format="json").status_code == 404
    assert api.post(detail(deal, "move-stage/"), {"stage": stages["Lost"].pk, "lost_reason": price.pk},
                    format="json").status_code == 404
    assert api.get(detail(deal, "stage-history/")).status_code == 404
    assert api.get(detail(deal, "history/")).status_code == 404
    deal.refresh_from_db()
    assert (deal.name, deal.stage, deal.status) == ("Yıllık lisans", stages["Qualified"], "open")
    assert not Event.objects.exclude(name="deal.created").exists()


def test_an_unknown_deal_is_the_same_404_as_a_hidden_one(api_for, charlie, deal):
    hidden = api_for(charlie).get(detail(deal)).json()
    unknown = api_for(charlie).get(f"{URL}999999/").json()

    assert hidden == unknown


@pytest.mark.parametrize("name", ["alice", "bob", "mona", "sam", "integ"])
def test_deal_list_shows_the_team_deals(request, api_for, deal, name):
    response = api_for(persona(request, name)).get(URL)

    assert [row["id"] for row in response.json()["results"]] == [deal.pk]


def test_outsider_list_leaves_out_other_teams_deals(api_for, charlie, deal, make_deal):
    own = make_deal(charlie, name="Kendi fırsatım")

    response = api_for(charlie).get(URL)

    assert [row["id"] for row in response.json()["results"]] == [own.pk]


def test_request_without_token_is_refused(client, deal):
    response = client.get(URL)

    assert response.status_code == 401
    assert response.json() == {"errors": {"detail": ["Authentication credentials were not provided."]}}


# --- no PUT, no DELETE -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "delete"])
def test_deals_are_neither_replaced_nor_deleted(api_for, alice, sam, deal, method):
    for user in (alice, sam):
        response = getattr(api_for(user), method)(detail(deal), {"name": "X"}, format="json")
        assert response.status_code == 405
    assert Deal.objects.get().name == "Yıllık lisans"


def test_schema_says_how_to_close_a_deal(api_for, alice):
    schema = api_for(alice).get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/deals/{id}/"]["get"]

    assert "delete" not in schema["paths"]["/api/v1/deals/{id}/"]
    assert "never deleted" in operation["description"]
    assert "marking it lost" in operation["description"]


# --- reading -------------------------------------------------------------------------------------------


def test_deal_shows_every_documented_field(api_for, alice, north, deal, pipe, stages):
    body = api_for(alice).get(detail(deal)).json()

    assert list(body) == FIELDS
    assert body["name"] == "Yıllık lisans"
    assert (body["pipeline"], body["stage"], body["status"]) == (pipe.pk, stages["Qualified"].pk, "open")
    assert (body["amount"], body["currency"], body["weighted_amount"]) == ("1000.00", "TRY", "300.00")
    assert (body["owner"], body["team"]) == (alice.pk, north.pk)
    assert (body["is_stale"], body["closed_at"], body["lost_reason"], body["lost_note"]) == (False, None, None, "")
    assert body["rots_at"] is not None and body["custom_fields"] == {}


# --- creating ------------------------------------------------------------------------------------------


def test_rep_creates_a_deal_owned_by_them_with_the_contacts_company_and_source(api_for, alice, north, pipe, stages):
    source = LeadSourceFactory(name="Fuar")
    company = CompanyFactory(name="Işık Tekstil A.Ş.", owner=alice)
    contact = ContactFactory(owner=alice, company=company, lead_source=source)

    response = api_for(alice).post(URL, {
        "name": "  Şükrü'nün   İğne Ölçüm Çözümü ", "pipeline": pipe.pk, "amount": "125000.50", "currency": "eur",
        "expected_close_date": "2027-01-31", "contact": contact.pk,
    }, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    deal = Deal.objects.get()
    assert body["id"] == deal.pk
    assert body["name"] == deal.name == "Şükrü'nün İğne Ölçüm Çözümü"
    assert (body["stage"], body["status"], body["amount"], body["currency"]) == (
        stages["Lead"].pk, "open", "125000.50", "EUR")
    assert (body["owner"], body["team"], body["company"], body["lead_source"]) == (
        alice.pk, north.pk, company.pk, source.pk)
    assert body["weighted_amount"] == "12500.05"
    assert list(Event.objects.values_list("name", flat=True)) == ["deal.created"]


def test_a_deal_without_pipeline_goes_to_the_default_pipeline(api_for, alice):
    response = api_for(alice).post(URL, {"name": "Varsayılan"}, format="json")

    default = Pipeline.objects.get(is_default=True)
    assert response.status_code == 201
    assert response.json()["pipeline"] == default.pk
    assert response.json()["stage"] == default.stages.order_by("order").first().pk


def test_the_stage_gives_the_pipeline(api_for, alice, pipe, stages):
    response = api_for(alice).post(URL, {"name": "X", "stage": stages["Negotiation"].pk}, format="json")

    assert response.status_code == 201
    assert (response.json()["pipeline"], response.json()["stage"]) == (pipe.pk, stages["Negotiation"].pk)


def test_integration_creates_a_deal_without_owner_unless_given(api_for, integ, alice, pipe):
    api = api_for(integ)

    unowned = api.post(URL, {"name": "Web", "pipeline": pipe.pk}, format="json").json()
    owned = api.post(URL, {"name": "Lead", "pipeline": pipe.pk, "owner": alice.pk}, format="json").json()

    assert (unowned["owner"], unowned["team"]) == (None, None)
    assert (owned["owner"], owned["team"]) == (alice.pk, alice.team_id)


def test_rep_cannot_give_a_new_deal_to_a_teammate(api_for, alice, bob, pipe):
    response = api_for(alice).post(URL, {"name": "X", "owner": bob.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"owner": [f"You cannot give deals to {bob}."]}
    assert not Deal.objects.exists()


def test_manager_gives_a_deal_to_a_team_member(api_for, mona, bob, north, pipe):
    response = api_for(mona).post(URL, {"name": "X", "pipeline": pipe.pk, "owner": bob.pk}, format="json")

    assert response.status_code == 201
    assert (response.json()["owner"], response.json()["team"]) == (bob.pk, north.pk)


def test_read_only_fields_sent_on_create_are_ignored(api_for, alice, pipe, price):
    response = api_for(alice).post(URL, {
        "name": "X", "pipeline": pipe.pk, "status": "won", "team": 999, "lost_reason": price.pk, "is_stale": True,
        "closed_at": "2020-01-01T00:00:00Z", "weighted_amount": "5",
    }, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["team"], body["lost_reason"], body["closed_at"]) == ("open", alice.team_id, None,
                                                                                       None)


# --- bad input: 400 with the fields named, nothing changed ---------------------------------------------------


@pytest.fixture
def hidden(charlie):
    return {"contact": ContactFactory(owner=charlie), "company": CompanyFactory(owner=charlie)}


def _bad_bodies():
    return [
        ({"name": "A", "colour": "kırmızı", "size": 1}, ["colour", "size"]),
        ({}, ["name"]),
        ({"name": ""}, ["name"]),
        ({"name": "   "}, ["name"]),
        ({"name": None}, ["name"]),
        ({"name": 123}, ["name"]),
        ({"name": {"a": 1}}, ["name"]),
        ({"name": BIG}, ["name"]),
        ({"name": "A", "amount": "lots"}, ["amount"]),
        ({"name": "A", "amount": "-5"}, ["amount"]),
        ({"name": "A", "amount": "1.234"}, ["amount"]),
        ({"name": "A", "amount": "12345678901234567"}, ["amount"]),
        ({"name": "A", "amount": "NaN"}, ["amount"]),
        ({"name": "A", "amount": True}, ["amount"]),
        ({"name": "A", "amount": [1]}, ["amount"]),
        ({"name": "A", "amount": BIG}, ["amount"]),
        ({"name": "A", "currency": "lira"}, ["currency"]),
        ({"name": "A", "currency": "ÇĞŞ"}, ["currency"]),
        ({"name": "A", "currency": "₺"}, ["currency"]),
        ({"name": "A", "currency": 949}, ["currency"]),
        ({"name": "A", "expected_close_date": "gelecek hafta"}, ["expected_close_date"]),
        ({"name": "A", "expected_close_date": "2027-02-30"}, ["expected_close_date"]),
        ({"name": "A", "expected_close_date": 20270101}, ["expected_close_date"]),
        ({"name": "A", "owner": 999999}, ["owner"]),
        ({"name": "A", "owner": "abc"}, ["owner"]),
        ({"name": "A", "owner": 2**70}, ["owner"]),
        ({"name": "A", "owner": True}, ["owner"]),
        ({"name": "A", "contact": 999999}, ["contact"]),
        ({"name": "A", "company": "Işık"}, ["company"]),
        ({"name": "A", "lead_source": 999999}, ["lead_source"]),
        ({"name": "A", "pipeline": 999999}, ["pipeline"]),
        ({"name": "A", "stage": 999999}, ["stage"]),
        ({"name": "A", "stage": [1]}, ["stage"]),
        ({"name": "A", "custom_fields": ["x"]}, ["custom_fields"]),
        ({"name": "A", "custom_fields": {"nope": 1}}, ["custom_fields.nope"]),
        ({"name": "A", "custom_fields": {"k" * 101: 1}}, ["custom_fields"]),
        ({"name": "A", "custom_fields": {f"k{i}": 1 for i in range(101)}}, ["custom_fields"]),
        ({"name": "", "amount": "x", "currency": "lira", "şekil": 1}, ["amount", "currency", "name", "şekil"]),
    ]


@pytest.mark.parametrize("body, fields", _bad_bodies())
def test_bad_deal_input_is_refused_naming_the_fields(api_for, alice, pipe, body, fields):
    response = api_for(alice).post(URL, body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == sorted(fields)
    assert not Deal.objects.exists()
    assert not Event.objects.exists()


@pytest.mark.parametrize("field", ["contact", "company"])
def test_a_contact_or_company_of_another_team_is_an_unknown_id(api_for, alice, pipe, hidden, field):
    response = api_for(alice).post(URL, {"name": "A", field: hidden[field].pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {field: [f'Invalid pk "{hidden[field].pk}" - object does not exist.']}
    assert not Deal.objects.exists()


def test_an_owner_the_rep_cannot_see_is_an_unknown_id(api_for, alice, charlie, pipe):
    response = api_for(alice).post(URL, {"name": "A", "owner": charlie.pk}, format="json")

    assert response.json()["errors"] == {"owner": [f'Invalid pk "{charlie.pk}" - object does not exist.']}


@pytest.mark.parametrize("stage, message", [
    ("Won", "A new deal starts in an open stage."),
    ("Lost", "A new deal starts in an open stage."),
])
def test_a_new_deal_cannot_start_closed(api_for, alice, pipe, stages, stage, message):
    response = api_for(alice).post(URL, {"name": "A", "stage": stages[stage].pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"stage": [message]}


def test_a_stage_of_another_pipeline_is_refused(api_for, alice, pipe):
    other = Pipeline.objects.get(name="New business").stages.first()

    response = api_for(alice).post(URL, {"name": "A", "pipeline": pipe.pk, "stage": other.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"stage": [f"“{other.name}” is not a stage of “Sales”."]}


def test_body_that_is_not_an_object_is_refused(api_for, alice):
    response = api_for(alice).post(URL, ["name", "A"], format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["non_field_errors"]
    assert not Deal.objects.exists()


def test_malformed_json_is_refused(api_for, alice, deal):
    api = api_for(alice)

    created = api.post(URL, '{"name": ', content_type="application/json")
    patched = api.patch(detail(deal), '{"name": "X",}', content_type="application/json")
    moved = api.post(detail(deal, "move-stage/"), "{stage: 1}", content_type="application/json")

    for response in (created, patched, moved):
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["detail"]
    assert Deal.objects.count() == 1


def test_unknown_field_error_names_the_known_fields(api_for, alice):
    response = api_for(alice).post(URL, {"name": "A", "ammount": "5"}, format="json")

    assert response.json()["errors"]["ammount"] == [
        "Unknown field. Known fields: name, pipeline, stage, amount, currency, expected_close_date, owner, contact, "
        "company, lead_source, custom_fields."]


# --- changing ------------------------------------------------------------------------------------------


def test_patch_changes_the_fields_and_records_history(api_for, alice, deal):
    company = CompanyFactory(name="Güneş Enerji", owner=alice)

    response = api_for(alice).patch(detail(deal), {"amount": "2500", "company": company.pk,
                                                    "expected_close_date": "2027-06-30"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["amount"], body["company"], body["expected_close_date"]) == ("2500.00", company.pk, "2027-06-30")
    assert body["weighted_amount"] == "750.00"
    change = FieldChange.objects.get()
    assert change.changes["amount"] == {"label": "amount", "old": "1000.00", "new": "2500.00"}
    assert Event.objects.filter(name="deal.updated").count() == 1


def test_the_stage_is_not_changed_by_patch(api_for, alice, deal, stages):
    response = api_for(alice).patch(detail(deal), {"stage": stages["Negotiation"].pk, "name": "Yeni"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"stage": [
        f"A deal changes stage only through POST /api/v1/deals/{deal.pk}/move-stage/, which checks the stage's "
        "exit criteria."]}
    deal.refresh_from_db()
    assert (deal.stage, deal.name) == (stages["Qualified"], "Yıllık lisans")


def test_the_pipeline_is_not_changed_by_patch(api_for, alice, deal):
    other = Pipeline.objects.get(name="New business")

    response = api_for(alice).patch(detail(deal), {"pipeline": other.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"pipeline": ["A deal stays in its pipeline."]}


def test_a_deal_read_from_the_api_can_be_sent_back(api_for, alice, deal):
    api = api_for(alice)
    body = api.get(detail(deal)).json()

    response = api.patch(detail(deal), dict(body, name="Geri gönderildi", status="won", team=999), format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response.json()["status"]) == ("Geri gönderildi", "open")


def test_lost_fields_are_set_only_by_a_move(api_for, alice, deal, price):
    response = api_for(alice).patch(detail(deal), {"lost_reason": price.pk, "lost_note": "pahalı"}, format="json")

    assert response.status_code == 200
    deal.refresh_from_db()
    assert (deal.lost_reason, deal.lost_note) == (None, "")


@pytest.mark.parametrize("body, fields", [
    ({"amount": "lots"}, ["amount"]),
    ({"name": ""}, ["name"]),
    ({"name": "A", "colour": "mavi"}, ["colour"]),
    ({"contact": 999999, "amount": "-1"}, ["amount", "contact"]),
    ({"owner": None, "currency": "ÇĞŞ"}, ["currency"]),
    ({"custom_fields": {"nope": 1}}, ["custom_fields.nope"]),
])
def test_bad_update_changes_nothing(api_for, alice, deal, body, fields):
    response = api_for(alice).patch(detail(deal), body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    deal.refresh_from_db()
    assert (deal.name, deal.amount, deal.owner, deal.currency) == ("Yıllık lisans", Decimal("1000.00"), alice, "TRY")
    assert not FieldChange.objects.exists()


def test_hidden_contact_on_update_is_an_unknown_id(api_for, alice, deal, hidden):
    response = api_for(alice).patch(detail(deal), {"contact": hidden["contact"].pk}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["contact"]
    deal.refresh_from_db()
    assert deal.contact is None


def test_custom_fields_are_validated_and_merged(api_for, alice, deal):
    from contacts.models import CustomFieldDefinition

    CustomFieldDefinition.objects.create(entity="deal", key="seats", label="Koltuk", field_type="number")
    CustomFieldDefinition.objects.create(entity="deal", key="plan", label="Plan", field_type="choice",
                                         choices=["Temel", "Kurumsal"])
    api = api_for(alice)

    ok = api.patch(detail(deal), {"custom_fields": {"seats": "25", "plan": "Kurumsal"}}, format="json")
    bad = api.patch(detail(deal), {"custom_fields": {"seats": "çok", "plan": "Altın"}}, format="json")
    cleared = api.patch(detail(deal), {"custom_fields": {"plan": None}}, format="json")

    assert ok.json()["custom_fields"] == {"seats": 25, "plan": "Kurumsal"}
    assert bad.status_code == 400
    assert sorted(bad.json()["errors"]) == ["custom_fields.plan", "custom_fields.seats"]
    assert cleared.json()["custom_fields"] == {"seats": 25}


def test_manager_hands_a_deal_to_a_teammate(api_for, mona, bob, deal):
    response = api_for(mona).patch(detail(deal), {"owner": bob.pk}, format="json")

    assert response.status_code == 200
    assert response.json()["owner"] == bob.pk


# --- history -------------------------------------------------------------------------------------------


def test_history_shows_field_changes_newest_first(api_for, alice, bob, deal):
    api = api_for(alice)
    api.patch(detail(deal), {"amount": "1500"}, format="json")
    api.patch(detail(deal), {"name": "Çok yıllık lisans"}, format="json")

    body = api_for(bob).get(detail(deal, "history/")).json()

    assert [list(c["changes"]) for c in body["field_changes"]] == [["name"], ["amount"]]
    assert body["field_changes"][0]["changes"]["name"] == {"label": "name", "old": "Yıllık lisans",
                                                           "new": "Çok yıllık lisans"}
    assert body["field_changes"][0]["actor"] == alice.pk


def test_history_of_a_deal_moved_with_changes_shows_the_changes(api_for, alice, deal, stages):
    api_for(alice).post(detail(deal, "move-stage/"), {"stage": stages["Proposal"].pk,
                                                      "changes": {"expected_close_date": "2027-01-15"}}, format="json")

    body = api_for(alice).get(detail(deal, "history/")).json()

    assert [c["changes"] for c in body["field_changes"]] == [
        {"expected_close_date": {"label": "expected close date", "old": "", "new": "2027-01-15"}}]

