"""The KPI data part of the REST API (registered under /api/v1/ by crm_okr.api_urls): survey responses,
external metrics, metric values and exchange rates."""

from rest_framework.routers import DefaultRouter

from .data_views import ExchangeRateViewSet, ExternalMetricViewSet, MetricValueViewSet, SurveyResponseViewSet

router = DefaultRouter()
router.include_format_suffixes = False
router.include_root_view = False
router.register("survey-responses", SurveyResponseViewSet, basename="api-survey-response")
router.register("metrics", ExternalMetricViewSet, basename="api-metric")
router.register("metric-values", MetricValueViewSet, basename="api-metric-value")
router.register("exchange-rates", ExchangeRateViewSet, basename="api-exchange-rate")

urlpatterns = router.urls
