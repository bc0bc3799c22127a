"""Every write to KPI definitions, and evaluating a KPI on demand.

The formula is compiled (parsed, checked, references resolved) on every save: a bad formula is refused
with the message and position of the error and nothing changes. Only admins create and edit KPIs.
"""

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm_okr import history

from .formula import Compiled, FormulaError, compile_formula
from .models import Kpi

# The fields an admin may set on a KPI (everything else is decided by the system).
EDITABLE_FIELDS = [
    "slug", "name", "description", "formula", "unit", "decimals", "frequency", "direction", "benchmark_low",
    "benchmark_high", "benchmark_text", "snapshot_at_start", "is_active", "order",
]
HISTORY_FIELDS = [name for name in EDITABLE_FIELDS if name != "order"]


def _require_admin(actor) -> None:
    if actor is None or not getattr(actor, "is_admin", False):
        raise PermissionDenied(_("Only admins create and change KPIs."))


def formula_validation_error(exc: FormulaError) -> ValidationError:
    """A ValidationError on the ``formula`` field whose message ends with the position; the FormulaError
    is kept on ``.formula_error`` (for the API's ``position``)."""
    error = ValidationError({"formula": [exc.with_position()]})
    error.formula_error = exc
    return error


def kpi_validate(text: str, slug: str | None = None) -> Compiled:
    """Compile a formula (as the editor's preview and the API's validate endpoint do): the compiled formula,
    or a ValidationError on ``formula`` (see ``formula_validation_error``)."""
    try:
        return compile_formula(text or "", slug=slug or None)
    except FormulaError as exc:
        raise formula_validation_error(exc) from None


def _unknown_fields(fields: dict) -> None:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({name: [_("This field cannot be set.")] for name in unknown})


def _full_clean(kpi: Kpi) -> None:
    try:
        kpi.full_clean(exclude=["created_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None


@transaction.atomic
def kpi_create(*, actor, **fields) -> Kpi:
    _require_admin(actor)
    _unknown_fields(fields)
    kpi = Kpi(created_by=actor, **fields)
    kpi.formula = (kpi.formula or "").strip()
    compiled = kpi_validate(kpi.formula, slug=kpi.slug) if kpi.formula else None
    _full_clean(kpi)
    kpi.dimensions = compiled.dimensions if compiled else []
    kpi.save()
    return kpi


def _referenced_by(slug: str) -> list[str]:
    """Slugs of the KPIs whose formula mentions ``slug`` in kpi('…') or snapshot('…')."""
    found = []
    for other_slug, formula in Kpi.objects.exclude(slug=slug).values_list("slug", "formula"):
        if f"'{slug}'" in formula or f'"{slug}"' in formula:
            found.append(other_slug)
    return found


@transaction.atomic
def kpi_update(kpi: Kpi, *, actor, **fields) -> Kpi:
    _require_admin(actor)
    _unknown_fields(fields)
    kpi = Kpi.objects.select_for_update().get(pk=kpi.pk)
    before = history.snapshot(kpi, HISTORY_FIELDS)
    old_slug, old_formula = kpi.slug, kpi.formula
    for name, value in fields.items():
        setattr(kpi, name, value)
    kpi.formula = (kpi.formula or "").strip()
    if kpi.slug != old_slug:
        if kpi.is_builtin:
            raise ValidationError({"slug": [_("The key of a built-in KPI cannot change.")]})
        users = _referenced_by(old_slug)
        if users:
            raise ValidationError({"slug": [_("Other KPIs use this key: %(kpis)s.") % {"kpis": ", ".join(users)}]})
    compiled = kpi_validate(kpi.formula, slug=kpi.slug)
    _full_clean(kpi)
    if kpi.formula != old_formula:
        kpi.formula_version += 1
    kpi.dimensions = compiled.dimensions
    kpi.updated_at = timezone.now()
    kpi.save()
    history.record_changes(instance=kpi, before=before, after=history.snapshot(kpi, HISTORY_FIELDS), actor=actor)
    if kpi.formula != old_formula:
        _refresh_dependents(kpi.slug)
    return kpi


def _refresh_dependents(slug: str) -> None:
    """KPIs that inline ``slug`` through kpi('…') now compute something else: new dimensions and version."""
    for other in Kpi.objects.filter(slug__in=_referenced_by(slug)).select_for_update():
        try:
            compiled = compile_formula(other.formula, slug=other.slug)
        except FormulaError:
            continue
        if slug in compiled.inlined_references:
            other.dimensions = compiled.dimensions
            other.formula_version += 1
            other.save(update_fields=["dimensions", "formula_version"])


def evaluate(kpi: Kpi, period, dimension=None) -> Decimal | None:
    """The KPI's value for a period (and dimension value): one SQL statement, read-only, with a timeout.

    Raises FormulaError when the stored formula no longer compiles (e.g. a referenced KPI was removed)
    or the KPI cannot be broken down by the dimension's kind.
    """
    return compile_formula(kpi.formula, slug=kpi.slug).evaluate(period, dimension)
