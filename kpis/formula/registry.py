"""What formulas may read: the sources (tables), their typed fields, relations for ``has``, the time anchor
and default window, and the path from each source to each dimension (team, owner, pipeline, lead source).

Developer-owned: every ORM path here is written by us; nothing a formula says becomes a path, a keyword
argument or an alias.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now
from django.utils.translation import gettext_lazy as _

# Field types.
TEXT, NUMBER, CURRENCY, DATE, DATETIME, BOOL, CHOICE, REF, ID = (
    "text", "number", "currency", "date", "datetime", "bool", "choice", "ref", "id",
)
NUMERIC_TYPES = {NUMBER, CURRENCY}
TIME_TYPES = {DATE, DATETIME}

TYPE_LABELS = {
    TEXT: _("text"), NUMBER: _("a number"), CURRENCY: _("an amount"), DATE: _("a date"),
    DATETIME: _("a date and time"), BOOL: _("yes/no"), CHOICE: _("a choice"), REF: _("a name"), ID: _("an id"),
}


class Numeric(Func):
    """``(expr)::numeric`` — all formula arithmetic is numeric, never integer division."""

    template = "(%(expressions)s)::numeric"
    output_field = DecimalField()


class EpochDays(Func):
    """The length of an interval in days, fractional."""

    template = "(EXTRACT(EPOCH FROM (%(expressions)s)) / 86400.0)::numeric"
    output_field = DecimalField()


@dataclass
class Ctx:
    """What a field's SQL depends on: the instant state fields are read at (None: now, the current value),
    the day exchange rates are read on, and the contact completeness rules."""

    at: object = None
    rate_day: object = None
    contact_rules: object = None
    piece: tuple | None = None  # (field name, i): only rows under that field's i-th piece (see Field.pieces)


@dataclass
class Field:
    name: str
    type: str
    path: str | None = None  # the ORM path of the column
    choices: tuple = ()
    ref: tuple | None = None  # REF: (model label, the field the formula names rows by)
    state: bool = False  # its value depends on the instant (``at period start/end``)
    build: Callable | None = None  # (ctx) -> expression, for computed values
    cond: Callable | None = None  # (ctx) -> Q, for computed yes/no fields
    raw: str | None = None  # a column that compares like the value (score >= 9 without a cast on every row)
    # (ctx) -> [(Q, expression)] or None: the value piece by piece — under each (two-valued, mutually exclusive,
    # together exhaustive) condition the value is that expression. Conditions compare each piece under its own
    # condition, so that a piece that is a plain column can use an index.
    pieces: Callable | None = None

    def value(self, ctx: Ctx):
        if self.build is not None:
            return self.build(ctx)
        return F(self.path or self.name)

    def compared(self, ctx: Ctx):
        """What conditions compare: the column itself when it can, else the value."""
        return F(self.raw) if self.raw else self.value(ctx)

    def is_true(self, ctx: Ctx) -> Q:
        if self.cond is not None:
            return self.cond(ctx)
        return Q(**{self.path or self.name: True})

    @property
    def type_label(self) -> str:
        return str(TYPE_LABELS[self.type])


@dataclass
class Relation:
    name: str
    target: str  # the source the related rows are
    link: str  # the ORM path on the target that points at this source's row


@dataclass
class Source:
    name: str
    model_label: str
    anchor: str
    fields: dict
    dims: dict  # dimension kind -> ORM path of the dimension id
    relations: dict = field(default_factory=dict)
    default_window: str = "period"
    public: bool = True
    label: object = ""
    metric_dims: bool = False  # the special dimension rule of external metrics

    @property
    def model(self):
        return apps.get_model(self.model_label)

    def dimension_q(self, kind: str, value) -> Q:
        """Rows that belong to dimension value ``value`` (an id or an OuterRef) of ``kind``.

        External metrics: the rows of a metric kept per ``kind`` with that id; the rows of a company-wide metric
        only when it ``applies_to_breakdowns`` (customer lifetime holds for each lead source; the company's sales
        spend is not each lead source's); no rows of a metric kept per another kind."""
        if self.metric_dims:
            return (Q(metric__dimension_kind="", metric__applies_to_breakdowns=True)
                    | (Q(metric__dimension_kind=kind) & Q(dimension_id=value)))
        return Q(**{self.dims[kind]: value})


# --- computed fields -----------------------------------------------------------------------------


def converted(expression, ctx: Ctx):
    """A deal money expression in the company currency: other currencies × the latest rate on or before the
    period's last day; no rate → NULL (left out of sums)."""
    from kpis.models import ExchangeRate

    rate = Subquery(
        ExchangeRate.objects.filter(currency=OuterRef("currency"), valid_from__lte=ctx.rate_day)
        .order_by("-valid_from").values("rate")[:1]
    )
    return Case(
        When(currency=settings.CRM_CURRENCY, then=Numeric(expression)),
        default=ExpressionWrapper(Numeric(expression) * Numeric(rate), output_field=DecimalField()),
        output_field=DecimalField(),
    )


def deal_status(ctx: Ctx):
    if ctx.at is None:
        return F("status")
    return Case(
        When(closed_at__isnull=True, then=Value("open")),
        When(closed_at__gte=ctx.at, then=Value("open")),
        default=F("status"), output_field=CharField(),
    )


def _stage_before(at):
    from contacts.models import LifecycleChange

    return Subquery(LifecycleChange.objects.filter(contact=OuterRef("pk"), changed_at__lt=at).order_by(
        "-changed_at", "-id").values("to_stage")[:1], output_field=CharField())


def contact_stage(ctx: Ctx):
    """The stage at ``ctx.at``: the current one when it last changed before then, else the ``to_stage`` of the
    last lifecycle change before then (contacts get one on creation), else no value."""
    if ctx.at is None:
        return F("lifecycle_stage")
    return Case(
        When(lifecycle_changed_at__lt=ctx.at, then=F("lifecycle_stage")),
        default=_stage_before(ctx.at), output_field=CharField(),
    )


def contact_stage_pieces(ctx: Ctx):
    """``contact_stage`` in two pieces, for conditions: ``lifecycle_changed_at < T`` → the column (an index
    on (lifecycle_stage, lifecycle_changed_at, created_at) finds those rows), else → the last change before T
    (a correlated subquery, only for the contacts changed since T). ``lifecycle_changed_at`` is NOT NULL, so
    the two conditions are two-valued and exactly one holds."""
    if ctx.at is None:
        return None
    unchanged = Q(lifecycle_changed_at__lt=ctx.at)
    return [(unchanged, F("lifecycle_stage")), (~unchanged, _stage_before(ctx.at))]


def archived(ctx: Ctx) -> Q:
    if ctx.at is None:
        return Q(archived_at__isnull=False)
    return Q(archived_at__lt=ctx.at)


def contact_complete(ctx: Ctx) -> Q:
    """Every required and important field filled (built-in and custom), as ``EntityRules.completeness`` counts."""
    from django.db.models.fields.json import KeyTextTransform

    from contacts.models import Contact

    rules = ctx.contact_rules
    q = Q()
    if rules is None:  # pragma: no cover - the compiler always loads them when ``complete`` is used
        return q
    names = list(dict.fromkeys(list(rules.required) + list(rules.important)))
    for name in names:
        try:
            model_field = Contact._meta.get_field(name)
        except Exception:  # noqa: BLE001 - a rule naming a field that no longer exists is ignored
            continue
        if model_field.is_relation:
            q &= Q(**{f"{model_field.attname}__isnull": False})
        elif model_field.get_internal_type() in ("CharField", "TextField", "EmailField"):
            q &= ~Q(**{model_field.attname: ""}) & Q(**{f"{model_field.attname}__isnull": False})
        else:
            q &= Q(**{f"{model_field.attname}__isnull": False})
    for definition in rules.custom_fields:
        if definition.is_required or definition.is_important:
            value = KeyTextTransform(definition.key, "custom_fields")
            from django.db.models.lookups import In, IsNull

            q &= Q(IsNull(value, False)) & ~Q(In(KeyTextTransform(definition.key, "custom_fields"),
                                                ["", "[]", "{}"]))
    return q


def _choices(label: str, field_name: str) -> tuple:
    model = apps.get_model(label)
    return tuple(value for value, _label in model._meta.get_field(field_name).choices)


def _lifecycle_choices() -> tuple:
    from contacts.models import LifecycleStage

    return tuple(LifecycleStage.values)


USER = "accounts.User"


def _owner_team() -> dict:
    return {
        "owner": Field("owner", REF, "owner_id", ref=(USER, "username")),
        "team": Field("team", REF, "team_id", ref=("accounts.Team", "name")),
    }


def _build_sources() -> dict:
    from contacts.models import Activity
    from kpis.models import SurveyResponse
    from pipeline.models import Deal, StageChange

    lifecycle = _lifecycle_choices()
    sources = {}

    contact_fields = {
        **{name: Field(name, TEXT) for name in ("first_name", "last_name", "email", "phone", "mobile", "city",
                                                 "country", "job_title")},
        "lifecycle_stage": Field("lifecycle_stage", CHOICE, choices=lifecycle, state=True, build=contact_stage,
                                 pieces=contact_stage_pieces),
        "lead_source": Field("lead_source", REF, "lead_source_id", ref=("contacts.LeadSource", "name")),
        **_owner_team(),
        "company": Field("company", REF, "company_id", ref=("contacts.Company", "name")),
        "created_at": Field("created_at", DATETIME),
        "updated_at": Field("updated_at", DATETIME),
        "archived_at": Field("archived_at", DATETIME),
        "lifecycle_changed_at": Field("lifecycle_changed_at", DATETIME),
        "archived": Field("archived", BOOL, state=True, cond=archived),
        "complete": Field("complete", BOOL, cond=contact_complete),
        "id": Field("id", ID, "id"),
    }
    sources["contacts"] = Source(
        "contacts", "contacts.Contact", "created_at", contact_fields,
        dims={"team": "team_id", "owner": "owner_id", "source": "lead_source_id"},
        relations={
            "deals": Relation("deals", "deals", "contact"),
            "activities": Relation("activities", "activities", "contact"),
            "survey_responses": Relation("survey_responses", "survey_responses", "contact"),
            "lifecycle_changes": Relation("lifecycle_changes", "lifecycle_changes", "contact"),
        },
        label=_("contacts"),
    )

    sources["companies"] = Source(
        "companies", "contacts.Company", "created_at",
        {
            **{name: Field(name, TEXT) for name in ("name", "industry", "city", "country", "email", "phone",
                                                     "website")},
            "size": Field("size", CHOICE, choices=_choices("contacts.Company", "size")),
            "annual_revenue": Field("annual_revenue", NUMBER, build=lambda ctx: Numeric(F("annual_revenue")),
                                    raw="annual_revenue"),
            "lead_source": Field("lead_source", REF, "lead_source_id", ref=("contacts.LeadSource", "name")),
            **_owner_team(),
            "archived": Field("archived", BOOL, state=True, cond=archived),
            "created_at": Field("created_at", DATETIME),
            "updated_at": Field("updated_at", DATETIME),
            "archived_at": Field("archived_at", DATETIME),
            "id": Field("id", ID, "id"),
        },
        dims={"team": "team_id", "owner": "owner_id", "source": "lead_source_id"},
        relations={
            "deals": Relation("deals", "deals", "company"),
            "activities": Relation("activities", "activities", "company"),
            "contacts": Relation("contacts", "contacts", "company"),
        },
        label=_("companies"),
    )

    sources["deals"] = Source(
        "deals", "pipeline.Deal", "created_at",
        {
            "name": Field("name", TEXT),
            "status": Field("status", CHOICE, choices=tuple(Deal.Status.values), state=True, build=deal_status),
            "amount": Field("amount", CURRENCY, build=lambda ctx: converted(F("amount"), ctx)),
            "weighted_amount": Field(
                "weighted_amount", CURRENCY,
                build=lambda ctx: ExpressionWrapper(
                    converted(F("amount"), ctx) * Numeric(F("stage__probability")) / Value(100),
                    output_field=DecimalField()),
            ),
            "probability": Field("probability", NUMBER, build=lambda ctx: Numeric(F("stage__probability")),
                                 raw="stage__probability"),
            "currency": Field("currency", TEXT),
            "stage": Field("stage", REF, "stage_id", ref=("pipeline.Stage", "name")),
            "pipeline": Field("pipeline", REF, "pipeline_id", ref=("pipeline.Pipeline", "name")),
            "lead_source": Field("lead_source", REF, "lead_source_id", ref=("contacts.LeadSource", "name")),
            "lost_reason": Field("lost_reason", REF, "lost_reason_id", ref=("pipeline.LostReason", "name")),
            **_owner_team(),
            "contact": Field("contact", ID, "contact_id"),
            "company": Field("company", REF, "company_id", ref=("contacts.Company", "name")),
            "customer": Field("customer", ID, build=lambda ctx: Coalesce(F("contact_id") * 2,
                                                                         F("company_id") * 2 + 1)),
            "expected_close_date": Field("expected_close_date", DATE),
            "created_at": Field("created_at", DATETIME),
            "updated_at": Field("updated_at", DATETIME),
            "closed_at": Field("closed_at", DATETIME),
            "stage_entered_at": Field("stage_entered_at", DATETIME),
            "cycle_days": Field("cycle_days", NUMBER, build=lambda ctx: EpochDays(
                ExpressionWrapper(F("closed_at") - F("created_at"), output_field=DecimalField()))),
            "stale": Field("stale", BOOL, cond=lambda ctx: Q(status="open") & Q(rots_at__lte=Now())),
            "id": Field("id", ID, "id"),
        },
        dims={"team": "team_id", "owner": "owner_id", "pipeline": "pipeline_id", "source": "lead_source_id"},
        relations={
            "activities": Relation("activities", "activities", "deal"),
            "stage_changes": Relation("stage_changes", "stage_changes", "deal"),
        },
        label=_("deals"),
    )

    sources["stage_changes"] = Source(
        "stage_changes", "pipeline.StageChange", "changed_at",
        {
            "direction": Field("direction", CHOICE, choices=tuple(StageChange.Direction.values)),
            "from_stage": Field("from_stage", TEXT, "from_stage_name"),
            "to_stage": Field("to_stage", TEXT, "to_stage_name"),
            "days_in_from_stage": Field("days_in_from_stage", NUMBER,
                                        build=lambda ctx: Numeric(F("seconds_in_from_stage")) / Value(86400)),
            "deal": Field("deal", ID, "deal_id"),
            "actor": Field("actor", REF, "actor_id", ref=(USER, "username")),
            "changed_at": Field("changed_at", DATETIME),
            "id": Field("id", ID, "id"),
        },
        dims={"team": "deal__team_id", "owner": "deal__owner_id", "pipeline": "deal__pipeline_id",
              "source": "deal__lead_source_id"},
        label=_("stage changes"),
    )

    sources["activities"] = Source(
        "activities", "contacts.Activity", "occurred_at",
        {
            "kind": Field("kind", CHOICE, choices=tuple(Activity.Kind.values)),
            "done": Field("done", BOOL, cond=lambda ctx: Q(done_at__isnull=False)),
            "subject": Field("subject", TEXT),
            **_owner_team(),
            "contact": Field("contact", ID, "contact_id"),
            "deal": Field("deal", ID, "deal_id"),
            "occurred_at": Field("occurred_at", DATETIME),
            "created_at": Field("created_at", DATETIME),
            "due_at": Field("due_at", DATETIME),
            "done_at": Field("done_at", DATETIME),
            "id": Field("id", ID, "id"),
        },
        dims={"team": "team_id", "owner": "owner_id", "pipeline": "deal__pipeline_id",
              "source": "contact__lead_source_id"},
        label=_("activities"),
    )

    sources["lifecycle_changes"] = Source(
        "lifecycle_changes", "contacts.LifecycleChange", "changed_at",
        {
            "from_stage": Field("from_stage", CHOICE, choices=lifecycle),
            "to_stage": Field("to_stage", CHOICE, choices=lifecycle),
            "contact": Field("contact", ID, "contact_id"),
            "actor": Field("actor", REF, "actor_id", ref=(USER, "username")),
            "changed_at": Field("changed_at", DATETIME),
            "id": Field("id", ID, "id"),
        },
        dims={"team": "contact__team_id", "owner": "contact__owner_id", "source": "contact__lead_source_id"},
        label=_("lifecycle changes"),
    )

    sources["survey_responses"] = Source(
        "survey_responses", "kpis.SurveyResponse", "responded_at",
        {
            "kind": Field("kind", CHOICE, choices=tuple(SurveyResponse.Kind.values)),
            "score": Field("score", NUMBER, build=lambda ctx: Numeric(F("score")), raw="score"),
            "channel": Field("channel", CHOICE, choices=tuple(SurveyResponse.Channel.values)),
            "contact": Field("contact", ID, "contact_id"),
            "responded_at": Field("responded_at", DATETIME),
            "id": Field("id", ID, "id"),
        },
        dims={"team": "contact__team_id", "owner": "contact__owner_id", "source": "contact__lead_source_id"},
        label=_("survey responses"),
    )

    sources["metrics"] = Source(
        "metrics", "kpis.MetricValue", "period_start",
        {
            "metric": Field("metric", REF, "metric_id", ref=("kpis.ExternalMetric", "key")),
            "value": Field("value", NUMBER, build=lambda ctx: Numeric(F("value")), raw="value"),
            "period_start": Field("period_start", DATE),
            "period_end": Field("period_end", DATE),
            "id": Field("id", ID, "id"),
        },
        dims={}, metric_dims=True, label=_("external metrics"),
    )

    sources["users"] = Source(
        "users", USER, "date_joined",
        {
            "role": Field("role", CHOICE, choices=_choices(USER, "role")),
            "active": Field("active", BOOL, "is_active"),
            "team": Field("team", REF, "team_id", ref=("accounts.Team", "name")),
            "username": Field("username", TEXT),
            "date_joined": Field("date_joined", DATETIME),
            "last_login": Field("last_login", DATETIME),
            "id": Field("id", ID, "id"),
        },
        dims={"team": "team_id", "owner": "id"},
        relations={
            "activities": Relation("activities", "activities", "owner"),
            "changes": Relation("changes", "changes", "actor"),
            "stage_changes": Relation("stage_changes", "stage_changes", "actor"),
            "lifecycle_changes": Relation("lifecycle_changes", "lifecycle_changes", "actor"),
        },
        default_window="end", label=_("users"),
    )

    sources["changes"] = Source(
        "changes", "crm_okr.FieldChange", "changed_at",
        {
            "record_type": Field("record_type", TEXT),
            "actor": Field("actor", REF, "actor_id", ref=(USER, "username")),
            "changed_at": Field("changed_at", DATETIME),
            "id": Field("id", ID, "id"),
        },
        dims={"owner": "actor_id", "team": "actor__team_id"}, public=False, label=_("record changes"),
    )
    return sources


_SOURCES: dict | None = None


def sources() -> dict:
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = _build_sources()
    return _SOURCES


def public_sources() -> list[str]:
    return [name for name, source in sources().items() if source.public]


def get(name: str) -> Source | None:
    return sources().get(name.lower())
