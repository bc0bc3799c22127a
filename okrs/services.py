"""Every write to OKRs: cycles, objectives, key results, check-ins (by hand and from KPI snapshots),
initiatives and templates.

Rules:
- Everyone reads company and team OKRs (``okrs.selectors``); only the owner, the manager of the owner's team
  (or of the objective's team) and admins edit. Admins run cycles (create, activate, close).
- The seed's guidance is help, not a wall: an objective title with a number, or fewer than 2 / more than 4
  key results, gives warnings that are returned with the result.
- A key result needs a target (except a milestone) and a due date (the cycle's last day by default); start
  equal to target is refused. Changes of start, target, weight and due date are kept with who, when and
  why; once the cycle is active, a reason is required.
- Closing a cycle scores every key result (progress rounded to one decimal unless overridden with a
  comment) and locks everything but score overrides: no more check-ins or edits.
- Refusals raise ``PermissionDenied`` or ``ValidationError`` with field errors and change nothing.
"""

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from accounts.selectors import assignable_owners, editable_team_ids
from contacts.rules import clean_name
from kpis import dimensions as dims
from kpis import periods
from kpis.models import DimensionKind, Frequency, Kpi, KpiSnapshot

from . import progress as P
from . import selectors
from .models import CheckIn, Cycle, Initiative, KeyResult, KeyResultChange, Objective

MIN_KEY_RESULTS, MAX_KEY_RESULTS = 2, 4
TRACKED_FIELDS = [f.value for f in KeyResultChange.Field]


def _full_clean(instance, *, exclude=None) -> None:
    try:
        instance.full_clean(exclude=exclude, validate_constraints=False)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None


def _unknown(data: dict, allowed) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationError({str(name)[:60]: [_("Unknown field.")] for name in sorted(map(str, unknown))})


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def _decimal(value, name: str, errors: dict) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors[name] = [_("Enter a number.")]
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ".")) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        errors[name] = [_("Enter a number.")]
        return None
    if not number.is_finite() or abs(number) >= Decimal("1e15"):
        errors[name] = [_("Enter a number smaller than 10¹⁵.")]
        return None
    return number


def _date(value, name: str, errors: dict) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        errors[name] = [_("Enter a date as YYYY-MM-DD.")]
        return None


def _locked(cycle: Cycle, field: str = "cycle") -> None:
    if cycle.status == Cycle.Status.CLOSED:
        raise ValidationError({field: [_("“%(cycle)s” is closed; its OKRs can no longer change.") % {
            "cycle": cycle.name}]})


# --- permissions ---------------------------------------------------------------------------------


def _manages(user: User, *team_ids) -> bool:
    editable = editable_team_ids(user)
    if editable is None:
        return True
    return any(team_id in editable for team_id in team_ids if team_id is not None)


def can_edit_objective(user: User, objective: Objective) -> bool:
    """The owner, the manager of the objective's team or of the owner's team, and admins."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_admin or objective.owner_id == user.pk:
        return True
    return _manages(user, objective.team_id, objective.owner.team_id)


def can_edit_key_result(user: User, key_result: KeyResult) -> bool:
    """The key result's owner, whoever may edit its objective, and the manager of the owner's team."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_admin or key_result.owner_id == user.pk:
        return True
    return can_edit_objective(user, key_result.objective) or _manages(user, key_result.owner.team_id)


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise PermissionDenied(_("Only admins manage OKR cycles."))


# --- cycles --------------------------------------------------------------------------------------

CYCLE_FIELDS = ["name", "start_date", "end_date", "on_track_threshold", "at_risk_threshold", "grace_days"]


def _quarter_name(start: dt.date, end: dt.date) -> str:
    quarter = periods.containing(Frequency.QUARTERLY, start)
    if quarter.first_day == start and quarter.last_day == end:
        return quarter.label
    return f"{start.isoformat()} – {end.isoformat()}"


def _apply_cycle(cycle: Cycle, data: dict) -> None:
    errors: dict[str, list[str]] = {}
    for name in ("start_date", "end_date"):
        if name in data:
            setattr(cycle, name, _date(data[name], name, errors))
    for name in ("on_track_threshold", "at_risk_threshold"):
        if name in data:
            value = _decimal(data[name], name, errors)
            if value is None and name not in errors:
                errors[name] = [_("This field is required.")]
            setattr(cycle, name, value)
    if "grace_days" in data:
        cycle.grace_days = data["grace_days"]
    if "name" in data:
        cycle.name = clean_name(data["name"] or "")
    if errors:
        raise ValidationError(errors)
    if cycle.start_date and cycle.end_date and cycle.end_date <= cycle.start_date:
        errors["end_date"] = [_("The last day must come after the first day.")]
    if (cycle.on_track_threshold is not None and cycle.at_risk_threshold is not None
            and cycle.at_risk_threshold > cycle.on_track_threshold):
        errors["at_risk_threshold"] = [_("The at-risk threshold cannot be above the on-track threshold.")]
    if errors:
        raise ValidationError(errors)
    if not cycle.name and cycle.start_date and cycle.end_date:
        cycle.name = _quarter_name(cycle.start_date, cycle.end_date)
    if cycle.name and Cycle.objects.filter(name__iexact=cycle.name).exclude(pk=cycle.pk).exists():
        raise ValidationError({"name": [_("A cycle named “%(name)s” exists already; choose another name.") % {
            "name": cycle.name}]})
    _full_clean(cycle)
    if cycle.status == Cycle.Status.ACTIVE:
        _lock_active_cycles()
        _check_overlap(cycle, "start_date")


# A transaction-level advisory lock: the days of active cycles change one transaction at a time, so two
# overlapping cycles cannot both pass the overlap check.
ACTIVE_CYCLES_LOCK = 0x4F4B5231  # "OKR1"


def _lock_active_cycles() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ACTIVE_CYCLES_LOCK])


def _check_overlap(cycle: Cycle, field: str) -> None:
    """Two active cycles never share a day (statuses and automatic check-ins would count twice)."""
    other = (Cycle.objects.filter(status=Cycle.Status.ACTIVE, start_date__lte=cycle.end_date,
                                  end_date__gte=cycle.start_date).exclude(pk=cycle.pk).order_by("start_date").first())
    if other is not None:
        raise ValidationError({field: [_("“%(cycle)s” is active and its days (%(start)s – %(end)s) overlap this "
                                         "cycle's; close it first or move the dates.") % {
            "cycle": other.name, "start": formats.date_format(other.start_date),
            "end": formats.date_format(other.end_date)}]})


def _save_cycle(cycle: Cycle) -> None:
    """Save; a name taken meanwhile (the unique constraint) is the same field error."""
    try:
        with transaction.atomic():
            cycle.save()
    except IntegrityError:
        raise ValidationError({"name": [_("A cycle named “%(name)s” exists already; choose another name.") % {
            "name": cycle.name}]}) from None


@transaction.atomic
def cycle_create(*, actor: User, data: dict | None = None) -> Cycle:
    """A new cycle in planning; without dates, the quarter of today (named like “Q1 2026”)."""
    _require_admin(actor)
    data = dict(data or {})
    _unknown(data, CYCLE_FIELDS)
    if not data.get("start_date"):
        quarter = periods.containing(Frequency.QUARTERLY, timezone.localdate())
        data["start_date"] = quarter.first_day
        data.setdefault("end_date", quarter.last_day)
    elif not data.get("end_date"):
        errors: dict = {}
        start = _date(data["start_date"], "start_date", errors)
        if errors:
            raise ValidationError(errors)
        data["end_date"] = periods.Period(Frequency.QUARTERLY, start).end_day - dt.timedelta(days=1)
    cycle = Cycle(created_by=actor)
    _apply_cycle(cycle, data)
    _save_cycle(cycle)
    return cycle


@transaction.atomic
def cycle_update(*, actor: User, cycle: Cycle, data: dict) -> Cycle:
    """Rename a cycle, move its dates or change its thresholds (not once it is closed)."""
    _require_admin(actor)
    _unknown(data, CYCLE_FIELDS)
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    _locked(cycle)
    _apply_cycle(cycle, data)
    _save_cycle(cycle)
    return cycle


@transaction.atomic
def cycle_activate(*, actor: User, cycle: Cycle, now=None) -> Cycle:
    """Planning → active: statuses are computed from now on and changes to targets need a reason."""
    _require_admin(actor)
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    if cycle.status != Cycle.Status.PLANNING:
        raise ValidationError({"status": [_("Only a cycle in planning can be activated.")]})
    _lock_active_cycles()
    _check_overlap(cycle, "status")
    cycle.status = Cycle.Status.ACTIVE
    cycle.activated_at = _now(now)
    cycle.save(update_fields=["status", "activated_at"])
    # Key results measured by a KPI start from the snapshots already stored for the cycle's days.
    _fill_from_snapshots(list(KeyResult.objects.filter(objective__cycle=cycle, objective__archived_at__isnull=True,
                                                       kpi__isnull=False)), cycle, now=now)
    return cycle


@transaction.atomic
def cycle_close(*, actor: User, cycle: Cycle, overrides: dict | None = None, now=None) -> Cycle:
    """Active → closed: every key result gets its score (progress rounded to one decimal) and check-ins lock.

    ``overrides`` = ``{key_result_id: {"score": …, "comment": "…"}}`` replaces a computed score; each
    override needs a comment.
    """
    _require_admin(actor)
    now = _now(now)
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    if cycle.status != Cycle.Status.ACTIVE:
        raise ValidationError({"status": [_("Only an active cycle can be closed.")]})
    overrides = dict(overrides or {})
    states = selectors.key_result_states(cycle, now=now)
    known = {s.key_result.pk for s in states}
    errors: dict[str, list[str]] = {}
    for kr_id in overrides:
        if kr_id not in known:
            errors[f"overrides.{kr_id}"] = [_("Not a key result of this cycle.")]
    scores = {}
    for state in states:
        kr = state.key_result
        score, comment = state.score, ""
        if kr.pk in overrides:
            try:
                score, comment = _clean_score(overrides[kr.pk].get("score"), overrides[kr.pk].get("comment"),
                                              default=state.score)
            except ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    errors[f"overrides.{kr.pk}.{name}"] = messages
        scores[kr.pk] = (score, comment)
    if errors:
        raise ValidationError(errors)
    for state in states:
        kr = state.key_result
        kr.score, kr.score_comment = scores[kr.pk]
        kr.updated_at = now
        kr.save(update_fields=["score", "score_comment", "updated_at"])
    cycle.status = Cycle.Status.CLOSED
    cycle.closed_at = now
    cycle.closed_by = actor
    cycle.save(update_fields=["status", "closed_at", "closed_by"])
    return cycle


def _clean_score(score, comment, *, default: Decimal) -> tuple[Decimal, str]:
    errors: dict[str, list[str]] = {}
    value = _decimal(score, "score", errors)
    if value is None and not errors:
        errors["score"] = [_("Enter a score from 0.0 to 1.0.")]
    elif value is not None and not (0 <= value <= 1 and value == value.quantize(P.SCORE_PLACES)):
        errors["score"] = [_("Enter a score from 0.0 to 1.0 with one decimal.")]
    comment = (comment or "").strip()
    if not errors and value != default and not comment:
        errors["comment"] = [_("Say why the score differs from the computed %(score)s.") % {"score": default}]
    if errors:
        raise ValidationError(errors)
    return value.quantize(P.SCORE_PLACES), comment


@transaction.atomic
def key_result_score(*, actor: User, key_result: KeyResult, score, comment: str = "", now=None) -> KeyResult:
    """Override the score of a key result of a closed cycle (a different score than computed needs a comment)."""
    key_result = KeyResult.objects.select_for_update(of=("self",)).select_related("objective__cycle", "objective__owner",
                                                                      "owner").get(pk=key_result.pk)
    if not can_edit_key_result(actor, key_result):
        raise PermissionDenied(_("You may not score this key result."))
    cycle = key_result.objective.cycle
    if cycle.status != Cycle.Status.CLOSED:
        raise ValidationError({"score": [_("Key results are scored when the cycle closes.")]})
    default = P.default_score(selectors.key_result_state(key_result, now=now).progress.value)
    key_result.score, key_result.score_comment = _clean_score(score, comment, default=default)
    key_result.updated_at = _now(now)
    key_result.save(update_fields=["score", "score_comment", "updated_at"])
    return key_result


# --- objectives ----------------------------------------------------------------------------------

OBJECTIVE_FIELDS = ["title", "description", "level", "team", "owner", "parent", "order"]
_NUMBER = re.compile(r"\d")


def objective_warnings(objective: Objective, key_result_count: int | None = None) -> list[str]:
    """The seed's guidance as gentle help: numbers belong in key results; 2 to 4 key results."""
    warnings = []
    if _NUMBER.search(objective.title or ""):
        warnings.append(_("Numbers belong in key results: say in words what the objective wants to achieve "
                          "and put the number in a key result."))
    count = objective.key_results.count() if key_result_count is None else key_result_count
    if count < MIN_KEY_RESULTS:
        warnings.append(ngettext(
            "An objective usually has 2 to 4 key results; this one has %(count)d.",
            "An objective usually has 2 to 4 key results; this one has %(count)d.", count) % {"count": count})
    elif count > MAX_KEY_RESULTS:
        warnings.append(_("More than 4 key results scatter the team's focus; this one has %(count)d. "
                          "Keep the 2 to 4 that matter most.") % {"count": count})
    return warnings


def _check_parent(objective: Objective, parent: Objective | None, actor: User, errors: dict) -> None:
    if parent is None:
        return
    parent = Objective.objects.filter(pk=parent.pk).first() if parent.pk else None
    if parent is None:
        errors["parent"] = [_("Unknown objective.")]
    elif parent.cycle_id != objective.cycle_id:
        errors["parent"] = [_("An objective can only align to an objective of the same cycle.")]
    elif parent.archived_at is not None:
        errors["parent"] = [_("“%(title)s” is archived.") % {"title": parent.title}]
    elif not selectors.objectives_visible_to(actor).filter(pk=parent.pk).exists():
        errors["parent"] = [_("Unknown objective.")]
    elif objective.pk is not None:
        # Walk up from the new parent: meeting the objective itself would make a loop.
        seen, current = set(), parent
        while current is not None and current.pk not in seen:
            if current.pk == objective.pk:
                errors["parent"] = [_("“%(title)s” is aligned under this objective already; that would make a "
                                      "loop.") % {"title": parent.title}]
                return
            seen.add(current.pk)
            current = Objective.objects.filter(pk=current.parent_id).only("pk", "parent_id").first() \
                if current.parent_id else None


# Company above team above individual: an objective aligns to one at the same or a higher level.
LEVEL_RANK = {Objective.Level.COMPANY: 0, Objective.Level.TEAM: 1, Objective.Level.INDIVIDUAL: 2}


def _check_levels(objective: Objective, errors: dict, *, level_changed: bool) -> None:
    """The parent sits at the same or a higher level (company ≥ team ≥ individual); after a change of level, so
    do the objectives aligned under this one."""
    rank = LEVEL_RANK[objective.level]
    parent = objective.parent if objective.parent_id else None
    if parent is not None and LEVEL_RANK[parent.level] > rank:
        errors["parent"] = [_("A %(level)s objective cannot align to the %(parent_level)s objective “%(title)s”: "
                              "align it to an objective at the same or a higher level.") % {
            "level": Objective.Level(objective.level).label.lower(),
            "parent_level": Objective.Level(parent.level).label.lower(), "title": parent.title}]
    if level_changed and objective.pk is not None:
        below = [child for child in Objective.objects.filter(parent=objective, archived_at__isnull=True)
                 .only("pk", "title", "level").order_by("order", "id") if LEVEL_RANK[child.level] < rank]
        if below:
            errors["level"] = [_("“%(title)s” (%(child_level)s) is aligned under this objective; it cannot move to "
                                 "the %(level)s level.") % {
                "title": below[0].title, "child_level": Objective.Level(below[0].level).label.lower(),
                "level": Objective.Level(objective.level).label.lower()}]


def _apply_objective(*, actor: User, objective: Objective, data: dict, creating: bool) -> None:
    errors: dict[str, list[str]] = {}
    old_team, old_level = objective.team_id, objective.level
    if "title" in data:
        objective.title = clean_name(data["title"] or "")
    if "description" in data:
        objective.description = (data["description"] or "").strip()
    if "order" in data:
        objective.order = data["order"]
    if "level" in data:
        objective.level = data["level"]
    if "owner" in data:
        owner = data["owner"]
        if owner is None:
            errors["owner"] = [_("An objective needs an owner.")]
        elif owner.pk != objective.owner_id and not assignable_owners(actor).filter(pk=owner.pk).exists():
            errors["owner"] = [_("You cannot give objectives to %(user)s.") % {"user": owner}]
        else:
            objective.owner = owner
    if "team" in data:
        objective.team = data["team"]
    if "parent" in data:
        _check_parent(objective, data["parent"], actor, errors)
        objective.parent = data["parent"]
    if errors:
        raise ValidationError(errors)
    if objective.level not in Objective.Level.values:
        raise ValidationError({"level": [_("Choose company, team or individual.")]})
    if objective.level == Objective.Level.COMPANY:
        objective.team = None
        if not actor.is_admin:
            errors["level"] = [_("Only admins set company objectives.")]
    elif objective.level == Objective.Level.TEAM:
        if objective.team is None:
            errors["team"] = [_("Choose the team of a team objective.")]
        elif (creating or objective.team_id != old_team or objective.level != old_level) and not _manages(
                actor, objective.team_id):
            errors["team"] = [_("Only the manager of %(team)s and admins set its objectives.") % {
                "team": objective.team}]
    else:
        objective.team = objective.owner.team if objective.owner_id else None
    if not errors:
        _check_levels(objective, errors, level_changed=not creating and objective.level != old_level)
    if errors:
        raise ValidationError(errors)
    _full_clean(objective, exclude=["cycle", "owner", "team", "parent", "created_by"])


@transaction.atomic
def objective_create(*, actor: User, cycle: Cycle, data: dict) -> tuple[Objective, list[str]]:
    """A new objective in the cycle; returns it with the guidance warnings.

    Company objectives: admins. Team objectives: the team's manager and admins. Individual objectives: for
    oneself, or for someone the actor may give records to (a manager's team). The owner defaults to the actor.
    """
    _unknown(data, OBJECTIVE_FIELDS)
    _locked(cycle)
    data = dict(data)
    data.setdefault("owner", actor)
    data.setdefault("level", Objective.Level.TEAM if data.get("team") is not None else Objective.Level.INDIVIDUAL)
    objective = Objective(cycle=cycle, created_by=actor if actor.is_authenticated else None)
    _apply_objective(actor=actor, objective=objective, data=data, creating=True)
    if "order" not in data:
        objective.order = (Objective.objects.filter(cycle=cycle).aggregate(m=Max("order"))["m"] or 0) + 1
    objective.created_at = objective.updated_at = timezone.now()
    objective.save()
    return objective, objective_warnings(objective, 0)


@transaction.atomic
def objective_update(*, actor: User, objective: Objective, data: dict) -> tuple[Objective, list[str]]:
    """Change an objective (the owner, their manager, admins); returns it with the guidance warnings."""
    _unknown(data, OBJECTIVE_FIELDS)
    objective = Objective.objects.select_for_update(of=("self",)).select_related("cycle", "owner").get(pk=objective.pk)
    if not can_edit_objective(actor, objective):
        raise PermissionDenied(_("You may not edit this objective."))
    _locked(objective.cycle)
    _apply_objective(actor=actor, objective=objective, data=dict(data), creating=False)
    objective.updated_at = timezone.now()
    objective.save()
    return objective, objective_warnings(objective)


@transaction.atomic
def objective_archive(*, actor: User, objective: Objective, archived: bool = True) -> Objective:
    """Archive an objective (it leaves trees, dashboards and scoring) or bring it back."""
    objective = Objective.objects.select_for_update(of=("self",)).select_related("cycle", "owner").get(pk=objective.pk)
    if not can_edit_objective(actor, objective):
        raise PermissionDenied(_("You may not edit this objective."))
    _locked(objective.cycle)
    if not archived and objective.archived_at is not None and objective.template and objective.team_id:
        _check_template_loaded(objective.cycle, objective.team, objective.template, exclude=objective.pk)
    objective.archived_at = timezone.now() if archived else None
    objective.updated_at = timezone.now()
    objective.save(update_fields=["archived_at", "updated_at"])
    return objective


# --- key results ---------------------------------------------------------------------------------

KEY_RESULT_FIELDS = [
    "title", "kind", "start_value", "target_value", "unit", "due_date", "weight", "owner", "kpi",
    "dimension_kind", "dimension_id", "order",
]
_KPI_UNITS = {Kpi.Unit.PERCENT: KeyResult.Unit.PERCENT, Kpi.Unit.CURRENCY: KeyResult.Unit.CURRENCY,
              Kpi.Unit.CURRENCY_PER_DAY: KeyResult.Unit.CURRENCY}


def _fmt(value) -> str:
    """How a tracked value is written to the history: ``22``, ``4.25``, ``2026-03-31``, empty for none."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _apply_key_result(*, actor: User, kr: KeyResult, cycle: Cycle, data: dict) -> None:
    errors: dict[str, list[str]] = {}
    if "title" in data:
        kr.title = clean_name(data["title"] or "")
    if "kind" in data:
        kr.kind = data["kind"]
    unit_given = data.get("unit") not in (None, "")
    if unit_given:
        kr.unit = data["unit"]
    if "order" in data:
        kr.order = data["order"]
    for name in ("start_value", "target_value", "weight"):
        if name in data:
            setattr(kr, name, _decimal(data[name], name, errors))
    if "due_date" in data:
        kr.due_date = _date(data["due_date"], "due_date", errors)
        if kr.due_date is None and "due_date" not in errors:
            errors["due_date"] = [_("A key result needs a due date.")]
    if "owner" in data:
        owner = data["owner"]
        if owner is None:
            errors["owner"] = [_("A key result needs an owner.")]
        elif (owner.pk not in (kr.owner_id, kr.objective.owner_id)
              and not assignable_owners(actor).filter(pk=owner.pk).exists()):
            errors["owner"] = [_("You cannot give key results to %(user)s.") % {"user": owner}]
        else:
            kr.owner = owner
    if "kpi" in data:
        kr.kpi = data["kpi"]
        if kr.kpi is None:
            kr.dimension_kind, kr.dimension_id = "", 0
    if "dimension_kind" in data:
        kr.dimension_kind = data["dimension_kind"] or ""
    if "dimension_id" in data:
        kr.dimension_id = data["dimension_id"] or 0
    if errors:
        raise ValidationError(errors)

    if kr.kind not in KeyResult.Kind.values:
        raise ValidationError({"kind": [_("Choose how the key result is measured.")]})
    if kr.weight is None:
        kr.weight = Decimal("1")
    if kr.kind == KeyResult.Kind.MILESTONE:
        kr.start_value = kr.target_value = None
        if kr.kpi_id is not None:
            errors["kpi"] = [_("A milestone is done or not; it cannot be measured by a KPI.")]
    else:
        if kr.target_value is None:
            errors["target_value"] = [_("A key result needs a target.")]
        if kr.kind in P.TO_TARGET:
            if kr.start_value is None:
                errors["start_value"] = [_("Enter the value you start from.")]
            elif kr.target_value is not None:
                if kr.start_value == kr.target_value:
                    errors["target_value"] = [_("The target equals the start value; there would be nothing to "
                                                "measure.")]
                elif kr.kind == KeyResult.Kind.INCREASE and kr.target_value < kr.start_value:
                    errors["kind"] = [_("The target is below the start value: choose “Decrease to target”.")]
                elif kr.kind == KeyResult.Kind.DECREASE and kr.target_value > kr.start_value:
                    errors["kind"] = [_("The target is above the start value: choose “Increase to target”.")]
    if kr.due_date is not None and not cycle.start_date <= kr.due_date <= cycle.end_date:
        errors["due_date"] = [_("The due date must fall within the cycle (%(start)s – %(end)s).") % {
            "start": formats.date_format(cycle.start_date), "end": formats.date_format(cycle.end_date)}]
    if kr.kpi_id is not None:
        _check_kpi(kr, errors)
        # The KPI's unit: percent → percent, money (and money per day) → money, days and plain numbers → number.
        unit = _KPI_UNITS.get(kr.kpi.unit, KeyResult.Unit.NUMBER)
        if unit_given and kr.unit != unit and kr.kind != KeyResult.Kind.MILESTONE:
            errors["unit"] = [_("A key result measured by “%(kpi)s” is in the KPI's unit, “%(unit)s”.") % {
                "kpi": kr.kpi.shown_name, "unit": KeyResult.Unit(unit).label}]
        kr.unit = unit
    elif kr.dimension_kind or kr.dimension_id:
        errors["dimension_kind"] = [_("A dimension only applies to a key result measured by a KPI.")]
    if errors:
        raise ValidationError(errors)
    _full_clean(kr, exclude=["objective", "owner", "kpi", "current_value", "score"])


def _dimension_label(kind: str) -> str:
    """A dimension kind as a message names it ("team", "lead source" — in the reader's language)."""
    try:
        return str(DimensionKind(kind).label).lower()
    except ValueError:
        return str(kind)


def _check_kpi(kr: KeyResult, errors: dict) -> None:
    kpi = kr.kpi
    if not kpi.is_active:
        errors["kpi"] = [_("“%(kpi)s” is not active.") % {"kpi": kpi.shown_name}]
        return
    if not kr.dimension_kind:
        kr.dimension_id = 0
        return
    if kr.dimension_kind not in (kpi.dimensions or []):
        errors["dimension_kind"] = [_("“%(kpi)s” cannot be broken down by %(kind)s.") % {
            "kpi": kpi.shown_name, "kind": _dimension_label(kr.dimension_kind)}]
        return
    try:
        member_id = int(kr.dimension_id)
    except (TypeError, ValueError):
        errors["dimension_id"] = [_("Enter a whole number.")]
        return
    if not dims.members(kr.dimension_kind).filter(pk=member_id).exists():
        errors["dimension_id"] = [_("There is no %(kind)s with id %(id)s.") % {
            "kind": _dimension_label(kr.dimension_kind), "id": member_id}]
    kr.dimension_id = member_id


@transaction.atomic
def key_result_create(*, actor: User, objective: Objective, data: dict) -> tuple[KeyResult, list[str]]:
    """A new key result of the objective (whoever may edit the objective); returns it with the objective's
    guidance warnings. Owner: the objective's owner unless given; due date: the cycle's last day; unit: the
    KPI's when one is linked (another unit given for it is refused)."""
    _unknown(data, KEY_RESULT_FIELDS)
    objective = Objective.objects.select_for_update(of=("self",)).select_related("cycle", "owner").get(pk=objective.pk)
    if not can_edit_objective(actor, objective):
        raise PermissionDenied(_("You may not add key results to this objective."))
    cycle = objective.cycle
    _locked(cycle)
    data = dict(data)
    if data.get("due_date") in (None, ""):
        data["due_date"] = cycle.end_date
    kr = KeyResult(objective=objective, owner=objective.owner)
    _apply_key_result(actor=actor, kr=kr, cycle=cycle, data=data)
    if "order" not in data:
        kr.order = (KeyResult.objects.filter(objective=objective).aggregate(m=Max("order"))["m"] or 0) + 1
    kr.created_at = kr.updated_at = timezone.now()
    kr.save()
    _fill_from_snapshots([kr], cycle)
    return kr, objective_warnings(objective)


@transaction.atomic
def key_result_update(*, actor: User, key_result: KeyResult, data: dict, reason: str = "", now=None) -> KeyResult:
    """Change a key result. Changes of start, target, weight or due date are written to its history with who,
    when and why; once the cycle is active they need a ``reason``."""
    _unknown(data, KEY_RESULT_FIELDS)
    now = _now(now)
    kr = KeyResult.objects.select_for_update(of=("self",)).select_related(
        "objective__cycle", "objective__owner", "owner").get(pk=key_result.pk)
    if not can_edit_key_result(actor, kr):
        raise PermissionDenied(_("You may not edit this key result."))
    cycle = kr.objective.cycle
    _locked(cycle)
    before = {name: getattr(kr, name) for name in TRACKED_FIELDS}
    link = _link(kr)
    _apply_key_result(actor=actor, kr=kr, cycle=cycle, data=dict(data))
    changed = [name for name in TRACKED_FIELDS if getattr(kr, name) != before[name]]
    reason = (reason or "").strip()
    if changed and cycle.status != Cycle.Status.PLANNING and not reason:
        raise ValidationError({"reason": [_("The cycle is under way: say why the %(fields)s changed.") % {
            "fields": ", ".join(str(KeyResultChange.Field(name).label).lower() for name in changed)}]})
    KeyResultChange.objects.bulk_create([
        KeyResultChange(key_result=kr, field=name, old_value=_fmt(before[name]),
                        new_value=_fmt(getattr(kr, name)), changed_by=actor, changed_at=now, reason=reason)
        for name in changed
    ])
    kr.updated_at = now
    kr.save()
    if _link(kr) != link and kr.kpi_id is not None:
        _drop_other_readings(kr, now)
        _fill_from_snapshots([kr], cycle, now=now)
    return kr


@transaction.atomic
def key_result_delete(*, actor: User, key_result: KeyResult) -> list[str]:
    """Delete a key result while its cycle is in planning (later, its history is kept: archive the objective
    instead). Returns the objective's guidance warnings."""
    kr = KeyResult.objects.select_for_update(of=("self",)).select_related(
        "objective__cycle", "objective__owner", "owner").get(pk=key_result.pk)
    if not can_edit_key_result(actor, kr):
        raise PermissionDenied(_("You may not delete this key result."))
    if kr.objective.cycle.status != Cycle.Status.PLANNING:
        raise ValidationError({"key_result": [_("Key results can only be deleted while the cycle is in "
                                                "planning.")]})
    objective = kr.objective
    kr.delete()
    return objective_warnings(objective)


# --- check-ins -----------------------------------------------------------------------------------


def _confidence(value, errors: dict) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors["confidence"] = [_("Enter a whole number from 0 to 10.")]
        return None
    try:
        number = int(str(value).strip()) if isinstance(value, str) else value
    except ValueError:
        number = None
    if not isinstance(number, int) or not 0 <= number <= 10:
        errors["confidence"] = [_("Enter a whole number from 0 to 10.")]
        return None
    return number


def _refresh_current(key_result_ids) -> None:
    """Set each key result's current value to its latest check-in's value (one read, one write per change)."""
    latest = (
        CheckIn.objects.filter(key_result_id__in=list(key_result_ids), value__isnull=False)
        .order_by("key_result_id", "-measured_at", "-id")
        .distinct("key_result_id")
        .values_list("key_result_id", "value")
    )
    values = dict(latest)
    for kr in KeyResult.objects.filter(pk__in=list(key_result_ids)).only("pk", "current_value", "kind"):
        value = values.get(kr.pk)
        if kr.current_value != value:
            KeyResult.objects.filter(pk=kr.pk).update(current_value=value)


@transaction.atomic
def check_in(*, actor: User, key_result: KeyResult, value=None, confidence=None, note: str = "",
             blockers: str = "", done: bool | None = None, now=None) -> CheckIn:
    """A person's check-in: the value (a milestone: ``done``), confidence 0–10, a note and blockers.

    A key result measured by a KPI takes no value by hand (its snapshots give it); a check-in there carries
    confidence and a note only. Refused once the cycle is closed.
    """
    now = _now(now)
    kr = KeyResult.objects.select_for_update(of=("self",)).select_related(
        "objective__cycle", "objective__owner", "owner", "kpi").get(pk=key_result.pk)
    if not can_edit_key_result(actor, kr):
        raise PermissionDenied(_("You may not check in on this key result."))
    cycle = kr.objective.cycle
    if cycle.status == Cycle.Status.CLOSED:
        raise ValidationError({"key_result": [_("“%(cycle)s” is closed; check-ins are locked.") % {
            "cycle": cycle.name}]})
    errors: dict[str, list[str]] = {}
    confidence = _confidence(confidence, errors)
    number = None
    if kr.kind == KeyResult.Kind.MILESTONE:
        if done is None and value not in (None, ""):
            number = _decimal(value, "value", errors)
            if number is not None and number not in (0, 1):
                errors["value"] = [_("A milestone is done (1) or not (0).")]
            done = number == 1 if number is not None else None
        if done is None and "value" not in errors:
            errors["done"] = [_("Say whether the milestone is done.")]
        number = Decimal(1) if done else Decimal(0)
    elif kr.kpi_id is not None:
        if value not in (None, ""):
            errors["value"] = [_("“%(kpi)s” gives this key result its value; add your confidence and a note.")
                               % {"kpi": kr.kpi.shown_name}]
    else:
        number = _decimal(value, "value", errors)
        if number is None and "value" not in errors:
            errors["value"] = [_("Enter the current value.")]
    if errors:
        raise ValidationError(errors)
    row = CheckIn(key_result=kr, value=number, confidence=confidence, note=(note or "").strip(),
                  blockers=(blockers or "").strip(), author=actor, measured_at=now, created_at=now, updated_at=now)
    _full_clean(row, exclude=["key_result", "author", "snapshot"])
    row.save()
    if kr.kind == KeyResult.Kind.MILESTONE and kr.milestone_done != done:
        KeyResult.objects.filter(pk=kr.pk).update(milestone_done=done, updated_at=now)
    if number is not None:
        _refresh_current([kr.pk])
    return row


@transaction.atomic
def check_in_annotate(*, actor: User, check_in: CheckIn, confidence=None, note: str | None = None,
                      blockers: str | None = None, now=None) -> CheckIn:
    """Add (or change) the confidence, note and blockers of a check-in — typically an automatic one."""
    row = CheckIn.objects.select_for_update(of=("self",)).select_related(
        "key_result__objective__cycle", "key_result__objective__owner", "key_result__owner").get(pk=check_in.pk)
    kr = row.key_result
    if not can_edit_key_result(actor, kr):
        raise PermissionDenied(_("You may not check in on this key result."))
    if kr.objective.cycle.status == Cycle.Status.CLOSED:
        raise ValidationError({"key_result": [_("“%(cycle)s” is closed; check-ins are locked.") % {
            "cycle": kr.objective.cycle.name}]})
    if not row.is_automatic and row.author_id not in (None, actor.pk) and not actor.is_admin:
        raise PermissionDenied(_("Only its author changes a check-in."))
    errors: dict[str, list[str]] = {}
    row.confidence = _confidence(confidence, errors)
    if errors:
        raise ValidationError(errors)
    if note is not None:
        row.note = note.strip()
    if blockers is not None:
        row.blockers = blockers.strip()
    if row.is_automatic and row.author_id is None:
        row.author = actor
    row.updated_at = _now(now)
    row.save(update_fields=["confidence", "note", "blockers", "author", "updated_at"])
    return row


def _snapshot_rows(snapshots) -> list[KpiSnapshot]:
    """The snapshots with their primary keys (rows from a bulk upsert may lack them)."""
    rows = [s for s in snapshots if s.value is not None and not getattr(s, "error", "")]
    missing = [s for s in rows if s.pk is None]
    if missing:
        found = {
            (s.kpi_id, s.period_start, s.dimension_kind, s.dimension_id): s
            for s in KpiSnapshot.objects.filter(
                kpi_id__in={s.kpi_id for s in missing}, period_start__in={s.period_start for s in missing})
        }
        rows = [s if s.pk is not None else found.get((s.kpi_id, s.period_start, s.dimension_kind, s.dimension_id))
                for s in rows]
    return [s for s in rows if s is not None and s.pk is not None]


def _link(kr: KeyResult) -> tuple:
    """What measures a key result: (KPI, dimension kind, dimension id); the company row when the kind is empty."""
    return (kr.kpi_id, kr.dimension_kind, kr.dimension_id if kr.dimension_kind else 0) if kr.kpi_id else (None, "", 0)


def _fill_from_snapshots(key_results, cycle: Cycle, *, now=None) -> None:
    """A key result newly measured by a KPI (created, relinked, loaded from a template, or its cycle just
    activated) does not wait for the next snapshot: the stored snapshots of its KPI and dimension whose periods
    overlap the cycle give it its automatic check-ins at once (``checkins_from_snapshots``; active cycles
    only). Two queries and the check-ins' writes."""
    links = {_link(kr) for kr in key_results if kr.kpi_id is not None}
    if not links or cycle.status != Cycle.Status.ACTIVE:
        return
    start, end = selectors.cycle_window(cycle)
    which = Q()
    for kpi_id, kind, member in links:
        which |= Q(kpi_id=kpi_id, dimension_kind=kind, dimension_id=member)
    rows = list(KpiSnapshot.objects.filter(which, value__isnull=False, error="", period_start__lt=end,
                                           period_end__gt=start))
    checkins_from_snapshots(rows, now=now)
    current = dict(KeyResult.objects.filter(pk__in=[kr.pk for kr in key_results]).values_list("pk", "current_value"))
    for kr in key_results:
        kr.current_value = current.get(kr.pk)


def _drop_other_readings(kr: KeyResult, now) -> None:
    """A key result moved to another KPI or dimension: the automatic check-ins of the old one leave its series
    (they measured something else). Those people annotated keep their confidence, note and blockers without
    a value."""
    kpi_id, kind, member = _link(kr)
    old = CheckIn.objects.filter(key_result=kr, is_automatic=True).exclude(
        snapshot__kpi_id=kpi_id, snapshot__dimension_kind=kind, snapshot__dimension_id=member)
    rows = list(old.values_list("pk", "confidence", "note", "blockers"))
    annotated = [pk for pk, confidence, note, blockers in rows if confidence is not None or note or blockers]
    CheckIn.objects.filter(pk__in=annotated).update(value=None, snapshot=None, updated_at=now)
    CheckIn.objects.filter(pk__in=[row[0] for row in rows if row[0] not in annotated]).delete()
    _refresh_current([kr.pk])


@transaction.atomic
def checkins_from_snapshots(snapshots, *, now=None) -> list[CheckIn]:
    """Automatic check-ins from KPI snapshots: for every key result linked to the snapshot's KPI and dimension
    (company when the key result's dimension is empty) in an active cycle whose days overlap the snapshot's
    period, create the check-in of that snapshot — or update it when the snapshot was recomputed (one per key
    result and snapshot). Snapshots without a value are skipped. People's confidence and notes are kept.

    Returns the check-ins created or changed. A handful of queries whatever the number of snapshots.
    """
    now = _now(now)
    rows = _snapshot_rows(snapshots)
    if not rows:
        return []
    key_results = list(
        KeyResult.objects.filter(
            kpi_id__in={s.kpi_id for s in rows}, objective__cycle__status=Cycle.Status.ACTIVE,
            objective__archived_at__isnull=True,
        ).select_related("objective__cycle")
    )
    by_key: dict[tuple, list[KeyResult]] = {}
    for kr in key_results:
        by_key.setdefault((kr.kpi_id, kr.dimension_kind, kr.dimension_id if kr.dimension_kind else 0), []).append(kr)
    pairs = []
    for snap in rows:
        for kr in by_key.get((snap.kpi_id, snap.dimension_kind, snap.dimension_id), []):
            start, end = selectors.cycle_window(kr.objective.cycle)
            if snap.period_start < end and snap.period_end > start:
                pairs.append((kr, snap))
    if not pairs:
        return []
    existing = {
        (row.key_result_id, row.snapshot_id): row
        for row in CheckIn.objects.select_for_update().filter(
            key_result_id__in={kr.pk for kr, _s in pairs}, snapshot_id__in={s.pk for _kr, s in pairs})
    }
    changed = []
    for kr, snap in pairs:
        measured_at = min(snap.computed_at, snap.period_end)
        row = existing.get((kr.pk, snap.pk))
        if row is None:
            row = CheckIn(key_result=kr, snapshot=snap, value=snap.value, is_automatic=True, measured_at=measured_at,
                          created_at=now, updated_at=now)
            try:
                with transaction.atomic():
                    row.save()
            except IntegrityError:
                # Another run wrote it meanwhile: update that one.
                row = CheckIn.objects.select_for_update().get(key_result=kr, snapshot=snap)
            else:
                existing[(kr.pk, snap.pk)] = row
                changed.append(row)
                continue
        if row.value != snap.value or row.measured_at != measured_at:
            row.value, row.measured_at, row.updated_at = snap.value, measured_at, now
            row.save(update_fields=["value", "measured_at", "updated_at"])
            changed.append(row)
    if changed:
        _refresh_current({row.key_result_id for row in changed})
    return changed


# --- initiatives ---------------------------------------------------------------------------------

INITIATIVE_FIELDS = ["title", "owner", "status", "due_date"]


def _apply_initiative(*, actor: User, initiative: Initiative, data: dict) -> None:
    errors: dict[str, list[str]] = {}
    if "title" in data:
        initiative.title = clean_name(data["title"] or "")
    if "status" in data:
        initiative.status = data["status"]
    if "due_date" in data:
        initiative.due_date = _date(data["due_date"], "due_date", errors)
    if "owner" in data:
        owner = data["owner"]
        if owner is None:
            errors["owner"] = [_("An initiative needs an owner.")]
        elif owner.pk != initiative.owner_id and not assignable_owners(actor).filter(pk=owner.pk).exists():
            errors["owner"] = [_("You cannot give initiatives to %(user)s.") % {"user": owner}]
        else:
            initiative.owner = owner
    if errors:
        raise ValidationError(errors)
    _full_clean(initiative, exclude=["key_result", "owner"])


def _initiative_key_result(key_result_id: int) -> KeyResult:
    return KeyResult.objects.select_related("objective__cycle", "objective__owner", "owner").get(pk=key_result_id)


@transaction.atomic
def initiative_create(*, actor: User, key_result: KeyResult, data: dict) -> Initiative:
    """An action planned for a key result (whoever may edit the key result); the owner defaults to the actor."""
    _unknown(data, INITIATIVE_FIELDS)
    kr = _initiative_key_result(key_result.pk)
    if not can_edit_key_result(actor, kr):
        raise PermissionDenied(_("You may not plan initiatives for this key result."))
    _locked(kr.objective.cycle)
    data = dict(data)
    initiative = Initiative(key_result=kr, owner=data.pop("owner", None) or actor)
    if initiative.owner_id != actor.pk and not assignable_owners(actor).filter(pk=initiative.owner_id).exists():
        raise ValidationError({"owner": [_("You cannot give initiatives to %(user)s.") % {"user": initiative.owner}]})
    _apply_initiative(actor=actor, initiative=initiative, data=data)
    initiative.created_at = initiative.updated_at = timezone.now()
    initiative.save()
    return initiative


def _can_edit_initiative(actor: User, initiative: Initiative) -> bool:
    return initiative.owner_id == actor.pk or can_edit_key_result(actor, initiative.key_result)


@transaction.atomic
def initiative_update(*, actor: User, initiative: Initiative, data: dict) -> Initiative:
    """Change an initiative (its owner, or whoever may edit the key result)."""
    _unknown(data, INITIATIVE_FIELDS)
    initiative = Initiative.objects.select_for_update().get(pk=initiative.pk)
    initiative.key_result = _initiative_key_result(initiative.key_result_id)
    if not _can_edit_initiative(actor, initiative):
        raise PermissionDenied(_("You may not edit this initiative."))
    _locked(initiative.key_result.objective.cycle)
    _apply_initiative(actor=actor, initiative=initiative, data=dict(data))
    initiative.updated_at = timezone.now()
    initiative.save()
    return initiative


@transaction.atomic
def initiative_delete(*, actor: User, initiative: Initiative) -> None:
    initiative = Initiative.objects.select_for_update().get(pk=initiative.pk)
    initiative.key_result = _initiative_key_result(initiative.key_result_id)
    if not _can_edit_initiative(actor, initiative):
        raise PermissionDenied(_("You may not delete this initiative."))
    _locked(initiative.key_result.objective.cycle)
    initiative.delete()


# --- templates -----------------------------------------------------------------------------------


def _baseline(kpi: Kpi, dimension_kind: str, dimension_id: int, now) -> Decimal | None:
    """The KPI's latest stored value for the dimension, else its value for the last finished period."""
    value = (
        KpiSnapshot.objects.filter(kpi=kpi, dimension_kind=dimension_kind, dimension_id=dimension_id,
                                   value__isnull=False, period_start__lte=now, error="")
        .order_by("-period_start").values_list("value", flat=True).first()
    )
    if value is not None:
        return value
    from kpis.formula import FormulaError
    from kpis.services import evaluate

    period = periods.containing(kpi.frequency, now).previous()
    dimension = dims.Dimension(dimension_kind, dimension_id) if dimension_kind else None
    try:
        return evaluate(kpi, period, dimension)
    except FormulaError:
        return None


def _add_months(day: dt.date, months: int) -> dt.date:
    """The day before the same day ``months`` later: 1 January + 3 months → 31 March."""
    index = day.year * 12 + day.month - 1 + months
    year, month = index // 12, index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, candidate) - dt.timedelta(days=1)
        except ValueError:
            continue
    raise ValueError(day)


def _check_template_loaded(cycle: Cycle, team, key: str, *, exclude: int | None = None) -> None:
    """A template is loaded once per cycle and team (archiving the objective it gave frees it)."""
    existing = (Objective.objects.filter(cycle=cycle, team=team, template=key, archived_at__isnull=True)
                .exclude(pk=exclude).order_by("id").first())
    if existing is not None:
        raise ValidationError({"template": [_("This template is already loaded for %(team)s in %(cycle)s: "
                                              "“%(objective)s”. Edit that objective, or archive it to load the "
                                              "template again.") % {
            "team": team.name, "cycle": cycle.name, "objective": existing.title}]})


def _due_in_months(cycle: Cycle, months: int, now: dt.datetime) -> dt.date:
    """"Within N months" counted from the day the template is loaded (the cycle's first day when loaded before
    it starts), never after the cycle's last day: loaded on 23 November into Q4, "within 1 month" is due on
    22 December, "within 2 months" on 31 December."""
    today = timezone.localtime(now, periods.company_tz()).date()
    return min(cycle.end_date, _add_months(max(today, cycle.start_date), months))


@transaction.atomic
def load_template(*, cycle: Cycle, team, template_key: str, actor: User, owner: User | None = None,
                  parent: Objective | None = None, now=None) -> tuple[Objective, list[str]]:
    """Create the template's objective and key results in the cycle for the team (the team's manager or an
    admin). Key results with a matching built-in KPI are linked to it for the team (or the company when the KPI
    cannot be broken down by team). A relative target ("−20 %") starts from the KPI's latest value; without
    one the key result is kept by hand as a percentage change. An absolute one ("from 22 % to 30 %") starts from
    the KPI's latest value when the team has one and has not reached the target yet; when it has, the
    template's numbers stay and a warning says to adjust them. Returns the objective and the warnings.
    """
    from .templates_data import TEMPLATES

    now = _now(now)
    if team is None or not _manages(actor, team.pk):
        raise PermissionDenied(_("Only the team's manager and admins load templates for a team."))
    template = TEMPLATES.get(template_key)
    if template is None:
        raise ValidationError({"template": [_("Unknown template “%(key)s”; choose one of: %(keys)s.") % {
            "key": str(template_key)[:40], "keys": ", ".join(TEMPLATES)}]})
    # One load at a time per cycle, so two at once cannot both pass the check below.
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    _check_template_loaded(cycle, team, template.key)
    data = {"title": str(template.objective), "description": str(template.description), "level": "team",
            "team": team, "owner": owner or (team.manager if team is not None and team.manager else actor)}
    if parent is not None:
        data["parent"] = parent
    objective, _warnings = objective_create(actor=actor, cycle=cycle, data=data)
    objective.template = template.key
    objective.save(update_fields=["template"])
    notes = []
    kpis = {k.slug: k for k in Kpi.objects.filter(slug__in=[kr.kpi for kr in template.key_results if kr.kpi],
                                                   is_active=True)}
    for item in template.key_results:
        spec = {"title": str(item.title), "kind": item.kind, "unit": item.unit}
        if item.due_in_months:
            spec["due_date"] = _due_in_months(cycle, item.due_in_months, now)
        kpi = kpis.get(item.kpi) if item.kpi else None
        kind = dims.DimensionKind.TEAM if kpi and team is not None and "team" in (kpi.dimensions or []) else ""
        member = team.pk if kind else 0
        start, target = item.start, item.target
        if kpi is not None and item.relative is not None:
            start = _baseline(kpi, kind, member, now)
            if start is not None and start != 0:
                start = start.quantize(Decimal("0.01"))
                target = (start * (1 + item.relative) if item.relative_is_share else start + item.relative)
                target = target.quantize(Decimal("0.01"))
            else:
                kpi, start = None, None
        elif kpi is not None and start is not None and target is not None:
            # Stated as "from 22 % to 30 %": the team's own value is the start when it still has to reach the
            # target; when it is there already the example numbers stay, with a warning to adjust them.
            current = _baseline(kpi, kind, member, now)
            if current is not None:
                current = current.quantize(Decimal("0.01"))
                reached = current >= target if item.kind == KeyResult.Kind.INCREASE else current <= target
                if not reached:
                    start = current
                elif item.kind == KeyResult.Kind.INCREASE:
                    notes.append(_("“%(title)s”: %(kpi)s is already at %(value)s, at or above the target "
                                   "%(target)s: adjust it.") % {"title": item.title, "kpi": kpi.shown_name,
                                                                "value": _fmt(current), "target": _fmt(target)})
                else:
                    notes.append(_("“%(title)s”: %(kpi)s is already at %(value)s, at or below the target "
                                   "%(target)s: adjust it.") % {"title": item.title, "kpi": kpi.shown_name,
                                                                "value": _fmt(current), "target": _fmt(target)})
        if kpi is None and item.relative is not None:
            # No KPI (or no value yet): track the change itself, 0 → the percentage, by hand.
            spec.update({"kind": KeyResult.Kind.INCREASE, "unit": item.fallback_unit})
            start, target = Decimal("0"), item.fallback_target
            if item.kpi:
                notes.append(_("“%(title)s” has no KPI value to start from yet; it is kept by hand as a change "
                               "from 0 to %(target)s.") % {"title": item.title, "target": target})
        spec.update({"start_value": start, "target_value": target})
        if kpi is not None:
            spec.update({"kpi": kpi, "dimension_kind": kind, "dimension_id": member})
        key_result_create(actor=actor, objective=objective, data=spec)
    return objective, notes + objective_warnings(objective)
