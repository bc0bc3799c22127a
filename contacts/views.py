"""Browser pages for contacts, companies, activities and tasks: thin doors to selectors and services.

Every object is fetched through a visibility selector, so a record the user may not see is a 404
on every URL; a record they see but may not change is a 403 on the pages that change it.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.views import browser_user_required
from crm_okr import history
from crm_okr.pagination import SortOption, paginate
from pipeline.selectors import deal_list

from . import selectors, services
from .forms import ActivityForm, CompanyFilterForm, CompanyForm, ConsentForm, ContactFilterForm, ContactForm
from .models import Company, Consent, Contact, Entity
from .rules import EntityRules

PAGE_SIZE = 50
COMPANY_CONTACTS_SHOWN = 50
RECORD_DEALS_SHOWN = 20
# An invalid form answers 422, which htmx is configured (base.html) to swap like a 200.
INVALID = 422

SORT_OPTIONS = [
    SortOption("name", "sort_name", False, gettext_lazy("Name A–Z")),
    SortOption("-name", "sort_name", True, gettext_lazy("Name Z–A")),
    SortOption("newest", "created_at", True, gettext_lazy("Newest first")),
    SortOption("oldest", "created_at", False, gettext_lazy("Oldest first")),
    SortOption("updated", "updated_at", True, gettext_lazy("Recently updated")),
]
SORTS = {o.key: o for o in SORT_OPTIONS}


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _contact_for(request, pk: int) -> Contact:
    """The contact if the user may see it, else 404 (the one access-checked getter of contacts)."""
    qs = selectors.contacts_visible_to(request.user).select_related("company", "owner__team", "lead_source", "team")
    return get_object_or_404(qs, pk=pk)


def _company_for(request, pk: int) -> Company:
    qs = selectors.companies_visible_to(request.user).select_related("owner__team", "lead_source", "team")
    return get_object_or_404(qs, pk=pk)


def _require_edit(request, record) -> None:
    if not selectors.can_edit(request.user, record):
        raise PermissionDenied(_("You can see this record but not change it; ask its owner or your manager."))


def _page(request, qs, form):
    """One keyset page of ``qs`` in the chosen order; a stale or forged cursor falls back to page one."""
    sort = SORTS.get(form.value("sort") or "name", SORTS["name"])
    try:
        return paginate(qs, sort=sort, cursor=request.GET.get("cursor") or None, page_size=PAGE_SIZE)
    except ValidationError:
        messages.error(request, _("That page link is no longer valid; showing the first page."))
        return paginate(qs, sort=sort, cursor=None, page_size=PAGE_SIZE)


# --- home ----------------------------------------------------------------------------------------


@browser_user_required
def home(request):
    """The rep's day: open tasks (overdue first) and what they did lately."""
    tasks = list(selectors.open_tasks(user=request.user))
    now = timezone.now()
    return render(request, "home.html", {
        "tasks": tasks,
        "overdue_count": sum(1 for t in tasks if t.due_at and t.due_at < now),
        "today_count": sum(1 for t in tasks if t.due_at and t.due_at >= now
                           and timezone.localdate(t.due_at) == timezone.localdate(now)),
        "recent": selectors.recent_activity(user=request.user),
    })


# --- lists ---------------------------------------------------------------------------------------


@browser_user_required
def contact_list(request):
    form = ContactFilterForm(request.GET or None, user=request.user, sort_options=SORT_OPTIONS)
    qs = selectors.contact_list(
        user=request.user, search=form.value("q") or "", owner=form.value("owner"), team=form.value("team"),
        lifecycle_stage=form.value("stage") or "", lead_source=form.value("source"), tag=form.value("tag"),
    )
    company = form.value("company")
    if company is not None:
        qs = qs.filter(company=company)
    return render(request, "contacts/contact_list.html", {
        "form": form, "page": _page(request, qs, form), "company_filter": company,
    })


@browser_user_required
def company_list(request):
    form = CompanyFilterForm(request.GET or None, user=request.user, sort_options=SORT_OPTIONS)
    qs = selectors.company_list(
        user=request.user, search=form.value("q") or "", owner=form.value("owner"), team=form.value("team"),
        lead_source=form.value("source"), tag=form.value("tag"),
    )
    return render(request, "contacts/company_list.html", {"form": form, "page": _page(request, qs, form)})


@require_GET
@browser_user_required
def company_options(request):
    """``<option>``s of visible companies matching a search, for the company drop-down of the contact form."""
    term = (request.GET.get("company_q") or "")[:200]
    qs = selectors.companies_visible_to(request.user).filter(archived_at__isnull=True)
    if term.strip():
        qs = qs.filter(selectors.search_filter(term, model=Company))
    rows = list(qs.order_by("sort_name", "id").only("id", "name")[:50])
    selected = request.GET.get("company") or ""
    current = None
    if selected.isdigit() and all(str(r.pk) != selected for r in rows):
        current = selectors.companies_visible_to(request.user).filter(pk=int(selected)).only("id", "name").first()
    return render(request, "contacts/partials/company_options.html",
                  {"rows": rows, "current": current, "selected": selected, "term": term})


def _deals(request, **record) -> dict:
    """The record's deals, newest first, for the Deals section of its page."""
    rows = list(deal_list(user=request.user, **record).order_by("-created_at", "-id")[: RECORD_DEALS_SHOWN + 1])
    return {"deals": rows[:RECORD_DEALS_SHOWN], "more_deals": len(rows) > RECORD_DEALS_SHOWN}


def _timeline(request, **record) -> dict:
    items = list(selectors.timeline(user=request.user, **record))
    tasks = [a for a in items if a.is_task]
    return {"timeline": items, "toggle_ids": selectors.editable_activity_ids(request.user, tasks)}


# --- contact pages -------------------------------------------------------------------------------


def _contact_context(request, contact: Contact, *, activity_form=None, consent_form=None) -> dict:
    rules = EntityRules.load(Entity.CONTACT)
    consents = {c.channel: c for c in contact.consents.all()}
    return {
        "contact": contact,
        "can_edit": selectors.can_edit(request.user, contact),
        "rules": rules,
        "completeness": rules.completeness(contact),
        "custom_values": [(d, (contact.custom_fields or {}).get(d.key)) for d in rules.custom_fields],
        "tags": list(contact.tags.all()),
        "lifecycle": list(contact.lifecycle_changes.select_related("actor")[:20]),
        "consents": [(value, label, consents.get(value)) for value, label in Consent.ConsentChannel.choices],
        "consent_log": list(contact.consent_log.select_related("actor")[:20]),
        "consent_form": consent_form or ConsentForm(),
        "history": list(history.history_for(contact, limit=30)),
        **_timeline(request, contact=contact),
        **_deals(request, contact=contact),
        "activity_form": activity_form or ActivityForm(user=request.user),
        "activity_url": reverse("contact-log-activity", args=[contact.pk]),
        "now": timezone.now(),
    }


@browser_user_required
def contact_detail(request, pk: int):
    contact = _contact_for(request, pk)
    return render(request, "contacts/contact_detail.html", _contact_context(request, contact))


def _record_form_view(request, *, form_class, entity, template, instance=None, create, update, detail_url_name):
    rules = EntityRules.load(entity)
    form = form_class(request.POST or None, user=request.user, rules=rules, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            if instance is None:
                record = create(actor=request.user, data=form.to_data())
            else:
                record = update(instance, actor=request.user, data=form.to_data())
        except ValidationError as exc:
            form.add_service_errors(exc)
        except IntegrityError:
            # Only the e-mail is unique; a concurrent save with the same address lands here.
            form.add_error("email" if "email" in form.fields else None,
                           _("Another record already has this e-mail address."))
        else:
            messages.success(request, _("Saved “%(name)s”.") % {"name": record})
            return redirect(detail_url_name, pk=record.pk)
    status = INVALID if request.method == "POST" else 200
    return render(request, template, {"form": form, "record": instance, "rules": rules}, status=status)


@browser_user_required
def contact_create(request):
    return _record_form_view(
        request, form_class=ContactForm, entity=Entity.CONTACT, template="contacts/contact_form.html",
        create=services.contact_create, update=None, detail_url_name="contact-detail",
    )


@browser_user_required
def contact_edit(request, pk: int):
    contact = _contact_for(request, pk)
    _require_edit(request, contact)
    return _record_form_view(
        request, form_class=ContactForm, entity=Entity.CONTACT, template="contacts/contact_form.html",
        instance=contact, create=None, detail_url_name="contact-detail",
        update=lambda c, **kw: services.contact_update(contact=c, **kw),
    )


@require_POST
@browser_user_required
def contact_archive(request, pk: int):
    contact = _contact_for(request, pk)
    _require_edit(request, contact)
    services.contact_archive(contact=contact, actor=request.user)
    messages.success(request, _("“%(name)s” was archived: it no longer shows in lists.") % {"name": contact})
    return redirect("contact-detail", pk=contact.pk)


@require_POST
@browser_user_required
def contact_log_activity(request, pk: int):
    """Log an activity or add a task on a contact the user can see."""
    contact = _contact_for(request, pk)
    return _log_activity(request, contact=contact)


@require_POST
@browser_user_required
def contact_consent(request, pk: int):
    """Record a grant or withdrawal of consent for one channel (anyone who sees the contact may record it)."""
    contact = _contact_for(request, pk)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            services.consent_set(contact=contact, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            if is_htmx(request):
                return render(request, "contacts/partials/consent_panel.html", _contact_context(request, contact))
            messages.success(request, _("Consent recorded."))
            return redirect(reverse("contact-detail", args=[contact.pk]) + "#consent")
    context = _contact_context(request, contact, consent_form=form)
    template = "contacts/partials/consent_panel.html" if is_htmx(request) else "contacts/contact_detail.html"
    return render(request, template, context, status=INVALID)


# --- company pages -------------------------------------------------------------------------------


def _company_context(request, company: Company, *, activity_form=None) -> dict:
    rules = EntityRules.load(Entity.COMPANY)
    contacts = list(
        selectors.contacts_visible_to(request.user).filter(company=company, archived_at__isnull=True)
        .select_related("owner").order_by("sort_name", "id")[: COMPANY_CONTACTS_SHOWN + 1]
    )
    return {
        "company": company,
        "can_edit": selectors.can_edit(request.user, company),
        "rules": rules,
        "completeness": rules.completeness(company),
        "custom_values": [(d, (company.custom_fields or {}).get(d.key)) for d in rules.custom_fields],
        "tags": list(company.tags.all()),
        "contacts": contacts[:COMPANY_CONTACTS_SHOWN],
        "more_contacts": len(contacts) > COMPANY_CONTACTS_SHOWN,
        "history": list(history.history_for(company, limit=30)),
        **_timeline(request, company=company),
        **_deals(request, company=company),
        "activity_form": activity_form or ActivityForm(user=request.user),
        "activity_url": reverse("company-log-activity", args=[company.pk]),
        "now": timezone.now(),
    }


@browser_user_required
def company_detail(request, pk: int):
    company = _company_for(request, pk)
    return render(request, "contacts/company_detail.html", _company_context(request, company))


@browser_user_required
def company_create(request):
    return _record_form_view(
        request, form_class=CompanyForm, entity=Entity.COMPANY, template="contacts/company_form.html",
        create=services.company_create, update=None, detail_url_name="company-detail",
    )


@browser_user_required
def company_edit(request, pk: int):
    company = _company_for(request, pk)
    _require_edit(request, company)
    return _record_form_view(
        request, form_class=CompanyForm, entity=Entity.COMPANY, template="contacts/company_form.html",
        instance=company, create=None, detail_url_name="company-detail",
        update=lambda c, **kw: services.company_update(company=c, **kw),
    )


@require_POST
@browser_user_required
def company_archive(request, pk: int):
    company = _company_for(request, pk)
    _require_edit(request, company)
    services.company_archive(company=company, actor=request.user)
    messages.success(request, _("“%(name)s” was archived: it no longer shows in lists.") % {"name": company})
    return redirect("company-detail", pk=company.pk)


@require_POST
@browser_user_required
def company_log_activity(request, pk: int):
    company = _company_for(request, pk)
    return _log_activity(request, company=company)


# --- activities and tasks ------------------------------------------------------------------------


def _log_activity(request, *, contact: Contact | None = None, company: Company | None = None):
    record = contact or company
    form = ActivityForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.activity_log(
                actor=request.user, kind=data["kind"], subject=data["subject"], body=data["body"],
                contact=contact, company=company, occurred_at=data["occurred_at"],
                assignee=data["assignee"], due_at=data["due_at"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            if not is_htmx(request):
                messages.success(request, _("Saved to the timeline."))
                name = "contact-detail" if contact is not None else "company-detail"
                return redirect(reverse(name, args=[record.pk]) + "#timeline")
            form = None
    build = _contact_context if contact is not None else _company_context
    context = build(request, record, activity_form=form)
    context["just_logged"] = form is None
    if is_htmx(request):
        return render(request, "contacts/partials/activity_panel.html", context,
                      status=200 if form is None else INVALID)
    template = "contacts/contact_detail.html" if contact is not None else "contacts/company_detail.html"
    return render(request, template, context, status=INVALID)


@require_POST
@browser_user_required
def task_toggle(request, pk: int):
    """Tick a task done (``done=1``) or open it again (``done=0``); htmx gets the updated row back."""
    task = get_object_or_404(
        selectors.activities_visible_to(request.user).select_related("contact", "company", "owner", "assignee"),
        pk=pk,
    )
    if not task.is_task:
        raise PermissionDenied(_("Only tasks can be ticked done."))
    services.task_set_done(task=task, actor=request.user, done=request.POST.get("done", "1") != "0")
    view = request.POST.get("view")
    if is_htmx(request):
        template = "partials/task_row.html" if view == "home" else "contacts/partials/activity_item.html"
        html = render_to_string(template, {"task": task, "item": task, "now": timezone.now(),
                                           "can_toggle": True}, request=request)
        return HttpResponse(html)
    next_url = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("home")
    return redirect(next_url)

