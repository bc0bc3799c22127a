"""The notification bell and page: unread count, list, mark read, open."""

import re

import pytest
from django.utils import timezone

from accounts.models import Notification
from contacts import services

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


def notice(user, message="A contact was assigned to you: %(name)s", name="Ayşe", link="/contacts/1/", read=False):
    return Notification.objects.create(user=user, message=message, params={"name": name}, link=link,
                                       read_at=timezone.now() if read else None)


def test_bell_shows_the_unread_count(client_for, alice):
    notice(alice)
    notice(alice)
    notice(alice, read=True)
    html = text(client_for(alice).get("/"))
    assert '<span class="bell-count" data-testid="unread-count">2</span>' in html


def test_bell_has_no_count_when_all_read(client_for, alice):
    notice(alice, read=True)
    assert "bell-count" not in text(client_for(alice).get("/"))


def test_assigning_a_contact_notifies_the_new_owner_with_a_link_to_it(
    client_for, mona, bob, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        contact = services.contact_create(actor=mona, data={"first_name": "Ayşe", "owner": bob})

    html = text(client_for(bob).get("/notifications/"))

    n = Notification.objects.get(user=bob)
    assert "A contact was assigned to you: Ayşe" in html
    assert f'href="/notifications/{n.pk}/open/"' in html
    response = client_for(bob).get(f"/notifications/{n.pk}/open/")
    assert response["Location"] == f"/contacts/{contact.pk}/"
    n.refresh_from_db()
    assert n.read_at is not None


def test_notifications_page_lists_mine_newest_first(client_for, alice, bob):
    notice(alice, name="First")
    notice(alice, name="Second")
    notice(bob, name="Not for Alice")

    html = text(client_for(alice).get("/notifications/"))

    assert re.findall(r"assigned to you: (\w+)", html) == ["Second", "First"]


def test_mark_one_read(client_for, alice):
    n = notice(alice)
    response = client_for(alice).post(f"/notifications/{n.pk}/read/")
    n.refresh_from_db()
    assert response.status_code == 302 and n.read_at is not None


def test_mark_all_read(client_for, alice, bob):
    notice(alice)
    notice(alice)
    other = notice(bob)
    client_for(alice).post("/notifications/read-all/")
    assert Notification.objects.filter(user=alice, read_at__isnull=True).count() == 0
    other.refresh_from_db()
    assert other.read_at is None


def test_someone_elses_notification_is_404_and_stays_unread(client_for, alice, bob):
    n = notice(bob)
    client = client_for(alice)
    assert client.post(f"/notifications/{n.pk}/read/").status_code == 404
    assert client.get(f"/notifications/{n.pk}/open/").status_code == 404
    n.refresh_from_db()
    assert n.read_at is None


def test_an_off_site_link_is_never_followed(client_for, alice):
    n = notice(alice, link="https://evil.example/")
    html = text(client_for(alice).get("/notifications/"))
    assert f"/notifications/{n.pk}/open/" not in html
    assert client_for(alice).get(f"/notifications/{n.pk}/open/")["Location"] == "/notifications/"


def test_notifications_page_pages_with_next_links(client_for, alice):
    for i in range(55):
        notice(alice, name=f"N{i}")
    client = client_for(alice)
    first = client.get("/notifications/")
    link = re.search(r'rel="next" href="([^"]+)"', text(first)).group(1).replace("&amp;", "&")
    second = client.get("/notifications/" + link)
    assert len(re.findall(r'class="notice is-unread"', text(first))) == 50
    assert len(re.findall(r'class="notice is-unread"', text(second))) == 5


def test_bad_cursor_on_notifications_is_not_a_500(client_for, alice):
    assert client_for(alice).get("/notifications/", {"cursor": "%%%"}).status_code == 200
