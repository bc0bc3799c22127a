"""KPIs (a formula over CRM data), their snapshots, and the data only people can supply:
survey responses, external metrics (spend, customer lifetime…) and exchange rates."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Frequency(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")


class DimensionKind(models.TextChoices):
    """What a KPI can be broken down by. The empty kind is the whole company."""

    TEAM = "team", _("Team")
    OWNER = "owner", _("Owner")
    PIPELINE = "pipeline", _("Pipeline")
    SOURCE = "source", _("Lead source")


class Kpi(models.Model):
    """A key performance indicator: a formula in the KPI language, its unit, benchmark and frequency."""

    class Unit(models.TextChoices):
        NUMBER = "number", _("Number")
        PERCENT = "percent", _("Percent")
        CURRENCY = "currency", _("Money")
        DAYS = "days", _("Days")
        CURRENCY_PER_DAY = "currency_per_day", _("Money per day")

    class Direction(models.TextChoices):
        HIGHER = "higher", _("Higher is better")
        LOWER = "lower", _("Lower is better")

    slug = models.SlugField(_("key"), max_length=60, unique=True, help_text=_("Used in formulas: kpi('win-rate')."))
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("definition"), blank=True)
    formula = models.TextField(_("formula"))
    # Bumped whenever the formula changes, and written on every snapshot.
    formula_version = models.PositiveIntegerField(_("formula version"), default=1, editable=False)
    unit = models.CharField(_("unit"), max_length=20, choices=Unit.choices, default=Unit.NUMBER)
    decimals = models.PositiveSmallIntegerField(
        _("decimals shown"), default=1, validators=[MaxValueValidator(6)]
    )
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices, default=Frequency.MONTHLY)
    direction = models.CharField(_("direction"), max_length=6, choices=Direction.choices, default=Direction.HIGHER)
    # The benchmark band; either end may be open. ``benchmark_text`` is how the seed states it ("3-5x target").
    benchmark_low = models.DecimalField(_("benchmark from"), max_digits=20, decimal_places=4, null=True, blank=True)
    benchmark_high = models.DecimalField(_("benchmark to"), max_digits=20, decimal_places=4, null=True, blank=True)
    benchmark_text = models.CharField(_("benchmark"), max_length=100, blank=True)
    # The dimension kinds this KPI can be broken down by (a subset of DimensionKind), decided on save.
    dimensions = models.JSONField(_("dimensions"), default=list, blank=True)
    # The value for a period is taken once, when the period starts, and kept (e.g. the forecast for the month).
    snapshot_at_start = models.BooleanField(_("snapshot when the period starts"), default=False)
    is_builtin = models.BooleanField(_("built in"), default=False, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(_("order"), default=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["order", "name", "id"]
        verbose_name = _("KPI")
        verbose_name_plural = _("KPIs")
        constraints = [
            models.CheckConstraint(
                condition=Q(benchmark_low__isnull=True) | Q(benchmark_high__isnull=True)
                | Q(benchmark_low__lte=models.F("benchmark_high")),
                name="kpi_benchmark_ordered",
            ),
        ]

    def __str__(self):
        return self.shown_name

    # A built-in's texts in the reader's language, unless an admin has rewritten them.
    @property
    def shown_name(self) -> str:
        from .builtins import display_name

        return display_name(self)

    @property
    def shown_description(self) -> str:
        from .builtins import display_description

        return display_description(self)

    @property
    def shown_benchmark(self) -> str:
        from .builtins import display_benchmark

        return display_benchmark(self)


class KpiSnapshot(models.Model):
    """The value of one KPI for one period and one dimension value (company-wide when the kind is empty).

    One row per (KPI, period start, dimension): recomputing a period replaces the row.
    """

    kpi = models.ForeignKey(Kpi, verbose_name=_("KPI"), on_delete=models.CASCADE, related_name="snapshots")
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    dimension_kind = models.CharField(_("dimension"), max_length=10, choices=DimensionKind.choices, blank=True)
    # 0 for the company-wide row, so the unique constraint holds without NULLs.
    dimension_id = models.BigIntegerField(_("dimension value"), default=0)
    dimension_label = models.CharField(_("dimension name"), max_length=200, blank=True)
    # Empty when there is no value (division by zero, no data): shown as "n/a".
    value = models.DecimalField(_("value"), max_digits=24, decimal_places=6, null=True, blank=True)
    formula_version = models.PositiveIntegerField(_("formula version"))
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("computation time (ms)"), default=0)
    # The period had ended when this value was computed (a later run does not change it unless asked to).
    is_final = models.BooleanField(_("final"), default=False)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["kpi", "-period_start", "dimension_kind", "dimension_id"]
        verbose_name = _("KPI snapshot")
        verbose_name_plural = _("KPI snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["kpi", "period_start", "dimension_kind", "dimension_id"], name="kpisnapshot_one_per_period"
            ),
        ]
        indexes = [
            models.Index(fields=["kpi", "dimension_kind", "dimension_id", "-period_start"], name="kpisnapshot_series"),
            models.Index(fields=["-computed_at"], name="kpisnapshot_computed"),
        ]

    def __str__(self):
        return f"{self.kpi_id} {self.period_start:%Y-%m-%d} {self.dimension_kind}:{self.dimension_id} = {self.value}"


class SurveyResponse(models.Model):
    """An answer to an NPS (0–10) or CSAT (1–5) question from a contact."""

    class Kind(models.TextChoices):
        NPS = "nps", _("NPS (0–10)")
        CSAT = "csat", _("CSAT (1–5)")

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")
        PHONE = "phone", _("Phone")
        WEB = "web", _("Web")
        WHATSAPP = "whatsapp", _("WhatsApp")
        IN_PERSON = "in_person", _("In person")

    kind = models.CharField(_("survey"), max_length=4, choices=Kind.choices, default=Kind.NPS)
    score = models.PositiveSmallIntegerField(_("score"), validators=[MaxValueValidator(10)])
    contact = models.ForeignKey(
        "contacts.Contact", verbose_name=_("contact"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="survey_responses",
    )
    responded_at = models.DateTimeField(_("answered at"), default=timezone.now)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    # The integration's own id for the answer, so pushing it twice does not count it twice.
    external_id = models.CharField(_("external id"), max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("entered by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["-responded_at", "-id"]
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="nps", score__lte=10) | Q(kind="csat", score__gte=1, score__lte=5),
                name="survey_score_in_range",
            ),
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="survey_external_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "responded_at"], name="survey_kind_time"),
            models.Index(fields=["contact", "-responded_at"], name="survey_contact"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.score}"


class ExternalMetric(models.Model):
    """A named series of numbers kept outside the CRM (marketing spend, sales spend, customer lifetime…).

    A metric is either company-wide (no dimension) or kept per team, owner, pipeline or lead source. When a
    KPI is broken down by a kind, the values of a metric kept per that kind count for their own member; a
    company-wide value counts for every member only when ``applies_to_breakdowns`` (a constant such as customer
    lifetime, not an amount such as sales spend); other values do not count.
    """

    key = models.SlugField(
        _("key"), max_length=60, unique=True,
        help_text=_("Lower-case letters, digits and underscores; used in formulas and the API."),
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    unit = models.CharField(_("unit"), max_length=20, choices=Kpi.Unit.choices, default=Kpi.Unit.CURRENCY)
    dimension_kind = models.CharField(
        _("kept per"), max_length=10, choices=DimensionKind.choices, blank=True,
        help_text=_("Empty: one company-wide value per period."),
    )
    # A company-wide value that is also each dimension value's (customer lifetime), unlike an amount that the
    # whole company spends (sales spend): only the first counts when a KPI is broken down.
    applies_to_breakdowns = models.BooleanField(
        _("applies to breakdowns"), default=False,
        help_text=_("A company-wide value that also holds for each team, owner, pipeline and lead source (e.g. "
                    "customer lifetime); spend is not."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("external metric")
        verbose_name_plural = _("external metrics")

    def __str__(self):
        return self.name


class MetricValue(models.Model):
    """One value of an external metric for a period (and a dimension value when the metric has one).

    A value counts in the KPI periods that contain ``period_start``. Pushing the same metric, period and
    dimension again replaces the value (upsert).
    """

    metric = models.ForeignKey(ExternalMetric, verbose_name=_("metric"), on_delete=models.CASCADE,
                               related_name="values")
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"), help_text=_("The last day the value covers."))
    # 0 when the metric is company-wide.
    dimension_id = models.BigIntegerField(_("dimension value"), default=0)
    value = models.DecimalField(_("value"), max_digits=20, decimal_places=4)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("updated by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["metric", "-period_start", "dimension_id"]
        verbose_name = _("metric value")
        verbose_name_plural = _("metric values")
        constraints = [
            models.UniqueConstraint(fields=["metric", "period_start", "dimension_id"], name="metricvalue_upsert_key"),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")),
                                   name="metricvalue_period_ordered"),
        ]
        indexes = [models.Index(fields=["metric", "period_start"], name="metricvalue_series")]

    def __str__(self):
        return f"{self.metric_id} {self.period_start}: {self.value}"


class ExchangeRate(models.Model):
    """How much one unit of a currency is worth in the company currency, from a date on.

    Deal amounts in another currency are converted with the latest rate on or before the period end;
    a currency without a rate is left out of money KPIs (and the page says so).
    """

    currency = models.CharField(_("currency"), max_length=3)
    rate = models.DecimalField(
        _("rate"), max_digits=18, decimal_places=8, validators=[MinValueValidator(0)],
        help_text=_("Company currency per one unit of this currency."),
    )
    valid_from = models.DateField(_("valid from"))
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("updated by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["currency", "-valid_from"]
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        constraints = [
            models.UniqueConstraint(fields=["currency", "valid_from"], name="exchangerate_one_per_day"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchangerate_positive"),
        ]

    def __str__(self):
        return f"{self.currency} {self.rate} ({self.valid_from})"


class ReportedValue(models.Model):
    """What a Monday report said a KPI's value was (company or one team) for a period, so the next report can
    say how it moved since last week even for a month or quarter that is still running."""

    kpi = models.ForeignKey(Kpi, verbose_name=_("KPI"), on_delete=models.CASCADE, related_name="+")
    dimension_kind = models.CharField(_("dimension"), max_length=10, choices=DimensionKind.choices, blank=True)
    dimension_id = models.BigIntegerField(_("dimension value"), default=0)
    period_start = models.DateTimeField(_("period start"))
    value = models.DecimalField(_("value"), max_digits=24, decimal_places=6, null=True, blank=True)
    # The Monday of the report (company time): one row per report and KPI, period and dimension.
    reported_on = models.DateField(_("reported on"))
    reported_at = models.DateTimeField(_("reported at"), default=timezone.now)

    class Meta:
        verbose_name = _("reported KPI value")
        verbose_name_plural = _("reported KPI values")
        constraints = [
            models.UniqueConstraint(fields=["kpi", "dimension_kind", "dimension_id", "period_start", "reported_on"],
                                    name="reportedvalue_one_per_report"),
        ]

    def __str__(self):
        return f"{self.kpi_id} {self.dimension_kind}:{self.dimension_id} {self.period_start:%Y-%m-%d} = {self.value}"
