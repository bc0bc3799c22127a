"""Every write to pipelines, stages and deals.

The stage-move rule (exit criteria, skipping, lost reasons, close times) lives in ``deal_move`` and
nowhere else: the board, the deal form, the API and automations all call it, so no door can skip it.
Writes record domain events through the outbox in the same transaction.
"""

import re
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max, ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from accounts.selectors import assignable_owners
from contacts.models import Company, Contact, Entity, LeadSource
from contacts.rules import EntityRules, clean_name
from contacts.selectors import can_edit, companies_visible_to, contacts_visible_to
from crm_okr import events, history
from crm_okr.text import fold

from . import criteria
from .models import Deal, LostReason, Pipeline, Stage, StageChange

DEAL_FIELDS = [
    "name", "amount", "currency", "expected_close_date", "owner", "contact", "company", "lead_source",
]
HISTORY_FIELDS = DEAL_FIELDS + ["pipeline", "lost_reason", "lost_note"]


# --- pipelines and stages ------------------------------------------------------------------------


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise PermissionDenied(_("Only admins change pipelines and stages."))


def default_stages() -> list[dict]:
    """The stages a new pipeline starts with (named in the creating admin's language)."""
    return [
        {"name": _("Qualified"), "probability": 10},
        {"name": _("Contact made"), "probability": 20},
        {"name": _("Meeting / demo"), "probability": 40},
        {"name": _("Proposal sent"), "probability": 60, "exit_criteria": ["amount", "expected_close_date"]},
        {"name": _("Negotiation"), "probability": 80},
        {"name": _("Won"), "probability": 100, "kind": Stage.Kind.WON},
        {"name": _("Lost"), "probability": 0, "kind": Stage.Kind.LOST},
    ]


def default_pipeline() -> Pipeline | None:
    return Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.first()


def _full_clean(instance, *, exclude=None) -> None:
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None


def _same_name(name: str, others) -> bool:
    """Whether ``name`` equals one of ``others`` ignoring case and accents ("IŞIK", "ışık" and "Isik" are one name)."""
    key = fold(name)
    return any(fold(other) == key for other in others)


def _check_pipeline_name(name: str, *, exclude_pk: int | None = None) -> None:
    others = Pipeline.objects.exclude(pk=exclude_pk).values_list("name", flat=True)
    if name and _same_name(name, others):
        raise ValidationError({"name": _("There is already a pipeline called “%(name)s”.") % {"name": name}})


def _check_stage_name(stage: Stage, others) -> None:
    if stage.name and _same_name(stage.name, others):
        raise ValidationError({"name": _("“%(pipeline)s” already has a stage called “%(name)s”.") % {
            "pipeline": stage.pipeline.name, "name": stage.name}})


def _unknown_stage_fields(data: dict, allowed) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationError({str(name)[:60]: _("Unknown field.") for name in sorted(map(str, unknown))})


@transaction.atomic
def pipeline_create(*, actor: User, name: str, is_default: bool = False, stages: list[dict] | None = None) -> Pipeline:
    """A new pipeline with its stages (the default set unless given); the first one becomes the default."""
    _require_admin(actor)
    _lock_default()
    order = (Pipeline.objects.aggregate(m=Max("order"))["m"] or 0) + 1
    first = not Pipeline.objects.exists()
    pipeline = Pipeline(name=clean_name(name), is_default=is_default or first, order=order)
    _check_pipeline_name(pipeline.name)
    _full_clean(pipeline, exclude=["is_default"])
    if pipeline.is_default:
        Pipeline.objects.filter(is_default=True).update(is_default=False)
    pipeline.save()
    specs = stages if stages is not None else default_stages()
    if not isinstance(specs, list | tuple) or not all(isinstance(spec, dict) for spec in specs):
        raise ValidationError({"stages": _("Expected a list of stages.")})
    names: list[str] = []
    created = []
    for spec in specs:
        _unknown_stage_fields(spec, STAGE_FIELDS)
        stage = Stage(pipeline=pipeline, **{k: v for k, v in spec.items() if k != "exit_criteria"})
        stage.name = clean_name(stage.name)
        stage.exit_criteria = criteria.clean(spec.get("exit_criteria"))
        _check_stage_name(stage, names)
        _full_clean(stage, exclude=["order"])
        names.append(stage.name)
        created.append(stage)
    # Open stages first, in the given order, then the won and lost ones.
    for position, stage in enumerate(_in_pipeline_order(created), start=1):
        stage.order = position
        stage.save()
    _check_pipeline_shape(pipeline)
    return pipeline


def _lock_default() -> None:
    """Wait for any other change of the default pipeline, so two admins switching it never collide."""
    list(Pipeline.objects.select_for_update().filter(is_default=True).values_list("pk", flat=True))


@transaction.atomic
def pipeline_update(*, actor: User, pipeline: Pipeline, name: str | None = None, is_default: bool | None = None,
                    order: int | None = None) -> Pipeline:
    """Rename a pipeline, move it in the list, or make it the default (the old default stops being one)."""
    _require_admin(actor)
    if is_default:
        _lock_default()
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    if name is not None:
        pipeline.name = clean_name(name)
        _check_pipeline_name(pipeline.name, exclude_pk=pipeline.pk)
    if order is not None:
        pipeline.order = order
    if is_default is False and pipeline.is_default:
        raise ValidationError({"is_default": _("Make another pipeline the default instead.")})
    _full_clean(pipeline, exclude=["is_default"])
    if is_default and not pipeline.is_default:
        Pipeline.objects.filter(is_default=True).update(is_default=False)
        pipeline.is_default = True
    pipeline.save()
    return pipeline


@transaction.atomic
def pipeline_delete(*, actor: User, pipeline: Pipeline) -> None:
    """Delete a pipeline and its stages: refused while it holds deals, or while it is the default and others exist."""
    _require_admin(actor)
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    count = Deal.objects.filter(pipeline=pipeline).count()
    if count:
        raise ValidationError({"pipeline": ngettext(
            "“%(name)s” still holds %(count)d deal; it cannot be deleted.",
            "“%(name)s” still holds %(count)d deals; it cannot be deleted.", count,
        ) % {"name": pipeline.name, "count": count}})
    if pipeline.is_default and Pipeline.objects.exclude(pk=pipeline.pk).exists():
        raise ValidationError({"pipeline": _("Make another pipeline the default before deleting this one.")})
    try:
        with transaction.atomic():
            pipeline.delete()
    except ProtectedError:
        # A deal was added to it while we were deciding.
        raise ValidationError({"pipeline": _(
            "“%(name)s” received a deal meanwhile; it cannot be deleted.") % {"name": pipeline.name}}) from None


def _check_pipeline_shape(pipeline: Pipeline) -> None:
    """A pipeline needs at least one open stage, one won stage and one lost stage."""
    kinds = set(Stage.objects.filter(pipeline=pipeline).values_list("kind", flat=True))
    missing = [label for kind, label in Stage.Kind.choices if kind not in kinds]
    if missing:
        raise ValidationError({"stages": _("A pipeline needs at least one stage of each kind; missing: %(kinds)s.")
                               % {"kinds": ", ".join(str(m) for m in missing)}})


STAGE_FIELDS = ["name", "kind", "probability", "rotting_days", "exit_criteria", "allow_skip"]


def _in_pipeline_order(stages: list[Stage]) -> list[Stage]:
    """Open stages first, won and lost stages after them; otherwise as given (a stable sort)."""
    return sorted(stages, key=lambda s: s.kind != Stage.Kind.OPEN)


@transaction.atomic
def stage_create(*, actor: User, pipeline: Pipeline, data: dict) -> Stage:
    """Add a stage; open stages go after the last open stage unless an order is given, won/lost at the end.

    Open stages always come before the won and lost ones, whatever ``order`` says.
    """
    _require_admin(actor)
    _unknown_stage_fields(data, [*STAGE_FIELDS, "order"])
    stage = Stage(pipeline=pipeline, **{k: v for k, v in data.items() if k not in {"exit_criteria", "order"}})
    stage.name = clean_name(stage.name)
    stage.exit_criteria = criteria.clean(data.get("exit_criteria"))
    stages = list(Stage.objects.select_for_update().filter(pipeline=pipeline).order_by("order", "id"))
    _check_stage_name(stage, [s.name for s in stages])
    if data.get("order") is None:
        if stage.kind == Stage.Kind.OPEN:
            closed = [s for s in stages if s.kind != Stage.Kind.OPEN]
            position = stages.index(closed[0]) if closed else len(stages)
        else:
            position = len(stages)
    else:
        try:
            position = max(0, min(int(data["order"]) - 1, len(stages)))
        except (TypeError, ValueError):
            raise ValidationError({"order": _("Enter a whole number.")}) from None
    _full_clean(stage, exclude=["order"])
    stage.order = len(stages) + 1
    stage.save()
    stages.insert(position, stage)
    _renumber(_in_pipeline_order(stages))
    return stage


@transaction.atomic
def stage_update(*, actor: User, stage: Stage, data: dict) -> Stage:
    """Rename or re-tune a stage. A new rotting limit re-dates the staleness of the deals in it at once."""
    _require_admin(actor)
    _unknown_stage_fields(data, STAGE_FIELDS)
    stage = Stage.objects.select_for_update().select_related("pipeline").get(pk=stage.pk)
    old_kind, old_rotting = stage.kind, stage.rotting_days
    for name, value in data.items():
        setattr(stage, name, value)
    stage.name = clean_name(stage.name)
    if "exit_criteria" in data:
        stage.exit_criteria = criteria.clean(data["exit_criteria"])
    if "name" in data:
        _check_stage_name(stage, Stage.objects.filter(pipeline_id=stage.pipeline_id).exclude(pk=stage.pk)
                          .values_list("name", flat=True))
    _full_clean(stage)
    if stage.kind != old_kind and Deal.objects.filter(stage=stage).exists():
        raise ValidationError({"kind": _("The stage holds deals; move them before changing its kind.")})
    stage.save()
    if stage.kind != old_kind:
        _check_pipeline_shape(stage.pipeline)
        _renumber(_in_pipeline_order(list(stage.pipeline.stages.order_by("order", "id"))))
        stage.refresh_from_db(fields=["order"])
    if stage.rotting_days != old_rotting:
        Deal.objects.filter(stage=stage, status=Deal.Status.OPEN).update(
            rots_at=F("stage_entered_at") + timedelta(days=stage.rotting_days)
        )
    return stage


def _renumber(stages: list[Stage]) -> None:
    for position, stage in enumerate(stages, start=1):
        if stage.order != position:
            stage.order = position
            Stage.objects.filter(pk=stage.pk).update(order=position)


@transaction.atomic
def stages_reorder(*, actor: User, pipeline: Pipeline, stage_ids: list[int]) -> list[Stage]:
    """Put the pipeline's stages in the given order (every stage of the pipeline, each once).

    The open stages must come before the won and lost ones.
    """
    _require_admin(actor)
    stages = {s.pk: s for s in Stage.objects.select_for_update().filter(pipeline=pipeline).order_by("pk")}
    if not isinstance(stage_ids, list) or sorted(map(str, stage_ids)) != sorted(map(str, stages)):
        raise ValidationError({"stages": _("List every stage of “%(pipeline)s” exactly once.") % {
            "pipeline": pipeline.name}})
    ordered = [stages[int(pk)] for pk in stage_ids]
    if ordered != _in_pipeline_order(ordered):
        raise ValidationError({"stages": _("Won and lost stages come after the open stages.")})
    _renumber(ordered)
    return ordered


@transaction.atomic
def stage_delete(*, actor: User, stage: Stage, move_to: Stage | None = None) -> int:
    """Delete a stage; its deals must be moved to another stage of the same kind. Returns how many moved.

    Each moved deal gets a stage-history row and starts its time (and its rotting limit) in the new stage.
    """
    _require_admin(actor)
    stage = Stage.objects.select_for_update().select_related("pipeline").get(pk=stage.pk)
    deals = Deal.objects.filter(stage=stage)
    rows = list(deals.select_for_update().order_by("pk").values_list("pk", "stage_entered_at"))
    count = len(rows)
    if count and move_to is None:
        raise ValidationError({"move_to": ngettext(
            "“%(stage)s” still holds %(count)d deal. Choose a stage to move it to before deleting it.",
            "“%(stage)s” still holds %(count)d deals. Choose a stage to move them to before deleting it.", count,
        ) % {"stage": stage.name, "count": count}})
    if move_to is not None:
        if move_to.pk == stage.pk or move_to.pipeline_id != stage.pipeline_id:
            raise ValidationError({"move_to": _("Choose another stage of the same pipeline.")})
        if move_to.kind != stage.kind:
            raise ValidationError({"move_to": _("Deals can only be moved to a stage of the same kind (%(kind)s).")
                                   % {"kind": stage.get_kind_display()}})
    if count:
        now = timezone.now()
        StageChange.objects.bulk_create([
            StageChange(
                deal_id=pk, from_stage=stage, from_stage_name=stage.name, to_stage=move_to,
                to_stage_name=move_to.name, direction=StageChange.Direction.MOVED, changed_at=now, actor=actor,
                seconds_in_from_stage=max(0, int((now - entered).total_seconds())),
            )
            for pk, entered in rows
        ], batch_size=2000)
        update = {"stage": move_to, "stage_entered_at": now, "updated_at": now}
        if move_to.kind == Stage.Kind.OPEN:
            update["rots_at"] = now + timedelta(days=move_to.rotting_days)
        Deal.objects.filter(pk__in=[pk for pk, _entered in rows]).update(**update)
    pipeline = stage.pipeline
    try:
        with transaction.atomic():
            stage.delete()
    except ProtectedError:
        # A deal was moved into the stage while we were moving the others out.
        raise ValidationError({"move_to": _(
            "A deal entered “%(stage)s” meanwhile; try again.") % {"stage": stage.name}}) from None
    _check_pipeline_shape(pipeline)
    _renumber(list(pipeline.stages.order_by("order", "id")))
    return count


# --- deals ---------------------------------------------------------------------------------------


def _payload(deal: Deal) -> dict:
    return {
        "name": deal.name, "pipeline_id": deal.pipeline_id, "stage_id": deal.stage_id, "status": deal.status,
        "amount": str(deal.amount) if deal.amount is not None else None, "currency": deal.currency,
        "owner_id": deal.owner_id, "team_id": deal.team_id, "contact_id": deal.contact_id,
        "company_id": deal.company_id,
    }


def _check_links(actor: User, deal: Deal, data: dict, errors: dict) -> None:
    """The contact and company must be ones the actor sees; the owner one they may give records to."""
    if data.get("contact") is not None and not contacts_visible_to(actor).filter(pk=data["contact"].pk).exists():
        errors["contact"] = [_("Unknown contact.")]
    if data.get("company") is not None and not companies_visible_to(actor).filter(pk=data["company"].pk).exists():
        errors["company"] = [_("Unknown company.")]
    if "owner" in data and data["owner"] is not None and data["owner"].pk != deal.owner_id:
        if not assignable_owners(actor).filter(pk=data["owner"].pk).exists():
            errors["owner"] = [_("You cannot give deals to %(user)s.") % {"user": data["owner"]}]
    if "owner" in data and data["owner"] is None and not actor.sees_everything:
        # A deal without an owner has no team either, so it would vanish from the rep's and manager's view.
        errors["owner"] = [_("A deal needs an owner.")]


def _clean_deal_data(data: dict) -> dict:
    data = dict(data)
    if "name" in data:
        data["name"] = clean_name(data["name"])
    if "currency" in data and isinstance(data["currency"], str):
        data["currency"] = data["currency"].strip().upper() or settings.CRM_CURRENCY
    if "lost_note" in data and data["lost_note"] is None:
        data["lost_note"] = ""
    return data


def _validate_deal(deal: Deal, rules: EntityRules) -> None:
    errors = {}
    try:
        deal.full_clean(exclude=["owner", "team", "created_by", "pipeline", "stage", "contact", "company",
                                 "lead_source", "lost_reason"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if deal.currency and not re.fullmatch(r"[A-Z]{3}", deal.currency):
        errors.setdefault("currency", [_("Use a three-letter ISO currency code such as TRY, EUR or USD.")])
    for name, message in rules.missing_required(deal).items():
        errors.setdefault(name, [message])
    if errors:
        raise ValidationError(errors)


def _set_search(deal: Deal) -> None:
    deal.search_text = fold(deal.name)


def _snapshot(deal: Deal) -> dict:
    snap = history.snapshot(deal, HISTORY_FIELDS)
    for key, value in (deal.custom_fields or {}).items():
        snap[f"custom_fields.{key}"] = str(value)
    return snap


@transaction.atomic
def deal_create(*, actor: User, data: dict) -> Deal:
    """Create a deal in an open stage of its pipeline (the default pipeline's first stage unless given).

    The owner defaults to the actor; the company and the lead source default to the contact's.
    """
    data = _clean_deal_data(data)
    unknown = set(data) - set(DEAL_FIELDS) - {"pipeline", "stage", "custom_fields"}
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    errors: dict[str, list[str]] = {}
    pipeline, stage = data.pop("pipeline", None), data.pop("stage", None)
    if stage is not None and pipeline is None:
        pipeline = stage.pipeline
    pipeline = pipeline or default_pipeline()
    if pipeline is None:
        raise ValidationError({"pipeline": _("There is no pipeline yet; an admin must create one.")})
    if stage is None:
        stage = pipeline.stages.filter(kind=Stage.Kind.OPEN).order_by("order", "id").first()
    elif stage.pipeline_id != pipeline.pk:
        errors["stage"] = [_("“%(stage)s” is not a stage of “%(pipeline)s”.") % {
            "stage": stage.name, "pipeline": pipeline.name}]
    elif stage.kind != Stage.Kind.OPEN:
        errors["stage"] = [_("A new deal starts in an open stage.")]
    if stage is None:
        errors["stage"] = [_("“%(pipeline)s” has no open stage.") % {"pipeline": pipeline.name}]
    owner = data.pop("owner", actor if actor.role != User.Role.INTEGRATION else None)
    deal = Deal(pipeline=pipeline, created_by=actor if actor.is_authenticated else None)
    _check_links(actor, deal, {**data, "owner": owner}, errors)
    rules = EntityRules.load(Entity.DEAL)
    try:
        deal.custom_fields = rules.clean_custom_fields(data.pop("custom_fields", None))
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    contact: Contact | None = data.get("contact")
    if contact is not None:
        if data.get("company") is None and contact.company_id:
            data["company"] = Company.objects.filter(pk=contact.company_id).first()
        if data.get("lead_source") is None and contact.lead_source_id:
            data["lead_source"] = LeadSource.objects.filter(pk=contact.lead_source_id).first()
    for name, value in data.items():
        setattr(deal, name, value)
    now = timezone.now()
    deal.owner = owner
    deal.team_id = owner.team_id if owner is not None else None
    deal.stage = stage
    deal.status = Deal.Status.OPEN
    deal.created_at = deal.updated_at = deal.stage_entered_at = now
    deal.rots_at = now + timedelta(days=stage.rotting_days)
    _set_search(deal)
    _validate_deal(deal, rules)
    deal.save()
    StageChange.objects.create(
        deal=deal, to_stage=stage, to_stage_name=stage.name, direction=StageChange.Direction.CREATED,
        changed_at=now, actor=actor if actor.is_authenticated else None,
    )
    events.record("deal.created", deal, actor=actor, data=_payload(deal))
    return deal


@transaction.atomic
def deal_update(*, actor: User, deal: Deal, data: dict) -> Deal:
    """Change some fields of a deal; a new ``stage`` in the data is a move (see ``deal_move``)."""
    if not can_edit(actor, deal):
        raise PermissionDenied(_("You may not edit this deal."))
    data = _clean_deal_data(data)
    stage = data.pop("stage", None)
    lost_reason = data.pop("lost_reason", None)
    lost_note = data.pop("lost_note", None)
    if data.get("pipeline") is not None and data["pipeline"].pk == deal.pipeline_id:
        data.pop("pipeline")
    if "pipeline" in data:
        if stage is None:
            raise ValidationError({"stage": _("Choose the stage of the new pipeline.")})
    if stage is not None and stage.pk != deal.stage_id:
        return deal_move(actor=actor, deal=deal, stage=stage, lost_reason=lost_reason, lost_note=lost_note or "",
                         changes=data)
    return _apply_changes(actor=actor, deal=deal, data=data)


def _apply_changes(*, actor: User, deal: Deal, data: dict, lock: bool = True) -> Deal:
    unknown = set(data) - set(DEAL_FIELDS) - {"custom_fields", "pipeline"}
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    if lock:
        deal = Deal.objects.select_for_update().get(pk=deal.pk)
    if "pipeline" in data:
        raise ValidationError({"pipeline": _("Move the deal to a stage of the other pipeline to change pipeline.")})
    errors: dict[str, list[str]] = {}
    _check_links(actor, deal, data, errors)
    rules = EntityRules.load(Entity.DEAL)
    try:
        custom = rules.clean_custom_fields(data.pop("custom_fields", None), current=deal.custom_fields)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        custom = deal.custom_fields
    if errors:
        raise ValidationError(errors)
    before = _snapshot(deal)
    deal.custom_fields = custom
    if "owner" in data:
        deal.team_id = data["owner"].team_id if data["owner"] is not None else None
    for name, value in data.items():
        setattr(deal, name, value)
    _set_search(deal)
    _validate_deal(deal, rules)
    changes = history.record_changes(instance=deal, before=before, after=_snapshot(deal), actor=actor)
    if changes:
        deal.updated_at = timezone.now()
        deal.save()
        events.record("deal.updated", deal, actor=actor, data=_payload(deal) | {"changed": changes})
    return deal


def _ordered(stage: Stage) -> tuple[int, int]:
    return (stage.order, stage.pk)


def _direction(source: Stage, target: Stage) -> str:
    if target.kind == Stage.Kind.WON:
        return StageChange.Direction.WON
    if target.kind == Stage.Kind.LOST:
        return StageChange.Direction.LOST
    if source.kind != Stage.Kind.OPEN:
        return StageChange.Direction.REOPENED
    return StageChange.Direction.FORWARD if _ordered(target) > _ordered(source) else StageChange.Direction.BACKWARD


def stages_left_behind(source: Stage, target: Stage, open_stages: list[Stage]) -> list[Stage]:
    """The open stages a forward move leaves: the current one and every open stage it jumps over.

    A move to a won stage jumps over every open stage after the current one. Backward moves, losing
    and reopening leave nothing behind that needs checking.
    """
    if source.kind != Stage.Kind.OPEN or target.kind == Stage.Kind.LOST:
        return []
    if target.kind == Stage.Kind.OPEN and _ordered(target) < _ordered(source):
        return []
    between = [s for s in open_stages if _ordered(source) < _ordered(s)
               and (target.kind == Stage.Kind.WON or _ordered(s) < _ordered(target))]
    return [source, *between]


@transaction.atomic
def deal_move(*, actor: User, deal: Deal, stage: Stage, lost_reason: LostReason | None = None,
              lost_note: str = "", changes: dict | None = None) -> Deal:
    """Move a deal to another stage of its pipeline; the one rule for every door.

    - Forward, the exit criteria of the stage being left (and of any stage skipped over) must be met;
      a stage may forbid skipping. ``changes`` (fields filled in at the same time) are applied first,
      in the same transaction, so filling the missing fields and moving is one step.
    - Backward is always allowed. Lost needs a reason from the admin's list; won and lost set the
      close time; moving a closed deal to an open stage reopens it.
    - A closed deal cannot go straight to the other closed kind: reopen it first.
    - A refused move raises ``ValidationError`` with one entry per missing field and changes nothing.
    """
    if not can_edit(actor, deal):
        raise PermissionDenied(_("You may not move this deal."))
    deal = Deal.objects.select_for_update().select_related("stage", "pipeline").get(pk=deal.pk)
    if changes:
        deal = _apply_changes(actor=actor, deal=deal, data=dict(changes), lock=False)
    source = deal.stage
    if stage.pipeline_id != deal.pipeline_id:
        raise ValidationError({"stage": [_("“%(stage)s” is not a stage of “%(pipeline)s”.") % {
            "stage": stage.name, "pipeline": deal.pipeline.name}]})
    if stage.pk == source.pk:
        return deal
    if source.kind != Stage.Kind.OPEN and stage.kind != Stage.Kind.OPEN:
        raise ValidationError({"stage": [_(
            "This deal is already %(status)s; move it back to an open stage first.") % {
            "status": deal.get_status_display().lower()}]})
    errors: dict[str, list[str]] = {}
    if stage.kind == Stage.Kind.LOST:
        if lost_reason is None:
            errors["lost_reason"] = [_("Choose why the deal was lost.")]
        elif not lost_reason.is_active:
            errors["lost_reason"] = [_("“%(reason)s” is no longer in use; choose another reason.") % {
                "reason": lost_reason.name}]
    open_stages = list(Stage.objects.filter(pipeline_id=deal.pipeline_id, kind=Stage.Kind.OPEN))
    left = stages_left_behind(source, stage, open_stages)
    if len(left) > 1 and not source.allow_skip:
        following = min((s for s in open_stages if _ordered(s) > _ordered(source)), key=_ordered)
        errors["stage"] = [_("Deals in “%(stage)s” go to the next stage, “%(next)s”, first.") % {
            "stage": source.name, "next": following.name}]
    if not errors:
        errors = criteria.missing(deal, left)
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    direction = _direction(source, stage)
    StageChange.objects.create(
        deal=deal, from_stage=source, from_stage_name=source.name, to_stage=stage, to_stage_name=stage.name,
        direction=direction, changed_at=now, actor=actor if actor.is_authenticated else None,
        seconds_in_from_stage=max(0, int((now - deal.stage_entered_at).total_seconds())),
    )
    deal.stage = stage
    deal.status = stage.kind
    deal.stage_entered_at = now
    deal.updated_at = now
    if stage.kind == Stage.Kind.OPEN:
        deal.rots_at = now + timedelta(days=stage.rotting_days)
        deal.closed_at = None
        deal.lost_reason = None
        deal.lost_note = ""
    else:
        deal.rots_at = None
        deal.closed_at = now
        if stage.kind == Stage.Kind.LOST:
            deal.lost_reason = lost_reason
            deal.lost_note = (lost_note or "").strip()[:2000]
    deal.save()
    payload = _payload(deal) | {"from_stage_id": source.pk, "to_stage_id": stage.pk, "direction": direction}
    events.record("deal.stage_changed", deal, actor=actor, data=payload)
    if stage.kind == Stage.Kind.WON:
        events.record("deal.won", deal, actor=actor, data=payload)
    elif stage.kind == Stage.Kind.LOST:
        events.record("deal.lost", deal, actor=actor, data=payload | {
            "lost_reason_id": deal.lost_reason_id})
    return deal


def weighted(amount: Decimal | None, probability: int) -> Decimal | None:
    if amount is None:
        return None
    return (amount * probability / 100).quantize(Decimal("0.01"))
