"""Domain events written by contacts.services in the same transaction as the change (the outbox)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from contacts import services
from contacts.models import Activity, Contact
from crm_okr.models import Event

pytestmark = pytest.mark.django_db


def test_contact_created_event_carries_the_contact_payload(alice):
    contact = services.contact_create(actor=alice, data={
        "first_name": "Ayşe", "last_name": "Yılmaz", "email": "ayse@example.com", "lifecycle_stage": "mql"})
    event = Event.objects.get()
    assert (event.name, event.subject_type, event.subject_id, event.actor) == (
        "contact.created", "contacts.contact", contact.pk, alice)
    assert event.payload == {
        "name": "Ayşe Yılmaz", "owner_id": alice.pk, "team_id": alice.team_id, "lifecycle_stage": "mql",
        "lead_source_id": None, "email": "ayse@example.com",
    }
    # Not dispatched yet: in these tests the transaction is never committed.
    assert (event.dispatched_at, event.attempts) == (None, 0)


def test_contact_updated_event_names_the_changed_fields(alice, mona):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "city": "Ankara"})
    services.contact_update(contact=contact, actor=mona, data={"city": "İzmir", "job_title": "Buyer"})
    event = Event.objects.get(name="contact.updated")
    assert event.actor == mona
    assert event.payload["changed"] == {
        "city": {"label": "city", "old": "Ankara", "new": "İzmir"},
        "job_title": {"label": "job title", "old": "", "new": "Buyer"},
    }
    assert event.payload["owner_id"] == alice.pk


def test_stage_change_records_updated_and_lifecycle_changed(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    services.contact_update(contact=contact, actor=alice, data={"lifecycle_stage": "sql"})
    assert list(Event.objects.order_by("id").values_list("name", flat=True)) == [
        "contact.created", "contact.updated", "contact.lifecycle_changed"]
    assert Event.objects.get(name="contact.updated").payload["changed"] == {
        "lifecycle_stage": {"label": "lifecycle stage", "old": "Lead", "new": "Sales qualified lead (SQL)"}}


def test_activity_logged_event(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    activity = services.activity_log(actor=alice, kind="call", subject="Intro call", contact=contact)
    event = Event.objects.get(name="activity.logged")
    assert (event.subject_type, event.subject_id, event.actor) == ("contacts.activity", activity.pk, alice)
    assert event.payload == {"kind": "call", "contact_id": contact.pk, "company_id": None, "deal_id": None,
                             "owner_id": alice.pk, "assignee_id": None}


def test_rolled_back_create_leaves_neither_contact_nor_event(alice):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.contact_create(actor=alice, data={"first_name": "Ayşe"})
        services.activity_log(actor=alice, kind="note", subject="x", contact=Contact.objects.get())
        raise RuntimeError("the caller fails after the service returned")
    assert Contact.objects.count() == 0
    assert Activity.objects.count() == 0
    assert Event.objects.count() == 0


def test_refused_create_records_no_event(alice):
    with pytest.raises(Exception):  # noqa: B017 — the ValidationError itself is tested elsewhere
        services.contact_create(actor=alice, data={"first_name": "Ayşe", "phone": "12"})
    assert Event.objects.count() == 0


def test_event_is_sent_after_commit_not_before(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.contact_create(actor=alice, data={"first_name": "Ayşe"})
        assert Event.objects.get().dispatched_at is None
    assert len(callbacks) == 1


def test_event_is_dispatched_in_process_after_commit_in_eager_mode(alice, bob, mona,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_create(actor=mona, data={"first_name": "Ayşe", "owner": bob})
    event = Event.objects.get()
    assert event.dispatched_at is not None
    assert event.attempts == 1
    assert bob.notifications.get().event == event
    assert timezone.now() - event.dispatched_at < timedelta(seconds=30)
