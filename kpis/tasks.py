"""Celery entry points of the KPI app (queue ``batch``, which the worker in scripts/run consumes).

Both are safe to run twice: snapshots upsert on their unique key, and a second report on the same Monday
is only possible through a redelivery, which ``send_monday_report`` opts out of (no late ack).
"""

import logging

from celery import shared_task
from django.db import transaction

from . import periods, report, snapshots
from .models import Kpi

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=900, soft_time_limit=840)
def snapshot_kpis() -> dict:
    """The hourly run: snapshot every active KPI for its current period (and the previous one until final)."""
    outcomes = snapshots.run_snapshots()
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


# Not acks_late: if the worker dies mid-send, a redelivery would send the report twice to the people already
# served; missing one Monday is the lesser harm (the dashboard has the same numbers).
@shared_task(acks_late=False, time_limit=600, soft_time_limit=540)
def send_monday_report() -> int:
    """Monday 08:00 company time: e-mail each manager their team's KPIs and each admin the company's."""
    return report.send_monday_report()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600, soft_time_limit=540)
def snapshot_kpi_now(kpi_id: int) -> dict:
    """Snapshot one KPI right after it was created or its formula changed, so its pages do not say "no snapshot
    yet" until the hourly run: its current period and the previous one, recomputed with the new formula (final
    rows too). A KPI taken when its period starts only gets its current period, and only when no row exists
    yet (its earlier periods would get today's value)."""
    kpi = Kpi.objects.filter(pk=kpi_id).first()
    if kpi is None:  # deleted in the meantime
        return {}
    current = periods.containing(kpi.frequency)
    if kpi.snapshot_at_start:
        plan, force = [current], False
    else:
        plan, force = [current.previous(), current], True
    counts: dict[str, int] = {}
    for period in plan:
        outcome = snapshots.snapshot_safely(kpi, period, force=force)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def snapshot_soon(kpi: Kpi) -> None:
    """Queue ``snapshot_kpi_now`` for ``kpi`` once the current transaction commits (at once outside one).

    Publishing never fails the save: with the broker down the error is logged and the hourly run catches up.
    """
    kpi_id = kpi.pk

    def publish():
        try:
            snapshot_kpi_now.delay(kpi_id)
        except Exception:  # noqa: BLE001 — Redis down: the hourly snapshot run computes it instead
            logger.warning("KPI %s: could not queue its snapshot; the hourly run will take it", kpi_id, exc_info=True)

    transaction.on_commit(publish)
