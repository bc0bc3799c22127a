"""Admin: the lost-reason list is edited here; deals and their stage history are shown read-only.

Pipelines and stages are edited on the app's own settings page (``pipeline-settings``), where moving the
deals out of a deleted stage and re-dating staleness go through ``pipeline.services``.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm_okr.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import Deal, LostReason, Pipeline, Stage, StageChange
from .selectors import search_filter


@admin.register(LostReason)
class LostReasonAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "order"]
    list_editable = ["is_active", "order"]
    list_filter = ["is_active"]
    search_fields = ["name"]

    def has_delete_permission(self, request, obj=None):
        # Lost deals point at their reason: retire a reason by making it inactive.
        return False


class StageInline(ReadOnlyInline):
    model = Stage
    fields = ["order", "name", "kind", "probability", "rotting_days", "exit_criteria", "allow_skip"]
    readonly_fields = fields


@admin.register(Pipeline)
class PipelineAdmin(ReadOnlyAdmin):
    list_display = ["name", "is_default", "order"]
    inlines = [StageInline]


class StageChangeInline(ReadOnlyInline):
    model = StageChange
    fields = ["changed_at", "from_stage_name", "to_stage_name", "direction", "actor"]
    readonly_fields = fields


@admin.register(Deal)
class DealAdmin(ReadOnlyAdmin):
    list_display = ["name", "pipeline", "stage", "status", "amount", "currency", "expected_close_date", "owner",
                    "team"]
    list_filter = ["status", "pipeline", "team"]
    list_select_related = ["pipeline", "stage", "owner", "team"]
    list_per_page = 50
    search_fields = ["search_text"]
    search_help_text = _("Deal name; Turkish letters optional.")
    inlines = [StageChangeInline]

    def get_search_results(self, request, queryset, search_term):
        return queryset.filter(search_filter(search_term)), False
