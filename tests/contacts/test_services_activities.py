"""Activities, tasks, last_activity_at and consent, through contacts.services."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from contacts import services
from contacts.models import Activity, Company, Consent, ConsentLog, Contact
from crm_okr.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(alice):
    company = services.company_create(actor=alice, data={"name": "Acme"})
    return services.contact_create(actor=alice, data={"first_name": "Ayşe", "company": company})


def _last(contact):
    return (Contact.objects.get(pk=contact.pk).last_activity_at,
            Company.objects.get(pk=contact.company_id).last_activity_at)


def test_logging_a_call_sets_last_activity_on_contact_and_its_company(alice, contact):
    when = timezone.now() - timedelta(hours=2)
    activity = services.activity_log(actor=alice, kind="call", subject="  Intro   call ", contact=contact,
                                     occurred_at=when, body="Talked about prices")
    assert (activity.subject, activity.owner, activity.team, activity.company) == (
        "Intro call", alice, alice.team, contact.company)
    assert _last(contact) == (when, when)


def test_an_older_activity_does_not_move_last_activity_back(alice, contact):
    recent = timezone.now() - timedelta(hours=1)
    services.activity_log(actor=alice, kind="meeting", subject="Demo", contact=contact, occurred_at=recent)
    services.activity_log(actor=alice, kind="note", subject="Old note", contact=contact,
                          occurred_at=recent - timedelta(days=30))
    assert _last(contact) == (recent, recent)


def test_a_future_meeting_does_not_count_as_last_activity(alice, contact):
    services.activity_log(actor=alice, kind="meeting", subject="Next week", contact=contact,
                          occurred_at=timezone.now() + timedelta(days=7))
    assert _last(contact) == (None, None)


def test_an_open_task_does_not_count_but_a_done_task_does(alice, bob, contact):
    task = services.activity_log(actor=alice, kind="task", subject="Send offer", contact=contact,
                                 due_at=timezone.now() + timedelta(days=1), assignee=bob)
    assert (task.assignee, task.done_at) == (bob, None)
    assert _last(contact) == (None, None)
    services.task_set_done(task=task, actor=bob, done=True)
    task.refresh_from_db()
    assert task.done_at is not None
    assert _last(contact) == (task.done_at, task.done_at)
    assert Event.objects.filter(name="task.completed").count() == 1


def test_ticking_a_task_done_twice_completes_it_once(alice, contact):
    task = services.activity_log(actor=alice, kind="task", subject="Call back", contact=contact,
                                 due_at=timezone.now())
    assert task.assignee == alice
    services.task_set_done(task=task, actor=alice, done=True)
    done_at = Activity.objects.get(pk=task.pk).done_at
    services.task_set_done(task=Activity.objects.get(pk=task.pk), actor=alice, done=True)
    assert Activity.objects.get(pk=task.pk).done_at == done_at
    assert Event.objects.filter(name="task.completed").count() == 1
    services.task_set_done(task=task, actor=alice, done=False)
    assert Activity.objects.get(pk=task.pk).done_at is None


def test_a_task_needs_a_due_time(alice, contact):
    with pytest.raises(ValidationError) as exc:
        services.activity_log(actor=alice, kind="task", subject="Call back", contact=contact)
    assert exc.value.message_dict == {"due_at": ["A task needs a due time."]}
    assert Activity.objects.count() == 0


def test_activity_needs_a_known_kind_and_a_record(alice):
    events_before = Event.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.activity_log(actor=alice, kind="fax", subject="Hello")
    assert exc.value.message_dict == {
        "kind": ["“fax” is not one of: call, email, meeting, note, task."],
        "contact": ["Choose a contact or a company."],
    }
    assert Activity.objects.count() == 0
    assert Event.objects.count() == events_before


def test_only_tasks_can_be_ticked_done(alice, contact):
    call = services.activity_log(actor=alice, kind="call", subject="Hi", contact=contact)
    with pytest.raises(ValidationError) as exc:
        services.task_set_done(task=call, actor=alice, done=True)
    assert exc.value.message_dict == {"kind": ["Only tasks can be marked done."]}
    assert Activity.objects.get(pk=call.pk).done_at is None


def test_a_teammate_who_is_not_the_assignee_cannot_tick_the_task(alice, bob, contact):
    task = services.activity_log(actor=alice, kind="task", subject="Call back", contact=contact,
                                 due_at=timezone.now())
    with pytest.raises(PermissionDenied):
        services.task_set_done(task=task, actor=bob, done=True)
    assert Activity.objects.get(pk=task.pk).done_at is None
    assert _last(contact) == (None, None)


def test_manager_can_tick_a_task_of_the_team(alice, mona, contact):
    task = services.activity_log(actor=alice, kind="task", subject="Call back", contact=contact,
                                 due_at=timezone.now())
    services.task_set_done(task=task, actor=mona, done=True)
    assert Activity.objects.get(pk=task.pk).done_at is not None


# --- consent -------------------------------------------------------------------------------------


def test_consent_is_stored_per_channel_and_every_change_logged(alice, contact):
    services.consent_set(contact=contact, actor=alice, channel="email", status="granted", source=" Web  form ")
    services.consent_set(contact=contact, actor=alice, channel="email", status="withdrawn", source="İYS",
                         note="Asked by phone")
    services.consent_set(contact=contact, actor=alice, channel="sms", status="granted", source="Web form")
    assert list(Consent.objects.order_by("channel").values_list("channel", "status", "source")) == [
        ("email", "withdrawn", "İYS"), ("sms", "granted", "Web form")]
    log = list(ConsentLog.objects.order_by("id").values_list("channel", "status", "source", "note", "actor"))
    assert log == [
        ("email", "granted", "Web form", "", alice.pk),
        ("email", "withdrawn", "İYS", "Asked by phone", alice.pk),
        ("sms", "granted", "Web form", "", alice.pk),
    ]
    assert Event.objects.filter(name="contact.consent_changed").count() == 3


def test_bad_consent_is_refused_and_nothing_logged(alice, contact):
    with pytest.raises(ValidationError) as exc:
        services.consent_set(contact=contact, actor=alice, channel="fax", status="maybe", source=" ")
    assert exc.value.message_dict == {
        "channel": ["“fax” is not one of: email, sms, phone."],
        "status": ["“maybe” is not one of: granted, withdrawn."],
        "source": ["Say where the consent was given or withdrawn (web form, call, İYS, …)."],
    }
    assert Consent.objects.count() == 0
    assert ConsentLog.objects.count() == 0
