"""The REST API, version 1 (included at /api/v1/)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts.api import TeamViewSet, UserViewSet
from contacts.api.views import (
    ActivityViewSet,
    CompanyViewSet,
    ContactViewSet,
    CustomFieldDefinitionViewSet,
    LeadSourceViewSet,
    TagViewSet,
)

router = DefaultRouter()
router.include_format_suffixes = False
router.register("contacts", ContactViewSet, basename="api-contact")
router.register("companies", CompanyViewSet, basename="api-company")
router.register("activities", ActivityViewSet, basename="api-activity")
router.register("tags", TagViewSet, basename="api-tag")
router.register("lead-sources", LeadSourceViewSet, basename="api-lead-source")
router.register("custom-fields", CustomFieldDefinitionViewSet, basename="api-custom-field")
router.register("users", UserViewSet, basename="api-user")
router.register("teams", TeamViewSet, basename="api-team")

urlpatterns = router.urls + [
    path("", include("pipeline.api.urls")),
    path("", include("pipeline.reports_api_urls")),
    path("", include("kpis.api.urls")),
    path("", include("kpis.api.data_urls")),
    path("", include("okrs.api.urls")),
]
