"""Check-in reminders: owners of key results kept by hand with no check-in for 7 days get one e-mail (in their
language) and one in-app notice listing them; never twice for the same key result within 7 days.

The Q1 2026 cycle is active from 1 January; the run is on Sunday 15 February 09:00 Istanbul time."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from celery.schedules import crontab

from accounts.models import Notification
from okrs import reminders, services
from okrs.models import KeyResultReminder
from okrs.tasks import send_check_in_reminders
from tests.factories import UserFactory
from tests.okrs.conftest import Q1_START, at

RUN = at(dt.date(2026, 2, 15), 9)
SETUP = at(Q1_START + dt.timedelta(days=1), 10)


@pytest.fixture
def setup(active, sam, alice, bob, charlie, mona, north, make_objective, make_kr, win_rate):
    """Made on 2 January (so nothing is 'new'):

    alice: "Calls" (last check-in 1 Feb: due), "Demos" (check-in 10 Feb: not due), "Launch" (a milestone, no
    check-in: due), "Shipped" (a milestone done: not due); bob: "Referrals" in mona's team objective (no
    check-in: due); mona: "Win rate" measured by a KPI (never reminded); an archived objective's key result
    (alice: not due); charlie: a key result of a closed cycle (not due).
    """
    with time_machine.travel(SETUP, tick=False):
        mine = make_objective(alice, active, title="Close better", level="individual")
        calls = make_kr(alice, mine, title="Calls")
        demos = make_kr(alice, mine, title="Demos")
        launch = make_kr(alice, mine, title="Launch", kind="milestone")
        shipped = make_kr(alice, mine, title="Shipped", kind="milestone")
        services.check_in(actor=alice, key_result=shipped, done=True, now=SETUP)
        team = make_objective(mona, active, title="Grow", level="team", team=north)
        referrals = make_kr(mona, team, title="Referrals", owner=bob)
        make_kr(mona, team, title="Win rate", kpi=win_rate)
        archived = make_objective(alice, active, title="Old", level="individual")
        make_kr(alice, archived, title="Forgotten")
        services.objective_archive(actor=alice, objective=archived)

        old = services.cycle_create(actor=sam, data={"start_date": "2025-10-01"})
        services.cycle_activate(actor=sam, cycle=old, now=at(dt.date(2025, 10, 1)))
        make_kr(charlie, make_objective(charlie, old, title="Past", level="individual"), title="Old calls")
        services.cycle_close(actor=sam, cycle=old, now=SETUP)
    services.check_in(actor=alice, key_result=calls, value="23", now=at(dt.date(2026, 2, 1), 15))
    services.check_in(actor=alice, key_result=demos, value="24", now=at(dt.date(2026, 2, 10), 15))
    return {"calls": calls, "demos": demos, "launch": launch, "referrals": referrals}


def run(when=RUN):
    with time_machine.travel(when, tick=False):
        return reminders.send_reminders()


def by_recipient(mailoutbox):
    return {tuple(message.to): message for message in mailoutbox}


def test_one_reminder_per_owner_listing_their_due_key_results(setup, alice, bob, mailoutbox, settings):
    settings.SITE_URL = "https://crm.example.com"
    assert run() == {"owners": 2, "key_results": 3}

    mails = by_recipient(mailoutbox)
    assert set(mails) == {(alice.email,), (bob.email,)}
    to_alice = mails[(alice.email,)]
    assert to_alice.subject == "2 key results are waiting for your check-in"
    assert "Calls" in to_alice.body and "Launch" in to_alice.body
    for other in ("Demos", "Shipped", "Win rate", "Forgotten", "Old calls", "Referrals"):
        assert other not in to_alice.body
    assert "Last check-in: 1 Feb 2026" in to_alice.body and "none yet" in to_alice.body
    assert f"https://crm.example.com/okrs/key-results/{setup['calls'].pk}/" in to_alice.body
    assert "https://crm.example.com/okrs/mine/" in to_alice.body
    html, mimetype = to_alice.alternatives[0]
    assert mimetype == "text/html"
    assert f'href="https://crm.example.com/okrs/key-results/{setup["launch"].pk}/"' in html
    assert mails[(bob.email,)].subject == "A key result is waiting for your check-in"

    assert sorted(KeyResultReminder.objects.values_list("key_result__title", "user__username")) == [
        ("Calls", "alice"), ("Launch", "alice"), ("Referrals", "bob")]
    notice = Notification.objects.get(user=alice)
    assert notice.text == "2 of your key results have had no check-in for a week: Calls, Launch"
    assert notice.link == "/okrs/mine/"
    assert Notification.objects.get(user=bob).text == (
        "No check-in for a week on your key result “Referrals”: time for an update.")
    assert Notification.objects.count() == 2


def test_never_the_same_key_result_twice_within_seven_days(setup, alice, mailoutbox):
    run()
    mailoutbox.clear()
    assert run() == {"owners": 0, "key_results": 0}
    assert mailoutbox == []
    # On the 21st only Demos is due (its check-in of the 10th is now more than 7 days old).
    assert run(at(dt.date(2026, 2, 21), 9)) == {"owners": 1, "key_results": 1}
    assert "Demos" in mailoutbox[0].body and "Calls" not in mailoutbox[0].body
    mailoutbox.clear()

    # Alice checks in on Calls on the 16th; a week after the first reminder only Launch (and bob's) are due:
    # Demos was reminded the day before.
    services.check_in(actor=alice, key_result=setup["calls"], value="25", now=at(dt.date(2026, 2, 16), 10))
    # A minute before the first run's time on the 22nd still counts as 7 days later (calendar days).
    assert run(at(dt.date(2026, 2, 22), 8) + dt.timedelta(minutes=59)) == {"owners": 2, "key_results": 2}
    to_alice = by_recipient(mailoutbox)[(alice.email,)]
    assert "Launch" in to_alice.body and "Calls" not in to_alice.body and "Demos" not in to_alice.body
    assert KeyResultReminder.objects.filter(key_result=setup["launch"]).count() == 2


def test_a_new_cycle_or_key_result_waits_a_week(active, alice, make_objective, make_kr, mailoutbox):
    with time_machine.travel(at(dt.date(2026, 2, 10), 10), tick=False):
        objective = make_objective(alice, active, title="Fresh", level="individual")
        make_kr(alice, objective, title="New")
    assert run() == {"owners": 0, "key_results": 0}
    assert run(at(dt.date(2026, 2, 17), 10)) == {"owners": 1, "key_results": 1}
    assert [m.to for m in mailoutbox] == [[alice.email]]


def test_closed_and_planning_cycles_are_skipped(setup, sam, active, mailoutbox):
    with time_machine.travel(at(dt.date(2026, 2, 14)), tick=False):
        services.cycle_close(actor=sam, cycle=active)
    assert run() == {"owners": 0, "key_results": 0}
    assert mailoutbox == [] and not Notification.objects.exists()


def test_the_reminder_is_in_the_owners_language(setup, alice, bob, mailoutbox):
    bob.language = "tr"
    bob.save(update_fields=["language"])
    run()
    mails = by_recipient(mailoutbox)
    assert '<html lang="tr">' in mails[(bob.email,)].alternatives[0][0]
    assert '<html lang="en">' in mails[(alice.email,)].alternatives[0][0]
    # The text of the notice is stored untranslated and shown in the reader's language.
    assert Notification.objects.get(user=bob).message == reminders.ONE_MESSAGE


def test_an_owner_without_an_address_gets_the_notice_only(active, mailoutbox, make_objective, make_kr, north):
    nomail = UserFactory(username="nomail", team=north, email="")
    with time_machine.travel(SETUP, tick=False):
        make_kr(nomail, make_objective(nomail, active, title="Quiet", level="individual"), title="Visits")
    assert run() == {"owners": 1, "key_results": 1}
    assert mailoutbox == []
    assert Notification.objects.get(user=nomail).params == {"count": 1, "titles": "Visits"}


def test_a_failing_owner_is_retried_next_time_and_the_others_still_get_theirs(setup, alice, bob, mailoutbox,
                                                                              monkeypatch):
    real = reminders.build_message

    def broken(user, key_results):
        if user == alice:
            raise RuntimeError("template error")
        return real(user, key_results)

    monkeypatch.setattr(reminders, "build_message", broken)
    assert run() == {"owners": 1, "key_results": 1}
    assert [m.to for m in mailoutbox] == [[bob.email]]
    assert not KeyResultReminder.objects.filter(user=alice).exists()
    assert not Notification.objects.filter(user=alice).exists()

    monkeypatch.setattr(reminders, "build_message", real)
    assert run(RUN + dt.timedelta(hours=1)) == {"owners": 1, "key_results": 2}


def test_the_due_list_is_one_query(setup, django_assert_num_queries):
    with time_machine.travel(RUN, tick=False), django_assert_num_queries(1):
        due = reminders.due_key_results()
    assert [kr.title for kr in due] == ["Calls", "Launch", "Referrals"]
    assert due[0].last_check_in == at(dt.date(2026, 2, 1), 15)
    assert due[0].current_value == Decimal("23")


def test_the_task_runs_daily_at_nine_on_the_batch_queue(setup, mailoutbox):
    from crm_okr.celery import app

    entry = app.conf.beat_schedule["okr-check-in-reminders"]
    assert entry["task"] == send_check_in_reminders.name == "okrs.tasks.send_check_in_reminders"
    assert entry["schedule"] == crontab(minute=0, hour=9)
    assert entry["options"] == {"queue": "batch"}
    assert app.conf.task_routes[send_check_in_reminders.name] == {"queue": "batch"}
    assert app.conf.timezone == "Europe/Istanbul"
    with time_machine.travel(RUN, tick=False):
        assert send_check_in_reminders() == {"owners": 2, "key_results": 3}
    assert len(mailoutbox) == 2
