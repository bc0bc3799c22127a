"""The data-entry standards of contacts.rules, used by every door (form, API, import)."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from contacts.models import Contact, CustomFieldDefinition, Entity, FieldSetting
from contacts.rules import (
    ALWAYS_REQUIRED,
    DEFAULT_IMPORTANT,
    EntityRules,
    clean_name,
    coerce_custom_value,
    format_phone,
    normalize_email,
    normalize_phone,
)

PHONE_MESSAGE = "Enter a valid phone number, e.g. +90 532 123 45 67 or 0532 123 45 67 (got “{}”)."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0532 123 45 67", "+905321234567"),
        ("532 123 45 67", "+905321234567"),
        ("+90 (532) 123-45-67", "+905321234567"),
        ("0212 123 45 67", "+902121234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("  ", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_phone_is_stored_in_e164_with_turkey_as_default_region(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "abc", "0532 123", "+90 000 000 00 00", "1" * 41])
def test_unparseable_phone_is_refused_with_a_clear_message(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_phone(raw)
    assert exc.value.messages == [PHONE_MESSAGE.format(raw[:40])]


def test_phone_default_region_comes_from_settings(settings):
    settings.PHONE_DEFAULT_REGION = "GB"
    assert normalize_phone("020 7946 0958") == "+442079460958"


def test_stored_phone_is_shown_in_international_format():
    assert format_phone("+905321234567") == "+90 532 123 45 67"
    assert format_phone("") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Ayse.Yilmaz@Example.COM ", "ayse.yilmaz@example.com"), ("", ""), (None, "")],
)
def test_email_is_trimmed_and_lower_cased(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["not-an-email", "a@", "@example.com", "a b@example.com"])
def test_invalid_email_is_refused_naming_the_expected_form(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_email(raw)
    assert exc.value.messages == [
        f"Enter a valid e-mail address such as name@example.com (got “{raw.strip().lower()}”)."
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Ayşe   Nur  ", "Ayşe Nur"), ("Acme\t\nLtd.", "Acme Ltd."), ("", ""), (None, "")],
)
def test_names_are_trimmed_and_whitespace_collapsed(raw, expected):
    assert clean_name(raw) == expected


def _definition(field_type, **kwargs):
    return CustomFieldDefinition(entity=Entity.CONTACT, key="f", label="Field", field_type=field_type, **kwargs)


T = CustomFieldDefinition.FieldType


@pytest.mark.parametrize(
    ("field_type", "raw", "expected"),
    [
        (T.NUMBER, "12,5", 12.5),
        (T.NUMBER, " 7 ", 7),
        (T.NUMBER, 3.25, 3.25),
        (T.DATE, "2024-03-01", "2024-03-01"),
        (T.DATE, date(2024, 3, 1), "2024-03-01"),
        (T.BOOLEAN, "evet", True),
        (T.BOOLEAN, "Hayır", False),
        (T.BOOLEAN, "yes", True),
        (T.BOOLEAN, False, False),
        (T.TEXT, "  two   words ", "two words"),
        (T.TEXT, "", None),
        (T.NUMBER, None, None),
    ],
)
def test_custom_values_are_coerced_by_type(field_type, raw, expected):
    value = coerce_custom_value(_definition(field_type), raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("field_type", "raw", "message"),
    [
        (T.NUMBER, "twelve", "Expected a number (got “twelve”)."),
        (T.NUMBER, True, "Expected a number."),
        (T.NUMBER, "1e20", "Expected a finite number below 10^15."),
        (T.NUMBER, "NaN", "Expected a finite number below 10^15."),
        (T.DATE, "01.03.2024", "Expected a date as YYYY-MM-DD (got “01.03.2024”)."),
        (T.DATE, 20240301, "Expected a date as YYYY-MM-DD (got “20240301”)."),
        (T.BOOLEAN, "maybe", "Expected true or false."),
        (T.TEXT, ["a"], "Expected text."),
        (T.TEXT, "x" * 1001, "At most 1000 characters (got 1001)."),
        (T.CHOICE, "gold", "“gold” is not one of: bronze, silver."),
    ],
)
def test_bad_custom_values_are_refused_naming_the_expected_type(field_type, raw, message):
    with pytest.raises(ValidationError) as exc:
        coerce_custom_value(_definition(field_type, choices=["bronze", "silver"]), raw)
    assert exc.value.messages == [message]


@pytest.mark.django_db
def test_unknown_custom_key_is_refused_with_its_name_and_the_known_keys():
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER)
    rules = EntityRules.load(Entity.CONTACT)
    with pytest.raises(ValidationError) as exc:
        rules.clean_custom_fields({"budget": "5", "colour": "red"})
    assert exc.value.message_dict == {"custom_fields.colour": ["Unknown custom field “colour”. Known fields: budget."]}


@pytest.mark.django_db
def test_clean_custom_fields_keeps_current_values_and_drops_emptied_ones():
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER)
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="vip", label="VIP", field_type=T.BOOLEAN)
    rules = EntityRules.load(Entity.CONTACT)
    assert rules.clean_custom_fields({"vip": "evet"}, current={"budget": 5}) == {"budget": 5, "vip": True}
    assert rules.clean_custom_fields({"budget": ""}, current={"budget": 5, "vip": True}) == {"vip": True}
    assert rules.clean_custom_fields(None, current={"budget": 5}) == {"budget": 5}
    with pytest.raises(ValidationError) as exc:
        rules.clean_custom_fields(["budget"])
    assert exc.value.message_dict == {"custom_fields": ["Expected an object of field keys and values."]}


@pytest.mark.django_db
def test_inactive_custom_field_is_unknown():
    CustomFieldDefinition.objects.create(
        entity=Entity.CONTACT, key="old", label="Old", field_type=T.TEXT, is_active=False
    )
    with pytest.raises(ValidationError) as exc:
        EntityRules.load(Entity.CONTACT).clean_custom_fields({"old": "x"})
    assert list(exc.value.message_dict) == ["custom_fields.old"]


@pytest.mark.django_db
def test_default_rules_require_only_the_name_and_count_eight_contact_fields():
    rules = EntityRules.load(Entity.CONTACT)
    assert rules.required == ALWAYS_REQUIRED[Entity.CONTACT] == ["first_name"]
    assert rules.important == DEFAULT_IMPORTANT[Entity.CONTACT]
    assert len(rules.important) == 8
    assert EntityRules.load(Entity.COMPANY).required == ["name"]


@pytest.mark.django_db
def test_field_settings_add_required_and_important_fields_and_remove_defaults():
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="phone", is_required=True, is_important=True)
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="city", is_required=False, is_important=False)
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="country", is_required=False, is_important=True)
    rules = EntityRules.load(Entity.CONTACT)
    assert rules.required == ["first_name", "phone"]
    assert rules.important == [
        "first_name", "last_name", "email", "phone", "company", "job_title", "lead_source", "country",
    ]


@pytest.mark.django_db
def test_completeness_is_the_rounded_share_of_important_fields_filled():
    rules = EntityRules.load(Entity.CONTACT)
    # first_name, last_name, email, phone, job_title filled; company, lead_source, city empty: 5/8 = 62.5 → 62.
    contact = Contact(first_name="Ayşe", last_name="Yılmaz", email="a@example.com", phone="+905321234567",
                      job_title="Buyer")
    assert rules.completeness(contact) == 62
    contact.city = "Ankara"  # 6/8 = 75
    assert rules.completeness(contact) == 75


@pytest.mark.django_db
def test_completeness_counts_important_custom_fields():
    CustomFieldDefinition.objects.create(
        entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER, is_important=True
    )
    rules = EntityRules.load(Entity.CONTACT)
    # 8 built-in + 1 custom = 9; filled: first_name and budget = 2/9 = 22.2 → 22.
    contact = Contact(first_name="Ayşe", custom_fields={"budget": 10})
    assert rules.completeness(contact) == 22


@pytest.mark.django_db
def test_completeness_with_no_important_fields_is_full():
    for name in DEFAULT_IMPORTANT[Entity.COMPANY]:
        FieldSetting.objects.create(entity=Entity.COMPANY, field_name=name, is_important=False)
    assert EntityRules.load(Entity.COMPANY).completeness(Contact()) == 100


@pytest.mark.django_db
def test_missing_required_names_built_in_and_custom_fields():
    FieldSetting.objects.create(entity=Entity.CONTACT, field_name="lead_source", is_required=True)
    CustomFieldDefinition.objects.create(
        entity=Entity.CONTACT, key="budget", label="Budget", field_type=T.NUMBER, is_required=True
    )
    rules = EntityRules.load(Entity.CONTACT)
    assert rules.missing_required(Contact(first_name="Ayşe")) == {
        "lead_source": "This field is required.",
        "custom_fields.budget": "“Budget” is required.",
    }
