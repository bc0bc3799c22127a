"""accounts.selectors: the team ids every visibility rule starts from."""

import pytest

from accounts import selectors
from accounts.models import User
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def everyone(alice, bob, charlie, mona, sam, integ):
    return {"alice": alice, "bob": bob, "charlie": charlie, "mona": mona, "sam": sam, "integ": integ}


def test_visible_team_ids(everyone, north, south):
    assert selectors.visible_team_ids(everyone["alice"]) == [north.pk]
    assert selectors.visible_team_ids(everyone["charlie"]) == [south.pk]
    assert selectors.visible_team_ids(everyone["mona"]) == [north.pk]
    assert selectors.visible_team_ids(everyone["sam"]) is None
    assert selectors.visible_team_ids(everyone["integ"]) is None


def test_manager_sees_every_team_they_manage_even_outside_their_own(mona, north, south):
    south.manager = mona
    south.save(update_fields=["manager"])
    assert selectors.visible_team_ids(mona) == sorted([north.pk, south.pk])
    assert selectors.editable_team_ids(mona) == sorted([north.pk, south.pk])


def test_a_manager_role_without_managed_teams_edits_nothing_by_team(north):
    manager = UserFactory(role=User.Role.MANAGER, team=north)
    assert selectors.visible_team_ids(manager) == [north.pk]
    assert selectors.editable_team_ids(manager) == []


def test_editable_team_ids(everyone, north):
    assert selectors.editable_team_ids(everyone["alice"]) == []
    assert selectors.editable_team_ids(everyone["mona"]) == [north.pk]
    assert selectors.editable_team_ids(everyone["sam"]) is None


def test_superuser_without_admin_role_is_an_admin(north):
    root = UserFactory(role=User.Role.REP, is_superuser=True)
    assert root.is_admin is True
    assert selectors.visible_team_ids(root) is None
    assert selectors.editable_team_ids(root) is None


def test_team_scope(alice, sam):
    assert selectors.team_scope(sam) is None
    scope = selectors.team_scope(alice, owner_field="assignee")
    assert str(scope) == f"(OR: ('team_id__in', [{alice.team_id}]), ('assignee_id', {alice.pk}))"


def test_assignable_owners(everyone):
    names = {key: sorted(u.username for u in selectors.assignable_owners(user)) for key, user in everyone.items()}
    everybody = ["alice", "bob", "charlie", "mona", "sam"]  # integration users never own records
    assert names == {
        "alice": ["alice"],
        "bob": ["bob"],
        "charlie": ["charlie"],
        "mona": ["alice", "bob", "mona"],
        "sam": everybody,
        "integ": everybody,
    }


def test_inactive_users_cannot_be_given_records(alice, mona, bob):
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    assert sorted(u.username for u in selectors.assignable_owners(mona)) == ["alice", "mona"]


def test_users_visible_to(everyone):
    names = {key: [u.username for u in selectors.users_visible_to(user)] for key, user in everyone.items()}
    everybody = ["alice", "bob", "charlie", "integ", "mona", "sam"]
    assert names == {
        "alice": ["alice", "bob", "mona"],
        "bob": ["alice", "bob", "mona"],
        "charlie": ["charlie"],
        "mona": ["alice", "bob", "mona"],
        "sam": everybody,
        "integ": everybody,
    }


def test_users_visible_to_includes_the_manager_of_my_team_from_another_team(alice, north):
    boss = UserFactory(username="boss", role=User.Role.MANAGER, team=TeamFactory(name="HQ"))
    north.manager = boss
    north.save(update_fields=["manager"])
    assert [u.username for u in selectors.users_visible_to(alice)] == ["alice", "boss"]


def test_teams_visible_to(everyone, north, south):
    assert list(selectors.teams_visible_to(everyone["alice"])) == [north]
    assert list(selectors.teams_visible_to(everyone["charlie"])) == [south]
    assert list(selectors.teams_visible_to(everyone["sam"])) == [north, south]
