"""The KPI dashboard, a KPI's page and its drill-down."""

from django.urls import path, register_converter

from . import views_dashboard as views


class KpiSlugConverter:
    """A KPI's slug, but never a word other KPI pages use right under /kpis/ (``new``, ``preview``,
    ``language``, ``data``): this module is included first, so ``/kpis/new/`` must fall through to the editor."""

    regex = r"(?!(?:new|preview|language|data)/)[-a-zA-Z0-9_]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(KpiSlugConverter, "kpislug")

urlpatterns = [
    path("kpis/", views.dashboard, name="kpi-dashboard"),
    path("kpis/<kpislug:slug>/", views.kpi_detail, name="kpi-detail"),
    path("kpis/<kpislug:slug>/records/", views.kpi_drilldown, name="kpi-drilldown"),
]
