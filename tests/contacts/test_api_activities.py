"""Activities and tasks through the API: who logs, sees and ticks what; filters; bad input."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from contacts import services
from contacts.models import Activity, Contact

pytestmark = pytest.mark.django_db

URL = "/api/v1/activities/"


@pytest.fixture
def contact(alice):
    return services.contact_create(actor=alice, data={"first_name": "Ayşe", "email": "ayse@example.com"})


@pytest.fixture
def task(alice, contact):
    return services.activity_log(actor=alice, kind="task", subject="Send offer", contact=contact,
                                 due_at=timezone.now() + timedelta(days=1))


def ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_teammate_logs_a_call_on_a_visible_contact(api_for, bob, contact):
    response = api_for(bob).post(URL, {"kind": "call", "subject": "  Intro   call ", "contact": contact.pk,
                                       "body": "Interested."}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["subject"], body["owner"], body["team"]) == ("call", "Intro call", bob.pk,
                                                                            contact.team_id)
    contact.refresh_from_db()
    assert contact.last_activity_at == datetime.fromisoformat(body["occurred_at"])


def test_task_gets_the_actor_as_assignee_by_default(api_for, alice, contact):
    due = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    response = api_for(alice).post(URL, {"kind": "task", "subject": "Call back", "contact": contact.pk,
                                         "due_at": due.isoformat()}, format="json")

    assert response.status_code == 201
    task = Activity.objects.get()
    assert (task.assignee, task.due_at, task.done_at) == (alice, due, None)
    # A task is not an activity that happened: the contact's last activity stays empty.
    assert Contact.objects.get().last_activity_at is None


@pytest.mark.parametrize("body, fields", [
    ({"kind": "call", "subject": "x"}, ["contact"]),
    ({"kind": "fax", "subject": "x", "contact": "CONTACT"}, ["kind"]),
    ({"kind": "call", "contact": "CONTACT"}, ["subject"]),
    ({"kind": "call", "subject": "x" * 201, "contact": "CONTACT"}, ["subject"]),
    ({"kind": "call", "subject": "x", "contact": "CONTACT", "body": "x" * 100_000}, ["body"]),
    ({"kind": "call", "subject": "x", "contact": 999999}, ["contact"]),
    ({"kind": "call", "subject": "x", "contact": "CONTACT", "occurred_at": "soon"}, ["occurred_at"]),
    ({"kind": "task", "subject": "x", "contact": "CONTACT"}, ["due_at"]),
    ({"kind": "call", "subject": "x", "contact": "CONTACT", "done_at": "2024-01-01T00:00:00Z", "mood": 1},
     ["mood"]),
    ({"kind": "call", "subject": "x", "contact": "CONTACT", "assignee": 999999}, ["assignee"]),
])
def test_bad_activity_is_refused_naming_the_fields(api_for, alice, contact, body, fields):
    body = {k: (contact.pk if v == "CONTACT" else v) for k, v in body.items()}

    response = api_for(alice).post(URL, body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert not Activity.objects.exists()


def test_outsider_cannot_log_on_a_hidden_contact(api_for, charlie, contact):
    response = api_for(charlie).post(URL, {"kind": "call", "subject": "x", "contact": contact.pk}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["contact"]
    assert not Activity.objects.exists()


@pytest.mark.parametrize("name, status", [
    ("alice", 200), ("bob", 403), ("charlie", 404), ("mona", 200), ("sam", 200), ("integ", 200),
])
def test_only_the_owner_assignee_and_editors_tick_a_task_done(request, api_for, task, name, status):
    response = api_for(request.getfixturevalue(name)).post(f"{URL}{task.pk}/done/")

    assert response.status_code == status
    task.refresh_from_db()
    assert (task.done_at is not None) == (status == 200)
    if status == 200:
        assert response.json()["done_at"] is not None


def test_assignee_ticks_done_and_undone(api_for, alice, bob, contact):
    task = services.activity_log(actor=alice, kind="task", subject="Demo", contact=contact, assignee=bob,
                                 due_at=timezone.now() + timedelta(days=1))
    api = api_for(bob)

    done = api.post(f"{URL}{task.pk}/done/")
    undone = api.post(f"{URL}{task.pk}/undone/")

    assert (done.status_code, undone.status_code) == (200, 200)
    assert undone.json()["done_at"] is None
    task.refresh_from_db()
    assert task.done_at is None


def test_a_call_cannot_be_ticked_done(api_for, alice, contact):
    call = services.activity_log(actor=alice, kind="call", subject="Hi", contact=contact)

    response = api_for(alice).post(f"{URL}{call.pk}/done/")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["kind"]


@pytest.mark.parametrize("name, status", [("alice", 200), ("bob", 200), ("charlie", 404), ("mona", 200)])
def test_activity_detail_visibility(request, api_for, task, name, status):
    assert api_for(request.getfixturevalue(name)).get(f"{URL}{task.pk}/").status_code == status


def test_outsider_sees_no_activities_and_gets_404_on_undone(api_for, charlie, task):
    api = api_for(charlie)

    assert ids(api.get(URL)) == []
    assert api.post(f"{URL}{task.pk}/undone/").status_code == 404


def test_activity_filters(api_for, alice, bob, contact):
    company = services.company_create(actor=alice, data={"name": "Koç"})
    other = services.contact_create(actor=alice, data={"first_name": "Other", "company": company})
    now = timezone.now()
    call = services.activity_log(actor=alice, kind="call", subject="Call", contact=contact,
                                 occurred_at=now - timedelta(days=3))
    note = services.activity_log(actor=bob, kind="note", subject="Note", contact=other,
                                 occurred_at=now - timedelta(days=2))
    on_company = services.activity_log(actor=alice, kind="meeting", subject="Visit", company=company,
                                       occurred_at=now - timedelta(days=1))
    open_task = services.activity_log(actor=alice, kind="task", subject="Open", contact=contact, assignee=bob,
                                      due_at=now + timedelta(days=1))
    done_task = services.activity_log(actor=alice, kind="task", subject="Done", contact=contact,
                                      due_at=now + timedelta(days=5))
    services.task_set_done(task=done_task, actor=alice, done=True)
    api = api_for(alice)

    assert ids(api.get(URL, {"contact": contact.pk, "ordering": "occurred"})) == [
        call.pk, open_task.pk, done_task.pk]
    assert ids(api.get(URL, {"company": company.pk})) == [on_company.pk, note.pk]
    assert ids(api.get(URL, {"kind": ["call", "note"]})) == [note.pk, call.pk]
    assert ids(api.get(URL, {"owner": bob.pk})) == [note.pk]
    assert ids(api.get(URL, {"assignee": bob.pk})) == [open_task.pk]
    assert ids(api.get(URL, {"done": "false"})) == [open_task.pk]
    assert ids(api.get(URL, {"done": "true"})) == [done_task.pk]
    assert ids(api.get(URL, {"due_before": (now + timedelta(days=2)).isoformat()})) == [open_task.pk]
    assert ids(api.get(URL, {"occurred_before": (now - timedelta(hours=36)).isoformat()})) == [note.pk, call.pk]


@pytest.mark.parametrize("params, field", [
    ({"contact": "x"}, "contact"), ({"kind": "fax"}, "kind"), ({"done": "no"}, "done"),
    ({"due_before": "tomorrow"}, "due_before"), ({"ordering": "due"}, "ordering"), ({"subject": "x"}, "subject"),
])
def test_bad_activity_filter_is_a_400(api_for, alice, params, field):
    response = api_for(alice).get(URL, params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
