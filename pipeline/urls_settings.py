"""Pipeline settings pages (admins only): pipelines and their stages."""

from django.urls import path

from . import views_settings as views

urlpatterns = [
    path("settings/pipelines/", views.pipeline_settings, name="pipeline-settings"),
    path("settings/pipelines/<int:pk>/", views.pipeline_settings_detail, name="pipeline-settings-detail"),
    path("settings/pipelines/<int:pk>/rename/", views.pipeline_rename, name="pipeline-settings-rename"),
    path("settings/pipelines/<int:pk>/default/", views.pipeline_make_default, name="pipeline-settings-default"),
    path("settings/pipelines/<int:pk>/delete/", views.pipeline_delete, name="pipeline-settings-delete"),
    path("settings/pipelines/<int:pk>/stages/new/", views.stage_create, name="pipeline-settings-stage-create"),
    path("settings/pipelines/<int:pk>/stages/order/", views.stage_reorder, name="pipeline-settings-stage-reorder"),
    path("settings/pipelines/<int:pk>/stages/<int:stage_pk>/edit/", views.stage_edit,
         name="pipeline-settings-stage-edit"),
    path("settings/pipelines/<int:pk>/stages/<int:stage_pk>/move/", views.stage_move,
         name="pipeline-settings-stage-move"),
    path("settings/pipelines/<int:pk>/stages/<int:stage_pk>/delete/", views.stage_delete,
         name="pipeline-settings-stage-delete"),
]
