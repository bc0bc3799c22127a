"""Filters of the OKR API lists (django-filter): every parameter validated, unknown ones refused by name."""

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from accounts.api import BoolFilter, IdFilter, StrictFilterSet

from ..models import CheckIn, Cycle, Initiative, KeyResult, Objective


class CycleFilter(StrictFilterSet):
    status = filters.MultipleChoiceFilter(distinct=False, choices=Cycle.Status.choices, help_text=_(
        "One or more of planning, active, closed: ?status=active&status=planning."))

    class Meta:
        model = Cycle
        fields = []


class ObjectiveFilter(StrictFilterSet):
    cycle = IdFilter(field_name="cycle_id", help_text=_("Cycle id."))
    level = filters.MultipleChoiceFilter(distinct=False, choices=Objective.Level.choices, help_text=_(
        "One or more of company, team, individual."))
    team = IdFilter(field_name="team_id", help_text=_("Team id."))
    owner = IdFilter(field_name="owner_id", help_text=_("Owner's user id."))
    parent = IdFilter(field_name="parent_id", help_text=_("Id of the objective they are aligned to."))
    is_root = BoolFilter(field_name="parent_id", lookup_expr="isnull", help_text=_(
        "true: only objectives aligned to no other."))
    archived = BoolFilter(field_name="archived_at", method="filter_archived", help_text=_(
        "false: only live objectives; true: only archived ones."))

    class Meta:
        model = Objective
        fields = []

    def filter_archived(self, queryset, name, value: bool):
        return queryset.filter(archived_at__isnull=not value)


class KeyResultFilter(StrictFilterSet):
    cycle = IdFilter(field_name="objective__cycle_id", help_text=_("Cycle id."))
    objective = IdFilter(field_name="objective_id", help_text=_("Objective id."))
    team = IdFilter(field_name="objective__team_id", help_text=_(
        "Team id of their objective: the team's objectives and its people's individual ones."))
    owner = IdFilter(field_name="owner_id", help_text=_("Owner's user id."))
    kpi = IdFilter(field_name="kpi_id", help_text=_("Id of the KPI that measures them."))
    manual = BoolFilter(field_name="kpi_id", lookup_expr="isnull", help_text=_(
        "true: only key results kept by hand (no KPI); false: only those measured by a KPI."))
    kind = filters.MultipleChoiceFilter(distinct=False, choices=KeyResult.Kind.choices, help_text=_(
        "One or more of increase, decrease, keep_above, keep_below, milestone."))

    class Meta:
        model = KeyResult
        fields = []

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if data is not None and "status" in data:
            # The status is computed from progress and the time elapsed (okrs.progress), not stored: filtering a
            # page after it is read would give short pages, so it is not offered.
            self.refuse("status", _("Key results cannot be filtered by status: it is computed, not stored. Every "
                                    "key result in the list carries its status; filter the list yourself."))


class CheckInFilter(StrictFilterSet):
    key_result = IdFilter(field_name="key_result_id", help_text=_("Key result id."))
    author = IdFilter(field_name="author_id", help_text=_("User id of who checked in."))
    is_automatic = BoolFilter(field_name="is_automatic", help_text=_("true: only check-ins from KPI snapshots."))
    since = filters.IsoDateTimeFilter(field_name="measured_at", lookup_expr="gte", help_text=_(
        "Measured at or after this time (ISO 8601)."))

    class Meta:
        model = CheckIn
        fields = []


class InitiativeFilter(StrictFilterSet):
    key_result = IdFilter(field_name="key_result_id", help_text=_("Key result id."))
    owner = IdFilter(field_name="owner_id", help_text=_("Owner's user id."))
    status = filters.MultipleChoiceFilter(distinct=False, choices=Initiative.Status.choices, help_text=_(
        "One or more of not_started, in_progress, done, cancelled."))

    class Meta:
        model = Initiative
        fields = []

