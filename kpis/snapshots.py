"""KPI snapshots: the value of each KPI per period and dimension value, stored so trends are cheap to read.

``snapshot_kpi`` computes one KPI for one period (the company, then every member of every dimension kind the
KPI allows, one statement per kind) and upserts the rows on their unique key, so recomputing replaces and
never duplicates. ``run_snapshots`` is what Celery beat runs every hour; ``backfill`` is what the
``backfill_kpis`` command runs. Both keep going when one KPI fails and record the failure on its company row.

Rules:
- A final row (its period had ended when it was computed) is not recomputed unless ``force``.
- A ``snapshot_at_start`` KPI keeps the first row taken in a period (the forecast as it stood when the month
  began) unless ``force``.
- A row with an ``error`` is never kept: the next run tries again.
"""

import datetime as dt
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import dimensions as dims
from . import periods
from .models import Kpi, KpiSnapshot
from .periods import Period

logger = logging.getLogger(__name__)

COMPANY = ("", 0)  # (dimension_kind, dimension_id) of the company-wide row
UPSERT_KEY = ["kpi", "period_start", "dimension_kind", "dimension_id"]
UPSERT_FIELDS = [
    "frequency", "period_end", "dimension_label", "value", "formula_version", "computed_at", "duration_ms",
    "is_final", "error",
]
# Held while a snapshot run is going, so an hourly run that overlaps a slow one skips instead of doubling up.
RUN_LOCK = 0x6B70_6973_6E61_7073  # "kpisnaps"
MAX_ERROR_LENGTH = 2000


@dataclass
class Outcome:
    """What happened to one KPI for one period: ``computed``, ``kept`` (final or taken at the period start)
    or ``failed`` (``error`` says why)."""

    kpi: Kpi
    period: Period
    status: str
    rows: list[KpiSnapshot] = field(default_factory=list)
    error: str = ""
    duration_ms: int = 0
    reason: str = ""  # why a ``kept`` period was not computed (see ``START_ONLY``)


# Why a backfill leaves a snapshot_at_start KPI's started periods alone.
START_ONLY = "taken only when a period starts"


class Refused(Exception):
    """A snapshot was not recomputed because its rows are kept (final, or taken at the period start)."""


@contextmanager
def _evaluation():
    """A read-only transaction (when not already in one) with the KPI statement timeout.

    The timeout is ``SET LOCAL``: it ends with the transaction, and inside an outer transaction (tests,
    a forced backfill) it is put back when the block ends; a failure rolls the savepoint back, which
    restores it as well.
    """
    timeout = int(getattr(settings, "KPI_STATEMENT_TIMEOUT_MS", 30000))
    outer = connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            if not outer:
                cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(
                "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
                [str(timeout)],
            )
            previous = cursor.fetchone()[0]
        yield
        if outer:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def _compile(kpi: Kpi):
    from .formula import compile_formula

    return compile_formula(kpi.formula, slug=kpi.slug)


def _kept_keys(existing: list[KpiSnapshot], kpi: Kpi) -> set[tuple[str, int]]:
    """The rows a run without ``force`` must leave alone."""
    return {
        (row.dimension_kind, row.dimension_id)
        for row in existing
        if not row.error and (row.is_final or kpi.snapshot_at_start)
    }


def _labels(kind: str, ids) -> dict[int, str]:
    return {obj.pk: dims.label(kind, obj) for obj in dims.members(kind).filter(pk__in=list(ids))}


def snapshot_kpi(
    kpi: Kpi, period: Period, *, kinds=None, force: bool = False, now: dt.datetime | None = None, compiled=None
) -> list[KpiSnapshot]:
    """Compute ``kpi`` for ``period`` and upsert its rows: the company row, then one row per member of each
    dimension kind the formula allows (``kinds`` narrows them; ``[]`` = the company only).

    Returns the period's rows after the call (written and kept ones), company row first. Raises
    ``kpis.formula.FormulaError`` or a database error when the KPI cannot be computed (nothing is written
    then; callers that must go on use ``snapshot_safely``). ``now`` decides whether the period has ended
    (the row is then final); ``compiled`` saves compiling the formula again.
    """
    return _snapshot(kpi, period, kinds=kinds, force=force, now=now, compiled=compiled)[0]


def _snapshot(kpi, period, *, kinds, force, now, compiled) -> tuple[list[KpiSnapshot], bool]:
    """``snapshot_kpi``, also saying whether anything was computed (False: the rows were kept)."""
    now = now or timezone.now()
    existing = list(KpiSnapshot.objects.filter(kpi=kpi, period_start=period.start))
    kept = set() if force else _kept_keys(existing, kpi)
    if COMPANY in kept:
        return _ordered(existing), False

    compiled = compiled or _compile(kpi)
    allowed = list(compiled.dimensions)
    wanted = allowed if kinds is None else [kind for kind in allowed if kind in set(kinds)]

    values: dict[tuple[str, int], object] = {}
    timings: dict[tuple[str, int], int] = {}
    started = time.monotonic()
    with _evaluation():
        values[COMPANY] = compiled.evaluate(period, None)
        timings[COMPANY] = _ms_since(started)
        for kind in wanted:
            started = time.monotonic()
            members = compiled.evaluate_members(period, kind)
            elapsed = _ms_since(started)
            for member_id, value in members.items():
                values[(kind, int(member_id))] = value
                # One statement computed every member: each row carries its share of the time.
                timings[(kind, int(member_id))] = elapsed // max(len(members), 1)

    labels = {kind: _labels(kind, [mid for (k, mid) in values if k == kind]) for kind in wanted}
    computed_at = timezone.now()
    final = period.has_ended(now)
    rows = [
        KpiSnapshot(
            kpi=kpi, frequency=period.frequency, period_start=period.start, period_end=period.end,
            dimension_kind=kind, dimension_id=member_id,
            dimension_label=labels[kind].get(member_id, "")[:200] if kind else "",
            value=value, formula_version=kpi.formula_version, computed_at=computed_at,
            duration_ms=timings[(kind, member_id)], is_final=final, error="",
        )
        for (kind, member_id), value in values.items()
        if (kind, member_id) not in kept
    ]
    with transaction.atomic():
        written = KpiSnapshot.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=UPSERT_KEY, update_fields=UPSERT_FIELDS
        )
        # Key results linked to this KPI get their automatic check-in in the same transaction as the
        # snapshot, so neither exists without the other. A failure there must not cost the KPI its value.
        try:
            with transaction.atomic():
                from okrs.services import checkins_from_snapshots  # okrs builds on kpis

                checkins_from_snapshots(written)
        except Exception:  # noqa: BLE001
            logger.exception("KPI %s: automatic check-ins from the %s snapshot failed", kpi.slug, period.key)
    written_keys = {(row.dimension_kind, row.dimension_id) for row in written}
    rows = written + [row for row in existing if (row.dimension_kind, row.dimension_id) not in written_keys]
    return _ordered(rows), True


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _ordered(rows: list[KpiSnapshot]) -> list[KpiSnapshot]:
    return sorted(rows, key=lambda row: (row.dimension_kind != "", row.dimension_kind, row.dimension_id))


def record_failure(kpi: Kpi, period: Period, error: str, *, now: dt.datetime | None = None) -> KpiSnapshot:
    """Write the failure on the company row, never final so the next run retries.

    A value an earlier run computed for the period stays (a failed run does not blank a good number);
    without one the row has no value.
    """
    error = error[:MAX_ERROR_LENGTH] or "error"
    computed_at = now or timezone.now()
    existing = KpiSnapshot.objects.filter(kpi=kpi, period_start=period.start, dimension_kind="", dimension_id=0)
    if existing.update(error=error, computed_at=computed_at, is_final=False):
        return existing.get()
    row = KpiSnapshot(
        kpi=kpi, frequency=period.frequency, period_start=period.start, period_end=period.end,
        dimension_kind="", dimension_id=0, value=None, formula_version=kpi.formula_version,
        computed_at=computed_at, duration_ms=0, is_final=False, error=error,
    )
    KpiSnapshot.objects.bulk_create([row], update_conflicts=True, unique_fields=UPSERT_KEY, update_fields=UPSERT_FIELDS)
    return row


def snapshot_safely(kpi: Kpi, period: Period, *, force: bool = False, now=None, compiled=None) -> Outcome:
    """``snapshot_kpi`` that never raises: a failure is logged, recorded on the company row and returned."""
    started = time.monotonic()
    try:
        rows, computed = _snapshot(kpi, period, kinds=None, force=force, now=now, compiled=compiled)
        return Outcome(kpi, period, "computed" if computed else "kept", rows, duration_ms=_ms_since(started))
    except Exception as exc:  # noqa: BLE001 — one KPI must never stop the others
        logger.exception("KPI %s: snapshot of %s failed", kpi.slug, period.key)
        message = _error_message(exc)
        try:
            record_failure(kpi, period, message, now=now)
        except Exception:  # noqa: BLE001 — the database itself may be gone; the log has it
            logger.exception("KPI %s: could not record the failure", kpi.slug)
        return Outcome(kpi, period, "failed", error=message, duration_ms=_ms_since(started))


def _error_message(exc: Exception) -> str:
    from .formula import FormulaError

    if isinstance(exc, FormulaError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def dependency_order(kpis: list[Kpi], compiled: dict[int, object]) -> list[Kpi]:
    """KPIs with the ones they reference (through ``snapshot()`` or ``kpi()``) first, otherwise in order."""
    by_slug = {kpi.slug: kpi for kpi in kpis}
    ordered: list[Kpi] = []
    seen: set[int] = set()

    def visit(kpi: Kpi, path: tuple[int, ...]) -> None:
        if kpi.pk in seen or kpi.pk in path:  # a cycle is refused on save; never loop here anyway
            return
        for slug in getattr(compiled.get(kpi.pk), "references", None) or []:
            if slug in by_slug:
                visit(by_slug[slug], path + (kpi.pk,))
        seen.add(kpi.pk)
        ordered.append(kpi)

    for kpi in kpis:
        visit(kpi, ())
    return ordered


def _compile_all(kpis: list[Kpi]) -> tuple[dict[int, object], dict[int, Exception]]:
    compiled, errors = {}, {}
    for kpi in kpis:
        try:
            compiled[kpi.pk] = _compile(kpi)
        except Exception as exc:  # noqa: BLE001 — recorded per KPI by the caller
            errors[kpi.pk] = exc
    return compiled, errors


def _run(kpis: list[Kpi], plan, *, force: bool, now) -> list[Outcome]:
    """Snapshot each KPI (dependencies first) for the periods ``plan(kpi)`` gives, never stopping on a failure."""
    compiled, errors = _compile_all(kpis)
    outcomes = []
    for kpi in dependency_order(kpis, compiled):
        for period in plan(kpi):
            if kpi.pk in errors:
                message = _error_message(errors[kpi.pk])
                logger.error("KPI %s: the formula does not compile: %s", kpi.slug, message)
                try:
                    record_failure(kpi, period, message, now=now)
                except Exception:  # noqa: BLE001
                    logger.exception("KPI %s: could not record the failure", kpi.slug)
                outcomes.append(Outcome(kpi, period, "failed", error=message))
                continue
            outcomes.append(snapshot_safely(kpi, period, force=force, now=now, compiled=compiled[kpi.pk]))
    return outcomes


def _has_final_company_row(kpis: list[Kpi], starts: dict[int, dt.datetime]) -> set[int]:
    """Ids of the KPIs whose company row for the given period start is final and has no error (one query)."""
    if not kpis:
        return set()
    condition = Q()
    for kpi in kpis:
        condition |= Q(kpi_id=kpi.pk, period_start=starts[kpi.pk])
    return set(
        KpiSnapshot.objects.filter(condition, dimension_kind="", dimension_id=0, is_final=True, error="")
        .values_list("kpi_id", flat=True)
    )


@contextmanager
def _run_lock():
    """A session-level advisory lock, so two overlapping hourly runs do not compute the same rows twice."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [RUN_LOCK])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [RUN_LOCK])


def run_snapshots(now: dt.datetime | None = None) -> list[Outcome]:
    """The hourly run: every active KPI for the current period of its frequency, and for the previous period
    when that has no final row yet (it ended since the last run, or the last run failed).

    KPIs referenced by others run first. A failing KPI is logged and recorded and the others go on. Returns
    what happened per KPI and period; an empty list when another run holds the lock.
    """
    now = now or timezone.now()
    with _run_lock() as acquired:
        if not acquired:
            logger.warning("KPI snapshots: another run is in progress; skipped")
            return []
        kpis = list(Kpi.objects.filter(is_active=True))
        previous = {kpi.pk: periods.containing(kpi.frequency, now).previous() for kpi in kpis}
        finished = _has_final_company_row(kpis, {pk: period.start for pk, period in previous.items()})

        def plan(kpi: Kpi) -> list[Period]:
            current = periods.containing(kpi.frequency, now)
            # A KPI taken when its period starts is never computed for a period that started before this
            # run (it would store today's forecast as last month's); its current period only when no row
            # exists yet (the first run in the period), as _kept_keys decides.
            if kpi.pk in finished or kpi.snapshot_at_start:
                return [current]
            return [previous[kpi.pk], current]

        outcomes = _run(kpis, plan, force=False, now=now)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    logger.info("KPI snapshots: %s KPI periods, %s failed", len(outcomes), len(failed))
    return outcomes


def backfill(
    kpis: list[Kpi], first_day: dt.date, last_day: dt.date, *, force: bool = False, now: dt.datetime | None = None
) -> list[Outcome]:
    """Snapshot every period of each KPI's frequency that overlaps ``first_day``..``last_day`` and has
    started, oldest first; final rows and rows taken at a period start are kept unless ``force``.

    A ``snapshot_at_start`` KPI (the forecast) reads today's deal status, so computing it for a period that
    started before ``now`` would store today's forecast as that period's: those periods are skipped (outcome
    ``kept`` with ``reason`` = ``START_ONLY``) unless ``force``.
    """
    now = now or timezone.now()
    skipped: list[Outcome] = []

    def plan(kpi: Kpi) -> list[Period]:
        started = [period for period in periods.between(kpi.frequency, first_day, last_day) if period.has_started(now)]
        if kpi.snapshot_at_start and not force:
            skipped.extend(Outcome(kpi, period, "kept", reason=START_ONLY) for period in started if period.start < now)
            started = [period for period in started if period.start >= now]
        return started

    outcomes = _run(list(kpis), plan, force=force, now=now)
    return skipped + outcomes
