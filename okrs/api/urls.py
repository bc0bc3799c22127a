"""The OKR part of the REST API (registered under /api/v1/ by crm_okr.api_urls)."""

from rest_framework.routers import DefaultRouter

from .views import (
    CheckInViewSet,
    CycleViewSet,
    InitiativeViewSet,
    KeyResultViewSet,
    ObjectiveViewSet,
    TemplateViewSet,
)

router = DefaultRouter()
router.include_format_suffixes = False
router.include_root_view = False
router.register("okr-cycles", CycleViewSet, basename="api-okr-cycle")
router.register("objectives", ObjectiveViewSet, basename="api-objective")
router.register("key-results", KeyResultViewSet, basename="api-key-result")
router.register("check-ins", CheckInViewSet, basename="api-check-in")
router.register("initiatives", InitiativeViewSet, basename="api-initiative")
router.register("okr-templates", TemplateViewSet, basename="api-okr-template")

urlpatterns = router.urls
