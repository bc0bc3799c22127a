"""The KPI tasks with a real Celery worker on Redis (the pattern of tests/core/test_outbox_worker.py): the
hourly snapshot task and the Monday report go to the ``batch`` queue, the worker that scripts/run starts
consumes it, and each published task runs exactly once."""

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from crm_okr.celery import app as celery_app
from kpis import periods
from kpis.models import Frequency, Kpi, KpiSnapshot
from kpis.tasks import send_monday_report, snapshot_kpis
from tests.core.test_outbox_worker import broker_url, publishing_to, wait_for, worker  # noqa: F401 (fixtures)
from tests.factories import ContactFactory

ROOT = Path(__file__).resolve().parents[2]

# The flush after each test drops the built-in KPIs; tests/conftest.py puts them back.
pytestmark = pytest.mark.django_db(transaction=True)


def test_tasks_are_routed_to_the_batch_queue_that_scripts_run_consumes():
    queues = re.search(r"celery -A crm_okr worker -Q (\S+)", (ROOT / "scripts/run").read_text()).group(1)
    for name in ("kpis.tasks.snapshot_kpis", "kpis.tasks.send_monday_report"):
        queue = celery_app.amqp.router.route({}, name)["queue"]
        assert queue.name == "batch" and "batch" in queues.split(",")
    schedule = celery_app.conf.beat_schedule
    assert schedule["kpi-snapshots"]["task"] == "kpis.tasks.snapshot_kpis"
    assert str(schedule["kpi-snapshots"]["schedule"]) == "<crontab: 0 * * * * (m/h/dM/MY/d)>"  # hourly
    monday = schedule["kpi-monday-report"]["schedule"]
    assert str(monday) == "<crontab: 0 8 * * mon (m/h/dM/MY/d)>"
    assert str(celery_app.conf.timezone) == "Europe/Istanbul"  # company time


def test_the_worker_takes_the_snapshots_once(worker, broker_url, alice):  # noqa: F811
    Kpi.objects.filter(is_builtin=True).update(is_active=False)
    kpi = Kpi.objects.create(slug="new-contacts", name="New contacts", formula="count(contacts)",
                             frequency=Frequency.WEEKLY)
    week = periods.containing(Frequency.WEEKLY)
    ContactFactory(owner=alice, created_at=max(week.start, timezone.now() - dt.timedelta(minutes=1)))

    with publishing_to(broker_url):
        result = snapshot_kpis.apply_async()
        report = send_monday_report.apply_async()
        wait_for(lambda: f"[{result.id}] succeeded" in worker.output(), what="the worker to take the snapshots")
        wait_for(lambda: f"[{report.id}] succeeded" in worker.output(), what="the worker to send the report")

    company = KpiSnapshot.objects.get(kpi=kpi, period_start=week.start, dimension_kind="")
    assert (company.value, company.error) == (Decimal("1"), "")
    # The previous week (no final row yet) was taken too: 2 periods × (company + North + alice) rows.
    assert KpiSnapshot.objects.filter(kpi=kpi).count() == 2 * 3
    log = worker.output()
    assert log.count(f"[{result.id}] received") == 1  # not delivered to a second queue as well
    assert f"Task kpis.tasks.snapshot_kpis[{result.id}] succeeded" in log
    assert log.count(f"[{report.id}] received") == 1
