"""Browser pages where admins shape the pipelines: create, rename, make default and delete pipelines;
add, edit, reorder and delete stages. Thin doors to ``pipeline.services``; everyone but an admin gets 403.
"""

from functools import cache, wraps

from django.contrib import messages
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.views import browser_user_required
from contacts.forms import service_error_fields

from . import criteria, services
from .forms_settings import PipelineForm, StageDeleteForm, StageForm
from .models import Deal, Pipeline, Stage

# An invalid form answers 422, which htmx is configured (base.html) to swap like a 200.
INVALID = 422


def admin_required(view):
    """Admins only; every other signed-in person gets 403 (integration accounts already do)."""

    @wraps(view)
    @browser_user_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_admin:
            raise PermissionDenied(_("Only admins change pipelines and stages."))
        return view(request, *args, **kwargs)

    return wrapper


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


@cache
def sortable_available() -> bool:
    """Whether SortableJS is vendored; without it the up/down buttons still reorder stages."""
    return bool(finders.find("vendor/Sortable.min.js"))


def _messages_of(exc: ValidationError) -> list[str]:
    return [message for _field, message in service_error_fields(exc)]


def _count(model, field: str):
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


# --- pipelines -----------------------------------------------------------------------------------


def _pipelines_page(request, *, create_form=None, rename_form=None, rename_pk=None, error=None, status=200):
    pipelines = list(Pipeline.objects.annotate(stage_count=_count(Stage, "pipeline"),
                                               deal_count=_count(Deal, "pipeline")))
    for pipeline in pipelines:
        if pipeline.pk == rename_pk:
            pipeline.rename_form = rename_form
        else:
            pipeline.rename_form = PipelineForm(prefix=f"rename-{pipeline.pk}", initial={"name": pipeline.name})
    return render(request, "pipeline/settings_pipelines.html", {
        "pipelines": pipelines,
        "create_form": create_form or PipelineForm(),
        "rename_pk": rename_pk,
        "error": error,
    }, status=status)


@admin_required
def pipeline_settings(request):
    """The pipelines (the default marked) and a form to create one; POST creates it with the default stages."""
    if request.method != "POST":
        return _pipelines_page(request)
    form = PipelineForm(request.POST)
    if form.is_valid():
        try:
            pipeline = services.pipeline_create(actor=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_service_errors(exc)
        except IntegrityError:
            form.add_error("name", _("There is already a pipeline called “%(name)s”.") % {
                "name": form.cleaned_data["name"]})
        else:
            messages.success(request, _("Created “%(name)s” with the default stages; change them below.") % {
                "name": pipeline.name})
            return redirect("pipeline-settings-detail", pk=pipeline.pk)
    return _pipelines_page(request, create_form=form, status=INVALID)


@require_POST
@admin_required
def pipeline_rename(request, pk: int):
    pipeline = get_object_or_404(Pipeline, pk=pk)
    form = PipelineForm(request.POST, prefix=f"rename-{pipeline.pk}")
    if form.is_valid():
        try:
            pipeline = services.pipeline_update(actor=request.user, pipeline=pipeline, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_service_errors(exc)
        except IntegrityError:
            form.add_error("name", _("There is already a pipeline called “%(name)s”.") % {
                "name": form.cleaned_data["name"]})
        else:
            messages.success(request, _("Renamed to “%(name)s”.") % {"name": pipeline.name})
            return redirect("pipeline-settings")
    return _pipelines_page(request, rename_form=form, rename_pk=pipeline.pk, status=INVALID)


@require_POST
@admin_required
def pipeline_make_default(request, pk: int):
    pipeline = get_object_or_404(Pipeline, pk=pk)
    try:
        services.pipeline_update(actor=request.user, pipeline=pipeline, is_default=True)
    except (ValidationError, IntegrityError):
        return _pipelines_page(request, error=_("Another admin changed the default meanwhile; try again."),
                               status=INVALID)
    messages.success(request, _("“%(name)s” is now the default pipeline.") % {"name": pipeline.name})
    return redirect("pipeline-settings")


@require_POST
@admin_required
def pipeline_delete(request, pk: int):
    pipeline = get_object_or_404(Pipeline, pk=pk)
    try:
        services.pipeline_delete(actor=request.user, pipeline=pipeline)
    except ValidationError as exc:
        return _pipelines_page(request, error=" ".join(_messages_of(exc)), status=INVALID)
    messages.success(request, _("Deleted “%(name)s”.") % {"name": pipeline.name})
    return redirect("pipeline-settings")


# --- stages --------------------------------------------------------------------------------------


def _pipeline_for(pk: int) -> Pipeline:
    return get_object_or_404(Pipeline, pk=pk)


def _stage_for(pipeline: Pipeline, stage_pk: int) -> Stage:
    stage = get_object_or_404(Stage.objects.annotate(deal_count=_count(Deal, "stage")), pk=stage_pk,
                              pipeline=pipeline)
    stage.pipeline = pipeline
    return stage


def _stage_rows(pipeline: Pipeline, choices: list[tuple[str, str]]) -> tuple[list[Stage], list[Stage]]:
    """The open stages and the won/lost stages, in order, with their deal counts and criteria labels."""
    labels = dict(choices)
    stages = list(pipeline.stages.annotate(deal_count=_count(Deal, "stage")).order_by("order", "id"))
    for stage in stages:
        stage.criteria_labels = [labels.get(key) or criteria.label(key, {}) for key in stage.exit_criteria or []]
    open_stages = [s for s in stages if s.kind == Stage.Kind.OPEN]
    closed = [s for s in stages if s.kind != Stage.Kind.OPEN]
    for group in (open_stages, closed):
        for position, stage in enumerate(group):
            stage.can_move_up = position > 0
            stage.can_move_down = position < len(group) - 1
    return open_stages, closed


def _table_context(pipeline: Pipeline, choices, *, order_error: str | None = None) -> dict:
    open_stages, closed = _stage_rows(pipeline, choices)
    return {
        "pipeline": pipeline, "groups": [open_stages, closed],
        "sortable": sortable_available(), "order_error": order_error,
    }


def _detail_page(request, pipeline: Pipeline, *, stage_form=None, order_error=None, status=200):
    choices = criteria.available()
    return render(request, "pipeline/settings_pipeline_detail.html", {
        **_table_context(pipeline, choices, order_error=order_error),
        "stage_form": stage_form or StageForm(criteria_choices=choices),
    }, status=status)


@admin_required
def pipeline_settings_detail(request, pk: int):
    """A pipeline's stages in order, with their settings and deal counts, and a form to add one."""
    return _detail_page(request, _pipeline_for(pk))


@require_POST
@admin_required
def stage_create(request, pk: int):
    pipeline = _pipeline_for(pk)
    form = StageForm(request.POST, criteria_choices=criteria.available())
    if form.is_valid():
        try:
            stage = services.stage_create(actor=request.user, pipeline=pipeline, data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        except IntegrityError:
            form.add_error("name", _("Another stage of this pipeline has this name."))
        else:
            messages.success(request, _("Added “%(name)s”.") % {"name": stage.name})
            return redirect(reverse("pipeline-settings-detail", args=[pipeline.pk]) + f"#stage-{stage.pk}")
    return _detail_page(request, pipeline, stage_form=form, status=INVALID)


@admin_required
def stage_edit(request, pk: int, stage_pk: int):
    pipeline = _pipeline_for(pk)
    stage = _stage_for(pipeline, stage_pk)
    data = request.POST if request.method == "POST" else None
    form = StageForm(data, criteria_choices=criteria.available(), instance=stage)
    if request.method == "POST" and form.is_valid():
        try:
            stage = services.stage_update(actor=request.user, stage=stage, data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        except IntegrityError:
            form.add_error("name", _("Another stage of this pipeline has this name."))
        else:
            messages.success(request, _("Saved “%(name)s”.") % {"name": stage.name})
            return redirect(reverse("pipeline-settings-detail", args=[pipeline.pk]) + f"#stage-{stage.pk}")
    status = INVALID if request.method == "POST" else 200
    return render(request, "pipeline/settings_stage_form.html", {
        "pipeline": pipeline, "stage": stage, "form": form}, status=status)


@admin_required
def stage_delete(request, pk: int, stage_pk: int):
    """Confirm the deletion of a stage; one that holds deals asks where they go (a stage of the same kind)."""
    pipeline = _pipeline_for(pk)
    stage = _stage_for(pipeline, stage_pk)
    targets = pipeline.stages.filter(kind=stage.kind).exclude(pk=stage.pk).order_by("order", "id")
    data = request.POST if request.method == "POST" else None
    form = StageDeleteForm(data, stage=stage, targets=targets, deal_count=stage.deal_count)
    if request.method == "POST" and form.is_valid():
        try:
            moved = services.stage_delete(actor=request.user, stage=stage, move_to=form.cleaned_data["move_to"])
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            if moved:
                messages.success(request, _("Deleted “%(name)s”; its deals are now in “%(target)s”.") % {
                    "name": stage.name, "target": form.cleaned_data["move_to"].name})
            else:
                messages.success(request, _("Deleted “%(name)s”.") % {"name": stage.name})
            return redirect("pipeline-settings-detail", pk=pipeline.pk)
    status = INVALID if request.method == "POST" else 200
    return render(request, "pipeline/settings_stage_delete.html", {
        "pipeline": pipeline, "stage": stage, "form": form,
        "has_targets": bool(stage.deal_count) and targets.exists(),
    }, status=status)


@require_POST
@admin_required
def stage_move(request, pk: int, stage_pk: int):
    """Move a stage one place up or down (the buttons that work without JavaScript)."""
    pipeline = _pipeline_for(pk)
    ids = list(pipeline.stages.order_by("order", "id").values_list("pk", flat=True))
    direction = request.POST.get("direction")
    if stage_pk not in ids or direction not in {"up", "down"}:
        return _detail_page(request, pipeline, order_error=_("Choose a stage of this pipeline and a direction."),
                            status=INVALID)
    index = ids.index(stage_pk)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
        try:
            services.stages_reorder(actor=request.user, pipeline=pipeline, stage_ids=ids)
        except ValidationError as exc:
            return _detail_page(request, pipeline, order_error=" ".join(_messages_of(exc)), status=INVALID)
    return redirect(reverse("pipeline-settings-detail", args=[pipeline.pk]) + f"#stage-{stage_pk}")


@require_POST
@admin_required
def stage_reorder(request, pk: int):
    """Save the order of every stage (posted by the drag-and-drop table as ``stage`` ids in order)."""
    pipeline = _pipeline_for(pk)
    error = None
    try:
        services.stages_reorder(actor=request.user, pipeline=pipeline, stage_ids=request.POST.getlist("stage"))
    except ValidationError as exc:
        error = " ".join(_messages_of(exc))
    if is_htmx(request):
        return render(request, "pipeline/settings_stage_table.html",
                      _table_context(pipeline, criteria.available(), order_error=error),
                      status=INVALID if error else 200)
    if error:
        return _detail_page(request, pipeline, order_error=error, status=INVALID)
    messages.success(request, _("Saved the order of the stages."))
    return redirect("pipeline-settings-detail", pk=pipeline.pk)
