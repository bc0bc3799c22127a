"""Contact and company list pages: Turkish-aware search, filters, sorting, keyset pages, fixed query counts."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts import services
from contacts.models import Contact, LifecycleStage
from tests.factories import CompanyFactory, ContactFactory, LeadSourceFactory, TagFactory, UserFactory

pytestmark = pytest.mark.django_db


def names_on_page(response) -> list[str]:
    """The contact/company names in the list's rows, in page order."""
    html = response.content.decode()
    return re.findall(r'<td class="cell-name"><a href="[^"]+"><span[^>]*>[^<]*</span>([^<]+)</a>', html)


def next_link(response) -> str | None:
    match = re.search(r'<a class="btn btn-ghost" rel="next" href="([^"]+)"', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def previous_link(response) -> str | None:
    match = re.search(r'<a class="btn btn-ghost" rel="prev" href="([^"]+)"', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


# --- search ------------------------------------------------------------------------------------


def test_search_ışık_finds_upper_case_IŞIK(client_for, alice):
    services.contact_create(actor=alice, data={"first_name": "Ayşe", "last_name": "IŞIK"})
    services.contact_create(actor=alice, data={"first_name": "Mehmet", "last_name": "Kaya"})

    response = client_for(alice).get("/contacts/", {"q": "ışık"})

    assert response.status_code == 200
    assert names_on_page(response) == ["Ayşe IŞIK"]


def test_search_sahin_without_accent_finds_Şahin(client_for, alice):
    services.contact_create(actor=alice, data={"first_name": "Elif", "last_name": "Şahin"})
    services.contact_create(actor=alice, data={"first_name": "Elif", "last_name": "Demir"})

    response = client_for(alice).get("/contacts/", {"q": "sahin"})

    assert names_on_page(response) == ["Elif Şahin"]


def test_search_by_company_name_and_by_phone_typed_with_leading_zero(client_for, alice):
    company = services.company_create(actor=alice, data={"name": "Güneş Enerji A.Ş."})
    services.contact_create(actor=alice, data={"first_name": "Can", "last_name": "Öz", "company": company})
    services.contact_create(actor=alice, data={"first_name": "Deniz", "last_name": "Ak", "phone": "0532 123 45 67"})
    client = client_for(alice)

    assert names_on_page(client.get("/contacts/", {"q": "gunes"})) == ["Can Öz"]
    assert names_on_page(client.get("/contacts/", {"q": "05321234567"})) == ["Deniz Ak"]


def test_search_never_shows_other_teams_contacts(client_for, alice, charlie):
    services.contact_create(actor=charlie, data={"first_name": "Gizli", "last_name": "Şahin"})

    response = client_for(alice).get("/contacts/", {"q": "sahin"})

    assert names_on_page(response) == []
    assert "No contacts match" in response.content.decode()


def test_a_100_kb_search_term_answers_with_an_error_not_a_500(client_for, alice):
    ContactFactory(owner=alice, first_name="Zeynep")

    response = client_for(alice).get("/contacts/", {"q": "x" * 100_000})

    assert response.status_code == 200
    assert "at most 200 characters" in response.content.decode()
    assert names_on_page(response) == ["Zeynep Person"]


# --- filters -----------------------------------------------------------------------------------


def test_filters_by_stage_owner_source_and_tag(client_for, alice, bob):
    web = LeadSourceFactory(name="Web form")
    vip = TagFactory(name="vip")
    a = services.contact_create(actor=alice, data={"first_name": "Ada", "lifecycle_stage": "customer",
                                                   "lead_source": web, "tags": ["vip"]})
    services.contact_create(actor=alice, data={"first_name": "Berk", "lifecycle_stage": "lead"})
    services.contact_create(actor=bob, data={"first_name": "Cem", "lifecycle_stage": "customer"})
    client = client_for(alice)

    assert names_on_page(client.get("/contacts/", {"stage": "customer"})) == ["Ada", "Cem"]
    assert names_on_page(client.get("/contacts/", {"owner": bob.pk})) == ["Cem"]
    assert names_on_page(client.get("/contacts/", {"source": web.pk})) == ["Ada"]
    assert names_on_page(client.get("/contacts/", {"tag": vip.pk})) == [a.full_name]
    assert names_on_page(client.get("/contacts/", {"stage": "customer", "owner": alice.pk})) == ["Ada"]


def test_filter_drop_downs_list_only_what_the_user_sees(client_for, alice, bob, charlie, south):
    response = client_for(alice).get("/contacts/")
    html = response.content.decode()
    owner_select = re.search(r'<select name="owner".*?</select>', html, re.S).group(0)
    team_select = re.search(r'<select name="team".*?</select>', html, re.S).group(0)

    assert f'value="{alice.pk}"' in owner_select and f'value="{bob.pk}"' in owner_select
    assert f'value="{charlie.pk}"' not in owner_select
    assert "North" in team_select and "South" not in team_select


def test_an_owner_the_user_cannot_see_is_refused_and_ignored(client_for, alice, charlie):
    ContactFactory(owner=alice, first_name="Mine")

    response = client_for(alice).get("/contacts/", {"owner": charlie.pk})

    assert response.status_code == 200
    assert 'id="filter-errors"' in response.content.decode()
    assert names_on_page(response) == ["Mine Person"]


def test_unknown_or_malformed_filter_ids_never_500(client_for, alice):
    client = client_for(alice)
    for params in ({"owner": "abc"}, {"team": "999999"}, {"tag": "-1"}, {"source": "1e9"}, {"stage": "boss"},
                   {"sort": "'; drop table"}, {"company": "x"}, {"cursor": "not-a-cursor"}):
        response = client.get("/contacts/", params)
        assert response.status_code == 200, params
        response = client.get("/companies/", params)
        assert response.status_code == 200, params


def test_company_filter_from_the_company_page_lists_its_contacts(client_for, alice):
    acme = CompanyFactory(name="Acme", owner=alice)
    ContactFactory(owner=alice, first_name="In", company=acme)
    ContactFactory(owner=alice, first_name="Out")

    response = client_for(alice).get("/contacts/", {"company": acme.pk})

    assert names_on_page(response) == ["In Person"]
    assert "Acme" in response.content.decode()


# --- sorting and pages -------------------------------------------------------------------------


def test_sort_orders_name_az_za_newest_oldest_updated(client_for, alice):
    now = timezone.now()
    # Turkish alphabetical order: Can < Çetin < Ömer < Zafer.
    for i, name in enumerate(["Zafer", "Çetin", "Can", "Ömer"]):
        ContactFactory(owner=alice, first_name=name, last_name="", created_at=now - timedelta(days=10 - i),
                       updated_at=now - timedelta(days=i))
    client = client_for(alice)

    assert names_on_page(client.get("/contacts/", {"sort": "name"})) == ["Can", "Çetin", "Ömer", "Zafer"]
    assert names_on_page(client.get("/contacts/", {"sort": "-name"})) == ["Zafer", "Ömer", "Çetin", "Can"]
    assert names_on_page(client.get("/contacts/", {"sort": "newest"})) == ["Ömer", "Can", "Çetin", "Zafer"]
    assert names_on_page(client.get("/contacts/", {"sort": "oldest"})) == ["Zafer", "Çetin", "Can", "Ömer"]
    assert names_on_page(client.get("/contacts/", {"sort": "updated"})) == ["Zafer", "Çetin", "Can", "Ömer"]


def test_next_and_previous_links_walk_the_pages_in_order(client_for, alice):
    names = [f"P{i:03d}" for i in range(120)]
    ContactFactory.create_batch(120, owner=alice, first_name=factory_iter(names), last_name="")
    client = client_for(alice)

    first = client.get("/contacts/", {"sort": "name", "q": "p"})
    assert names_on_page(first) == names[:50]
    assert previous_link(first) is None
    second = client.get("/contacts/" + next_link(first))
    assert names_on_page(second) == names[50:100]
    third = client.get("/contacts/" + next_link(second))
    assert names_on_page(third) == names[100:]
    assert next_link(third) is None
    back = client.get("/contacts/" + previous_link(third))
    assert names_on_page(back) == names[50:100]
    back_again = client.get("/contacts/" + previous_link(back))
    assert names_on_page(back_again) == names[:50]
    # The search and the sort ride along in the links.
    assert "q=p" in next_link(first) and "sort=name" in next_link(first)


def test_descending_sort_pages_backwards_through_the_alphabet(client_for, alice):
    names = [f"Q{i:03d}" for i in range(60)]
    ContactFactory.create_batch(60, owner=alice, first_name=factory_iter(names), last_name="")
    client = client_for(alice)

    first = client.get("/contacts/", {"sort": "-name"})
    second = client.get("/contacts/" + next_link(first))

    assert names_on_page(first) == names[::-1][:50]
    assert names_on_page(second) == names[::-1][50:]


def test_a_forged_cursor_shows_the_first_page_with_a_message(client_for, alice):
    ContactFactory(owner=alice, first_name="Only")

    response = client_for(alice).get("/contacts/", {"cursor": "eyJ2IjpbMV0sImlkIjoieCJ9"})

    assert response.status_code == 200
    assert names_on_page(response) == ["Only Person"]
    assert "no longer valid" in response.content.decode()


def test_list_page_never_counts_the_table(client_for, alice):
    ContactFactory.create_batch(3, owner=alice)
    with CaptureQueriesContext(connection) as ctx:
        client_for(alice).get("/contacts/", {"q": "first", "stage": "lead"})
    assert not [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper() and "contacts_contact" in q["sql"]]


# --- fixed number of queries -------------------------------------------------------------------


def _rows(n, owner, **kwargs):
    company = CompanyFactory(owner=owner)
    source = LeadSourceFactory()
    return ContactFactory.create_batch(n, owner=owner, company=company, lead_source=source,
                                       phone="+905321234567", **kwargs)


# Queries of a contact list page for a rep: session, user, the unread count in the bell,
# the page of rows (with company, owner and lead source joined), and one per filter drop-down
# (owner, team, lead source, tag).
CONTACT_LIST_QUERIES = 8


@pytest.mark.parametrize("rows", [5, 50])
def test_contact_list_uses_the_same_number_of_queries_for_5_or_50_rows(
    client_for, alice, rows, django_assert_num_queries
):
    _rows(rows, alice)
    client = client_for(alice)
    with django_assert_num_queries(CONTACT_LIST_QUERIES):
        response = client.get("/contacts/")
    assert len(names_on_page(response)) == rows


@pytest.mark.parametrize("rows", [5, 50])
def test_contact_list_with_search_filters_and_cursor_keeps_its_query_count(
    client_for, alice, rows, django_assert_num_queries
):
    _rows(rows + 50, alice, lifecycle_stage=LifecycleStage.LEAD)
    tag = TagFactory()
    for contact in Contact.objects.all():
        contact.tags.add(tag)
    client = client_for(alice)
    first = client.get("/contacts/", {"q": "person", "stage": "lead", "tag": tag.pk, "owner": alice.pk})
    # Three more: the chosen owner and tag are validated against what the user may see, and the
    # companies whose name matches the search word are looked up.
    with django_assert_num_queries(CONTACT_LIST_QUERIES + 3):
        response = client.get("/contacts/" + next_link(first))
    assert len(names_on_page(response)) == rows


# Companies: the same shape (rows join owner and lead source).
COMPANY_LIST_QUERIES = 8


@pytest.mark.parametrize("rows", [5, 50])
def test_company_list_uses_the_same_number_of_queries_for_5_or_50_rows(
    client_for, alice, rows, django_assert_num_queries
):
    CompanyFactory.create_batch(rows, owner=alice, lead_source=LeadSourceFactory(), phone="+902121234567")
    client = client_for(alice)
    with django_assert_num_queries(COMPANY_LIST_QUERIES):
        response = client.get("/companies/")
    assert len(names_on_page(response)) == rows


def test_manager_list_query_count_is_fixed_too(client_for, mona, alice, django_assert_num_queries):
    _rows(50, alice)
    client = client_for(mona)
    # A manager's teams are looked up once per visibility question (rows, owner and team drop-downs).
    with CaptureQueriesContext(connection) as small:
        client.get("/contacts/?sort=newest")
    _rows(50, UserFactory(team=alice.team))
    with CaptureQueriesContext(connection) as big:
        response = client.get("/contacts/?sort=newest")
    assert len(names_on_page(response)) == 50
    assert len(big.captured_queries) == len(small.captured_queries)


# --- companies -----------------------------------------------------------------------------------


def test_company_list_search_is_turkish_aware_and_scoped(client_for, alice, charlie):
    services.company_create(actor=alice, data={"name": "IŞIK Yazılım"})
    services.company_create(actor=alice, data={"name": "Deniz Lojistik"})
    services.company_create(actor=charlie, data={"name": "Işık Gıda"})

    response = client_for(alice).get("/companies/", {"q": "isik"})

    assert names_on_page(response) == ["IŞIK Yazılım"]


def test_company_list_pages_and_sorts(client_for, alice):
    names = [f"Firma {i:03d}" for i in range(55)]
    CompanyFactory.create_batch(55, owner=alice, name=factory_iter(names))
    client = client_for(alice)

    first = client.get("/companies/", {"sort": "name"})
    second = client.get("/companies/" + next_link(first))

    assert names_on_page(first) == names[:50]
    assert names_on_page(second) == names[50:]
    assert names_on_page(client.get("/companies/", {"sort": "-name"}))[:2] == ["Firma 054", "Firma 053"]


def factory_iter(values):
    import factory

    return factory.Iterator(values)
