"""The Monday report: every Monday morning each active manager gets their team's KPIs by e-mail (admins get
the company's), the change since the week before, and the KPIs that fell outside their benchmark.

Which values: the report covers the week that has just ended (Monday–Sunday, company time). For each KPI,
"this week" is the snapshot of the KPI's period that contains that week's Sunday, compared with:
- weekly KPIs: the week before;
- daily KPIs: the same day a week earlier (e.g. the pipeline value on Sunday vs the Sunday before);
- monthly and quarterly KPIs: the period before (their value is month/quarter to date while it runs).
Each row names both periods, so a reader never mistakes a month for a week. Values come from snapshots only.

Sent through Django's e-mail backend (HTML and text), in each recipient's language.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import Q
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Team, User
from contacts.templatetags.crm import format_percent

from . import periods, selectors
from .dimensions import Dimension
from .models import DimensionKind, Frequency, Kpi
from .periods import Period

logger = logging.getLogger(__name__)


def report_week(now: dt.datetime | None = None) -> Period:
    """The week the report is about: the last full week before ``now``."""
    return periods.containing(Frequency.WEEKLY, now).previous()


def compared_periods(kpi: Kpi, week: Period) -> tuple[Period, Period]:
    """(this, before) for ``kpi`` in the report of ``week`` (see the module docstring)."""
    this = periods.containing(kpi.frequency, week.last_day)
    if kpi.frequency == Frequency.DAILY:
        return this, this.shift(-7)
    return this, this.previous()


@dataclass(frozen=True)
class Row:
    """One KPI in one section of the report (numbers only; formatted in the reader's language later)."""

    kpi: Kpi
    period: Period
    previous_period: Period
    value: Decimal | None
    previous: Decimal | None
    error: str = ""

    @property
    def change(self) -> selectors.Change | None:
        return selectors.change(self.value, self.previous)

    @property
    def status(self) -> str | None:
        return selectors.benchmark_status(self.kpi, self.value)

    @property
    def is_outside(self) -> bool:
        return self.status in (selectors.ABOVE, selectors.BELOW)


@dataclass(frozen=True)
class Section:
    """The KPIs of one team (or the company) for the report week."""

    team: Team | None
    rows: list[Row]

    @property
    def dimension(self) -> Dimension | None:
        return None if self.team is None else Dimension(DimensionKind.TEAM, self.team.pk)

    @property
    def outside(self) -> list[Row]:
        return [row for row in self.rows if row.is_outside]


def report_kpis() -> list[Kpi]:
    """The KPIs the report lists: the active ones, in dashboard order."""
    return list(Kpi.objects.filter(is_active=True).order_by("order", "name", "id"))


def build_section(kpis: list[Kpi], team: Team | None, week: Period) -> Section:
    """The section for ``team`` (None: the company) in one query. A team section lists only the KPIs that
    can be broken down by team."""
    if team is not None:
        kpis = [kpi for kpi in kpis if DimensionKind.TEAM in (kpi.dimensions or [])]
    pairs = {kpi.pk: compared_periods(kpi, week) for kpi in kpis}
    values = selectors.values_for([(kpi, list(pairs[kpi.pk])) for kpi in kpis],
                                  None if team is None else Dimension(DimensionKind.TEAM, team.pk))
    rows = []
    for kpi in kpis:
        this, before = pairs[kpi.pk]
        row, previous = values.get((kpi.pk, this.start)), values.get((kpi.pk, before.start))
        rows.append(Row(kpi, this, before, row.value if row else None, previous.value if previous else None,
                        row.error if row else ""))
    return Section(team, rows)


def recipients():
    """Active managers and admins with an e-mail address, with the teams they manage."""
    return (
        User.objects.filter(is_active=True)
        .filter(Q(role__in=[User.Role.MANAGER, User.Role.ADMIN]) | Q(is_superuser=True))
        .exclude(email="")
        .prefetch_related("managed_teams")
        .order_by("id")
    )


def teams_of(user: User) -> list[Team] | None:
    """The teams a manager's report covers (the teams they manage); None for admins: the company."""
    if user.is_admin:
        return None
    return sorted(user.managed_teams.all(), key=lambda team: (team.name, team.pk))


def dashboard_url(team: Team | None = None) -> str:
    """The absolute address of the KPI dashboard (filtered to the team), from ``settings.SITE_URL``."""
    url = settings.SITE_URL.rstrip("/") + reverse("kpi-dashboard")
    return url if team is None else f"{url}?dimension={DimensionKind.TEAM}:{team.pk}"


def _display_row(row: Row) -> dict:
    kpi, delta = row.kpi, row.change
    better = delta.is_better(kpi) if delta else None
    status_labels = {
        selectors.INSIDE: _("inside"), selectors.ABOVE: _("above"), selectors.BELOW: _("below"),
    }
    return {
        "name": _(kpi.name) if kpi.is_builtin else kpi.name,
        "slug": kpi.slug,
        "period": row.period.label,
        "previous_period": row.previous_period.label,
        "value": selectors.format_value(kpi, row.value),
        "previous": selectors.format_value(kpi, row.previous),
        "change": selectors.format_change(kpi, delta) or "—",
        "change_percent": _percent_change(delta),
        "trend": "" if better is None else ("better" if better else "worse"),
        "status": row.status or "",
        "status_label": status_labels.get(row.status, _("no benchmark band")),
        "benchmark": _benchmark_text(kpi),
        "error": bool(row.error),
    }


def _percent_change(delta: selectors.Change | None) -> str:
    """"+58.3%" / "−18.2%" (Turkish "+%58,3"), "" when there is no percent (the previous value was 0)."""
    if delta is None or delta.percent is None:
        return ""
    sign = "+" if delta.percent > 0 else "−" if delta.percent < 0 else "±"
    return sign + format_percent(floatformat(abs(delta.percent), 1))


def _benchmark_text(kpi: Kpi) -> str:
    low, high = kpi.benchmark_low, kpi.benchmark_high
    if low is not None and high is not None:
        return f"{selectors.format_value(kpi, low, decimals=0)} – {selectors.format_value(kpi, high, decimals=0)}"
    if low is not None:
        return f"≥ {selectors.format_value(kpi, low, decimals=0)}"
    if high is not None:
        return f"≤ {selectors.format_value(kpi, high, decimals=0)}"
    return _(kpi.benchmark_text) if kpi.benchmark_text and kpi.is_builtin else kpi.benchmark_text


def build_message(user: User, sections: list[Section], week: Period) -> EmailMultiAlternatives:
    """The e-mail for ``user`` in their language (the site default when they chose none)."""
    with translation.override(user.language or settings.LANGUAGE_CODE):
        context = {
            "user": user,
            "week": week,
            "week_label": week.label,
            "first_day": week.first_day,
            "last_day": week.last_day,
            "sections": [
                {
                    "title": section.team.name if section.team else _("Company"),
                    "rows": [_display_row(row) for row in section.rows],
                    "outside": [_display_row(row) for row in section.outside],
                    "url": dashboard_url(section.team),
                }
                for section in sections
            ],
            "dashboard_url": dashboard_url(),
            "site_url": settings.SITE_URL,
        }
        subject = _("KPI report: %(week)s") % {"week": week.label}
        text = render_to_string("kpis/email/monday_report.txt", context)
        html = render_to_string("kpis/email/monday_report.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[user.email])
    message.attach_alternative(html, "text/html")
    return message


def send_monday_report(now: dt.datetime | None = None) -> int:
    """Send the report for the week before ``now`` to every recipient; returns how many were sent.

    Sections are built once per team (and once for the company) whoever reads them. A recipient whose
    message fails is logged and skipped; the others still get theirs. Managers who manage no team get none.
    """
    now = now or timezone.now()
    week = report_week(now)
    kpis = report_kpis()
    built: dict[int | None, Section] = {}

    def section(team: Team | None) -> Section:
        key = None if team is None else team.pk
        if key not in built:
            built[key] = build_section(kpis, team, week)
        return built[key]

    sent = 0
    connection = get_connection()
    for user in recipients():
        teams = teams_of(user)
        if teams == []:
            logger.info("Monday report: %s manages no team; nothing to send", user.username)
            continue
        sections = [section(None)] if teams is None else [section(team) for team in teams]
        try:
            message = build_message(user, sections, week)
            message.connection = connection
            sent += message.send()
        except Exception:  # noqa: BLE001 — one bad address or template must not stop everyone's report
            logger.exception("Monday report: could not send to %s", user.username)
    logger.info("Monday report for %s: %s sent", week.key, sent)
    return sent
