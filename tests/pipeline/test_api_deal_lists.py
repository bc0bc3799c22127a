"""The deal list endpoint: every filter, Turkish-aware search, keyset sorts and pages, bad parameters, queries."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.models import Pipeline
from tests.factories import CompanyFactory, ContactFactory, DealFactory, LeadSourceFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/deals/"


def ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def deals(alice, bob, charlie, stages, price, now):
    """Five deals with known values, newest first: e, d, c, b, a."""
    contact = ContactFactory(owner=alice)
    company = CompanyFactory(owner=alice, name="Işık Tekstil")
    source = LeadSourceFactory(name="Fuar")
    return {
        "a": DealFactory(name="Işık Tekstil yenileme", stage=stages["Lead"], owner=alice, amount=Decimal("1000.00"),
                         expected_close_date=date(2027, 1, 15), contact=contact, company=company, lead_source=source,
                         created_at=now - timedelta(days=5), updated_at=now - timedelta(days=5)),
        "b": DealFactory(name="Şahin Enerji lisans", stage=stages["Proposal"], owner=bob, amount=Decimal("5000.00"),
                         currency="EUR", expected_close_date=date(2027, 2, 10), company=company,
                         created_at=now - timedelta(days=4), updated_at=now - timedelta(hours=1)),
        "c": DealFactory(name="ISIK kablo", stage=stages["Won"], owner=charlie, amount=None,
                         created_at=now - timedelta(days=3), updated_at=now - timedelta(days=3)),
        "d": DealFactory(name="Güneş paneli", stage=stages["Lost"], owner=alice, amount=Decimal("200.00"),
                         lost_reason=price, expected_close_date=date(2027, 2, 28),
                         created_at=now - timedelta(days=2), updated_at=now - timedelta(days=2)),
        # In Negotiation (rotting limit 30 days) for 40 days: stale.
        "e": DealFactory(name="Çağrı merkezi", stage=stages["Negotiation"], owner=alice, amount=Decimal("999.99"),
                         stage_entered_at=now - timedelta(days=40), created_at=now - timedelta(days=1),
                         updated_at=now - timedelta(days=1)),
    }


def names(deals, *keys):
    return [deals[key].pk for key in keys]


# --- filters -----------------------------------------------------------------------------------------------


def test_filters_by_pipeline_and_stage(api_for, sam, deals, stages, pipe):
    other = Pipeline.objects.get(name="New business")
    elsewhere = DealFactory(stage=other.stages.order_by("order").first())
    api = api_for(sam)

    assert ids(api.get(URL, {"pipeline": pipe.pk})) == names(deals, "e", "d", "c", "b", "a")
    assert ids(api.get(URL, {"pipeline": other.pk})) == [elsewhere.pk]
    assert ids(api.get(URL, {"stage": stages["Proposal"].pk})) == names(deals, "b")
    assert ids(api.get(URL, {"stage": stages["Qualified"].pk})) == []


def test_filters_by_owner_and_team(api_for, sam, alice, bob, deals, north, south):
    api = api_for(sam)

    assert ids(api.get(URL, {"owner": alice.pk})) == names(deals, "e", "d", "a")
    assert ids(api.get(URL, {"owner": bob.pk})) == names(deals, "b")
    assert ids(api.get(URL, {"team": north.pk})) == names(deals, "e", "d", "b", "a")
    assert ids(api.get(URL, {"team": south.pk})) == names(deals, "c")


def test_filters_by_status_one_or_several(api_for, sam, deals):
    api = api_for(sam)

    assert ids(api.get(URL, {"status": "open"})) == names(deals, "e", "b", "a")
    assert ids(api.get(URL, {"status": "won"})) == names(deals, "c")
    assert ids(api.get(URL, {"status": ["won", "lost"]})) == names(deals, "d", "c")


def test_filters_by_staleness(api_for, sam, deals):
    api = api_for(sam)

    assert ids(api.get(URL, {"stale": "true"})) == names(deals, "e")
    assert ids(api.get(URL, {"stale": "false"})) == names(deals, "d", "c", "b", "a")
    assert [row["is_stale"] for row in api.get(URL).json()["results"]] == [True, False, False, False, False]


def test_filters_by_expected_close_date_range(api_for, sam, deals):
    api = api_for(sam)

    assert ids(api.get(URL, {"close_from": "2027-02-01"})) == names(deals, "d", "b")
    assert ids(api.get(URL, {"close_to": "2027-02-10"})) == names(deals, "b", "a")
    assert ids(api.get(URL, {"close_from": "2027-01-15", "close_to": "2027-02-27"})) == names(deals, "b", "a")
    assert ids(api.get(URL, {"close_from": "2027-03-01"})) == []


def test_filters_by_amount_range(api_for, sam, deals):
    api = api_for(sam)

    assert ids(api.get(URL, {"amount_min": "999.99"})) == names(deals, "e", "b", "a")
    assert ids(api.get(URL, {"amount_max": "999.99"})) == names(deals, "e", "d")
    assert ids(api.get(URL, {"amount_min": "200", "amount_max": "1000"})) == names(deals, "e", "d", "a")
    assert ids(api.get(URL, {"amount_min": "0"})) == names(deals, "e", "d", "b", "a")


def test_filters_by_contact_company_lead_source_and_lost_reason(api_for, sam, deals, price):
    api = api_for(sam)
    a = deals["a"]

    assert ids(api.get(URL, {"contact": a.contact_id})) == names(deals, "a")
    assert ids(api.get(URL, {"company": a.company_id})) == names(deals, "b", "a")
    assert ids(api.get(URL, {"lead_source": a.lead_source_id})) == names(deals, "a")
    assert ids(api.get(URL, {"lost_reason": price.pk})) == names(deals, "d")


def test_filters_by_updated_since(api_for, sam, deals, now):
    api = api_for(sam)

    assert ids(api.get(URL, {"updated_since": (now - timedelta(hours=2)).isoformat()})) == names(deals, "b")
    assert ids(api.get(URL, {"updated_since": (now - timedelta(days=2, hours=1)).isoformat()})) == names(
        deals, "e", "d", "b")


@pytest.mark.parametrize("term, expected", [
    ("ışık", ["c", "a"]),
    ("IŞIK", ["c", "a"]),
    ("isik", ["c", "a"]),
    ("sahin", ["b"]),
    ("ŞAHİN lisans", ["b"]),
    ("gunes", ["d"]),
    ("çağrı", ["e"]),
    ("cagri MERKEZI", ["e"]),
    ("yenileme kablo", []),
    ("  ", ["e", "d", "c", "b", "a"]),
])
def test_search_is_turkish_aware_and_accent_insensitive(api_for, sam, deals, term, expected):
    assert ids(api_for(sam).get(URL, {"search": term})) == names(deals, *expected)


def test_filters_combine_and_stay_within_what_the_caller_sees(api_for, alice, charlie, deals, north, stages):
    assert ids(api_for(alice).get(URL, {"team": north.pk, "status": "open", "amount_min": "1000"})) == names(
        deals, "b", "a")
    assert ids(api_for(charlie).get(URL, {"search": "isik"})) == names(deals, "c")
    assert ids(api_for(charlie).get(URL, {"team": north.pk})) == []


# --- bad parameters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("params, field", [
    ({"pipeline": "Satış"}, "pipeline"),
    ({"stage": "1.5"}, "stage"),
    ({"owner": "99999999999999999999999"}, "owner"),
    ({"team": "-1"}, "team"),
    ({"contact": "abc"}, "contact"),
    ({"company": "0"}, "company"),
    ({"lead_source": "x"}, "lead_source"),
    ({"lost_reason": "fiyat"}, "lost_reason"),
    ({"status": "kazanıldı"}, "status"),
    ({"stale": "evet"}, "stale"),
    ({"stale": "1"}, "stale"),
    ({"close_from": "yarın"}, "close_from"),
    ({"close_to": "2027-02-30"}, "close_to"),
    ({"amount_min": "çok"}, "amount_min"),
    ({"amount_max": "NaN"}, "amount_max"),
    ({"amount_max": "1e400"}, "amount_max"),
    ({"amount_min": "0.001"}, "amount_min"),
    ({"updated_since": "dün"}, "updated_since"),
    ({"search": "ş" * 201}, "search"),
    ({"stages": "1"}, "stages"),
    ({"close_month": "2027-01"}, "close_month"),
    ({"ordering": "amount"}, "ordering"),
    ({"ordering": "expected_close_date"}, "ordering"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "201"}, "page_size"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
def test_bad_list_parameter_is_a_400_naming_it(api_for, alice, deals, params, field):
    response = api_for(alice).get(URL, params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_unknown_parameter_error_lists_the_known_ones(api_for, alice):
    response = api_for(alice).get(URL, {"closed": "true"})

    assert response.json()["errors"] == {"closed": [
        "Unknown query parameter. Known parameters: pipeline, stage, owner, team, status, stale, close_from, "
        "close_to, amount_min, amount_max, contact, company, lead_source, lost_reason, search, updated_since, "
        "cursor, ordering, page_size."]}


def test_sorting_by_a_column_that_may_be_empty_is_not_offered(api_for, alice):
    response = api_for(alice).get(URL, {"ordering": "amount"})

    assert response.json()["errors"] == {"ordering": [
        "“amount” is not one of: -created, created, -updated, updated, in_stage, -in_stage."]}


# --- sorts and keyset pages ------------------------------------------------------------------------------


def test_sorts(api_for, sam, deals):
    api = api_for(sam)

    assert ids(api.get(URL)) == names(deals, "e", "d", "c", "b", "a")
    assert ids(api.get(URL, {"ordering": "created"})) == names(deals, "a", "b", "c", "d", "e")
    assert ids(api.get(URL, {"ordering": "-updated"})) == names(deals, "b", "e", "d", "c", "a")
    assert ids(api.get(URL, {"ordering": "updated"})) == names(deals, "a", "c", "d", "e", "b")
    # Longest in its stage first: e entered 40 days ago, the others when they were created.
    assert ids(api.get(URL, {"ordering": "in_stage"})) == names(deals, "e", "a", "b", "c", "d")
    assert ids(api.get(URL, {"ordering": "-in_stage"})) == names(deals, "d", "c", "b", "a", "e")


@pytest.mark.parametrize("ordering", ["-created", "created", "-updated", "updated", "in_stage", "-in_stage"])
def test_following_next_links_gives_every_row_once(api_for, alice, stages, now, ordering):
    # Ties on the sort value must still page correctly: the id breaks them.
    for i in range(23):
        at = now - timedelta(minutes=i % 3)
        DealFactory(stage=stages["Lead"], owner=alice, created_at=at, updated_at=now - timedelta(minutes=i % 2))
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


def test_previous_link_goes_back_a_page(api_for, alice, stages):
    for _ in range(12):
        DealFactory(stage=stages["Lead"], owner=alice)
    api = api_for(alice)
    first = api.get(URL, {"page_size": 5})
    second = api.get(first.json()["next"])

    back = api.get(second.json()["previous"])

    assert first.json()["previous"] is None
    assert ids(back) == ids(first)
    assert first.json()["next"].startswith("http://testserver/api/v1/deals/?")


# --- query counts: fixed, whatever the number of rows --------------------------------------------------------


def _deals(n, owner, stages, price):
    contact = ContactFactory(owner=owner)
    company = CompanyFactory(owner=owner)
    for i in range(n):
        stage = stages[["Lead", "Proposal", "Won", "Lost"][i % 4]]
        DealFactory(stage=stage, owner=owner, amount=Decimal(i * 100), contact=contact, company=company,
                    lost_reason=price if stage.kind == "lost" else None, custom_fields={"k": i})


@pytest.mark.parametrize("rows", [5, 50])
@pytest.mark.parametrize("who, queries", [
    # token, then the page (with the stages, for weighted amounts)
    ("alice", 2), ("sam", 2), ("integ", 2),
    # a manager's visible teams are looked up once
    ("mona", 3),
])
def test_deal_list_uses_a_fixed_number_of_queries(request, api_for, django_assert_num_queries, alice, stages, price,
                                                   rows, who, queries):
    _deals(rows, alice, stages, price)
    api = api_for(request.getfixturevalue(who))
    api.get(URL)  # the first call records the token's use; later ones only read

    with django_assert_num_queries(queries):
        response = api.get(URL, {"page_size": 200})

    assert len(response.json()["results"]) == rows


def test_filters_and_search_add_no_queries(api_for, django_assert_num_queries, alice, north, pipe, stages, price):
    _deals(20, alice, stages, price)
    api = api_for(alice)
    api.get(URL)

    with django_assert_num_queries(2):
        response = api.get(URL, {
            "pipeline": pipe.pk, "team": north.pk, "owner": alice.pk, "status": ["open", "won"], "stale": "false",
            "amount_min": "0", "amount_max": "100000", "search": "deal", "updated_since": "2000-01-01T00:00:00Z",
            "ordering": "-updated", "page_size": 200,
        })

    assert len(ids(response)) == 15  # open (Lead, Proposal) and won; the lost ones are left out


def test_a_team_of_many_users_keeps_the_count(api_for, django_assert_num_queries, alice, north, stages, price):
    for user in UserFactory.create_batch(5, team=north):
        _deals(3, user, stages, price)
    api = api_for(alice)
    api.get(URL)

    with django_assert_num_queries(2):
        assert len(ids(api.get(URL, {"page_size": 200}))) == 15
