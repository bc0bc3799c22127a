"""Browser pages of the data the KPIs need that people supply: survey responses, external metrics and their
values, exchange rates (under /kpis/data/).

Thin doors to ``kpis.services_data``. Anyone signed in reads; anyone who sees a contact may record its answer;
only admins change metrics, their values and exchange rates (everyone else gets 403 on those forms).
"""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.views import browser_user_required
from crm_okr.pagination import SortOption, paginate

from . import periods
from . import services_data as services
from .forms_data import (
    ExchangeRateForm,
    MetricForm,
    MetricValueForm,
    SurveyFilterForm,
    SurveyResponseForm,
    dimension_rows,
)
from .models import ExchangeRate, ExternalMetric, MetricValue
from .selectors_data import survey_responses_visible_to

PAGE_SIZE = 50
# An invalid form answers 422, which htmx is configured (base.html) to swap like a 200.
INVALID = 422
NEWEST_ANSWER = SortOption("newest", "responded_at", True, gettext_lazy("Newest first"))
NEWEST_PERIOD = SortOption("newest", "period_start", True, gettext_lazy("Newest period first"))
NEWEST_RATE = SortOption("newest", "valid_from", True, gettext_lazy("Newest first"))


def admin_required(view):
    """Admins only; every other signed-in person gets 403."""

    @wraps(view)
    @browser_user_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_admin:
            raise PermissionDenied(_("Only admins change external metrics and exchange rates."))
        return view(request, *args, **kwargs)

    return wrapper


def _page(request, qs, sort: SortOption):
    try:
        return paginate(qs, sort=sort, cursor=request.GET.get("cursor") or None, page_size=PAGE_SIZE)
    except ValidationError:
        messages.error(request, _("That page link is no longer valid; showing the first page."))
        return paginate(qs, sort=sort, cursor=None, page_size=PAGE_SIZE)


# --- survey responses ------------------------------------------------------------------------------


@require_GET
@browser_user_required
def survey_list(request):
    """The NPS and CSAT answers of the contacts the user sees, newest first, with filters."""
    form = SurveyFilterForm(request.GET or None)
    qs = survey_responses_visible_to(request.user).select_related("contact", "created_by")
    if form.value("kind"):
        qs = qs.filter(kind=form.value("kind"))
    if form.value("channel"):
        qs = qs.filter(channel=form.value("channel"))
    if form.value("date_from"):
        qs = qs.filter(responded_at__gte=periods.containing("daily", form.value("date_from")).start)
    if form.value("date_to"):
        qs = qs.filter(responded_at__lt=periods.containing("daily", form.value("date_to")).end)
    page = _page(request, qs, NEWEST_ANSWER)
    return render(request, "kpis/data/survey_list.html", {"form": form, "page": page})


@browser_user_required
def survey_create(request):
    """Record an answer of a contact the user sees (``?contact=<id>`` chooses the contact)."""
    if request.method == "POST":
        form = SurveyResponseForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                response, _created = services.survey_response_create(actor=request.user, data=form.to_data())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Recorded the %(kind)s answer %(score)d of %(contact)s.") % {
                    "kind": response.get_kind_display(), "score": response.score, "contact": response.contact})
                return redirect("survey-list")
        return render(request, "kpis/data/survey_form.html", {"form": form}, status=INVALID)
    initial = {}
    contact = request.GET.get("contact") or ""
    if contact.isdigit() and len(contact) < 19:
        initial["contact"] = int(contact)
    form = SurveyResponseForm(user=request.user, initial=initial)
    return render(request, "kpis/data/survey_form.html", {"form": form})


# --- external metrics ------------------------------------------------------------------------------


def _metrics_page(request, *, form=None, status=200):
    metrics = ExternalMetric.objects.annotate(value_count=Count("values"), last_period=Max("values__period_start"))
    return render(request, "kpis/data/metric_list.html", {
        "metrics": metrics, "form": form or (MetricForm() if request.user.is_admin else None),
    }, status=status)


@browser_user_required
def metric_list(request):
    """Every external metric with how many values it has; admins create one here (POST)."""
    if request.method != "POST":
        return _metrics_page(request)
    if not request.user.is_admin:
        raise PermissionDenied(_("Only admins change external metrics and exchange rates."))
    form = MetricForm(request.POST)
    if form.is_valid():
        try:
            metric = services.metric_create(actor=request.user, data=dict(form.cleaned_data))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Created the metric “%(name)s”; add its values below.") % {
                "name": metric.name})
            return redirect("metric-detail", key=metric.key)
    return _metrics_page(request, form=form, status=INVALID)


def _metric_page(request, metric: ExternalMetric, *, value_form=None, edit_form=None, status=200):
    qs = MetricValue.objects.filter(metric=metric).select_related("updated_by")
    page = _page(request, qs, NEWEST_PERIOD)
    labels = {}
    if metric.dimension_kind:
        ids = {row.dimension_id for row in page.items}
        labels = {row.pk: str(row) for row in dimension_rows(metric.dimension_kind).filter(pk__in=ids)}
    for row in page.items:
        row.dimension_label = labels.get(row.dimension_id, f"#{row.dimension_id}") if metric.dimension_kind else ""
    admin = request.user.is_admin
    return render(request, "kpis/data/metric_detail.html", {
        "metric": metric, "page": page,
        "value_form": value_form or (MetricValueForm(metric=metric) if admin else None),
        "edit_form": edit_form or (MetricForm(instance=metric) if admin else None),
        "currency": settings.CRM_CURRENCY,
    }, status=status)


@browser_user_required
def metric_detail(request, key: str):
    """A metric's values, newest period first; admins set a value here (POST: created or replaced)."""
    metric = get_object_or_404(ExternalMetric, key=key)
    if request.method != "POST":
        return _metric_page(request, metric)
    if not request.user.is_admin:
        raise PermissionDenied(_("Only admins change external metrics and exchange rates."))
    form = MetricValueForm(request.POST, metric=metric)
    if form.is_valid():
        try:
            value, created = services.metric_value_upsert(actor=request.user, metric=metric, data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            text = _("Saved the value for %(start)s – %(end)s.") if created else _(
                "Replaced the value for %(start)s – %(end)s.")
            messages.success(request, text % {"start": value.period_start.isoformat(),
                                              "end": value.period_end.isoformat()})
            return redirect("metric-detail", key=metric.key)
    return _metric_page(request, metric, value_form=form, status=INVALID)


@admin_required
def metric_edit(request, key: str):
    metric = get_object_or_404(ExternalMetric, key=key)
    if request.method != "POST":  # the edit form lives on the metric's page
        return redirect("metric-detail", key=metric.key)
    form = MetricForm(request.POST, instance=metric)
    if form.is_valid():
        try:
            metric = services.metric_update(metric, actor=request.user, data=dict(form.cleaned_data))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Saved “%(name)s”.") % {"name": metric.name})
            return redirect("metric-detail", key=metric.key)
    return _metric_page(request, metric, edit_form=form, status=INVALID)


@require_POST
@admin_required
def metric_value_delete(request, key: str, pk: int):
    value = get_object_or_404(MetricValue, pk=pk, metric__key=key)
    services.metric_value_delete(actor=request.user, value=value)
    messages.success(request, _("Deleted the value for %(start)s – %(end)s.") % {
        "start": value.period_start.isoformat(), "end": value.period_end.isoformat()})
    return redirect("metric-detail", key=key)


# --- exchange rates --------------------------------------------------------------------------------


def _rates_page(request, *, form=None, status=200):
    page = _page(request, ExchangeRate.objects.select_related("updated_by"), NEWEST_RATE)
    return render(request, "kpis/data/exchange_rate_list.html", {
        "page": page, "form": form or (ExchangeRateForm() if request.user.is_admin else None),
        "currency": settings.CRM_CURRENCY,
    }, status=status)


@browser_user_required
def exchange_rate_list(request):
    """The exchange rates to the company currency; admins set one here (POST: created or replaced)."""
    if request.method != "POST":
        return _rates_page(request)
    if not request.user.is_admin:
        raise PermissionDenied(_("Only admins change external metrics and exchange rates."))
    form = ExchangeRateForm(request.POST)
    if form.is_valid():
        try:
            rate, created = services.exchange_rate_upsert(actor=request.user, data=dict(form.cleaned_data))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            text = _("Saved: 1 %(currency)s = %(rate)s %(company)s from %(day)s.") if created else _(
                "Replaced: 1 %(currency)s = %(rate)s %(company)s from %(day)s.")
            messages.success(request, text % {"currency": rate.currency, "rate": rate.rate.normalize(),
                                              "company": settings.CRM_CURRENCY, "day": rate.valid_from.isoformat()})
            return redirect("exchange-rate-list")
    return _rates_page(request, form=form, status=INVALID)


@require_POST
@admin_required
def exchange_rate_delete(request, pk: int):
    rate = get_object_or_404(ExchangeRate, pk=pk)
    services.exchange_rate_delete(actor=request.user, rate=rate)
    messages.success(request, _("Deleted the %(currency)s rate from %(day)s.") % {
        "currency": rate.currency, "day": rate.valid_from.isoformat()})
    return redirect("exchange-rate-list")

