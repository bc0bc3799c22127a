"""contacts.services for contacts and companies: data-entry standards, rules, history, tags, upsert."""

import pytest
from django.core.exceptions import ValidationError

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
from contacts.rules import EntityRules
from crm_okr.models import Event, FieldChange
from tests.factories import CompanyFactory, ContactFactory, LeadSourceFactory, TagFactory

T = CustomFieldDefinition.FieldType


def _state():
    """What a refused write must leave untouched."""
    return {
        "contacts": list(Contact.objects.order_by("id").values()),
        "companies": list(Company.objects.order_by("id").values()),
        "tags": list(Tag.objects.order_by("id").values()),
        "events": Event.objects.count(),
        "history": FieldChange.objects.count(),
        "stages": LifecycleChange.objects.count(),
    }


# --- normalisation -------------------------------------------------------------------------------


def test_create_applies_the_data_entry_standards(alice):
    contact = services.contact_create(actor=alice, data={
        "first_name": "  Ayşe   Nur ", "last_name": " Yılmaz ", "email": " Ayse.Yilmaz@Example.COM ",
        "phone": "0532 123 45 67", "mobile": "+44 20 7946 0958", "job_title": "  Satın   alma ",
        "city": " İstanbul ", "country": " tr ", "language": " TR ",
    })
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name) == ("Ayşe Nur", "Yılmaz")
    assert contact.email == "ayse.yilmaz@example.com"
    assert (contact.phone, contact.mobile) == ("+905321234567", "+442079460958")
    assert (contact.job_title, contact.city, contact.country, contact.language) == (
        "Satın alma", "İstanbul", "TR", "tr")
    assert (contact.owner, contact.team, contact.created_by) == (alice, alice.team, alice)
    assert contact.lifecycle_stage == "lead"
    assert contact.sort_name == "ays{e nur yh{lmaz"
    assert contact.search_text == "ayse nur yilmaz ayse.yilmaz@example.com 905321234567 442079460958"


def test_create_refuses_unparseable_phone_and_invalid_email_together(alice):
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_create(actor=alice, data={"first_name": "Ayşe", "phone": "12345", "email": "ayse@"})
    assert exc.value.message_dict == {
        "email": ["Enter a valid e-mail address such as name@example.com (got “ayse@”)."],
        "phone": ["Enter a valid phone number, e.g. +90 532 123 45 67 or 0532 123 45 67 (got “12345”)."],
    }
    assert _state() == before


def test_update_refuses_unparseable_phone_and_keeps_the_old_one(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "phone": "0532 123 45 67"})
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_update(contact=contact, actor=alice, data={"phone": "not a phone"})
    assert list(exc.value.message_dict) == ["phone"]
    assert _state() == before


def test_company_name_is_trimmed_and_collapsed(alice):
    company = services.company_create(actor=alice, data={"name": "  Işık   Yapı  A.Ş. ", "phone": "0212 123 45 67"})
    company.refresh_from_db()
    assert company.name == "Işık Yapı A.Ş."
    assert company.phone == "+902121234567"
    assert company.search_text == "isik yapi a.s. 902121234567"


def test_unknown_field_is_refused_by_name(alice):
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_create(actor=alice, data={"first_name": "Ayşe", "shoe_size": 42})
    assert exc.value.message_dict == {"shoe_size": ["Unknown field."]}
    assert _state() == before


def test_first_name_is_always_required(alice):
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_create(actor=alice, data={"first_name": "   ", "last_name": "Yılmaz"})
    assert list(exc.value.message_dict) == ["first_name"]
    assert _state() == before


# --- admin rules: required fields, custom fields, completeness -------------------------------------


def test_required_field_set_by_admin_refuses_a_create_without_it(alice):
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="phone", is_required=True)
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    assert exc.value.message_dict == {"phone": ["This field is required."]}
    assert _state() == before
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "phone": "05321234567"})
    assert contact.phone == "+905321234567"


def test_required_field_set_by_admin_refuses_an_update_that_empties_it(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "city": "Ankara"})
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="city", is_required=True)
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_update(contact=contact, actor=alice, data={"city": "  "})
    assert exc.value.message_dict == {"city": ["This field is required."]}
    assert _state() == before


def test_required_foreign_key_field_on_company(alice):
    FieldSetting.objects.create(entity=Entity.COMPANY, field_name="lead_source", is_required=True)
    with pytest.raises(ValidationError) as exc:
        services.company_create(actor=alice, data={"name": "Acme"})
    assert exc.value.message_dict == {"lead_source": ["This field is required."]}
    assert Company.objects.count() == 0
    company = services.company_create(actor=alice, data={"name": "Acme", "lead_source": LeadSourceFactory()})
    assert company.pk is not None


def test_custom_fields_of_each_type_are_validated_and_stored(alice):
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER)
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="renewal", label="Renewal", field_type=T.DATE)
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="tier", label="Tier", field_type=T.CHOICE,
                                         choices=["bronze", "silver", "gold"])
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="vip", label="VIP", field_type=T.BOOLEAN)
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="note", label="Note", field_type=T.TEXT)
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "custom_fields": {
        "budget": "12,5", "renewal": "2025-06-30", "tier": "gold", "vip": "evet", "note": "  likes   tea "}})
    contact.refresh_from_db()
    assert contact.custom_fields == {
        "budget": 12.5, "renewal": "2025-06-30", "tier": "gold", "vip": True, "note": "likes tea"}
    assert Contact.objects.filter(custom_fields__vip=True, custom_fields__budget=12.5).get() == contact


def test_bad_custom_values_are_refused_each_named_and_nothing_is_saved(alice):
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER)
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="tier", label="Tier", field_type=T.CHOICE,
                                         choices=["bronze", "silver"])
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="renewal", label="Renewal", field_type=T.DATE)
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_create(actor=alice, data={"first_name": "Ayşe", "custom_fields": {
            "budget": "a lot", "tier": "gold", "renewal": "30/06/2025", "shoe": 42}})
    assert exc.value.message_dict == {
        "custom_fields.budget": ["Expected a number (got “a lot”)."],
        "custom_fields.tier": ["“gold” is not one of: bronze, silver."],
        "custom_fields.renewal": ["Expected a date as YYYY-MM-DD (got “30/06/2025”)."],
        "custom_fields.shoe": ["Unknown custom field “shoe”. Known fields: budget, renewal, tier."],
    }
    assert _state() == before


def test_required_custom_field_refuses_a_save(alice):
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER,
                                         is_required=True)
    with pytest.raises(ValidationError) as exc:
        services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    assert exc.value.message_dict == {"custom_fields.budget": ["“Budget” is required."]}
    assert Contact.objects.count() == 0


def test_update_merges_custom_fields(alice):
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER)
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="vip", label="VIP", field_type=T.BOOLEAN)
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "custom_fields": {"budget": "10"}})
    services.contact_update(contact=contact, actor=alice, data={"custom_fields": {"vip": "hayır"}})
    contact.refresh_from_db()
    assert contact.custom_fields == {"budget": 10, "vip": False}


def test_completeness_of_a_created_contact(alice):
    company = CompanyFactory(name="Acme")
    contact = services.contact_create(actor=alice, data={
        "first_name": "Ayşe", "last_name": "Yılmaz", "email": "ayse@example.com", "phone": "05321234567",
        "company": company})
    # 5 of the 8 important fields (job_title, lead_source, city empty): 62.5 % → 62.
    assert EntityRules.load(Entity.CONTACT).completeness(contact) == 62


# --- field history and lifecycle -----------------------------------------------------------------


def test_update_writes_one_history_row_with_who_what_old_and_new(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "city": "Ankara"})
    services.contact_update(contact=contact, actor=alice, data={"city": "İzmir", "phone": "0532 123 45 67"})
    change = FieldChange.objects.get()
    assert (change.record_type, change.record_id, change.actor) == ("contacts.contact", contact.pk, alice)
    assert change.changes == {
        "city": {"label": "city", "old": "Ankara", "new": "İzmir"},
        "phone": {"label": "phone", "old": "", "new": "+905321234567"},
    }


def test_history_shows_choice_labels_related_names_tags_and_custom_fields(alice):
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER)
    source = LeadSourceFactory(name="Web form")
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    services.contact_update(contact=contact, actor=alice, data={
        "lead_source": source, "gender": "female", "tags": ["VIP"], "custom_fields": {"budget": "5"}})
    assert FieldChange.objects.get().changes == {
        "lead_source": {"label": "lead source", "old": "", "new": "Web form"},
        "gender": {"label": "gender", "old": "", "new": "Female"},
        "tags": {"label": "tags", "old": "", "new": "VIP"},
        "custom_fields.budget": {"label": "custom_fields.budget", "old": "", "new": "5"},
    }


def test_update_that_changes_nothing_writes_no_history_and_no_event(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "phone": "+905321234567"})
    updated_at = Contact.objects.get().updated_at
    events_before = Event.objects.count()
    # The same values, typed differently, are no change.
    services.contact_update(contact=contact, actor=alice, data={"first_name": " Ayşe ", "phone": "0532 123 45 67"})
    assert FieldChange.objects.count() == 0
    assert Event.objects.count() == events_before
    assert Contact.objects.get().updated_at == updated_at


def test_create_records_the_first_lifecycle_stage(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "lifecycle_stage": "mql"})
    change = LifecycleChange.objects.get()
    assert (change.contact, change.from_stage, change.to_stage, change.actor) == (contact, "", "mql", alice)
    assert change.changed_at == contact.lifecycle_changed_at == contact.created_at


def test_lifecycle_change_is_recorded_with_time_and_an_event(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    services.contact_update(contact=contact, actor=alice, data={"lifecycle_stage": "customer"})
    contact.refresh_from_db()
    change = LifecycleChange.objects.get(from_stage="lead")
    assert (change.to_stage, change.actor, change.changed_at) == ("customer", alice, contact.lifecycle_changed_at)
    event = Event.objects.get(name="contact.lifecycle_changed")
    assert (event.subject_type, event.subject_id, event.actor) == ("contacts.contact", contact.pk, alice)
    assert event.payload["from"] == "lead"
    assert event.payload["to"] == "customer"


def test_invalid_lifecycle_stage_is_refused(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_update(contact=contact, actor=alice, data={"lifecycle_stage": "king"})
    assert list(exc.value.message_dict) == ["lifecycle_stage"]
    assert _state() == before


def test_company_update_writes_history(alice):
    company = services.company_create(actor=alice, data={"name": "Acme", "industry": "Retail"})
    services.company_update(company=company, actor=alice, data={"industry": "Textile", "size": "10-49"})
    change = FieldChange.objects.get()
    assert change.record_type == "contacts.company"
    assert change.changes == {
        "industry": {"label": "industry", "old": "Retail", "new": "Textile"},
        "size": {"label": "size", "old": "", "new": "10–49 employees"},
    }


# --- tags ----------------------------------------------------------------------------------------


def test_tags_are_reused_regardless_of_case_and_spacing(alice):
    vip = TagFactory(name="VIP")
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "tags": ["vip", " Vip ", "Fuar  2024"]})
    assert Tag.objects.count() == 2
    assert sorted(t.name for t in contact.tags.all()) == ["Fuar 2024", "VIP"]
    assert vip in contact.tags.all()
    other = services.contact_create(actor=alice, data={"first_name": "Ali", "tags": ["FUAR 2024"]})
    assert [t.name for t in other.tags.all()] == ["Fuar 2024"]
    assert Tag.objects.count() == 2


def test_turkish_tags_are_reused_regardless_of_case(alice):
    services.contact_create(actor=alice, data={"first_name": "Ayşe", "tags": ["İstanbul"]})
    other = services.contact_create(actor=alice, data={"first_name": "Ali", "tags": ["İSTANBUL", "istanbul"]})
    assert [t.name for t in other.tags.all()] == ["İstanbul"]
    assert Tag.objects.count() == 1


def test_update_replaces_tags(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "tags": ["a", "b"]})
    services.contact_update(contact=contact, actor=alice, data={"tags": ["B", "c"]})
    assert sorted(t.name for t in contact.tags.all()) == ["b", "c"]


# --- upsert --------------------------------------------------------------------------------------


def test_upsert_creates_then_updates_by_email_ignoring_case(integ, alice):
    contact, created = services.contact_upsert(actor=integ, data={
        "email": "Ayse@Example.com", "first_name": "Ayşe", "owner": alice})
    assert created is True
    assert (contact.email, contact.owner) == ("ayse@example.com", alice)
    again, created = services.contact_upsert(actor=integ, data={
        "email": "AYSE@example.COM", "first_name": "Ayşe", "city": "Bursa"})
    assert created is False
    assert again.pk == contact.pk
    assert Contact.objects.count() == 1
    assert Contact.objects.get().city == "Bursa"


def test_upsert_matches_a_row_stored_with_capitals_by_a_bulk_loader(integ):
    existing = ContactFactory(email="Ayse@Example.COM", first_name="Ayşe")
    contact, created = services.contact_upsert(actor=integ, data={"email": "ayse@example.com", "city": "Bursa"})
    assert (created, contact.pk) == (False, existing.pk)
    assert Contact.objects.get().city == "Bursa"


@pytest.mark.parametrize(
    ("email", "message"),
    [(None, "An e-mail address is required to upsert a contact."),
     ("  ", "An e-mail address is required to upsert a contact."),
     ("nope", "Enter a valid e-mail address such as name@example.com (got “nope”).")],
)
def test_upsert_without_a_valid_email_is_refused(integ, email, message):
    with pytest.raises(ValidationError) as exc:
        services.contact_upsert(actor=integ, data={"email": email, "first_name": "Ayşe"})
    assert exc.value.message_dict == {"email": [message]}
    assert Contact.objects.count() == 0


def test_integration_creates_contacts_without_an_owner(integ):
    contact = services.contact_create(actor=integ, data={"first_name": "Ayşe"})
    assert (contact.owner, contact.team, contact.created_by) == (None, None, integ)


def test_archive_sets_the_time_once_and_records_history(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    services.contact_archive(contact=contact, actor=alice)
    archived_at = Contact.objects.get().archived_at
    assert archived_at is not None
    services.contact_archive(contact=contact, actor=alice)
    assert Contact.objects.get().archived_at == archived_at
    assert FieldChange.objects.count() == 1
    assert Event.objects.filter(name="contact.archived").count() == 1
