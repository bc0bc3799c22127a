"""API authentication (hashed, revocable tokens; sessions), users and teams, the schema, create_api_token."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def token_client(raw):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return api


def test_token_authenticates_and_records_its_use(alice):
    token, raw = ApiToken.issue(user=alice, name="ERP")

    response = token_client(raw).get("/api/v1/contacts/")

    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_token_is_refused(alice):
    token, raw = ApiToken.issue(user=alice)
    token.revoke()

    response = token_client(raw).get("/api/v1/contacts/")

    assert response.status_code == 401
    assert response.json() == {"errors": {"detail": ["Invalid or revoked token."]}}
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token nope", "Token", "Token a b", "Bearer abc"])
def test_bad_credentials_are_refused(header, alice):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    assert api.get("/api/v1/contacts/").status_code == 401


def test_token_of_an_inactive_user_is_refused(alice):
    _token, raw = ApiToken.issue(user=alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])

    assert token_client(raw).get("/api/v1/contacts/").status_code == 401


def test_only_the_hash_of_a_token_is_stored(alice):
    token, raw = ApiToken.issue(user=alice)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)

    assert raw not in stored
    assert token.prefix == raw[:8]
    assert token.key_hash == ApiToken.hash(raw) != raw


def test_browser_session_works_and_needs_csrf_for_writes(alice):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(alice)

    assert api.get("/api/v1/contacts/").status_code == 200
    response = api.post("/api/v1/contacts/", {"first_name": "A"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["errors"]["detail"][0]


# --- users and teams (read-only) ----------------------------------------------------------------------


def test_rep_sees_their_team_members_only(api_for, alice, bob, charlie, mona):
    results = api_for(alice).get("/api/v1/users/").json()["results"]

    assert [u["username"] for u in results] == ["alice", "bob", "mona"]
    assert set(results[0]) == {"id", "username", "first_name", "last_name", "full_name", "email", "role", "team",
                               "language", "is_active"}


def test_manager_sees_the_teams_they_manage(api_for, alice, charlie, mona, north, south):
    other = TeamFactory(name="West", manager=mona)
    west_rep = UserFactory(username="wendy", team=other)

    users = [u["username"] for u in api_for(mona).get("/api/v1/users/").json()["results"]]
    teams = [t["name"] for t in api_for(mona).get("/api/v1/teams/").json()["results"]]

    assert users == ["alice", "mona", west_rep.username]
    assert teams == ["North", "West"]


@pytest.mark.parametrize("name, status", [("alice", 200), ("charlie", 404), ("sam", 200), ("integ", 200)])
def test_user_detail_of_another_team_is_hidden(request, api_for, bob, name, status):
    assert api_for(request.getfixturevalue(name)).get(f"/api/v1/users/{bob.pk}/").status_code == status


def test_users_and_teams_are_read_only(api_for, sam, north):
    api = api_for(sam)

    assert api.post("/api/v1/users/", {"username": "x"}, format="json").status_code == 405
    assert api.patch(f"/api/v1/teams/{north.pk}/", {"name": "x"}, format="json").status_code == 405
    assert api.delete(f"/api/v1/teams/{north.pk}/").status_code == 405


def test_user_filters(api_for, sam, alice, bob, charlie, mona, north):
    api = api_for(sam)

    by_team = [u["username"] for u in api.get("/api/v1/users/", {"team": north.pk}).json()["results"]]
    managers = [u["username"] for u in api.get("/api/v1/users/", {"role": "manager"}).json()["results"]]
    bad = api.get("/api/v1/users/", {"role": "boss"})

    assert by_team == ["alice", "bob", "mona"]
    assert managers == ["mona"]
    assert (bad.status_code, list(bad.json()["errors"])) == (400, ["role"])


# --- OpenAPI ---------------------------------------------------------------------------------------


def test_schema_is_served_and_documents_token_auth(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["Token"]["type"] == "apiKey"
    paths = set(schema["paths"])
    assert {"/api/v1/contacts/", "/api/v1/contacts/upsert/", "/api/v1/contacts/{id}/consents/",
            "/api/v1/contacts/{id}/history/", "/api/v1/activities/{id}/done/", "/api/v1/activities/{id}/undone/",
            "/api/v1/companies/", "/api/v1/tags/", "/api/v1/lead-sources/", "/api/v1/custom-fields/",
            "/api/v1/users/", "/api/v1/teams/"} <= paths
    assert "archives" in schema["paths"]["/api/v1/contacts/{id}/"]["delete"]["description"]


def test_schema_is_complete_and_warning_free():
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())


def test_docs_page_is_served(client):
    assert client.get("/api/docs/").status_code == 200


# --- create_api_token ------------------------------------------------------------------------------------


def test_command_prints_a_working_token(integ):
    out = io.StringIO()

    call_command("create_api_token", "integ", "--name", "ERP sync", stdout=out, stderr=io.StringIO())

    raw = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.prefix) == (integ, "ERP sync", raw[:8])
    assert token_client(raw).get("/api/v1/contacts/").status_code == 200


def test_command_revokes_by_prefix(integ):
    token, raw = ApiToken.issue(user=integ)
    out = io.StringIO()

    call_command("create_api_token", "--revoke", token.prefix, stdout=out)

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert out.getvalue().strip() == f"Revoked token {token.prefix}… of integ."
    assert token_client(raw).get("/api/v1/contacts/").status_code == 401


def test_command_lists_tokens(integ):
    token, _raw = ApiToken.issue(user=integ, name="ERP")
    out = io.StringIO()

    call_command("create_api_token", "integ", "--list", stdout=out)

    assert out.getvalue().startswith(f"{token.prefix}…  active")
    assert out.getvalue().rstrip().endswith("ERP")


@pytest.mark.parametrize("args, message", [
    (["nobody"], "No user with username “nobody”."),
    (["--revoke", "zzzzzzzz"], "No active token starts with “zzzzzzzz”."),
    ([], "Give a USERNAME (or --revoke PREFIX)."),
])
def test_command_errors_are_clear(db, args, message):
    with pytest.raises(CommandError) as excinfo:
        call_command("create_api_token", *args)

    assert str(excinfo.value) == message
    assert not ApiToken.objects.exists()


def test_api_answers_in_the_token_users_language_unless_the_caller_asks_for_another(api_for, alice):
    alice.language = "tr"
    alice.save(update_fields=["language"])
    api = api_for(alice)
    body = {"first_name": "Ayşe", "email": "bozuk"}

    turkish = api.post("/api/v1/contacts/", body, format="json")
    english = api.post("/api/v1/contacts/", body, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert turkish.status_code == english.status_code == 400
    assert turkish.json()["errors"]["email"] != english.json()["errors"]["email"]
    assert english.json()["errors"]["email"] == [
        "Enter a valid e-mail address such as name@example.com (got “bozuk”)."]
