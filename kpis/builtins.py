"""The built-in KPIs (issue #4, the seed's "CRM KPI Rehberi" table) and the external metrics they read.

Each definition holds what the ``Kpi`` row stores: the English name and definition (wrapped for translation;
the Turkish names of the seed go into the .po file), the formula in the KPI language, unit, decimals,
frequency, direction, benchmark and order. ``dimensions`` is the list the formula compiler derives from the
formula's sources (the intersection of their dimension paths, see docs in kpis/formula); it is written here
by hand so the data migration does not need the compiler, and tests check it against the compiler.

``install_builtins()`` creates or updates the rows; it is idempotent and works from the data migration
(``install_builtins(apps)``) and from code (``install_builtins()``).

Values are plain strings rather than ``kpis.models`` choices so that the migration does not import the
current models; tests check them against the choices.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

TEAM, OWNER, PIPELINE, SOURCE = "team", "owner", "pipeline", "source"
# Contacts, lifecycle changes and survey responses (through the contact) have no pipeline.
CONTACT_KINDS = [TEAM, OWNER, SOURCE]
DEAL_KINDS = [TEAM, OWNER, PIPELINE, SOURCE]


@dataclass(frozen=True)
class BuiltinKpi:
    slug: str
    name: object  # a lazy translation: str() gives the active language
    description: object
    formula: str
    unit: str  # Kpi.Unit
    frequency: str  # Frequency
    dimensions: tuple[str, ...]
    decimals: int = 1
    direction: str = "higher"  # Kpi.Direction
    benchmark_low: Decimal | None = None
    benchmark_high: Decimal | None = None
    benchmark_text: object = ""
    order: int = 100
    snapshot_at_start: bool = False


@dataclass(frozen=True)
class BuiltinMetric:
    key: str
    name: object
    description: object
    unit: str
    dimension_kind: str  # "" = company-wide
    # A company-wide value that also holds for every team, owner, pipeline and lead source (see ExternalMetric).
    applies_to_breakdowns: bool = False


# The definitions are the issue's, word for word (shown on each KPI's page).
BUILTIN_KPIS: list[BuiltinKpi] = [
    BuiltinKpi(  # Lead Dönüşüm Oranı
        slug="lead-conversion-rate",
        name=_("Lead conversion rate"),
        description=_("Lead conversion rate (%) = deals created in the period ÷ contacts created in the period × 100."),
        formula="count(deals) * 100 / count(contacts)",
        unit="percent", frequency="weekly", dimensions=tuple(CONTACT_KINDS),
        benchmark_low=Decimal("2"), benchmark_high=Decimal("5"), benchmark_text=_("2–5 %"), order=10,
    ),
    BuiltinKpi(  # Satış Döngüsü Süresi
        slug="sales-cycle-length",
        name=_("Sales cycle length"),
        description=_("Sales cycle length (days) = average over deals won in the period of (won time − deal "
                      "created time), in days."),
        formula="avg(deals.cycle_days where status = 'won' by closed_at)",
        unit="days", frequency="monthly", dimensions=tuple(DEAL_KINDS), direction="lower",
        benchmark_low=Decimal("30"), benchmark_high=Decimal("90"), benchmark_text=_("30–90 days"), order=20,
    ),
    BuiltinKpi(  # Pipeline Değeri
        slug="pipeline-value",
        name=_("Pipeline value"),
        description=_("Pipeline value = sum of amounts of deals open at the period end."),
        formula="sum(deals.amount where status = 'open' at period end)",
        unit="currency", frequency="daily", dimensions=tuple(DEAL_KINDS), decimals=0,
        benchmark_text=_("3–5× target"), order=30,
    ),
    BuiltinKpi(  # Win Rate
        slug="win-rate",
        name=_("Win rate"),
        description=_("Win rate (%) = deals won in the period ÷ deals won or lost in the period × 100."),
        formula="count(deals where status = 'won' by closed_at) * 100\n"
                "  / count(deals where status in ('won', 'lost') by closed_at)",
        unit="percent", frequency="weekly", dimensions=tuple(DEAL_KINDS),
        benchmark_low=Decimal("20"), benchmark_high=Decimal("30"), benchmark_text=_("20–30 %"), order=40,
    ),
    BuiltinKpi(  # Ortalama Anlaşma Değeri
        slug="average-deal-value",
        name=_("Average deal value"),
        description=_("Average deal value = sum of amounts won in the period ÷ number of deals won in the period."),
        formula="sum(deals.amount where status = 'won' by closed_at)\n"
                "  / count(deals where status = 'won' by closed_at)",
        unit="currency", frequency="monthly", dimensions=tuple(DEAL_KINDS), decimals=0,
        benchmark_text=_("Sectoral"), order=50,
    ),
    BuiltinKpi(  # Müşteri Edinme Maliyeti (CAC)
        slug="cac",
        name=_("Customer acquisition cost (CAC)"),
        description=_("CAC = (marketing + sales spend in the period, from external metrics) ÷ contacts that "
                      "became customers in the period."),
        formula="sum(metrics.value where metric in ('marketing_spend', 'sales_spend'))\n"
                "  / count_distinct(lifecycle_changes.contact where to_stage = 'customer')",
        # marketing_spend is kept per lead source: only the source breakdown (sales spend counts in full).
        unit="currency", frequency="monthly", dimensions=(SOURCE,), decimals=0, direction="lower",
        benchmark_text=_("1/3 of LTV"), order=60,
    ),
    BuiltinKpi(  # Müşteri Yaşam Boyu Değeri (LTV)
        slug="ltv",
        name=_("Customer lifetime value (LTV)"),
        description=_("LTV = average deal value × purchase frequency × customer lifetime, where purchase "
                      "frequency = deals won in the 365 days to the period end ÷ distinct customers with a won "
                      "deal in those days, and customer lifetime (years) is an external metric set by the admin."),
        formula="kpi('average-deal-value')\n"
                "  * (count(deals where status = 'won' by closed_at during last 365 days)\n"
                "     / count_distinct(deals.customer where status = 'won' by closed_at during last 365 days))\n"
                "  * latest(metrics.value where metric = 'customer_lifetime_years' during all time)",
        unit="currency", frequency="quarterly", dimensions=tuple(DEAL_KINDS), decimals=0,
        benchmark_text=_("3× CAC"), order=70,
    ),
    BuiltinKpi(  # Churn Rate (Kaybetme Oranı)
        slug="churn-rate",
        name=_("Churn rate"),
        description=_("Churn rate (%) = customers who churned in the period ÷ customers at the period start "
                      "× 100."),
        formula="count_distinct(lifecycle_changes.contact where to_stage = 'churned') * 100\n"
                "  / count(contacts where lifecycle_stage in ('customer', 'advocate') at period start)",
        # The seed's benchmark is per year (5–10 %); a monthly band is not given, so there is none.
        unit="percent", frequency="monthly", dimensions=tuple(CONTACT_KINDS), direction="lower",
        benchmark_text=_("5–10 % per year"), order=80,
    ),
    BuiltinKpi(  # Pipeline Velocity
        slug="pipeline-velocity",
        name=_("Pipeline velocity"),
        description=_("Pipeline velocity (per day) = deals open at the period end × average deal value × win "
                      "rate (as a fraction) ÷ sales cycle length."),
        formula="count(deals where status = 'open' at period end) * kpi('average-deal-value')\n"
                "  * kpi('win-rate') / 100 / kpi('sales-cycle-length')",
        unit="currency_per_day", frequency="weekly", dimensions=tuple(DEAL_KINDS), decimals=0,
        benchmark_text=_("Rising trend"), order=90,
    ),
    BuiltinKpi(  # Lead Kaynak ROI
        slug="lead-source-roi",
        name=_("Lead source ROI"),
        description=_("Lead source ROI (%) per source = (amount won from deals of that source in the period − "
                      "spend on that source in the period) ÷ that spend × 100."),
        formula="(sum(deals.amount where status = 'won' by closed_at)\n"
                "   - sum(metrics.value where metric = 'marketing_spend')) * 100\n"
                "  / sum(metrics.value where metric = 'marketing_spend')",
        unit="percent", frequency="monthly", dimensions=(SOURCE,), decimals=0,
        benchmark_low=Decimal("200"), benchmark_text=_("200 %+"), order=100,
    ),
    BuiltinKpi(  # Aktivite Başına Fırsat
        slug="activities-per-opportunity",
        name=_("Activities per opportunity"),
        description=_("Activities per opportunity = activities logged in the period ÷ deals created in the "
                      "period."),
        # A task counts once it is done; calls, e-mails, meetings and notes when they happen.
        formula="count(activities where kind != 'task' or done) / count(deals)",
        unit="number", frequency="weekly", dimensions=tuple(DEAL_KINDS),
        benchmark_low=Decimal("8"), benchmark_high=Decimal("12"), benchmark_text=_("8–12"), order=110,
    ),
    BuiltinKpi(  # Tahmin Doğruluğu
        slug="forecast-accuracy",
        name=_("Forecast accuracy"),
        description=_("Forecast accuracy (%) = amount won in the period ÷ the forecast for the period × 100, "
                      "where the forecast is the weighted pipeline (amount × stage probability) of deals expected "
                      "to close in the period, as snapshotted at the period start."),
        formula="sum(deals.amount where status = 'won' by closed_at) * 100 / snapshot('sales-forecast')",
        unit="percent", frequency="monthly", dimensions=tuple(DEAL_KINDS),
        benchmark_low=Decimal("90"), benchmark_high=Decimal("95"), benchmark_text=_("90–95 %"), order=120,
    ),
    BuiltinKpi(  # Satış Tahmini (the forecast that forecast accuracy compares with)
        slug="sales-forecast",
        name=_("Sales forecast"),
        description=_("Sales forecast = the weighted pipeline (amount × stage probability) of open deals "
                      "expected to close in the period, taken when the period starts and kept."),
        formula="sum(deals.weighted_amount where status = 'open' by expected_close_date)",
        unit="currency", frequency="monthly", dimensions=tuple(DEAL_KINDS), decimals=0,
        order=125, snapshot_at_start=True,
    ),
    BuiltinKpi(  # CRM Kullanıcı Benimseme
        slug="crm-user-adoption",
        name=_("CRM user adoption"),
        description=_("CRM user adoption (%) = users (reps and managers) who logged an activity or changed a "
                      "record in the 7 days to the period end ÷ active reps and managers × 100."),
        formula="count(users where active and role in ('rep', 'manager')\n"
                "      and (has activities during last 7 days or has changes during last 7 days\n"
                "           or has stage_changes during last 7 days)) * 100\n"
                "  / count(users where active and role in ('rep', 'manager'))",
        unit="percent", frequency="weekly", dimensions=(TEAM, OWNER),
        benchmark_low=Decimal("80"), benchmark_text=_("80 %+"), order=130,
    ),
    BuiltinKpi(  # Veri Doğruluğu
        slug="data-accuracy",
        name=_("Data accuracy"),
        description=_("Data accuracy — complete record rate (%) = non-archived contacts that have every "
                      "required and important field filled ÷ non-archived contacts, at the period end × 100."),
        formula="count(contacts where complete and not archived at period end) * 100\n"
                "  / count(contacts where not archived at period end)",
        unit="percent", frequency="monthly", dimensions=tuple(CONTACT_KINDS),
        benchmark_low=Decimal("95"), benchmark_text=_("95 %+"), order=140,
    ),
    BuiltinKpi(  # Müşteri Memnuniyeti (NPS)
        slug="nps",
        name=_("Net Promoter Score (NPS)"),
        description=_("NPS = % promoters (9–10) − % detractors (0–6) among survey responses in the period."),
        formula="(count(survey_responses where kind = 'nps' and score >= 9)\n"
                "   - count(survey_responses where kind = 'nps' and score <= 6)) * 100\n"
                "  / count(survey_responses where kind = 'nps')",
        unit="number", frequency="quarterly", dimensions=tuple(CONTACT_KINDS), decimals=0,
        benchmark_low=Decimal("50"), benchmark_text=_("50+"), order=150,
    ),
]

BUILTIN_METRICS: list[BuiltinMetric] = [
    BuiltinMetric(
        key="marketing_spend", name=_("Marketing spend"),
        description=_("Money spent on marketing in the period, per lead source (for CAC and lead source ROI)."),
        unit="currency", dimension_kind=SOURCE,
    ),
    BuiltinMetric(
        key="sales_spend", name=_("Sales spend"),
        description=_("Money spent on sales in the period (salaries, commissions, tools), for the whole company "
                      "(for CAC)."),
        unit="currency", dimension_kind="",
    ),
    BuiltinMetric(
        key="customer_lifetime_years", name=_("Customer lifetime (years)"),
        description=_("How many years a customer stays on average (for LTV); the latest value is used."),
        unit="number", dimension_kind="", applies_to_breakdowns=True,
    ),
]

BY_SLUG = {kpi.slug: kpi for kpi in BUILTIN_KPIS}
BUILTIN_SLUGS = [kpi.slug for kpi in BUILTIN_KPIS]


def _english(text) -> str:
    """The msgid of a lazy translation (what the database stores), whatever language is active."""
    with translation.override(None):
        return str(text)


def kpi_fields(builtin: BuiltinKpi) -> dict:
    """The ``Kpi`` fields a built-in defines (``is_active`` and ``created_by`` are left to the admin)."""
    return {
        "name": _english(builtin.name), "description": _english(builtin.description), "formula": builtin.formula,
        "unit": builtin.unit, "decimals": builtin.decimals, "frequency": builtin.frequency,
        "direction": builtin.direction, "benchmark_low": builtin.benchmark_low,
        "benchmark_high": builtin.benchmark_high, "benchmark_text": _english(builtin.benchmark_text),
        "dimensions": list(builtin.dimensions), "order": builtin.order,
        "snapshot_at_start": builtin.snapshot_at_start, "is_builtin": True,
    }


def install_builtins(apps=None) -> dict[str, int]:
    """Create the built-in KPIs and external metrics, or bring existing rows up to these definitions.

    Idempotent: running it again changes nothing. A changed formula bumps ``formula_version``. With ``apps``
    (a migration's app registry) the historical models are used. Returns how many rows were created/updated.
    """
    if apps is None:
        from django.apps import apps
    kpi_model = apps.get_model("kpis", "Kpi")
    metric_model = apps.get_model("kpis", "ExternalMetric")
    from django.utils import timezone

    counts = {"created": 0, "updated": 0}
    # Migrations before 0003_metric_breakdowns run this with a model that has no applies_to_breakdowns yet.
    has_breakdowns = any(f.name == "applies_to_breakdowns" for f in metric_model._meta.get_fields())
    for metric in BUILTIN_METRICS:
        fields = {"name": _english(metric.name), "description": _english(metric.description), "unit": metric.unit,
                  "dimension_kind": metric.dimension_kind}
        if has_breakdowns:
            fields["applies_to_breakdowns"] = metric.applies_to_breakdowns
        row = metric_model.objects.filter(key=metric.key).first()
        if row is None:
            metric_model.objects.create(key=metric.key, **fields)
            counts["created"] += 1
        elif any(getattr(row, name) != value for name, value in fields.items()):
            metric_model.objects.filter(pk=row.pk).update(**fields)
            counts["updated"] += 1
    # Migrations before 0004 have a unit column too short for "currency_per_day": money, until 0004 sets it.
    unit_length = kpi_model._meta.get_field("unit").max_length
    for builtin in BUILTIN_KPIS:
        fields = kpi_fields(builtin)
        if len(fields["unit"]) > unit_length:
            fields["unit"] = "currency"
        row = kpi_model.objects.filter(slug=builtin.slug).first()
        if row is None:
            kpi_model.objects.create(slug=builtin.slug, **fields)
            counts["created"] += 1
            continue
        changed = {name: value for name, value in fields.items() if getattr(row, name) != value}
        if not changed:
            continue
        if "formula" in changed:
            changed["formula_version"] = row.formula_version + 1
        changed["updated_at"] = timezone.now()
        kpi_model.objects.filter(pk=row.pk).update(**changed)
        counts["updated"] += 1
    return counts


def _translated(kpi, attribute: str) -> str:
    """A built-in's stored English text in the active language, unless an admin has rewritten it."""
    stored = getattr(kpi, attribute)
    builtin = BY_SLUG.get(kpi.slug) if getattr(kpi, "is_builtin", False) else None
    if builtin is not None and stored and stored == _english(getattr(builtin, attribute)):
        return gettext(stored)
    return stored


def display_name(kpi) -> str:
    """The KPI's name for pages and e-mails: a built-in's in the reader's language."""
    return _translated(kpi, "name")


def display_description(kpi) -> str:
    """The KPI's definition for its page: a built-in's in the reader's language."""
    return _translated(kpi, "description")


def display_benchmark(kpi) -> str:
    return _translated(kpi, "benchmark_text")


def metric_display_name(metric) -> str:
    for builtin in BUILTIN_METRICS:
        if builtin.key == metric.key and metric.name == _english(builtin.name):
            return gettext(metric.name)
    return metric.name
