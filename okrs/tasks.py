"""Celery entry points of the OKR app (queue ``batch``, which the worker in scripts/run consumes)."""

from celery import shared_task

from . import reminders


# Not acks_late: a redelivery after a crash mid-run would find the reminders already recorded and send nothing
# again anyway (each owner's reminder is recorded in the transaction that sends it).
@shared_task(acks_late=False, time_limit=600, soft_time_limit=540)
def send_check_in_reminders() -> dict:
    """Daily at 09:00 company time: remind the owners of key results kept by hand that got no check-in for a
    week (``okrs.reminders``)."""
    return reminders.send_reminders()
