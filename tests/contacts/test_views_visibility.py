"""Who may open and change what, on every page: owner, teammate, outsider, manager, admin.

A hidden record is a 404 on every URL; a visible record the user may not change is a 403 on the
pages that change it.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts import services
from contacts.models import Activity, Company, Consent, Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(alice, mona, sam):
    company = services.company_create(actor=alice, data={"name": "Acme"})
    contact = services.contact_create(actor=alice, data={"first_name": "Ayşe", "company": company})
    todo = services.activity_log(actor=alice, kind="task", subject="Follow up", contact=contact,
                                 due_at=timezone.now() + timedelta(days=1))
    return {"company": company, "contact": contact, "task": todo}


def urls(records):
    c, co, t = records["contact"].pk, records["company"].pk, records["task"].pk
    return {
        "contact-detail": ("get", f"/contacts/{c}/", {}),
        "contact-edit": ("get", f"/contacts/{c}/edit/", {}),
        "contact-edit-post": ("post", f"/contacts/{c}/edit/", {"first_name": "Hacked", "lifecycle_stage": "lead"}),
        "contact-archive": ("post", f"/contacts/{c}/archive/", {}),
        "contact-log": ("post", f"/contacts/{c}/activities/", {"kind": "note", "subject": "hi"}),
        "contact-consent": ("post", f"/contacts/{c}/consent/", {"channel": "sms", "status": "granted",
                                                               "source": "call"}),
        "task-toggle": ("post", f"/tasks/{t}/toggle/", {"done": "1"}),
        "company-detail": ("get", f"/companies/{co}/", {}),
        "company-edit": ("get", f"/companies/{co}/edit/", {}),
        "company-edit-post": ("post", f"/companies/{co}/edit/", {"name": "Hacked"}),
        "company-archive": ("post", f"/companies/{co}/archive/", {}),
        "company-log": ("post", f"/companies/{co}/activities/", {"kind": "note", "subject": "hi"}),
    }


# What each persona gets: 200/302 allowed, 403 visible but not theirs to change, 404 hidden.
EXPECTED = {
    "alice": {"contact-detail": 200, "contact-edit": 200, "contact-edit-post": 302, "contact-archive": 302,
              "contact-log": 302, "contact-consent": 302, "task-toggle": 302, "company-detail": 200,
              "company-edit": 200, "company-edit-post": 302, "company-archive": 302, "company-log": 302},
    "bob": {"contact-detail": 200, "contact-edit": 403, "contact-edit-post": 403, "contact-archive": 403,
            "contact-log": 302, "contact-consent": 302, "task-toggle": 403, "company-detail": 200,
            "company-edit": 403, "company-edit-post": 403, "company-archive": 403, "company-log": 302},
    "charlie": dict.fromkeys(
        ["contact-detail", "contact-edit", "contact-edit-post", "contact-archive", "contact-log", "contact-consent",
         "task-toggle", "company-detail", "company-edit", "company-edit-post", "company-archive", "company-log"],
        404),
    "mona": {"contact-detail": 200, "contact-edit": 200, "contact-edit-post": 302, "contact-archive": 302,
             "contact-log": 302, "contact-consent": 302, "task-toggle": 302, "company-detail": 200,
             "company-edit": 200, "company-edit-post": 302, "company-archive": 302, "company-log": 302},
    "sam": {"contact-detail": 200, "contact-edit": 200, "contact-edit-post": 302, "contact-archive": 302,
            "contact-log": 302, "contact-consent": 302, "task-toggle": 302, "company-detail": 200,
            "company-edit": 200, "company-edit-post": 302, "company-archive": 302, "company-log": 302},
}


@pytest.mark.parametrize("persona", ["alice", "bob", "charlie", "mona", "sam"])
@pytest.mark.parametrize("page", list(EXPECTED["alice"]))
def test_visibility_matrix(request, client_for, records, persona, page):
    user = request.getfixturevalue(persona)
    method, url, data = urls(records)[page]
    if page.endswith("edit-post"):
        data = dict(data, owner=records["contact"].owner_id)

    response = getattr(client_for(user), method)(url, data)

    assert response.status_code == EXPECTED[persona][page], (persona, page)


@pytest.mark.parametrize("persona", ["bob", "charlie"])
def test_refused_writes_change_nothing(request, client_for, records, persona):
    user = request.getfixturevalue(persona)
    client = client_for(user)
    contact, company, todo = records["contact"], records["company"], records["task"]
    before = (Contact.objects.filter(pk=contact.pk).values().get(), Company.objects.filter(pk=company.pk).values().get())

    for page in ("contact-edit-post", "contact-archive", "task-toggle", "company-edit-post", "company-archive"):
        method, url, data = urls(records)[page]
        getattr(client, method)(url, data)

    assert (Contact.objects.filter(pk=contact.pk).values().get(),
            Company.objects.filter(pk=company.pk).values().get()) == before
    todo.refresh_from_db()
    assert todo.done_at is None


def test_outsider_writes_leave_no_trace(client_for, charlie, records):
    client = client_for(charlie)
    for page in ("contact-log", "contact-consent", "company-log"):
        method, url, data = urls(records)[page]
        assert getattr(client, method)(url, data).status_code == 404
    assert Activity.objects.count() == 1
    assert Consent.objects.count() == 0


def test_outsider_does_not_see_the_records_in_lists_or_company_search(client_for, charlie, records):
    client = client_for(charlie)
    assert "Ayşe" not in client.get("/contacts/").content.decode()
    assert "Acme" not in client.get("/companies/").content.decode()
    assert "Acme" not in client.get("/companies/options/", {"company_q": "acme"}).content.decode()
    assert "Acme" not in client.get("/companies/options/", {"company": records["company"].pk}).content.decode()


def test_outsider_cannot_file_a_contact_under_a_hidden_company(client_for, charlie, records):
    response = client_for(charlie).post("/contacts/new/", {"first_name": "X", "lifecycle_stage": "lead",
                                                           "owner": charlie.pk, "company": records["company"].pk})
    assert response.status_code == 422
    assert Contact.objects.count() == 1


def test_outsider_cannot_filter_the_list_by_a_hidden_company(client_for, charlie, records):
    response = client_for(charlie).get("/contacts/", {"company": records["company"].pk})
    assert response.status_code == 200
    assert "Ayşe" not in response.content.decode()
