"""Signing in and out of the browser, the layout's navigation, and the EN/TR language switch."""

import re

import pytest
from django.conf import settings

from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


def test_login_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert '<input type="text" name="username"' in text(response)


def test_rep_signs_in_and_lands_on_home(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in text(response)
    assert "_auth_user_id" not in client.session


def test_integration_user_cannot_sign_in_to_the_browser(client, integ):
    response = client.post("/login/", {"username": "integ", "password": "pw"})

    assert response.status_code == 200
    assert "API-only integration account" in text(response)
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_and_ends_the_session(client_for, alice):
    client = client_for(alice)
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_login_next_parameter_is_kept_but_never_leaves_the_site(client, alice):
    ok = client.post("/login/?next=/contacts/", {"username": "alice", "password": "pw", "next": "/contacts/"})
    assert ok["Location"] == "/contacts/"
    client.post("/logout/")
    evil = client.post("/login/", {"username": "alice", "password": "pw", "next": "https://evil.example/"})
    assert evil["Location"] == "/"


def test_navigation_has_the_sections_and_the_admin_link_only_for_staff(client_for, alice, sam):
    rep_html = text(client_for(alice).get("/"))
    for href in ('href="/"', 'href="/contacts/"', 'href="/companies/"', 'href="/api/docs/"',
                 'href="/notifications/"'):
        assert href in rep_html
    assert 'href="/admin/"' not in rep_html
    assert 'href="/admin/"' in text(client_for(sam).get("/"))


def test_current_section_is_marked_in_the_nav(client_for, alice):
    html = text(client_for(alice).get("/contacts/"))
    assert '<a href="/contacts/" aria-current="page">Contacts</a>' in html


# --- language ----------------------------------------------------------------------------------


def test_language_switch_saves_the_user_choice_and_sets_the_cookie(client_for, alice):
    client = client_for(alice)

    response = client.post("/language/", {"language": "tr", "next": "/contacts/"})

    alice.refresh_from_db()
    assert response.status_code == 302 and response["Location"] == "/contacts/"
    assert alice.language == "tr"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "tr"
    assert '<html lang="tr">' in text(client.get("/contacts/"))


def test_page_renders_turkish_for_a_user_whose_language_is_tr(client_for):
    user = UserFactory(username="turkan", language="tr")
    html = text(client_for(user).get("/"))
    assert '<html lang="tr">' in html
    assert '<button type="submit" name="language" value="tr" aria-pressed="true"' in html


def test_english_is_the_default(client_for, alice):
    assert '<html lang="en">' in text(client_for(alice).get("/"))


def test_language_choice_follows_the_user_to_a_new_session(client, alice):
    alice.language = "tr"
    alice.save()
    client.post("/login/", {"username": "alice", "password": "pw"})
    assert '<html lang="tr">' in text(client.get("/"))


def test_unknown_language_is_refused_and_nothing_saved(client_for, alice):
    response = client_for(alice).post("/language/", {"language": "xx", "next": "/"})
    alice.refresh_from_db()
    assert response.status_code == 302
    assert alice.language == ""
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_language_switch_never_redirects_off_site(client_for, alice):
    response = client_for(alice).post("/language/", {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_language_switch_works_on_the_login_page_for_visitors(client):
    response = client.post("/language/", {"language": "tr", "next": "/login/"})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "tr"
    assert '<html lang="tr">' in text(client.get("/login/"))


def test_django_setlang_still_works(client_for, alice):
    client = client_for(alice)
    response = client.post("/i18n/setlang/", {"language": "tr", "next": "/"})
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "tr"


def test_language_switch_needs_a_post(client_for, alice):
    assert client_for(alice).get("/language/?language=tr").status_code == 405


def test_every_page_has_the_csrf_header_for_htmx(client_for, alice):
    html = text(client_for(alice).get("/"))
    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'", html)
    assert '/static/vendor/htmx.min.js' in html and '/static/css/app.css' in html


def test_integration_role_constant_is_what_the_login_form_checks():
    assert User.Role.INTEGRATION == "integration"
