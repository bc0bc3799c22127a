"""Celery entry points of the outbox: they take ids and are safe to run twice."""

from celery import shared_task

from . import events


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=120, soft_time_limit=100)
def dispatch_event(event_id: int) -> bool:
    return events.dispatch(event_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=120, soft_time_limit=100)
def sweep_events() -> int:
    return events.sweep()
