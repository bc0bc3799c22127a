"""The KPI data pages (under /kpis/data/): survey responses, external metrics and their values, exchange rates."""

from django.urls import path

from . import views_data as views

urlpatterns = [
    path("kpis/data/surveys/", views.survey_list, name="survey-list"),
    path("kpis/data/surveys/new/", views.survey_create, name="survey-create"),
    path("kpis/data/metrics/", views.metric_list, name="metric-list"),
    path("kpis/data/metrics/<slug:key>/", views.metric_detail, name="metric-detail"),
    path("kpis/data/metrics/<slug:key>/edit/", views.metric_edit, name="metric-edit"),
    path("kpis/data/metrics/<slug:key>/values/<int:pk>/delete/", views.metric_value_delete,
         name="metric-value-delete"),
    path("kpis/data/exchange-rates/", views.exchange_rate_list, name="exchange-rate-list"),
    path("kpis/data/exchange-rates/<int:pk>/delete/", views.exchange_rate_delete, name="exchange-rate-delete"),
]
