"""Shared fixtures: the personas every visibility test uses.

- alice: a rep in team North, who owns the records under test (the owner)
- bob: another rep in North (the teammate): sees alice's records, cannot edit them
- charlie: a rep in team South (the outsider): gets 404 for all of the above
- mona: manager of North; sam: admin; integ: an API-only integration user
"""

import importlib

import pytest
from django.apps import apps
from pytest_django.plugin import blocking_manager_key
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from tests.factories import TeamFactory, UserFactory


def install_migration_data():
    """The rows a fresh install gets from data migrations: the default pipeline, lost reasons, built-in KPIs."""
    from kpis.builtins import install_builtins

    importlib.import_module("pipeline.migrations.0002_defaults").create(apps, None)
    install_builtins()


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """A transactional test empties every table when it ends, migration data included: put that data back,
    so the tests after it start from what a fresh install has (whatever order they run in)."""
    yield
    # After the last test the session's fixtures are gone too (the test database included): nothing to restore.
    if nextitem is None:
        return
    if "transactional_db" in getattr(item, "fixturenames", ()) or "live_server" in getattr(item, "fixturenames", ()):
        with item.config.stash[blocking_manager_key].unblock():
            install_migration_data()


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
