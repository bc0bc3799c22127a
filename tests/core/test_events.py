"""The outbox without a worker: record, dispatch (idempotent, resumable), sweep, and the notify handler."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Notification
from contacts import services
from crm_okr import events
from crm_okr.models import Event, EventDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def handlers():
    """Register test handlers for "test.*" events; removed afterwards so other tests never see them."""
    added = []

    def add(key, func, name="test.happened"):
        events.subscribe(key, name)(func)
        added.append(key)

    yield add
    for key in added:
        events._handlers.pop(key, None)


def _record(subject, name="test.happened", **kwargs):
    return events.record(name, subject, **kwargs)


def test_record_writes_a_pending_event(alice):
    event = _record(alice, actor=alice, data={"x": 1})
    event.refresh_from_db()
    assert (event.name, event.subject_type, event.subject_id, event.actor, event.payload) == (
        "test.happened", "accounts.user", alice.pk, alice, {"x": 1})
    assert (event.dispatched_at, event.attempts, event.last_error) == (None, 0, "")


def test_dispatch_runs_each_handler_once_and_marks_the_event(alice, handlers):
    calls = []
    handlers("first", lambda e: calls.append(("first", e.pk)))
    handlers("second", lambda e: calls.append(("second", e.pk)))
    event = _record(alice)
    assert events.dispatch(event.pk) is True
    assert events.dispatch(event.pk) is False  # already dispatched: nothing runs again
    event.refresh_from_db()
    assert calls == [("first", event.pk), ("second", event.pk)]
    assert sorted(EventDelivery.objects.filter(event=event).values_list("handler", flat=True)) == ["first", "second"]
    assert (event.attempts, event.last_error) == (1, "")
    assert event.dispatched_at is not None


def test_a_failing_handler_leaves_the_event_pending_and_the_next_dispatch_finishes_it(alice, handlers):
    calls = []
    failures = {"left": 1}

    def flaky(event):
        calls.append("flaky")
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("webhook host down")

    handlers("steady", lambda e: calls.append("steady"))
    handlers("flaky", flaky)
    event = _record(alice)

    assert events.dispatch(event.pk) is False
    event.refresh_from_db()
    assert (event.dispatched_at, event.attempts, event.last_error) == (None, 1, "flaky: webhook host down")
    assert list(EventDelivery.objects.filter(event=event).values_list("handler", flat=True)) == ["steady"]
    assert event in events.pending(older_than=timedelta(0))

    assert events.dispatch(event.pk) is True
    event.refresh_from_db()
    assert (event.attempts, event.last_error) == (2, "")
    assert event.dispatched_at is not None
    # The handler that had succeeded did not run again.
    assert calls == ["steady", "flaky", "flaky"]
    assert EventDelivery.objects.filter(event=event).count() == 2


def test_a_failing_handler_rolls_back_its_own_writes(alice, handlers):
    def half_done(event):
        Notification.objects.create(user=alice, message="half", event=event)
        raise ValueError("boom")

    handlers("half", half_done)
    event = _record(alice)
    assert events.dispatch(event.pk) is False
    assert Notification.objects.count() == 0
    assert EventDelivery.objects.count() == 0


def test_dispatch_of_a_missing_event_is_a_no_op():
    assert events.dispatch(987654321) is False


def test_delivered_handlers_are_skipped_if_an_event_is_dispatched_again(alice, bob, mona):
    contact = services.contact_create(actor=mona, data={"first_name": "Ayşe", "owner": bob})
    event = Event.objects.get(name="contact.created", subject_id=contact.pk)
    assert events.dispatch(event.pk) is True
    # As if a second worker picked up a stale copy of the message: the delivery row stops a second run.
    Event.objects.filter(pk=event.pk).update(dispatched_at=None)
    assert events.dispatch(event.pk) is True
    assert Notification.objects.filter(user=bob).count() == 1
    assert EventDelivery.objects.filter(event=event).count() == 1


def test_notify_new_owner_tells_the_owner_when_someone_else_assigns(alice, bob, mona):
    contact = services.contact_create(actor=mona, data={"first_name": "Ayşe", "last_name": "Yılmaz", "owner": bob})
    own = services.contact_create(actor=alice, data={"first_name": "Self"})
    for event in Event.objects.all():
        events.dispatch(event.pk)
    note = Notification.objects.get()
    assert (note.user, note.link, note.text) == (
        bob, f"/contacts/{contact.pk}/", "A contact was assigned to you: Ayşe Yılmaz")
    assert not Notification.objects.filter(link=f"/contacts/{own.pk}/").exists()


def test_notify_on_reassignment_but_not_on_other_updates(alice, bob, mona):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    services.contact_update(contact=contact, actor=mona, data={"city": "Bursa"})
    services.contact_update(contact=contact, actor=mona, data={"owner": bob})
    for event in Event.objects.all():
        events.dispatch(event.pk)
    assert list(Notification.objects.values_list("user__username", "event__name")) == [("bob", "contact.updated")]


def test_sweep_sends_only_events_older_than_the_delay(alice, settings):
    settings.OUTBOX_SWEEP_AFTER_SECONDS = 60
    old = _record(alice)
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    fresh = _record(alice)
    done = _record(alice)
    Event.objects.filter(pk=done.pk).update(created_at=timezone.now() - timedelta(minutes=5),
                                            dispatched_at=timezone.now())
    assert list(events.pending()) == [Event.objects.get(pk=old.pk)]
    # Eager mode: sweep's send() dispatches in-process.
    assert events.sweep() == 1
    assert Event.objects.get(pk=old.pk).dispatched_at is not None
    assert Event.objects.get(pk=fresh.pk).dispatched_at is None
    assert events.sweep(older_than=timedelta(0)) == 1
    assert events.pending(older_than=timedelta(0)).count() == 0


def test_sweep_respects_the_limit(alice):
    for _ in range(3):
        _record(alice)
    assert events.sweep(older_than=timedelta(0), limit=2) == 2
    assert events.pending(older_than=timedelta(0)).count() == 1


def test_sweep_task_and_dispatch_task_call_the_outbox(alice):
    from crm_okr import tasks

    event = _record(alice)
    assert tasks.dispatch_event(event.pk) is True
    assert tasks.dispatch_event(event.pk) is False
    _record(alice)
    Event.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert tasks.sweep_events() == 1


def test_sweep_stops_at_the_first_event_the_broker_refuses(alice, monkeypatch):
    for _ in range(3):
        _record(alice)
    tried = []

    def broker_down(event_id):
        tried.append(event_id)
        return False

    monkeypatch.setattr(events, "send", broker_down)
    assert events.sweep(older_than=timedelta(0)) == 0
    assert len(tried) == 1
    assert events.pending(older_than=timedelta(0)).count() == 3
