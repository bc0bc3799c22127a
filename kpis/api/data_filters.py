"""Filters of the KPI data API lists: every parameter validated, unknown ones refused by name."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from accounts.api import IdFilter, StrictFilterSet

from ..models import ExchangeRate, ExternalMetric, MetricValue, SurveyResponse


class SurveyResponseFilter(StrictFilterSet):
    kind = filters.ChoiceFilter(choices=SurveyResponse.Kind.choices, help_text=_("nps or csat."))
    channel = filters.ChoiceFilter(choices=SurveyResponse.Channel.choices, help_text=_("Where the answer came from."))
    contact = IdFilter(field_name="contact_id", help_text=_("Contact id."))
    responded_from = filters.IsoDateTimeFilter(field_name="responded_at", lookup_expr="gte", help_text=_(
        "Answered at or after this time (ISO 8601)."))
    responded_to = filters.IsoDateTimeFilter(field_name="responded_at", lookup_expr="lt", help_text=_(
        "Answered before this time (ISO 8601)."))
    external_id = filters.CharFilter(field_name="external_id", max_length=100, help_text=_(
        "Your system's id of the answer."))

    class Meta:
        model = SurveyResponse
        fields = []


class ExternalMetricFilter(StrictFilterSet):
    dimension_kind = filters.ChoiceFilter(
        choices=[("company", _("Company-wide")), *ExternalMetric._meta.get_field("dimension_kind").choices],
        method="filter_dimension_kind", help_text=_("company, team, owner, pipeline or source."))

    class Meta:
        model = ExternalMetric
        fields = []

    def filter_dimension_kind(self, queryset, name, value):
        return queryset.filter(dimension_kind="" if value == "company" else value)


class MetricKeyField(forms.CharField):
    """A metric key that must exist (one query, only when the parameter is given)."""

    def clean(self, value):
        value = super().clean(value)
        if value and not ExternalMetric.objects.filter(key=value).exists():
            raise forms.ValidationError(_("Unknown metric “%(key)s”.") % {"key": value[:60]})
        return value


class MetricKeyFilter(filters.CharFilter):
    field_class = MetricKeyField


class MetricValueFilter(StrictFilterSet):
    metric = MetricKeyFilter(field_name="metric__key", max_length=60, help_text=_("The metric's key."))
    period_from = filters.DateFilter(field_name="period_start", lookup_expr="gte", help_text=_(
        "Values whose period starts on or after this day (YYYY-MM-DD)."))
    period_to = filters.DateFilter(field_name="period_start", lookup_expr="lte", help_text=_(
        "Values whose period starts on or before this day (YYYY-MM-DD)."))
    dimension = IdFilter(field_name="dimension_id", help_text=_(
        "Team, user, pipeline or lead source id (per the metric's dimension_kind)."))

    class Meta:
        model = MetricValue
        fields = []


class ExchangeRateFilter(StrictFilterSet):
    currency = filters.CharFilter(method="filter_currency", max_length=3, help_text=_("ISO code, e.g. EUR."))
    valid_from = filters.DateFilter(field_name="valid_from", lookup_expr="gte", help_text=_(
        "Rates valid from this day or later (YYYY-MM-DD)."))
    valid_to = filters.DateFilter(field_name="valid_from", lookup_expr="lte", help_text=_(
        "Rates that start on or before this day (YYYY-MM-DD)."))

    class Meta:
        model = ExchangeRate
        fields = []

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.strip().upper())
