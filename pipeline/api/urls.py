"""The pipeline part of the REST API (registered under /api/v1/ by crm_okr.api_urls)."""

from rest_framework.routers import DefaultRouter

from .views import DealViewSet, LostReasonViewSet, PipelineViewSet, StageViewSet

router = DefaultRouter()
router.include_format_suffixes = False
router.include_root_view = False
router.register("pipelines", PipelineViewSet, basename="api-pipeline")
router.register("stages", StageViewSet, basename="api-stage")
router.register("lost-reasons", LostReasonViewSet, basename="api-lost-reason")
router.register("deals", DealViewSet, basename="api-deal")

urlpatterns = router.urls
