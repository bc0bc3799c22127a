"""The deals list and its CSV export: columns, Turkish-aware search, every filter, sorts over keyset pages
(nullable columns included), bad filter values reported (never a 500), visibility, and fixed query counts."""

import csv
import html as html_lib
import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from contacts import services as contact_services
from pipeline import services, views_deals
from tests.factories import ContactFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db


def names_on_page(response) -> list[str]:
    """The deal names in the list's rows, in page order."""
    found = re.findall(r'<td class="cell-name"><a href="/deals/\d+/">([^<]+)</a>', response.content.decode())
    return [html_lib.unescape(name) for name in found]


def next_link(response) -> str | None:
    match = re.search(r'<a class="btn btn-ghost" rel="next" href="([^"]+)"', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def previous_link(response) -> str | None:
    match = re.search(r'<a class="btn btn-ghost" rel="prev" href="([^"]+)"', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def filter_errors(response) -> str:
    match = re.search(r'<ul class="errorlist filter-errors">(.*?)</ul>', response.content.decode(), re.S)
    return re.sub(r"<[^>]+>", " ", match.group(1)) if match else ""


def all_pages(client, params) -> list[str]:
    """Every name over every page, following the next links."""
    response = client.get("/deals/", params)
    names = names_on_page(response)
    while (link := next_link(response)) is not None:
        response = client.get("/deals/" + link)
        names += names_on_page(response)
    return names


def export(client, params=None) -> tuple[str, list[list[str]]]:
    response = client.get("/deals/export.csv", params or {})
    assert response.status_code == 200
    raw = b"".join(response.streaming_content).decode("utf-8")
    return raw, list(csv.reader(io.StringIO(raw.removeprefix("\ufeff"))))


@pytest.fixture
def other_pipe(sam):
    return services.pipeline_create(actor=sam, name="Renewals", stages=[
        {"name": "Due", "probability": 50},
        {"name": "Renewed", "probability": 100, "kind": "won"},
        {"name": "Churned", "probability": 0, "kind": "lost"},
    ])


# --- the rows ------------------------------------------------------------------------------------


def test_list_shows_stage_pipeline_amount_weighted_close_date_owner_status_stale_and_days_in_stage(
    client_for, alice, stages
):
    DealFactory(name="Filo kiralama", stage=stages["Negotiation"], owner=alice, amount=Decimal("12500.50"),
                expected_close_date=date(2026, 11, 20), created_at=timezone.now() - timedelta(days=40, hours=1))

    response = client_for(alice).get("/deals/")
    html = response.content.decode()
    row = re.search(r"<tr class=\"is-stale\">(.*?)</tr>", html, re.S).group(1)

    assert response.status_code == 200
    assert names_on_page(response) == ["Filo kiralama"]
    assert "Negotiation" in row and "Sales" in row
    # 12,500.50 × 80 % = 10,000.40
    assert "12,500.50 <span class=\"muted\">TRY</span>" in row
    assert "10,000.40 <span class=\"muted\">TRY</span>" in row
    assert "20 Nov 2026" in row
    assert str(alice) in row
    assert ">Open<" in row and ">Stale<" in row
    assert '<td class="num">40</td>' in row


def test_a_deal_in_its_stage_for_less_than_the_rotting_limit_has_no_stale_badge(client_for, alice, stages):
    DealFactory(name="Fresh", stage=stages["Negotiation"], owner=alice, created_at=timezone.now() - timedelta(days=29))

    html = client_for(alice).get("/deals/").content.decode()

    assert "Fresh" in html and "badge-stale" not in html and 'class="is-stale"' not in html


def test_list_never_shows_deals_the_user_may_not_see(client_for, alice, bob, charlie, stages):
    DealFactory(name="Ours", stage=stages["Lead"], owner=bob)
    DealFactory(name="Theirs", stage=stages["Lead"], owner=charlie)

    assert names_on_page(client_for(alice).get("/deals/")) == ["Ours"]
    assert names_on_page(client_for(alice).get("/deals/", {"q": "theirs"})) == []


# --- search and filters --------------------------------------------------------------------------


def test_search_is_turkish_aware(client_for, alice, make_deal):
    make_deal(alice, name="IŞIK Yazılım lisansı")
    make_deal(alice, name="Şahin Lojistik filo")
    make_deal(alice, name="Deniz Gıda")
    client = client_for(alice)

    assert names_on_page(client.get("/deals/", {"q": "ışık"})) == ["IŞIK Yazılım lisansı"]
    assert names_on_page(client.get("/deals/", {"q": "isik"})) == ["IŞIK Yazılım lisansı"]
    assert names_on_page(client.get("/deals/", {"q": "sahin filo"})) == ["Şahin Lojistik filo"]
    assert "No deals match" in client.get("/deals/", {"q": "yok"}).content.decode()


def test_filter_by_pipeline_and_stage(client_for, alice, stages, other_pipe):
    DealFactory(name="Lead deal", stage=stages["Lead"], owner=alice)
    DealFactory(name="Proposal deal", stage=stages["Proposal"], owner=alice)
    due = other_pipe.stages.get(name="Due")
    DealFactory(name="Renewal deal", stage=due, owner=alice)
    client = client_for(alice)
    pipe = stages["Lead"].pipeline

    assert sorted(names_on_page(client.get("/deals/", {"pipeline": pipe.pk}))) == ["Lead deal", "Proposal deal"]
    assert names_on_page(client.get("/deals/", {"pipeline": other_pipe.pk})) == ["Renewal deal"]
    assert names_on_page(client.get("/deals/", {"stage": stages["Proposal"].pk})) == ["Proposal deal"]
    assert names_on_page(client.get("/deals/", {"pipeline": pipe.pk, "stage": stages["Lead"].pk})) == ["Lead deal"]


def test_stage_drop_down_lists_the_chosen_pipelines_stages(client_for, alice, stages, other_pipe):
    html = client_for(alice).get("/deals/", {"pipeline": other_pipe.pk}).content.decode()
    stage_select = re.search(r'<select name="stage".*?</select>', html, re.S).group(0)

    assert "Due" in stage_select and "Renewed" in stage_select
    assert "Proposal" not in stage_select


def test_filter_by_owner_and_team(client_for, alice, bob, mona, stages):
    DealFactory(name="Alice's", stage=stages["Lead"], owner=alice)
    DealFactory(name="Bob's", stage=stages["Lead"], owner=bob)
    DealFactory(name="Nobody's", stage=stages["Lead"], owner=None, team=alice.team)
    client = client_for(mona)

    assert names_on_page(client.get("/deals/", {"owner": bob.pk})) == ["Bob's"]
    assert sorted(names_on_page(client.get("/deals/", {"team": alice.team_id}))) == ["Alice's", "Bob's", "Nobody's"]


def test_filter_by_status(client_for, alice, stages):
    DealFactory(name="Open one", stage=stages["Lead"], owner=alice)
    DealFactory(name="Won one", stage=stages["Won"], owner=alice)
    DealFactory(name="Lost one", stage=stages["Lost"], owner=alice)
    client = client_for(alice)

    assert names_on_page(client.get("/deals/", {"status": "won"})) == ["Won one"]
    assert names_on_page(client.get("/deals/", {"status": "lost"})) == ["Lost one"]
    assert names_on_page(client.get("/deals/", {"status": "open"})) == ["Open one"]


def test_filter_stale_yes_and_no(client_for, alice, stages):
    old = timezone.now() - timedelta(days=31)
    DealFactory(name="Stuck", stage=stages["Negotiation"], owner=alice, created_at=old)
    DealFactory(name="Moving", stage=stages["Negotiation"], owner=alice)
    # A closed deal is never stale, however long ago it closed.
    DealFactory(name="Closed long ago", stage=stages["Won"], owner=alice, created_at=old - timedelta(days=400))
    client = client_for(alice)

    assert names_on_page(client.get("/deals/", {"stale": "yes"})) == ["Stuck"]
    assert sorted(names_on_page(client.get("/deals/", {"stale": "no"}))) == ["Closed long ago", "Moving"]


def test_filter_by_expected_close_month(client_for, alice, stages):
    DealFactory(name="First of Nov", stage=stages["Lead"], owner=alice, expected_close_date=date(2026, 11, 1))
    DealFactory(name="Last of Nov", stage=stages["Lead"], owner=alice, expected_close_date=date(2026, 11, 30))
    DealFactory(name="December", stage=stages["Lead"], owner=alice, expected_close_date=date(2026, 12, 1))
    DealFactory(name="Undated", stage=stages["Lead"], owner=alice)

    names = names_on_page(client_for(alice).get("/deals/", {"close_month": "2026-11"}))

    assert sorted(names) == ["First of Nov", "Last of Nov"]


def test_filter_by_contact_and_company_shows_a_removable_chip(client_for, alice, make_deal):
    company = contact_services.company_create(actor=alice, data={"name": "Acme Makina"})
    contact = contact_services.contact_create(actor=alice, data={"first_name": "Ayşe", "company": company})
    make_deal(alice, name="With Ayşe", contact=contact)
    make_deal(alice, name="Alone")
    client = client_for(alice)

    by_contact = client.get("/deals/", {"contact": contact.pk})
    by_company = client.get("/deals/", {"company": company.pk})

    assert names_on_page(by_contact) == ["With Ayşe"]
    assert "Contact: <strong>Ayşe</strong>" in by_contact.content.decode()
    # The company comes from the contact when the deal is created.
    assert names_on_page(by_company) == ["With Ayşe"]


def test_filters_combine(client_for, alice, bob, stages):
    DealFactory(name="Match", stage=stages["Negotiation"], owner=alice, expected_close_date=date(2026, 11, 5),
                created_at=timezone.now() - timedelta(days=45))
    DealFactory(name="Wrong owner", stage=stages["Negotiation"], owner=bob, expected_close_date=date(2026, 11, 5),
                created_at=timezone.now() - timedelta(days=45))
    DealFactory(name="Not stale", stage=stages["Negotiation"], owner=alice, expected_close_date=date(2026, 11, 5))

    names = names_on_page(client_for(alice).get("/deals/", {
        "pipeline": stages["Lead"].pipeline_id, "stage": stages["Negotiation"].pk, "owner": alice.pk,
        "status": "open", "stale": "yes", "close_month": "2026-11", "q": "match",
    }))

    assert names == ["Match"]


# --- bad filter values ---------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "message"), [
    ({"pipeline": "999999"}, "Pipeline: Unknown pipeline."),
    ({"pipeline": "abc"}, "Pipeline: Unknown pipeline."),
    ({"pipeline": "99999999999999999999999"}, "Pipeline: Unknown pipeline."),
    ({"stage": "999999"}, "Stage: Unknown stage."),
    ({"owner": "999999"}, "Owner: Unknown owner"),
    ({"team": "x"}, "Team: Unknown team"),
    ({"status": "maybe"}, "Status: Select a valid choice."),
    ({"stale": "sometimes"}, "Stale: Select a valid choice."),
    ({"close_month": "2026-13"}, "Close month: Enter a month as YYYY-MM"),
    ({"close_month": "Kasım"}, "Close month: Enter a month as YYYY-MM"),
    ({"close_month": "12345678"}, "Close month: Ensure this value has at most 7 characters"),
    ({"sort": "price; drop table"}, "Sort: Select a valid choice."),
    ({"contact": "999999"}, "Contact: Unknown contact."),
    ({"q": "x" * 100_000}, "Search: Ensure this value has at most 200 characters"),
])
def test_an_invalid_filter_is_reported_on_the_page_and_not_applied(client_for, alice, stages, params, message):
    DealFactory(name="Still listed", stage=stages["Lead"], owner=alice)

    response = client_for(alice).get("/deals/", params)

    assert response.status_code == 200
    assert message in " ".join(filter_errors(response).split())
    assert names_on_page(response) == ["Still listed"]
    assert "Export CSV" not in response.content.decode()


def test_owner_or_team_the_user_cannot_see_is_refused(client_for, alice, charlie, south, stages):
    DealFactory(name="Theirs", stage=stages["Lead"], owner=charlie)
    client = client_for(alice)

    by_owner = client.get("/deals/", {"owner": charlie.pk})
    by_team = client.get("/deals/", {"team": south.pk})

    assert "Unknown owner, or one whose deals you cannot see." in filter_errors(by_owner)
    assert "Unknown team, or one whose deals you cannot see." in filter_errors(by_team)
    assert names_on_page(by_owner) == names_on_page(by_team) == []


def test_a_stage_of_another_pipeline_is_refused(client_for, alice, stages, other_pipe):
    response = client_for(alice).get("/deals/", {"pipeline": other_pipe.pk, "stage": stages["Lead"].pk})

    assert response.status_code == 200
    assert "Stage: “Lead” is not a stage of “Renewals”." in " ".join(filter_errors(response).split())


def test_a_forged_cursor_falls_back_to_the_first_page(client_for, alice, stages):
    DealFactory(name="Only", stage=stages["Lead"], owner=alice)
    client = client_for(alice)

    for cursor in ["garbage", "eyJ2Ijoibm90LWEtZGF0ZSIsImlkIjoxfQ", "e30"]:
        response = client.get("/deals/", {"cursor": cursor, "sort": "close"})
        assert response.status_code == 200
        assert names_on_page(response) == ["Only"]
        assert "That page link is no longer valid" in response.content.decode()


# --- sorts and keyset pages ----------------------------------------------------------------------


@pytest.fixture
def sortable(alice, stages):
    """Five deals whose close dates and amounts include NULLs, created one minute apart (A oldest)."""
    start = timezone.now() - timedelta(hours=1)
    rows = [
        ("Çiçek", date(2026, 3, 1), Decimal("500.00")),
        ("armut", None, None),
        ("Zeytin", date(2026, 1, 15), Decimal("70000.00")),
        ("Elma", date(2026, 3, 1), None),
        ("ıhlamur", None, Decimal("500.00")),
    ]
    return [
        DealFactory(name=name, stage=stages["Lead"], owner=alice, expected_close_date=close, amount=amount,
                    created_at=start + timedelta(minutes=n))
        for n, (name, close, amount) in enumerate(rows)
    ]


@pytest.mark.parametrize(("sort", "expected"), [
    ("newest", ["ıhlamur", "Elma", "Zeytin", "armut", "Çiçek"]),
    # Soonest first; the same date by id; no close date last.
    ("close", ["Zeytin", "Çiçek", "Elma", "armut", "ıhlamur"]),
    # Largest first; the same amount by id (newest first, as the order is descending); no amount last.
    ("amount", ["Zeytin", "ıhlamur", "Çiçek", "Elma", "armut"]),
    # Folded names: case and Turkish letters do not scatter the order (ç with c, ı with i).
    ("name", ["armut", "Çiçek", "Elma", "ıhlamur", "Zeytin"]),
])
def test_each_sort_walks_every_row_once_over_keyset_pages(client_for, alice, sortable, monkeypatch, sort, expected):
    monkeypatch.setattr(views_deals, "PAGE_SIZE", 2)
    client = client_for(alice)

    assert all_pages(client, {"sort": sort}) == expected


def test_previous_link_goes_back_over_null_amounts(client_for, alice, sortable, monkeypatch):
    monkeypatch.setattr(views_deals, "PAGE_SIZE", 2)
    client = client_for(alice)
    first = client.get("/deals/", {"sort": "amount"})
    second = client.get("/deals/" + next_link(first))
    third = client.get("/deals/" + next_link(second))

    back = client.get("/deals/" + previous_link(third))

    assert names_on_page(third) == ["armut"]
    assert names_on_page(back) == names_on_page(second) == ["Çiçek", "Elma"]


# --- query counts --------------------------------------------------------------------------------

# session, user, unread notifications (the bell), the rows (pipeline, stage, owner, contact, company and
# lead source joined), and the owner, team, pipeline and stage drop-downs.
DEAL_LIST_QUERIES = 8


@pytest.mark.parametrize("rows", [3, 50])
def test_deal_list_query_count_does_not_grow_with_the_rows(
    client_for, alice, stages, rows, django_assert_num_queries
):
    contact = ContactFactory(owner=alice)
    for n in range(rows):
        DealFactory(name=f"Deal {n}", stage=stages["Negotiation"], owner=alice, amount=Decimal(n), contact=contact,
                    created_at=timezone.now() - timedelta(days=n))
    client = client_for(alice)

    with django_assert_num_queries(DEAL_LIST_QUERIES):
        response = client.get("/deals/")

    assert len(names_on_page(response)) == rows


@pytest.mark.parametrize("rows", [3, 50])
def test_filtered_second_page_keeps_its_query_count(client_for, alice, stages, rows, django_assert_num_queries):
    for n in range(rows + 50):
        DealFactory(name=f"Filo {n}", stage=stages["Negotiation"], owner=alice, amount=Decimal(n),
                    expected_close_date=date(2026, 11, 1 + n % 28))
    client = client_for(alice)
    params = {"q": "filo", "pipeline": stages["Lead"].pipeline_id, "stage": stages["Negotiation"].pk,
              "owner": alice.pk, "team": alice.team_id, "status": "open", "stale": "no", "close_month": "2026-11",
              "sort": "amount"}
    first = client.get("/deals/", params)

    # The chosen pipeline, stage, owner and team are each checked against what the user may see: four more.
    with django_assert_num_queries(DEAL_LIST_QUERIES + 4):
        response = client.get("/deals/" + next_link(first))

    assert len(names_on_page(response)) == rows


def test_manager_list_query_count_does_not_grow(client_for, mona, alice, stages):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    DealFactory.create_batch(3, stage=stages["Lead"], owner=alice)
    client = client_for(mona)
    with CaptureQueriesContext(connection) as small:
        client.get("/deals/")
    DealFactory.create_batch(40, stage=stages["Lead"], owner=UserFactory(team=alice.team))
    with CaptureQueriesContext(connection) as big:
        response = client.get("/deals/")

    assert len(names_on_page(response)) == 43
    assert len(big.captured_queries) == len(small.captured_queries)


# --- CSV export ----------------------------------------------------------------------------------


def test_export_has_a_bom_translated_headers_and_the_rows_as_the_list_shows_them(client_for, alice, stages):
    contact = contact_services.contact_create(actor=alice, data={"first_name": "Ayşe", "last_name": "Yılmaz"})
    DealFactory(name="Güneş Enerji çatı", stage=stages["Negotiation"], owner=alice, amount=Decimal("12500.50"),
                expected_close_date=date(2026, 11, 20), contact=contact,
                created_at=timezone.now() - timedelta(days=40, hours=1))
    DealFactory(name="No amount", stage=stages["Won"], owner=alice, currency="EUR",
                created_at=timezone.now() - timedelta(days=2, hours=1))

    response = client_for(alice).get("/deals/export.csv")
    raw = b"".join(response.streaming_content)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="deals-')
    assert raw.startswith(b"\xef\xbb\xbf")
    assert rows[0] == ["Name", "Pipeline", "Stage", "Status", "Stale", "Days in stage", "Amount", "Currency",
                       "Weighted amount", "Expected close date", "Owner", "Contact", "Company"]
    # Newest first, as the list; amounts as plain decimals (12,500.50 × 80 % = 10,000.40).
    assert rows[1:] == [
        ["No amount", "Sales", "Won", "Won", "No", "2", "", "EUR", "", "", str(alice), "", ""],
        ["Güneş Enerji çatı", "Sales", "Negotiation", "Open", "Yes", "40", "12500.50", "TRY", "10000.40",
         "2026-11-20", str(alice), "Ayşe Yılmaz", ""],
    ]


def test_export_headers_follow_the_users_language(client_for, alice, stages):
    alice.language = "tr"
    alice.save(update_fields=["language"])
    DealFactory(name="İş", stage=stages["Lead"], owner=alice)

    _raw, rows = export(client_for(alice))

    assert rows[0][0] == "Ad" and "Aşama" in rows[0] and "Sahip" in rows[0] and "Kişi" in rows[0]
    assert rows[1][0] == "İş"


def test_export_applies_the_same_filters_and_order_as_the_list(client_for, alice, bob, stages):
    DealFactory(name="Won A", stage=stages["Won"], owner=alice, amount=Decimal("10.00"))
    DealFactory(name="Won B", stage=stages["Won"], owner=alice, amount=Decimal("30.00"))
    DealFactory(name="Won by Bob", stage=stages["Won"], owner=bob, amount=Decimal("20.00"))
    DealFactory(name="Open", stage=stages["Lead"], owner=alice, amount=Decimal("99.00"))
    client = client_for(alice)
    params = {"status": "won", "owner": alice.pk, "sort": "amount"}

    _raw, rows = export(client, params)

    assert [r[0] for r in rows[1:]] == names_on_page(client.get("/deals/", params)) == ["Won B", "Won A"]


def test_export_streams_every_matching_row_in_keyset_chunks_not_just_the_page(
    client_for, alice, stages, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(views_deals, "PAGE_SIZE", 2)
    monkeypatch.setattr(views_deals, "EXPORT_CHUNK", 3)
    start = timezone.now() - timedelta(hours=1)
    for n in range(7):
        DealFactory(name=f"Deal {n}", stage=stages["Lead"], owner=alice, created_at=start + timedelta(minutes=n))
    client = client_for(alice)

    response = client.get("/deals/export.csv")
    # Three chunks of at most three rows: three row queries, each one a keyset page.
    with django_assert_num_queries(3):
        raw = b"".join(response.streaming_content).decode("utf-8-sig")

    names = [r[0] for r in list(csv.reader(io.StringIO(raw)))[1:]]
    assert names == [f"Deal {n}" for n in reversed(range(7))]


def test_export_defuses_cells_a_spreadsheet_would_read_as_formulas(client_for, alice, stages):
    evil = ContactFactory(owner=alice, first_name="@SUM(A1:A9)", last_name="")
    DealFactory(name='=HYPERLINK("http://evil.example","click")', stage=stages["Lead"], owner=alice, contact=evil,
                created_at=timezone.now() - timedelta(minutes=3))
    DealFactory(name="+90 532 123 45 67", stage=stages["Lead"], owner=alice,
                created_at=timezone.now() - timedelta(minutes=2))
    DealFactory(name="-2+3", stage=stages["Lead"], owner=alice, created_at=timezone.now() - timedelta(minutes=1))

    _raw, rows = export(client_for(alice))

    assert [r[0] for r in rows[1:]] == ["'-2+3", "'+90 532 123 45 67", "'=HYPERLINK(\"http://evil.example\",\"click\")"]
    assert rows[3][11] == "'@SUM(A1:A9)"


def test_export_never_contains_hidden_deals(client_for, alice, charlie, stages):
    DealFactory(name="Mine", stage=stages["Lead"], owner=alice)
    DealFactory(name="Charlie's", stage=stages["Lead"], owner=charlie)

    _raw, rows = export(client_for(alice))

    assert [r[0] for r in rows[1:]] == ["Mine"]


def test_export_with_an_invalid_filter_says_so_instead_of_ignoring_it(client_for, alice, stages):
    DealFactory(name="Mine", stage=stages["Lead"], owner=alice)

    response = client_for(alice).get("/deals/export.csv", {"close_month": "2026-99", "owner": "abc"})

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    body = response.content.decode()
    assert "Close month: Enter a month as YYYY-MM" in body and "Owner: Unknown owner" in body


def test_export_link_on_the_list_carries_the_filters_but_not_the_cursor(client_for, alice, stages, monkeypatch):
    monkeypatch.setattr(views_deals, "PAGE_SIZE", 1)
    DealFactory.create_batch(3, stage=stages["Lead"], owner=alice)
    client = client_for(alice)
    first = client.get("/deals/", {"status": "open", "sort": "name"})

    html = client.get("/deals/" + next_link(first)).content.decode()
    link = re.search(r'href="(/deals/export\.csv[^"]*)"', html).group(1).replace("&amp;", "&")

    assert "status=open" in link and "sort=name" in link and "cursor" not in link


def test_integration_accounts_cannot_use_the_deal_pages(client_for, integ):
    assert client_for(integ).get("/deals/").status_code == 403
    assert client_for(integ).get("/deals/export.csv").status_code == 403
