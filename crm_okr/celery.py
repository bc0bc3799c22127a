"""The Celery app. Periodic jobs are defined here, in one place."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_okr.settings")

app = Celery("crm_okr")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Interactive automations never wait behind a heavy batch job.
app.conf.task_queues = (Queue("interactive"), Queue("batch"))
app.conf.task_routes = {"crm_okr.tasks.sweep_events": {"queue": "interactive"}}
app.conf.beat_schedule = {
    "outbox-sweep": {"task": "crm_okr.tasks.sweep_events", "schedule": 60.0},
}
app.autodiscover_tasks()
