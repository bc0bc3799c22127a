"""Home page tasks, the quick activity form, ticking tasks done in place, and consent on the contact page."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts import services
from contacts.models import Activity, Consent, ConsentLog, Contact
from crm_okr.models import Event

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return response.content.decode()


def field_error(response, name: str) -> str:
    match = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', text(response), re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


@pytest.fixture
def ayse(alice):
    return services.contact_create(actor=alice, data={"first_name": "Ayşe", "last_name": "Yılmaz"})


def task(actor, contact, subject, due_in, assignee=None):
    return services.activity_log(actor=actor, kind="task", subject=subject, contact=contact,
                                 due_at=timezone.now() + due_in, assignee=assignee)


# --- home --------------------------------------------------------------------------------------


def test_home_lists_my_open_tasks_overdue_first_and_highlighted(client_for, alice, ayse):
    task(alice, ayse, "Later", timedelta(days=3))
    task(alice, ayse, "Overdue", timedelta(days=-2))
    task(alice, ayse, "Soon", timedelta(hours=2))
    done = task(alice, ayse, "Already done", timedelta(days=-1))
    services.task_set_done(task=done, actor=alice, done=True)

    html = text(client_for(alice).get("/"))

    subjects = re.findall(r'<div class="task-subject">([^<]+)</div>', html)
    assert subjects == ["Overdue", "Soon", "Later"]
    assert re.search(r'<tr id="task-\d+" class="task-row is-overdue">', html)
    assert html.count("is-overdue") == 1
    assert re.search(r'<span class="stat-label">Overdue</span><span class="stat-value">1</span>', html)


def test_home_shows_only_my_tasks_and_my_recent_activity(client_for, alice, bob, ayse):
    task(bob, ayse, "Bob's own task", timedelta(days=1))
    task(bob, ayse, "For Alice from Bob", timedelta(days=1), assignee=alice)
    services.activity_log(actor=alice, kind="call", subject="Called about the offer", contact=ayse)
    services.activity_log(actor=bob, kind="note", subject="Bob's note", contact=ayse)

    html = text(client_for(alice).get("/"))

    assert "For Alice from Bob" in html and "Bob&#x27;s own task" not in html
    assert "Called about the offer" in html and "Bob&#x27;s note" not in html


def test_tick_a_task_done_in_place_returns_the_updated_row(client_for, alice, ayse):
    todo = task(alice, ayse, "Send the offer", timedelta(days=-1))

    response = client_for(alice).post(f"/tasks/{todo.pk}/toggle/", {"done": "1", "view": "home"}, **HTMX)

    todo.refresh_from_db()
    assert response.status_code == 200
    assert todo.done_at is not None
    html = text(response)
    assert html.lstrip().startswith(f'<tr id="task-{todo.pk}" class="task-row is-done">')
    assert 'name="done" value="0"' in html and "<html" not in html
    ayse.refresh_from_db()
    assert ayse.last_activity_at == todo.done_at
    assert Event.objects.filter(name="task.completed", subject_id=todo.pk).count() == 1


def test_untick_opens_the_task_again(client_for, alice, ayse):
    todo = task(alice, ayse, "Call back", timedelta(days=1))
    client = client_for(alice)
    client.post(f"/tasks/{todo.pk}/toggle/", {"done": "1"}, **HTMX)

    response = client.post(f"/tasks/{todo.pk}/toggle/", {"done": "0"}, **HTMX)

    todo.refresh_from_db()
    assert todo.done_at is None
    assert f'id="activity-{todo.pk}"' in text(response)


def test_tick_without_javascript_redirects_back(client_for, alice, ayse):
    todo = task(alice, ayse, "Call back", timedelta(days=1))

    response = client_for(alice).post(f"/tasks/{todo.pk}/toggle/", {"done": "1", "next": f"/contacts/{ayse.pk}/"})

    assert response.status_code == 302 and response["Location"] == f"/contacts/{ayse.pk}/"
    response = client_for(alice).post(f"/tasks/{todo.pk}/toggle/", {"done": "0", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_teammate_cannot_tick_someone_elses_task(client_for, alice, bob, ayse):
    todo = task(alice, ayse, "Alice's task", timedelta(days=1))

    response = client_for(bob).post(f"/tasks/{todo.pk}/toggle/", {"done": "1"}, **HTMX)

    todo.refresh_from_db()
    assert response.status_code == 403 and todo.done_at is None


def test_ticking_a_call_is_refused(client_for, alice, ayse):
    call = services.activity_log(actor=alice, kind="call", subject="Called", contact=ayse)
    assert client_for(alice).post(f"/tasks/{call.pk}/toggle/", {"done": "1"}).status_code == 403


def test_unknown_task_is_404(client_for, alice):
    assert client_for(alice).post("/tasks/987654/toggle/", {"done": "1"}).status_code == 404


# --- the quick activity form --------------------------------------------------------------------


def test_log_a_call_from_the_contact_page_shows_it_on_the_timeline(client_for, alice, ayse):
    response = client_for(alice).post(f"/contacts/{ayse.pk}/activities/",
                                      {"kind": "call", "subject": "Discussed the renewal", "body": "Wants 10 %"},
                                      **HTMX)

    activity = Activity.objects.get()
    assert response.status_code == 200
    assert (activity.kind, activity.subject, activity.body, activity.owner, activity.contact) == (
        "call", "Discussed the renewal", "Wants 10 %", alice, ayse)
    html = text(response)
    assert html.startswith('<div id="activity-panel">')
    assert "Discussed the renewal" in html and "Saved to the timeline" in html
    ayse.refresh_from_db()
    assert ayse.last_activity_at == activity.occurred_at


def test_timeline_is_newest_first(client_for, alice, ayse):
    now = timezone.now()
    for days, subject in [(3, "Oldest"), (1, "Newest"), (2, "Middle")]:
        services.activity_log(actor=alice, kind="note", subject=subject, contact=ayse,
                              occurred_at=now - timedelta(days=days))

    html = text(client_for(alice).get(f"/contacts/{ayse.pk}/"))

    assert re.findall(r'<strong class="tl-subject">([^<]+)</strong>', html) == ["Newest", "Middle", "Oldest"]


def test_add_a_task_with_assignee_and_due_time(client_for, alice, bob, ayse):
    response = client_for(alice).post(f"/contacts/{ayse.pk}/activities/", {
        "kind": "task", "subject": "Send the contract", "assignee": bob.pk, "due_at": "2031-05-06T14:30",
    })

    todo = Activity.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/contacts/{ayse.pk}/#timeline"
    assert todo.assignee == bob
    assert timezone.localtime(todo.due_at).strftime("%Y-%m-%d %H:%M") == "2031-05-06 14:30"


def test_a_task_without_due_time_is_refused_next_to_the_field(client_for, alice, ayse):
    response = client_for(alice).post(f"/contacts/{ayse.pk}/activities/",
                                      {"kind": "task", "subject": "Someday"}, **HTMX)

    assert response.status_code == 422
    assert "A task needs a due time." in field_error(response, "due_at")
    assert Activity.objects.count() == 0


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"kind": "call", "subject": ""}, "subject", "This field is required"),
    ({"kind": "call", "subject": "s" * 100_000}, "subject", "at most 200 characters"),
    ({"kind": "fax", "subject": "Old school"}, "kind", "Select a valid choice"),
    ({"kind": "call", "subject": "x", "occurred_at": "yesterday-ish"}, "occurred_at", "Enter a valid date/time"),
    ({"kind": "task", "subject": "x", "due_at": "2031-01-01T10:00", "assignee": "999999"}, "assignee",
     "Select a valid choice"),
])
def test_bad_activity_input_is_refused_and_nothing_logged(client_for, alice, ayse, data, field, message):
    response = client_for(alice).post(f"/contacts/{ayse.pk}/activities/", data)

    assert response.status_code == 422
    assert message in field_error(response, field)
    assert Activity.objects.count() == 0
    ayse.refresh_from_db()
    assert ayse.last_activity_at is None


def test_task_cannot_be_given_to_someone_outside_the_users_teams(client_for, alice, charlie, ayse):
    response = client_for(alice).post(f"/contacts/{ayse.pk}/activities/", {
        "kind": "task", "subject": "x", "due_at": "2031-01-01T10:00", "assignee": charlie.pk})
    assert "Select a valid choice" in field_error(response, "assignee")
    assert Activity.objects.count() == 0


def test_teammate_may_log_a_call_on_a_contact_they_see(client_for, bob, ayse):
    response = client_for(bob).post(f"/contacts/{ayse.pk}/activities/", {"kind": "call", "subject": "Covered"})
    assert response.status_code == 302
    assert Activity.objects.get().owner == bob


def test_tasks_on_the_contact_page_can_be_ticked_by_who_may_change_them(client_for, alice, bob, ayse):
    mine = task(alice, ayse, "Mine", timedelta(days=1))

    alice_html = text(client_for(alice).get(f"/contacts/{ayse.pk}/"))
    bob_html = text(client_for(bob).get(f"/contacts/{ayse.pk}/"))

    assert f'action="/tasks/{mine.pk}/toggle/"' in alice_html
    assert f'action="/tasks/{mine.pk}/toggle/"' not in bob_html


def test_log_on_a_company_page(client_for, alice):
    company = services.company_create(actor=alice, data={"name": "Acme"})
    response = client_for(alice).post(f"/companies/{company.pk}/activities/",
                                      {"kind": "meeting", "subject": "Plant visit"}, **HTMX)
    assert response.status_code == 200 and "Plant visit" in text(response)
    assert Activity.objects.get().company == company


# --- consent -----------------------------------------------------------------------------------


def test_grant_and_withdraw_consent_with_a_log(client_for, alice, ayse):
    client = client_for(alice)
    client.post(f"/contacts/{ayse.pk}/consent/", {"channel": "email", "status": "granted", "source": "Web form"})
    response = client.post(f"/contacts/{ayse.pk}/consent/",
                           {"channel": "email", "status": "withdrawn", "source": "Phone call", "note": "No more"},
                           **HTMX)

    assert response.status_code == 200
    consent = Consent.objects.get(contact=ayse, channel="email")
    assert (consent.status, consent.source) == ("withdrawn", "Phone call")
    assert list(ConsentLog.objects.filter(contact=ayse).values_list("status", "source", "actor")) == [
        ("withdrawn", "Phone call", alice.pk), ("granted", "Web form", alice.pk)]
    html = text(response)
    assert html.startswith('<div id="consent-panel">')
    assert "Consent log (2 entries)" in html and "No more" in html


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"channel": "email", "status": "granted", "source": ""}, "source", "This field is required"),
    ({"channel": "fax", "status": "granted", "source": "x"}, "channel", "Select a valid choice"),
    ({"channel": "sms", "status": "maybe", "source": "x"}, "status", "Select a valid choice"),
    ({"channel": "sms", "status": "granted", "source": "s" * 100_000}, "source", "at most 200 characters"),
])
def test_bad_consent_input_changes_nothing(client_for, alice, ayse, data, field, message):
    response = client_for(alice).post(f"/contacts/{ayse.pk}/consent/", data, **HTMX)

    assert response.status_code == 422
    assert message in field_error(response, field)
    assert Consent.objects.count() == 0 and ConsentLog.objects.count() == 0


def test_contact_page_shows_consent_per_channel(client_for, alice, ayse):
    services.consent_set(contact=ayse, actor=alice, channel="sms", status="granted", source="İYS")
    html = text(client_for(alice).get(f"/contacts/{ayse.pk}/"))
    panel = html.split('<div id="consent-panel">', 1)[1]
    assert re.search(r"<th scope=\"row\">SMS</th>\s*<td><span class=\"badge tone-green\">Granted</span>", panel)
    assert re.search(r"<th scope=\"row\">E-mail</th>\s*<td><span class=\"badge tone-slate\">Not asked</span>", panel)


def test_contact_count_unchanged_by_activity_views(client_for, alice, ayse):
    client_for(alice).post(f"/contacts/{ayse.pk}/activities/", {"kind": "note", "subject": "n"})
    assert Contact.objects.count() == 1
