"""The report endpoints of the API (included at /api/v1/ by crm_okr.api_urls)."""

from django.urls import path

from . import api_reports

urlpatterns = [
    path("forecast/", api_reports.ForecastView.as_view(), name="api-forecast"),
    path("win-loss/", api_reports.WinLossView.as_view(), name="api-win-loss"),
    path("pipeline-review/", api_reports.PipelineReviewView.as_view(), name="api-pipeline-review"),
]
