"""The Foundation issue's "Done when", as a sales rep does it in a real browser.

A rep signs in through the login form, finds a contact by a Turkish name typed without accents, logs a
call that shows at the top of the timeline, adds an overdue task and ticks it done from Home, is told
next to the field that a phone number is invalid, switches the interface to Turkish, and gets a 404 for
another team's contact. Each step is checked in the page and in the database.
"""

import os
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import User
from contacts import services
from contacts.models import Activity
from tests.e2e.conftest import CHROMIUM
from tests.factories import TeamFactory, UserFactory

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"end-to-end tests need Debian's Chromium at {CHROMIUM}"),
    pytest.mark.django_db(transaction=True),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = playwright_api.expect

PASSWORD = "e2e-Secret-42"


@pytest.fixture
def world():
    """A team with a rep (who can sign in) and a teammate; an outsider's contact in another team."""
    north = TeamFactory(name="North")
    south = TeamFactory(name="South")
    rep = UserFactory(username="rep", first_name="Deniz", last_name="Kaya", team=north, role=User.Role.REP,
                      language="en")
    rep.set_password(PASSWORD)
    rep.save(update_fields=["password"])
    teammate = UserFactory(username="teammate", team=north, role=User.Role.REP)
    outsider = UserFactory(username="outsider", team=south, role=User.Role.REP)
    ayse = services.contact_create(actor=rep, data={
        "first_name": "Ayşe", "last_name": "Şahin", "email": "ayse.sahin@example.com", "phone": "0532 123 45 67",
    })
    services.activity_log(actor=rep, kind=Activity.Kind.NOTE, subject="İlk tanışma", contact=ayse,
                          occurred_at=timezone.now() - timedelta(days=2))
    kemal = services.contact_create(actor=rep, data={"first_name": "Kemal", "last_name": "IŞIK"})
    # Matches "sahin" too, so the search proves that the other team's contact stays hidden.
    hidden = services.contact_create(actor=outsider, data={"first_name": "Mehmet", "last_name": "Şahin"})
    return {"rep": rep, "teammate": teammate, "outsider": outsider, "ayse": ayse, "kemal": kemal, "hidden": hidden}


def test_rep_finds_a_contact_logs_a_call_ticks_a_task_and_switches_to_turkish(live_server, browser_page, world):
    page = browser_page
    rep, ayse, hidden = world["rep"], world["ayse"], world["hidden"]
    url = live_server.url

    # 1. Sign in through the login form (a signed-out visitor is sent there first).
    page.goto(url + reverse("home"))
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill("rep")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url + reverse("home"))
    expect(page.get_by_role("heading", name="Hello, Deniz")).to_be_visible()

    # 2. Open Contacts from the navigation; search without accents.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    expect(page).to_have_url(url + reverse("contact-list"))
    expect(page.get_by_role("heading", name="Contacts", level=1)).to_be_visible()
    results = page.locator("#results")
    expect(results).to_contain_text("Kemal IŞIK")  # both of the rep's contacts before searching

    search = page.get_by_role("searchbox", name="Search")
    search.fill("sahin")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=sahin(&|$)"))
    expect(results.get_by_role("link", name="Ayşe Şahin")).to_be_visible()
    expect(results).not_to_contain_text("Kemal IŞIK")
    expect(results).not_to_contain_text("Mehmet Şahin")

    search.fill("ışık")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=%C4%B1%C5%9F%C4%B1k(&|$)", re.IGNORECASE))
    expect(results.get_by_role("link", name="Kemal IŞIK")).to_be_visible()
    expect(results).not_to_contain_text("Ayşe Şahin")

    # 3. Open Ayşe Şahin's page and log a call through the quick form: it goes above the older note.
    search.fill("sahin")
    search.press("Enter")
    results.get_by_role("link", name="Ayşe Şahin").click()
    expect(page).to_have_url(url + reverse("contact-detail", args=[ayse.pk]))
    panel = page.locator("#activity-panel")
    expect(panel.locator("ol.timeline > li .tl-subject")).to_have_text(["İlk tanışma"])
    panel.get_by_role("radio", name="Call").check()
    panel.get_by_label("Subject").fill("Yenileme görüşmesi")
    panel.get_by_role("button", name="Save").click()
    expect(panel.get_by_role("status")).to_contain_text("Saved to the timeline.")
    expect(panel.locator("ol.timeline > li .tl-subject")).to_have_text(["Yenileme görüşmesi", "İlk tanışma"])
    expect(panel.locator("ol.timeline > li").first).to_contain_text("Call")

    call = Activity.objects.get(contact=ayse, subject="Yenileme görüşmesi")
    assert (call.kind, call.owner_id, call.done_at) == (Activity.Kind.CALL, rep.pk, None)
    ayse.refresh_from_db()
    assert ayse.last_activity_at == call.occurred_at

    # 4. Add a task that was due yesterday; Home lists it as overdue; tick it done in place.
    due = timezone.localtime() - timedelta(days=1)
    panel.get_by_role("radio", name="Task").check()
    panel.get_by_label("Subject").fill("Teklifi gönder")
    panel.get_by_label("Due").fill(due.strftime("%Y-%m-%dT%H:%M"))
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator("ol.timeline > li .tl-subject")).to_have_text(
        ["Teklifi gönder", "Yenileme görüşmesi", "İlk tanışma"])
    task = Activity.objects.get(contact=ayse, subject="Teklifi gönder")
    assert (task.kind, task.assignee_id, task.done_at) == (Activity.Kind.TASK, rep.pk, None)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    expect(page).to_have_url(url + reverse("home"))
    row = page.locator(f"#task-{task.pk}")
    expect(row).to_contain_text("Teklifi gönder")
    expect(row).to_have_class(re.compile(r"\bis-overdue\b"))
    expect(row.locator(".badge")).to_have_text("Overdue")
    page.evaluate("window.e2eSamePage = true")  # gone if the tick reloads the page
    row.get_by_role("button", name="Mark done").click()
    expect(row).to_have_class(re.compile(r"\bis-done\b"))
    expect(row.locator(".badge")).to_have_text("Done")
    assert page.evaluate("window.e2eSamePage === true"), "ticking a task reloaded the page instead of updating the row"
    task.refresh_from_db()
    assert task.done_at is not None

    page.reload()
    tasks = page.locator("section[aria-labelledby=tasks-title]")
    expect(tasks).to_contain_text("No open tasks.")
    expect(tasks).not_to_contain_text("Teklifi gönder")

    # 5. An invalid phone on the edit form: the error is next to the field and nothing is saved.
    ayse.refresh_from_db()
    before = (ayse.phone, ayse.updated_at, ayse.last_activity_at)
    assert ayse.phone == "+905321234567"
    page.goto(url + reverse("contact-edit", args=[ayse.pk]))
    phone = page.get_by_label("Phone", exact=True)
    phone.fill("12ab")
    page.get_by_role("button", name="Save changes").click()
    phone_field = page.locator(".field.has-error", has=page.locator("#id_phone"))
    expect(phone_field.locator("#id_phone_error")).to_be_visible()
    expect(phone_field.locator("#id_phone_error")).to_contain_text("Enter a valid phone number")
    expect(phone_field.locator("#id_phone_error")).to_contain_text("12ab")
    expect(page.get_by_role("alert")).to_contain_text("nothing was saved")
    expect(page.get_by_label("Phone", exact=True)).to_have_value("12ab")  # what was typed is not lost
    ayse.refresh_from_db()
    assert (ayse.phone, ayse.updated_at, ayse.last_activity_at) == before

    # 6. Switch the interface to Turkish.
    page.goto(url + reverse("contact-detail", args=[ayse.pk]))
    page.get_by_role("form", name="Language").get_by_role("button", name="TR").click()
    expect(page.locator("html")).to_have_attribute("lang", "tr")
    expect(page).to_have_url(url + reverse("contact-detail", args=[ayse.pk]))
    with translation.override("tr"):
        contacts_tr = translation.gettext("Contacts")
        not_found_tr = translation.gettext("Not found")
    if contacts_tr != "Contacts":  # the Turkish catalogue is compiled
        assert contacts_tr == "Kişiler"
        expect(page.locator("nav.mainnav").get_by_role("link", name="Kişiler", exact=True)).to_be_visible()
    rep.refresh_from_db()
    assert rep.language == "tr"

    # 7. The other team's contact: a 404 page, nothing of it shown.
    response = page.goto(url + reverse("contact-detail", args=[hidden.pk]))
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text(not_found_tr)
    expect(page.locator("body")).not_to_contain_text("Mehmet")
