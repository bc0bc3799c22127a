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

from .formula import Compiled, FormulaError, ast, compile_formula
from .formula.names import check_names
from .formula.parser import parse
from .models import Kpi

# The fields an admin may set on a KPI (everything else is decided by the system).
EDITABLE_FIELDS = [
    "slug", "name", "description", "formula", "unit", "decimals", "frequency", "direction", "benchmark_low",
    "benchmark_high", "benchmark_text", "snapshot_at_start", "is_active", "order",
]
HISTORY_FIELDS = [name for name in EDITABLE_FIELDS if name != "order"]
# Words the KPI URLs and API use right after /kpis/: no KPI may take them as its key.
RESERVED_SLUGS = frozenset({"new", "preview", "language", "data", "validate"})


def _require_admin(actor) -> None:
    if actor is None or not getattr(actor, "is_admin", False):
        raise PermissionDenied(_("Only admins create and change KPIs."))


def formula_validation_error(exc: FormulaError) -> ValidationError:
    """A ValidationError on the ``formula`` field whose message ends with the position; the FormulaError
    is kept on ``.formula_error`` (for the API's ``position``)."""
    error = ValidationError({"formula": [exc.with_position()]})
    error.formula_error = exc
    return error


def kpi_validate(text: str, slug: str | None = None, *, names: bool | None = None) -> Compiled:
    """Compile a formula (as the editor's preview and the API's validate endpoint do): the compiled formula,
    or a ValidationError on ``formula`` (see ``formula_validation_error``).

    ``names``: also refuse a stage, pipeline, lead source, lost reason, company, team or user the formula names
    that does not exist (``stage = 'Teklf'``), with a did-you-mean. Only for a formula being written: a stored
    formula keeps working (counting nothing for that name) after a stage is renamed, and can still be saved
    with other changes. None (default): checked unless ``text`` is the formula stored for KPI ``slug``."""
    try:
        compiled = compile_formula(text or "", slug=slug or None)
        if names is None:
            names = not (slug and Kpi.objects.filter(slug=slug, formula=(text or "").strip()).exists())
        if names:
            check_names(compiled)
        return compiled
    except FormulaError as exc:
        raise formula_validation_error(exc) from None


def _unknown_fields(fields: dict) -> None:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({name: [_("This field cannot be set.")] for name in unknown})


def _check_slug(slug) -> None:
    if str(slug or "").strip().lower() in RESERVED_SLUGS:
        raise ValidationError({"slug": [_("“%(slug)s” is a reserved word; choose another key.") % {"slug": slug}]})


def _full_clean(kpi: Kpi) -> None:
    try:
        kpi.full_clean(exclude=["created_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None


@transaction.atomic
def kpi_create(*, actor, **fields) -> Kpi:
    _require_admin(actor)
    _unknown_fields(fields)
    _check_slug(fields.get("slug"))
    kpi = Kpi(created_by=actor, **fields)
    kpi.formula = (kpi.formula or "").strip()
    compiled = kpi_validate(kpi.formula, slug=kpi.slug) if kpi.formula else None
    _full_clean(kpi)
    kpi.dimensions = compiled.dimensions if compiled else []
    kpi.save()
    return kpi


def _direct_references(formula: str) -> tuple[set, set]:
    """``(kpi('…') slugs, snapshot('…') slugs)`` a formula names, from its parsed tree (a mention in a comment
    or in a text is not a reference); a formula that does not parse names none."""
    try:
        tree = parse(formula or "")
    except FormulaError:
        return set(), set()
    inlined, snapshots = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.KpiRef):
            inlined.add(node.slug)
        elif isinstance(node, ast.SnapshotRef):
            snapshots.add(node.slug)
    return inlined, snapshots


def _referenced_by(slug: str, *, inlined_only: bool = False) -> list[str]:
    """Slugs of the other KPIs whose formula refers to ``slug`` through kpi('…') (and, unless ``inlined_only``,
    snapshot('…')), in slug order."""
    found = []
    for other_slug, formula in Kpi.objects.exclude(slug=slug).order_by("slug").values_list("slug", "formula"):
        inlined, snapshots = _direct_references(formula)
        if slug in inlined or (not inlined_only and slug in snapshots):
            found.append(other_slug)
    return found


@transaction.atomic
def kpi_update(kpi: Kpi, *, actor, **fields) -> Kpi:
    _require_admin(actor)
    _unknown_fields(fields)
    kpi = Kpi.objects.select_for_update().get(pk=kpi.pk)
    before = history.snapshot(kpi, HISTORY_FIELDS)
    old_slug, old_formula = kpi.slug, kpi.formula
    old_band = (kpi.benchmark_low, kpi.benchmark_high)
    for name, value in fields.items():
        setattr(kpi, name, value)
    kpi.formula = (kpi.formula or "").strip()
    if kpi.slug != old_slug:
        _check_slug(kpi.slug)
        if kpi.is_builtin:
            raise ValidationError({"slug": [_("The key of a built-in KPI cannot change.")]})
        users = _referenced_by(old_slug)
        if users:
            raise ValidationError({"slug": [_("Other KPIs use this key: %(kpis)s.") % {"kpis": ", ".join(users)}]})
    # Names are checked in a formula being written, not in one that stays (a stage renamed since then).
    compiled = kpi_validate(kpi.formula, slug=kpi.slug, names=kpi.formula != old_formula)
    _full_clean(kpi)  # also turns "25" into Decimal("25"), so the band compares by value
    if (kpi.benchmark_low, kpi.benchmark_high) != old_band and "benchmark_text" not in fields:
        # The text described the old band ("20–30 %"): pages show the new band instead of a stale text.
        kpi.benchmark_text = ""
    if kpi.formula != old_formula:
        kpi.formula_version += 1
    kpi.dimensions = compiled.dimensions
    kpi.updated_at = timezone.now()
    kpi.save()
    history.record_changes(instance=kpi, before=before, after=history.snapshot(kpi, HISTORY_FIELDS), actor=actor)
    if kpi.formula != old_formula:
        _refresh_dependents(kpi.slug)
    return kpi


def _inlining(slug: str) -> list[str]:
    """Slugs of the KPIs that inline ``slug`` through kpi('…'), directly or through other KPIs."""
    users: dict[str, set] = {}
    for other_slug, formula in Kpi.objects.order_by("slug").values_list("slug", "formula"):
        for used in _direct_references(formula)[0]:
            users.setdefault(used, set()).add(other_slug)
    found, queue = [], [slug]
    while queue:
        for other in sorted(users.get(queue.pop(0), ())):
            if other != slug and other not in found:
                found.append(other)
                queue.append(other)
    return found


def _refresh_dependents(slug: str) -> None:
    """KPIs that inline ``slug`` through kpi('…') — directly or through other KPIs — now compute something
    else: new dimensions and the next version."""
    for other in Kpi.objects.filter(slug__in=_inlining(slug)).order_by("slug").select_for_update():
        try:
            compiled = compile_formula(other.formula, slug=other.slug)
        except FormulaError:
            continue
        if slug in compiled.inlined_references:
            other.dimensions = compiled.dimensions
            other.formula_version += 1
            other.save(update_fields=["dimensions", "formula_version"])


@transaction.atomic
def kpi_delete(kpi: Kpi, *, actor) -> None:
    """Delete a custom KPI with its snapshots. Admins only; a built-in KPI is made inactive instead, and a KPI
    another formula refers to (kpi('…') or snapshot('…')) stays until that formula changes."""
    _require_admin(actor)
    kpi = Kpi.objects.select_for_update().get(pk=kpi.pk)
    if kpi.is_builtin:
        raise ValidationError({"is_builtin": [
            _("A built-in KPI cannot be deleted; make it inactive instead.")]})
    users = _referenced_by(kpi.slug)
    if users:
        raise ValidationError({"slug": [_("Other KPIs use this one: %(kpis)s. Change their formulas first.")
                                        % {"kpis": ", ".join(users)}]})
    kpi.delete()


def evaluate(kpi: Kpi, period, dimension=None) -> Decimal | None:
    """The KPI's value for a period (and dimension value): one SQL statement, read-only, with a timeout.

    Raises FormulaError when the stored formula no longer compiles (e.g. a referenced KPI was removed)
    or the KPI cannot be broken down by the dimension's kind.

    A ``snapshot_at_start`` KPI (the forecast) is only right when computed as its period starts (it reads
    today's deal status): for a period that has started, its value is the snapshot taken then (None without
    one), never a computation now.
    """
    if kpi.snapshot_at_start and period.has_started():
        from .models import KpiSnapshot

        return (
            KpiSnapshot.objects.filter(
                kpi=kpi, period_start=period.start, dimension_kind=dimension.kind if dimension else "",
                dimension_id=dimension.id if dimension else 0,
            ).values_list("value", flat=True).first()
        )
    return compile_formula(kpi.formula, slug=kpi.slug).evaluate(period, dimension)
