"""Viewsets of the pipeline API: reads from pipeline.selectors, every write through pipeline.services.

Visibility is the contacts' rule: a deal the caller may not see is a 404 on every route (actions too), one
they see but may not change is a 403 on writes, refused before the body is looked at.
"""

from collections.abc import Mapping

from django.db import transaction
from django.db.models import Prefetch, ProtectedError
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api import ApiViewSet, ErrorSerializer
from contacts.api.views import AdminListViewSet, Conflict, IsAdminOrReadOnly
from crm_okr.history import history_for
from crm_okr.pagination import SortOption
from crm_okr.text import collapse_spaces

from .. import selectors, services
from ..models import Deal, LostReason, Pipeline, Stage
from ..selectors import can_edit, deals_visible_to
from .filters import DealFilter, LostReasonFilter, PipelineFilter, StageFilter
from .serializers import (
    DealHistorySerializer,
    DealMoveSerializer,
    DealSerializer,
    LostReasonSerializer,
    PipelineSerializer,
    StageDeleteSerializer,
    StageHistoryRowSerializer,
    StageOrderSerializer,
    StageSerializer,
)

# How many field-history rows a deal's history endpoint returns (newest first).
HISTORY_LIMIT = 200

ADMIN_WRITES = [permissions.IsAuthenticated, IsAdminOrReadOnly]


def _stages_in_order():
    return Prefetch("stages", queryset=Stage.objects.order_by("order", "id"))


# --- pipelines ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List pipelines", description="Every pipeline with its stages in order."),
    retrieve=extend_schema(summary="Read a pipeline"),
    create=extend_schema(summary="Create a pipeline (admins)", description=(
        "Starts with the default stages (Qualified … Negotiation, Won, Lost), named in your language; change "
        "them through /api/v1/stages/. The first pipeline becomes the default.")),
    update=extend_schema(summary="Change a pipeline (admins)"),
    partial_update=extend_schema(summary="Change some fields of a pipeline (admins)"),
    destroy=extend_schema(summary="Delete an empty pipeline (admins)", description=(
        "Only a pipeline that holds no deals, and not the default one while others exist (400 naming "
        "`pipeline` otherwise)."), responses={204: None}),
)
class PipelineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Pipelines: the sales processes (e.g. "New business", "Renewals"). Everyone reads; admins change them."""

    permission_classes = ADMIN_WRITES
    serializer_class = PipelineSerializer
    filterset_class = PipelineFilter
    sort_options = [SortOption("order", "order"), SortOption("name", "name"), SortOption("-name", "name",
                                                                                          descending=True)]
    default_sort = "order"
    queryset = Pipeline.objects.all()

    def visible_queryset(self, user):
        return Pipeline.objects.prefetch_related(_stages_in_order())

    def _fresh(self, pipeline):
        return self.get_serializer(Pipeline.objects.prefetch_related(_stages_in_order()).get(pk=pipeline.pk)).data

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            pipeline = services.pipeline_create(actor=request.user, name=data["name"],
                                                is_default=data.get("is_default", False))
            if "order" in data:
                pipeline = services.pipeline_update(actor=request.user, pipeline=pipeline, order=data["order"])
        return Response(self._fresh(pipeline), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        pipeline = self.get_object()
        serializer = self.get_serializer(pipeline, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        pipeline = services.pipeline_update(actor=request.user, pipeline=pipeline, **serializer.validated_data)
        return Response(self._fresh(pipeline))

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.pipeline_delete(actor=request.user, pipeline=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Put a pipeline's stages in a new order (admins)", request=StageOrderSerializer,
                   responses=PipelineSerializer)
    @action(detail=True, methods=["post"], url_path="reorder-stages")
    def reorder_stages(self, request, pk=None):
        pipeline = self.get_object()
        serializer = StageOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.stages_reorder(actor=request.user, pipeline=pipeline, stage_ids=serializer.validated_data["stages"])
        return Response(self._fresh(pipeline))


# --- stages ------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List stages", description="Stages of every pipeline; `?pipeline=` for one."),
    retrieve=extend_schema(summary="Read a stage"),
    create=extend_schema(summary="Add a stage to a pipeline (admins)", description=(
        "An open stage goes after the last open stage unless `order` is given; won and lost stages at the end.")),
    update=extend_schema(summary="Change a stage (admins)", description=(
        "A new rotting limit re-dates the staleness of the deals in the stage at once. The kind cannot change "
        "while the stage holds deals.")),
    partial_update=extend_schema(summary="Change some fields of a stage (admins)"),
    destroy=extend_schema(
        summary="Delete a stage (admins)",
        description=("A stage that holds deals is deleted only with `move_to`: the id of another stage of the same "
                     "pipeline and kind, in the body (`{\"move_to\": 12}`) or the query (`?move_to=12`). The deals "
                     "move there (recorded in their stage history). Without it: 400 naming `move_to`. A pipeline "
                     "keeps at least one open, one won and one lost stage."),
        request=StageDeleteSerializer,
        parameters=[OpenApiParameter("move_to", OpenApiTypes.INT, OpenApiParameter.QUERY, required=False,
                                     description="Stage to move the deals to (instead of the body).")],
        responses={204: None}),
)
class StageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Stages of the pipelines, with their exit criteria. Everyone reads; admins change them."""

    permission_classes = ADMIN_WRITES
    serializer_class = StageSerializer
    filterset_class = StageFilter
    sort_options = [SortOption("order", "order"), SortOption("id", "id")]
    default_sort = "order"
    queryset = Stage.objects.all()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        pipeline = data.pop("pipeline")
        stage = services.stage_create(actor=request.user, pipeline=pipeline, data=data)
        stage.refresh_from_db()
        return Response(self.get_serializer(stage).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        stage = self.get_object()
        serializer = self.get_serializer(stage, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        stage = services.stage_update(actor=request.user, stage=stage, data=dict(serializer.validated_data))
        return Response(self.get_serializer(stage).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        stage = self.get_object()
        body = request.data
        data = dict(body.items()) if isinstance(body, Mapping) else body
        query = request.query_params.get("move_to")
        if query is not None and isinstance(data, dict):
            if "move_to" in data and str(data["move_to"]) != query:
                raise exceptions.ValidationError({"move_to": [_("Give move_to once: in the body or the query.")]})
            data["move_to"] = query
        serializer = StageDeleteSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        services.stage_delete(actor=request.user, stage=stage, move_to=serializer.validated_data.get("move_to"))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- lost reasons ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List lost reasons"), retrieve=extend_schema(summary="Read a lost reason"),
    create=extend_schema(summary="Add a lost reason (admins)"),
    update=extend_schema(summary="Change a lost reason (admins)"),
    partial_update=extend_schema(summary="Change a lost reason (admins)"),
    destroy=extend_schema(summary="Delete an unused lost reason (admins)", description=(
        "Only a reason no deal uses can be deleted (409 otherwise): deactivate it with `is_active=false` instead."),
        responses={204: None, 409: OpenApiResponse(ErrorSerializer, description="In use.")}),
)
class LostReasonViewSet(mixins.DestroyModelMixin, AdminListViewSet):
    """Why deals are lost: the list a lost deal's reason is chosen from."""

    queryset = LostReason.objects.all()
    serializer_class = LostReasonSerializer
    filterset_class = LostReasonFilter
    sort_options = [SortOption("order", "order"), SortOption("name", "name")]
    default_sort = "order"

    def check_unique(self, instance):
        if LostReason.objects.filter(name=instance.name).exclude(pk=instance.pk).exists():
            raise exceptions.ValidationError({"name": [_("A lost reason with this name already exists.")]})

    def _save(self, instance, data):
        if "name" in data:
            data = {**data, "name": collapse_spaces(data["name"])}
        return super()._save(instance, data)

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError:
            raise Conflict(_("Deals were lost for this reason; deactivate it (is_active=false) instead.")) from None


# --- deals -------------------------------------------------------------------------------------------

# Keyset sorts need a column that is never null: expected_close_date, amount and closed_at may be, so they are
# not offered (filter with close_from/close_to or amount_min/amount_max instead).
DEAL_SORTS = [
    SortOption("-created", "created_at", descending=True),
    SortOption("created", "created_at"),
    SortOption("-updated", "updated_at", descending=True),
    SortOption("updated", "updated_at"),
    SortOption("in_stage", "stage_entered_at"),
    SortOption("-in_stage", "stage_entered_at", descending=True),
]

NO_DELETE = (
    "Deals are never deleted through the API (DELETE answers 405): close a deal by marking it lost — "
    "POST /api/v1/deals/{id}/move-stage/ to a lost stage with a `lost_reason`."
)

EXIT_CRITERIA_EXAMPLE = OpenApiExample(
    "Exit criteria not met",
    value={"errors": {"stage": ["Fill in Amount before moving this deal on."],
                      "amount": ["Required before a deal leaves “Qualified”."]}},
    response_only=True, status_codes=["400"],
)
LOST_REASON_EXAMPLE = OpenApiExample(
    "Lost without a reason", value={"errors": {"lost_reason": ["Choose why the deal was lost."]}},
    response_only=True, status_codes=["400"],
)


@extend_schema_view(
    list=extend_schema(summary="List deals", description=(
        "Deals you can see, in keyset pages (follow `next`). Sorts: `-created` (default), `created`, "
        "`-updated`, `updated`, `in_stage` (longest in its stage first), `-in_stage`. Keyset pages need a column "
        "that is never empty, so there is no sort by expected close date or amount: filter with "
        "`close_from`/`close_to` or `amount_min`/`amount_max` instead. " + NO_DELETE)),
    retrieve=extend_schema(summary="Read a deal", description=NO_DELETE),
    create=extend_schema(summary="Create a deal", description=(
        "Required: `name`. The pipeline defaults to the stage's or the default pipeline, the stage to the "
        "pipeline's first open stage, the owner to you (integrations: no owner), the company and lead source to "
        "the contact's.")),
    partial_update=extend_schema(summary="Change some fields of a deal", description=(
        "Any of name, amount, currency, expected_close_date, owner, contact, company, lead_source, custom_fields. "
        "The stage is not changed here (400 on `stage`): use move-stage, the one door for moves, which checks "
        "the exit criteria. " + NO_DELETE)),
)
class DealViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Deals: sales opportunities moving through a pipeline's stages."""

    serializer_class = DealSerializer
    filterset_class = DealFilter
    sort_options = DEAL_SORTS
    default_sort = "-created"
    queryset = Deal.objects.none()

    def visible_queryset(self, user):
        # The stage is read for weighted_amount; every other relation is shown as its id.
        return deals_visible_to(user).select_related("stage")

    def _editable_deal(self) -> Deal:
        deal = self.get_object()
        # Refuse a non-editor before looking at the body (the services check again).
        if not can_edit(self.request.user, deal):
            raise exceptions.PermissionDenied(_("You may not edit this deal."))
        return deal

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deal = services.deal_create(actor=request.user, data=dict(serializer.validated_data))
        return Response(self.get_serializer(deal).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        deal = self._editable_deal()
        serializer = self.get_serializer(deal, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        deal = services.deal_update(actor=request.user, deal=deal, data=dict(serializer.validated_data))
        return Response(self.get_serializer(deal).data)

    @extend_schema(
        summary="Move a deal to another stage",
        description=(
            "The one door for stage changes, with the same rule as the board and the deal page: moving forward "
            "needs the exit criteria of the stage being left (and of any stage skipped) to be met, and a stage "
            "may forbid skipping. When refused: 400 with one entry per missing field plus a `stage` entry that "
            "lists them all, and nothing is changed. Fill the missing fields in the same step with `changes` "
            "(saved only if the move succeeds). Moving backward is always allowed; a lost stage needs "
            "`lost_reason`; won and lost set `closed_at`; moving a closed deal to an open stage reopens it."),
        request=DealMoveSerializer,
        responses={
            200: DealSerializer,
            400: OpenApiResponse(ErrorSerializer, description=(
                "The move is refused; the errors name the missing fields (exit criteria), or the bad input."),
                examples=[EXIT_CRITERIA_EXAMPLE, LOST_REASON_EXAMPLE]),
        },
    )
    @action(detail=True, methods=["post"], url_path="move-stage")
    def move_stage(self, request, pk=None):
        deal = self._editable_deal()
        serializer = DealMoveSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        deal = services.deal_move(
            actor=request.user, deal=deal, stage=data["stage"], lost_reason=data.get("lost_reason"),
            lost_note=data.get("lost_note") or "", changes=data.get("changes"),
        )
        return Response(self.get_serializer(deal).data)

    @extend_schema(summary="A deal's stage history", description=(
        "Every stage the deal entered, oldest first: from where to where, the direction, when, by whom, and how "
        "long it stayed."), responses=StageHistoryRowSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="stage-history", pagination_class=None)
    def stage_history(self, request, pk=None):
        deal = self.get_object()
        return Response(StageHistoryRowSerializer(selectors.stage_history(deal), many=True).data)

    @extend_schema(summary="A deal's field history", description=(
        "Who changed which fields and when, newest first (stage moves are in stage-history)."),
        responses=DealHistorySerializer)
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        deal = self.get_object()
        return Response(DealHistorySerializer({"field_changes": history_for(deal, limit=HISTORY_LIMIT)}).data)
