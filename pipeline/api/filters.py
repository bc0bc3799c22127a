"""Filters of the pipeline API lists (django-filter): every parameter validated, unknown ones refused by name."""

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from accounts.api import BoolFilter, IdFilter, StrictFilterSet

from ..models import Deal, LostReason, Pipeline, Stage
from ..selectors import search_filter, stale_q


class DealFilter(StrictFilterSet):
    pipeline = IdFilter(field_name="pipeline_id", help_text=_("Pipeline id."))
    stage = IdFilter(field_name="stage_id", help_text=_("Stage id."))
    owner = IdFilter(field_name="owner_id", help_text=_("Owner's user id."))
    team = IdFilter(field_name="team_id", help_text=_("Team id."))
    # distinct=False: one value per row, so no SELECT DISTINCT.
    status = filters.MultipleChoiceFilter(distinct=False, choices=Deal.Status.choices, help_text=_(
        "One or more of open, won, lost: ?status=won&status=lost."))
    stale = BoolFilter(method="filter_stale", help_text=_(
        "true: only open deals in their stage longer than its rotting limit; false: all the others."))
    close_from = filters.DateFilter(field_name="expected_close_date", lookup_expr="gte", help_text=_(
        "Expected to close on or after this date (YYYY-MM-DD)."))
    close_to = filters.DateFilter(field_name="expected_close_date", lookup_expr="lte", help_text=_(
        "Expected to close on or before this date (YYYY-MM-DD)."))
    amount_min = filters.NumberFilter(field_name="amount", lookup_expr="gte", max_digits=16, decimal_places=2,
                                      help_text=_("Amount at least this (in the deal's own currency)."))
    amount_max = filters.NumberFilter(field_name="amount", lookup_expr="lte", max_digits=16, decimal_places=2,
                                      help_text=_("Amount at most this (in the deal's own currency)."))
    contact = IdFilter(field_name="contact_id", help_text=_("Contact id."))
    company = IdFilter(field_name="company_id", help_text=_("Company id."))
    lead_source = IdFilter(field_name="lead_source_id", help_text=_("Lead source id."))
    lost_reason = IdFilter(field_name="lost_reason_id", help_text=_("Lost reason id."))
    search = filters.CharFilter(method="filter_search", max_length=200, help_text=_(
        "Words to find in the deal name; Turkish-aware and accent-insensitive (“isik” finds “Işık”)."))
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte", help_text=_(
        "Changed (or moved) at or after this time (ISO 8601): for syncing."))

    class Meta:
        model = Deal
        fields = []

    def filter_stale(self, queryset, name, value: bool):
        return queryset.filter(stale_q()) if value else queryset.exclude(stale_q())

    def filter_search(self, queryset, name, value: str):
        return queryset.filter(search_filter(value))


class StageFilter(StrictFilterSet):
    pipeline = IdFilter(field_name="pipeline_id", help_text=_("Pipeline id."))
    kind = filters.ChoiceFilter(choices=Stage.Kind.choices, help_text=_("open, won or lost."))

    class Meta:
        model = Stage
        fields = []


class LostReasonFilter(StrictFilterSet):
    is_active = BoolFilter(field_name="is_active", help_text=_("true: only the reasons that can be chosen."))

    class Meta:
        model = LostReason
        fields = []


class PipelineFilter(StrictFilterSet):
    """No filters: only the pagination parameters (anything else is refused by name)."""

    class Meta:
        model = Pipeline
        fields = []
