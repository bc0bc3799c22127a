"""The deals pages in the browser: list, CSV export, create/edit, the deal page and its actions."""

from django.urls import path

from . import views_deals as views

urlpatterns = [
    path("deals/", views.deal_list, name="deal-list"),
    path("deals/export.csv", views.deal_export, name="deal-export"),
    path("deals/new/", views.deal_create, name="deal-create"),
    path("deals/contact-options/", views.deal_contact_options, name="deal-contact-options"),
    path("deals/<int:pk>/", views.deal_detail, name="deal-detail"),
    path("deals/<int:pk>/edit/", views.deal_edit, name="deal-edit"),
    path("deals/<int:pk>/stage/", views.deal_move_stage, name="deal-move-stage"),
    path("deals/<int:pk>/activities/", views.deal_log_activity, name="deal-log-activity"),
]
