"""The KPI pages: dashboard and KPI pages, the formula editor, and the data people enter."""

from django.urls import include, path

urlpatterns = [
    path("", include("kpis.urls_dashboard")),
    path("", include("kpis.urls_editor")),
    path("", include("kpis.urls_data")),
]
