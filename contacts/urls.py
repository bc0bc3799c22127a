from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("contacts/", views.contact_list, name="contact-list"),
    path("contacts/new/", views.contact_create, name="contact-create"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact-detail"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact-edit"),
    path("contacts/<int:pk>/archive/", views.contact_archive, name="contact-archive"),
    path("contacts/<int:pk>/activities/", views.contact_log_activity, name="contact-log-activity"),
    path("contacts/<int:pk>/consent/", views.contact_consent, name="contact-consent"),
    path("companies/", views.company_list, name="company-list"),
    path("companies/new/", views.company_create, name="company-create"),
    path("companies/options/", views.company_options, name="company-options"),
    path("companies/<int:pk>/", views.company_detail, name="company-detail"),
    path("companies/<int:pk>/edit/", views.company_edit, name="company-edit"),
    path("companies/<int:pk>/archive/", views.company_archive, name="company-archive"),
    path("companies/<int:pk>/activities/", views.company_log_activity, name="company-log-activity"),
    path("tasks/<int:pk>/toggle/", views.task_toggle, name="task-toggle"),
]
