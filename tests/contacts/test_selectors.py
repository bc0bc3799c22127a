"""contacts.selectors: who sees what (one selector per model), who edits what, and search."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts import selectors, services
from contacts.models import Contact
from tests.factories import (
    ActivityFactory,
    CompanyFactory,
    ContactFactory,
    LeadSourceFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(alice, bob, charlie, mona):
    """One contact, company and activity per owner, plus an unowned one (created by an integration)."""
    contacts = {
        "alice": ContactFactory(owner=alice, first_name="Alice's"),
        "bob": ContactFactory(owner=bob, first_name="Bob's"),
        "mona": ContactFactory(owner=mona, first_name="Mona's"),
        "charlie": ContactFactory(owner=charlie, first_name="Charlie's"),
        "nobody": ContactFactory(owner=None, first_name="Nobody's"),
    }
    companies = {key: CompanyFactory(owner=c.owner, name=f"{key} Ltd") for key, c in contacts.items()}
    activities = {key: ActivityFactory(contact=c) for key, c in contacts.items()}
    return contacts, companies, activities


NORTH = {"alice", "bob", "mona"}
EVERYTHING = {"alice", "bob", "mona", "charlie", "nobody"}
VISIBILITY = {
    "alice": NORTH,
    "bob": NORTH,
    "mona": NORTH,
    "charlie": {"charlie"},
    "sam": EVERYTHING,
    "integ": EVERYTHING,
}


def _keys(objects: dict, qs) -> set[str]:
    ids = set(qs.values_list("id", flat=True))
    return {key for key, obj in objects.items() if obj.pk in ids}


@pytest.mark.parametrize("persona", list(VISIBILITY))
def test_visibility_matrix_for_contacts_companies_and_activities(request, records, persona):
    contacts, companies, activities = records
    user = request.getfixturevalue(persona)
    assert _keys(contacts, selectors.contacts_visible_to(user)) == VISIBILITY[persona]
    assert _keys(companies, selectors.companies_visible_to(user)) == VISIBILITY[persona]
    assert _keys(activities, selectors.activities_visible_to(user)) == VISIBILITY[persona]


def test_an_outsider_sees_a_task_assigned_to_them_but_not_the_record(records, alice, charlie):
    contacts, _companies, _activities = records
    task = ActivityFactory(contact=contacts["alice"], kind="task", assignee=charlie, due_at=timezone.now(),
                           owner=alice)
    assert task in selectors.activities_visible_to(charlie)
    assert contacts["alice"] not in selectors.contacts_visible_to(charlie)


def test_owner_keeps_seeing_a_record_filed_under_another_team(alice, bob, charlie):
    contact = ContactFactory(owner=alice, team=charlie.team)
    assert contact in selectors.contacts_visible_to(alice)
    assert contact not in selectors.contacts_visible_to(bob)
    assert contact in selectors.contacts_visible_to(charlie)


def test_manager_of_two_teams_sees_both(mona, charlie, south):
    south.manager = mona
    south.save(update_fields=["manager"])
    contact = ContactFactory(owner=charlie)
    assert contact in selectors.contacts_visible_to(mona)


def test_a_user_without_a_team_sees_only_their_own(db):
    loner = UserFactory(username="loner")
    own = ContactFactory(owner=loner)
    ContactFactory(owner=None)
    ContactFactory(owner=UserFactory(team=TeamFactory()))
    assert list(selectors.contacts_visible_to(loner)) == [own]


EDIT = {
    # (actor, owner of the contact): may edit
    ("alice", "alice"): True,
    ("alice", "bob"): False,
    ("bob", "alice"): False,
    ("charlie", "alice"): False,
    ("mona", "alice"): True,
    ("mona", "charlie"): False,
    ("sam", "charlie"): True,
    ("integ", "alice"): True,
}


@pytest.mark.parametrize(("actor", "owner"), list(EDIT))
def test_can_edit_matrix(request, actor, owner):
    contact = ContactFactory(owner=request.getfixturevalue(owner))
    assert selectors.can_edit(request.getfixturevalue(actor), contact) is EDIT[(actor, owner)]


def test_assignee_and_editors_can_change_a_task(alice, bob, charlie, mona):
    task = ActivityFactory(contact=ContactFactory(owner=alice), kind="task", assignee=charlie, due_at=timezone.now())
    assert [selectors.can_edit_activity(u, task) for u in (alice, bob, charlie, mona)] == [True, False, True, True]
    assert selectors.editable_activity_ids(bob, [task]) == set()
    assert selectors.editable_activity_ids(mona, [task]) == {task.pk}


# --- search --------------------------------------------------------------------------------------


@pytest.fixture
def people(alice):
    isik = services.company_create(actor=alice, data={"name": "Işık Yapı A.Ş."})
    return {
        "ipek": services.contact_create(actor=alice, data={"first_name": "İPEK", "last_name": "IŞIK",
                                                           "email": "ipek@example.com"}),
        "ahmet": services.contact_create(actor=alice, data={"first_name": "Ahmet", "last_name": "Şahin",
                                                            "phone": "0532 123 45 67"}),
        "john": services.contact_create(actor=alice, data={"first_name": "John", "last_name": "Smith",
                                                           "company": isik, "email": "john@acme.example"}),
        "zeynep": services.contact_create(actor=alice, data={"first_name": "Zeynep", "last_name": "Kaya",
                                                             "mobile": "+44 20 7946 0958"}),
    }


def _search(people, term, model=Contact):
    found = set(model.objects.filter(selectors.search_filter(term, model=model)).values_list("id", flat=True))
    return {key for key, obj in people.items() if obj.pk in found}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("ışık", {"ipek", "john"}),  # John works at Işık Yapı
        ("isik", {"ipek", "john"}),
        ("IŞIK", {"ipek", "john"}),
        ("ipek ışık", {"ipek"}),
        ("İpek", {"ipek"}),
        ("sahin", {"ahmet"}),
        ("Şahin", {"ahmet"}),
        ("ŞAHİN ahmet", {"ahmet"}),
        ("0532 123", {"ahmet"}),
        ("05321234567", {"ahmet"}),
        ("+90 532 123 45 67", {"ahmet"}),
        ("532", {"ahmet"}),
        ("7946 0958", {"zeynep"}),
        ("yapi", {"john"}),
        ("john@acme", {"john"}),
        ("IPEK@EXAMPLE.COM", {"ipek"}),
        ("nobody", set()),
    ],
)
def test_search_is_turkish_aware_and_finds_phones_and_company_names(people, term, expected):
    assert _search(people, term) == expected


def test_company_search(people):
    from contacts.models import Company

    companies = {"isik": Company.objects.get()}
    assert _search(companies, "isik yapi", model=Company) == {"isik"}
    assert _search(companies, "IŞIK", model=Company) == {"isik"}
    assert _search(companies, "acme", model=Company) == set()


# --- list selectors ------------------------------------------------------------------------------


def test_contact_list_filters(alice, bob, mona):
    source = LeadSourceFactory(name="Fair")
    first = services.contact_create(actor=alice, data={"first_name": "Ayşe", "lead_source": source,
                                                       "lifecycle_stage": "customer", "tags": ["VIP"]})
    second = services.contact_create(actor=mona, data={"first_name": "Ali", "owner": bob})
    archived = services.contact_create(actor=alice, data={"first_name": "Old"})
    services.contact_archive(contact=archived, actor=alice)
    vip = first.tags.get()
    assert list(selectors.contact_list(user=alice)) == [second, first]
    assert list(selectors.contact_list(user=alice, owner=bob)) == [second]
    assert list(selectors.contact_list(user=alice, lifecycle_stage="customer")) == [first]
    assert list(selectors.contact_list(user=alice, lead_source=source)) == [first]
    assert list(selectors.contact_list(user=alice, tag=vip)) == [first]
    assert list(selectors.contact_list(user=alice, team=alice.team, search="ayse")) == [first]
    assert set(selectors.contact_list(user=alice, include_archived=True)) == {first, second, archived}


def test_timeline_is_newest_first_and_open_tasks_are_by_due_time(alice):
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe"})
    now = timezone.now()
    old = services.activity_log(actor=alice, kind="call", subject="old", contact=contact,
                                occurred_at=now - timedelta(days=2))
    new = services.activity_log(actor=alice, kind="note", subject="new", contact=contact,
                                occurred_at=now - timedelta(days=1))
    later = services.activity_log(actor=alice, kind="task", subject="later", contact=contact,
                                  due_at=now + timedelta(days=3), occurred_at=now)
    overdue = services.activity_log(actor=alice, kind="task", subject="overdue", contact=contact,
                                    due_at=now - timedelta(days=1), occurred_at=now)
    assert list(selectors.timeline(user=alice, contact=contact)) == [overdue, later, new, old]
    assert list(selectors.open_tasks(user=alice)) == [overdue, later]
    services.task_set_done(task=overdue, actor=alice, done=True)
    assert list(selectors.open_tasks(user=alice)) == [later]
    assert list(selectors.recent_activity(user=alice)) == [overdue, new, old]
