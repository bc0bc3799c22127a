"""Viewsets of the KPI API: KPI definitions (everyone reads, admins write custom ones through kpis.services),
formula checks, evaluating a KPI on demand, and the stored snapshots.

Everyone signed in reads KPIs, values and snapshots: they are aggregates, not records.
"""

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api import ApiViewSet, ErrorSerializer
from contacts.api.views import Conflict
from crm_okr.pagination import SortOption

from .. import dimensions as dims
from .. import periods, services
from ..formula import FormulaError, FormulaTimeout, compile_formula
from ..models import DimensionKind, Kpi, KpiSnapshot
from ..tasks import snapshot_soon
from .filters import KpiFilter, KpiSnapshotFilter
from .serializers import (
    COMPANY,
    EvaluateQuerySerializer,
    FormulaCheckResultSerializer,
    FormulaCheckSerializer,
    FormulaErrorSerializer,
    KpiMemberValuesSerializer,
    KpiSerializer,
    KpiSnapshotSerializer,
    KpiValueSerializer,
    format_value,
)


class IsAdminOrReadOnly(permissions.BasePermission):
    """Everyone signed in reads KPIs; only admins create, change or delete them."""

    message = _("Only admins can change KPIs.")

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or request.user.is_admin


class FormulaRejected(exceptions.ValidationError):
    """A 400 whose body also says where in the formula the problem is (see KpiViewSet.handle_exception)."""

    def __init__(self, detail, error: FormulaError | None = None):
        super().__init__(detail)
        self.formula_error = error


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"


def formula_message(error: FormulaError) -> str:
    """The compiler's message followed by "(position N)" when it points at a place in the formula."""
    return error.with_position()


FORMULA_400 = OpenApiResponse(FormulaErrorSerializer, description=(
    "The formula (or another field) is refused. For a formula error the body also gives `position` and `end`: "
    "0-based character offsets of the faulty part of the formula."), examples=[OpenApiExample(
        "Unknown field",
        description="count(deals where stauts = 'won')",
        value={"errors": {"formula": ["Unknown field “stauts” on deals — did you mean “status”? (position 18)"]},
               "position": 18, "end": 24},
        response_only=True, status_codes=["400"])])
WRITE_NOTE = (
    "Admins only. The formula is checked first (400 on `formula` with `position`), references to other KPIs "
    "with kpi('…') may not form a cycle, and the KPI's dimensions are worked out from the formula. Built-in KPIs "
    "accept changes only to name, description, is_active and the benchmark (400 naming any other field).")


@extend_schema_view(
    list=extend_schema(summary="List KPIs", description=(
        "Every KPI (built-in and custom) with its formula, unit, frequency, benchmark and dimensions, in dashboard "
        "order. Sorts: `order` (default), `name`, `slug`.")),
    retrieve=extend_schema(summary="Read a KPI", description="By key (`/kpis/win-rate/`) or by id (`/kpis/3/`).",
                           parameters=[OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH,
                                                        description="The KPI's key (or its id).")]),
    create=extend_schema(summary="Create a custom KPI (admins)", description=WRITE_NOTE,
                         responses={201: KpiSerializer, 400: FORMULA_400}),
    update=extend_schema(summary="Change a KPI (admins)", description=WRITE_NOTE + (
        " A new formula bumps `formula_version`."), responses={200: KpiSerializer, 400: FORMULA_400},
        parameters=[OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH,
                                     description="The KPI's key (or its id).")]),
    partial_update=extend_schema(summary="Change some fields of a KPI (admins)", description=WRITE_NOTE,
                                 responses={200: KpiSerializer, 400: FORMULA_400},
                                 parameters=[OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH,
                                                              description="The KPI's key (or its id).")]),
    destroy=extend_schema(
        summary="Delete a custom KPI (admins)",
        description=("Deletes the KPI and its snapshots. Built-in KPIs cannot be deleted (400 naming `is_builtin`: "
                     "switch them off with `is_active=false`), nor a KPI another KPI's formula refers to (409 "
                     "naming them)."),
        parameters=[OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH,
                                     description="The KPI's key (or its id).")],
        responses={204: None, 409: OpenApiResponse(ErrorSerializer, description="Other KPIs refer to it.")}),
)
class KpiViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """KPIs: formulas over the CRM data with a unit, a frequency and a benchmark."""

    permission_classes = [permissions.IsAuthenticated, IsAdminOrReadOnly]
    serializer_class = KpiSerializer
    filterset_class = KpiFilter
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    sort_options = [SortOption("order", "order"), SortOption("name", "name"), SortOption("slug", "slug")]
    default_sort = "order"
    queryset = Kpi.objects.all()

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        error = getattr(exc, "formula_error", None)
        if error is not None and response is not None and isinstance(response.data, dict):
            response.data["position"] = error.position
            response.data["end"] = error.end
        return response

    def get_object(self):
        value = str(self.kwargs.get("slug", ""))
        queryset = self.get_queryset()
        kpi = queryset.filter(slug=value).first()
        if kpi is None and value.isdigit() and len(value) < 19:
            kpi = queryset.filter(pk=int(value)).first()
        if kpi is None:
            raise exceptions.NotFound(_("There is no KPI with the key “%(slug)s”.") % {"slug": value[:60]})
        self.check_object_permissions(self.request, kpi)
        return kpi

    def _validated(self, serializer, slug: str | None) -> dict:
        """The body's fields; field errors and a bad formula reported together."""
        valid = serializer.is_valid()
        errors = dict(serializer.errors) if not valid else {}
        formula_error = None
        formula = serializer.validated_data.get("formula") if valid else None
        if formula is None and not valid and "formula" not in errors:
            raw = serializer.initial_data.get("formula") if isinstance(serializer.initial_data, dict) else None
            formula = raw if isinstance(raw, str) and raw.strip() and len(raw) <= 2000 else None
        if formula is not None:
            try:
                compile_formula(formula, slug=slug)
            except FormulaError as error:
                formula_error = error
                errors["formula"] = [formula_message(error)]
        if errors:
            raise FormulaRejected(errors, formula_error)
        return dict(serializer.validated_data)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        body = request.data if isinstance(request.data, dict) else {}
        slug = body.get("slug") if isinstance(body.get("slug"), str) else None
        data = self._validated(serializer, slug)
        kpi = services.kpi_create(actor=request.user, **data)
        snapshot_soon(kpi)
        return Response(self.get_serializer(kpi).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        kpi = self.get_object()
        serializer = self.get_serializer(kpi, data=request.data, partial=kwargs.get("partial", False))
        data = self._validated(serializer, kpi.slug)
        if data:
            version = kpi.formula_version
            kpi = services.kpi_update(kpi, actor=request.user, **data)
            if kpi.formula_version != version:
                snapshot_soon(kpi)
        return Response(self.get_serializer(kpi).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        kpi = self.get_object()
        if kpi.is_builtin:
            raise exceptions.ValidationError({"is_builtin": [_(
                "A built-in KPI cannot be deleted; switch it off with is_active=false instead.")]})
        users = [other.slug for other in Kpi.objects.exclude(pk=kpi.pk).filter(formula__icontains=kpi.slug)
                 if _refers_to(other, kpi.slug)]
        if users:
            raise Conflict(_("Other KPIs refer to this one: %(slugs)s. Change their formulas first.")
                           % {"slugs": ", ".join(users)})
        delete = getattr(services, "kpi_delete", None)
        if delete is not None:
            delete(kpi, actor=request.user)
        else:  # pragma: no cover - until kpis.services has kpi_delete
            kpi.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Check a formula",
        description=("Parses and checks a formula without saving anything: 200 with the dimensions a KPI with "
                     "this formula can be broken down by and the KPIs it refers to, or 400 saying where and why "
                     "(`position`, `end`: 0-based offsets into the formula). Anyone signed in may check."),
        request=FormulaCheckSerializer,
        responses={200: FormulaCheckResultSerializer, 400: FORMULA_400},
    )
    @action(detail=False, methods=["post"], permission_classes=[permissions.IsAuthenticated], pagination_class=None,
            filterset_class=None)
    def validate(self, request):
        serializer = FormulaCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        compiled = services.kpi_validate(serializer.validated_data["formula"], serializer.validated_data.get("slug"))
        return Response(FormulaCheckResultSerializer({
            "valid": True, "dimensions": list(compiled.dimensions), "references": list(compiled.references),
        }).data)

    @extend_schema(
        summary="Evaluate a KPI",
        description=(
            "The KPI's value computed now, for any period and dimension value. `?period=` is a key in the KPI's "
            "frequency (2026-11-23, 2026-W48, 2026-11, 2026-Q4; default: the current period); `?dimension=` is "
            "company (default) or team:<id>, owner:<user id>, pipeline:<id>, source:<lead source id>. With "
            "`?dimension_kind=source` (or team, owner, pipeline) instead, the answer lists every lead source's value "
            "(KpiMemberValues) — e.g. CAC per source. A dimension the KPI cannot be broken down by is a 400 on "
            "`dimension`. Values are decimal strings (null: no value, e.g. division by zero). A KPI taken when its "
            "period starts (the sales forecast) is not computed for a period that has started: the answer is the "
            "snapshot taken then, with `snapshotted_at_start: true`. `unconverted_currencies` lists the currencies "
            "whose deal amounts are left out for want of an exchange rate."),
        parameters=[
            OpenApiParameter("period", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             description="Period key; default: the current period of the KPI's frequency."),
            OpenApiParameter("dimension", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             description="company (default), team:3, owner:5, pipeline:1 or source:2."),
            OpenApiParameter("dimension_kind", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             enum=DimensionKind.values, description="Every value of this kind at once."),
            OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH,
                             description="The KPI's key (or its id)."),
        ],
        responses={
            200: OpenApiResponse(PolymorphicProxySerializer(
                component_name="KpiEvaluation", serializers=[KpiValueSerializer, KpiMemberValuesSerializer],
                resource_type_field_name=None), description="KpiValue, or KpiMemberValues with `dimension_kind`."),
            400: OpenApiResponse(ErrorSerializer, description="Bad period, dimension or parameter."),
            503: OpenApiResponse(ErrorSerializer, description="The computation took too long."),
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def evaluate(self, request, slug=None):
        kpi = self.get_object()
        # ``format`` is DRF's own (?format=json), as on every endpoint.
        query = EvaluateQuerySerializer(data={k: v for k, v in request.query_params.items() if k != "format"})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:
            period = (periods.parse(kpi.frequency, params["period"]) if params.get("period")
                      else periods.containing(kpi.frequency))
        except ValueError as error:
            raise exceptions.ValidationError({"period": [str(error)]}) from None
        try:
            dimension = dims.parse(params.get("dimension"))
        except ValueError as error:
            raise exceptions.ValidationError({"dimension": [str(error)]}) from None
        try:
            compiled = compile_formula(kpi.formula, slug=kpi.slug)
        except FormulaError as error:
            raise Conflict(_("This KPI's formula no longer works: %(message)s") % {
                "message": formula_message(error)}) from None
        kind = params.get("dimension_kind") or (dimension.kind if dimension else None)
        if kind and kind not in compiled.dimensions:
            allowed = ", ".join(compiled.dimensions) or _("none (company only)")
            raise exceptions.ValidationError({"dimension_kind" if params.get("dimension_kind") else "dimension": [
                _("“%(kpi)s” cannot be broken down by %(kind)s; it can by: %(allowed)s.") % {
                    "kpi": kpi.name, "kind": DimensionKind(kind).label.lower(), "allowed": allowed}]})
        snapshotted = bool(kpi.snapshot_at_start and period.has_started())
        head = {"kpi": kpi.slug, "period": period.key, "period_label": period.label, "period_start": period.start,
                "period_end": period.end, "unit": kpi.unit, "snapshotted_at_start": snapshotted,
                "unconverted_currencies": compiled.unconverted_currencies(period)}
        try:
            if params.get("dimension_kind"):
                # One statement for every member's value, then their names; a KPI taken when its period
                # starts reads the snapshots taken then instead.
                values = (_snapshotted_members(kpi, period, kind) if snapshotted
                          else compiled.evaluate_members(period, kind))
                rows = [{"dimension": f"{kind}:{member.pk}", "dimension_id": member.pk,
                         "dimension_label": dims.label(kind, member), "value": values.get(member.pk),
                         "formatted": format_value(kpi, values.get(member.pk))} for member in dims.members(kind)]
                return Response(KpiMemberValuesSerializer({**head, "dimension_kind": kind, "results": rows}).data)
            value = services.evaluate(kpi, period, dimension) if snapshotted else compiled.evaluate(period, dimension)
        except FormulaTimeout as error:
            raise Unavailable(str(error)) from None
        label = dims.label(dimension.kind, dims.members(dimension.kind).get(pk=dimension.id)) if dimension else ""
        return Response(KpiValueSerializer({
            **head, "dimension": dimension.key if dimension else COMPANY, "dimension_label": label or _("Company"),
            "value": value, "formatted": format_value(kpi, value)}).data)


def _snapshotted_members(kpi: Kpi, period, kind: str) -> dict:
    """Every member's stored value of ``kind`` for ``period`` (one query): a KPI taken when its period starts."""
    return dict(KpiSnapshot.objects.filter(kpi=kpi, period_start=period.start, dimension_kind=kind)
                .values_list("dimension_id", "value"))


def _refers_to(kpi: Kpi, slug: str) -> bool:
    try:
        return slug in compile_formula(kpi.formula, slug=kpi.slug).references
    except FormulaError:
        return False


SNAPSHOT_SORTS = [
    SortOption("-period", "period_start", descending=True),
    SortOption("period", "period_start"),
    SortOption("-computed", "computed_at", descending=True),
    SortOption("computed", "computed_at"),
]


@extend_schema_view(
    list=extend_schema(summary="List KPI snapshots", description=(
        "The stored values of the KPIs, one per KPI, period and dimension value, in keyset pages (follow `next`). "
        "Filter by `kpi` (key), `frequency`, `period_from`/`period_to` (days), `dimension_kind` (company, team, "
        "owner, pipeline, source) and `dimension_id`. Sorts: `-period` (default), `period`, `-computed`, "
        "`computed`. Read-only: snapshots are taken on schedule (or computed on demand with "
        "/api/v1/kpis/{slug}/evaluate/).")),
    retrieve=extend_schema(summary="Read a KPI snapshot"),
)
class KpiSnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Stored KPI values: the history behind the trends."""

    serializer_class = KpiSnapshotSerializer
    filterset_class = KpiSnapshotFilter
    sort_options = SNAPSHOT_SORTS
    default_sort = "-period"
    queryset = KpiSnapshot.objects.select_related("kpi")
