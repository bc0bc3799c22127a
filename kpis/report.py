"""The Monday report: every Monday morning each active manager gets their team's KPIs by e-mail (admins get
the company's), the change since last week, and the KPIs that fell outside their benchmark.

Which values: the report covers the week that has just ended (Monday–Sunday, company time). For each KPI,
"this week" is the snapshot of the KPI's period that contains that week's Sunday, compared with:
- weekly KPIs: the week before;
- daily KPIs: the same day a week earlier (e.g. the pipeline value on Sunday vs the Sunday before);
- monthly and quarterly KPIs: what last Monday's report said for the same period (each report stores its
  values as ``ReportedValue`` rows), so "+3" means "moved by 3 since last week". Without such a report (the
  first Monday, or a new month/quarter began) the period before, labelled so ("vs Oct 2026").
A period still running is marked ("Nov 2026 so far"). The change is computed from the values as shown
(rounded), so "20 vs 12" reads "+8". Each row names what it compares with; values come from snapshots only.

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
from .models import DimensionKind, Frequency, Kpi, ReportedValue
from .periods import Period

logger = logging.getLogger(__name__)


def report_week(now: dt.datetime | None = None) -> Period:
    """The week the report is about: the last full week before ``now``."""
    return periods.containing(Frequency.WEEKLY, now).previous()


def report_day(week: Period) -> dt.date:
    """The Monday the report of ``week`` is sent (what ``ReportedValue.reported_on`` holds)."""
    return week.last_day + dt.timedelta(days=1)


def compared_periods(kpi: Kpi, week: Period) -> tuple[Period, Period]:
    """(this, before) for ``kpi`` in the report of ``week``: ``before`` is the period compared with when there is
    no earlier report to compare with (see the module docstring)."""
    this = periods.containing(kpi.frequency, week.last_day)
    if kpi.frequency == Frequency.DAILY:
        return this, this.shift(-7)
    return this, this.previous()


def compares_with_last_report(kpi: Kpi) -> bool:
    """Monthly and quarterly KPIs run longer than a week: they compare with what last week's report said."""
    return kpi.frequency in (Frequency.MONTHLY, Frequency.QUARTERLY)


@dataclass(frozen=True)
class Row:
    """One KPI in one section of the report (numbers only; formatted in the reader's language later)."""

    kpi: Kpi
    period: Period
    previous_period: Period
    value: Decimal | None
    previous: Decimal | None
    error: str = ""
    # ``previous`` is what last week's report said for the same period (not the period before).
    from_last_report: bool = False
    # The period had not ended when the report was built (month or quarter to date).
    partial: bool = False

    @property
    def change(self) -> selectors.Change | None:
        """From the values as shown (rounded to the KPI's decimals): "20 vs 12" reads "+8"."""
        return selectors.change(selectors.rounded(self.value, self.kpi.decimals),
                                selectors.rounded(self.previous, self.kpi.decimals))

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


def build_section(kpis: list[Kpi], team: Team | None, week: Period, now: dt.datetime | None = None) -> Section:
    """The section for ``team`` (None: the company) in three queries: the snapshots, what last week's report
    said, and storing what this one says (``ReportedValue``). A team section lists only the KPIs that can be
    broken down by team."""
    now = now or timezone.now()
    if team is not None:
        kpis = [kpi for kpi in kpis if DimensionKind.TEAM in (kpi.dimensions or [])]
    kind, member = (DimensionKind.TEAM, team.pk) if team is not None else ("", 0)
    pairs = {kpi.pk: compared_periods(kpi, week) for kpi in kpis}
    values = selectors.values_for([(kpi, list(pairs[kpi.pk])) for kpi in kpis],
                                  None if team is None else Dimension(DimensionKind.TEAM, team.pk))
    sent_on = report_day(week)
    reported = _reported(kpis, pairs, kind, member, sent_on - dt.timedelta(days=7))
    rows = []
    for kpi in kpis:
        this, before = pairs[kpi.pk]
        row, previous = values.get((kpi.pk, this.start)), values.get((kpi.pk, before.start))
        earlier = reported.get(kpi.pk) if compares_with_last_report(kpi) else None
        rows.append(Row(
            kpi, this, before, row.value if row else None,
            earlier.value if earlier is not None else previous.value if previous else None,
            row.error if row else "", from_last_report=earlier is not None, partial=not this.has_ended(now),
        ))
    _remember(rows, kind, member, sent_on, now)
    return Section(team, rows)


def _reported(kpis, pairs, kind: str, member: int, reported_on: dt.date) -> dict:
    """What the report of ``reported_on`` said for each KPI's current period: ``{kpi.id: ReportedValue}``."""
    wanted = [kpi for kpi in kpis if compares_with_last_report(kpi)]
    if not wanted:
        return {}
    condition = Q()
    for kpi in wanted:
        condition |= Q(kpi_id=kpi.pk, period_start=pairs[kpi.pk][0].start)
    rows = ReportedValue.objects.filter(condition, dimension_kind=kind, dimension_id=member, reported_on=reported_on)
    return {row.kpi_id: row for row in rows}


def _remember(rows: list[Row], kind: str, member: int, reported_on: dt.date, now: dt.datetime) -> None:
    """Store what this report says (replacing a report built earlier the same Monday)."""
    if not rows:
        return
    ReportedValue.objects.bulk_create(
        [ReportedValue(kpi=row.kpi, dimension_kind=kind, dimension_id=member, period_start=row.period.start,
                       value=row.value, reported_on=reported_on, reported_at=now) for row in rows],
        update_conflicts=True, unique_fields=["kpi", "dimension_kind", "dimension_id", "period_start", "reported_on"],
        update_fields=["value", "reported_at"],
    )


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
        # Translators: a month or quarter still running, e.g. "Nov 2026 so far".
        "period": _("%(period)s so far") % {"period": row.period.label} if row.partial else row.period.label,
        "previous_period": (_("vs last week's report") if row.from_last_report
                            else _("vs %(period)s") % {"period": row.previous_period.label}),
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


def build_message(user: User, sections: list[Section], week: Period, *, unconverted=()) -> EmailMultiAlternatives:
    """The e-mail for ``user`` in their language (the site default when they chose none); ``unconverted``: the
    currencies whose deal amounts the money KPIs leave out for want of an exchange rate (one line)."""
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
            "unconverted": ", ".join(unconverted),
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
    unconverted = selectors.unconverted_for(kpis, [compared_periods(kpi, week)[0] for kpi in kpis])
    built: dict[int | None, Section] = {}

    def section(team: Team | None) -> Section:
        key = None if team is None else team.pk
        if key not in built:
            built[key] = build_section(kpis, team, week, now)
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
            message = build_message(user, sections, week, unconverted=unconverted)
            message.connection = connection
            sent += message.send()
        except Exception:  # noqa: BLE001 — one bad address or template must not stop everyone's report
            logger.exception("Monday report: could not send to %s", user.username)
    logger.info("Monday report for %s: %s sent", week.key, sent)
    return sent
