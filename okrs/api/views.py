"""Viewsets of the OKR API: reads from okrs.selectors (and okrs.selectors_api), every write through okrs.services.

Visibility is the browser's: everyone signed in reads company and team objectives; an individual objective is
read by its owner, their team, the team's manager and admins. Something the caller may not see is a 404 on every
route (actions too); something they see but may not change is a 403 on writes, refused before the body is
looked at. Admins run cycles.
"""

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api import ApiSchema, ApiViewSet
from crm_okr.pagination import SortOption

from .. import selectors, selectors_api, services
from ..models import CheckIn, Cycle, Initiative, KeyResult, Objective
from ..templates_data import TEMPLATE_LIST, TEMPLATES
from .filters import CheckInFilter, CycleFilter, InitiativeFilter, KeyResultFilter, ObjectiveFilter
from .serializers import (
    ArchiveSerializer,
    CheckInSerializer,
    CycleCloseSerializer,
    CycleSerializer,
    InitiativeSerializer,
    KeyResultHistorySerializer,
    KeyResultScoreSerializer,
    KeyResultSerializer,
    ObjectiveSerializer,
    TemplateLoadSerializer,
    TemplateSerializer,
)

CHECK_IN_METHODS = ["get", "post", "patch", "head", "options"]


class AdminWrites(permissions.BasePermission):
    """Everyone signed in reads cycles; admins create, change, activate and close them."""

    message = _("Only admins manage OKR cycles.")

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or request.user.is_admin


# --- cycles ------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List OKR cycles", description=(
        "Every cycle, newest first by default. Sorts: `-start` (default), `start`, `id`. Filter `?status=`.")),
    retrieve=extend_schema(summary="Read an OKR cycle"),
    create=extend_schema(summary="Create an OKR cycle (admins)", description=(
        "Starts in planning. Without dates: the current quarter; with only `start_date`: the quarter from it. "
        "The name defaults to the quarter's (“Q1 2026”).")),
    update=extend_schema(summary="Change an OKR cycle (admins)", description="Not once it is closed."),
    partial_update=extend_schema(summary="Change some fields of an OKR cycle (admins)"),
)
class CycleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """OKR cycles: planning → active → closed (scored)."""

    permission_classes = [permissions.IsAuthenticated, AdminWrites]
    serializer_class = CycleSerializer
    filterset_class = CycleFilter
    sort_options = [SortOption("-start", "start_date", descending=True), SortOption("start", "start_date"),
                    SortOption("id", "id")]
    default_sort = "-start"
    queryset = Cycle.objects.all()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cycle = services.cycle_create(actor=request.user, data=dict(serializer.validated_data))
        return Response(self.get_serializer(cycle).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        cycle = self.get_object()
        serializer = self.get_serializer(cycle, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        cycle = services.cycle_update(actor=request.user, cycle=cycle, data=dict(serializer.validated_data))
        return Response(self.get_serializer(cycle).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(summary="Activate an OKR cycle (admins)", description=(
        "planning → active: statuses are computed from now on, changes of targets need a reason, and KPI "
        "snapshots check in on linked key results. 400 naming `status` for a cycle not in planning."),
        request=None, responses=CycleSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        cycle = services.cycle_activate(actor=request.user, cycle=self.get_object())
        return Response(self.get_serializer(cycle).data)

    @extend_schema(summary="Close an OKR cycle (admins)", description=(
        "active → closed: every key result gets its score (progress rounded to one decimal) unless `overrides` "
        "gives another with a comment; check-ins and edits lock. Errors name `overrides.<key result id>.score` "
        "or `.comment`; nothing changes then."), request=CycleCloseSerializer, responses=CycleSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        cycle = self.get_object()
        serializer = CycleCloseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        overrides = {row["key_result"]: {"score": row["score"], "comment": row.get("comment", "")}
                     for row in serializer.validated_data.get("overrides", [])}
        cycle = services.cycle_close(actor=request.user, cycle=cycle, overrides=overrides)
        return Response(self.get_serializer(cycle).data)


# --- objectives --------------------------------------------------------------------------------------------

OBJECTIVE_SORTS = [SortOption("id", "id"), SortOption("-id", "id", descending=True), SortOption("order", "order"),
                   SortOption("-updated", "updated_at", descending=True)]


@extend_schema_view(
    list=extend_schema(summary="List objectives", description=(
        "Objectives you can see, with their computed progress, status and expected progress, in keyset pages. "
        "Filter by `cycle`, `level`, `team`, `owner`, `parent`, `is_root`, `archived`. Sorts: `id` (default), "
        "`-id`, `order`, `-updated`.")),
    retrieve=extend_schema(summary="Read an objective"),
    create=extend_schema(summary="Create an objective", description=(
        "Company objectives: admins; team objectives: the team's manager and admins; individual ones: for "
        "yourself (managers: for their team's people). `warnings` gives the seed's guidance (a number in the "
        "title, fewer than 2 or more than 4 key results); they do not stop the save.")),
    update=extend_schema(summary="Change an objective", description=(
        "The owner, their manager and admins; not once the cycle is closed. Answers with the warnings.")),
    partial_update=extend_schema(summary="Change some fields of an objective"),
)
class ObjectiveViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Objectives: what a company, team or person wants to achieve in a cycle, aligned in a tree."""

    serializer_class = ObjectiveSerializer
    filterset_class = ObjectiveFilter
    sort_options = OBJECTIVE_SORTS
    default_sort = "id"
    queryset = Objective.objects.none()

    def visible_queryset(self, user):
        return selectors.objectives_visible_to(user).select_related("cycle")

    def _data(self, objectives, *, many=False, warnings=None):
        states = selectors_api.objective_page_states(objectives, now=timezone.now())
        for objective in objectives:
            objective.api_state = states[objective.pk]
        context = {**self.get_serializer_context(), "warnings": warnings}
        serializer = ObjectiveSerializer(objectives if many else objectives[0], many=many, context=context)
        return serializer.data

    def _fresh(self, objective, *, warnings=None):
        objective = Objective.objects.select_related("cycle").get(pk=objective.pk)
        return self._data([objective], warnings=warnings)

    def _editable(self) -> Objective:
        objective = self.get_object()
        if not services.can_edit_objective(self.request.user, objective):
            raise exceptions.PermissionDenied(_("You may not edit this objective."))
        return objective

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._data(page, many=True))

    def retrieve(self, request, *args, **kwargs):
        return Response(self._data([self.get_object()]))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        cycle = data.pop("cycle")
        objective, warnings = services.objective_create(actor=request.user, cycle=cycle, data=data)
        return Response(self._fresh(objective, warnings=warnings), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        objective = self._editable()
        serializer = self.get_serializer(objective, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        objective, warnings = services.objective_update(actor=request.user, objective=objective,
                                                        data=dict(serializer.validated_data))
        return Response(self._fresh(objective, warnings=warnings))

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(summary="Archive an objective (or bring it back)", description=(
        "An archived objective leaves the trees, dashboards and scoring; its key results keep their history."),
        request=ArchiveSerializer, responses=ObjectiveSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        objective = self._editable()
        serializer = ArchiveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        objective = services.objective_archive(actor=request.user, objective=objective,
                                               archived=serializer.validated_data["archived"])
        return Response(self._fresh(objective))


# --- key results -------------------------------------------------------------------------------------------

KEY_RESULT_SORTS = [SortOption("id", "id"), SortOption("-id", "id", descending=True), SortOption("order", "order"),
                    SortOption("due", "due_date"), SortOption("-updated", "updated_at", descending=True)]


@extend_schema_view(
    list=extend_schema(summary="List key results", description=(
        "Key results of the objectives you can see, with progress (clamped and raw), expected progress, pace, "
        "status, the owner's last confidence and the current value. Filter by `cycle`, `objective`, `team` (the "
        "objective's team), `owner`, `kpi`, `manual`, `kind`. There is no `status` filter: the status is computed "
        "from progress and the time elapsed, not stored (400 naming `status`); read it on each key result. "
        "Sorts: `id` (default), `-id`, `order`, `due`, `-updated`.")),
    retrieve=extend_schema(summary="Read a key result"),
    create=extend_schema(summary="Add a key result to an objective", description=(
        "Whoever may edit the objective. Needs a target (except a milestone) and a start different from it "
        "(increase/decrease); the due date defaults to the cycle's last day. `warnings` gives the objective's "
        "guidance.")),
    update=extend_schema(summary="Change a key result", description=(
        "Changes of start, target, weight or due date are kept in the history with who, when and `reason` "
        "(required once the cycle is active).")),
    partial_update=extend_schema(summary="Change some fields of a key result"),
    destroy=extend_schema(summary="Delete a key result", description=(
        "Only while the cycle is in planning (400 naming `key_result` otherwise: archive the objective instead)."),
        responses={204: None}),
)
class KeyResultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Key results: measurable results, kept by hand (check-ins) or measured by a KPI."""

    serializer_class = KeyResultSerializer
    filterset_class = KeyResultFilter
    sort_options = KEY_RESULT_SORTS
    default_sort = "id"
    queryset = KeyResult.objects.none()

    def visible_queryset(self, user):
        return selectors.key_results_visible_to(user).select_related("objective__cycle")

    def _data(self, key_results, *, many=False, warnings=None):
        states = selectors_api.key_result_page_states(key_results, now=timezone.now())
        for kr in key_results:
            kr.api_state = states[kr.pk]
        context = {**self.get_serializer_context(), "warnings": warnings}
        return KeyResultSerializer(key_results if many else key_results[0], many=many, context=context).data

    def _fresh(self, key_result, *, warnings=None):
        return self._data([KeyResult.objects.select_related("objective__cycle").get(pk=key_result.pk)],
                          warnings=warnings)

    def _editable(self) -> KeyResult:
        key_result = self.get_object()
        if not services.can_edit_key_result(self.request.user, key_result):
            raise exceptions.PermissionDenied(_("You may not edit this key result."))
        return key_result

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._data(page, many=True))

    def retrieve(self, request, *args, **kwargs):
        return Response(self._data([self.get_object()]))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        objective = data.pop("objective")
        data.pop("reason", None)  # the history starts at creation
        key_result, warnings = services.key_result_create(actor=request.user, objective=objective, data=data)
        return Response(self._fresh(key_result, warnings=warnings), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        key_result = self._editable()
        serializer = self.get_serializer(key_result, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("reason", "")
        key_result = services.key_result_update(actor=request.user, key_result=key_result, data=data, reason=reason)
        return Response(self._fresh(key_result))

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.key_result_delete(actor=request.user, key_result=self._editable())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="A key result's history and values", description=(
        "Changes of start, target, weight and due date (who, when, why; newest first), the values over time "
        "(check-ins and KPI snapshots; oldest first) and the expected-pace line."),
        responses=KeyResultHistorySerializer)
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def history(self, request, pk=None):
        key_result = self.get_object()
        line = selectors.pace_line(key_result, key_result.objective.cycle)
        return Response(KeyResultHistorySerializer({
            "changes": list(selectors.key_result_history(key_result)),
            "series": selectors.key_result_series(key_result),
            "pace_line": None if line is None else [{"at": at, "value": value} for at, value in line],
        }).data)

    @extend_schema(summary="Override the score of a key result of a closed cycle", description=(
        "The key result's owner, their manager and admins. A score different from the computed one needs a "
        "comment."), request=KeyResultScoreSerializer, responses=KeyResultSerializer)
    @action(detail=True, methods=["post"])
    def score(self, request, pk=None):
        key_result = self._editable()
        serializer = KeyResultScoreSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key_result = services.key_result_score(actor=request.user, key_result=key_result,
                                               score=serializer.validated_data["score"],
                                               comment=serializer.validated_data.get("comment", ""))
        return Response(self._fresh(key_result))


# --- check-ins ---------------------------------------------------------------------------------------------

CHECK_IN_SORTS = [SortOption("-measured", "measured_at", descending=True), SortOption("measured", "measured_at"),
                  SortOption("id", "id")]


@extend_schema_view(
    list=extend_schema(summary="List check-ins", description=(
        "Check-ins of the key results you can see, newest first by default (`?key_result=` for one). Sorts: "
        "`-measured` (default), `measured`, `id`.")),
    retrieve=extend_schema(summary="Read a check-in"),
    create=extend_schema(summary="Check in on a key result", description=(
        "Whoever may edit the key result: the value (a milestone: `done`), confidence 0–10, a note and blockers. "
        "A key result measured by a KPI takes no value (400 naming `value`): its snapshots check in "
        "automatically. Refused once the cycle is closed.")),
    partial_update=extend_schema(summary="Add confidence, a note or blockers to a check-in", description=(
        "Typically to an automatic check-in (from a KPI snapshot). Only `confidence`, `note` and `blockers` "
        "change; a different `value` is refused (check in again).")),
)
class CheckInViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Check-ins: readings of key results, by hand or from KPI snapshots."""

    http_method_names = CHECK_IN_METHODS
    serializer_class = CheckInSerializer
    filterset_class = CheckInFilter
    sort_options = CHECK_IN_SORTS
    default_sort = "-measured"
    queryset = CheckIn.objects.none()

    def visible_queryset(self, user):
        return selectors.check_ins_visible_to(user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        row = services.check_in(
            actor=request.user, key_result=data["key_result"], value=data.get("value"),
            confidence=data.get("confidence"), note=data.get("note", ""), blockers=data.get("blockers", ""),
            done=data.get("done"),
        )
        return Response(self.get_serializer(row).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        row = self.get_object()
        if not services.can_edit_key_result(request.user, row.key_result):
            raise exceptions.PermissionDenied(_("You may not check in on this key result."))
        serializer = self.get_serializer(row, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        row = services.check_in_annotate(actor=request.user, check_in=row,
                                         confidence=data.get("confidence", row.confidence),
                                         note=data.get("note"), blockers=data.get("blockers"))
        return Response(self.get_serializer(row).data)


# --- initiatives -------------------------------------------------------------------------------------------

INITIATIVE_SORTS = [SortOption("id", "id"), SortOption("-id", "id", descending=True), SortOption("due", "due_date")]


@extend_schema_view(
    list=extend_schema(summary="List initiatives", description=(
        "Initiatives of the key results you can see. Filter by `key_result`, `owner`, `status`. Sorts: `id` "
        "(default), `-id`, `due`.")),
    retrieve=extend_schema(summary="Read an initiative"),
    create=extend_schema(summary="Plan an initiative for a key result", description=(
        "Whoever may edit the key result; the owner defaults to you.")),
    update=extend_schema(summary="Change an initiative", description="Its owner, or whoever may edit the key result."),
    partial_update=extend_schema(summary="Change some fields of an initiative"),
    destroy=extend_schema(summary="Delete an initiative", responses={204: None}),
)
class InitiativeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Initiatives: work planned to move a key result (the seed's action plans)."""

    serializer_class = InitiativeSerializer
    filterset_class = InitiativeFilter
    sort_options = INITIATIVE_SORTS
    default_sort = "id"
    queryset = Initiative.objects.none()

    def visible_queryset(self, user):
        return selectors_api.initiatives_visible_to(user)

    def _editable(self) -> Initiative:
        initiative = self.get_object()
        user = self.request.user
        if initiative.owner_id != user.pk and not services.can_edit_key_result(user, initiative.key_result):
            raise exceptions.PermissionDenied(_("You may not edit this initiative."))
        return initiative

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        key_result = data.pop("key_result")
        initiative = services.initiative_create(actor=request.user, key_result=key_result, data=data)
        return Response(self.get_serializer(initiative).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        initiative = self._editable()
        serializer = self.get_serializer(initiative, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        initiative = services.initiative_update(actor=request.user, initiative=initiative,
                                                data=dict(serializer.validated_data))
        return Response(self.get_serializer(initiative).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.initiative_delete(actor=request.user, initiative=self._editable())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- templates ---------------------------------------------------------------------------------------------

KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(TEMPLATES),
                                 description="The template's key.")


def _template_data(template) -> dict:
    return {
        "key": template.key, "name": str(template.name), "objective": str(template.objective),
        "description": str(template.description),
        "key_results": [{"title": str(kr.title), "kind": kr.kind, "unit": kr.unit, "kpi": kr.kpi}
                        for kr in template.key_results],
    }


class TemplateViewSet(viewsets.ViewSet):
    """The seed's sample OKR sets (sales, marketing, customer service, customer loyalty, after-sales)."""

    schema = ApiSchema()
    lookup_field = "key"
    lookup_value_regex = "[a-z0-9-]+"

    def _template(self, key):
        template = TEMPLATES.get(key)
        if template is None:
            raise exceptions.NotFound(_("There is no OKR template “%(key)s”.") % {"key": str(key)[:40]})
        return template

    def _no_parameters(self, request):
        unknown = sorted(name for name in request.query_params if name != "format")
        if unknown:
            raise exceptions.ValidationError({name[:100]: [_("Unknown query parameter.")] for name in unknown[:20]})

    @extend_schema(summary="List OKR templates", description=(
        "The templates a manager loads into a cycle for a team, in your language, with the KPI that measures "
        "each key result (empty: kept by hand)."), responses=TemplateSerializer(many=True))
    def list(self, request):
        self._no_parameters(request)
        return Response(TemplateSerializer([_template_data(t) for t in TEMPLATE_LIST], many=True).data)

    @extend_schema(summary="Read an OKR template", parameters=[KEY_PARAMETER], responses=TemplateSerializer)
    def retrieve(self, request, key=None):
        self._no_parameters(request)
        return Response(TemplateSerializer(_template_data(self._template(key))).data)

    @extend_schema(
        summary="Load a template into a cycle for a team", parameters=[KEY_PARAMETER],
        description=(
            "The team's manager or an admin. Creates the template's team objective (owner: the team's manager "
            "unless `owner` is given) with its key results; each is linked to the matching KPI for the team where "
            "one exists, and a relative target (“−20 %”) starts from the KPI's latest value. Answers with the new "
            "objective; `warnings` also says which key results are kept by hand for lack of a KPI value."),
        request=TemplateLoadSerializer, responses={201: ObjectiveSerializer})
    @action(detail=True, methods=["post"])
    def load(self, request, key=None):
        template = self._template(key)
        serializer = TemplateLoadSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        objective, warnings = services.load_template(
            cycle=data["cycle"], team=data["team"], template_key=template.key, actor=request.user,
            owner=data.get("owner"), parent=data.get("parent"))
        objective = Objective.objects.select_related("cycle").get(pk=objective.pk)
        objective.api_state = selectors_api.objective_page_states([objective])[objective.pk]
        body = ObjectiveSerializer(objective, context={"request": request, "warnings": warnings}).data
        return Response(body, status=status.HTTP_201_CREATED)
