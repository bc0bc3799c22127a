"""The pipeline reports: forecast, weekly pipeline review and win/loss analysis.

Every figure is computed by PostgreSQL — ``Count``/``Sum`` with ``filter=``, conditional expressions,
and window functions that sum a grouped query's groups into every subtotal the page shows (per month,
owner, team, … and in all) in the same query — and every query starts from
``selectors.deals_visible_to(user)``, so a report never counts a deal its reader may not see. Python
only picks the figures out of the rows, puts them in order and fills months without deals with zeros.
Each report makes a fixed number of queries, whatever the number of deals.

Money sums are in the company currency (``settings.CRM_CURRENCY``); deals in other currencies are
counted but left out of the sums, and each report says how many were left out. Months and days are
those of the company time zone (``settings.TIME_ZONE``).

The parameter forms below are shared by the pages and the API, so both doors refuse the same input
with the same messages.
"""

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DateField,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import (
    Cast,
    Coalesce,
    Concat,
    Greatest,
    NullIf,
    Round,
    RowNumber,
    Trim,
    TruncMonth,
)
from django.db.models.lookups import GreaterThan
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import teams_visible_to, users_visible_to

from .models import Deal, Pipeline, Stage, StageChange
from .selectors import MONEY, deals_visible_to, in_company_currency, stale_q, weighted_expr

MAX_ID = 2**63 - 1
FORECAST_DEFAULT_MONTHS = 6
FORECAST_MAX_MONTHS = 24
WIN_LOSS_MAX_DAYS = 3 * 366
REVIEW_DEFAULT_DAYS = 7
REVIEW_MAX_DAYS = 366
# How many rows each section of the pipeline review lists ("and N more" tells the rest).
REVIEW_LIMIT = 100

ZERO = Value(Decimal("0.00"), output_field=MONEY)
RATE = DecimalField(max_digits=5, decimal_places=1)
DAYS = DecimalField(max_digits=12, decimal_places=1)
COUNT_AS_DECIMAL = DecimalField(max_digits=20, decimal_places=0)


def company_tz():
    return timezone.get_default_timezone()


def company_today() -> date:
    return timezone.localdate(timezone.now(), timezone=company_tz())


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the company time zone."""
    return datetime.combine(day, time.min, tzinfo=company_tz())


def add_months(month: date, count: int) -> date:
    """The first day of the month ``count`` months after ``month``'s."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_in(first: date, last: date) -> list[date]:
    """The first days of the months from ``first``'s to ``last``'s, both included."""
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    return [add_months(first, n) for n in range(max(count, 0))]


def quarter_of(day: date) -> tuple[date, date]:
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return first, add_months(first, 3) - timedelta(days=1)


def month_key(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def group_name(column: str) -> Max:
    """The name of a grouped row's related record (the same on every row of the group, so MAX picks it):
    for a user (``owner``), as ``User.__str__`` gives it (full name, else the username); else its ``name``.
    An aggregate, so the groups stay grouped by ids alone."""
    if column == "owner":
        full = Trim(Concat("owner__first_name", Value(" "), "owner__last_name", output_field=CharField()))
        return Max(Coalesce(NullIf(full, Value("")), "owner__username", output_field=CharField()))
    return Max(f"{column}__name")


# --- expressions ---------------------------------------------------------------------------------


def money(aggregate) -> Coalesce:
    """A money sum rounded to cents, 0 when there is nothing to add."""
    return Coalesce(Round(aggregate, 2, output_field=MONEY), ZERO, output_field=MONEY)


def percentage(part, whole) -> Round:
    """``part ÷ whole × 100`` with one decimal, NULL when ``whole`` is 0 (both are counts)."""
    return Round(
        Cast(part, COUNT_AS_DECIMAL) * Value(Decimal(100)) / NullIf(Cast(whole, COUNT_AS_DECIMAL), Value(Decimal(0))),
        1, output_field=RATE,
    )


COUNT, MONEY_SUM = "count", "money"


class GroupTotal(Func):
    """``SUM(<aggregate>)``, to be wrapped in a ``Window``: the total of a grouped query's aggregate over
    the groups of a partition — ``SUM(COUNT(…)) OVER (PARTITION BY owner_id)``. One grouped query then
    also gives every subtotal and the grand total (Django's ``Sum`` refuses an aggregate inside)."""

    function = "SUM"
    window_compatible = True


class MoneyTotal(Func):
    """A window total of money rounded to cents, 0 when there is none. It is no grouping column: only
    the window's partition columns are (a plain ``Round`` around a window would be grouped by)."""

    template = "COALESCE(ROUND(%(expressions)s, 2), 0.00)"
    output_field = MONEY

    def get_group_by_cols(self):
        return self.get_source_expressions()[0].get_group_by_cols()


def group_aggregates(figures: dict[str, tuple]) -> dict:
    """The aggregates of each group, under ``g_<name>`` (an annotation may not take a field's name)."""
    return {f"g_{name}": aggregate for name, (aggregate, _kind) in figures.items()}


def subtotals(figures: dict[str, tuple], levels: dict[str, list[str]]) -> dict:
    """For each level (a name and the columns it totals per; none for the grand total), each figure's sum
    over the level's partition, as ``<level>_<name>``; money rounded to cents, 0 when there is none."""
    annotations = {}
    for level, columns in levels.items():
        partition = [F(column) for column in columns] or None
        for name, (_aggregate, kind) in figures.items():
            if kind == COUNT:
                annotations[f"{level}_{name}"] = Window(
                    GroupTotal(F(f"g_{name}"), output_field=IntegerField()), partition_by=partition)
            else:
                annotations[f"{level}_{name}"] = MoneyTotal(
                    Window(GroupTotal(F(f"g_{name}"), output_field=MONEY), partition_by=partition))
    return annotations


def history_of(deals: QuerySet[Deal]) -> QuerySet[StageChange]:
    """The stage changes of these deals (no subquery when they are all the deals there are)."""
    changes = StageChange.objects.all()
    return changes.filter(deal__in=deals) if deals.query.has_filters() else changes


def _scoped(user: User, *, pipeline=None, owner=None, team=None) -> QuerySet[Deal]:
    qs = deals_visible_to(user)
    if pipeline is not None:
        qs = qs.filter(pipeline=pipeline)
    if owner is not None:
        qs = qs.filter(owner=owner)
    if team is not None:
        qs = qs.filter(team=team)
    return qs.order_by()


# --- parameters (shared by pages and API) --------------------------------------------------------


class IdChoiceField(forms.ModelChoiceField):
    """An optional id among the records the reader may choose; words and unknown ids are refused by name."""

    def __init__(self, queryset, *, unknown, **kwargs):
        super().__init__(queryset, required=False, **kwargs)
        self.error_messages = {**self.error_messages, "invalid_choice": unknown}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not re.fullmatch(r"[0-9]{1,19}", text) or not 0 < int(text) <= MAX_ID:
            raise ValidationError(_("Enter an id (a whole number)."), code="invalid")
        return super().to_python(text)


class MonthField(forms.CharField):
    """A month written ``YYYY-MM``; cleans to the first day of the month."""

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text)
        if not match or not 1900 <= int(match[1]) <= 9000 or not 1 <= int(match[2]) <= 12:
            raise ValidationError(_("“%(value)s” is not a month: write it as YYYY-MM, for example 2026-05."),
                                  code="invalid", params={"value": text[:20]})
        return date(int(match[1]), int(match[2]), 1)


class DayField(forms.CharField):
    """A day written ``YYYY-MM-DD``; with ``months=True`` a month ``YYYY-MM`` also does (its first day,
    or its last with ``end=True``)."""

    def __init__(self, *, months: bool = False, end: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.months, self.end = months, end

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        if self.months and re.fullmatch(r"[0-9]{4}-[0-9]{2}", text):
            month = MonthField().to_python(text)
            return add_months(month, 1) - timedelta(days=1) if self.end else month
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
                raise ValueError
            day = date.fromisoformat(text)
            if not 1900 <= day.year <= 9000:
                raise ValueError
        except ValueError:
            message = (_("“%(value)s” is not a date: write it as YYYY-MM-DD (or a month as YYYY-MM), "
                         "for example 2026-04-01.") if self.months
                       else _("“%(value)s” is not a date: write it as YYYY-MM-DD, for example 2026-04-01."))
            raise ValidationError(message, code="invalid", params={"value": text[:20]}) from None
        return day


def owner_choices(user: User) -> QuerySet[User]:
    return users_visible_to(user).exclude(role=User.Role.INTEGRATION)


class ReportFilters(forms.Form):
    """The filters every report takes: a pipeline, an owner and a team the reader may see."""

    def __init__(self, data=None, *, user: User, **kwargs):
        super().__init__(data, **kwargs)
        self.user = user
        self.fields["pipeline"] = IdChoiceField(
            Pipeline.objects.order_by("order", "id"), label=_("Pipeline"), empty_label=_("All pipelines"),
            unknown=_("Unknown pipeline."))
        self.fields["owner"] = IdChoiceField(
            owner_choices(user), label=_("Owner"), empty_label=_("Everyone"), unknown=_("Unknown owner."))
        self.fields["team"] = IdChoiceField(
            teams_visible_to(user), label=_("Team"), empty_label=_("All teams"), unknown=_("Unknown team."))

    def filters(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in ("pipeline", "owner", "team")}

    def api_errors(self) -> dict[str, list[str]]:
        return {("non_field_errors" if name == "__all__" else name): [str(m) for m in messages]
                for name, messages in self.errors.items()}


class ForecastParams(ReportFilters):
    """``from``/``to`` months (default: this month and the next five; at most 24 months)."""

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["from"] = MonthField(label=_("From month"), required=False)
        self.fields["to"] = MonthField(label=_("To month"), required=False)
        self.order_fields(["from", "to", "pipeline", "owner", "team"])

    def clean(self):
        data = super().clean()
        if "from" in self.errors or "to" in self.errors:
            return data
        first = data.get("from") or add_months(company_today(), 0)
        last = data.get("to") or add_months(first, FORECAST_DEFAULT_MONTHS - 1)
        if last < first:
            self.add_error("to", _("The last month is before the first month."))
        elif len(months_in(first, last)) > FORECAST_MAX_MONTHS:
            self.add_error("to", _("Choose at most %(count)d months.") % {"count": FORECAST_MAX_MONTHS})
        data["from"], data["to"] = first, last
        return data


class WinLossParams(ReportFilters):
    """``from``/``to`` closing days (a month ``YYYY-MM`` also does; default: this quarter; at most three
    years)."""

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["from"] = DayField(months=True, label=_("Closed from"), required=False)
        self.fields["to"] = DayField(months=True, end=True, label=_("Closed to"), required=False)
        self.order_fields(["from", "to", "pipeline", "owner", "team"])

    def clean(self):
        data = super().clean()
        if "from" in self.errors or "to" in self.errors:
            return data
        quarter = quarter_of(company_today())
        first, last = data.get("from") or quarter[0], data.get("to") or quarter[1]
        if last < first:
            self.add_error("to", _("The end date is before the start date."))
        elif (last - first).days + 1 > WIN_LOSS_MAX_DAYS:
            self.add_error("to", _("Choose a range of at most three years."))
        data["from"], data["to"] = first, last
        return data


class ReviewParams(ReportFilters):
    """``since`` a day (default: seven days ago; not in the future, at most a year ago)."""

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["since"] = DayField(label=_("Since"), required=False)
        self.order_fields(["since", "pipeline", "owner", "team"])

    def clean_since(self):
        since = self.cleaned_data.get("since")
        today = company_today()
        if since is None:
            return today - timedelta(days=REVIEW_DEFAULT_DAYS)
        if since > today:
            raise ValidationError(_("Choose a day that is not in the future."))
        if (today - since).days > REVIEW_MAX_DAYS:
            raise ValidationError(_("Choose a day at most a year ago."))
        return since


# --- forecast ------------------------------------------------------------------------------------

OVERDUE, NO_DATE, OUTSIDE = "overdue", "no_date", "outside"


def open_figures() -> dict[str, tuple]:
    """The open side of a forecast cell, each an aggregate and its kind: count, amount, weighted amount,
    and the deals left out of the amounts for their currency."""
    company = in_company_currency()
    return {
        "count": (Count("id"), COUNT),
        "amount": (Sum("amount", filter=company), MONEY_SUM),
        "weighted": (Sum(weighted_expr(), filter=company), MONEY_SUM),
        "other_currency": (Count("id", filter=~company), COUNT),
    }


def won_figures() -> dict[str, tuple]:
    """The won side of a forecast cell: count, amount, and the deals left out for their currency."""
    company = in_company_currency()
    return {
        "won_count": (Count("id"), COUNT),
        "won_amount": (Sum("amount", filter=company), MONEY_SUM),
        "won_other_currency": (Count("id", filter=~company), COUNT),
    }


CELL_FIELDS = [*open_figures(), *won_figures()]


def _zero_cell() -> dict:
    return {name: Decimal("0.00") if "amount" in name or name == "weighted" else 0 for name in CELL_FIELDS}


def _cell(row: dict | None, level: str = "") -> dict:
    """A forecast cell ``{count, amount, weighted, …}`` from a dict of figures, or one level of a grouped row."""
    prefix = f"{level}_" if level else ""
    return {name: row.get(prefix + name, zero) for name, zero in _zero_cell().items()} if row else _zero_cell()


def _levels(bucket: list[str]) -> dict[str, list[str]]:
    return {
        "all": [],                          # every deal of the report
        "month": bucket,                    # per month (or overdue / no date / outside)
        "owner": ["owner_id"],
        "owner_month": ["owner_id", *bucket],
        "team": ["team_id"],
        "team_month": ["team_id", *bucket],
    }


def _grouped(deals: QuerySet[Deal], columns: list[str], figures: dict) -> list[dict]:
    """The deals grouped by owner, team and the bucket ``columns``; each group also carries every total
    of the partitions it belongs to (per month, owner, owner and month, team, team and month, all) as
    window sums. Grouped by ids only (cheap to sort); the names come as aggregates."""
    return list(
        deals.values("owner_id", "team_id", *columns)
        .alias(**group_aggregates(figures))
        .annotate(owner_name=group_name("owner"), team_name=group_name("team"))
        # (the windows in an annotate() of their own: one with an aggregate beside them would group by them)
        .annotate(**subtotals(figures, _levels(columns)))
    )


def forecast(*, user: User, first_month: date, last_month: date, pipeline=None, owner=None, team=None,
             today: date | None = None) -> dict:
    """Weighted open pipeline by expected close month next to what was won in each month.

    An open deal falls in exactly one bucket: ``no_date`` (no expected close date), ``overdue`` (its
    expected close date is before today), its month when that month is in the range and not overdue,
    or ``outside`` (due after today but outside the range). A won deal falls in the month of its
    ``closed_at`` in the company time zone, and is counted only when that month is in the range.

    Two queries, the open deals and the won deals, each grouped by owner, team and bucket with every
    total the report shows summed from those groups by window functions in the same query — so each
    figure is PostgreSQL's sum. Python only puts a cell's open figures beside its won figures.
    """
    today = today or company_today()
    range_end = add_months(last_month, 1) - timedelta(days=1)
    scoped = _scoped(user, pipeline=pipeline, owner=owner, team=team)
    open_deals = scoped.filter(status=Deal.Status.OPEN).annotate(
        # The expected close month when it is in the range and not past…
        month=Case(
            When(expected_close_date__gte=max(first_month, today), expected_close_date__lte=range_end,
                 then=Cast(TruncMonth("expected_close_date"), DateField())),
            default=None, output_field=DateField(),
        ),
        # … or else the deal's special bucket.
        special=Case(
            When(expected_close_date__isnull=True, then=Value(NO_DATE)),
            When(expected_close_date__lt=today, then=Value(OVERDUE)),
            When(expected_close_date__gt=range_end, then=Value(OUTSIDE)),
            When(expected_close_date__lt=first_month, then=Value(OUTSIDE)),
            default=None, output_field=CharField(),
        ),
    )
    won_deals = scoped.filter(
        status=Deal.Status.WON, closed_at__gte=day_start(first_month), closed_at__lt=day_start(add_months(last_month, 1)),
    ).annotate(month=Cast(TruncMonth("closed_at", tzinfo=company_tz()), DateField()))
    groups = [(row, month_key(row["month"]) if row["month"] else row["special"])
              for row in _grouped(open_deals, ["special", "month"], open_figures())]
    groups += [(row, month_key(row["month"])) for row in _grouped(won_deals, ["month"], won_figures())]

    # Every group carries the totals of the partitions it belongs to: take each one from the first group
    # seen (an open group gives a cell's open figures, a won group its won figures).
    months, owner_months, team_months = {}, {}, {}
    owners, teams, total = {}, {}, {}
    for row, bucket in groups:
        for cells, key, level in ((months, bucket, "month"), (owner_months, (row["owner_id"], bucket), "owner_month"),
                                  (team_months, (row["team_id"], bucket), "team_month")):
            _merge(cells.setdefault(key, {}), row, level)
        owner_entry = owners.setdefault(row["owner_id"], {"name": row["owner_name"] or "", "total": {}})
        _merge(owner_entry["total"], row, "owner")
        team_entry = teams.setdefault(row["team_id"], {"name": row["team_name"] or "", "total": {}})
        _merge(team_entry["total"], row, "team")
        _merge(total, row, "all")
    total = _cell(total)

    month_starts = months_in(first_month, last_month)

    def buckets(cells: dict, key=None) -> dict:
        def get(bucket):
            return _cell(cells.get(bucket if key is None else (key, bucket)))

        return {
            "months": [{"month": month_key(m), "start": m, **get(month_key(m))} for m in month_starts],
            OVERDUE: get(OVERDUE), NO_DATE: get(NO_DATE), OUTSIDE: get(OUTSIDE),
        }

    def by_name(entries: dict):
        return sorted(entries.items(), key=lambda item: (*_last(item[1]["name"]), item[0] or 0))

    return {
        "currency": settings.CRM_CURRENCY,
        "from": first_month, "to": last_month, "today": today,
        **buckets(months),
        "total": total,
        "owners": [{"id": key, "name": value["name"], **buckets(owner_months, key), "total": _cell(value["total"])}
                   for key, value in by_name(owners)],
        "teams": [{"id": key, "name": value["name"], **buckets(team_months, key), "total": _cell(value["total"])}
                  for key, value in by_name(teams)],
        "other_currency": {"open": total["other_currency"], "won": total["won_other_currency"]},
    }


def _merge(cell: dict, row: dict, level: str) -> None:
    """Copy a level's figures of a grouped row into a cell, unless the cell has them already."""
    prefix = f"{level}_"
    for name, value in row.items():
        if name.startswith(prefix) and name[len(prefix):] in CELL_FIELDS:
            cell.setdefault(name[len(prefix):], value)


# --- weekly pipeline review ----------------------------------------------------------------------

MOVES = [StageChange.Direction.FORWARD, StageChange.Direction.BACKWARD, StageChange.Direction.WON,
         StageChange.Direction.LOST, StageChange.Direction.REOPENED]
NEW, STALE = "new", "stale"
REVIEW_SECTIONS = [*(str(d) for d in MOVES), NEW, STALE]


def _section_aggregates(key: str, condition: Q) -> dict:
    company = in_company_currency()
    return {
        f"r_{key}_deals": Count("id", filter=condition),
        f"r_{key}_amount": money(Sum("amount", filter=condition & company)),
        f"r_{key}_other_currency": Count("id", filter=condition & ~company),
    }


def beyond(total, limit: int) -> Greatest:
    """How many of ``total`` rows a list of ``limit`` rows leaves out."""
    return Greatest(total - Value(limit), Value(0), output_field=IntegerField())


def pipeline_review(*, user: User, since: date, pipeline=None, owner=None, team=None, now: datetime | None = None,
                    limit: int | None = None) -> dict:
    """What happened to the pipeline since a day (midnight, company time zone), and what is stuck now.

    The moves come from the stage history: forward, backward, won, lost and reopened changes since the
    day, newest first (one row per change; a deal moved twice shows twice). Each section's figures count
    *deals* (a deal moved twice counts once, its amount once). New deals are the ones created since the
    day; stuck deals are the open deals that are stale now, longest in their stage first.

    Five queries: the moved deals' figures (each deal once, marked with the kinds of moves it made), the
    new and stale deals' figures, and three bounded lists.
    """
    now = now or timezone.now()
    limit = limit or REVIEW_LIMIT
    start = day_start(since)
    deals = _scoped(user, pipeline=pipeline, owner=owner, team=team)
    moves = history_of(deals).filter(changed_at__gte=start, direction__in=MOVES)
    # Each deal once per kind of move: its latest change of that kind since the day.
    later_same_kind = StageChange.objects.filter(
        deal_id=OuterRef("deal_id"), direction=OuterRef("direction"), changed_at__gte=start,
    ).filter(Q(changed_at__gt=OuterRef("changed_at")) | Q(changed_at=OuterRef("changed_at"), id__gt=OuterRef("id")))
    company = Q(deal__currency=settings.CRM_CURRENCY)
    figures = {}
    for row in moves.filter(~Exists(later_same_kind)).values("direction").annotate(
        deals=Count("id"),
        amount=money(Sum("deal__amount", filter=company)),
        other_currency=Count("id", filter=~company),
    ):
        figures.update({f"r_{row['direction']}_{name}": row[name] for name in ("deals", "amount", "other_currency")})
    for direction in MOVES:
        for name, zero in (("deals", 0), ("amount", Decimal("0.00")), ("other_currency", 0)):
            figures.setdefault(f"r_{direction}_{name}", zero)
    conditions = {NEW: Q(created_at__gte=start), STALE: stale_q(now)}
    aggregates = {}
    for key, condition in conditions.items():
        aggregates.update(_section_aggregates(key, condition))
    figures.update(deals.filter(conditions[NEW] | conditions[STALE]).aggregate(**aggregates))

    changes = list(
        moves.select_related("deal", "deal__lost_reason", "deal__owner", "actor")
        .only("deal_id", "from_stage_name", "to_stage_name", "direction", "changed_at", "actor",
              "deal__name", "deal__amount", "deal__currency", "deal__lost_note", "deal__owner",
              "deal__lost_reason__name", *(f"{who}__{name}" for who in ("deal__owner", "actor")
                                           for name in ("first_name", "last_name", "username")))
        .annotate(
            position=Window(RowNumber(), partition_by=[F("direction")], order_by=[F("changed_at").desc(),
                                                                                   F("id").desc()]),
            moves=Window(Count("id"), partition_by=[F("direction")]),
            more=beyond(Window(Count("id"), partition_by=[F("direction")]), limit),
        )
        .filter(position__lte=limit)
        .order_by("direction", "-changed_at", "-id")
    )
    new_deals = list(
        deals.filter(conditions[NEW]).select_related("stage", "owner", "created_by")
        .annotate(more=beyond(Window(Count("id")), limit))
        .order_by("-created_at", "-id")[:limit]
    )
    stale = list(
        deals.filter(conditions[STALE]).select_related("stage", "owner")
        .annotate(in_stage=ExpressionWrapper(Value(now) - F("stage_entered_at"), output_field=DurationField()),
                  more=beyond(Window(Count("id")), limit))
        .order_by("stage_entered_at", "id")[:limit]
    )

    sections = {}
    for key in REVIEW_SECTIONS:
        section = {
            "key": key,
            "deals": figures[f"r_{key}_deals"],
            "amount": figures[f"r_{key}_amount"],
            "other_currency": figures[f"r_{key}_other_currency"],
        }
        if key == NEW:
            items, section["moves"] = new_deals, None
        elif key == STALE:
            items, section["moves"] = stale, None
        else:
            items = [change for change in changes if change.direction == key]
            section["moves"] = items[0].moves if items else 0
        section["items"] = items
        # How many rows the list leaves out (counted by the query: the rows before the limit, less it).
        section["more"] = items[0].more if items else 0
        sections[key] = section
    return {
        "currency": settings.CRM_CURRENCY, "since": since, "start": start, "now": now,
        "sections": sections, "limit": limit,
        # Whether any section left deals out of its sum for their currency (each section says how many).
        "other_currency": any(section["other_currency"] for section in sections.values()),
    }


# --- win/loss ------------------------------------------------------------------------------------


def win_loss_figures() -> dict[str, tuple]:
    """Won and lost deals: counts, amounts in the company currency, and the deals left out of the amounts."""
    is_won, is_lost, company = Q(status=Deal.Status.WON), Q(status=Deal.Status.LOST), in_company_currency()
    return {
        "won_count": (Count("id", filter=is_won), COUNT),
        "won_amount": (Sum("amount", filter=is_won & company), MONEY_SUM),
        "won_other_currency": (Count("id", filter=is_won & ~company), COUNT),
        "lost_count": (Count("id", filter=is_lost), COUNT),
        "lost_amount": (Sum("amount", filter=is_lost & company), MONEY_SUM),
        "lost_other_currency": (Count("id", filter=is_lost & ~company), COUNT),
    }


WIN_LOSS_FIELDS = [*win_loss_figures(), "win_rate"]
LOST_FIELDS = ["lost_count", "lost_amount", "lost_other_currency"]
# The closed deals are grouped by owner and lead source, the lost ones by reason and lost-from stage:
# two small sets of groups (a cross product of all four would be large), each breakdown a window sum.
CLOSED_LEVELS = {"all": [], "source": ["lead_source_id"], "owner": ["owner_id"]}
LOST_LEVELS = {"reason": ["lost_reason_id"], "stage": ["lost_from"]}


def _first_per_level(rows: list[dict], levels: dict[str, list[str]]) -> dict[str, dict]:
    """Every row carries the totals of the partitions it belongs to: take each one from the first row seen."""
    firsts = {level: {} for level in levels}
    for row in rows:
        for level, columns in levels.items():
            firsts[level].setdefault(tuple(row[c] for c in columns), row)
    return firsts


class RateOf(Func):
    """``part ÷ whole × 100`` with one decimal (NULL when ``whole`` is 0), of two window totals; like
    ``MoneyTotal`` it is no grouping column."""

    output_field = RATE

    def as_sql(self, compiler, connection, **extra_context):
        (part, part_params), (whole, whole_params) = (compiler.compile(e) for e in self.get_source_expressions())
        return f"ROUND(100.0 * {part} / NULLIF({whole}, 0), 1)", (*part_params, *whole_params)

    def get_group_by_cols(self):
        return []


def _zero_win_loss() -> dict:
    return {"won_count": 0, "won_amount": Decimal("0.00"), "won_other_currency": 0, "lost_count": 0,
            "lost_amount": Decimal("0.00"), "lost_other_currency": 0, "win_rate": None}


def _pick(row: dict, level: str, names: list[str]) -> dict:
    return {name: row[f"{level}_{name}"] for name in names}


def _last(value) -> tuple:
    """A sort key putting empty names last."""
    return (not value, value or "")


def win_loss(*, user: User, date_from: date, date_to: date, pipeline=None, owner=None, team=None) -> dict:
    """Won and lost deals closed between two days (company time zone, both included), broken down by
    lost reason, lead source, owner and the stage deals were lost from; and for one pipeline (the
    chosen one, else the default) the stage-to-stage conversion and the average time in each stage.

    **Win rate**: won ÷ (won + lost), by number of deals. **Lost from**: the from-stage of the deal's
    latest change into a lost stage. **Conversion** of stage *i*: of the deals that entered stage *i*
    between the two days (a stage change into it, including a deal's creation in it), the share that
    afterwards — up to now — moved into a later open stage of the pipeline or into a won stage. A deal
    that entered a stage twice counts once; a deal that skipped a stage did not enter it; moving back
    or being lost is not going further. **Average time in a stage**: the mean of
    ``seconds_in_from_stage`` over the changes out of the stage between the two days, in days with
    one decimal.

    Five queries: the stages; the closed deals grouped by owner and lead source, and the lost ones by
    reason and lost-from stage, every breakdown a window sum of those groups; the stage changes since
    the first day grouped per deal, then counted per stage; the stays ended in the range, per stage.
    """
    start, end = day_start(date_from), day_start(date_to + timedelta(days=1))
    scoped = _scoped(user, pipeline=pipeline, owner=owner, team=team)

    stages = list(Stage.objects.select_related("pipeline").order_by("pipeline__order", "pipeline_id", "order", "id"))
    by_id = {stage.pk: stage for stage in stages}
    if pipeline is not None:
        funnel_pipeline = pipeline
    else:
        pipelines = [stage.pipeline for stage in stages]
        funnel_pipeline = next((p for p in pipelines if p.is_default), pipelines[0] if pipelines else None)

    figures = win_loss_figures()
    closed = scoped.filter(status__in=[Deal.Status.WON, Deal.Status.LOST], closed_at__gte=start, closed_at__lt=end)
    rates = {
        f"{level}_win_rate": RateOf(
            Window(GroupTotal(F("g_won_count"), output_field=IntegerField()), partition_by=[F(c) for c in cols] or None),
            Window(GroupTotal(F("g_closed"), output_field=IntegerField()), partition_by=[F(c) for c in cols] or None),
        ) for level, cols in CLOSED_LEVELS.items()
    }
    closed_rows = list(
        closed.values("owner_id", "lead_source_id")
        .alias(**group_aggregates(figures), g_closed=Count("id"))
        .annotate(owner_name=group_name("owner"), source_name=group_name("lead_source"))
        .annotate(**subtotals(figures, CLOSED_LEVELS), **rates)
    )
    lost_figures = {name: figures[name] for name in LOST_FIELDS}
    lost_rows = list(
        closed.filter(status=Deal.Status.LOST)
        # The change that lost the deal: deal_move stamps it and closed_at with the same instant, so a join
        # finds it (a deal lost, reopened and lost again matches its last loss only).
        .annotate(loss=FilteredRelation("stage_changes", condition=Q(
            stage_changes__direction=StageChange.Direction.LOST, stage_changes__changed_at=F("closed_at"),
            # the same range again, so the join reads only the range's changes
            stage_changes__changed_at__gte=start, stage_changes__changed_at__lt=end)))
        .values("lost_reason_id", lost_from=F("loss__from_stage_id"))
        .alias(**group_aggregates(lost_figures))
        .annotate(reason_name=group_name("lost_reason"))
        .annotate(**subtotals(lost_figures, LOST_LEVELS))
    )
    closed_firsts = _first_per_level(closed_rows, CLOSED_LEVELS)
    lost_firsts = _first_per_level(lost_rows, LOST_LEVELS)
    total = _pick(closed_rows[0], "all", WIN_LOSS_FIELDS) if closed_rows else _zero_win_loss()
    by_reason = sorted(
        ({"id": key[0], "name": row["reason_name"] or "", **_pick(row, "reason", LOST_FIELDS)}
         for key, row in lost_firsts["reason"].items()),
        key=lambda r: (-r["lost_count"], *_last(r["name"])))
    by_source = sorted(
        ({"id": key[0], "name": row["source_name"] or "", **_pick(row, "source", WIN_LOSS_FIELDS)}
         for key, row in closed_firsts["source"].items()),
        key=lambda r: (*_last(r["name"]), r["id"] or 0))
    by_owner = sorted(
        ({"id": key[0], "name": row["owner_name"] or "", **_pick(row, "owner", WIN_LOSS_FIELDS)}
         for key, row in closed_firsts["owner"].items()),
        key=lambda r: (*_last(r["name"]), r["id"] or 0))
    # A stage deleted since (or a loss with no history) has no id and no name.
    by_lost_stage = sorted(
        ({"id": key[0], "name": by_id[key[0]].name if key[0] in by_id else "",
          "pipeline": by_id[key[0]].pipeline.name if key[0] in by_id else "", **_pick(row, "stage", LOST_FIELDS)}
         for key, row in lost_firsts["stage"].items()),
        key=lambda r: (-r["lost_count"], r["id"] is None, r["id"] or 0))

    funnel = []
    if funnel_pipeline is not None:
        funnel = _funnel(scoped, [s for s in stages if s.pipeline_id == funnel_pipeline.pk], start, end)

    return {
        "currency": settings.CRM_CURRENCY, "from": date_from, "to": date_to,
        "total": total,
        "by_reason": by_reason,
        "by_source": by_source,
        "by_owner": by_owner,
        "by_lost_stage": by_lost_stage,
        "funnel_pipeline": funnel_pipeline,
        "funnel": funnel,
        "other_currency": total["won_other_currency"] + total["lost_other_currency"],
    }


def _funnel(scoped: QuerySet[Deal], stages: list[Stage], start: datetime, end: datetime) -> list[dict]:
    """Conversion and average time in stage for a pipeline's open and won stages (see ``win_loss``).

    Two queries. The stage changes into the pipeline's stages since ``start``, grouped per deal — when
    it first entered each stage in the range, when it last entered each stage at all — then counted
    per stage: a deal went further from stage *i* when it last entered a later open stage or a won stage
    after it first entered *i* in the range. And the changes out of each stage in the range, averaged.
    """
    open_stages = [s for s in stages if s.kind == Stage.Kind.OPEN]
    won_stages = [s for s in stages if s.kind == Stage.Kind.WON]
    funnel_stages = open_stages + won_stages
    beyond = {s.pk: open_stages[index + 1:] + won_stages for index, s in enumerate(open_stages)}
    in_range = Q(changed_at__lt=end)
    changes = history_of(scoped).filter(changed_at__gte=start)
    per_deal = changes.filter(to_stage_id__in=[s.pk for s in funnel_stages]).values("deal_id").annotate(
        **{f"in_{s.pk}": Min("changed_at", filter=in_range & Q(to_stage_id=s.pk)) for s in funnel_stages},
        **{f"last_{s.pk}": Max("changed_at", filter=Q(to_stage_id=s.pk)) for s in open_stages[1:] + won_stages},
    )
    sums = {}
    for stage in funnel_stages:
        entered_q = Q(**{f"in_{stage.pk}__isnull": False})
        entered = Count("deal_id", filter=entered_q)
        sums[f"entered_{stage.pk}"] = entered
        if beyond.get(stage.pk):
            later = [F(f"last_{s.pk}") for s in beyond[stage.pk]]
            reached = Greatest(*later) if len(later) > 1 else later[0]
            advanced = Count("deal_id", filter=entered_q & Q(GreaterThan(reached, F(f"in_{stage.pk}"))))
            sums[f"advanced_{stage.pk}"] = advanced
            sums[f"rate_{stage.pk}"] = percentage(advanced, entered)
    totals = per_deal.aggregate(**sums)
    stays = {row["from_stage_id"]: row for row in changes.filter(
        in_range, from_stage_id__in=[s.pk for s in funnel_stages], seconds_in_from_stage__isnull=False,
    ).values("from_stage_id").annotate(
        stays=Count("id"),
        average_days=Round(Avg("seconds_in_from_stage", output_field=DecimalField()) / Value(Decimal(86400)), 1,
                           output_field=DAYS),
    )}
    return [{
        "stage_id": stage.pk, "name": stage.name, "kind": stage.kind,
        "entered": totals[f"entered_{stage.pk}"],
        # Nothing comes after a won stage: its conversion is not defined.
        "advanced": totals.get(f"advanced_{stage.pk}") if stage.kind == Stage.Kind.OPEN else None,
        "rate": totals.get(f"rate_{stage.pk}") if stage.kind == Stage.Kind.OPEN else None,
        "stays": stays.get(stage.pk, {}).get("stays", 0),
        "average_days": stays.get(stage.pk, {}).get("average_days"),
    } for stage in funnel_stages]
