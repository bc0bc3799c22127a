"""The KPI editor: admins write, preview, change and delete KPIs in the browser, and everyone can read the
formula language's help page. Thin doors to ``kpis.services``; every editor page answers 403 to non-admins.
"""

import logging
from contextlib import nullcontext
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.views import browser_user_required

from . import periods
from .forms import KpiForm, PreviewForm, formula_problem
from .formula import FormulaError
from .models import Frequency, Kpi

logger = logging.getLogger(__name__)

# An invalid form answers 422, which htmx is configured (base.html) to swap like a 200.
INVALID = 422


def admin_required(view):
    """Admins only; every other signed-in person gets 403 (integration accounts already do)."""

    @wraps(view)
    @browser_user_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_admin:
            raise PermissionDenied(_("Only admins create, change and delete KPIs."))
        return view(request, *args, **kwargs)

    return wrapper


def _services():
    # Imported on use: the URL configuration must load even while the services module is being written.
    from . import services

    return services


def _get_kpi(slug: str) -> Kpi:
    return get_object_or_404(Kpi, slug=slug)


# --- the live preview ----------------------------------------------------------------------------


def preview_context(*, formula: str, frequency: str, unit: str, decimals: int, slug: str | None) -> dict:
    """The value of ``formula`` for the current period of ``frequency``, or the problem that stops it.

    Never raises: a formula error comes back with its position; a database refusal (the statement timeout,
    a number too large) comes back as a message.
    """
    from .selectors import format_value

    period = periods.containing(frequency)
    context = {"period": period, "formula": formula, "frequency": Frequency(frequency).label}
    if not formula.strip():
        return {**context, "empty": True}
    try:
        compiled = _services().kpi_validate(formula, slug=slug)
        value = _evaluate(compiled, period)
    except (FormulaError, ValidationError) as exc:
        return {**context, "problem": formula_problem(formula, exc)}
    except DatabaseError:
        logger.warning("KPI preview failed in the database", exc_info=True)
        return {**context, "problem": formula_problem(formula, FormulaError(
            _("The database could not compute this formula (a number too large?); simplify it.")))}
    return {
        **context, "value": value, "formatted": format_value(Kpi(unit=unit, decimals=decimals), value),
        "dimensions": _dimension_labels(getattr(compiled, "dimensions", None) or []),
        "references": list(getattr(compiled, "references", None) or []),
    }


def _evaluate(compiled, period):
    """The compiled formula's value for ``period`` (one read-only statement with the statement timeout)."""
    # Inside a transaction (tests, or a caller's atomic block) a refused statement would spoil it: a savepoint.
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with guard:
        return compiled.evaluate(period)


def _dimension_labels(kinds) -> list[str]:
    from .models import DimensionKind

    labels = dict(DimensionKind.choices)
    return [str(labels.get(kind, kind)) for kind in kinds]


@require_POST
@admin_required
def kpi_preview(request):
    """htmx: the editor's preview panel for the posted formula (its value now, or the error with its place)."""
    form = PreviewForm(request.POST)
    values = form.values()
    context = preview_context(**values)
    status = INVALID if context.get("problem") else 200
    return render(request, "kpis/_preview.html", {"preview": context}, status=status)


# --- create, edit, delete ------------------------------------------------------------------------


def _editor_page(request, form: KpiForm, *, kpi: Kpi | None = None, preview=None, status=200):
    from .builtins import display_name

    return render(request, "kpis/editor.html", {
        "form": form, "kpi": kpi, "preview": preview, "kpi_name": display_name(kpi) if kpi else "",
        "problem": form.formula_problem,
    }, status=status)


def _wants_preview(request) -> bool:
    """The no-JavaScript "Preview" button posts the whole form to the page itself."""
    return request.POST.get("action") == "preview"


def _page_preview(form: KpiForm, *, slug: str | None) -> dict:
    preview = PreviewForm(form.data)
    values = preview.values()
    if slug:
        values["slug"] = slug
    return preview_context(**values)


@admin_required
def kpi_create(request):
    """A new custom KPI: name, formula, unit, benchmark and frequency; the preview shows its value now."""
    if request.method != "POST":
        return _editor_page(request, KpiForm(initial={"frequency": Frequency.MONTHLY, "decimals": 1}))
    form = KpiForm(request.POST)
    if _wants_preview(request):
        return _editor_page(request, form, preview=_page_preview(form, slug=None))
    if form.is_valid():
        try:
            kpi = _services().kpi_create(actor=request.user, **form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        except FormulaError as exc:
            form.set_formula_problem(form.cleaned_data["formula"], exc)
        except IntegrityError:
            form.add_error("slug", _("Another KPI already has the key “%(slug)s”.") % {
                "slug": form.cleaned_data["slug"]})
        else:
            _snapshot_soon(kpi)
            messages.success(request, _("Created the KPI “%(name)s”.") % {"name": kpi.name})
            return redirect("kpi-detail", slug=kpi.slug)
    return _editor_page(request, form, status=INVALID)


@admin_required
def kpi_edit(request, slug: str):
    """Change a KPI (built-in ones too); a changed formula gets the next version number."""
    kpi = _get_kpi(slug)
    if request.method != "POST":
        return _editor_page(request, KpiForm(instance=kpi), kpi=kpi)
    form = KpiForm(request.POST, instance=kpi)
    if _wants_preview(request):
        return _editor_page(request, form, kpi=kpi, preview=_page_preview(form, slug=kpi.slug))
    if form.is_valid():
        version = kpi.formula_version
        try:
            kpi = _services().kpi_update(kpi, actor=request.user, **form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        except FormulaError as exc:
            form.set_formula_problem(form.cleaned_data["formula"], exc)
        else:
            if kpi.formula_version != version:
                _snapshot_soon(kpi)
            messages.success(request, _("Saved “%(name)s” (formula version %(version)s).") % {
                "name": kpi.name, "version": kpi.formula_version})
            return redirect("kpi-detail", slug=kpi.slug)
    kpi.refresh_from_db()
    return _editor_page(request, form, kpi=kpi, status=INVALID)


def _snapshot_soon(kpi: Kpi) -> None:
    """A new formula gets its snapshots right after the save (not at the next hourly run)."""
    from .tasks import snapshot_soon

    snapshot_soon(kpi)


def referencing_kpis(kpi: Kpi) -> list[Kpi]:
    """The other KPIs whose formulas use ``kpi('slug')`` or ``snapshot('slug')`` of this one."""
    found = []
    for other in Kpi.objects.exclude(pk=kpi.pk).filter(formula__icontains=kpi.slug).order_by("name"):
        try:
            compiled = _services().kpi_validate(other.formula, slug=other.slug)
        except (FormulaError, ValidationError):
            continue
        if kpi.slug in (getattr(compiled, "references", None) or []):
            found.append(other)
    return found


@admin_required
def kpi_delete(request, slug: str):
    """Confirm and delete a custom KPI with its snapshots. Built-in KPIs and KPIs other formulas use stay."""
    kpi = _get_kpi(slug)
    users = referencing_kpis(kpi)
    error = None
    if kpi.is_builtin:
        error = _("Built-in KPIs cannot be deleted; make it inactive on its edit page instead.")
    elif users:
        error = _("Other KPIs use this one: %(names)s. Change their formulas first.") % {
            "names": ", ".join(f"“{other.name}”" for other in users)}
    if request.method == "POST":
        if error is None:
            try:
                _delete(kpi, actor=request.user)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                messages.success(request, _("Deleted the KPI “%(name)s”.") % {"name": kpi.name})
                return redirect("kpi-dashboard")
        return render(request, "kpis/editor_delete.html", {"kpi": kpi, "error": error, "users": users},
                      status=INVALID)
    snapshot_count = kpi.snapshots.count()
    return render(request, "kpis/editor_delete.html", {
        "kpi": kpi, "error": error, "users": users, "snapshot_count": snapshot_count})


def _delete(kpi: Kpi, *, actor) -> None:
    delete = getattr(_services(), "kpi_delete", None)
    if delete is not None:
        delete(kpi, actor=actor)
        return
    kpi.delete()  # pragma: no cover - until the service has kpi_delete


# --- the language help ---------------------------------------------------------------------------


@browser_user_required
def kpi_language_help(request):
    """The formula language: syntax, windows, state fields, every source from the registry, examples."""
    from .language_help import help_context

    return render(request, "kpis/language_help.html", help_context())

