"""The contacts API: who sees and changes what, creating, upserting, archiving, consent and history."""

import pytest

from contacts import services
from contacts.models import Consent, ConsentLog, Contact, LifecycleChange
from crm_okr.models import Event, FieldChange
from tests.factories import CompanyFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"


@pytest.fixture
def contact(alice):
    return services.contact_create(actor=alice, data={
        "first_name": "Ayşe", "last_name": "Yılmaz", "email": "ayse@example.com", "phone": "0532 123 45 67",
        "tags": ["vip"],
    })


def detail(contact):
    return f"{URL}{contact.pk}/"


def persona(request, name):
    return request.getfixturevalue(name)


# --- visibility: the owner, the teammate, the outsider, the manager, the admin, the integration -------


@pytest.mark.parametrize("name, status", [
    ("alice", 200), ("bob", 200), ("charlie", 404), ("mona", 200), ("sam", 200), ("integ", 200),
])
def test_contact_detail_is_visible_to_its_team_and_hidden_from_outsiders(request, api_for, contact, name, status):
    response = api_for(persona(request, name)).get(detail(contact))

    assert response.status_code == status
    if status == 200:
        assert response.json()["email"] == "ayse@example.com"
    else:
        assert response.json() == {"errors": {"detail": ["Not found."]}}


@pytest.mark.parametrize("name, status", [
    ("alice", 200), ("bob", 403), ("charlie", 404), ("mona", 200), ("sam", 200), ("integ", 200),
])
def test_only_editors_change_a_contact(request, api_for, contact, name, status):
    response = api_for(persona(request, name)).patch(detail(contact), {"job_title": "CTO"}, format="json")

    assert response.status_code == status
    contact.refresh_from_db()
    assert contact.job_title == ("CTO" if status == 200 else "")


def test_teammate_is_refused_before_the_body_is_looked_at(api_for, bob, contact):
    response = api_for(bob).patch(detail(contact), {"email": "not an e-mail"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"errors": {"detail": ["You may not edit this record."]}}


@pytest.mark.parametrize("name", ["alice", "bob", "mona", "sam", "integ"])
def test_contact_list_shows_team_contacts(request, api_for, contact, name):
    response = api_for(persona(request, name)).get(URL)

    assert [row["id"] for row in response.json()["results"]] == [contact.pk]


def test_outsider_list_leaves_out_other_teams_contacts(api_for, charlie, contact):
    own = services.contact_create(actor=charlie, data={"first_name": "Can"})

    response = api_for(charlie).get(URL)

    assert [row["id"] for row in response.json()["results"]] == [own.pk]


@pytest.mark.parametrize("path", ["", "consents/", "history/"])
def test_outsider_gets_404_on_every_contact_url(api_for, charlie, contact, path):
    api = api_for(charlie)

    assert api.get(detail(contact) + path).status_code == 404
    assert api.put(detail(contact), {"first_name": "X"}, format="json").status_code == 404
    assert api.delete(detail(contact)).status_code == 404
    assert api.post(detail(contact) + "consents/", {"channel": "sms", "status": "granted", "source": "call"},
                    format="json").status_code == 404
    contact.refresh_from_db()
    assert (contact.first_name, contact.archived_at) == ("Ayşe", None)
    assert not Consent.objects.exists()


def test_request_without_token_is_refused(client, contact):
    response = client.get(URL)

    assert response.status_code == 401
    assert response.json() == {"errors": {"detail": ["Authentication credentials were not provided."]}}


# --- reading ---------------------------------------------------------------------------------------


def test_contact_shows_every_documented_field(api_for, alice, north, contact):
    body = api_for(alice).get(detail(contact)).json()

    assert set(body) == {
        "id", "first_name", "last_name", "full_name", "email", "phone", "mobile", "job_title", "company",
        "lifecycle_stage", "lifecycle_changed_at", "lead_source", "preferred_channel", "language", "birth_date",
        "gender", "city", "country", "notes", "owner", "team", "tags", "custom_fields", "completeness",
        "last_activity_at", "created_at", "updated_at", "archived_at",
    }
    assert body["full_name"] == "Ayşe Yılmaz"
    assert body["phone"] == "+905321234567"
    assert body["owner"] == alice.pk
    assert body["team"] == north.pk
    assert body["tags"] == ["vip"]
    assert body["custom_fields"] == {}
    # Important by default: first/last name, e-mail, phone, company, job title, lead source, city → 4 of 8.
    assert body["completeness"] == 50


# --- creating ----------------------------------------------------------------------------------------


def test_rep_creates_a_contact_owned_by_them(api_for, alice, north):
    company = CompanyFactory(name="Işık Tekstil", owner=alice)
    source = LeadSourceFactory(name="Web form")

    response = api_for(alice).post(URL, {
        "first_name": "  Mehmet   Ali ", "last_name": "Şahin", "email": "Mehmet@Example.COM",
        "phone": "+90 (532) 765 43 21", "company": company.pk, "lead_source": source.pk,
        "lifecycle_stage": "mql", "tags": ["Fuar", "vip"], "birth_date": "1990-04-23",
    }, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    contact = Contact.objects.get()
    assert body["id"] == contact.pk
    assert (contact.first_name, contact.last_name, contact.email, contact.phone) == (
        "Mehmet Ali", "Şahin", "mehmet@example.com", "+905327654321")
    assert (contact.owner, contact.team, contact.company, contact.lead_source) == (alice, north, company, source)
    assert sorted(body["tags"]) == ["Fuar", "vip"]
    assert body["lifecycle_stage"] == "mql"
    assert list(LifecycleChange.objects.values_list("from_stage", "to_stage")) == [("", "mql")]
    assert list(Event.objects.values_list("name", flat=True)) == ["contact.created"]


def test_integration_creates_a_contact_without_owner_unless_given(api_for, integ, alice):
    api = api_for(integ)

    unowned = api.post(URL, {"first_name": "Web", "email": "web@example.com"}, format="json").json()
    owned = api.post(URL, {"first_name": "Lead", "owner": alice.pk}, format="json").json()

    assert (unowned["owner"], unowned["team"]) == (None, None)
    assert (owned["owner"], owned["team"]) == (alice.pk, alice.team_id)


def test_rep_cannot_give_a_new_contact_to_a_teammate(api_for, alice, bob):
    response = api_for(alice).post(URL, {"first_name": "X", "owner": bob.pk}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["owner"]
    assert not Contact.objects.exists()


def test_manager_gives_a_contact_to_a_team_member(api_for, mona, bob, north):
    response = api_for(mona).post(URL, {"first_name": "X", "owner": bob.pk}, format="json")

    assert response.status_code == 201
    assert (response.json()["owner"], response.json()["team"]) == (bob.pk, north.pk)


def test_duplicate_email_is_refused_on_the_email_field(api_for, alice, contact):
    response = api_for(alice).post(URL, {"first_name": "Other", "email": "AYSE@example.com"}, format="json")

    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    assert Contact.objects.count() == 1


# --- bad input: 400 with the fields named, nothing changed ---------------------------------------------

BIG = "x" * 100_000


@pytest.mark.parametrize("body, fields", [
    ({"first_name": "A", "nickname": "x", "shoe_size": 42}, ["nickname", "shoe_size"]),
    ({"last_name": "No first name"}, ["first_name"]),
    ({"first_name": ""}, ["first_name"]),
    ({"first_name": None}, ["first_name"]),
    ({"first_name": 123}, ["first_name"]),
    ({"first_name": {"a": 1}}, ["first_name"]),
    ({"first_name": BIG}, ["first_name"]),
    ({"first_name": "A", "notes": BIG}, ["notes"]),
    ({"first_name": "A", "email": "not-an-email"}, ["email"]),
    ({"first_name": "A", "email": BIG}, ["email"]),
    ({"first_name": "A", "phone": "12"}, ["phone"]),
    ({"first_name": "A", "mobile": "call me maybe"}, ["mobile"]),
    ({"first_name": "A", "phone": BIG}, ["phone"]),
    ({"first_name": "A", "company": 999999}, ["company"]),
    ({"first_name": "A", "company": "abc"}, ["company"]),
    ({"first_name": "A", "owner": 999999}, ["owner"]),
    ({"first_name": "A", "lead_source": 999999}, ["lead_source"]),
    ({"first_name": "A", "lifecycle_stage": "king"}, ["lifecycle_stage"]),
    ({"first_name": "A", "birth_date": "yesterday"}, ["birth_date"]),
    ({"first_name": "A", "tags": "vip"}, ["tags"]),
    ({"first_name": "A", "tags": [BIG]}, ["tags"]),
    ({"first_name": "A", "custom_fields": ["x"]}, ["custom_fields"]),
    ({"first_name": "A", "custom_fields": {"nope": 1}}, ["custom_fields.nope"]),
    ({"first_name": "A", "country": "TUR"}, ["country"]),
    ({"first_name": "A", "email": "bad", "phone": "bad"}, ["email", "phone"]),
])
def test_bad_contact_input_is_refused_naming_the_fields(api_for, alice, body, fields):
    response = api_for(alice).post(URL, body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == sorted(fields)
    assert not Contact.objects.exists()
    assert not Event.objects.exists()


def test_body_that_is_not_an_object_is_refused(api_for, alice):
    response = api_for(alice).post(URL, ["first_name", "A"], format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["non_field_errors"]
    assert not Contact.objects.exists()


def test_malformed_json_is_refused(api_for, alice):
    response = api_for(alice).post(URL, '{"first_name": ', content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["detail"]


def test_unknown_field_error_names_the_known_fields(api_for, alice):
    response = api_for(alice).post(URL, {"first_name": "A", "frist_name": "B"}, format="json")

    message = response.json()["errors"]["frist_name"][0]
    assert message.startswith("Unknown field. Known fields: first_name, last_name, email,")


def test_unknown_fields_are_reported_with_the_other_field_errors(api_for, alice):
    response = api_for(alice).post(URL, {"first_name": "A", "company": 999999, "shoe": 1}, format="json")

    assert sorted(response.json()["errors"]) == ["company", "shoe"]


def test_bad_update_changes_nothing(api_for, alice, contact):
    response = api_for(alice).patch(detail(contact), {"job_title": "CEO", "phone": "nope", "company": 999999},
                                    format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == ["company"]
    response = api_for(alice).patch(detail(contact), {"job_title": "CEO", "phone": "nope"}, format="json")
    assert sorted(response.json()["errors"]) == ["phone"]
    contact.refresh_from_db()
    assert (contact.job_title, contact.phone) == ("", "+905321234567")
    assert not FieldChange.objects.exists()


def test_company_of_another_team_is_an_unknown_id(api_for, alice, charlie):
    hidden = CompanyFactory(owner=charlie)

    response = api_for(alice).post(URL, {"first_name": "A", "company": hidden.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"company": [f'Invalid pk "{hidden.pk}" - object does not exist.']}


def test_read_only_fields_sent_back_are_ignored(api_for, alice, contact):
    api = api_for(alice)
    body = api.get(detail(contact)).json()

    response = api.put(detail(contact), dict(body, team=999, completeness=1, job_title="CTO"), format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["team"], response.json()["job_title"]) == (contact.team_id, "CTO")


# --- updating ----------------------------------------------------------------------------------------


def test_update_records_history_and_lifecycle_change(api_for, alice, contact):
    response = api_for(alice).patch(detail(contact), {"lifecycle_stage": "customer", "tags": ["vip", "renewal"]},
                                    format="json")

    assert response.status_code == 200
    assert sorted(response.json()["tags"]) == ["renewal", "vip"]
    change = FieldChange.objects.get()
    assert change.changes["lifecycle_stage"]["new"] == "Customer"
    assert change.changes["tags"] == {"label": "tags", "old": "vip", "new": "renewal, vip"}
    assert list(LifecycleChange.objects.filter(contact=contact).values_list("from_stage", "to_stage")) == [
        ("lead", "customer"), ("", "lead")]


def test_custom_fields_are_validated_and_merged(api_for, alice, contact):
    from contacts.models import CustomFieldDefinition

    CustomFieldDefinition.objects.create(entity="contact", key="budget", label="Budget", field_type="number")
    CustomFieldDefinition.objects.create(entity="contact", key="sector", label="Sector", field_type="choice",
                                         choices=["Retail", "Energy"])
    api = api_for(alice)

    ok = api.patch(detail(contact), {"custom_fields": {"budget": "1500", "sector": "Retail"}}, format="json")
    bad = api.patch(detail(contact), {"custom_fields": {"budget": "lots", "sector": "Mining"}}, format="json")
    cleared = api.patch(detail(contact), {"custom_fields": {"sector": None}}, format="json")

    assert ok.json()["custom_fields"] == {"budget": 1500, "sector": "Retail"}
    assert bad.status_code == 400
    assert sorted(bad.json()["errors"]) == ["custom_fields.budget", "custom_fields.sector"]
    assert cleared.json()["custom_fields"] == {"budget": 1500}


# --- archiving instead of deleting --------------------------------------------------------------------


def test_delete_archives_the_contact(api_for, alice, contact):
    api = api_for(alice)

    response = api.delete(detail(contact))

    assert response.status_code == 204
    contact.refresh_from_db()
    assert contact.archived_at is not None
    assert api.get(detail(contact)).json()["archived_at"] is not None
    assert api.get(URL).json()["results"] == []
    assert [row["id"] for row in api.get(URL, {"archived": "true"}).json()["results"]] == [contact.pk]


def test_teammate_cannot_archive(api_for, bob, contact):
    response = api_for(bob).delete(detail(contact))

    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.archived_at is None


# --- upsert by e-mail ------------------------------------------------------------------------------------


def test_upsert_creates_then_updates_matching_email_ignoring_case(api_for, integ):
    api = api_for(integ)

    first = api.post(f"{URL}upsert/", {"email": "deniz@example.com", "first_name": "Deniz"}, format="json")
    second = api.post(f"{URL}upsert/", {"email": "DENIZ@Example.com", "job_title": "Buyer"}, format="json")

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    contact = Contact.objects.get()
    assert (contact.first_name, contact.email, contact.job_title) == ("Deniz", "deniz@example.com", "Buyer")


@pytest.mark.parametrize("body, fields", [
    ({"first_name": "No e-mail"}, ["email"]),
    ({"email": "bad", "first_name": "A"}, ["email"]),
    ({"email": "new@example.com"}, ["first_name"]),
    ({"email": "new@example.com", "first_name": "A", "colour": "red"}, ["colour"]),
])
def test_bad_upsert_is_refused(api_for, integ, body, fields):
    response = api_for(integ).post(f"{URL}upsert/", body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert not Contact.objects.exists()


def test_upsert_of_a_contact_the_rep_cannot_edit_is_refused(api_for, bob, contact):
    response = api_for(bob).post(f"{URL}upsert/", {"email": "ayse@example.com", "job_title": "X"}, format="json")

    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.job_title == ""


# --- consent ---------------------------------------------------------------------------------------


def test_consent_is_recorded_and_listed_with_its_log(api_for, alice, bob, contact):
    api = api_for(alice)

    granted = api.post(detail(contact) + "consents/", {"channel": "email", "status": "granted",
                                                        "source": "web form"}, format="json")
    # A teammate records a withdrawal heard on a call: a withdrawal must never wait for the owner.
    withdrawn = api_for(bob).post(detail(contact) + "consents/", {"channel": "email", "status": "withdrawn",
                                                                  "source": "call", "note": "asked by phone"},
                                  format="json")
    body = api.get(detail(contact) + "consents/").json()

    assert granted.status_code == withdrawn.status_code == 201
    assert withdrawn.json()["status"] == "withdrawn"
    assert [(c["channel"], c["status"], c["source"]) for c in body["consents"]] == [("email", "withdrawn", "call")]
    assert [(e["status"], e["actor"], e["note"]) for e in body["log"]] == [
        ("withdrawn", bob.pk, "asked by phone"), ("granted", alice.pk, "")]


@pytest.mark.parametrize("body, fields", [
    ({"channel": "fax", "status": "granted", "source": "call"}, ["channel"]),
    ({"channel": "sms", "status": "maybe", "source": "call"}, ["status"]),
    ({"channel": "sms", "status": "granted"}, ["source"]),
    ({"channel": "sms", "status": "granted", "source": "   "}, ["source"]),
    ({"channel": "sms", "status": "granted", "source": "call", "when": "now"}, ["when"]),
    ({"channel": "sms", "status": "granted", "source": BIG}, ["source"]),
])
def test_bad_consent_is_refused(api_for, alice, contact, body, fields):
    response = api_for(alice).post(detail(contact) + "consents/", body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert not ConsentLog.objects.exists()


# --- history -----------------------------------------------------------------------------------------


def test_history_shows_field_and_lifecycle_changes_newest_first(api_for, alice, bob, contact):
    api = api_for(alice)
    api.patch(detail(contact), {"job_title": "Buyer"}, format="json")
    api.patch(detail(contact), {"lifecycle_stage": "sql"}, format="json")

    body = api_for(bob).get(detail(contact) + "history/").json()

    assert [list(c["changes"]) for c in body["field_changes"]] == [["lifecycle_stage"], ["job_title"]]
    assert body["field_changes"][1]["changes"]["job_title"] == {"label": "job title", "old": "", "new": "Buyer"}
    assert body["field_changes"][0]["actor"] == alice.pk
    assert [(c["from_stage"], c["to_stage"]) for c in body["lifecycle_changes"]] == [("lead", "sql"), ("", "lead")]
