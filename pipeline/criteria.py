"""Exit criteria: the fields a deal must have filled before it may leave a stage forward.

A stage stores a list of keys: built-in deal fields (``amount``, ``expected_close_date``, ``contact``,
``company``, ``lead_source``, ``owner``) and deal custom fields as ``custom_fields.<key>``. The one
check below serves the board, the form, the API and automations alike.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from contacts.models import CustomFieldDefinition, Entity

BUILTIN = {
    "amount": gettext_lazy("Amount"),
    "expected_close_date": gettext_lazy("Expected close date"),
    "contact": gettext_lazy("Contact"),
    "company": gettext_lazy("Company"),
    "lead_source": gettext_lazy("Lead source"),
    "owner": gettext_lazy("Owner"),
}
CUSTOM_PREFIX = "custom_fields."


def available() -> list[tuple[str, str]]:
    """Every key an admin may choose as an exit criterion, with its label."""
    choices = [(key, str(label)) for key, label in BUILTIN.items()]
    for definition in CustomFieldDefinition.objects.filter(entity=Entity.DEAL, is_active=True):
        choices.append((CUSTOM_PREFIX + definition.key, definition.label))
    return choices


def clean(keys) -> list[str]:
    """Validate a list of criterion keys (unknown keys are refused by name); duplicates are dropped."""
    if keys is None:
        return []
    if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
        raise ValidationError({"exit_criteria": _("Expected a list of field keys.")})
    known = dict(available())
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValidationError({"exit_criteria": _("Unknown field “%(key)s”. Choose from: %(known)s.") % {
            "key": unknown[0][:60], "known": ", ".join(known)}})
    return list(dict.fromkeys(keys))


def label(key: str, custom_labels: dict[str, str] | None = None) -> str:
    if key in BUILTIN:
        return str(BUILTIN[key])
    if key.startswith(CUSTOM_PREFIX):
        name = key[len(CUSTOM_PREFIX):]
        if custom_labels is None:
            custom_labels = dict(
                CustomFieldDefinition.objects.filter(entity=Entity.DEAL).values_list("key", "label")
            )
        return custom_labels.get(name, name)
    return key


def _filled(deal, key: str) -> bool:
    if key.startswith(CUSTOM_PREFIX):
        value = (deal.custom_fields or {}).get(key[len(CUSTOM_PREFIX):])
    elif key in {"contact", "company", "lead_source", "owner"}:
        value = getattr(deal, f"{key}_id")
    else:
        value = getattr(deal, key, None)
    return value not in (None, "", [], {})


def missing(deal, stages) -> dict[str, list[str]]:
    """The criteria of the given stages (the one being left and any skipped over) that the deal lacks.

    Returns ``{field key: [message]}`` plus a ``stage`` entry that lists them all, ready to raise.
    """
    custom_labels = None
    if any(k.startswith(CUSTOM_PREFIX) for stage in stages for k in stage.exit_criteria or []):
        custom_labels = dict(CustomFieldDefinition.objects.filter(entity=Entity.DEAL).values_list("key", "label"))
    errors: dict[str, list[str]] = {}
    for stage in stages:
        for key in stage.exit_criteria or []:
            if key in errors or _filled(deal, key):
                continue
            errors[key] = [_("Required before a deal leaves “%(stage)s”.") % {"stage": stage.name}]
    if errors:
        names = ", ".join(label(k, custom_labels) for k in errors)
        errors = {"stage": [_("Fill in %(fields)s before moving this deal on.") % {"fields": names}], **errors}
    return errors
