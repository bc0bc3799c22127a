"""The KPI part of the REST API (registered under /api/v1/ by crm_okr.api_urls)."""

from rest_framework.routers import DefaultRouter

from .views import KpiSnapshotViewSet, KpiViewSet

router = DefaultRouter()
router.include_format_suffixes = False
router.include_root_view = False
router.register("kpis", KpiViewSet, basename="api-kpi")
router.register("kpi-snapshots", KpiSnapshotViewSet, basename="api-kpi-snapshot")

urlpatterns = router.urls
