"""Serializers of the KPI data API (survey responses, external metrics, metric values, exchange rates).

Types and shape only: keys that are not fields are refused by name (``StrictSerializerMixin``); the rules
(score ranges, visible contacts, dimensions, overlapping periods, currencies) live in ``kpis.services_data``.
"""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from accounts.api import MAX_ID, StrictCharField, StrictModelSerializer, StrictSerializer

from ..models import ExchangeRate, ExternalMetric, MetricValue, SurveyResponse
from ..services_data import MAX_COMMENT

PERIOD_HELP = _(
    "A period key instead of period_start/period_end: a day (2026-11-23), an ISO week (2026-W48, Monday to "
    "Sunday), a month (2026-11) or a quarter (2026-Q4).")


# --- survey responses ------------------------------------------------------------------------------


class SurveyChannelField(serializers.ChoiceField):
    """The channel of an answer (its own enum in the schema: contacts' consent channels are another set)."""

    def __init__(self, **kwargs):
        super().__init__(choices=SurveyResponse.Channel.choices, allow_blank=True, **kwargs)


class SurveyChannelFieldSchema(OpenApiSerializerFieldExtension):
    target_class = SurveyChannelField

    def get_name(self):
        return "SurveyChannelEnum"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": [*SurveyResponse.Channel.values, ""], "description": "\n".join(
            f"* `{value}` - {label}" for value, label in SurveyResponse.Channel.choices) + "\n* `` - none"}



class SurveyResponseSerializer(StrictModelSerializer):
    """An NPS (0–10) or CSAT (1–5) answer of a contact."""

    contact = serializers.IntegerField(
        source="contact_id", required=False, allow_null=True, min_value=1, max_value=MAX_ID, help_text=_(
            "Contact id (one you can see). Required, except for admins and integrations, who may push "
            "answers without a contact."))
    score = serializers.IntegerField(help_text=_("NPS: 0–10 (9–10 promoters, 0–6 detractors); CSAT: 1–5."))
    comment = StrictCharField(required=False, allow_blank=True, max_length=MAX_COMMENT)
    channel = SurveyChannelField(required=False, help_text=_("Where the answer came from (may be empty)."))

    class Meta:
        model = SurveyResponse
        fields = ["id", "kind", "score", "contact", "responded_at", "channel", "comment", "external_id",
                  "created_by", "created_at"]
        read_only_fields = ["created_by", "created_at"]
        extra_kwargs = {
            "kind": {"help_text": _("nps (default) or csat.")},
            "responded_at": {"required": False, "help_text": _(
                "When the contact answered (ISO 8601; defaults to now; not in the future).")},
            # The service updates the answer with this id instead (upsert); no unique check here.
            "external_id": {"validators": [], "help_text": _(
                "Your system's id of the answer: sending the same id again updates that answer instead of "
                "counting it twice.")},
        }

    def to_internal_value(self, data):
        attrs = super().to_internal_value(data)
        if "contact_id" in attrs:
            attrs["contact"] = attrs.pop("contact_id")
        return attrs


# --- external metrics ------------------------------------------------------------------------------


class ExternalMetricSerializer(StrictModelSerializer):
    """A named series of numbers kept outside the CRM, e.g. marketing spend per lead source."""

    class Meta:
        model = ExternalMetric
        fields = ["id", "key", "name", "description", "unit", "dimension_kind", "applies_to_breakdowns", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {
            # Checked by the service, with messages that say what to type.
            "key": {"validators": [], "help_text": _(
                "Lower-case letters, digits and underscores, starting with a letter: used in formulas "
                "(sum(metrics.value where metric = 'marketing_spend')) and in this API. Cannot change.")},
            "description": {"max_length": 5000},
            "unit": {"help_text": _("How values are shown: currency (default), number, percent or days.")},
            "dimension_kind": {"help_text": _(
                "Empty: one company-wide value per period. team, owner, pipeline or source: one value per team, "
                "owner, pipeline or lead source per period. Cannot change once the metric has values.")},
            "applies_to_breakdowns": {"help_text": _(
                "Company-wide metrics only: true when the value also holds for each team, owner, pipeline and lead "
                "source (e.g. customer lifetime), so a KPI broken down by them uses it; false (default) for an "
                "amount the whole company spends (sales spend), which then counts only for the company.")},
        }


# --- metric values ---------------------------------------------------------------------------------


class MetricValueSerializer(serializers.ModelSerializer):
    """One value of a metric for a period (and a dimension value when the metric is kept per one)."""

    metric = serializers.SlugRelatedField(slug_field="key", read_only=True, help_text=_("The metric's key."))
    dimension_kind = serializers.CharField(source="metric.dimension_kind", read_only=True, help_text=_(
        "What the metric is kept per (team, owner, pipeline, source); empty when company-wide."))
    dimension = serializers.SerializerMethodField(help_text=_(
        "The team, user, pipeline or lead source id; null for a company-wide metric."))

    class Meta:
        model = MetricValue
        fields = ["id", "metric", "period_start", "period_end", "dimension_kind", "dimension", "value",
                  "updated_by", "updated_at"]
        read_only_fields = fields

    def get_dimension(self, row) -> int | None:
        return row.dimension_id or None


class MetricValueInputSerializer(StrictSerializer):
    """A value to set: created, or replacing the value of the same metric, period start and dimension."""

    metric = StrictCharField(max_length=60, help_text=_("The metric's key, e.g. marketing_spend."))
    period = StrictCharField(max_length=20, required=False, allow_blank=True, allow_null=True, help_text=PERIOD_HELP)
    period_start = serializers.DateField(required=False, allow_null=True, help_text=_(
        "First day the value covers (YYYY-MM-DD). The value counts in the KPI periods that contain this day."))
    period_end = serializers.DateField(required=False, allow_null=True, help_text=_(
        "Last day the value covers (YYYY-MM-DD), on or after period_start."))
    dimension = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID, help_text=_(
        "For a metric kept per team, owner, pipeline or lead source: that id (required). Omit for a company-wide "
        "metric."))
    value = serializers.DecimalField(max_digits=20, decimal_places=4, help_text=_(
        "The value, e.g. \"12500.50\" (up to 4 decimals). Money is in the company currency."))

    class Meta:
        ref_name = "MetricValueInput"


class MetricValueBulkResultSerializer(serializers.Serializer):
    """What a list of values did."""

    created = serializers.IntegerField(help_text=_("How many values were new."))
    updated = serializers.IntegerField(help_text=_("How many replaced an existing value."))
    results = MetricValueSerializer(many=True, help_text=_("The values, in the order sent."))

    class Meta:
        ref_name = "MetricValueBulkResult"


def metric_value_upsert_body() -> PolymorphicProxySerializer:
    """Documents the body of POST /metric-values/: one value, or a list of up to 500."""
    return PolymorphicProxySerializer(
        component_name="MetricValueUpsert",
        serializers=[MetricValueInputSerializer, MetricValueInputSerializer(many=True)],
        resource_type_field_name=None, many=False,
    )


def metric_value_upsert_answer() -> PolymorphicProxySerializer:
    return PolymorphicProxySerializer(
        component_name="MetricValueUpsertResult",
        serializers=[MetricValueSerializer, MetricValueBulkResultSerializer],
        resource_type_field_name=None, many=False,
    )


# --- exchange rates --------------------------------------------------------------------------------


class ExchangeRateSerializer(StrictModelSerializer):
    """How much one unit of a currency is worth in the company currency, from a day on."""

    currency = StrictCharField(max_length=3, help_text=_(
        "ISO 4217 code (EUR, USD, …); not the company currency (%(currency)s).") % {"currency": settings.CRM_CURRENCY})
    rate = serializers.DecimalField(max_digits=18, decimal_places=8, help_text=_(
        "Company currency per one unit of this currency, more than 0, e.g. \"36.1250\"."))

    class Meta:
        model = ExchangeRate
        fields = ["id", "currency", "rate", "valid_from", "updated_by", "updated_at"]
        read_only_fields = ["updated_by", "updated_at"]
        # One rate per currency and day: sending it again replaces the rate (upsert, checked by the service).
        validators = []
        extra_kwargs = {
            "valid_from": {"help_text": _(
                "The first day (YYYY-MM-DD) the rate applies. A deal amount in this currency is converted with "
                "the latest rate on or before a KPI period's last day.")},
        }

    def validate_rate(self, value):
        if value <= 0:
            raise serializers.ValidationError(_("The rate must be more than 0."))
        return value
