"""Field history: what changed on a record, who changed it and when (one row per save)."""

from django.db import models

from .models import FieldChange


def display(instance: models.Model, name: str) -> str:
    """The value of a field as a person reads it (choice labels, related names)."""
    field = instance._meta.get_field(name)
    value = getattr(instance, name)
    if value is None or value == "":
        return ""
    if field.choices:
        return str(getattr(instance, f"get_{name}_display")())
    return str(value)


def snapshot(instance: models.Model, names: list[str]) -> dict[str, str]:
    return {name: display(instance, name) for name in names}


def record_changes(*, instance: models.Model, before: dict[str, str], after: dict[str, str], actor) -> dict:
    """Write one FieldChange row for the fields whose shown value differs; return the differences."""
    changes = {}
    for name, new in after.items():
        old = before.get(name, "")
        if old != new:
            try:
                label = str(instance._meta.get_field(name).verbose_name)
            except Exception:  # custom fields and tags are not model fields
                label = name
            changes[name] = {"label": label, "old": old, "new": new}
    if changes:
        FieldChange.objects.create(
            record_type=instance._meta.label_lower,
            record_id=instance.pk,
            actor=actor if actor is not None and actor.is_authenticated else None,
            changes=changes,
        )
    return changes


def history_for(instance: models.Model, limit: int = 50):
    return (
        FieldChange.objects.filter(record_type=instance._meta.label_lower, record_id=instance.pk)
        .select_related("actor")[:limit]
    )
