"""Data-entry standards shared by every door (form, API, import): normalisation, required fields,
custom-field types and completeness."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from crm_okr.text import collapse_spaces

from .models import CustomFieldDefinition, Entity, FieldSetting

# Fields counted in a record's completeness unless an admin says otherwise.
DEFAULT_IMPORTANT = {
    Entity.CONTACT: ["first_name", "last_name", "email", "phone", "company", "job_title", "lead_source", "city"],
    Entity.COMPANY: ["name", "industry", "website", "phone", "city", "size"],
    Entity.DEAL: ["amount", "expected_close_date", "contact"],
}
# Fields an admin may make required or important, per record kind.
CONFIGURABLE_FIELDS = {
    Entity.CONTACT: [
        "last_name", "email", "phone", "mobile", "job_title", "company", "lead_source", "preferred_channel",
        "language", "birth_date", "gender", "city", "country", "owner",
    ],
    Entity.COMPANY: [
        "legal_name", "tax_number", "website", "email", "phone", "industry", "size", "annual_revenue", "address",
        "city", "country", "lead_source", "owner",
    ],
    Entity.DEAL: ["amount", "expected_close_date", "contact", "company", "lead_source", "owner"],
}
# Always required, whatever the settings say.
ALWAYS_REQUIRED = {Entity.CONTACT: ["first_name"], Entity.COMPANY: ["name"], Entity.DEAL: ["name"]}


def normalize_email(value: str | None) -> str:
    value = (value or "").strip().lower()
    if value:
        try:
            validate_email(value)
        except ValidationError:
            raise ValidationError(
                _("Enter a valid e-mail address such as name@example.com (got “%(value)s”).")
                % {"value": value[:100]}
            ) from None
    return value


def normalize_phone(value: str | None, region: str | None = None) -> str:
    """Parse a phone number and return it in E.164; an unparseable number is refused, never guessed."""
    raw = (value or "").strip()
    if not raw:
        return ""
    region = region or settings.PHONE_DEFAULT_REGION
    message = _(
        "Enter a valid phone number, e.g. +90 532 123 45 67 or 0532 123 45 67 (got “%(value)s”)."
    ) % {"value": raw[:40]}
    if len(raw) > 40:
        raise ValidationError(message)
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(message) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(message)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """A stored E.164 number in the international format people read."""
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def clean_name(value: str | None) -> str:
    return collapse_spaces(value or "")


@dataclass
class EntityRules:
    """The admin's rules for one record kind, loaded once per request and reused for every row."""

    entity: str
    required: list[str] = field(default_factory=list)
    important: list[str] = field(default_factory=list)
    custom_fields: list[CustomFieldDefinition] = field(default_factory=list)

    @classmethod
    def load(cls, entity: str) -> "EntityRules":
        settings_rows = list(FieldSetting.objects.filter(entity=entity))
        configured = {row.field_name: row for row in settings_rows}
        required = list(ALWAYS_REQUIRED[entity]) + [r.field_name for r in settings_rows if r.is_required]
        important = [
            name for name in DEFAULT_IMPORTANT[entity] if name not in configured or configured[name].is_important
        ] + [r.field_name for r in settings_rows if r.is_important and r.field_name not in DEFAULT_IMPORTANT[entity]]
        custom = list(CustomFieldDefinition.objects.filter(entity=entity, is_active=True))
        return cls(entity=entity, required=required, important=important, custom_fields=custom)

    def custom_required(self) -> list[CustomFieldDefinition]:
        return [d for d in self.custom_fields if d.is_required]

    def completeness(self, record) -> int:
        """The share (0–100) of important fields, built-in and custom, that the record has filled."""
        names = list(self.important)
        custom = [d.key for d in self.custom_fields if d.is_important]
        total = len(names) + len(custom)
        if not total:
            return 100
        filled = sum(1 for name in names if _filled(_value(record, name)))
        filled += sum(1 for key in custom if _filled((record.custom_fields or {}).get(key)))
        return round(100 * filled / total)

    def missing_required(self, record) -> dict[str, str]:
        missing = {}
        for name in self.required:
            if not _filled(_value(record, name)):
                missing[name] = _("This field is required.")
        for definition in self.custom_required():
            if not _filled((record.custom_fields or {}).get(definition.key)):
                missing[f"custom_fields.{definition.key}"] = _("“%(label)s” is required.") % {
                    "label": definition.label
                }
        return missing

    def clean_custom_fields(self, values, *, current: dict | None = None) -> dict:
        """Validate custom field values by type; unknown keys are refused with their name."""
        if values is None:
            return dict(current or {})
        if not isinstance(values, dict):
            raise ValidationError({"custom_fields": _("Expected an object of field keys and values.")})
        known = {d.key: d for d in self.custom_fields}
        result = dict(current or {})
        errors = {}
        for key, value in values.items():
            definition = known.get(key)
            if definition is None:
                errors[f"custom_fields.{key}"] = _("Unknown custom field “%(key)s”. Known fields: %(known)s.") % {
                    "key": str(key)[:50],
                    "known": ", ".join(sorted(known)) or "—",
                }
                continue
            try:
                cleaned = coerce_custom_value(definition, value)
            except ValidationError as exc:
                errors[f"custom_fields.{key}"] = exc.messages[0]
                continue
            if cleaned is None:
                result.pop(key, None)
            else:
                result[key] = cleaned
        if errors:
            raise ValidationError(errors)
        return result


def coerce_custom_value(definition: CustomFieldDefinition, value):
    """The JSON value stored for one custom field, or a ValidationError naming the expected type."""
    kind = CustomFieldDefinition.FieldType
    if value is None or value == "":
        return None
    if definition.field_type == kind.TEXT:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValidationError(_("Expected text."))
        text = collapse_spaces(str(value))
        if len(text) > 1000:
            raise ValidationError(_("At most 1000 characters (got %(n)d).") % {"n": len(text)})
        return text
    if definition.field_type == kind.NUMBER:
        if isinstance(value, bool):
            raise ValidationError(_("Expected a number."))
        try:
            number = Decimal(str(value).strip().replace(",", "."))
        except InvalidOperation:
            raise ValidationError(_("Expected a number (got “%(value)s”).") % {"value": str(value)[:40]}) from None
        if not number.is_finite() or abs(number) >= Decimal("1e15"):
            raise ValidationError(_("Expected a finite number below 10^15."))
        return int(number) if number == number.to_integral_value() else float(number)
    if definition.field_type == kind.DATE:
        parsed = value if isinstance(value, date) else (parse_date(value) if isinstance(value, str) else None)
        if parsed is None:
            raise ValidationError(_("Expected a date as YYYY-MM-DD (got “%(value)s”).") % {"value": str(value)[:40]})
        return parsed.isoformat()
    if definition.field_type == kind.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes", "on", "evet"}:
            return True
        if text in {"false", "0", "no", "off", "hayır", "hayir"}:
            return False
        raise ValidationError(_("Expected true or false."))
    if definition.field_type == kind.CHOICE:
        options = [str(o) for o in definition.choices or []]
        if str(value) not in options:
            raise ValidationError(
                _("“%(value)s” is not one of: %(options)s.") % {"value": str(value)[:40], "options": ", ".join(options)}
            )
        return str(value)
    raise ValidationError(_("Unsupported field type."))


def _value(record, name: str):
    if name in {"company", "contact", "lead_source", "owner"}:
        return getattr(record, f"{name}_id")
    return getattr(record, name, None)


def _filled(value) -> bool:
    return value not in (None, "", [], {})
