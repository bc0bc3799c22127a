"""The Celery app. Periodic jobs are defined here, in one place."""

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_okr.settings")

app = Celery("crm_okr")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Interactive automations never wait behind a heavy batch job.
app.conf.task_queues = (Queue("interactive"), Queue("batch"))
app.conf.task_routes = {
    "crm_okr.tasks.sweep_events": {"queue": "interactive"},
    "kpis.tasks.snapshot_kpis": {"queue": "batch"},
    "kpis.tasks.snapshot_kpi_now": {"queue": "batch"},
    "kpis.tasks.send_monday_report": {"queue": "batch"},
    "okrs.tasks.send_check_in_reminders": {"queue": "batch"},
}
# Crontab times are in CELERY_TIMEZONE, the company's time zone.
app.conf.beat_schedule = {
    "outbox-sweep": {"task": "crm_okr.tasks.sweep_events", "schedule": 60.0},
    # On the hour, so a period's first run (and a snapshot_at_start KPI's value) is taken right as it starts.
    "kpi-snapshots": {
        "task": "kpis.tasks.snapshot_kpis", "schedule": crontab(minute=0), "options": {"queue": "batch"},
    },
    "kpi-monday-report": {
        "task": "kpis.tasks.send_monday_report", "schedule": crontab(minute=0, hour=8, day_of_week="mon"),
        "options": {"queue": "batch"},
    },
    "okr-check-in-reminders": {
        "task": "okrs.tasks.send_check_in_reminders", "schedule": crontab(minute=0, hour=9),
        "options": {"queue": "batch"},
    },
}
app.autodiscover_tasks()
