"""Every write to contacts, companies, activities and consent.

Services hold the rules (normalisation, required fields, custom-field types, who may do what),
write the field history and record domain events in the same transaction. Forms, API
endpoints, tasks and commands all call these, so a rule cannot be skipped by using another door.
"""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import assignable_owners
from crm_okr import events, history
from crm_okr.text import digits, fold, sort_key

from .models import Activity, Company, Consent, ConsentLog, Contact, Entity, LifecycleChange, Tag
from .rules import EntityRules, clean_name, normalize_email, normalize_phone
from .selectors import can_edit, can_edit_activity

CONTACT_FIELDS = [
    "first_name", "last_name", "email", "phone", "mobile", "job_title", "company", "lifecycle_stage", "lead_source",
    "preferred_channel", "language", "birth_date", "gender", "city", "country", "notes", "owner",
]
COMPANY_FIELDS = [
    "name", "legal_name", "tax_number", "website", "email", "phone", "industry", "size", "annual_revenue", "address",
    "city", "country", "lead_source", "owner",
]


# --- shared pieces -------------------------------------------------------------------------------


def _normalize(data: dict, *, name_fields: Iterable[str]) -> dict:
    """Apply the data-entry standards; collect every error instead of stopping at the first."""
    data = dict(data)
    errors = {}
    for name in name_fields:
        if name in data:
            data[name] = clean_name(data[name])
    for name in ("job_title", "city", "industry", "address", "legal_name", "tax_number"):
        if name in data and isinstance(data[name], str):
            data[name] = clean_name(data[name])
    if "country" in data and isinstance(data["country"], str):
        data["country"] = data["country"].strip().upper()
    if "language" in data and isinstance(data["language"], str):
        data["language"] = data["language"].strip().lower()
    if "email" in data:
        try:
            data["email"] = normalize_email(data["email"])
        except ValidationError as exc:
            errors["email"] = exc.messages
    for name in ("phone", "mobile"):
        if name in data:
            try:
                data[name] = normalize_phone(data[name])
            except ValidationError as exc:
                errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return data


def _check_owner(*, actor: User, owner: User | None, current_owner_id: int | None) -> None:
    if owner is None or owner.pk == current_owner_id:
        return
    if not assignable_owners(actor).filter(pk=owner.pk).exists():
        raise ValidationError({"owner": _("You cannot give records to %(user)s.") % {"user": owner}})


def _resolve_tags(names_or_tags) -> list[Tag]:
    """Tags by object or by name; unknown names become new tags (case-insensitive match)."""
    result = []
    for item in names_or_tags or []:
        if isinstance(item, Tag):
            result.append(item)
            continue
        name = clean_name(str(item))[:50]
        if not name:
            continue
        # Lower-cased by the database on both sides, as the unique index does: Python's "İ".lower() is not
        # PostgreSQL's, so comparing with name.lower() missed "İstanbul" and then hit the unique index.
        same_name = Tag.objects.annotate(lname=Lower("name")).filter(lname=Lower(Value(name)))
        tag = same_name.first()
        if tag is None:
            try:
                with transaction.atomic():
                    tag = Tag.objects.create(name=name)
            except IntegrityError:
                tag = same_name.get()
        result.append(tag)
    return list({t.pk: t for t in result}.values())


def _validate(instance, rules: EntityRules, *, exclude: list[str]) -> None:
    """Model validation (lengths, choices, constraints) plus the admin's required fields."""
    errors = {}
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    # A unique constraint over an expression (Lower("email")) names no field: report it on its field.
    general = errors.get("__all__", [])
    for constraint in instance._meta.constraints:
        if constraint.name == "contact_email_unique" and constraint.get_violation_error_message() in general:
            general.remove(constraint.get_violation_error_message())
            errors.setdefault("email", []).append(_("A contact with this e-mail address already exists."))
    if not general:
        errors.pop("__all__", None)
    for name, message in rules.missing_required(instance).items():
        errors.setdefault(name, [message])
    if errors:
        raise ValidationError(errors)


def _snapshot(instance, fields: list[str], tags: list[str] | None = None) -> dict:
    snap = history.snapshot(instance, fields)
    for key, value in (instance.custom_fields or {}).items():
        snap[f"custom_fields.{key}"] = str(value)
    if tags is not None:
        snap["tags"] = ", ".join(sorted(tags))
    return snap


def contact_search_fields(*, first_name: str, last_name: str, email: str, phone: str, mobile: str) -> tuple[str, str]:
    """A contact's ``(sort_name, search_text)``; public so bulk loaders (seed_demo, imports) compute them alike."""
    sort_name = sort_key(f"{first_name} {last_name}")[:300]
    phones = [digits(p) for p in (phone, mobile) if p]
    return sort_name, " ".join([fold(" ".join([first_name, last_name, email])), *phones])


def company_search_fields(*, name: str, legal_name: str, email: str, phone: str, website: str) -> tuple[str, str]:
    """A company's ``(sort_name, search_text)``; see :func:`contact_search_fields`."""
    phone = digits(phone) if phone else ""
    return sort_key(name)[:300], " ".join(filter(None, [fold(f"{name} {legal_name}"), email, phone, website]))


def _set_search(instance) -> None:
    if isinstance(instance, Contact):
        instance.sort_name, instance.search_text = contact_search_fields(
            first_name=instance.first_name, last_name=instance.last_name, email=instance.email,
            phone=instance.phone, mobile=instance.mobile,
        )
    else:
        instance.sort_name, instance.search_text = company_search_fields(
            name=instance.name, legal_name=instance.legal_name, email=instance.email, phone=instance.phone,
            website=instance.website,
        )


# --- contacts ------------------------------------------------------------------------------------


@transaction.atomic
def contact_create(*, actor: User, data: dict) -> Contact:
    """Create a contact owned by the actor unless another (assignable) owner is given."""
    data = _normalize(data, name_fields=["first_name", "last_name"])
    rules = EntityRules.load(Entity.CONTACT)
    tags = data.pop("tags", None)
    custom = rules.clean_custom_fields(data.pop("custom_fields", None))
    owner = data.pop("owner", None) or (actor if actor.role != User.Role.INTEGRATION else None)
    _check_owner(actor=actor, owner=owner, current_owner_id=None)
    unknown = set(data) - set(CONTACT_FIELDS)
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    now = timezone.now()
    contact = Contact(
        **data, owner=owner, team_id=owner.team_id if owner else None, custom_fields=custom, created_by=actor
        if actor.is_authenticated else None, created_at=now, updated_at=now, lifecycle_changed_at=now,
    )
    _set_search(contact)
    _validate(contact, rules, exclude=["owner", "team", "created_by"])
    contact.save()
    if tags:
        contact.tags.set(_resolve_tags(tags))
    LifecycleChange.objects.create(contact=contact, from_stage="", to_stage=contact.lifecycle_stage, changed_at=now,
                                   actor=actor)
    events.record("contact.created", contact, actor=actor, data=_contact_payload(contact))
    return contact


def _contact_payload(contact: Contact) -> dict:
    return {
        "name": contact.full_name,
        "owner_id": contact.owner_id,
        "team_id": contact.team_id,
        "lifecycle_stage": contact.lifecycle_stage,
        "lead_source_id": contact.lead_source_id,
        "email": contact.email,
    }


@transaction.atomic
def contact_update(*, contact: Contact, actor: User, data: dict) -> Contact:
    """Change some fields of a contact; writes the field history and the events of the change."""
    if not can_edit(actor, contact):
        raise PermissionDenied(_("You may not edit this contact."))
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    data = _normalize(data, name_fields=["first_name", "last_name"])
    unknown = set(data) - set(CONTACT_FIELDS) - {"tags", "custom_fields"}
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    rules = EntityRules.load(Entity.CONTACT)
    old_tags = [t.name for t in contact.tags.all()]
    before = _snapshot(contact, CONTACT_FIELDS, old_tags)
    old_stage = contact.lifecycle_stage
    tags = data.pop("tags", None)
    contact.custom_fields = rules.clean_custom_fields(data.pop("custom_fields", None), current=contact.custom_fields)
    if "owner" in data:
        _check_owner(actor=actor, owner=data["owner"], current_owner_id=contact.owner_id)
        contact.team_id = data["owner"].team_id if data["owner"] else None
    for name, value in data.items():
        setattr(contact, name, value)
    _set_search(contact)
    _validate(contact, rules, exclude=["owner", "team", "created_by"])
    resolved = _resolve_tags(tags) if tags is not None else None
    after = _snapshot(contact, CONTACT_FIELDS, [t.name for t in resolved] if resolved is not None else old_tags)
    now = timezone.now()
    changes = history.record_changes(instance=contact, before=before, after=after, actor=actor)
    if not changes:
        return contact
    stage_changed = contact.lifecycle_stage != old_stage
    if stage_changed:
        contact.lifecycle_changed_at = now
    contact.updated_at = now
    contact.save()
    if resolved is not None:
        contact.tags.set(resolved)
    payload = _contact_payload(contact) | {"changed": changes}
    events.record("contact.updated", contact, actor=actor, data=payload)
    if stage_changed:
        LifecycleChange.objects.create(contact=contact, from_stage=old_stage, to_stage=contact.lifecycle_stage,
                                       changed_at=now, actor=actor)
        events.record("contact.lifecycle_changed", contact, actor=actor,
                      data=_contact_payload(contact) | {"from": old_stage, "to": contact.lifecycle_stage})
    return contact


def contact_upsert(*, actor: User, data: dict) -> tuple[Contact, bool]:
    """Create the contact, or update the one with the same e-mail (for integrations that sync).

    Returns ``(contact, created)``. The e-mail is required; the match ignores case.
    """
    email = normalize_email_or_error(data.get("email"))
    data = dict(data, email=email)
    for _attempt in range(2):
        # LOWER(email) on non-empty e-mails is what the unique index holds: an indexed look-up that also
        # finds rows a bulk loader stored with capitals.
        existing = (
            Contact.objects.annotate(email_lower=Lower("email")).filter(email_lower=email).exclude(email="").first()
        )
        if existing is not None:
            return contact_update(contact=existing, actor=actor, data=data), False
        try:
            with transaction.atomic():
                return contact_create(actor=actor, data=data), True
        except IntegrityError:
            # Created by a concurrent request between our look-up and insert: update it instead.
            continue
    raise ValidationError({"email": _("This e-mail address is being changed by someone else; try again.")})


def normalize_email_or_error(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"email": _("An e-mail address is required to upsert a contact.")})
    try:
        return normalize_email(value)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}) from None


@transaction.atomic
def contact_archive(*, contact: Contact, actor: User) -> Contact:
    if not can_edit(actor, contact):
        raise PermissionDenied(_("You may not edit this contact."))
    if contact.archived_at is None:
        contact.archived_at = timezone.now()
        contact.save(update_fields=["archived_at"])
        history.record_changes(instance=contact, before={"archived_at": ""},
                               after={"archived_at": contact.archived_at.isoformat()}, actor=actor)
        events.record("contact.archived", contact, actor=actor, data=_contact_payload(contact))
    return contact


# --- companies -----------------------------------------------------------------------------------


@transaction.atomic
def company_create(*, actor: User, data: dict) -> Company:
    data = _normalize(data, name_fields=["name"])
    rules = EntityRules.load(Entity.COMPANY)
    tags = data.pop("tags", None)
    custom = rules.clean_custom_fields(data.pop("custom_fields", None))
    owner = data.pop("owner", None) or (actor if actor.role != User.Role.INTEGRATION else None)
    _check_owner(actor=actor, owner=owner, current_owner_id=None)
    unknown = set(data) - set(COMPANY_FIELDS)
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    now = timezone.now()
    company = Company(**data, owner=owner, team_id=owner.team_id if owner else None, custom_fields=custom,
                      created_by=actor if actor.is_authenticated else None, created_at=now, updated_at=now)
    _set_search(company)
    _validate(company, rules, exclude=["owner", "team", "created_by"])
    company.save()
    if tags:
        company.tags.set(_resolve_tags(tags))
    events.record("company.created", company, actor=actor, data={"name": company.name, "owner_id": company.owner_id})
    return company


@transaction.atomic
def company_update(*, company: Company, actor: User, data: dict) -> Company:
    if not can_edit(actor, company):
        raise PermissionDenied(_("You may not edit this company."))
    company = Company.objects.select_for_update().get(pk=company.pk)
    data = _normalize(data, name_fields=["name"])
    unknown = set(data) - set(COMPANY_FIELDS) - {"tags", "custom_fields"}
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    rules = EntityRules.load(Entity.COMPANY)
    old_tags = [t.name for t in company.tags.all()]
    before = _snapshot(company, COMPANY_FIELDS, old_tags)
    tags = data.pop("tags", None)
    company.custom_fields = rules.clean_custom_fields(data.pop("custom_fields", None), current=company.custom_fields)
    if "owner" in data:
        _check_owner(actor=actor, owner=data["owner"], current_owner_id=company.owner_id)
        company.team_id = data["owner"].team_id if data["owner"] else None
    for name, value in data.items():
        setattr(company, name, value)
    _set_search(company)
    _validate(company, rules, exclude=["owner", "team", "created_by"])
    resolved = _resolve_tags(tags) if tags is not None else None
    after = _snapshot(company, COMPANY_FIELDS, [t.name for t in resolved] if resolved is not None else old_tags)
    changes = history.record_changes(instance=company, before=before, after=after, actor=actor)
    if not changes:
        return company
    company.updated_at = timezone.now()
    company.save()
    if resolved is not None:
        company.tags.set(resolved)
    events.record("company.updated", company, actor=actor,
                  data={"name": company.name, "owner_id": company.owner_id, "changed": changes})
    return company


@transaction.atomic
def company_archive(*, company: Company, actor: User) -> Company:
    """Hide a company from lists (its contacts and history stay); only its editors may do it."""
    if not can_edit(actor, company):
        raise PermissionDenied(_("You may not edit this company."))
    if company.archived_at is None:
        company.archived_at = timezone.now()
        company.save(update_fields=["archived_at"])
        history.record_changes(instance=company, before={"archived_at": ""},
                               after={"archived_at": company.archived_at.isoformat()}, actor=actor)
        events.record("company.archived", company, actor=actor, data={"name": company.name,
                                                                       "owner_id": company.owner_id})
    return company


# --- activities and tasks ------------------------------------------------------------------------


@transaction.atomic
def activity_log(
    *, actor: User, kind: str, subject: str, contact: Contact | None = None, company: Company | None = None,
    body: str = "", occurred_at: datetime | None = None, assignee: User | None = None, due_at: datetime | None = None,
    deal=None,
) -> Activity:
    """Log a call, e-mail, meeting or note, or add a task; keeps the records' last activity time current.

    The caller has already checked that the actor can see the contact/company: logging on a visible
    record is allowed to everyone who sees it.
    """
    errors = {}
    subject = clean_name(subject)
    if kind not in Activity.Kind.values:
        errors["kind"] = [_("“%(value)s” is not one of: %(options)s.") % {
            "value": str(kind)[:20], "options": ", ".join(Activity.Kind.values)}]
    if deal is not None:
        # Logged on a deal: it also shows on the deal's contact and company timelines.
        contact = contact or deal.contact
        company = company or deal.company
    if contact is None and company is None and deal is None:
        errors["contact"] = [_("Choose a contact or a company.")]
    if contact is not None and company is None:
        company = contact.company
    if kind == Activity.Kind.TASK:
        assignee = assignee or actor
        if due_at is None:
            errors["due_at"] = [_("A task needs a due time.")]
    else:
        assignee, due_at = None, None
    now = timezone.now()
    record = deal or contact or company
    activity = Activity(
        kind=kind, subject=subject, body=body or "", contact=contact, company=company, deal=deal, owner=actor,
        team_id=record.team_id if record is not None else actor.team_id, occurred_at=occurred_at or now,
        assignee=assignee, due_at=due_at, created_at=now,
    )
    try:
        activity.full_clean(exclude=["owner", "team", "contact", "company", "deal", "assignee"])
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, messages)
    if errors:
        raise ValidationError(errors)
    activity.save()
    if activity.kind != Activity.Kind.TASK:
        _touch_last_activity(activity, activity.occurred_at)
    events.record("activity.logged", activity, actor=actor, data={
        "kind": activity.kind, "contact_id": activity.contact_id, "company_id": activity.company_id,
        "deal_id": activity.deal_id, "owner_id": activity.owner_id, "assignee_id": activity.assignee_id,
    })
    return activity


def _touch_last_activity(activity: Activity, when: datetime) -> None:
    # GREATEST ignores NULL in PostgreSQL, and the update is one statement: no read-modify-write race.
    if when > timezone.now():
        return
    if activity.contact_id:
        Contact.objects.filter(pk=activity.contact_id).update(last_activity_at=Greatest(F("last_activity_at"), when))
    if activity.company_id:
        Company.objects.filter(pk=activity.company_id).update(last_activity_at=Greatest(F("last_activity_at"), when))


@transaction.atomic
def task_set_done(*, task: Activity, actor: User, done: bool) -> Activity:
    """Tick a task done (or undo it); a done task counts as the record's latest activity."""
    if not task.is_task:
        raise ValidationError({"kind": _("Only tasks can be marked done.")})
    if not can_edit_activity(actor, task):
        raise PermissionDenied(_("You may not change this task."))
    now = timezone.now()
    if done:
        # Conditional update: two clicks at once complete it once.
        if Activity.objects.filter(pk=task.pk, done_at__isnull=True).update(done_at=now):
            task.done_at = now
            _touch_last_activity(task, now)
            events.record("task.completed", task, actor=actor, data={"contact_id": task.contact_id})
    else:
        Activity.objects.filter(pk=task.pk).update(done_at=None)
        task.done_at = None
    return task


# --- consent -------------------------------------------------------------------------------------


@transaction.atomic
def consent_set(*, contact: Contact, actor: User, channel: str, status: str, source: str, note: str = "") -> Consent:
    """Record that a contact granted or withdrew consent for a channel, and log it (KVKK/GDPR/İYS)."""
    errors = {}
    if channel not in Consent.ConsentChannel.values:
        errors["channel"] = [_("“%(value)s” is not one of: %(options)s.") % {
            "value": str(channel)[:20], "options": ", ".join(Consent.ConsentChannel.values)}]
    if status not in Consent.Status.values:
        errors["status"] = [_("“%(value)s” is not one of: %(options)s.") % {
            "value": str(status)[:20], "options": ", ".join(Consent.Status.values)}]
    source = clean_name(source)
    if not source:
        errors["source"] = [_("Say where the consent was given or withdrawn (web form, call, İYS, …).")]
    elif len(source) > 200:
        errors["source"] = [_("At most 200 characters (got %(n)d).") % {"n": len(source)}]
    if len(note or "") > 500:
        errors["note"] = [_("At most 500 characters (got %(n)d).") % {"n": len(note)}]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    consent, _created = Consent.objects.update_or_create(
        contact=contact, channel=channel, defaults={"status": status, "source": source, "changed_at": now}
    )
    ConsentLog.objects.create(contact=contact, channel=channel, status=status, source=source, note=note or "",
                              actor=actor if actor.is_authenticated else None, recorded_at=now)
    events.record("contact.consent_changed", contact, actor=actor,
                  data={"channel": channel, "status": status, "source": source})
    return consent
