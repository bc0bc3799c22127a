"""Every read of contacts, companies and activities, scoped by visibility.

One selector per model: pages, API and tasks all start from these, so a rep sees the same
records everywhere and a hidden record is a 404 everywhere.
"""

import re

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import User
from accounts.selectors import editable_team_ids, team_scope
from crm_okr.text import digits, fold

from .models import Activity, Company, Contact


def contacts_visible_to(user: User) -> QuerySet[Contact]:
    qs = Contact.objects.all()
    scope = team_scope(user)
    return qs if scope is None else qs.filter(scope)


def companies_visible_to(user: User) -> QuerySet[Company]:
    qs = Company.objects.all()
    scope = team_scope(user)
    return qs if scope is None else qs.filter(scope)


def activities_visible_to(user: User) -> QuerySet[Activity]:
    qs = Activity.objects.all()
    scope = team_scope(user)
    return qs if scope is None else qs.filter(scope | Q(assignee_id=user.id))


_UNSET = object()


def can_edit(user: User, record, *, team_ids=_UNSET) -> bool:
    """Reps edit what they own; managers everything of the teams they manage; admins everything.

    ``team_ids`` (from ``editable_team_ids``) may be passed when checking many rows, to look it up once.
    """
    if not user.is_authenticated:
        return False
    if user.is_admin or user.role == User.Role.INTEGRATION:
        return True
    if getattr(record, "owner_id", None) == user.id:
        return True
    if team_ids is _UNSET:
        team_ids = editable_team_ids(user)
    return team_ids is None or (record.team_id is not None and record.team_id in team_ids)


def can_edit_activity(user: User, activity: Activity, *, team_ids=_UNSET) -> bool:
    """The owner and the assignee of a task may change it (tick it done), as may the record's editors."""
    if activity.assignee_id == user.id:
        return True
    return can_edit(user, activity, team_ids=team_ids)


def editable_activity_ids(user: User, activities) -> set[int]:
    """The ids of the given activities the user may change, with at most one query (for list pages)."""
    team_ids = editable_team_ids(user) if user.is_authenticated else []
    return {a.pk for a in activities if can_edit_activity(user, a, team_ids=team_ids)}


_PHONE_LIKE = re.compile(r"[\d\s()+\-./]+")


# Up to this many companies matching a word are passed to the contact search as a list of ids.
COMPANY_MATCH_LIMIT = 1000


def _company_match(word: str) -> Q:
    """Contacts whose company name matches the word.

    PostgreSQL cannot combine ``search_text LIKE … OR company_id IN (subquery)`` with the trigram
    index and scans every contact, so the (usually few) matching company ids are looked up first
    and passed as a list. A word common enough to match more companies than the limit keeps the
    subquery: still correct, and such a word matches many contacts directly, so a page fills early.
    """
    matching = Company.objects.filter(search_text__contains=word).values_list("id", flat=True)
    ids = list(matching[: COMPANY_MATCH_LIMIT + 1])
    if len(ids) > COMPANY_MATCH_LIMIT:
        return Q(company_id__in=matching)
    return Q(company_id__in=ids) if ids else Q(pk__in=[])


def search_filter(term: str, *, model=Contact) -> Q:
    """Match every word of the term in the folded search text (and, for contacts, the company name).

    Folding makes it Turkish-aware and accent-insensitive: "ışık" finds "IŞIK", "sahin" finds "Şahin".
    A term that is mostly digits also matches phone numbers typed with or without the leading 0.
    """
    condition = Q()
    words = fold(term).split()[:8]
    if len(words) > 1 and _PHONE_LIKE.fullmatch(term.strip()) and len(digits(term)) >= 3:
        # "+90 532 123 45 67" or "0532 123": one number typed in groups, matched as one run of digits.
        words = [digits(term)]
    for word in words:
        word_q = Q(search_text__contains=word)
        number = digits(word)
        if len(number) >= 3 and len(number) >= len(word) - 1:
            word_q |= Q(search_text__contains=number.lstrip("0") or number)
        if model is Contact:
            word_q |= _company_match(word)
        condition &= word_q
    return condition


def contact_list(
    *, user: User, search: str = "", owner=None, team=None, lifecycle_stage: str = "", lead_source=None, tag=None,
    include_archived: bool = False,
) -> QuerySet[Contact]:
    """The contacts a list page or endpoint shows, with what the rows display fetched up front."""
    qs = contacts_visible_to(user).select_related("company", "owner", "lead_source")
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    if search:
        qs = qs.filter(search_filter(search))
    if owner is not None:
        qs = qs.filter(owner=owner)
    if team is not None:
        qs = qs.filter(team=team)
    if lifecycle_stage:
        qs = qs.filter(lifecycle_stage=lifecycle_stage)
    if lead_source is not None:
        qs = qs.filter(lead_source=lead_source)
    if tag is not None:
        qs = qs.filter(Exists(Contact.tags.through.objects.filter(contact_id=OuterRef("pk"), tag=tag)))
    return qs


def company_list(
    *, user: User, search: str = "", owner=None, team=None, lead_source=None, tag=None, include_archived: bool = False
) -> QuerySet[Company]:
    qs = companies_visible_to(user).select_related("owner", "lead_source")
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    if search:
        qs = qs.filter(search_filter(search, model=Company))
    if owner is not None:
        qs = qs.filter(owner=owner)
    if team is not None:
        qs = qs.filter(team=team)
    if lead_source is not None:
        qs = qs.filter(lead_source=lead_source)
    if tag is not None:
        qs = qs.filter(Exists(Company.tags.through.objects.filter(company_id=OuterRef("pk"), tag=tag)))
    return qs


def timeline(*, user: User, contact: Contact | None = None, company: Company | None = None, limit: int = 50):
    """A record's activities, newest first (what the record page shows)."""
    qs = activities_visible_to(user).select_related("owner", "assignee", "contact", "company")
    if contact is not None:
        qs = qs.filter(contact=contact)
    if company is not None:
        qs = qs.filter(Q(company=company) | Q(contact__company=company))
    return qs.order_by("-occurred_at", "-id")[:limit]


def open_tasks(*, user: User, limit: int = 50):
    """The user's open tasks, overdue first, then by due time."""
    return (
        Activity.objects.filter(kind=Activity.Kind.TASK, assignee=user, done_at__isnull=True)
        .select_related("contact", "company")
        .order_by("due_at", "id")[:limit]
    )


def recent_activity(*, user: User, limit: int = 20):
    return (
        Activity.objects.filter(owner=user)
        .exclude(kind=Activity.Kind.TASK, done_at__isnull=True)
        .select_related("contact", "company")
        .order_by("-occurred_at", "-id")[:limit]
    )


def record_rows(qs: QuerySet, columns: list[str]) -> QuerySet:
    """A list query's rows as named tuples of ``columns`` (plus ``pk`` and any annotation a sort may use),
    for the list endpoints: no model instances, and the tags come from :func:`tag_names_by_record`."""
    names = ["pk", *columns, *(name for name in qs.query.annotations if name not in columns)]
    return qs.prefetch_related(None).values_list(*names, named=True)


def tag_names_by_record(model, ids: list[int]) -> dict[int, list[str]]:
    """Tag names by contact (or company) id, in name order, for the given ids: one query (none for no ids)."""
    if not ids:
        return {}
    relation = model.tags.field
    owner, tag = relation.m2m_field_name(), relation.m2m_reverse_field_name()
    result: dict[int, list[str]] = {}
    pairs = (model.tags.through.objects.filter(**{f"{owner}_id__in": ids})
             .order_by(f"{tag}__name", f"{tag}_id").values_list(f"{owner}_id", f"{tag}__name"))
    for record_id, name in pairs:
        result.setdefault(record_id, []).append(name)
    return result
