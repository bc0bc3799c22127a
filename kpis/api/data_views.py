"""Viewsets of the KPI data API: survey responses, external metrics, metric values and exchange rates.

Reads come from ``kpis.selectors_data`` (survey responses: only those of contacts you see), every write goes
through ``kpis.services_data``. Metrics are defined by admins; admins and integrations push values and rates.
"""

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status
from rest_framework.response import Response

from accounts.api import ApiViewSet, ErrorSerializer
from contacts.api.views import IsAdminOrReadOnly
from crm_okr.api import validation_errors
from crm_okr.pagination import SortOption

from .. import services_data as services
from ..models import ExchangeRate, ExternalMetric, MetricValue, SurveyResponse
from ..selectors_data import survey_responses_visible_to
from .data_filters import ExchangeRateFilter, ExternalMetricFilter, MetricValueFilter, SurveyResponseFilter
from .data_serializers import (
    ExchangeRateSerializer,
    ExternalMetricSerializer,
    MetricValueInputSerializer,
    MetricValueSerializer,
    SurveyResponseSerializer,
    metric_value_upsert_answer,
    metric_value_upsert_body,
)


class IsAdminOrIntegrationWrites(permissions.BasePermission):
    """Everyone signed in reads; admins and integrations write."""

    message = _("Only admins and integrations change this data.")

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or services.can_push_values(request.user)


ADMIN_WRITES = [permissions.IsAuthenticated, IsAdminOrReadOnly]
PUSHER_WRITES = [permissions.IsAuthenticated, IsAdminOrIntegrationWrites]


# --- survey responses ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List survey responses", description=(
        "NPS and CSAT answers of the contacts you can see (admins and integrations: every answer, also those "
        "without a contact), newest first, in keyset pages. Sorts: `-responded` (default), `responded`.")),
    retrieve=extend_schema(summary="Read a survey response"),
    create=extend_schema(
        summary="Record a survey response",
        description=(
            "Anyone who sees the contact may record an answer. With an `external_id` already known, that answer "
            "is updated instead (200); otherwise it is created (201). NPS scores are 0–10, CSAT scores 1–5."),
        responses={201: SurveyResponseSerializer, 200: SurveyResponseSerializer},
        examples=[OpenApiExample("An NPS answer pushed by a survey tool", request_only=True, value={
            "kind": "nps", "score": 9, "contact": 42, "channel": "email", "comment": "Hızlı destek, teşekkürler.",
            "responded_at": "2026-11-23T14:30:00+03:00", "external_id": "typeform-8c1f"})],
    ),
)
class SurveyResponseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """NPS (0–10) and CSAT (1–5) answers of contacts."""

    serializer_class = SurveyResponseSerializer
    filterset_class = SurveyResponseFilter
    sort_options = [SortOption("-responded", "responded_at", descending=True), SortOption("responded", "responded_at")]
    default_sort = "-responded"
    queryset = SurveyResponse.objects.none()

    def visible_queryset(self, user):
        return survey_responses_visible_to(user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        response, created = services.survey_response_create(actor=request.user, data=dict(serializer.validated_data))
        return Response(self.get_serializer(response).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- external metrics ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List external metrics", description=(
        "The series kept outside the CRM that KPI formulas read (`metrics.value where metric = 'key'`), e.g. "
        "`marketing_spend` per lead source, `sales_spend` and `customer_lifetime_years` company-wide.")),
    retrieve=extend_schema(summary="Read an external metric (by key)"),
    create=extend_schema(summary="Create an external metric (admins)"),
    update=extend_schema(summary="Change an external metric (admins)", description=(
        "The key cannot change (formulas refer to it); what the metric is kept per changes only while it has "
        "no values.")),
    partial_update=extend_schema(summary="Change some fields of an external metric (admins)"),
)
class ExternalMetricViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Named series of values per period (and optional dimension): spend, customer lifetime, …"""

    permission_classes = ADMIN_WRITES
    serializer_class = ExternalMetricSerializer
    filterset_class = ExternalMetricFilter
    lookup_field = "key"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    sort_options = [SortOption("key", "key"), SortOption("name", "name")]
    default_sort = "key"
    queryset = ExternalMetric.objects.all()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        metric = services.metric_create(actor=request.user, data=dict(serializer.validated_data))
        return Response(self.get_serializer(metric).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        metric = self.get_object()
        serializer = self.get_serializer(metric, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        metric = services.metric_update(metric, actor=request.user, data=dict(serializer.validated_data))
        return Response(self.get_serializer(metric).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)


# --- metric values ---------------------------------------------------------------------------------

BULK_ERROR_EXAMPLE = OpenApiExample(
    "A list with bad items (nothing was saved)",
    value={"errors": {"2.dimension": ["There is no lead source with id 99."],
                      "5.value": ["A valid number is required."]}},
    response_only=True, status_codes=["400"],
)


def _as_messages(detail) -> list[str]:
    if isinstance(detail, list | tuple):
        return [str(item) for item in detail]
    return [str(detail)]


@extend_schema_view(
    list=extend_schema(summary="List metric values", description=(
        "Values of every metric, newest period first, in keyset pages. Filter with `metric` (key), "
        "`period_from`/`period_to` (on the period's first day) and `dimension`. Sorts: `-period` (default), "
        "`period`.")),
    retrieve=extend_schema(summary="Read a metric value"),
    destroy=extend_schema(summary="Delete a metric value (admins and integrations)", responses={204: None}),
)
class MetricValueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ApiViewSet):
    """Values of the external metrics, per period and dimension value."""

    permission_classes = PUSHER_WRITES
    serializer_class = MetricValueSerializer
    filterset_class = MetricValueFilter
    sort_options = [SortOption("-period", "period_start", descending=True), SortOption("period", "period_start")]
    default_sort = "-period"
    queryset = MetricValue.objects.all()

    def visible_queryset(self, user):
        return MetricValue.objects.select_related("metric")

    @extend_schema(
        summary="Set metric values (upsert; one or a list)",
        description=(
            "Send one value (an object) or a list of up to 500. Each value is created, or replaces the value of "
            "the same metric, period start and dimension (so pushing again is safe). Give the period as "
            "`period` (`2026-11`, `2026-Q4`, `2026-W48`, `2026-11-23`) or as `period_start` and `period_end`. "
            "A metric kept per team, owner, pipeline or lead source needs `dimension` (that id); a company-wide "
            "one takes none. Periods of one metric and dimension may not overlap (a KPI would count both).\n\n"
            "One value: 201 when created, 200 when replaced, with the value. A list: written in one "
            "transaction — all or nothing; 200 with the counts and the values in the order sent, or 400 with "
            "errors named `<position>.<field>` (from 0) and nothing saved."),
        request=metric_value_upsert_body(),
        responses={
            201: MetricValueSerializer,
            200: OpenApiResponse(metric_value_upsert_answer(), description=(
                "One value replaced (the value), or a list written (counts and values).")),
            400: OpenApiResponse(ErrorSerializer, description="Bad input; nothing was saved.",
                                 examples=[BULK_ERROR_EXAMPLE]),
        },
        examples=[
            OpenApiExample("Marketing spend of one lead source for a month", request_only=True, value={
                "metric": "marketing_spend", "period": "2026-11", "dimension": 3, "value": "12500.00"}),
            OpenApiExample("A month of spend per lead source", request_only=True, value=[
                {"metric": "marketing_spend", "period": "2026-11", "dimension": 3, "value": "12500.00"},
                {"metric": "marketing_spend", "period": "2026-11", "dimension": 4, "value": "8000.00"}]),
        ],
    )
    def create(self, request, *args, **kwargs):
        body = request.data
        if isinstance(body, Mapping):
            return self._upsert_one(request, body)
        if not isinstance(body, list):
            raise exceptions.ValidationError({"non_field_errors": [
                _("Send one value (an object) or a list of values.")]})
        return self._upsert_many(request, body)

    def _upsert_one(self, request, body):
        serializer = MetricValueInputSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        metric = ExternalMetric.objects.filter(key=data.pop("metric")).first()
        if metric is None:
            raise exceptions.ValidationError({"metric": [_("Unknown metric “%(key)s”.") % {
                "key": serializer.validated_data["metric"][:60]}]})
        value, created = services.metric_value_upsert(actor=request.user, metric=metric, data=data)
        return Response(MetricValueSerializer(value).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _upsert_many(self, request, body):
        if not 1 <= len(body) <= services.MAX_BULK:
            raise exceptions.ValidationError({"non_field_errors": [
                _("Send a list of 1 to %(n)d values (this has %(got)d).") % {"n": services.MAX_BULK,
                                                                             "got": len(body)}]})
        errors: dict[str, list[str]] = {}
        items, positions = [], []
        for position, item in enumerate(body):
            if not isinstance(item, Mapping):
                errors[f"{position}.non_field_errors"] = [_("Expected an object.")]
                continue
            serializer = MetricValueInputSerializer(data=item)
            if serializer.is_valid():
                items.append(dict(serializer.validated_data))
                positions.append(position)
            else:
                for name, detail in serializer.errors.items():
                    errors[f"{position}.{name}"] = _as_messages(detail)
        results = []
        with transaction.atomic():
            if items:
                try:
                    results = services.metric_values_bulk_upsert(actor=request.user, items=items,
                                                                 positions=positions)
                except DjangoValidationError as exc:
                    errors.update(validation_errors(exc))
            if errors:
                # Raised inside the block: whatever the valid items wrote is rolled back.
                ordered = sorted(errors.items(), key=lambda pair: (int(pair[0].split(".")[0]), pair[0]))
                raise exceptions.ValidationError(dict(ordered))
        created = sum(1 for _row, was_created in results if was_created)
        return Response({"created": created, "updated": len(results) - created,
                         "results": MetricValueSerializer([row for row, _created in results], many=True).data})

    def perform_destroy(self, instance):
        services.metric_value_delete(actor=self.request.user, value=instance)


# --- exchange rates --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List exchange rates", description=(
        "Rates of other currencies to the company currency, by currency and day. Sorts: `-valid_from` (default), "
        "`valid_from`.")),
    retrieve=extend_schema(summary="Read an exchange rate"),
    create=extend_schema(
        summary="Set an exchange rate (upsert; admins and integrations)",
        description=("Sets the rate of a currency from a day on: 201 when new, 200 when it replaced the rate of "
                     "the same currency and day. Deal amounts in that currency are converted with the latest "
                     "rate on or before a KPI period's last day; deals in a currency without a rate are left out "
                     "of money KPIs."),
        responses={201: ExchangeRateSerializer, 200: ExchangeRateSerializer}),
    destroy=extend_schema(summary="Delete an exchange rate (admins and integrations)", responses={204: None}),
)
class ExchangeRateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ApiViewSet):
    """Exchange rates to the company currency."""

    permission_classes = PUSHER_WRITES
    serializer_class = ExchangeRateSerializer
    filterset_class = ExchangeRateFilter
    sort_options = [SortOption("-valid_from", "valid_from", descending=True), SortOption("valid_from", "valid_from")]
    default_sort = "-valid_from"
    queryset = ExchangeRate.objects.all()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rate, created = services.exchange_rate_upsert(actor=request.user, data=dict(serializer.validated_data))
        return Response(self.get_serializer(rate).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def perform_destroy(self, instance):
        services.exchange_rate_delete(actor=self.request.user, rate=instance)
