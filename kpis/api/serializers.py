"""Serializers of the KPI API: types and shape only; the rules (formula checks, cycles, who may write) live in
kpis.services.

Formula errors are reported as ``{"errors": {"formula": ["<message> (position N)"]}, "position": N, "end": M}``:
``position`` and ``end`` are 0-based character offsets into the formula text (the faulty part is
``formula[position:end]``), so an editor can underline it; both are null when the error concerns the formula as
a whole (then the message has no "(position N)"). Other fields' errors may come in the same body. Every other
error has the project's usual shape.
"""

from decimal import Context, Decimal

from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import StrictCharField, StrictModelSerializer, StrictSerializer

from .. import periods
from ..models import DimensionKind, Kpi, KpiSnapshot
from ..templatetags.kpis import format_value as kpi_format_value

# The longest formula the language accepts (the compiler refuses longer ones with a message too).
MAX_FORMULA = 2000
# Paths under /api/v1/kpis/ that are not KPIs, so no KPI may take them as its key.
RESERVED_SLUGS = frozenset({"validate"})
# What a built-in KPI lets an admin change (its formula, unit and frequency are the product's definition).
BUILTIN_EDITABLE = frozenset({"name", "description", "is_active", "benchmark_low", "benchmark_high",
                              "benchmark_text"})
COMPANY = "company"


# --- values -----------------------------------------------------------------------------------------


def decimal_text(value) -> str | None:
    """A KPI value as a plain decimal string with at most 6 decimals and no trailing zeros ("12.5", "3")."""
    if value is None:
        return None
    value = Decimal(value)
    if not value.is_finite():
        return None
    context = Context(prec=max(28, value.adjusted() + 10))
    text = format(value.quantize(Decimal("0.000001"), context=context).normalize(context), "f")
    return "0" if text in ("-0", "0") else text


def format_value(kpi: Kpi, value) -> str:
    """A value as people read it in the current language, as the KPI pages show it: "12.5%" (Turkish "%12,5"),
    "1,250.0 TRY", "42.0 days"; "n/a" for no value."""
    if value is not None and not Decimal(value).is_finite():
        value = None
    return kpi_format_value(value, kpi)


class FormulaCharField(StrictCharField):
    """The formula text: a NUL character is left to the formula checker, which reports its position."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


@extend_schema_field({"type": "string", "format": "decimal", "nullable": True, "example": "12.5"})
class DecimalTextField(serializers.Field):
    """A read-only KPI value: a decimal string (at most 6 decimals) or null for no value."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return decimal_text(value)


# --- KPIs -------------------------------------------------------------------------------------------

KPI_EXTRA_KWARGS = {
    "slug": {"help_text": _(
        "Key of the KPI, used in URLs and in formulas (kpi('win-rate')): letters, digits, “-” and “_”. Set on "
        "create; cannot change later.")},
    "name": {"help_text": _("Shown on the dashboard, e.g. “MQL rate”.")},
    "description": {"max_length": 5000, "help_text": _("The definition in words (shown on the KPI's page).")},
    "formula": {"help_text": _(
        "The formula in the KPI language, at most 2000 characters, e.g. "
        "count(deals where status = 'won' by closed_at) * 100 / count(deals). Check it first with "
        "POST /api/v1/kpis/validate/.")},
    "unit": {"help_text": _(
        "How the value is shown: number, percent, currency (the company currency), currency_per_day (the company "
        "currency per day, e.g. pipeline velocity) or days.")},
    "decimals": {"help_text": _("Decimals shown in formatted values (0–6).")},
    "frequency": {"help_text": _("How often the KPI is snapshotted; the default period of evaluate.")},
    "direction": {"help_text": _("Whether a higher or a lower value is better.")},
    "benchmark_low": {"help_text": _("Lower end of the benchmark band (null: open).")},
    "benchmark_high": {"help_text": _("Upper end of the benchmark band (null: open).")},
    "benchmark_text": {"help_text": _("The benchmark in words when it is not a band, e.g. “3-5x target”.")},
    "snapshot_at_start": {"help_text": _(
        "Take the period's value once, when the period starts, and keep it (e.g. a forecast).")},
    "is_active": {"help_text": _("Inactive KPIs are neither snapshotted nor shown on the dashboard.")},
    "order": {"help_text": _("Position on the dashboard.")},
}


class KpiSerializer(StrictModelSerializer):
    """A KPI: its formula, unit, frequency and benchmark.

    Built-in KPIs accept changes only to name, description, is_active and the benchmark; any other field sent
    with a different value is refused by name (sending a record back unchanged is fine).
    """

    slug = serializers.SlugField(max_length=60, help_text=KPI_EXTRA_KWARGS["slug"]["help_text"])
    formula = FormulaCharField(max_length=MAX_FORMULA, trim_whitespace=False,
                              help_text=KPI_EXTRA_KWARGS["formula"]["help_text"])
    dimensions = serializers.ListField(
        child=serializers.ChoiceField(choices=DimensionKind.choices), read_only=True, help_text=_(
            "The dimension kinds the KPI can be broken down by (decided from its formula); it can always be "
            "computed for the whole company."))
    created_by = serializers.PrimaryKeyRelatedField(read_only=True, help_text=_("User id of who created it."))

    class Meta:
        model = Kpi
        fields = [
            "id", "slug", "name", "description", "formula", "formula_version", "unit", "decimals", "frequency",
            "direction", "benchmark_low", "benchmark_high", "benchmark_text", "dimensions", "snapshot_at_start",
            "is_builtin", "is_active", "order", "created_by", "created_at", "updated_at",
        ]
        read_only_fields = ["formula_version", "is_builtin", "created_at", "updated_at"]
        extra_kwargs = {key: value for key, value in KPI_EXTRA_KWARGS.items() if key not in {"slug", "formula"}}

    def validate_slug(self, value):
        if self.instance is None:
            if value.lower() in RESERVED_SLUGS:
                raise serializers.ValidationError(_("“%(slug)s” is reserved; choose another key.") % {"slug": value})
            if Kpi.objects.filter(slug__iexact=value).exists():
                raise serializers.ValidationError(_("A KPI with this key already exists."))
        return value

    def validate_formula(self, value):
        if not value.strip():
            raise serializers.ValidationError(_("Write a formula, e.g. count(deals)."))
        return value

    def validate(self, attrs):
        instance = self.instance
        errors = {}
        if instance is not None:
            # The same value sent back (a record read from the API) is no change.
            for name in list(attrs):
                if attrs[name] == getattr(instance, name):
                    attrs.pop(name)
            if "slug" in attrs:
                errors["slug"] = [_("The key cannot change: formulas and integrations refer to it.")]
            if instance.is_builtin:
                for name in sorted(set(attrs) - BUILTIN_EDITABLE):
                    errors[name] = [_("A built-in KPI keeps its %(field)s; only name, description, benchmark and "
                                      "is_active can change.") % {"field": name}]
        low = attrs.get("benchmark_low", getattr(instance, "benchmark_low", None))
        high = attrs.get("benchmark_high", getattr(instance, "benchmark_high", None))
        if low is not None and high is not None and low > high:
            errors["benchmark_high"] = [_("The upper end of the benchmark must not be below the lower end.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class FormulaCheckSerializer(StrictSerializer):
    """A formula to check without saving it."""

    formula = FormulaCharField(max_length=MAX_FORMULA, trim_whitespace=False, help_text=_(
        "The formula in the KPI language (at most 2000 characters)."))
    slug = serializers.SlugField(max_length=60, required=False, help_text=_(
        "The key of the KPI being edited, if any: references back to it (a cycle) are then refused."))

    class Meta:
        ref_name = "FormulaCheck"

    def validate_formula(self, value):
        if not value.strip():
            raise serializers.ValidationError(_("Write a formula, e.g. count(deals)."))
        return value


class FormulaCheckResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField(help_text=_("Always true in a 200 answer; a bad formula answers 400."))
    dimensions = serializers.ListField(child=serializers.ChoiceField(choices=DimensionKind.choices), help_text=_(
        "The dimension kinds a KPI with this formula can be broken down by."))
    references = serializers.ListField(child=serializers.CharField(), help_text=_(
        "Keys of the KPIs the formula refers to with kpi('…') or snapshot('…')."))

    class Meta:
        ref_name = "FormulaCheckResult"


class FormulaErrorSerializer(serializers.Serializer):
    """A refused formula: the message names where and why; the offsets let an editor underline the part."""

    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), help_text=_(
        'Messages by field, e.g. {"formula": ["Unknown field “stauts” on deals — did you mean “status”? '
        '(position 14)"]}.'))
    position = serializers.IntegerField(required=False, allow_null=True, help_text=_(
        "Only for a formula error: where the problem starts, a 0-based character offset into the formula (null "
        "when the error concerns the formula as a whole)."))
    end = serializers.IntegerField(required=False, allow_null=True, help_text=_(
        "Only for a formula error: where the faulty part ends (0-based, exclusive)."))

    class Meta:
        ref_name = "FormulaError"


# --- evaluating -------------------------------------------------------------------------------------


class EvaluateQuerySerializer(StrictSerializer):
    """The query parameters of evaluate."""

    period = StrictCharField(max_length=40, required=False, help_text=_(
        "The period key in the KPI's frequency: 2026-11-23 (daily), 2026-W48 (weekly), 2026-11 (monthly), "
        "2026-Q4 (quarterly). Default: the current period."))
    dimension = StrictCharField(max_length=40, required=False, help_text=_(
        "One dimension value: company (default), team:<id>, owner:<user id>, pipeline:<id> or source:<lead "
        "source id>."))
    dimension_kind = serializers.ChoiceField(choices=DimensionKind.choices, required=False, help_text=_(
        "Instead of dimension: the value for every team, owner, pipeline or lead source in one answer."))

    class Meta:
        ref_name = "KpiEvaluateQuery"

    def validate(self, attrs):
        if attrs.get("dimension") and attrs.get("dimension_kind"):
            raise serializers.ValidationError({"dimension_kind": [_("Give either dimension or dimension_kind.")]})
        return attrs


class _PeriodFields(serializers.Serializer):
    kpi = serializers.CharField(help_text=_("The KPI's key."))
    period = serializers.CharField(help_text=_("The period key, e.g. 2026-11."))
    period_label = serializers.CharField(help_text=_("The period as people read it, e.g. “Nov 2026”."))
    period_start = serializers.DateTimeField(help_text=_("Start of the period (inclusive), company time zone."))
    period_end = serializers.DateTimeField(help_text=_("End of the period (exclusive)."))
    unit = serializers.ChoiceField(choices=Kpi.Unit.choices)
    snapshotted_at_start = serializers.BooleanField(help_text=_(
        "True for a KPI taken when its period starts (the sales forecast) and a period that has started: the "
        "value is the snapshot taken then (null when none was taken), not a computation now."))
    unconverted_currencies = serializers.ListField(child=serializers.CharField(), help_text=_(
        "Currencies of deals with an amount and no exchange rate on or before the period's last day: their "
        "amounts are left out of this money KPI. Always present; [] when none or not a money KPI."))


class KpiValueSerializer(_PeriodFields):
    """The value of a KPI for one period and one dimension value (or the company)."""

    dimension = serializers.CharField(help_text=_("“company”, or the dimension value, e.g. team:3."))
    dimension_label = serializers.CharField(help_text=_("The team, owner, pipeline or lead source name."))
    value = DecimalTextField(help_text=_("Decimal string; null when there is no value (e.g. division by zero)."))
    formatted = serializers.CharField(help_text=_("The value as shown, e.g. “12.5%”, or “n/a”."))

    class Meta:
        ref_name = "KpiValue"


class KpiMemberValueSerializer(serializers.Serializer):
    dimension = serializers.CharField(help_text=_("e.g. source:2"))
    dimension_id = serializers.IntegerField()
    dimension_label = serializers.CharField()
    value = DecimalTextField(help_text=_("Decimal string; null when there is no value."))
    formatted = serializers.CharField()

    class Meta:
        ref_name = "KpiMemberValue"


class KpiMemberValuesSerializer(_PeriodFields):
    """The value of a KPI for one period and every value of a dimension kind."""

    dimension_kind = serializers.ChoiceField(choices=DimensionKind.choices)
    results = KpiMemberValueSerializer(many=True, help_text=_(
        "One row per team, owner (active reps and managers), pipeline or active lead source, in display order."))

    class Meta:
        ref_name = "KpiMemberValues"


# --- snapshots --------------------------------------------------------------------------------------


class KpiSnapshotSerializer(serializers.ModelSerializer):
    """A stored value of a KPI for one period and dimension value, as taken by the scheduled snapshots."""

    kpi = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text=_("The KPI's key."))
    period = serializers.SerializerMethodField(help_text=_("The period key, e.g. 2026-11."))
    dimension = serializers.SerializerMethodField(help_text=_("“company”, or e.g. team:3."))
    value = DecimalTextField(help_text=_("Decimal string; null when there was no value (or the run failed)."))
    formatted = serializers.SerializerMethodField(help_text=_("The value as shown, e.g. “12.5%”, or “n/a”."))

    class Meta:
        model = KpiSnapshot
        fields = ["id", "kpi", "frequency", "period", "period_start", "period_end", "dimension", "dimension_kind",
                  "dimension_id", "dimension_label", "value", "formatted", "formula_version", "computed_at",
                  "duration_ms", "is_final", "error"]
        read_only_fields = fields
        extra_kwargs = {
            "dimension_kind": {"help_text": _("Empty for the company-wide row.")},
            "dimension_id": {"help_text": _("0 for the company-wide row.")},
            "error": {"help_text": _("Why the value could not be computed (empty when it was).")},
        }

    def get_period(self, snapshot) -> str:
        return periods.containing(snapshot.frequency, snapshot.period_start).key

    def get_dimension(self, snapshot) -> str:
        return f"{snapshot.dimension_kind}:{snapshot.dimension_id}" if snapshot.dimension_kind else COMPANY

    def get_formatted(self, snapshot) -> str:
        return format_value(snapshot.kpi, snapshot.value)

