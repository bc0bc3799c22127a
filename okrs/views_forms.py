"""Browser pages that change OKRs: cycles (new, edit, activate, close with scores), objectives (new, edit,
archive, and the objective page), key results (new, edit with the reason for the history, and the key result
page with its chart, check-ins and history), check-ins (and notes on automatic ones), initiatives and loading a
template.

Thin doors: objectives and key results are fetched through ``okrs.selectors`` visibility (hidden → 404), a
visible record the user may not change is a 403, and every write goes through ``okrs.services`` (whose
ValidationErrors are shown next to the fields; guidance warnings are shown after saving, never as errors).
"""

import datetime as dt
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Team
from accounts.selectors import editable_team_ids
from accounts.views import browser_user_required
from kpis import dimensions as dims

from . import progress as P
from . import selectors, services
from .forms import (
    AnnotateForm,
    CheckInForm,
    CycleCloseForm,
    CycleForm,
    InitiativeForm,
    KeyResultForm,
    ObjectiveForm,
    TemplateLoadForm,
)
from .models import CheckIn, Cycle, Initiative, KeyResult, KeyResultChange, Objective
from .templatetags.okrs import format_kr_value, format_number, kr_chart, okr_pct

# An invalid form answers 422 (htmx swaps it like a 200; see base.html).
INVALID = 422
# Check-ins listed on the key result page, newest first.
CHECK_IN_ROWS = 100


def _status_labels() -> dict:
    return {P.ON_TRACK: _("On track"), P.AT_RISK: _("At risk"), P.OFF_TRACK: _("Off track"), None: _("No status yet")}


def _id(value) -> int | None:
    value = str(value or "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def current_cycle(cycles=None) -> Cycle | None:
    """The active cycle around today, else the latest active one, else the earliest one in planning
    (chosen among ``cycles`` when given, else among every cycle: one query)."""
    today = timezone.localdate()
    rows = list(Cycle.objects.exclude(status=Cycle.Status.CLOSED) if cycles is None else cycles)
    active = sorted((c for c in rows if c.status == Cycle.Status.ACTIVE), key=lambda c: (c.start_date, c.pk),
                    reverse=True)
    around = [c for c in active if c.start_date <= today <= c.end_date]
    planning = sorted((c for c in rows if c.status == Cycle.Status.PLANNING), key=lambda c: (c.start_date, c.pk))
    return (around or active or planning or [None])[0]


def _safe_next(request, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return candidate
    return fallback


def _require_admin(request) -> None:
    if not request.user.is_admin:
        raise PermissionDenied(_("Only admins manage OKR cycles."))


def _objective_for(request, pk: int) -> Objective:
    qs = selectors.objectives_visible_to(request.user).select_related("cycle", "owner__team", "team", "parent")
    return get_object_or_404(qs, pk=pk)


def _key_result_for(request, pk: int) -> KeyResult:
    qs = selectors.key_results_visible_to(request.user).select_related(
        "objective__cycle", "objective__owner__team", "objective__team", "owner__team", "kpi")
    return get_object_or_404(qs, pk=pk)


def _require_objective_edit(request, objective: Objective) -> None:
    if not services.can_edit_objective(request.user, objective):
        raise PermissionDenied(_("You can see this objective but not change it; ask its owner or their manager."))


def _require_key_result_edit(request, kr: KeyResult) -> None:
    if not services.can_edit_key_result(request.user, kr):
        raise PermissionDenied(_("You can see this key result but not change it; ask its owner or their manager."))


def _warn(request, warnings) -> None:
    for warning in warnings:
        messages.warning(request, warning)


# --- formatting ----------------------------------------------------------------------------------


def format_value(value, key_result) -> str:
    """A key result value as every OKR page shows it (``okrs.templatetags.okrs.format_kr_value``)."""
    return format_kr_value(value, key_result)


def _percent(fraction) -> str:
    """Progress as every OKR page shows it: one decimal at most (81.7%)."""
    return okr_pct(fraction)


def _current(kr: KeyResult):
    return (1 if kr.milestone_done else 0) if kr.kind == KeyResult.Kind.MILESTONE else kr.current_value


def _decorate(state, labels) -> None:
    """Text the templates show for a key result state (kept in Python: SVG and numbers need a dot)."""
    kr = state.key_result
    state.current_text = format_value(_current(kr), kr)
    state.start_text = format_value(kr.start_value, kr)
    state.target_text = format_value(kr.target_value, kr)
    state.progress_text = _percent(state.progress.value if state.progress.raw is not None else None)
    state.raw_text = _percent(state.progress.raw) if state.progress.over_achieved else ""
    state.bar = f"{float(state.progress.value) * 100:.1f}"
    state.expected_bar = f"{float(state.expected) * 100:.1f}"
    state.expected_text = _percent(state.expected)
    state.status_label = labels[state.status]


# --- cycles --------------------------------------------------------------------------------------


@require_GET
@browser_user_required
def cycle_list(request):
    cycles = list(Cycle.objects.annotate(
        objective_count=Count("objectives", filter=Q(objectives__archived_at__isnull=True), distinct=True),
        key_result_count=Count("objectives__key_results", filter=Q(objectives__archived_at__isnull=True),
                               distinct=True),
    ).order_by("-start_date", "-id"))
    current = current_cycle(cycles)
    return render(request, "okrs/form_cycles.html", {"cycles": cycles, "current": current,
                                                     "is_admin": request.user.is_admin})


def _cycle_form_view(request, instance: Cycle | None):
    _require_admin(request)
    if instance is not None and instance.is_closed:
        messages.error(request, _("“%(cycle)s” is closed; its OKRs can no longer change.") % {"cycle": instance})
        return redirect("okr-cycles")
    data = request.POST if request.method == "POST" else None
    form = CycleForm(data, instance=instance)
    if data is not None and form.is_valid():
        try:
            if instance is None:
                cycle = services.cycle_create(actor=request.user, data=form.to_data())
            else:
                cycle = services.cycle_update(actor=request.user, cycle=instance, data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Saved “%(name)s”.") % {"name": cycle})
            return redirect("okr-cycles")
    return render(request, "okrs/form_cycle.html", {"form": form, "cycle": instance},
                  status=INVALID if data is not None else 200)


@browser_user_required
def cycle_create(request):
    return _cycle_form_view(request, None)


@browser_user_required
def cycle_edit(request, pk: int):
    return _cycle_form_view(request, get_object_or_404(Cycle, pk=pk))


@require_POST
@browser_user_required
def cycle_activate(request, pk: int):
    cycle = get_object_or_404(Cycle, pk=pk)
    _require_admin(request)
    try:
        services.cycle_activate(actor=request.user, cycle=cycle)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("“%(cycle)s” is active: statuses are computed and changes to targets need a "
                                    "reason.") % {"cycle": cycle})
    return redirect("okr-cycles")


@browser_user_required
def cycle_close(request, pk: int):
    """Every key result with its proposed score (progress rounded to one decimal); overrides need a comment."""
    cycle = get_object_or_404(Cycle, pk=pk)
    _require_admin(request)
    if cycle.status != Cycle.Status.ACTIVE:
        messages.error(request, _("Only an active cycle can be closed."))
        return redirect("okr-cycles")
    now = timezone.now()
    states = selectors.key_result_states(cycle, now=now)
    labels = _status_labels()
    for state in states:
        _decorate(state, labels)
    data = request.POST if request.method == "POST" else None
    form = CycleCloseForm(data, states=states)
    if data is not None and form.is_valid():
        try:
            services.cycle_close(actor=request.user, cycle=cycle, overrides=form.overrides(), now=now)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("“%(cycle)s” is closed: every key result is scored and check-ins are "
                                        "locked.") % {"cycle": cycle})
            return redirect("okr-cycles")
    return render(request, "okrs/form_cycle_close.html", {"cycle": cycle, "form": form},
                  status=INVALID if data is not None else 200)


# --- objectives ----------------------------------------------------------------------------------


def _objective_form_view(request, *, cycle: Cycle, instance: Objective | None, initial: dict | None = None):
    data = request.POST if request.method == "POST" else None
    form = ObjectiveForm(data, user=request.user, cycle=cycle, instance=instance, initial=initial or {})
    if data is not None and form.is_valid():
        try:
            if instance is None:
                objective, warnings = services.objective_create(actor=request.user, cycle=cycle, data=form.to_data())
            else:
                objective, warnings = services.objective_update(actor=request.user, objective=instance,
                                                                data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Saved “%(title)s”.") % {"title": objective.title})
            _warn(request, warnings)
            return redirect("okr-objective", pk=objective.pk)
    return render(request, "okrs/form_objective.html", {"form": form, "objective": instance, "cycle": cycle},
                  status=INVALID if data is not None else 200)


@browser_user_required
def objective_create(request):
    """``?cycle=<id>&parent=<id>&team=<id>`` preset the cycle (default: the current one), parent and team."""
    cycle = None
    if request.GET.get("cycle"):
        cycle = Cycle.objects.filter(pk=_id(request.GET["cycle"]) or 0).first()
        if cycle is None:
            messages.warning(request, _("That cycle was not found; the current one is chosen."))
    cycle = cycle or current_cycle()
    if cycle is None:
        messages.error(request, _("There is no cycle to set objectives in yet; an admin creates one first."))
        return redirect("okr-cycles")
    if cycle.is_closed:
        messages.error(request, _("“%(cycle)s” is closed; its OKRs can no longer change.") % {"cycle": cycle})
        return redirect("okr-cycles")
    initial = {"owner": request.user.pk, "level": Objective.Level.INDIVIDUAL}
    parent_id, team_id = _id(request.GET.get("parent")), _id(request.GET.get("team"))
    if parent_id and selectors.objectives_visible_to(request.user).filter(pk=parent_id, cycle=cycle).exists():
        initial["parent"] = parent_id
    editable = editable_team_ids(request.user)
    if team_id and (editable is None or team_id in editable) and Team.objects.filter(pk=team_id).exists():
        # only a team the user may set objectives for (a rep coming from a team's dashboard gets an individual one)
        initial.update(team=team_id, level=Objective.Level.TEAM)
    return _objective_form_view(request, cycle=cycle, instance=None, initial=initial)


@browser_user_required
def objective_edit(request, pk: int):
    objective = _objective_for(request, pk)
    _require_objective_edit(request, objective)
    if objective.cycle.is_closed:
        messages.error(request, _("“%(cycle)s” is closed; its OKRs can no longer change.") % {
            "cycle": objective.cycle})
        return redirect("okr-objective", pk=objective.pk)
    return _objective_form_view(request, cycle=objective.cycle, instance=objective)


@require_POST
@browser_user_required
def objective_archive(request, pk: int):
    """Archive the objective (``archived=0`` brings it back)."""
    objective = _objective_for(request, pk)
    _require_objective_edit(request, objective)
    archived = request.POST.get("archived", "1") != "0"
    try:
        services.objective_archive(actor=request.user, objective=objective, archived=archived)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Archived “%(title)s”.") % {"title": objective.title} if archived
                         else _("Brought back “%(title)s”.") % {"title": objective.title})
    return redirect("okr-objective", pk=objective.pk)


def _objective_states(cycle: Cycle, qs, now):
    # The core's loader of objectives with evaluated key results (four queries).
    return selectors._states(cycle, qs, now)


@require_GET
@browser_user_required
def objective_detail(request, pk: int):
    objective = _objective_for(request, pk)
    cycle = objective.cycle
    now = timezone.now()
    labels = _status_labels()
    visible = selectors.objectives_visible_to(request.user)
    state = _objective_states(cycle, Objective.objects.filter(pk=objective.pk), now)[0]
    state.objective = objective
    for kr_state in state.key_results:
        kr_state.key_result.objective = objective
        _decorate(kr_state, labels)
    children = _objective_states(cycle, visible.filter(parent=objective, archived_at__isnull=True), now)
    for child in children:
        child.progress_text = _percent(child.progress)
        child.status_label = labels[child.status]
    initiatives = list(Initiative.objects.filter(key_result__objective=objective).select_related("owner")
                       .order_by("key_result__order", "key_result_id", "due_date", "id"))
    by_kr = {}
    for item in initiatives:
        by_kr.setdefault(item.key_result_id, []).append(item)
    for kr_state in state.key_results:
        kr_state.initiatives = by_kr.get(kr_state.key_result.pk, [])
    parent = objective.parent if objective.parent_id and visible.filter(pk=objective.parent_id).exists() else None
    can_edit = services.can_edit_objective(request.user, objective)
    warnings = services.objective_warnings(objective, len(state.key_results)) if not objective.is_archived else []
    return render(request, "okrs/objective.html", {
        "objective": objective, "cycle": cycle, "state": state, "children": children, "parent": parent,
        "can_edit": can_edit and not cycle.is_closed, "warnings": warnings,
        "progress_text": _percent(state.progress), "status_label": labels[state.status],
    })


# --- key results ---------------------------------------------------------------------------------


def _key_result_form_view(request, *, objective: Objective, instance: KeyResult | None):
    data = request.POST if request.method == "POST" else None
    form = KeyResultForm(data, user=request.user, objective=objective, instance=instance)
    if data is not None and form.is_valid():
        try:
            if instance is None:
                kr, warnings = services.key_result_create(actor=request.user, objective=objective,
                                                          data=form.to_data())
            else:
                kr = services.key_result_update(actor=request.user, key_result=instance, data=form.to_data(),
                                                reason=form.cleaned_data.get("reason") or "")
                warnings = []
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Saved “%(title)s”.") % {"title": kr.title})
            _warn(request, warnings)
            return redirect("okr-kr", pk=kr.pk)
    return render(request, "okrs/form_key_result.html", {
        "form": form, "objective": objective, "key_result": instance, "cycle": objective.cycle,
        "needs_reason": objective.cycle.status != Cycle.Status.PLANNING,
    }, status=INVALID if data is not None else 200)


@browser_user_required
def key_result_create(request, pk: int):
    objective = _objective_for(request, pk)
    _require_objective_edit(request, objective)
    if objective.cycle.is_closed:
        messages.error(request, _("“%(cycle)s” is closed; its OKRs can no longer change.") % {
            "cycle": objective.cycle})
        return redirect("okr-objective", pk=objective.pk)
    return _key_result_form_view(request, objective=objective, instance=None)


@browser_user_required
def key_result_edit(request, pk: int):
    kr = _key_result_for(request, pk)
    _require_key_result_edit(request, kr)
    if kr.objective.cycle.is_closed:
        messages.error(request, _("“%(cycle)s” is closed; its OKRs can no longer change.") % {
            "cycle": kr.objective.cycle})
        return redirect("okr-kr", pk=kr.pk)
    return _key_result_form_view(request, objective=kr.objective, instance=kr)


def _key_result_page(request, kr: KeyResult, *, check_in_form=None, annotate_forms=None, status=200):
    objective, cycle = kr.objective, kr.objective.cycle
    state = selectors.key_result_state(kr)
    _decorate(state, _status_labels())
    series = selectors.key_result_series(kr)
    check_ins = list(CheckIn.objects.filter(key_result=kr).select_related("author", "snapshot")
                     .order_by("-measured_at", "-id")[:CHECK_IN_ROWS])
    can_edit = services.can_edit_key_result(request.user, kr) and not cycle.is_closed
    annotate_forms = annotate_forms or {}
    for row in check_ins:
        row.value_text = format_value(row.value, kr)
        if can_edit and row.is_automatic:
            row.annotate_form = annotate_forms.get(row.pk) or AnnotateForm(check_in=row)
    history = list(selectors.key_result_history(kr))
    for change in history:
        change.field_label = _change_label(change.field)
        change.old_text, change.new_text = _history_text(change.old_value, change.field, kr), _history_text(
            change.new_value, change.field, kr)
    return render(request, "okrs/key_result.html", {
        "kr": kr, "objective": objective, "cycle": cycle, "state": state, "check_ins": check_ins,
        "history": history, "can_edit": can_edit, "dimension_label": dimension_label(kr),
        "initiatives": list(kr.initiatives.select_related("owner").order_by("due_date", "id")),
        "check_in_form": check_in_form or (CheckInForm(key_result=kr) if can_edit else None),
        "chart": kr_chart(kr, cycle, series),
    }, status=status)


def dimension_label(kr: KeyResult) -> str:
    """Whose value of the KPI measures the key result: the member's name (“North”), or “—” when the member
    is gone; empty for the whole company. One query when there is a breakdown."""
    if not kr.dimension_kind:
        return ""
    try:
        member = dims.members(kr.dimension_kind).filter(pk=kr.dimension_id).first()
    except ValueError:  # a kind the KPI app no longer knows
        member = None
    return dims.label(kr.dimension_kind, member) if member is not None else "—"


def _history_text(text: str, field: str, kr: KeyResult) -> str:
    """A value kept in the history (``30``, ``2026-03-31``) written as the rest of the page writes it: the key
    result's unit for start and target, a localized date for the due date; “—” for none."""
    if not text:
        return "—"
    try:
        if field == KeyResultChange.Field.DUE_DATE:
            return date_format(dt.date.fromisoformat(text), "j M Y")
        if field == KeyResultChange.Field.WEIGHT:
            return format_number(Decimal(text))
        return format_value(Decimal(text), kr)
    except (ValueError, ArithmeticError):  # written by hand long ago: shown as kept
        return text


def _change_label(field: str) -> str:
    return str(KeyResultChange.Field(field).label) if field in KeyResultChange.Field.values else field


@require_GET
@browser_user_required
def key_result_detail(request, pk: int):
    return _key_result_page(request, _key_result_for(request, pk))


@require_POST
@browser_user_required
def check_in(request, pk: int):
    """A check-in from the key result page, or from another page's quick form (``next`` = where to go back)."""
    kr = _key_result_for(request, pk)
    _require_key_result_edit(request, kr)
    form = CheckInForm(request.POST, key_result=kr)
    back = _safe_next(request, "")
    if form.is_valid():
        try:
            services.check_in(actor=request.user, key_result=kr, **form.to_kwargs())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Checked in on “%(title)s”.") % {"title": kr.title})
            return redirect(back or reverse("okr-kr", args=[kr.pk]))
    if back:
        for name, errors in form.errors.items():
            label = form.fields[name].label if name in form.fields else ""
            for error in errors:
                messages.error(request, f"{kr.title} · {label}: {error}" if label else f"{kr.title}: {error}")
        return redirect(back)
    return _key_result_page(request, kr, check_in_form=form, status=INVALID)


@require_POST
@browser_user_required
def check_in_annotate(request, pk: int):
    """Add confidence, a note and blockers to a check-in (typically an automatic one)."""
    row = get_object_or_404(selectors.check_ins_visible_to(request.user).select_related("key_result"), pk=pk)
    kr = _key_result_for(request, row.key_result_id)
    _require_key_result_edit(request, kr)
    form = AnnotateForm(request.POST, check_in=row)
    if form.is_valid():
        try:
            services.check_in_annotate(actor=request.user, check_in=row, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Your confidence and note were added."))
            return redirect(_safe_next(request, reverse("okr-kr", args=[kr.pk])))
    return _key_result_page(request, kr, annotate_forms={row.pk: form}, status=INVALID)


# --- initiatives ---------------------------------------------------------------------------------


def _initiative_form_view(request, *, kr: KeyResult, instance: Initiative | None):
    data = request.POST if request.method == "POST" else None
    form = InitiativeForm(data, user=request.user, instance=instance)
    if data is not None and form.is_valid():
        try:
            if instance is None:
                services.initiative_create(actor=request.user, key_result=kr, data=form.to_data())
            else:
                services.initiative_update(actor=request.user, initiative=instance, data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Saved “%(title)s”.") % {"title": form.cleaned_data["title"]})
            return redirect("okr-kr", pk=kr.pk)
    return render(request, "okrs/form_initiative.html", {"form": form, "kr": kr, "initiative": instance},
                  status=INVALID if data is not None else 200)


def _initiative_for(request, pk: int) -> Initiative:
    initiative = get_object_or_404(
        Initiative.objects.filter(key_result__in=selectors.key_results_visible_to(request.user)), pk=pk)
    initiative.key_result = _key_result_for(request, initiative.key_result_id)
    if initiative.owner_id != request.user.pk and not services.can_edit_key_result(request.user,
                                                                                   initiative.key_result):
        raise PermissionDenied(_("You may not edit this initiative."))
    return initiative


def _closed_redirect(request, kr: KeyResult):
    messages.error(request, _("“%(cycle)s” is closed; its OKRs can no longer change.") % {
        "cycle": kr.objective.cycle})
    return redirect("okr-kr", pk=kr.pk)


@browser_user_required
def initiative_create(request, pk: int):
    kr = _key_result_for(request, pk)
    _require_key_result_edit(request, kr)
    if kr.objective.cycle.is_closed:
        return _closed_redirect(request, kr)
    return _initiative_form_view(request, kr=kr, instance=None)


@browser_user_required
def initiative_edit(request, pk: int):
    initiative = _initiative_for(request, pk)
    if initiative.key_result.objective.cycle.is_closed:
        return _closed_redirect(request, initiative.key_result)
    return _initiative_form_view(request, kr=initiative.key_result, instance=initiative)


@require_POST
@browser_user_required
def initiative_delete(request, pk: int):
    initiative = _initiative_for(request, pk)
    kr = initiative.key_result
    try:
        services.initiative_delete(actor=request.user, initiative=initiative)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Deleted “%(title)s”.") % {"title": initiative.title})
    return redirect("okr-kr", pk=kr.pk)


# --- templates -----------------------------------------------------------------------------------


@browser_user_required
def template_load(request):
    """A manager (or an admin) loads one of the seed's OKR sets into a cycle for a team."""
    user = request.user
    if not (user.is_admin or user.is_manager):
        raise PermissionDenied(_("Only the team's manager and admins load templates for a team."))
    data = request.POST if request.method == "POST" else None
    current = current_cycle()
    initial = {"cycle": current.pk if current and not current.is_closed else None}
    form = TemplateLoadForm(data, user=user, initial=initial)
    if not data:
        teams = list(form.fields["team"].queryset[:2])
        if len(teams) == 1:
            form.initial["team"] = teams[0].pk
    if data is not None and form.is_valid():
        try:
            objective, warnings = services.load_template(
                cycle=form.cleaned_data["cycle"], team=form.cleaned_data["team"],
                template_key=form.cleaned_data["template"], actor=user)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            krs = list(objective.key_results.select_related("kpi").order_by("order", "id"))
            linked = [kr for kr in krs if kr.kpi_id]
            messages.success(request, _("Loaded “%(title)s” with %(count)d key results for %(team)s; %(linked)d "
                                        "measured by KPIs.") % {
                "title": objective.title, "count": len(krs), "team": form.cleaned_data["team"],
                "linked": len(linked)})
            for kr in krs:
                if kr.kpi_id:
                    messages.info(request, _("“%(title)s” is measured by the KPI “%(kpi)s”.") % {
                        "title": kr.title, "kpi": kr.kpi.shown_name})
                else:
                    messages.info(request, _("“%(title)s” is checked in by hand.") % {"title": kr.title})
            _warn(request, warnings)
            return redirect("okr-objective", pk=objective.pk)
    return render(request, "okrs/form_template_load.html", {"form": form},
                  status=INVALID if data is not None else 200)
