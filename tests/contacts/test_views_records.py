"""Contact and company pages and their create/edit forms: everything shown, errors next to the fields,
nothing changed on bad input."""

import re
from datetime import date

import pytest
from django.utils import timezone

from accounts.models import User
from contacts import services
from contacts.models import (
    Company,
    Contact,
    CustomFieldDefinition,
    Entity,
    FieldSetting,
    LifecycleChange,
    Tag,
)
from crm_okr.models import Event, FieldChange
from tests.factories import CompanyFactory, ContactFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db


def field_error(response, name: str) -> str:
    """The error text rendered right under the input ``name`` (empty when there is none)."""
    match = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', response.content.decode(), re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


def text(response) -> str:
    return response.content.decode()


def contact_post(**overrides) -> dict:
    data = {"first_name": "Ayşe", "last_name": "Yılmaz", "email": "", "phone": "", "mobile": "", "job_title": "",
            "company": "", "lifecycle_stage": "lead", "lead_source": "", "preferred_channel": "", "language": "",
            "birth_date": "", "gender": "", "city": "", "country": "", "notes": "", "tags": ""}
    data.update(overrides)
    return data


@pytest.fixture
def acme(alice):
    return services.company_create(actor=alice, data={"name": "Acme Makina", "industry": "Machinery",
                                                      "phone": "0212 555 12 34"})


@pytest.fixture
def ayse(alice, acme):
    return services.contact_create(actor=alice, data={
        "first_name": "Ayşe", "last_name": "Yılmaz", "email": "ayse@acme.com.tr", "phone": "0532 123 45 67",
        "company": acme, "job_title": "Purchasing manager", "tags": ["vip", "istanbul"],
    })


# --- contact page ------------------------------------------------------------------------------


def test_contact_page_shows_details_phone_formatted_tags_completeness_and_stage_history(client_for, alice, ayse):
    response = client_for(alice).get(f"/contacts/{ayse.pk}/")
    html = text(response)

    assert response.status_code == 200
    assert "Ayşe Yılmaz" in html
    assert "+90 532 123 45 67" in html
    assert "ayse@acme.com.tr" in html and "Acme Makina" in html and "Purchasing manager" in html
    assert ">vip<" in html and ">istanbul<" in html
    # Important fields by default: first name, last name, e-mail, phone, company, job title, lead source,
    # city -> 6 of 8 filled = 75 %.
    assert '<strong class="completeness-value" data-testid="completeness">75%</strong>' in html
    assert "Lifecycle history" in html and "Lead" in html


def test_contact_page_shows_custom_fields_with_their_labels(client_for, alice, ayse):
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="loyalty_no", label="Loyalty number",
                                         field_type="text")
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="newsletter", label="Newsletter",
                                         field_type="boolean")
    services.contact_update(contact=ayse, actor=alice, data={"custom_fields": {"loyalty_no": "LY-77",
                                                                               "newsletter": True}})

    html = text(client_for(alice).get(f"/contacts/{ayse.pk}/"))

    assert re.search(r"<dt>Loyalty number</dt><dd>\s*LY-77\s*</dd>", html)
    assert re.search(r"<dt>Newsletter</dt><dd>\s*Yes\s*</dd>", html)


def test_contact_page_shows_field_history_who_what_when(client_for, alice, ayse):
    alice.first_name, alice.last_name = "Alice", "Ak"
    alice.save()
    services.contact_update(contact=ayse, actor=alice, data={"job_title": "Head of purchasing"})

    html = text(client_for(alice).get(f"/contacts/{ayse.pk}/"))

    history = html.split("Field history", 1)[1]
    assert "Alice Ak" in history
    assert "<del>Purchasing manager</del> → <ins>Head of purchasing</ins>" in history


def test_edit_and_archive_buttons_only_for_editors(client_for, alice, bob, ayse):
    assert f"/contacts/{ayse.pk}/edit/" in text(client_for(alice).get(f"/contacts/{ayse.pk}/"))
    assert f"/contacts/{ayse.pk}/edit/" not in text(client_for(bob).get(f"/contacts/{ayse.pk}/"))
    assert f"/contacts/{ayse.pk}/archive/" not in text(client_for(bob).get(f"/contacts/{ayse.pk}/"))


def test_contact_page_of_unknown_id_is_404(client_for, alice):
    assert client_for(alice).get("/contacts/987654321/").status_code == 404


# --- create a contact --------------------------------------------------------------------------


def test_create_contact_through_the_form(client_for, alice, acme):
    source = LeadSourceFactory(name="Referral")

    response = client_for(alice).post("/contacts/new/", contact_post(
        first_name="  Mehmet   Ali ", last_name="Öztürk", email="Mehmet@Example.COM", phone="0532 765 43 21",
        company=acme.pk, lead_source=source.pk, lifecycle_stage="mql", tags="vip, Vip, yeni müşteri",
        owner=alice.pk, birth_date="1985-04-23",
    ))

    contact = Contact.objects.get(last_name="Öztürk")
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.first_name == "Mehmet Ali"
    assert contact.email == "mehmet@example.com"
    assert contact.phone == "+905327654321"
    assert contact.company == acme and contact.lead_source == source and contact.lifecycle_stage == "mql"
    assert contact.owner == alice and contact.team == alice.team
    assert contact.birth_date == date(1985, 4, 23)
    assert sorted(t.name for t in contact.tags.all()) == ["vip", "yeni müşteri"]
    assert Event.objects.filter(name="contact.created", subject_id=contact.pk).count() == 1


def test_new_contact_form_marks_required_fields_and_offers_only_assignable_owners(client_for, alice, bob):
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="email", is_required=True)

    html = text(client_for(alice).get("/contacts/new/"))

    assert re.search(r'<label for="id_first_name">First name<span class="req"', html)
    assert re.search(r'<label for="id_email">E-mail<span class="req"', html)
    assert not re.search(r'<label for="id_job_title">Job title<span class="req"', html)
    owner_select = re.search(r'<select name="owner".*?</select>', html, re.S).group(0)
    assert f'value="{alice.pk}"' in owner_select and f'value="{bob.pk}"' not in owner_select


@pytest.mark.parametrize(("field", "value", "message"), [
    ("phone", "12ab", "Enter a valid phone number"),
    ("mobile", "+90 000", "Enter a valid phone number"),
    ("email", "not-an-email", "Enter a valid e-mail address"),
    ("first_name", "x" * 100_000, "at most 100 characters"),
    ("notes", "n" * 100_000, "at most 20000 characters"),
    ("tags", "t" * 100_000, "at most 1000 characters"),
    ("company", "987654321", "Select a valid choice"),
    ("lead_source", "abc", "Select a valid choice"),
    ("lifecycle_stage", "boss", "Select a valid choice"),
    ("birth_date", "1985-13-45", "Enter a valid date"),
    ("first_name", "   ", "This field is required"),
])
def test_bad_input_shows_the_error_next_to_the_field_and_creates_nothing(client_for, alice, field, value, message):
    events_before = Event.objects.count()

    response = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, **{field: value}))

    assert response.status_code == 422
    assert message in field_error(response, field)
    assert "nothing was saved" in text(response) or "flash-error" in text(response)
    assert Contact.objects.count() == 0
    assert Event.objects.count() == events_before


def test_bad_values_are_kept_in_the_form_so_nothing_is_retyped(client_for, alice):
    response = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, phone="12ab",
                                                                      city="Kadıköy"))
    assert 'value="12ab"' in text(response) and 'value="Kadıköy"' in text(response)


def test_another_teams_company_cannot_be_chosen(client_for, alice, charlie):
    hidden = CompanyFactory(name="Hidden Co", owner=charlie)

    response = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, company=hidden.pk))

    assert response.status_code == 422
    assert "Select a valid choice" in field_error(response, "company")
    assert "Hidden Co" not in text(response)
    assert Contact.objects.count() == 0


def test_rep_cannot_give_a_new_contact_to_a_teammate(client_for, alice, bob):
    response = client_for(alice).post("/contacts/new/", contact_post(owner=bob.pk))

    assert response.status_code == 422
    assert "Select a valid choice" in field_error(response, "owner")
    assert Contact.objects.count() == 0


def test_manager_can_give_a_new_contact_to_a_rep_of_the_team(client_for, mona, bob):
    response = client_for(mona).post("/contacts/new/", contact_post(owner=bob.pk))

    assert response.status_code == 302
    assert Contact.objects.get().owner == bob


def test_duplicate_email_is_shown_on_the_email_field(client_for, alice, ayse):
    response = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, email="AYSE@acme.com.tr"))

    assert response.status_code == 422
    assert "e-mail" in field_error(response, "email").lower()
    assert Contact.objects.count() == 1


def test_admin_required_field_is_enforced_by_the_form(client_for, alice):
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="phone", is_required=True)

    response = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk))

    assert response.status_code == 422
    assert "required" in field_error(response, "phone")
    assert Contact.objects.count() == 0


# --- custom fields on the form -------------------------------------------------------------------


@pytest.fixture
def custom_fields(db):
    kind = CustomFieldDefinition.FieldType
    return [
        CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="loyalty_no", label="Loyalty number",
                                             field_type=kind.TEXT),
        CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget",
                                             field_type=kind.NUMBER),
        CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="renewal", label="Renewal date",
                                             field_type=kind.DATE),
        CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="segment", label="Segment",
                                             field_type=kind.CHOICE, choices=["SMB", "Enterprise"],
                                             is_required=True),
        CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="newsletter", label="Newsletter",
                                             field_type=kind.BOOLEAN),
    ]


def test_custom_fields_appear_on_the_form_with_typed_inputs(client_for, alice, custom_fields):
    html = text(client_for(alice).get("/contacts/new/"))

    assert '<input type="text" name="cf_loyalty_no"' in html
    assert '<input type="number" name="cf_budget" step="any"' in html
    assert '<input type="date" name="cf_renewal"' in html
    assert re.search(r'<select name="cf_segment"[^>]*required', html)
    assert re.search(r'<label for="id_cf_segment">Segment<span class="req"', html)
    assert '<select name="cf_newsletter"' in html


def test_custom_field_values_are_saved_typed(client_for, alice, custom_fields):
    response = client_for(alice).post("/contacts/new/", contact_post(
        owner=alice.pk, cf_loyalty_no=" LY  42 ", cf_budget="12500,50", cf_renewal="2025-09-30",
        cf_segment="Enterprise", cf_newsletter="false",
    ))

    assert response.status_code == 302
    assert Contact.objects.get().custom_fields == {
        "loyalty_no": "LY 42", "budget": 12500.5, "renewal": "2025-09-30", "segment": "Enterprise",
        "newsletter": False,
    }


def test_custom_field_error_from_the_service_lands_on_its_input(client_for, alice, custom_fields):
    response = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, cf_budget="lots",
                                                                      cf_segment="SMB"))

    assert response.status_code == 422
    assert "Expected a number" in field_error(response, "cf_budget")
    assert Contact.objects.count() == 0


def test_required_custom_field_and_unknown_choice_are_refused(client_for, alice, custom_fields):
    missing = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk))
    wrong = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, cf_segment="Huge"))

    assert "required" in field_error(missing, "cf_segment")
    assert "Select a valid choice" in field_error(wrong, "cf_segment")
    assert Contact.objects.count() == 0


# --- edit a contact ------------------------------------------------------------------------------


def test_edit_form_is_filled_with_the_current_values(client_for, alice, ayse, acme):
    html = text(client_for(alice).get(f"/contacts/{ayse.pk}/edit/"))

    assert 'value="Ayşe"' in html and 'value="ayse@acme.com.tr"' in html
    assert 'value="+90 532 123 45 67"' in html
    assert f'<option value="{acme.pk}" selected>Acme Makina</option>' in html
    assert 'value="istanbul, vip"' in html or 'value="vip, istanbul"' in html


def test_edit_contact_saves_changes_history_and_stage_change(client_for, alice, ayse):
    data = contact_post(first_name="Ayşe", last_name="Yılmaz", email="ayse@acme.com.tr", phone="+905321234567",
                        company=ayse.company_id, job_title="CEO", lifecycle_stage="customer", owner=alice.pk,
                        tags="vip")

    response = client_for(alice).post(f"/contacts/{ayse.pk}/edit/", data)

    ayse.refresh_from_db()
    assert response.status_code == 302
    assert ayse.job_title == "CEO" and ayse.lifecycle_stage == "customer"
    assert [t.name for t in ayse.tags.all()] == ["vip"]
    change = FieldChange.objects.filter(record_type="contacts.contact", record_id=ayse.pk).latest("id")
    assert change.actor == alice
    assert change.changes["job_title"] == {"label": "job title", "old": "Purchasing manager", "new": "CEO"}
    assert change.changes["tags"] == {"label": "tags", "old": "istanbul, vip", "new": "vip"}
    assert LifecycleChange.objects.filter(contact=ayse, from_stage="lead", to_stage="customer").count() == 1


def test_edit_with_bad_phone_changes_nothing(client_for, alice, ayse):
    before = Contact.objects.filter(pk=ayse.pk).values().get()
    history_before = FieldChange.objects.count()

    response = client_for(alice).post(f"/contacts/{ayse.pk}/edit/", contact_post(
        first_name="Changed", phone="call me", owner=alice.pk))

    assert response.status_code == 422
    assert "Enter a valid phone number" in field_error(response, "phone")
    assert Contact.objects.filter(pk=ayse.pk).values().get() == before
    assert FieldChange.objects.count() == history_before


def test_archive_hides_the_contact_from_the_list(client_for, alice, ayse):
    client = client_for(alice)
    response = client.post(f"/contacts/{ayse.pk}/archive/")

    ayse.refresh_from_db()
    assert response.status_code == 302 and ayse.archived_at is not None
    assert "Archived" in text(client.get(f"/contacts/{ayse.pk}/"))
    assert f'href="/contacts/{ayse.pk}/"' not in text(client.get("/contacts/"))


def test_archive_needs_a_post(client_for, alice, ayse):
    assert client_for(alice).get(f"/contacts/{ayse.pk}/archive/").status_code == 405
    ayse.refresh_from_db()
    assert ayse.archived_at is None


# --- company dropdown at scale -------------------------------------------------------------------


def test_company_dropdown_lists_at_most_200_but_accepts_any_visible_company(client_for, alice):
    CompanyFactory.create_batch(205, owner=alice, name=factory_sequence("Co {:03d}"))
    last = Company.objects.order_by("-sort_name").first()

    html = text(client_for(alice).get("/contacts/new/"))
    options = re.search(r'<select name="company".*?</select>', html, re.S).group(0).count("<option")
    response = client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, company=last.pk))

    assert options == 201  # the empty choice and the first 200 by name
    assert response.status_code == 302
    assert Contact.objects.get().company == last


def test_company_search_for_the_dropdown_is_turkish_aware_and_scoped(client_for, alice, charlie):
    services.company_create(actor=alice, data={"name": "Çağrı Danışmanlık"})
    services.company_create(actor=charlie, data={"name": "Cagri Gizli"})

    html = text(client_for(alice).get("/companies/options/", {"company_q": "cagri"}))

    assert "Çağrı Danışmanlık" in html and "Cagri Gizli" not in html


# --- company pages ------------------------------------------------------------------------------


def test_company_page_shows_details_contacts_timeline_and_history(client_for, alice, acme, ayse):
    services.activity_log(actor=alice, kind="meeting", subject="Kick-off at the plant", contact=ayse)
    services.company_update(company=acme, actor=alice, data={"industry": "Industrial machinery"})

    html = text(client_for(alice).get(f"/companies/{acme.pk}/"))

    assert "Acme Makina" in html and "+90 212 555 12 34" in html
    assert f'href="/contacts/{ayse.pk}/"' in html
    assert "Kick-off at the plant" in html
    assert "<del>Machinery</del> → <ins>Industrial machinery</ins>" in html
    assert f"/contacts/?company={acme.pk}" in html


def test_company_page_lists_the_first_50_contacts_and_links_to_the_rest(client_for, alice, acme):
    ContactFactory.create_batch(51, owner=alice, company=acme)

    html = text(client_for(alice).get(f"/companies/{acme.pk}/"))

    assert html.count('<td class="cell-name"><a href="/contacts/') == 50
    assert "Showing the first 50 contacts" in html


def test_create_and_edit_company_through_the_form(client_for, alice):
    client = client_for(alice)
    response = client.post("/companies/new/", {
        "name": " Deniz   Lojistik ", "website": "denizlojistik.com.tr", "phone": "0216 444 55 66",
        "size": "50-249", "annual_revenue": "1250000.50", "owner": alice.pk, "tags": "lojistik",
    })
    company = Company.objects.get()
    assert response.status_code == 302
    assert company.name == "Deniz Lojistik" and company.website == "https://denizlojistik.com.tr"
    assert company.phone == "+902164445566" and str(company.annual_revenue) == "1250000.50"

    response = client.post(f"/companies/{company.pk}/edit/", {"name": "Deniz Lojistik A.Ş.", "owner": alice.pk,
                                                               "website": "https://deniz.com.tr"})
    company.refresh_from_db()
    assert response.status_code == 302
    assert company.name == "Deniz Lojistik A.Ş." and company.website == "https://deniz.com.tr"
    assert list(company.tags.all()) == []


@pytest.mark.parametrize(("field", "value", "message"), [
    ("website", "not a url", "Enter a valid URL"),
    ("phone", "555", "Enter a valid phone number"),
    ("email", "x@", "Enter a valid e-mail address"),
    ("annual_revenue", "lots", "Enter a number"),
    ("name", "n" * 100_000, "at most 200 characters"),
    ("owner", "987654321", "Select a valid choice"),
])
def test_company_form_errors_next_to_fields_and_nothing_saved(client_for, alice, field, value, message):
    data = {"name": "Valid Name", "owner": alice.pk, field: value}
    response = client_for(alice).post("/companies/new/", data)

    assert response.status_code == 422
    assert message in field_error(response, field)
    assert Company.objects.count() == 0


def test_company_archive_by_editor(client_for, alice, bob, acme):
    assert client_for(bob).post(f"/companies/{acme.pk}/archive/").status_code == 403
    acme.refresh_from_db()
    assert acme.archived_at is None

    assert client_for(alice).post(f"/companies/{acme.pk}/archive/").status_code == 302
    acme.refresh_from_db()
    assert acme.archived_at is not None


def test_integration_user_session_cannot_use_pages(client_for, integ, alice):
    contact = ContactFactory(owner=alice)
    client = client_for(integ)
    assert client.get("/contacts/").status_code == 403
    assert client.get(f"/contacts/{contact.pk}/").status_code == 403
    assert integ.role == User.Role.INTEGRATION


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    response = client.get("/contacts/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/contacts/")


def test_tag_names_from_the_form_become_tags(client_for, alice):
    client_for(alice).post("/contacts/new/", contact_post(owner=alice.pk, tags="Ankara,  ankara , B2B"))
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["Ankara", "B2B"]


def test_more_than_20_tags_are_refused(client_for, alice):
    response = client_for(alice).post("/contacts/new/", contact_post(
        owner=alice.pk, tags=",".join(f"t{i}" for i in range(21))))
    assert "At most 20 tags (got 21)" in field_error(response, "tags")
    assert Tag.objects.count() == 0


def factory_sequence(pattern):
    import factory

    return factory.Sequence(lambda n: pattern.format(n))


def test_page_renders_with_activity_and_task_times_in_the_local_zone(client_for, alice, ayse):
    due = timezone.now() + timezone.timedelta(days=1)
    services.activity_log(actor=alice, kind="task", subject="Send the offer", contact=ayse, due_at=due)
    html = text(client_for(alice).get(f"/contacts/{ayse.pk}/"))
    assert "Send the offer" in html
    assert timezone.localtime(due).strftime("%H:%M") in html


# --- record pages use a fixed number of queries ----------------------------------------------------


def _fill(contact, actor, n):
    for i in range(n):
        kind = "task" if i % 3 == 0 else "call"
        services.activity_log(actor=actor, kind=kind, subject=f"A{i}", contact=contact,
                              due_at=timezone.now() + timezone.timedelta(days=1) if kind == "task" else None)
        services.consent_set(contact=contact, actor=actor, channel="sms", status="granted", source=f"s{i}")
        services.contact_update(contact=contact, actor=actor, data={"city": f"City {i}"})


@pytest.mark.parametrize("persona", ["alice", "mona"])
def test_contact_page_query_count_does_not_grow_with_its_history(request, client_for, alice, ayse, persona):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="loyalty_no", label="Loyalty", field_type="text")
    client = client_for(request.getfixturevalue(persona))
    _fill(ayse, alice, 3)
    with CaptureQueriesContext(connection) as small:
        client.get(f"/contacts/{ayse.pk}/")
    _fill(ayse, alice, 30)
    with CaptureQueriesContext(connection) as big:
        response = client.get(f"/contacts/{ayse.pk}/")

    assert response.content.decode().count('class="tl-item') == 33
    assert len(big.captured_queries) == len(small.captured_queries)


def test_company_page_query_count_does_not_grow_with_its_contacts(client_for, alice, acme):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(alice)
    ContactFactory.create_batch(3, owner=alice, company=acme)
    with CaptureQueriesContext(connection) as small:
        client.get(f"/companies/{acme.pk}/")
    for contact in ContactFactory.create_batch(40, owner=alice, company=acme):
        services.activity_log(actor=alice, kind="note", subject="n", contact=contact)
    with CaptureQueriesContext(connection) as big:
        client.get(f"/companies/{acme.pk}/")

    assert len(big.captured_queries) == len(small.captured_queries)
