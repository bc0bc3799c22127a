"""The OKR pages: home (alignment tree), dashboards and lists, and the forms that change OKRs."""

from django.urls import include, path

urlpatterns = [
    path("", include("okrs.urls_pages")),
    path("", include("okrs.urls_forms")),
]
