"""Every read of deals, scoped by visibility: one selector for pages, API, exports and reports.

Deals follow the contact rules: a rep sees the deals of their team and the ones they own, a manager
those of the teams they manage, admins and integrations everything. A hidden deal is a 404 everywhere.
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db.models import (
    BigIntegerField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import team_scope
from contacts.selectors import activities_visible_to, can_edit  # noqa: F401  (re-exported for deal pages)
from crm_okr.pagination import Page, SortOption, decode_cursor, encode_cursor
from crm_okr.text import fold

from .models import Deal, Pipeline, Stage

MONEY = DecimalField(max_digits=20, decimal_places=2)


def deals_visible_to(user: User) -> QuerySet[Deal]:
    qs = Deal.objects.all()
    scope = team_scope(user)
    return qs if scope is None else qs.filter(scope)


def stale_q(now=None) -> Q:
    """Open deals that have been in their stage longer than the stage's rotting limit."""
    return Q(status=Deal.Status.OPEN, rots_at__lte=now or timezone.now())


def weighted_expr():
    """amount × stage probability ÷ 100, in the database (NULL amounts count as nothing)."""
    return ExpressionWrapper(F("amount") * F("stage__probability") / Decimal(100), output_field=MONEY)


def in_company_currency() -> Q:
    return Q(currency=settings.CRM_CURRENCY)


def month_bounds(month: str) -> tuple[date, date] | None:
    """``"2026-11"`` → (first day, last day), or None when it is not a month."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except (ValueError, TypeError):
        return None
    return first, date(year, number, calendar.monthrange(year, number)[1])


def search_filter(term: str) -> Q:
    """Deals whose folded name holds every word of the term (Turkish-aware: "isik" finds "IŞIK")."""
    condition = Q()
    for word in fold(term).split()[:8]:
        condition &= Q(search_text__contains=word)
    return condition


def deal_list(
    *, user: User, search: str = "", pipeline=None, stage=None, owner=None, team=None, status: str = "",
    stale: bool | None = None, close_month: str = "", close_from: date | None = None, close_to: date | None = None,
    amount_min: Decimal | None = None, amount_max: Decimal | None = None, contact=None, company=None,
) -> QuerySet[Deal]:
    """The deals a list page, export or endpoint shows, with what the rows display fetched up front."""
    qs = deals_visible_to(user).select_related("pipeline", "stage", "owner", "contact", "company", "lead_source")
    if search:
        qs = qs.filter(search_filter(search))
    if close_month and (bounds := month_bounds(close_month)):
        close_from, close_to = bounds
    given = {
        "pipeline": pipeline, "stage": stage, "owner": owner, "team": team, "status": status or None,
        "expected_close_date__gte": close_from, "expected_close_date__lte": close_to,
        "amount__gte": amount_min, "amount__lte": amount_max, "contact": contact, "company": company,
    }
    qs = qs.filter(**{lookup: value for lookup, value in given.items() if value is not None})
    if stale is True:
        qs = qs.filter(stale_q())
    elif stale is False:
        qs = qs.exclude(stale_q())
    return qs


def stage_history(deal: Deal) -> list[dict]:
    """The deal's stage changes, oldest first, each with how long the deal stayed in the stage it entered."""
    changes = list(deal.stage_changes.select_related("actor").order_by("changed_at", "id"))
    now = timezone.now()
    rows = []
    for position, change in enumerate(changes):
        left_at = changes[position + 1].changed_at if position + 1 < len(changes) else None
        end = left_at or (deal.closed_at if not deal.is_open else now)
        rows.append({
            "change": change,
            "entered_at": change.changed_at,
            "left_at": left_at,
            "duration": max(end - change.changed_at, timedelta(0)) if end else None,
            "current": left_at is None,
        })
    return rows


def deal_timeline(*, user: User, deal: Deal, limit: int = 50):
    """The activities and tasks logged on the deal, newest first."""
    return (
        activities_visible_to(user).filter(deal=deal).select_related("owner", "assignee", "contact", "company")
        .order_by("-occurred_at", "-id")[:limit]
    )


# --- the board -----------------------------------------------------------------------------------

BOARD_SORT = SortOption("in_stage", "stage_entered_at")
BOARD_PAGE = 25  # cards per "Load more"
# Cards per column on the board's first load: fewer than a "Load more" page, so the first paint of five
# columns stays quick (rendering the cards, not the queries, is most of the board's time).
BOARD_FIRST_PAGE = 15
# What a card shows (and ``can_edit`` needs): a page of 25 full rows with their owner, contact and company
# is four wide models per card, and building them cost more than the query.
CARD_FIELDS = (
    "name", "pipeline", "stage", "status", "amount", "currency", "expected_close_date", "team",
    "stage_entered_at", "rots_at", "owner", "owner__first_name", "owner__last_name", "owner__username",
    "contact", "contact__first_name", "contact__last_name", "company", "company__name",
)


@dataclass
class Column:
    stage: Stage
    count: int = 0
    total: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    # Deals in another currency: counted, but their amounts are not in total or weighted.
    other_currency: int = 0
    deals: list = field(default_factory=list)
    next_cursor: str | None = None
    # The deals' cards as HTML, when a view has rendered them (the board's, in one go per column).
    cards: str = ""


def _board_scope(*, user: User, pipeline: Pipeline, owner=None, team=None) -> QuerySet[Deal]:
    """The pipeline's deals the user sees, with the board's owner and team filters (any status)."""
    qs = deals_visible_to(user).filter(pipeline=pipeline)
    if owner is not None:
        qs = qs.filter(owner=owner)
    if team is not None:
        qs = qs.filter(team=team)
    return qs


def board_deals(*, user: User, pipeline: Pipeline, owner=None, team=None) -> QuerySet[Deal]:
    """The open deals the board shows (before splitting into columns)."""
    return _board_scope(user=user, pipeline=pipeline, owner=owner, team=team).filter(status=Deal.Status.OPEN)


def _closed_since(since) -> Q:
    return Q(status__in=[Deal.Status.WON, Deal.Status.LOST], closed_at__gte=since)


def column_totals(deals: QuerySet[Deal], *, by_status: bool = False) -> dict:
    """Per stage: count, total and weighted amount (company currency), in one grouped query.

    ``by_status`` groups by stage and status (keys ``(stage_id, status)``), for a query that holds
    open and closed deals at once.
    """
    money = in_company_currency()
    keys = ("stage_id", "status") if by_status else ("stage_id",)
    rows = deals.order_by().values(*keys).annotate(
        count=Count("id"),
        total=Sum("amount", filter=money),
        weighted=Sum(weighted_expr(), filter=money),
        other_currency=Count("id", filter=~money),
    )
    if by_status:
        return {(row["stage_id"], row["status"]): row for row in rows}
    return {row["stage_id"]: row for row in rows}


def column_page(deals: QuerySet[Deal], stage: Stage, *, cursor: str | None = None,
                page_size: int = BOARD_PAGE) -> Page:
    """One page of a column's cards, longest in the stage first (so the stale ones lead).

    One query in two steps: the page's ids come from a keyset scan of the open-deals board index
    (``deal_open_board`` / ``deal_open_board_team``) in a sub-select with its own LIMIT, and only
    those rows are joined to owner, contact and company. Joining first let PostgreSQL, which
    misjudges how many open deals a stage holds, join every deal of the column before sorting.
    Only forward cursors exist on the board ("Load more"); any other cursor is refused.
    """
    field_name = BOARD_SORT.field
    keys = deals.filter(stage=stage)
    if cursor:
        value, pk, reverse = decode_cursor(cursor, model=Deal, field=field_name)
        if reverse:
            raise ValidationError({"cursor": _("Invalid cursor: use the next/previous links as given.")})
        keys = keys.filter(TupleGreaterThan(Tuple(F(field_name), F("pk")), (value, pk)))
    ids = keys.order_by(field_name, "pk").values("pk")[: page_size + 1]
    return _page(_card_rows(ids), page_size)


def _card_rows(ids) -> list[Deal]:
    """The deals of a sub-select of ids, with what a card shows, in the board's order."""
    field_name = BOARD_SORT.field
    return list(
        Deal.objects.filter(pk__in=ids).select_related("owner", "contact", "company").only(*CARD_FIELDS)
        .order_by(field_name, "pk")
    )


def _page(rows: list[Deal], page_size: int) -> Page:
    """A page of at most ``page_size`` cards from up to one more row (which says that more follow)."""
    rows, has_more = rows[:page_size], len(rows) > page_size
    next_cursor = encode_cursor(getattr(rows[-1], BOARD_SORT.field), rows[-1].pk) if has_more else None
    return Page(items=rows, next_cursor=next_cursor, previous_cursor=None, sort=BOARD_SORT)


def first_pages(deals: QuerySet[Deal], stages: list[Stage], *, page_size: int = BOARD_FIRST_PAGE) -> dict[int, Page]:
    """The first page of several columns (stage pk → page), in one query whatever the number of stages.

    The same keyset scan as ``column_page``, once per stage, inside the query: a sub-select over the
    stages returns ``unnest(ARRAY(<the first page_size + 1 ids of that stage's column>))``, each array a
    LIMITed walk of ``deal_open_board`` (or ``…_team``), and only those rows are joined to owner,
    contact and company. One query instead of one per column saved about 2 ms of planning and ORM
    work per column on the board's first load.
    """
    if not stages:
        return {}
    keys = (deals.filter(stage_id=OuterRef("pk")).order_by(BOARD_SORT.field, "pk").values("pk")
            [: page_size + 1])
    ids = (Stage.objects.filter(pk__in=[s.pk for s in stages])
           .annotate(deal_id=Func(ArraySubquery(keys), function="unnest", output_field=BigIntegerField()))
           .values("deal_id"))
    by_stage = {s.pk: [] for s in stages}
    for deal in _card_rows(ids):
        by_stage[deal.stage_id].append(deal)
    return {pk: _page(rows, page_size) for pk, rows in by_stage.items()}


def board(*, user: User, pipeline: Pipeline, owner=None, team=None, closed_since=None,
          page_size: int = BOARD_FIRST_PAGE) -> list[Column]:
    """The columns of a pipeline's board: one per stage, the open ones with totals and the first page of cards.

    With ``closed_since``, the won and lost columns carry how many deals closed there since then and
    their amount (the board's Won/Lost strip), counted in the same grouped query as the open columns'
    totals: it reads the open deals and the recently closed ones in one pass (a BitmapOr of the
    open-deals and closed-deals indexes), grouped by stage and status. Without it they stay at zero.
    The query count is fixed by the number of stages, never by the number of deals.
    """
    stages = list(pipeline.stages.order_by("order", "id"))
    scope = _board_scope(user=user, pipeline=pipeline, owner=owner, team=team)
    deals = scope.filter(status=Deal.Status.OPEN)
    wanted = Q(status=Deal.Status.OPEN)
    if closed_since is not None:
        wanted |= _closed_since(closed_since)
    totals = column_totals(scope.filter(wanted), by_status=True)
    columns = []
    for stage in stages:
        column = Column(stage=stage)
        if stage.kind == Stage.Kind.OPEN:
            row = totals.get((stage.pk, Deal.Status.OPEN), {})
            column.count = row.get("count", 0)
            column.total = row.get("total") or Decimal(0)
            column.weighted = (row.get("weighted") or Decimal(0)).quantize(Decimal("0.01"))
            column.other_currency = row.get("other_currency", 0)
        elif closed_since is not None:
            # A won or lost stage holds deals of that status only (``deal_move`` sets both together).
            rows = [row for (stage_id, status), row in totals.items()
                    if stage_id == stage.pk and status != Deal.Status.OPEN]
            column.count = sum(row["count"] for row in rows)
            column.total = sum((row["total"] or Decimal(0) for row in rows), Decimal(0))
        columns.append(column)
    pages = first_pages(deals, [c.stage for c in columns if c.count and c.stage.kind == Stage.Kind.OPEN],
                        page_size=page_size)
    for column in columns:
        if column.stage.pk in pages:
            page = pages[column.stage.pk]
            column.deals, column.next_cursor = page.items, page.next_cursor
    return columns


def board_closed_totals(*, user: User, pipeline: Pipeline, since, owner=None, team=None) -> dict[int, dict]:
    """Per won/lost stage: how many deals closed there since a time, and their amount (company currency).

    A move's answer refreshes the Won or Lost drop target with these (the board's first load has them
    from ``board(closed_since=…)``); one grouped query on the closed-deals index.
    """
    qs = _board_scope(user=user, pipeline=pipeline, owner=owner, team=team).filter(_closed_since(since))
    rows = qs.order_by().values("stage_id").annotate(count=Count("id"), total=Sum("amount", filter=in_company_currency()))
    return {row["stage_id"]: row for row in rows}
