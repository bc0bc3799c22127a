"""Browser pages for deals: the list and its CSV export, the create/edit form, and the deal page with its
stage bar, stage move (missing fields filled in place), stage and field history, and timeline.

Thin doors: every deal is fetched through ``selectors.deals_visible_to`` (a hidden deal is a 404 on
every URL), every write goes through ``pipeline.services`` or ``contacts.services.activity_log``, and a
visible deal the user may not change is a 403 on the pages that change it.
"""

import csv
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import DecimalField, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.views import browser_user_required
from contacts import services as contact_services
from contacts.forms import ActivityForm, service_error_fields
from contacts.models import Entity
from contacts.rules import EntityRules
from contacts.selectors import companies_visible_to, contacts_visible_to, editable_activity_ids, search_filter
from crm_okr import history
from crm_okr.pagination import SortOption, paginate

from . import criteria, selectors, services
from .forms import CURRENCIES, DealFilterForm, DealForm, DealMoveForm, fill_name, fill_names
from .models import Deal, Pipeline, Stage

PAGE_SIZE = 50
# Rows fetched per query while streaming the CSV export (keyset chunks, never the whole table at once).
EXPORT_CHUNK = 2000
CONTACT_OPTIONS = 50
# An invalid form answers 422, which htmx is configured (base.html) to swap like a 200.
INVALID = 422

# Keyset pagination needs a sort column without NULLs: the close date and the amount are nullable,
# so they are sorted on a COALESCE (deals without a close date last, deals without an amount last).
# The name is sorted on its folded form (search_text = fold(name)), so case and Turkish letters
# do not scatter it (the database collation is C).
NO_CLOSE_DATE = date(9999, 12, 31)
SORT_OPTIONS = [
    SortOption("newest", "created_at", True, gettext_lazy("Newest first")),
    SortOption("close", "sort_close", False, gettext_lazy("Expected close date")),
    SortOption("amount", "sort_amount", True, gettext_lazy("Largest amount")),
    SortOption("name", "search_text", False, gettext_lazy("Name A–Z")),
]
SORTS = {o.key: o for o in SORT_OPTIONS}
DEFAULT_SORT = "newest"
SORT_ANNOTATIONS = {
    "sort_close": lambda: Coalesce("expected_close_date", Value(NO_CLOSE_DATE)),
    "sort_amount": lambda: Coalesce("amount", Value(Decimal(-1)),
                                    output_field=DecimalField(max_digits=16, decimal_places=2)),
}
# Characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _deal_for(request, pk: int) -> Deal:
    """The deal if the user may see it, else 404 (the one access-checked getter of deals)."""
    qs = selectors.deals_visible_to(request.user).select_related(
        "pipeline", "stage", "owner__team", "team", "contact", "company", "lead_source", "lost_reason", "created_by",
    )
    return get_object_or_404(qs, pk=pk)


def _require_edit(request, deal: Deal) -> None:
    if not selectors.can_edit(request.user, deal):
        raise PermissionDenied(_("You can see this deal but not change it; ask its owner or your manager."))


def days_in_stage(deal: Deal, now) -> int:
    return max((now - deal.stage_entered_at).days, 0)


def duration_text(duration: timedelta | None) -> str:
    """“3 days, 4 hours” for the stage history (minutes under an hour)."""
    if duration is None:
        return ""
    days, seconds = duration.days, duration.seconds
    hours, minutes = seconds // 3600, (seconds % 3600) // 60
    if days:
        text = ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
        if hours:
            text += ", " + ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
        return text
    if hours:
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


# --- the list and the export ---------------------------------------------------------------------


def _filter_form(request) -> DealFilterForm:
    return DealFilterForm(request.GET or None, user=request.user, sort_options=SORT_OPTIONS)


def _sort(form: DealFilterForm) -> SortOption:
    return SORTS.get(form.value("sort") or DEFAULT_SORT, SORTS[DEFAULT_SORT])


def _listed(request, form: DealFilterForm, sort: SortOption):
    """The deals the list (and the export) shows, ready for keyset pages in the chosen order."""
    qs = selectors.deal_list(user=request.user, **form.selector_kwargs())
    if sort.field in SORT_ANNOTATIONS:
        qs = qs.annotate(**{sort.field: SORT_ANNOTATIONS[sort.field]()})
    return qs


@require_GET
@browser_user_required
def deal_list(request):
    form = _filter_form(request)
    sort = _sort(form)
    qs = _listed(request, form, sort)
    try:
        page = paginate(qs, sort=sort, cursor=request.GET.get("cursor") or None, page_size=PAGE_SIZE)
    except ValidationError:
        messages.error(request, _("That page link is no longer valid; showing the first page."))
        page = paginate(qs, sort=sort, cursor=None, page_size=PAGE_SIZE)
    now = timezone.now()
    for deal in page.items:
        deal.days_in_stage = days_in_stage(deal, now)
    export_query = request.GET.copy()
    export_query.pop("cursor", None)
    return render(request, "pipeline/deal_list.html", {
        "form": form, "page": page, "export_query": export_query.urlencode(),
        "contact_filter": form.value("contact"), "company_filter": form.value("company"),
        "currency": settings.CRM_CURRENCY,
    })


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value):
        return value


def _cell(value) -> str:
    """A text cell, defused when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _export_lines(qs, sort: SortOption, header: list[str], labels: dict):
    writer = csv.writer(_Echo())
    # The byte-order mark makes Excel read the file as UTF-8 (Turkish letters intact).
    yield "\ufeff" + writer.writerow(header)
    cursor = None
    while True:
        page = paginate(qs, sort=sort, cursor=cursor, page_size=EXPORT_CHUNK)
        now = timezone.now()
        yield "".join(writer.writerow([
            _cell(deal.name), _cell(deal.pipeline.name), _cell(deal.stage.name), labels[deal.status],
            labels["yes"] if deal.is_stale else labels["no"], days_in_stage(deal, now),
            "" if deal.amount is None else f"{deal.amount:f}", _cell(deal.currency),
            "" if deal.amount is None else f"{deal.weighted_amount:f}",
            deal.expected_close_date.isoformat() if deal.expected_close_date else "",
            _cell(deal.owner or ""), _cell(deal.contact or ""), _cell(deal.company or ""),
        ]) for deal in page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


@require_GET
@browser_user_required
def deal_export(request):
    """The deals the list shows with the same filters and order, every matching row, as a streamed CSV."""
    form = _filter_form(request)
    if form.is_bound and form.errors:
        problems = [f"{form.fields[name].label if name in form.fields else name}: {error}"
                    for name, errors in form.errors.items() for error in errors]
        body = _("The export was not made; correct the filters first:") + "\n" + "\n".join(problems) + "\n"
        return HttpResponse(body, status=400, content_type="text/plain; charset=utf-8")
    sort = _sort(form)
    qs = _listed(request, form, sort)
    # Translated now: the rows are written after the view has returned.
    header = [_("Name"), _("Pipeline"), _("Stage"), _("Status"), _("Stale"), _("Days in stage"), _("Amount"),
              _("Currency"), _("Weighted amount"), _("Expected close date"), _("Owner"), _("Contact"), _("Company")]
    labels = {value: str(label) for value, label in Deal.Status.choices} | {"yes": _("Yes"), "no": _("No")}
    response = StreamingHttpResponse(_export_lines(qs, sort, header, labels), content_type="text/csv; charset=utf-8")
    filename = f"deals-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- create and edit -----------------------------------------------------------------------------


def _visible_id(value) -> int | None:
    value = str(value or "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def _create_initial(request) -> dict:
    """What the new-deal form starts with: the default pipeline and its first stage, and the contact or
    company it was opened from (``?contact=<id>`` / ``?company=<id>``)."""
    initial = {"currency": settings.CRM_CURRENCY}
    pipeline = None
    if request.GET.get("pipeline"):
        pipeline = Pipeline.objects.filter(pk=_visible_id(request.GET["pipeline"]) or 0).first()
    pipeline = pipeline or services.default_pipeline()
    if pipeline is not None:
        initial["pipeline"] = pipeline.pk
        first = pipeline.stages.filter(kind=Stage.Kind.OPEN).order_by("order", "id").first()
        initial["stage"] = first.pk if first else None
    if "contact" in request.GET:
        contact = contacts_visible_to(request.user).filter(pk=_visible_id(request.GET["contact"]) or 0).first()
        if contact is None:
            messages.warning(request, _("The contact to start from was not found; choose one below."))
        else:
            initial.update(contact=contact.pk, company=contact.company_id, lead_source=contact.lead_source_id)
    if "company" in request.GET:
        company = companies_visible_to(request.user).filter(pk=_visible_id(request.GET["company"]) or 0).first()
        if company is None:
            messages.warning(request, _("The company to start from was not found; choose one below."))
        else:
            initial["company"] = company.pk
            initial.setdefault("lead_source", company.lead_source_id)
    return initial


def _form_view(request, *, instance: Deal | None):
    rules = EntityRules.load(Entity.DEAL)
    data = request.POST if request.method == "POST" else None
    kwargs = {} if instance is not None or data is not None else {"initial": _create_initial(request)}
    form = DealForm(data, user=request.user, rules=rules, instance=instance, **kwargs)
    if data is not None and form.is_valid():
        try:
            if instance is None:
                deal = services.deal_create(actor=request.user, data=form.to_data())
            else:
                deal = services.deal_update(actor=request.user, deal=instance, data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Saved “%(name)s”.") % {"name": deal})
            return redirect("deal-detail", pk=deal.pk)
    status = INVALID if data is not None else 200
    return render(request, "pipeline/deal_form.html", {"form": form, "record": instance, "rules": rules,
                                                        "currencies": CURRENCIES}, status=status)


@browser_user_required
def deal_create(request):
    return _form_view(request, instance=None)


@browser_user_required
def deal_edit(request, pk: int):
    deal = _deal_for(request, pk)
    _require_edit(request, deal)
    return _form_view(request, instance=deal)


@require_GET
@browser_user_required
def deal_contact_options(request):
    """``<option>``s of visible contacts matching a search, for the contact drop-down of the deal forms."""
    term = (request.GET.get("contact_q") or "")[:200]
    qs = contacts_visible_to(request.user).filter(archived_at__isnull=True)
    if term.strip():
        qs = qs.filter(search_filter(term))
    rows = list(qs.order_by("sort_name", "id").only("id", "first_name", "last_name")[:CONTACT_OPTIONS])
    selected = request.GET.get("contact") or ""
    current = None
    if _visible_id(selected) and all(str(r.pk) != selected for r in rows):
        current = contacts_visible_to(request.user).filter(pk=int(selected)).only(
            "id", "first_name", "last_name").first()
    return render(request, "pipeline/partials/deal_contact_options.html",
                  {"rows": rows, "current": current, "selected": selected, "term": term})


# --- the deal page -------------------------------------------------------------------------------


def _stage_bar(deal: Deal, stages: list[Stage]) -> list[dict]:
    """The pipeline's stages in order, each marked done, current or ahead (won and lost at the end)."""
    current = next((s for s in stages if s.pk == deal.stage_id), deal.stage)
    bar = []
    for stage in stages:
        if stage.pk == current.pk:
            state = "current"
        elif stage.kind == Stage.Kind.OPEN and (
            current.kind == Stage.Kind.WON or (current.kind == Stage.Kind.OPEN and
                                               (stage.order, stage.pk) < (current.order, current.pk))
        ):
            state = "done"
        else:
            state = "ahead"
        bar.append({"stage": stage, "state": state})
    return bar


def _timeline(request, deal: Deal, *, activity_form=None) -> dict:
    items = list(selectors.deal_timeline(user=request.user, deal=deal))
    tasks = [a for a in items if a.is_task]
    return {
        "timeline": items,
        "toggle_ids": editable_activity_ids(request.user, tasks) if tasks else set(),
        "activity_form": activity_form or ActivityForm(user=request.user),
        "activity_url": reverse("deal-log-activity", args=[deal.pk]),
        "show_record": True,
    }


def _detail_context(request, deal: Deal, *, move_form=None, fill_form=None, activity_form=None) -> dict:
    rules = EntityRules.load(Entity.DEAL)
    stages = list(Stage.objects.filter(pipeline_id=deal.pipeline_id).order_by("order", "id"))
    can_edit = selectors.can_edit(request.user, deal)
    stage_rows = selectors.stage_history(deal)
    for row in stage_rows:
        row["duration_text"] = duration_text(row["duration"])
    custom_labels = {d.key: d.label for d in rules.custom_fields}
    current = next((s for s in stages if s.pk == deal.stage_id), deal.stage)
    needs = []
    if deal.is_open:
        missing = criteria.missing(deal, [current]) if current.exit_criteria else {}
        needs = [{"label": criteria.label(key, custom_labels), "filled": key not in missing}
                 for key in current.exit_criteria or []]
    return {
        "deal": deal,
        "can_edit": can_edit,
        "stages": stages,
        "stage_bar": _stage_bar(deal, stages),
        "exit_needs": needs,
        "move_form": move_form or (DealMoveForm(deal=deal, stages=stages) if can_edit else None),
        "fill_form": fill_form if fill_form is not None and fill_form.fields else None,
        "custom_values": [(d, (deal.custom_fields or {}).get(d.key)) for d in rules.custom_fields],
        "stage_history": stage_rows,
        "history": list(history.history_for(deal, limit=30)),
        "days_in_stage": days_in_stage(deal, timezone.now()),
        "now": timezone.now(),
        **_timeline(request, deal, activity_form=activity_form),
    }


@require_GET
@browser_user_required
def deal_detail(request, pk: int):
    deal = _deal_for(request, pk)
    return render(request, "pipeline/deal_detail.html", _detail_context(request, deal))


@require_POST
@browser_user_required
def deal_move_stage(request, pk: int):
    """Move the deal through ``deal_move``. A refused move shows what is missing as inputs to fill in place;
    sending them with the move again applies them and moves in one step (or changes nothing)."""
    deal = _deal_for(request, pk)
    _require_edit(request, deal)
    rules = EntityRules.load(Entity.DEAL)
    fillable = fill_names(rules)
    posted = [name for name in fillable if name in request.POST]
    move_form = DealMoveForm(request.POST, deal=deal)
    fill_form = DealForm(request.POST, user=request.user, rules=rules, instance=deal, only=posted)
    forms_valid = move_form.is_valid()
    forms_valid = fill_form.is_valid() and forms_valid
    if forms_valid:
        target = move_form.cleaned_data["stage"]
        try:
            moved = services.deal_move(
                actor=request.user, deal=deal, stage=target, lost_reason=move_form.cleaned_data["lost_reason"],
                lost_note=move_form.cleaned_data["lost_note"], changes=fill_form.changes() or None,
            )
        except ValidationError as exc:
            errors = service_error_fields(exc)
            asked = [name for name in (fill_name(field or "") for field, _message in errors) if name in fillable]
            if any(name not in posted for name in asked):
                # Ask for the newly missing fields too, keeping what was typed in the others.
                fill_form = DealForm(request.POST, user=request.user, rules=rules, instance=deal,
                                     only=list(dict.fromkeys(posted + asked)))
                fill_form.is_valid()
            for field, message in errors:
                name = fill_name(field or "")
                if name in fill_form.fields:
                    fill_form.add_error(name, message)
                else:
                    move_form.add_error(field if field in move_form.fields else None, message)
        else:
            messages.success(request, _("“%(deal)s” moved to “%(stage)s”.") % {"deal": moved, "stage": target.name})
            return redirect("deal-detail", pk=deal.pk)
    context = _detail_context(request, deal, move_form=move_form, fill_form=fill_form)
    return render(request, "pipeline/deal_detail.html", context, status=INVALID)


@require_POST
@browser_user_required
def deal_log_activity(request, pk: int):
    """Log an activity or add a task on a deal; anyone who sees the deal may (as for contacts)."""
    deal = _deal_for(request, pk)
    form = ActivityForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            contact_services.activity_log(
                actor=request.user, kind=data["kind"], subject=data["subject"], body=data["body"], deal=deal,
                occurred_at=data["occurred_at"], assignee=data["assignee"], due_at=data["due_at"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            if not is_htmx(request):
                messages.success(request, _("Saved to the timeline."))
                return redirect(reverse("deal-detail", args=[deal.pk]) + "#timeline")
            form = None
    if is_htmx(request):
        context = _timeline(request, deal, activity_form=form)
        context["just_logged"] = form is None
        return render(request, "contacts/partials/activity_panel.html", context,
                      status=200 if form is None else INVALID)
    context = _detail_context(request, deal, activity_form=form)
    return render(request, "pipeline/deal_detail.html", context, status=INVALID)
