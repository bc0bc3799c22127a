"""What the formula language's help page shows. The sources, fields, types, choices, relations and dimensions
come from ``kpis.formula.registry`` itself, so the page always says what the compiler accepts; the worked
examples are checked by the tests to compile."""

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .formula import registry
from .models import DimensionKind


@dataclass(frozen=True)
class Example:
    title: str
    formula: str
    explanation: str
    unit: str = "number"


def examples() -> list[Example]:
    """Worked examples, from simple to involved (each one compiles: tests/kpis/test_editor_views.py)."""
    return [
        Example(
            _("MQL rate"),
            "count(lifecycle_changes where to_stage = 'mql') * 100 / count(contacts)",
            _("Contacts that became marketing-qualified leads in the period, per 100 contacts created in the "
              "period. Both aggregates use their source's time anchor (when the change happened; when the contact "
              "was created) and the default window, the period."),
            "percent",
        ),
        Example(
            _("Win rate"),
            "count(deals where status = 'won' by closed_at) * 100\n"
            "  / count(deals where status in ('won', 'lost') by closed_at)",
            _("“by closed_at” makes the window apply to the closing time instead of the creation time. When no "
              "deal closed, the division has nothing to divide by and the KPI shows “n/a”."),
            "percent",
        ),
        Example(
            _("Open pipeline at the period end"),
            "sum(deals.amount where status = 'open' at period end)",
            _("“status” is a state field: “at period end” reads it as it was at the end of the period (or now, "
              "while the period runs), so a deal won after the period still counts as open. Amounts are "
              "converted to the company currency."),
            "currency",
        ),
        Example(
            _("Average days to win"),
            "avg(deals.cycle_days where status = 'won' by closed_at)",
            _("avg, min, max and latest give no value when no row matches; count and sum give 0."),
            "days",
        ),
        Example(
            _("Active reps this week"),
            "count(users where active and role = 'rep' and has activities during last 7 days)",
            _("“has” keeps the rows that have at least one related row matching its own condition and window."),
        ),
        Example(
            _("Deals of a source"),
            "count(deals where lead_source = 'Web' and not stale)",
            _("Fields that point at another record compare by its name (a lead source, stage, pipeline, team or "
              "company name; a user's username; a metric's key)."),
        ),
        Example(
            _("Cost per new customer"),
            "sum(metrics.value where metric in ('marketing_spend', 'sales_spend'))\n"
            "  / count_distinct(lifecycle_changes.contact where to_stage = 'customer')",
            _("External metrics are values people or integrations enter per period; count_distinct counts each "
              "contact once even if it became a customer twice."),
            "currency",
        ),
        Example(
            _("Change since the previous period"),
            "# new contacts, this period against the previous one\n"
            "count(contacts) - count(contacts during previous period)",
            _("A “#” starts a comment that runs to the end of the line."),
        ),
        Example(
            _("Using other KPIs"),
            "kpi('win-rate') / 100 * kpi('average-deal-value')",
            _("kpi('key') computes another KPI for the same period and breakdown; snapshot('key') reads its stored "
              "snapshot instead. A KPI may not refer back to itself, directly or through others."),
            "currency",
        ),
    ]


WINDOWS = [
    ("during period", gettext_lazy("The time field is inside the period [start, end). The default for most "
                                   "sources.")),
    ("during previous period", gettext_lazy("The time field is inside the period before.")),
    ("during last N days", gettext_lazy("The N days (1–3660) up to the period end, or up to now while the period "
                                        "runs.")),
    ("during all time", gettext_lazy("Anything before the period end.")),
    ("at period start", gettext_lazy("Rows that existed when the period started; state fields as they were "
                                     "then.")),
    ("at period end", gettext_lazy("Rows that existed at the period end (or now); state fields as they were "
                                   "then.")),
]

_DEFAULT_WINDOWS = {
    "period": "during period", "previous": "during previous period", "all": "during all time",
    "start": "at period start", "end": "at period end",
}


def _window_text(code: str) -> str:
    return _DEFAULT_WINDOWS.get(code, str(code).replace("_", " "))


def _field_rows(source) -> list[dict]:
    rows = []
    for name, spec in source.fields.items():
        ref = getattr(spec, "ref", None)
        compared_by = ""
        if ref:
            compared_by = _("compared by its %(field)s") % {"field": ref[1]}
        rows.append({
            "name": name,
            "type": spec.type,
            "type_label": spec.type_label,
            "choices": list(getattr(spec, "choices", ()) or ()),
            "state": bool(getattr(spec, "state", False)),
            "compared_by": compared_by,
            "numeric": spec.type in registry.NUMERIC_TYPES,
            "is_anchor": name == source.anchor,
            "is_time": spec.type in registry.TIME_TYPES,
        })
    return rows


def _dimension_labels(source) -> list[str]:
    labels = dict(DimensionKind.choices)
    if getattr(source, "metric_dims", False):
        return [_("as the metric is kept; a company-wide metric counts in a breakdown only when it is marked "
                  "“applies to breakdowns” (e.g. customer lifetime), never for spend")]
    return [str(labels.get(kind, kind)) for kind in source.dims]


def source_rows() -> list[dict]:
    """Every source formulas may name, from the registry: fields, relations for ``has``, dimensions."""
    everything = registry.sources()
    public = set(registry.public_sources())
    rows = []
    for name in registry.public_sources():
        source = everything[name]
        model = source.model
        rows.append({
            "name": name,
            "label": str(source.label or model._meta.verbose_name_plural),
            "model": str(model._meta.verbose_name_plural),
            "anchor": source.anchor,
            "default_window": _window_text(source.default_window),
            "fields": _field_rows(source),
            "relations": [
                {"name": rel_name, "target": relation.target, "documented": relation.target in public,
                 "target_label": str(everything[relation.target].label) if relation.target in everything else ""}
                for rel_name, relation in source.relations.items()
            ],
            "dimensions": _dimension_labels(source),
            "state_fields": [f for f, spec in source.fields.items() if getattr(spec, "state", False)],
        })
    return rows


def help_context() -> dict:
    from .formula import parser, tokens

    return {
        "sources": source_rows(),
        "windows": WINDOWS,
        "examples": examples(),
        "aggregates": list(parser.AGGREGATES),
        "comparisons": list(parser.COMPARISONS),
        "limits": {
            "length": tokens.MAX_LENGTH, "aggregates": getattr(parser, "MAX_AGGREGATES", 40), "nesting": parser.MAX_NESTING, "days": parser.MAX_DAYS,
            "number": f"{parser.MAX_NUMBER:,}", "in_list": parser.MAX_IN_LIST, "string": tokens.MAX_STRING,
        },
    }
