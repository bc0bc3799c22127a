"""Small template helpers for the CRM pages: phone display, badges, links that keep the query string."""

from django import template
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext

from contacts.rules import format_phone
from crm_okr.pagination import page_query

register = template.Library()

# The colour family of each lifecycle stage's badge (CSS classes in app.css).
STAGE_TONES = {
    "subscriber": "slate",
    "lead": "blue",
    "mql": "cyan",
    "sql": "violet",
    "opportunity": "amber",
    "customer": "green",
    "advocate": "teal",
    "churned": "red",
}
KIND_ICONS = {"call": "☎", "email": "✉", "meeting": "◷", "note": "✎", "task": "✓"}


@register.filter
def phone(value: str) -> str:
    """A stored E.164 number as people read it: +90 532 123 45 67."""
    return format_phone(value or "")


@register.filter
def stage_tone(stage: str) -> str:
    return STAGE_TONES.get(stage or "", "slate")


@register.filter
def kind_icon(kind: str) -> str:
    return KIND_ICONS.get(kind or "", "•")


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (custom field values by key)."""
    if not mapping:
        return None
    return mapping.get(key)


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The current query string with some parameters replaced: ``?{% query cursor=page.next_cursor %}``."""
    request = context["request"]
    return page_query(request.GET.dict(), **changes)


@register.filter
def safe_link(value: str) -> str:
    """A notification link, only if it stays on this site (never an open redirect)."""
    if value and value.startswith("/") and url_has_allowed_host_and_scheme(value, allowed_hosts=None):
        return value
    return ""


@register.filter
def section(url_name: str | None) -> str:
    """The top-navigation section a page belongs to, from its URL name."""
    name = url_name or ""
    if name.startswith("contact"):
        return "contacts"
    if name.startswith("compan"):
        return "companies"
    if name.startswith("notification"):
        return "notifications"
    if name.startswith("deal"):
        return "deals"
    if name.startswith("board"):
        return "board"
    if name in {"forecast", "pipeline-review", "win-loss"}:
        return "reports"
    if name.startswith("pipeline-settings"):
        return "settings"
    if name.startswith("kpi"):
        return "kpis"
    if name.startswith("okr"):
        return "okrs"
    return name


@register.filter
def stage_short(contact) -> str:
    """A lifecycle stage label short enough for a badge (MQL, SQL, or the stage's name)."""
    if contact.lifecycle_stage in {"mql", "sql"}:
        return contact.lifecycle_stage.upper()
    return contact.get_lifecycle_stage_display()


@register.filter
def initials(name) -> str:
    parts = str(name or "").split()
    return "".join(p[0] for p in parts[:2]).upper() or "?"


@register.filter
def get_field_label(form, name: str) -> str:
    field = form.fields.get(name)
    return str(field.label) if field is not None and field.label else name


@register.filter
def when(value) -> str:
    """A date and time, with the year only when it is not this year (task due times, timelines)."""
    if not value:
        return ""
    local = timezone.localtime(value)
    return date_filter(local, "j M, H:i" if local.year == timezone.localdate().year else "j M Y, H:i")


def format_percent(number) -> str:
    """A number already formatted as text, with the percent sign where the language puts it (10% / %10)."""
    # Translators: a percentage; Turkish puts the sign first ("%%%(value)s" gives %10).
    return gettext("%(value)s%%") % {"value": number}


@register.filter
def percent(value, decimals=None) -> str:
    """A percentage as the language writes it: ``{{ stage.probability|percent }}`` (10%, Turkish %10);
    ``{{ rate|percent:1 }}`` rounds to one decimal first (as ``floatformat``). Empty for no value."""
    if value is None or value == "":
        return ""
    return format_percent(floatformat(value, decimals) if decimals is not None else value)
