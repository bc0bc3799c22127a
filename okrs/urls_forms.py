"""The OKR pages that change OKRs: cycles, objectives, key results, check-ins, initiatives and templates."""

from django.urls import path

from . import views_forms as views

urlpatterns = [
    path("okrs/cycles/", views.cycle_list, name="okr-cycles"),
    path("okrs/cycles/new/", views.cycle_create, name="okr-cycle-new"),
    path("okrs/cycles/<int:pk>/edit/", views.cycle_edit, name="okr-cycle-edit"),
    path("okrs/cycles/<int:pk>/activate/", views.cycle_activate, name="okr-cycle-activate"),
    path("okrs/cycles/<int:pk>/close/", views.cycle_close, name="okr-cycle-close"),
    path("okrs/objectives/new/", views.objective_create, name="okr-objective-new"),
    path("okrs/objectives/<int:pk>/", views.objective_detail, name="okr-objective"),
    path("okrs/objectives/<int:pk>/edit/", views.objective_edit, name="okr-objective-edit"),
    path("okrs/objectives/<int:pk>/archive/", views.objective_archive, name="okr-objective-archive"),
    path("okrs/objectives/<int:pk>/key-results/new/", views.key_result_create, name="okr-kr-new"),
    path("okrs/key-results/<int:pk>/", views.key_result_detail, name="okr-kr"),
    path("okrs/key-results/<int:pk>/edit/", views.key_result_edit, name="okr-kr-edit"),
    path("okrs/key-results/<int:pk>/check-in/", views.check_in, name="okr-check-in"),
    path("okrs/check-ins/<int:pk>/annotate/", views.check_in_annotate, name="okr-check-in-annotate"),
    path("okrs/key-results/<int:pk>/initiatives/new/", views.initiative_create, name="okr-initiative-new"),
    path("okrs/initiatives/<int:pk>/edit/", views.initiative_edit, name="okr-initiative-edit"),
    path("okrs/initiatives/<int:pk>/delete/", views.initiative_delete, name="okr-initiative-delete"),
    path("okrs/templates/", views.template_load, name="okr-template-load"),
]
