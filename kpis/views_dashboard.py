"""What managers see: the KPI dashboard, a KPI's page, and the records behind a number.

Thin doors: the values shown come from snapshots (``kpis.selectors``); only the KPI page computes its
current value live, one statement through ``kpis.services.evaluate``. Bad query parameters show a
message on the page (status 400), an unknown KPI is a 404; nothing here answers 500 for user input.
"""

import logging

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _

from accounts.selectors import users_visible_to
from accounts.views import browser_user_required
from contacts.models import Activity, Company, Contact, LifecycleChange
from contacts.selectors import activities_visible_to, companies_visible_to, contacts_visible_to
from crm_okr.pagination import SortOption, paginate
from pipeline.models import Deal, StageChange
from pipeline.selectors import deals_visible_to

from . import dimensions as dims
from . import periods, selectors
from .models import DimensionKind, Kpi, KpiSnapshot, MetricValue, SurveyResponse
from .templatetags.kpis import change_tone, chart, sparkline

logger = logging.getLogger(__name__)

TREND_LENGTH = 12  # periods in a dashboard card's trend line
HISTORY_LENGTH = 24  # periods on a KPI page's chart
DRILLDOWN_PAGE_SIZE = 50


# --- reading snapshots (kpis.selectors) -------------------------------------------------------------------

benchmark_status = selectors.benchmark_status


def benchmark_tone(kpi: Kpi, status: str | None) -> str:
    """good / bad / neutral: outside the band on the side the KPI wants to move to is still good."""
    if status == "inside":
        return "good"
    if status is None:
        return "neutral"
    wanted = "below" if kpi.direction == Kpi.Direction.LOWER else "above"
    return "good" if status == wanted else "bad"


def _value_summary(kpi: Kpi, current: KpiSnapshot | None, previous: KpiSnapshot | None) -> dict:
    """What a card or a table row shows: both snapshots, their values, the change and the benchmark status."""
    current_value = current.value if current is not None else None
    previous_value = previous.value if previous is not None else None
    moved = selectors.change(current_value, previous_value)
    status = benchmark_status(kpi, current_value)
    return {
        "current": current, "previous": previous, "current_value": current_value,
        "previous_value": previous_value, "change": moved, "tone": change_tone(moved, kpi),
        "status": status, "status_tone": benchmark_tone(kpi, status),
    }


# --- request parameters ----------------------------------------------------------------------------------

def _parse_dimension(request, errors: dict) -> dims.Dimension | None:
    try:
        return dims.parse(request.GET.get("dimension", "")[:100])
    except ValueError as exc:
        errors["dimension"] = str(exc)
        return None


def _parse_period(request, kpi: Kpi, errors: dict) -> periods.Period:
    text = request.GET.get("period", "").strip()
    if not text:
        return periods.containing(kpi.frequency)
    try:
        return periods.parse(kpi.frequency, text[:40])
    except ValueError as exc:
        errors["period"] = str(exc)
        return periods.containing(kpi.frequency)


def dimension_choices() -> list[dict]:
    """The dimension picker's groups: every team, owner, pipeline and lead source (one query per kind)."""
    return [{"kind": kind, "label": label, "options": [
        {"key": dims.Dimension(kind, obj.pk).key, "label": str(obj)} for obj in dims.members(kind)]}
        for kind, label in DimensionKind.choices]


def _dimension_label(dimension: dims.Dimension | None, groups: list[dict]) -> str:
    if dimension is None:
        return _("Whole company")
    for group in groups:
        for option in group["options"]:
            if option["key"] == dimension.key:
                return f"{group['label']}: {option['label']}"
    return dimension.key


# --- the dashboard ---------------------------------------------------------------------------------------

@browser_user_required
def dashboard(request):
    """Every active KPI as a card: this period and the previous one from snapshots, the change, a trend
    line and the benchmark. A fixed number of queries however many KPIs and snapshots there are."""
    errors: dict = {}
    dimension = _parse_dimension(request, errors)
    groups = dimension_choices()
    kpis = list(Kpi.objects.filter(is_active=True))
    latest = selectors.latest_values(kpis, dimension)
    trends = selectors.series_many(kpis, dimension, TREND_LENGTH)
    cards = []
    for kpi in kpis:
        available = dimension is None or dimension.kind in (kpi.dimensions or [])
        card = {"kpi": kpi, "available": available}
        if available:
            values = latest[kpi.pk]
            card.update(_value_summary(kpi, values.snapshot, values.previous_snapshot))
            card.update({
                "period": values.period, "previous_period": values.previous_period,
                "spark": sparkline([value for _period, value in trends[kpi.pk]],
                                   band=(kpi.benchmark_low, kpi.benchmark_high)),
                "band": benchmark_band_text(kpi),
                "detail_query": f"?dimension={dimension.key}" if dimension else "",
            })
        cards.append(card)
    shown = [card for card in cards if card["available"]]
    context = {
        "cards": cards, "groups": groups, "dimension": dimension, "errors": errors,
        "dimension_label": _dimension_label(dimension, groups),
        # One query for the whole page, only when a money KPI is shown.
        "unconverted": selectors.unconverted_for([card["kpi"] for card in shown], [card["period"] for card in shown]),
    }
    return render(request, "kpis/dashboard.html", context, status=400 if errors else 200)


# --- a KPI's page ----------------------------------------------------------------------------------------

def _get_kpi(slug: str) -> Kpi:
    return get_object_or_404(Kpi, slug=slug[:60])


def _compile(kpi: Kpi):
    """The KPI's compiled formula, or (None, message) when it does not compile any more."""
    from .formula import FormulaError, compile_formula

    try:
        return compile_formula(kpi.formula, slug=kpi.slug), None
    except FormulaError as exc:
        return None, str(exc)


def _safely(compute, what: str):
    """Run one live evaluation in a savepoint: a timeout or a formula that no longer fits the data shows a
    message instead of breaking the page. Returns (value, error)."""
    from .formula import FormulaError

    try:
        with transaction.atomic():
            return compute(), None
    except FormulaError as exc:
        return None, str(exc)
    except (DatabaseError, ValidationError, ValueError) as exc:
        logger.warning("KPI %s could not be computed: %s", what, exc)
        return None, _("The value could not be computed right now (%(error)s).") % {
            "error": str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__}


def breakdown_rows(kpi: Kpi, kind: str, period: periods.Period) -> list[dict]:
    """One row per member of ``kind`` with its value for ``period`` and the previous period, from snapshots
    (two queries: the members and their snapshots)."""
    previous = period.previous()
    snapshots = KpiSnapshot.objects.filter(
        kpi=kpi, frequency=kpi.frequency, dimension_kind=kind, period_start__in=[period.start, previous.start],
    ).only("dimension_id", "dimension_label", "period_start", "value", "computed_at", "is_final", "error")
    found: dict[int, dict] = {}
    for snap in snapshots:
        found.setdefault(snap.dimension_id, {})["current" if snap.period_start == period.start else "previous"] = snap
    rows = []
    for member in dims.members(kind):
        pair = found.pop(member.pk, {})
        rows.append({"label": str(member), "dimension": dims.Dimension(kind, member.pk),
                     **_value_summary(kpi, pair.get("current"), pair.get("previous"))})
    # Snapshots of members that are gone (a deactivated lead source, a user who left) stay listed.
    for dimension_id, pair in found.items():
        snap = pair.get("current") or pair.get("previous")
        rows.append({"label": snap.dimension_label or f"#{dimension_id}", "dimension": None,
                     **_value_summary(kpi, pair.get("current"), pair.get("previous"))})
    return rows


@browser_user_required
def kpi_detail(request, slug: str):
    kpi = _get_kpi(slug)
    errors: dict = {}
    dimension = _parse_dimension(request, errors)
    period = _parse_period(request, kpi, errors)
    allowed = [kind for kind in DimensionKind.values if kind in (kpi.dimensions or [])]
    if dimension is not None and dimension.kind not in allowed:
        errors["dimension"] = _("“%(kpi)s” is not available for this breakdown (%(kind)s).") % {
            "kpi": kpi.shown_name, "kind": DimensionKind(dimension.kind).label.lower()}
        dimension = None
    by = request.GET.get("by", "")
    if by and by not in allowed:
        errors["by"] = _("“%(value)s” is not a breakdown of this KPI; choose one of: %(kinds)s.") % {
            "value": by[:40], "kinds": ", ".join(allowed) or "—"}
        by = ""
    by = by or (dimension.kind if dimension else (allowed[0] if allowed else ""))
    groups = [group for group in dimension_choices() if group["kind"] in allowed]

    current_period = periods.containing(kpi.frequency)
    history = selectors.series(kpi, dimension, HISTORY_LENGTH)
    # The header above the chart describes the chosen period (?period=) and the one before it.
    chosen = selectors.values_for([(kpi, [period, period.previous()])], dimension)
    context = {
        "kpi": kpi, "errors": errors, "dimension": dimension, "period": period, "by": by,
        "by_label": DimensionKind(by).label if by else "", "allowed": allowed, "groups": groups,
        "dimension_label": _dimension_label(dimension, groups),
        "chart": chart(history, kpi),
        "summary": _value_summary(kpi, chosen.get((kpi.pk, period.start)),
                                  chosen.get((kpi.pk, period.previous().start))),
        "current_period": current_period,
        "period_choices": periods.last_n(kpi.frequency, HISTORY_LENGTH)[::-1],
        "breakdown": breakdown_rows(kpi, by, period) if by else [],
        "band": benchmark_band_text(kpi),
    }
    if not errors:
        compiled, formula_error = _compile(kpi)
        context["formula_error"] = formula_error
        if compiled is not None:
            from . import services

            value, value_error = _safely(lambda: services.evaluate(kpi, period, dimension), kpi.slug)
            status = benchmark_status(kpi, value)
            context["live"] = {"value": value, "error": value_error, "status": status,
                               "status_tone": benchmark_tone(kpi, status),
                               # services.evaluate reads the snapshot taken as the period started.
                               "snapshotted": kpi.snapshot_at_start and period.has_started()}
            context["unconverted"] = compiled.unconverted_currencies(period)
            leaves = []
            for index, leaf in enumerate(compiled.leaves):
                leaf_value, leaf_error = _safely(lambda leaf=leaf: leaf.value(period, dimension), kpi.slug)
                leaves.append({"index": index, "leaf": leaf, "value": leaf_value, "error": leaf_error})
            context["leaves"] = leaves
    return render(request, "kpis/kpi_detail.html", context, status=400 if errors else 200)


def benchmark_band_text(kpi: Kpi) -> str:
    """The benchmark as the KPI states it, or its band in numbers when there is no text."""
    if kpi.benchmark_text:
        return kpi.shown_benchmark
    low, high = kpi.benchmark_low, kpi.benchmark_high
    if low is not None and high is not None:
        return f"{selectors.format_value(kpi, low)} – {selectors.format_value(kpi, high)}"
    if low is not None:
        return f"≥ {selectors.format_value(kpi, low)}"
    if high is not None:
        return f"≤ {selectors.format_value(kpi, high)}"
    return ""


# --- the records behind a number -------------------------------------------------------------------------

def _visible(model, user):
    """The rows of ``model`` the user may see, or None when the source is not restricted row by row (metric
    values: numbers an admin entered). Records of a deal or contact (stage changes, lifecycle changes, survey
    responses) are visible with their deal or contact; a survey response without a contact is listed."""
    user_model = get_user_model()
    if model is Deal:
        return deals_visible_to(user)
    if model is Contact:
        return contacts_visible_to(user)
    if model is StageChange:
        return StageChange.objects.filter(deal__in=deals_visible_to(user).values("pk"))
    if model is LifecycleChange:
        return LifecycleChange.objects.filter(contact__in=contacts_visible_to(user).values("pk"))
    if model is SurveyResponse:
        return SurveyResponse.objects.filter(
            Q(contact__isnull=True) | Q(contact__in=contacts_visible_to(user).values("pk")))
    if model is Company:
        return companies_visible_to(user)
    if model is Activity:
        return activities_visible_to(user)
    if model is user_model:
        return users_visible_to(user)
    return None


# Newest first by the moment the record counts at (then by id, so pages never skip or repeat a row); the
# other sources newest first by id.
DRILLDOWN_ORDER = {
    Activity: SortOption("-occurred_at", "occurred_at", descending=True),
    StageChange: SortOption("-changed_at", "changed_at", descending=True),
    LifecycleChange: SortOption("-changed_at", "changed_at", descending=True),
    SurveyResponse: SortOption("-responded_at", "responded_at", descending=True),
}
NEWEST_ID_FIRST = SortOption("id", "id", descending=True)

RELATED = {
    Deal: ["stage", "pipeline", "owner", "contact", "company"],
    Contact: ["owner", "company"],
    Company: ["owner"],
    Activity: ["owner", "contact", "deal", "company"],
    StageChange: ["deal", "actor"],
    LifecycleChange: ["contact", "actor"],
    SurveyResponse: ["contact"],
    MetricValue: ["metric"],
}


def _columns(model) -> list[str]:
    user_model = get_user_model()
    if model is Deal:
        return [_("Deal"), _("Stage"), _("Status"), _("Amount"), _("Owner"), _("Created"), _("Closed")]
    if model is Contact:
        return [_("Contact"), _("E-mail"), _("Lifecycle stage"), _("Owner"), _("Created")]
    if model is Company:
        return [_("Company"), _("Industry"), _("Owner"), _("Created")]
    if model is Activity:
        return [_("Activity"), _("Type"), _("Related to"), _("Owner"), _("When")]
    if model is StageChange:
        return [_("Deal"), _("Move"), _("By"), _("When")]
    if model is LifecycleChange:
        return [_("Contact"), _("Change"), _("By"), _("When")]
    if model is SurveyResponse:
        return [_("Contact"), _("Survey"), _("Score"), _("Channel"), _("Answered")]
    if model is MetricValue:
        return [_("Metric"), _("Period"), _("Dimension"), _("Value")]
    if model is user_model:
        return [_("User"), _("Role"), _("Team"), _("Active")]
    return [_("Record")]


def _link(kind: str, obj, visible_ids: set[int]) -> dict:
    if obj is None:
        return {"text": "—"}
    if obj.pk not in visible_ids:
        return {"text": _("(hidden deal)") if kind == "deal" else _("(hidden contact)"), "muted": True}
    return {"text": str(obj), "url_name": f"{kind}-detail", "pk": obj.pk}


def _row(obj, visible_deals: set[int], visible_contacts: set[int]) -> dict:
    """A record as a row of cells: {"text", "url_name"+"pk" for a link, "num"/"muted"/"when" flags}."""
    user_model = get_user_model()
    if isinstance(obj, Deal):
        return {"cells": [
            {"text": obj.name, "url_name": "deal-detail", "pk": obj.pk}, {"text": obj.stage.name},
            {"text": obj.get_status_display()},
            {"amount": obj.amount, "currency": obj.currency, "num": True},
            {"text": str(obj.owner or "—")}, {"when": obj.created_at}, {"when": obj.closed_at},
        ]}
    if isinstance(obj, Contact):
        return {"cells": [
            {"text": str(obj), "url_name": "contact-detail", "pk": obj.pk}, {"text": obj.email or "—"},
            {"text": obj.get_lifecycle_stage_display()}, {"text": str(obj.owner or "—")}, {"when": obj.created_at},
        ]}
    if isinstance(obj, Company):
        return {"cells": [
            {"text": obj.name, "url_name": "company-detail", "pk": obj.pk}, {"text": obj.industry or "—"},
            {"text": str(obj.owner or "—")}, {"when": obj.created_at},
        ]}
    if isinstance(obj, Activity):
        related = (_link("deal", obj.deal, visible_deals) if obj.deal_id
                   else _link("contact", obj.contact, visible_contacts) if obj.contact_id
                   else {"text": obj.company.name, "url_name": "company-detail", "pk": obj.company_id}
                   if obj.company_id else {"text": "—"})
        return {"cells": [{"text": obj.subject}, {"text": obj.get_kind_display()}, related,
                          {"text": str(obj.owner or "—")}, {"when": obj.occurred_at}]}
    if isinstance(obj, StageChange):
        return {"cells": [_link("deal", obj.deal, visible_deals),
                          {"text": f"{obj.from_stage_name or '—'} → {obj.to_stage_name}"},
                          {"text": str(obj.actor or "—")}, {"when": obj.changed_at}]}
    if isinstance(obj, LifecycleChange):
        return {"cells": [_link("contact", obj.contact, visible_contacts),
                          {"text": f"{obj.get_from_stage_display() or '—'} → {obj.get_to_stage_display()}"},
                          {"text": str(obj.actor or "—")}, {"when": obj.changed_at}]}
    if isinstance(obj, SurveyResponse):
        return {"cells": [_link("contact", obj.contact, visible_contacts), {"text": obj.get_kind_display()},
                          {"text": str(obj.score), "num": True}, {"text": obj.get_channel_display() or "—"},
                          {"when": obj.responded_at}]}
    if isinstance(obj, MetricValue):
        return {"cells": [{"text": obj.metric.name}, {"text": f"{obj.period_start} – {obj.period_end}"},
                          {"text": str(obj.dimension_id) if obj.dimension_id else _("Whole company")},
                          {"number": obj.value, "num": True}]}
    if isinstance(obj, user_model):
        return {"cells": [{"text": str(obj)}, {"text": obj.get_role_display()}, {"text": str(obj.team or "—")},
                          {"text": _("yes") if obj.is_active else _("no")}]}
    return {"cells": [{"text": str(obj)}]}


def _related_visible_ids(items: list, user) -> tuple[set[int], set[int]]:
    """Which deals and contacts the rows on this page point to are visible to the user (≤ 2 queries)."""
    deal_ids = {getattr(obj, "deal_id", None) for obj in items} - {None}
    contact_ids = {getattr(obj, "contact_id", None) for obj in items} - {None}
    deals = set(deals_visible_to(user).filter(pk__in=deal_ids).values_list("pk", flat=True)) if deal_ids else set()
    contacts = (set(contacts_visible_to(user).filter(pk__in=contact_ids).values_list("pk", flat=True))
                if contact_ids else set())
    return deals, contacts


def _member_label(dimension: dims.Dimension | None) -> str:
    """ "Team: North" for the page header (one query); "" for the company."""
    if dimension is None:
        return ""
    member = dims.members(dimension.kind).filter(pk=dimension.id).first()
    name = dims.label(dimension.kind, member) if member is not None else f"#{dimension.id}"
    return f"{DimensionKind(dimension.kind).label}: {name}"


@browser_user_required
def kpi_drilldown(request, slug: str):
    """The records behind one aggregate of a KPI's formula, as far as the viewer may see them."""
    kpi = _get_kpi(slug)
    errors: dict = {}
    dimension = _parse_dimension(request, errors)
    period = _parse_period(request, kpi, errors)
    if dimension is not None and dimension.kind not in (kpi.dimensions or []):
        errors["dimension"] = _("“%(kpi)s” is not available for this breakdown (%(kind)s).") % {
            "kpi": kpi.shown_name, "kind": DimensionKind(dimension.kind).label.lower()}
    compiled, formula_error = _compile(kpi)
    leaves = compiled.leaves if compiled is not None else []
    raw_leaf = request.GET.get("leaf", "")
    leaf = None
    if compiled is None:
        errors["formula"] = formula_error
    elif not raw_leaf.isdigit() or int(raw_leaf) >= len(leaves):
        errors["leaf"] = _("“%(value)s” is not an aggregate of this formula; choose a number from 0 to %(last)s.") % {
            "value": raw_leaf[:20], "last": len(leaves) - 1}
    else:
        leaf = leaves[int(raw_leaf)]
    context = {"kpi": kpi, "errors": errors, "period": period, "dimension": dimension, "leaf": leaf,
               "leaf_index": raw_leaf, "leaves": leaves, "dimension_label": _member_label(dimension)}
    if errors:
        return render(request, "kpis/drilldown.html", context, status=400)

    from .formula import FormulaError

    try:  # builds the query only; it runs below
        records = leaf.records(period, dimension)
    except (FormulaError, ValueError) as exc:
        context["errors"] = {"records": str(exc)}
        return render(request, "kpis/drilldown.html", context, status=400)
    model = records.model
    visible = _visible(model, request.user)
    shown = records if visible is None else records.filter(pk__in=visible.values("pk"))
    counts, count_error = _safely(lambda: records.aggregate(
        total=Count("pk"), **({"visible": Count("pk", filter=Q(pk__in=visible.values("pk")))} if visible is not None
                              else {})), kpi.slug)
    if count_error:
        context["errors"] = {"records": count_error}
        return render(request, "kpis/drilldown.html", context, status=400)
    total = counts["total"]
    hidden = total - counts.get("visible", total)
    shown = shown.select_related(*RELATED.get(model, []))
    if model is get_user_model():
        shown = shown.select_related("team")
    try:
        page = paginate(shown, sort=DRILLDOWN_ORDER.get(model, NEWEST_ID_FIRST), cursor=request.GET.get("cursor"),
                        page_size=DRILLDOWN_PAGE_SIZE)
    except ValidationError as exc:
        context["errors"] = {"cursor": " ".join(exc.messages)}
        return render(request, "kpis/drilldown.html", context, status=400)
    visible_deals, visible_contacts = _related_visible_ids(page.items, request.user)
    context.update({
        "page": page, "total": total, "hidden": hidden, "model_name": model._meta.verbose_name_plural,
        "columns": _columns(model), "rows": [_row(obj, visible_deals, visible_contacts) for obj in page.items],
    })
    return render(request, "kpis/drilldown.html", context)
