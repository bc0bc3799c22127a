"""Admin for the KPI app: everything is shown; little is written here.

KPIs are written in the formula editor (``kpis.services`` validates the formula, refuses cycles and bumps the
formula version), so here only whether a KPI is active and its order change. Snapshots are computed, never
typed. Survey responses, metric values and exchange rates are entered on the KPI data pages or pushed through
the API (``kpis.services_data`` checks them); the admin may delete a wrong one.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crm_okr.admin import CappedCountPaginator, ReadOnlyAdmin

from .models import ExchangeRate, ExternalMetric, Kpi, KpiSnapshot, MetricValue, SurveyResponse


@admin.register(Kpi)
class KpiAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "unit", "frequency", "is_builtin", "is_active", "order", "formula_version"]
    list_editable = ["is_active", "order"]
    list_filter = ["is_active", "is_builtin", "frequency", "unit"]
    search_fields = ["name", "slug"]
    fields = ["name", "slug", "description", "formula", "formula_version", "unit", "decimals", "frequency",
              "direction", "benchmark_low", "benchmark_high", "benchmark_text", "dimensions", "snapshot_at_start",
              "is_builtin", "is_active", "order", "created_by", "created_at", "updated_at"]
    readonly_fields = [name for name in fields if name not in ("is_active", "order")]

    def has_add_permission(self, request):
        # New KPIs go through the formula editor, which checks the formula.
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(KpiSnapshot)
class KpiSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["kpi", "period_start", "frequency", "dimension_kind", "dimension_label", "value", "is_final",
                    "formula_version", "computed_at", "duration_ms", "has_error"]
    list_filter = ["frequency", "is_final", "dimension_kind", "kpi"]
    list_select_related = ["kpi"]
    date_hierarchy = "period_start"
    ordering = ["-computed_at"]

    @admin.display(boolean=True, description=_("error"))
    def has_error(self, obj: KpiSnapshot) -> bool:
        return bool(obj.error)


class DeletableReadOnlyAdmin(ReadOnlyAdmin):
    """Shown read-only; an admin may delete a row entered by mistake."""

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and getattr(request.user, "is_admin", False)


@admin.register(SurveyResponse)
class SurveyResponseAdmin(DeletableReadOnlyAdmin):
    list_display = ["responded_at", "kind", "score", "contact", "channel", "external_id", "created_by"]
    list_filter = ["kind", "channel"]
    list_select_related = ["contact", "created_by"]
    search_fields = ["=external_id", "=contact__id"]
    search_help_text = _("The external id, or the contact's id.")
    ordering = ["-responded_at", "-id"]
    paginator = CappedCountPaginator


@admin.register(ExternalMetric)
class ExternalMetricAdmin(ReadOnlyAdmin):
    list_display = ["name", "key", "dimension_kind", "unit", "page_link"]
    search_fields = ["key", "name"]

    @admin.display(description=_("values"))
    def page_link(self, obj: ExternalMetric):
        return format_html('<a href="{}">{}</a>', reverse("metric-detail", args=[obj.key]), _("Values and entry"))


@admin.register(MetricValue)
class MetricValueAdmin(DeletableReadOnlyAdmin):
    list_display = ["metric", "period_start", "period_end", "dimension_id", "value", "updated_by", "updated_at"]
    list_filter = ["metric"]
    list_select_related = ["metric", "updated_by"]
    date_hierarchy = "period_start"
    ordering = ["metric", "-period_start", "dimension_id"]


@admin.register(ExchangeRate)
class ExchangeRateAdmin(DeletableReadOnlyAdmin):
    list_display = ["currency", "rate", "valid_from", "updated_by", "updated_at"]
    list_filter = ["currency"]
    list_select_related = ["updated_by"]
    ordering = ["currency", "-valid_from"]
