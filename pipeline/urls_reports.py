"""The report pages: forecast, weekly pipeline review, win/loss analysis."""

from django.urls import path

from . import views_reports

urlpatterns = [
    path("reports/forecast/", views_reports.forecast, name="forecast"),
    path("reports/review/", views_reports.pipeline_review, name="pipeline-review"),
    path("reports/win-loss/", views_reports.win_loss, name="win-loss"),
]
