"""The KPI editor (admins): create, edit, preview and delete KPIs; the formula language's help page."""

from django.urls import path

from . import views_editor as views

urlpatterns = [
    path("kpis/new/", views.kpi_create, name="kpi-create"),
    path("kpis/preview/", views.kpi_preview, name="kpi-preview"),
    path("kpis/language/", views.kpi_language_help, name="kpi-language-help"),
    path("kpis/<slug:slug>/edit/", views.kpi_edit, name="kpi-edit"),
    path("kpis/<slug:slug>/delete/", views.kpi_delete, name="kpi-delete"),
]
