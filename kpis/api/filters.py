"""Filters of the KPI API lists (django-filter): every parameter validated, unknown ones refused by name."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _gettext
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from accounts.api import BoolFilter, IdFilter, StrictFilterSet

from ..models import DimensionKind, Frequency, Kpi, KpiSnapshot
from ..periods import company_tz

COMPANY = "company"


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=company_tz())


class _DayField(forms.DateField):
    """A date from 2000 to 2100 (YYYY-MM-DD); anything else is a 400 naming the parameter."""

    def clean(self, value):
        day = super().clean(value)
        if day is not None and not 2000 <= day.year <= 2100:
            raise forms.ValidationError(_gettext("Expected a date from 2000 to 2100 (YYYY-MM-DD)."))
        return day


class DayFilter(filters.DateFilter):
    field_class = _DayField


class KpiFilter(StrictFilterSet):
    is_active = BoolFilter(field_name="is_active", help_text=_("true: only the KPIs that are snapshotted."))
    is_builtin = BoolFilter(field_name="is_builtin", help_text=_("true: only the built-in KPIs; false: custom ones."))
    frequency = filters.ChoiceFilter(choices=Frequency.choices, help_text=_("daily, weekly, monthly or quarterly."))
    unit = filters.ChoiceFilter(choices=Kpi.Unit.choices, help_text=_("number, percent, currency or days."))
    dimension_kind = filters.ChoiceFilter(choices=DimensionKind.choices, method="filter_dimension_kind", help_text=_(
        "Only the KPIs that can be broken down by this kind (team, owner, pipeline or source)."))

    class Meta:
        model = Kpi
        fields = []

    def filter_dimension_kind(self, queryset, name, value):
        return queryset.filter(dimensions__contains=[value])


class KpiSnapshotFilter(StrictFilterSet):
    kpi = filters.CharFilter(method="filter_kpi", max_length=60, help_text=_("The KPI's key, e.g. win-rate."))
    frequency = filters.ChoiceFilter(choices=Frequency.choices, help_text=_("daily, weekly, monthly or quarterly."))
    period_from = DayFilter(method="filter_period_from", help_text=_(
        "Only periods starting on or after this day (YYYY-MM-DD, company time zone)."))
    period_to = DayFilter(method="filter_period_to", help_text=_(
        "Only periods starting on or before this day (YYYY-MM-DD, company time zone)."))
    dimension_kind = filters.ChoiceFilter(
        choices=[(COMPANY, _("Company")), *DimensionKind.choices], method="filter_dimension_kind", help_text=_(
            "company (the company-wide rows), team, owner, pipeline or source."))
    dimension_id = IdFilter(field_name="dimension_id", help_text=_(
        "The team, user, pipeline or lead source id (use with dimension_kind)."))
    is_final = BoolFilter(field_name="is_final", help_text=_("true: only values of periods that had ended."))
    computed_since = filters.IsoDateTimeFilter(field_name="computed_at", lookup_expr="gte", help_text=_(
        "Computed at or after this time (ISO 8601): for syncing."))

    class Meta:
        model = KpiSnapshot
        fields = []

    def filter_kpi(self, queryset, name, value):
        kpi_id = Kpi.objects.filter(slug=value).values_list("pk", flat=True).first()
        if kpi_id is None:
            raise ValidationError({"kpi": _gettext("There is no KPI with the key “%(slug)s”.") % {"slug": value}})
        return queryset.filter(kpi_id=kpi_id)

    def filter_period_from(self, queryset, name, value):
        return queryset.filter(period_start__gte=_local_midnight(value))

    def filter_period_to(self, queryset, name, value):
        return queryset.filter(period_start__lt=_local_midnight(value + dt.timedelta(days=1)))

    def filter_dimension_kind(self, queryset, name, value):
        return queryset.filter(dimension_kind="" if value == COMPANY else value)
