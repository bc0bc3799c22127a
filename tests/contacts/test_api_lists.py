"""List endpoints: filters, Turkish-aware search, ordering, keyset pages, bad parameters, query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts import services
from contacts.models import Activity, CustomFieldDefinition
from tests.factories import (
    ActivityFactory,
    CompanyFactory,
    ContactFactory,
    LeadSourceFactory,
    TagFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"


def ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def make(actor, first_name, **data):
    return services.contact_create(actor=actor, data={"first_name": first_name, **data})


# --- search ---------------------------------------------------------------------------------------


@pytest.fixture
def people(alice):
    company = services.company_create(actor=alice, data={"name": "Güneş Enerji A.Ş."})
    return {
        "isik": make(alice, "Can", last_name="IŞIK", email="can@isik.com.tr"),
        "sahin": make(alice, "Ayşe", last_name="Şahin", phone="0532 123 45 67"),
        "istanbul": make(alice, "İSMAİL", last_name="Kaya", company=company),
        "other": make(alice, "John", last_name="Smith", email="john@example.com"),
    }


@pytest.mark.parametrize("term, expected", [
    ("ışık", ["isik"]),
    ("IŞIK", ["isik"]),
    ("isik", ["isik"]),
    ("sahin", ["sahin"]),
    ("ŞAHİN", ["sahin"]),
    ("ayse sahin", ["sahin"]),
    ("ismail", ["istanbul"]),
    ("gunes", ["istanbul"]),
    ("john@example", ["other"]),
    ("5321234567", ["sahin"]),
    ("0532 123", ["sahin"]),
    ("nobody", []),
])
def test_search_is_turkish_aware_and_accent_insensitive(api_for, alice, people, term, expected):
    response = api_for(alice).get(URL, {"search": term})

    assert ids(response) == [people[key].pk for key in expected]


def test_search_is_limited_to_visible_contacts(api_for, charlie, people):
    assert ids(api_for(charlie).get(URL, {"search": "sahin"})) == []


# --- filters -----------------------------------------------------------------------------------------


def test_filters_by_owner_team_stage_source_tag_company(api_for, sam, alice, bob, charlie, north, south):
    source = LeadSourceFactory(name="Fuar")
    company = CompanyFactory(name="Koç", owner=alice)
    a = make(alice, "A", lifecycle_stage="lead", lead_source=source, tags=["VIP"], company=company)
    b = make(bob, "B", lifecycle_stage="mql", tags=["cold"])
    c = make(charlie, "C", lifecycle_stage="customer", email="c@example.com")
    api = api_for(sam)

    assert ids(api.get(URL, {"owner": bob.pk})) == [b.pk]
    assert ids(api.get(URL, {"team": south.pk})) == [c.pk]
    assert ids(api.get(URL, {"lifecycle_stage": ["lead", "customer"]})) == [a.pk, c.pk]
    assert ids(api.get(URL, {"lead_source": source.pk})) == [a.pk]
    assert ids(api.get(URL, {"tag": "vip"})) == [a.pk]
    assert ids(api.get(URL, {"company": company.pk})) == [a.pk]
    assert ids(api.get(URL, {"has_email": "true"})) == [c.pk]
    assert ids(api.get(URL, {"has_email": "false"})) == [a.pk, b.pk]
    assert ids(api.get(URL, {"team": north.pk, "lifecycle_stage": "mql"})) == [b.pk]


def test_filters_by_created_and_updated_time(api_for, alice):
    now = timezone.now()
    old = ContactFactory(owner=alice, first_name="Old", created_at=now - timedelta(days=10),
                         updated_at=now - timedelta(days=10))
    new = ContactFactory(owner=alice, first_name="New", created_at=now - timedelta(days=1),
                         updated_at=now - timedelta(hours=1))
    api = api_for(alice)
    since = (now - timedelta(days=5)).isoformat()

    assert ids(api.get(URL, {"created_after": since})) == [new.pk]
    assert ids(api.get(URL, {"created_before": since})) == [old.pk]
    assert ids(api.get(URL, {"updated_since": (now - timedelta(hours=2)).isoformat()})) == [new.pk]
    assert ids(api.get(URL, {"created_after": (now - timedelta(days=30)).date().isoformat()})) == [new.pk, old.pk]


def test_filters_by_custom_fields_of_each_type(api_for, alice):
    CustomFieldDefinition.objects.create(entity="contact", key="budget", label="Budget", field_type="number")
    CustomFieldDefinition.objects.create(entity="contact", key="sector", label="Sector", field_type="choice",
                                         choices=["Retail", "Energy"])
    CustomFieldDefinition.objects.create(entity="contact", key="vip", label="VIP", field_type="boolean")
    CustomFieldDefinition.objects.create(entity="contact", key="renewal", label="Renewal", field_type="date")
    a = make(alice, "A", custom_fields={"budget": "1500", "sector": "Retail", "vip": True, "renewal": "2025-06-30"})
    b = make(alice, "B", custom_fields={"budget": 20, "sector": "Energy", "vip": False})
    api = api_for(alice)

    assert ids(api.get(URL, {"cf_budget": "1500"})) == [a.pk]
    assert ids(api.get(URL, {"cf_sector": "Energy"})) == [b.pk]
    assert ids(api.get(URL, {"cf_vip": "true"})) == [a.pk]
    assert ids(api.get(URL, {"cf_vip": "false"})) == [b.pk]
    assert ids(api.get(URL, {"cf_renewal": "2025-06-30"})) == [a.pk]
    assert ids(api.get(URL, {"cf_sector": "Retail", "cf_budget": "20"})) == []


@pytest.mark.parametrize("params, field", [
    ({"owner": "abc"}, "owner"),
    ({"owner": "1.5"}, "owner"),
    ({"owner": "99999999999999999999999"}, "owner"),
    ({"team": "-1"}, "team"),
    ({"lifecycle_stage": "king"}, "lifecycle_stage"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"updated_since": "2024-13-45"}, "updated_since"),
    ({"has_email": "maybe"}, "has_email"),
    ({"archived": "1"}, "archived"),
    ({"search": "x" * 201}, "search"),
    ({"tag": "x" * 51}, "tag"),
    ({"cf_nope": "1"}, "cf_nope"),
    ({"cf_budget": "lots"}, "cf_budget"),
    ({"cf_sector": "Mining"}, "cf_sector"),
    ({"lifecyle_stage": "lead"}, "lifecyle_stage"),
    ({"ordering": "shoe_size"}, "ordering"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "201"}, "page_size"),
    ({"page_size": "ten"}, "page_size"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "eyJ2IjoxfQ"}, "cursor"),
])
def test_bad_list_parameter_is_a_400_naming_it(api_for, alice, params, field):
    CustomFieldDefinition.objects.create(entity="contact", key="budget", label="Budget", field_type="number")
    CustomFieldDefinition.objects.create(entity="contact", key="sector", label="Sector", field_type="choice",
                                         choices=["Retail"])
    make(alice, "A")

    response = api_for(alice).get(URL, params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_unknown_custom_field_error_lists_the_known_ones(api_for, alice):
    CustomFieldDefinition.objects.create(entity="contact", key="budget", label="Budget", field_type="number")

    response = api_for(alice).get(URL, {"cf_budjet": "1"})

    assert response.json()["errors"] == {"cf_budjet": ["Unknown custom field “budjet”. Known fields: budget."]}


def test_detail_url_ignores_list_parameters(api_for, alice):
    contact = make(alice, "A")
    services.contact_archive(contact=contact, actor=alice)

    response = api_for(alice).get(f"{URL}{contact.pk}/", {"owner": "abc"})

    assert response.status_code == 200


# --- ordering and keyset pages ------------------------------------------------------------------------

TURKISH_ORDER = ["Cem", "Çağla", "Deniz", "Irmak", "İlker", "Oya", "Ömer", "Selin", "Şule", "Zeynep"]


def test_name_ordering_follows_the_turkish_alphabet(api_for, alice):
    for name in ["Zeynep", "Şule", "İlker", "Oya", "Çağla", "Irmak", "Ömer", "Selin", "Deniz", "Cem"]:
        make(alice, name)
    api = api_for(alice)

    def names(ordering):
        return [row["first_name"] for row in api.get(URL, {"ordering": ordering}).json()["results"]]

    assert names("name") == TURKISH_ORDER
    assert names("-name") == TURKISH_ORDER[::-1]


def test_created_and_updated_orderings(api_for, alice):
    now = timezone.now()
    rows = [ContactFactory(owner=alice, created_at=now - timedelta(days=i), updated_at=now - timedelta(days=5 - i))
            for i in range(5)]
    api = api_for(alice)

    assert ids(api.get(URL, {"ordering": "created"})) == [r.pk for r in rows[::-1]]
    assert ids(api.get(URL, {"ordering": "-created"})) == [r.pk for r in rows]
    assert ids(api.get(URL, {"ordering": "-updated"})) == [r.pk for r in rows[::-1]]


@pytest.mark.parametrize("ordering", ["name", "-name", "created", "-created", "-updated"])
def test_following_next_links_gives_every_row_once(api_for, alice, ordering):
    now = timezone.now()
    # Ties on the sort value (same name, same time) must still page correctly: the id breaks them.
    for i in range(23):
        ContactFactory(owner=alice, first_name=f"N{i % 4}", created_at=now - timedelta(minutes=i % 3),
                       updated_at=now - timedelta(minutes=i % 2))
    api = api_for(alice)
    expected = ids(api.get(URL, {"ordering": ordering, "page_size": 200}))

    seen, pages = [], 0
    response = api.get(URL, {"ordering": ordering, "page_size": 5})
    while True:
        pages += 1
        seen += ids(response)
        if response.json()["next"] is None:
            break
        response = api.get(response.json()["next"])

    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert seen == expected


def test_previous_link_goes_back_a_page(api_for, alice):
    for i in range(12):
        ContactFactory(owner=alice, first_name=f"P{i:02d}")
    api = api_for(alice)
    first = api.get(URL, {"page_size": 5})
    second = api.get(first.json()["next"])

    back = api.get(second.json()["previous"])

    assert first.json()["previous"] is None
    assert ids(back) == ids(first)


def test_page_size_limits_the_rows(api_for, alice):
    ContactFactory.create_batch(8, owner=alice)
    api = api_for(alice)

    assert len(ids(api.get(URL, {"page_size": 3}))) == 3
    assert len(ids(api.get(URL))) == 8
    assert api.get(URL, {"page_size": 3}).json()["next"].startswith("http://testserver/api/v1/contacts/?")


# --- query counts: fixed, whatever the number of rows ----------------------------------------------------


def _contacts(n, alice, **kw):
    tags = [TagFactory(name="vip"), TagFactory()]
    for _ in range(n):
        ContactFactory(owner=alice, custom_fields={"k": 1}).tags.set(tags)


def _companies(n, alice, **kw):
    tags = [TagFactory()]
    for _ in range(n):
        CompanyFactory(owner=alice).tags.set(tags)


def _activities(n, alice, **kw):
    contact = ContactFactory(owner=alice)
    for i in range(n):
        if i % 2:
            ActivityFactory(contact=contact, kind=Activity.Kind.TASK, assignee=alice,
                            due_at=timezone.now() + timedelta(days=i))
        else:
            ActivityFactory(contact=contact)


def _tags(n, alice, **kw):
    TagFactory.create_batch(n)


def _lead_sources(n, alice, **kw):
    LeadSourceFactory.create_batch(n)


def _custom_fields(n, alice, **kw):
    for i in range(n):
        CustomFieldDefinition.objects.create(entity="contact", key=f"k{i}", label=f"K{i}", field_type="text")


def _users(n, alice, north, **kw):
    UserFactory.create_batch(n - 1, team=north)


def _teams(n, alice, **kw):
    TeamFactory.create_batch(n - 1)


# Queries per request: the token look-up, then the page, then what the rows need, all fixed:
#   contacts/companies: page + tags prefetch + the admin's field rules (2, loaded once for all rows)
#   users: page (users_visible_to with the team join); teams as the admin sees them: page
LIST_QUERIES = [
    ("contacts", _contacts, "alice", 5),
    ("companies", _companies, "alice", 5),
    ("activities", _activities, "alice", 2),
    ("tags", _tags, "alice", 2),
    ("lead-sources", _lead_sources, "alice", 2),
    ("custom-fields", _custom_fields, "alice", 2),
    ("users", _users, "alice", 2),
    ("teams", _teams, "sam", 2),
]


@pytest.mark.parametrize("rows", [5, 50])
@pytest.mark.parametrize("path, build, who, queries", LIST_QUERIES)
def test_list_endpoints_use_a_fixed_number_of_queries(request, api_for, django_assert_num_queries, alice, north,
                                                      path, build, who, queries, rows):
    build(rows, alice=alice, north=north)
    api = api_for(request.getfixturevalue(who))
    api.get(f"/api/v1/{path}/")  # the first call records the token's use; later ones only read

    with django_assert_num_queries(queries):
        response = api.get(f"/api/v1/{path}/", {"page_size": 200})

    assert response.status_code == 200
    assert len(response.json()["results"]) == rows


def test_contact_list_with_search_and_filters_keeps_its_query_count(api_for, django_assert_num_queries, alice):
    CustomFieldDefinition.objects.create(entity="contact", key="k", label="K", field_type="number")
    _contacts(7, alice)
    api = api_for(alice)
    api.get(URL)

    # 5 as for a plain list (the custom-field filter reuses the rules the rows need), plus one
    # look-up of the companies whose name matches the search word.
    with django_assert_num_queries(6):
        response = api.get(URL, {"search": "person", "tag": "VIP", "cf_k": "1", "lifecycle_stage": "lead"})

    assert len(ids(response)) == 7


def test_manager_list_adds_only_the_managed_teams_lookup(api_for, django_assert_num_queries, alice, mona):
    _contacts(5, alice)
    api = api_for(mona)
    api.get(URL)

    with django_assert_num_queries(6):
        response = api.get(URL)

    assert len(response.json()["results"]) == 5
