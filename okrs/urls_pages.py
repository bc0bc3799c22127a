"""The OKR pages people read: the alignment tree, team dashboards (printable, exportable), what changed,
at risk, my key results and the help page."""

from django.urls import path

from . import views_pages as views

urlpatterns = [
    path("okrs/", views.home, name="okr-home"),
    path("okrs/teams/<int:team_id>/", views.team_dashboard, name="okr-team"),
    path("okrs/teams/<int:team_id>/export.csv", views.team_export, name="okr-team-export"),
    path("okrs/teams/<int:team_id>/print/", views.team_print, name="okr-team-print"),
    path("okrs/changes/", views.changes, name="okr-changes"),
    path("okrs/at-risk/", views.at_risk, name="okr-at-risk"),
    path("okrs/mine/", views.mine, name="okr-mine"),
    path("okrs/help/", views.help_page, name="okr-help"),
]
