"""The Kanban board: a column of open deals per stage; dropping a card moves the deal through ``deal_move``.

The board only reads through ``selectors.board`` (first page of each column, totals in one grouped
query), so it costs the same with 30 or 30,000 open deals. A move goes through the one service
that holds the stage rule; when it refuses, the answer names the missing fields and carries a small
form to fill them in place. The same view serves the board's script (JSON) and a plain form post
(a redirect, or a page with the form), so the board also works without JavaScript.
"""

import html
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from accounts.selectors import assignable_owners, editable_team_ids, teams_visible_to, users_visible_to
from accounts.views import browser_user_required
from contacts.forms import COMPANY_OPTIONS, DATE_INPUT, LimitedChoices, OwnerChoiceField, RecordForm
from contacts.models import CustomFieldDefinition, Entity, LeadSource
from contacts.selectors import can_edit, companies_visible_to, contacts_visible_to
from contacts.templatetags.crm import initials
from pipeline import criteria, selectors, services
from pipeline.models import Deal, LostReason, Pipeline, Stage

# A refused move (or input that does not validate) answers 422, as the other forms of the app do.
INVALID = 422
CONTACT_OPTIONS = 200


# --- forms ---------------------------------------------------------------------------------------


class BoardFilterForm(forms.Form):
    """Owner and team filters; the drop-downs list only the people and teams the user may see."""

    owner = OwnerChoiceField(
        label=gettext_lazy("Owner"), queryset=User.objects.none(), required=False,
        empty_label=gettext_lazy("Any owner"),
        error_messages={"invalid_choice": gettext_lazy("Unknown owner: choose one from the list.")},
    )
    team = forms.ModelChoiceField(
        label=gettext_lazy("Team"), queryset=None, required=False, empty_label=gettext_lazy("Any team"),
        error_messages={"invalid_choice": gettext_lazy("Unknown team: choose one from the list.")},
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            users_visible_to(user).filter(is_active=True).exclude(role=User.Role.INTEGRATION)
            .order_by("first_name", "last_name", "username")
        )
        self.fields["team"].queryset = teams_visible_to(user)

    def value(self, name):
        """The cleaned filter, or None when it is missing or invalid (the error is shown instead)."""
        if not self.is_bound or (not self.is_valid() and name in self.errors):
            return None
        return self.cleaned_data.get(name)

    def query(self) -> str:
        """The filters as a query string, for links and form actions that must keep them."""
        params = {name: self.value(name).pk for name in ("owner", "team") if self.value(name) is not None}
        return "?" + urlencode(params) if params else ""


class MoveForm(forms.Form):
    """A move from the board: the target stage, a lost reason when losing, and fields filled in place.

    Every field but ``stage`` is optional; only the ones sent with a value become ``changes`` for the
    service, so an empty input never clears a field. Field names match the service's error keys
    (``amount``, ``custom_fields.<key>``, …) so each refusal lands next to its input.
    """

    FILLABLE = ["amount", "expected_close_date", "contact", "company", "lead_source", "owner"]

    stage = forms.ModelChoiceField(
        label=gettext_lazy("Stage"), queryset=Stage.objects.none(),
        error_messages={"invalid_choice": gettext_lazy("Unknown stage: choose a stage of this pipeline.")},
    )
    lost_reason = forms.ModelChoiceField(
        label=gettext_lazy("Lost reason"), queryset=LostReason.objects.filter(is_active=True), required=False,
        empty_label=gettext_lazy("Choose a reason…"),
        error_messages={"invalid_choice": gettext_lazy("Unknown reason: choose one from the list.")},
    )
    lost_note = forms.CharField(
        label=gettext_lazy("Note"), max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": gettext_lazy("What happened? (optional)")}),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Amount"), max_digits=16, decimal_places=2, min_value=0, required=False,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
    )
    expected_close_date = forms.DateField(label=gettext_lazy("Expected close date"), required=False,
                                          widget=DATE_INPUT)
    contact = forms.ModelChoiceField(label=gettext_lazy("Contact"), queryset=None, required=False)
    company = forms.ModelChoiceField(label=gettext_lazy("Company"), queryset=None, required=False)
    lead_source = forms.ModelChoiceField(label=gettext_lazy("Lead source"),
                                         queryset=LeadSource.objects.filter(is_active=True), required=False)
    owner = OwnerChoiceField(label=gettext_lazy("Owner"), queryset=User.objects.none(), required=False)

    def __init__(self, *args, user: User, deal: Deal, custom_fields=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.deal = deal
        self.fields["stage"].queryset = Stage.objects.filter(pipeline_id=deal.pipeline_id)
        contacts = contacts_visible_to(user)
        self.fields["contact"].queryset = contacts
        self.fields["contact"].widget.choices = LimitedChoices(
            contacts.filter(archived_at__isnull=True).order_by("sort_name", "id").only("id", "first_name",
                                                                                      "last_name"),
            limit=CONTACT_OPTIONS,
        )
        companies = companies_visible_to(user)
        self.fields["company"].queryset = companies
        self.fields["company"].widget.choices = LimitedChoices(
            companies.filter(archived_at__isnull=True).order_by("sort_name", "id").only("id", "name"),
            limit=COMPANY_OPTIONS,
        )
        self.fields["owner"].queryset = assignable_owners(user).order_by("first_name", "last_name", "username")
        self.custom_keys = []
        for definition in custom_fields:
            field = RecordForm.custom_field(definition)
            field.required = False
            self.fields[criteria.CUSTOM_PREFIX + definition.key] = field
            self.custom_keys.append(definition.key)

    def sent(self, name: str) -> bool:
        return self.is_bound and str(self.data.get(name, "")).strip() != ""

    def changes(self) -> dict:
        """The fields the user filled in, ready for ``deal_move(changes=...)``."""
        data = {name: self.cleaned_data[name] for name in self.FILLABLE
                if self.sent(name) and self.cleaned_data.get(name) is not None}
        custom = {key: self.cleaned_data[criteria.CUSTOM_PREFIX + key] for key in self.custom_keys
                  if self.sent(criteria.CUSTOM_PREFIX + key)}
        if custom:
            data["custom_fields"] = custom
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        for key, messages_ in errors.items():
            for message in messages_:
                self.add_error(key if key in self.fields else None, message)

    def target(self) -> Stage | None:
        """The stage asked for, when it is a known stage of the deal's pipeline."""
        value = self.data.get("stage") if self.is_bound else None
        if value is None or not str(value).isdigit():
            return None
        return next((s for s in self.fields["stage"].queryset if s.pk == int(value)), None)

    def panel_fields(self, target: Stage | None) -> list:
        """The inputs the fill-in panel shows: what the rule asks for, what was sent, and why when losing."""
        names = []
        if target is not None and target.kind == Stage.Kind.LOST:
            names += ["lost_reason", "lost_note"]
        for name in self.fields:
            if name in ("stage", "lost_reason", "lost_note"):
                continue
            if name in self.errors or self.sent(name):
                names.append(name)
        return [self[name] for name in names]

    def summary(self) -> str:
        """One line that says why the move did not happen."""
        for key in ("stage", "__all__", "lost_reason"):
            if key in self.errors:
                return self.errors[key][0]
        if self.errors:
            return _("Check the highlighted fields.")
        return ""


# --- helpers -------------------------------------------------------------------------------------


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


# A pk no real deal has, reversed once per request and replaced by each card's pk: a board of 75
# cards needs two URLs per card, and ``reverse()`` for each would be a large share of the page's time.
_PK = 987654321


def _url_pattern(name: str, fallback: str) -> str:
    try:
        return reverse(name, args=[_PK])
    except NoReverseMatch:  # the deal page may not be wired in yet
        return fallback.replace("{pk}", str(_PK))


def _esc(value) -> str:
    """HTML-escaped text, as Django's ``escape`` (the same ``html.escape``) without its lazy-string wrapper."""
    return html.escape(str(value))


# The calendar icon of a card's expected close date.
_CALENDAR = mark_safe(
    '<svg viewBox="0 0 24 24" width="12" height="12" aria-hidden="true"><path fill="currentColor" d="M7 2v2H5a2 2 '
    '0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2h-2V2h-2v2H9V2H7Zm12 8v10H5V10h14Z"/></svg>'
)


class Cards:
    """The board's cards as HTML, built in Python: one instance per request, called with a list of deals.

    A column shows 15 cards on the first load and 25 per "Load more"; rendered with a template (an
    ``{% include %}`` per card, some 40 variable look-ups and filters each) the cards were most of the
    board's time, so the markup is assembled here from values worked out once per card. Everything
    from the database is escaped (``_esc``); the fixed texts are the same gettext messages the card
    template had, translated and escaped once per request; owners, dates and day counts that many
    cards share are formatted once. The classes, ids and ``data-*`` attributes
    are the ones ``static/js/board.js`` reads: ``deal-card``/``can-move``/``is-locked``/``is-stale``,
    ``id="deal-<pk>"``, ``data-deal``, ``data-stage``, ``data-move-url`` (with the board's filters),
    ``.deal-name``, ``.move-to``/``.move-link`` (a link to the deal page's move form without script)
    and ``.panel-slot``.
    """

    def __init__(self, user: User, *, filter_query: str = "", now=None):
        self.user = user
        self.now = now or timezone.now()
        self.team_ids = editable_team_ids(user)
        self.filter_query = _esc(filter_query)
        self.currency = settings.CRM_CURRENCY
        self.marker = str(_PK)
        self.deal_url = _url_pattern("deal-detail", "/deals/{pk}/")
        self.move_url = reverse("board-move", args=[_PK])
        self.text = {
            "stale": _esc(_("Stale")),
            "no_amount": _esc(_("No amount")),
            "not_in_totals": _esc(_("not in totals")),
            "not_in_totals_title": _esc(
                _("Not included in the column totals, which are in %(currency)s") % {"currency": self.currency}),
            "close_title": _esc(_("Expected close date")),
            "days_title": _esc(_("Time in this stage")),
            "move_to": _esc(_("Move to…")),
        }
        # Values many cards share, worked out once: owners, dates, day counts.
        self._owners, self._days, self._dates = {}, {}, {}

    def __call__(self, deals) -> str:
        return mark_safe("".join([self.card(deal) for deal in deals]))

    def _owner(self, owner: User) -> str:
        html = self._owners.get(owner.pk)
        if html is None:
            title = _("Owner: %(owner)s") % {"owner": owner}
            html = self._owners[owner.pk] = (f'    <span class="avatar avatar-xs" title="{_esc(title)}">'
                                             f'{_esc(initials(owner.get_full_name() or owner.username))}</span>\n')
        return html

    def _date(self, value) -> str:
        """A date (or a time, in the current time zone) as the card template's ``|date:"j M Y"`` showed it."""
        day = timezone.localtime(value).date() if isinstance(value, datetime) else value
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = date_filter(day, "j M Y")
        return text

    def _days_label(self, days: int) -> str:
        label = self._days.get(days)
        if label is None:
            label = self._days[days] = _esc(ngettext("%(n)s day", "%(n)s days", days) % {"n": days})
        return label

    def card(self, deal: Deal) -> str:
        """One card (a deal loaded with its owner, contact and company, as ``selectors.column_page`` does)."""
        text, pk = self.text, str(deal.pk)
        url = _esc(self.deal_url.replace(self.marker, pk))
        stale = deal.is_open and deal.rots_at is not None and deal.rots_at <= self.now
        can_move = can_edit(self.user, deal, team_ids=self.team_ids)
        classes = "deal-card" + (" is-stale" if stale else "") + (" can-move" if can_move else " is-locked")
        move = (f' data-move-url="{_esc(self.move_url.replace(self.marker, pk))}{self.filter_query}"'
                if can_move else "")
        parts = [
            f'<article class="{classes}" id="deal-{pk}" data-deal="{pk}" data-stage="{deal.stage_id}"{move}>\n'
            f'  <div class="deal-top">\n    <a class="deal-name" href="{url}">{_esc(deal.name)}</a>\n'
        ]
        if stale:
            title = _("Stale: longer in this stage than its limit allows (since %(since)s)") % {
                "since": self._date(deal.rots_at)}
            parts.append(f'    <span class="badge tone-red stale-mark" title="{_esc(title)}">{text["stale"]}</span>\n')
        parts.append("  </div>\n")
        if deal.amount is not None:
            amount = f"{floatformat(deal.amount, '2g')} {_esc(deal.currency)}"
            if deal.currency != self.currency:
                amount += (f' <span class="badge tone-amber other-currency" title="{text["not_in_totals_title"]}">'
                           f'{text["not_in_totals"]}</span>')
        else:
            amount = f'<span class="muted">{text["no_amount"]}</span>'
        parts.append(f'  <div class="deal-amount">{amount}</div>\n')
        contact, company = deal.contact, deal.company
        if contact is not None or company is not None:
            who = _esc(contact.full_name) if contact is not None else ""
            if contact is not None and company is not None:
                who += " · "
            if company is not None:
                who += f'<span class="muted">{_esc(company.name)}</span>'
            parts.append(f'  <div class="deal-who">{who}</div>\n')
        parts.append('  <div class="deal-meta">\n')
        if deal.owner is not None:
            parts.append(self._owner(deal.owner))
        close = deal.expected_close_date
        if close:
            parts.append(f'    <span class="deal-close" title="{text["close_title"]}">{_CALENDAR}<time datetime='
                         f'"{close.isoformat()}">{_esc(self._date(close))}</time></span>\n')
        days = self._days_label(max((self.now - deal.stage_entered_at).days, 0))
        parts.append(f'    <span class="deal-days" title="{text["days_title"]}">{days}</span>\n  </div>\n')
        if can_move:
            parts.append(f'  <div class="move-to"><a class="move-link" href="{url}#move-form" aria-expanded="false">'
                         f'{text["move_to"]}</a></div>\n')
        parts.append('  <div class="panel-slot"></div>\n</article>\n')
        return "".join(parts)


def _month_start():
    return timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _closed_columns(stages, totals: dict) -> list[dict]:
    return [{"stage": s, "count": totals.get(s.pk, {}).get("count", 0),
             "total": totals.get(s.pk, {}).get("total") or 0}
            for s in stages if s.kind != Stage.Kind.OPEN]


# --- the board -----------------------------------------------------------------------------------


@require_GET
@browser_user_required
def board(request, pk: int | None = None):
    """The board of one pipeline (the default one at /board/), filtered by owner and team."""
    pipelines = list(Pipeline.objects.order_by("order", "id"))
    if pk is None:
        pipeline = next((p for p in pipelines if p.is_default), pipelines[0] if pipelines else None)
    else:
        pipeline = next((p for p in pipelines if p.pk == pk), None)
        if pipeline is None:
            raise Http404(_("No such pipeline."))
    form = BoardFilterForm(request.GET or None, user=request.user)
    context = {"pipelines": pipelines, "pipeline": pipeline, "form": form, "currency": settings.CRM_CURRENCY}
    if pipeline is None:
        return render(request, "pipeline/board.html", context)
    owner, team = form.value("owner"), form.value("team")
    columns = selectors.board(user=request.user, pipeline=pipeline, owner=owner, team=team,
                              closed_since=_month_start())
    filter_query = form.query()
    cards = Cards(request.user, filter_query=filter_query)
    for column in columns:
        column.cards = cards(column.deals)
    context.update({
        "columns": [c for c in columns if c.stage.is_open],
        "closed": [{"stage": c.stage, "count": c.count, "total": c.total} for c in columns if not c.stage.is_open],
        "stages": [c.stage for c in columns],
        "filter_query": filter_query,
        "other_currency": sum(c.other_currency for c in columns),
    })
    return render(request, "pipeline/board.html", context)


@require_GET
@browser_user_required
def board_column(request, pk: int, stage_pk: int):
    """The next page of one column's cards (the "Load more" button), with the board's filters."""
    pipeline = get_object_or_404(Pipeline, pk=pk)
    stage = get_object_or_404(Stage, pk=stage_pk, pipeline=pipeline, kind=Stage.Kind.OPEN)
    form = BoardFilterForm(request.GET or None, user=request.user)
    if form.is_bound and any(name in form.errors for name in ("owner", "team")):
        return HttpResponse(" ".join(e for errors in form.errors.values() for e in errors), status=400,
                            content_type="text/plain; charset=utf-8")
    deals = selectors.board_deals(user=request.user, pipeline=pipeline, owner=form.value("owner"),
                                  team=form.value("team"))
    try:
        page = selectors.column_page(deals, stage, cursor=request.GET.get("cursor") or None)
    except ValidationError:
        return HttpResponse(_("That page link is no longer valid; reload the board."), status=400,
                            content_type="text/plain; charset=utf-8")
    filter_query = form.query()
    return render(request, "pipeline/partials/board_cards.html", {
        "pipeline": pipeline, "stage": stage, "cards": Cards(request.user, filter_query=filter_query)(page.items),
        "next_cursor": page.next_cursor, "filter_query": filter_query,
    })


# --- moving a deal -------------------------------------------------------------------------------


def _fresh_columns(request, deal: Deal, stage_ids: set[int], filters: BoardFilterForm) -> dict:
    """The totals of the columns a move touched, under the board's filters, with their header HTML."""
    owner, team = filters.value("owner"), filters.value("team")
    stages = {s.pk: s for s in Stage.objects.filter(pk__in=stage_ids)}
    open_ids = [pk for pk, s in stages.items() if s.is_open]
    result = {}
    if open_ids:
        deals = selectors.board_deals(user=request.user, pipeline=deal.pipeline, owner=owner, team=team)
        totals = selectors.column_totals(deals.filter(stage_id__in=open_ids))
        for pk in open_ids:
            row = totals.get(pk, {})
            column = selectors.Column(
                stage=stages[pk], count=row.get("count", 0), total=row.get("total") or 0,
                weighted=(row.get("weighted") or Decimal(0)).quantize(Decimal("0.01")),
                other_currency=row.get("other_currency", 0),
            )
            result[str(pk)] = {
                "count": column.count, "total": str(column.total), "weighted": str(column.weighted),
                "html": render_to_string("pipeline/partials/board_column_head.html",
                                         {"column": column, "currency": settings.CRM_CURRENCY}, request),
            }
    closed_ids = [pk for pk, s in stages.items() if not s.is_open]
    if closed_ids:
        totals = selectors.board_closed_totals(user=request.user, pipeline=deal.pipeline, since=_month_start(),
                                               owner=owner, team=team)
        for item in _closed_columns([stages[pk] for pk in closed_ids], totals):
            result[str(item["stage"].pk)] = {
                "count": item["count"], "total": str(item["total"]),
                "html": render_to_string("pipeline/partials/board_closed_head.html",
                                         {"item": item, "currency": settings.CRM_CURRENCY}, request),
            }
    return result


def _card_html(request, deal: Deal, filters: BoardFilterForm) -> str:
    deal = (selectors.deals_visible_to(request.user).select_related("stage", "owner", "contact", "company")
            .get(pk=deal.pk))
    return Cards(request.user, filter_query=filters.query()).card(deal)


@require_POST
@browser_user_required
def board_move(request, pk: int):
    """Move a deal to a stage (POST ``stage``, optional lost reason and fields filled in place).

    JSON for the board's script: 200 with the card and the fresh totals of both columns, or 422 with
    the errors and a fill-in panel. A plain form post gets a redirect to the board or a page with
    the panel. 404 for a deal the user cannot see, 403 for one they may not change.
    """
    deal = get_object_or_404(selectors.deals_visible_to(request.user).select_related("pipeline", "stage"), pk=pk)
    wants_json = _wants_json(request)
    if not can_edit(request.user, deal):
        message = _("You can see this deal but not move it; ask its owner or your manager.")
        if wants_json:
            return JsonResponse({"ok": False, "message": message}, status=403)
        raise PermissionDenied(message)
    filters = BoardFilterForm(request.GET or None, user=request.user)
    definitions = list(CustomFieldDefinition.objects.filter(entity=Entity.DEAL, is_active=True))
    form = MoveForm(request.POST, user=request.user, deal=deal, custom_fields=definitions,
                    auto_id=f"panel-{deal.pk}-%s")
    source = deal.stage
    if form.is_valid():
        stage = form.cleaned_data["stage"]
        try:
            moved = services.deal_move(
                actor=request.user, deal=deal, stage=stage, lost_reason=form.cleaned_data["lost_reason"],
                lost_note=form.cleaned_data["lost_note"], changes=form.changes(),
            )
        except PermissionDenied as exc:
            if wants_json:
                return JsonResponse({"ok": False, "message": str(exc)}, status=403)
            raise
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _moved(request, moved, source, filters)
    return _refused(request, deal, form, filters, wants_json)


def _moved(request, deal: Deal, source: Stage, filters: BoardFilterForm):
    target = deal.stage
    if source.pk == target.pk:
        message = _("“%(deal)s” is already in “%(stage)s”.") % {"deal": deal.name, "stage": target.name}
    else:
        message = _("Moved “%(deal)s” to “%(stage)s”.") % {"deal": deal.name, "stage": target.name}
    if not _wants_json(request):
        messages.success(request, message)
        return redirect(reverse("board-pipeline", args=[deal.pipeline_id]) + filters.query())
    return JsonResponse({
        "ok": True,
        "message": message,
        "deal": deal.pk,
        "stage": target.pk,
        "from_stage": source.pk,
        "closed": not target.is_open,
        "card": _card_html(request, deal, filters) if target.is_open else "",
        "columns": _fresh_columns(request, deal, {source.pk, target.pk}, filters),
    })


def _refused(request, deal: Deal, form: MoveForm, filters: BoardFilterForm, wants_json: bool):
    target = form.target()
    context = {
        "deal": deal, "form": form, "target": target, "summary": form.summary(),
        "fields": form.panel_fields(target), "filter_query": filters.query(),
        "board_url": reverse("board-pipeline", args=[deal.pipeline_id]) + filters.query(),
    }
    if not wants_json:
        return render(request, "pipeline/board_move.html", context, status=INVALID)
    errors = {key: [str(m) for m in messages_] for key, messages_ in form.errors.items()}
    return JsonResponse({
        "ok": False,
        "message": context["summary"],
        "errors": errors,
        "panel": render_to_string("pipeline/partials/board_panel.html", context, request),
    }, status=INVALID)

