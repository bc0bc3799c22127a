"""Celery entry points of the KPI app (queue ``batch``, which the worker in scripts/run consumes).

Both are safe to run twice: snapshots upsert on their unique key, and a second report on the same Monday
is only possible through a redelivery, which ``send_monday_report`` opts out of (no late ack).
"""

from celery import shared_task

from . import report, snapshots


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
