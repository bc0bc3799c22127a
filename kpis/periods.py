"""KPI periods: days, weeks (starting Monday), calendar months and quarters, in the company's time zone.

A period is the half-open range ``[start, end)`` of aware datetimes at local midnight. Each period has a
key that pages and the API use: ``2026-11-23`` (day), ``2026-W48`` (ISO week), ``2026-11`` (month),
``2026-Q4`` (quarter).
"""

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Frequency


def company_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=company_tz())


def _first_day(frequency: str, day: dt.date) -> dt.date:
    if frequency == Frequency.DAILY:
        return day
    if frequency == Frequency.WEEKLY:
        return day - dt.timedelta(days=day.weekday())
    if frequency == Frequency.MONTHLY:
        return day.replace(day=1)
    if frequency == Frequency.QUARTERLY:
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    raise ValueError(f"unknown frequency {frequency!r}")


def _add(frequency: str, day: dt.date, n: int) -> dt.date:
    """The first day ``n`` periods after (or before, when negative) the period starting on ``day``."""
    if frequency == Frequency.DAILY:
        return day + dt.timedelta(days=n)
    if frequency == Frequency.WEEKLY:
        return day + dt.timedelta(weeks=n)
    months = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3}[frequency] * n
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    frequency: str
    first_day: dt.date

    @property
    def start(self) -> dt.datetime:
        return _midnight(self.first_day)

    @property
    def end(self) -> dt.datetime:
        return _midnight(self.end_day)

    @property
    def end_day(self) -> dt.date:
        """The first day after the period (exclusive)."""
        return _add(self.frequency, self.first_day, 1)

    @property
    def last_day(self) -> dt.date:
        return self.end_day - dt.timedelta(days=1)

    def previous(self) -> "Period":
        return Period(self.frequency, _add(self.frequency, self.first_day, -1))

    def next(self) -> "Period":
        return Period(self.frequency, self.end_day)

    def shift(self, n: int) -> "Period":
        return Period(self.frequency, _add(self.frequency, self.first_day, n))

    def as_of(self, now: dt.datetime | None = None) -> dt.datetime:
        """The instant "at the period end" means: the end, or now while the period is still running."""
        now = now or timezone.now()
        return min(self.end, now)

    def has_ended(self, now: dt.datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.end

    def has_started(self, now: dt.datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.start

    @property
    def key(self) -> str:
        day = self.first_day
        if self.frequency == Frequency.DAILY:
            return day.isoformat()
        if self.frequency == Frequency.WEEKLY:
            year, week, _weekday = day.isocalendar()
            return f"{year}-W{week:02d}"
        if self.frequency == Frequency.MONTHLY:
            return f"{day.year}-{day.month:02d}"
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"

    @property
    def label(self) -> str:
        """A short human label: "23 Nov 2026", "Week 48, 2026", "Nov 2026", "Q4 2026"."""
        from django.utils.formats import date_format

        day = self.first_day
        if self.frequency == Frequency.DAILY:
            return date_format(day, "j M Y")
        if self.frequency == Frequency.WEEKLY:
            year, week, _weekday = day.isocalendar()
            return _("Week %(week)s, %(year)s") % {"week": week, "year": year}
        if self.frequency == Frequency.MONTHLY:
            return date_format(day, "M Y")
        return f"Q{(day.month - 1) // 3 + 1} {day.year}"

    def __str__(self):
        return self.key


def containing(frequency: str, instant: dt.datetime | dt.date | None = None) -> Period:
    """The period of ``frequency`` that contains ``instant`` (now by default), in the company's time zone."""
    if instant is None:
        instant = timezone.now()
    day = instant.astimezone(company_tz()).date() if isinstance(instant, dt.datetime) else instant
    return Period(frequency, _first_day(frequency, day))


def last_n(frequency: str, n: int, until: Period | None = None) -> list[Period]:
    """The ``n`` periods ending with ``until`` (the current period by default), oldest first."""
    until = until or containing(frequency)
    return [until.shift(-i) for i in range(n - 1, -1, -1)]


def between(frequency: str, first: dt.date, last: dt.date) -> list[Period]:
    """Every period of ``frequency`` that overlaps the days ``first``..``last``, oldest first."""
    period, periods = containing(frequency, first), []
    while period.first_day <= last:
        periods.append(period)
        period = period.next()
    return periods


_PATTERNS = {
    Frequency.DAILY: re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    Frequency.WEEKLY: re.compile(r"^(\d{4})-W(\d{2})$"),
    Frequency.MONTHLY: re.compile(r"^(\d{4})-(\d{2})$"),
    Frequency.QUARTERLY: re.compile(r"^(\d{4})-Q([1-4])$"),
}
_EXAMPLES = {
    Frequency.DAILY: "2026-11-23", Frequency.WEEKLY: "2026-W48", Frequency.MONTHLY: "2026-11",
    Frequency.QUARTERLY: "2026-Q4",
}


def parse(frequency: str, text: str) -> Period:
    """The period with key ``text``; ValueError with a message a person can act on otherwise."""
    match = _PATTERNS[frequency].match((text or "").strip())
    error = ValueError(
        _("“%(value)s” is not a %(frequency)s period; expected e.g. %(example)s.")
        % {"value": str(text)[:40], "frequency": Frequency(frequency).label.lower(),
           "example": _EXAMPLES[frequency]}
    )
    if not match:
        raise error
    try:
        numbers = [int(group) for group in match.groups()]
        if frequency == Frequency.DAILY:
            day = dt.date(*numbers)
        elif frequency == Frequency.WEEKLY:
            day = dt.date.fromisocalendar(numbers[0], numbers[1], 1)
        elif frequency == Frequency.MONTHLY:
            day = dt.date(numbers[0], numbers[1], 1)
        else:
            day = dt.date(numbers[0], 3 * (numbers[1] - 1) + 1, 1)
    except ValueError:
        raise error from None
    if not 2000 <= day.year <= 2100:
        raise error
    return Period(frequency, day)
