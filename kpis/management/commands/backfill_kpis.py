"""Snapshot past periods: ``manage.py backfill_kpis [--kpi SLUG ...] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--force]``."""

import datetime as dt
import difflib
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kpis import snapshots
from kpis.models import Kpi

MAX_DAYS = 3660  # ten years, the longest window the formula language allows


def _date(option: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: “{text}” is not a date; expected YYYY-MM-DD, e.g. 2026-01-31.") from None


class Command(BaseCommand):
    help = (
        "Compute and store the snapshots of past periods: every period of each KPI's frequency that overlaps "
        "--from..--to (default: the last 365 days up to today) and has started. Rows of ended periods that "
        "are already final are kept unless --force, and so are KPIs taken at a period start (the forecast) for "
        "periods that have already started. A failing KPI is "
        "reported and the others go on. Prints a summary per KPI."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kpi", dest="slugs", action="append", nargs="+", metavar="SLUG", default=[],
                            help="Only these KPIs (by key); default: every active KPI. May be repeated.")
        parser.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="First day (default: a year ago).")
        parser.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="Last day (default: today).")
        parser.add_argument("--force", action="store_true", help="Recompute final rows and start-of-period KPIs of started periods.")

    def handle(self, *args, slugs=(), first=None, last=None, force=False, **options):
        today = timezone.localdate()
        last_day = _date("--to", last) if last else today
        first_day = _date("--from", first) if first else last_day - dt.timedelta(days=365)
        if first_day > last_day:
            raise CommandError(f"--from {first_day} is after --to {last_day}.")
        if (last_day - first_day).days > MAX_DAYS:
            raise CommandError(f"--from..--to spans more than {MAX_DAYS} days; backfill in smaller ranges.")
        kpis = self._kpis([slug for group in slugs for slug in group])

        started = time.monotonic()
        outcomes = snapshots.backfill(kpis, first_day, last_day, force=force)
        elapsed = time.monotonic() - started
        self._summary(kpis, outcomes, first_day, last_day, elapsed)

    def _kpis(self, slugs: list[str]) -> list[Kpi]:
        if not slugs:
            return list(Kpi.objects.filter(is_active=True))
        found = {kpi.slug: kpi for kpi in Kpi.objects.filter(slug__in=slugs)}
        unknown = [slug for slug in dict.fromkeys(slugs) if slug not in found]
        if unknown:
            known = list(Kpi.objects.values_list("slug", flat=True))
            hints = []
            for slug in unknown:
                close = difflib.get_close_matches(slug, known, n=1)
                hints.append(f"“{slug}”" + (f" (did you mean “{close[0]}”?)" if close else ""))
            raise CommandError(f"Unknown KPI {', '.join(hints)}. Nothing was computed.")
        return [found[slug] for slug in dict.fromkeys(slugs)]

    def _summary(self, kpis, outcomes, first_day, last_day, elapsed):
        self.stdout.write(f"Backfill {first_day} – {last_day}:")
        by_kpi: dict[int, list] = {}
        for outcome in outcomes:
            by_kpi.setdefault(outcome.kpi.pk, []).append(outcome)
        totals = {"computed": 0, "kept": 0, "failed": 0}
        rows = 0
        for kpi in kpis:
            items = by_kpi.get(kpi.pk, [])
            counts = {status: sum(1 for o in items if o.status == status) for status in totals}
            for status, n in counts.items():
                totals[status] += n
            kpi_rows = sum(len(o.rows) for o in items if o.status == "computed")
            rows += kpi_rows
            ms = sum(o.duration_ms for o in items)
            self.stdout.write(
                f"  {kpi.slug} ({kpi.frequency}): {len(items)} periods — {counts['computed']} computed "
                f"({kpi_rows} rows), {counts['kept']} kept, {counts['failed']} failed; {ms / 1000:.1f} s"
            )
            reasons = sorted({o.reason for o in items if o.status == "kept" and o.reason})
            for reason in reasons:
                self.stdout.write(f"    kept: {reason}")
            for outcome in items:
                if outcome.status == "failed":
                    self.stdout.write(f"    {outcome.period.key}: {outcome.error}")
        line = (f"Total: {totals['computed']} computed ({rows} rows), {totals['kept']} kept, "
                f"{totals['failed']} failed in {elapsed:.1f} s.")
        self.stdout.write(self.style.ERROR(line) if totals["failed"] else self.style.SUCCESS(line))
