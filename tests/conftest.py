"""Shared fixtures: the personas every visibility test uses.

- alice: a rep in team North, who owns the records under test (the owner)
- bob: another rep in North (the teammate): sees alice's records, cannot edit them
- charlie: a rep in team South (the outsider): gets 404 for all of the above
- mona: manager of North; sam: admin; integ: an API-only integration user
"""

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from tests.factories import TeamFactory, UserFactory


@pytest.fixture
def north(db):
    return TeamFactory(name="North")


@pytest.fixture
def south(db):
    return TeamFactory(name="South")


@pytest.fixture
def alice(north):
    return UserFactory(username="alice", team=north, role=User.Role.REP)


@pytest.fixture
def bob(north):
    return UserFactory(username="bob", team=north, role=User.Role.REP)


@pytest.fixture
def charlie(south):
    return UserFactory(username="charlie", team=south, role=User.Role.REP)


@pytest.fixture
def mona(north):
    manager = UserFactory(username="mona", team=north, role=User.Role.MANAGER)
    north.manager = manager
    north.save(update_fields=["manager"])
    return manager


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", role=User.Role.ADMIN, is_staff=True)


@pytest.fixture
def integ(db):
    return UserFactory(username="integ", role=User.Role.INTEGRATION)


@pytest.fixture
def client_for(client):
    """Log a persona into the browser test client: ``client_for(alice)``."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def api_for():
    """An API client authenticated with a real hashed token of the user: ``api_for(alice)``."""

    def make(user):
        _token, raw = ApiToken.issue(user=user, name="test")
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        return api

    return make
