"""The report pages: the hand-worked numbers on the page, the chart, notes and definitions, bad parameters as
a clear message (400, never a 500), visibility, and pinned query counts."""

import re

import pytest
from django.utils import translation

from pipeline import reports, views_reports
from tests.pipeline.test_reports import (
    FORECAST_NOW,
    NORTH_TOTAL,
    REVIEW_NOW,
    WIN_LOSS_NOW,
    forecast_world,
    frozen,
    review_world,
    win_loss_world,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def forecast_data(stages, alice, bob, charlie):
    forecast_world(stages, alice, bob, charlie)


@pytest.fixture
def review_data(stages, alice, bob, charlie, mona):
    return review_world(stages, alice, bob, charlie, mona)


@pytest.fixture
def win_loss_data(stages, alice, bob, charlie):
    return win_loss_world(stages, alice, bob, charlie)


def get(client, url, params=None):
    with frozen(FORECAST_NOW if "forecast" in url else REVIEW_NOW if "review" in url else WIN_LOSS_NOW):
        return client.get(url, params or {})


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- forecast ------------------------------------------------------------------------------------


def test_forecast_page_shows_the_figures_chart_and_currency_note(forecast_data, client_for, alice):
    response = get(client_for(alice), "/reports/forecast/")
    assert response.status_code == 200
    assert response.context["report"]["total"] == NORTH_TOTAL
    page = text(response)
    assert 'data-testid="total-weighted">69,676.54<' in page
    assert 'data-testid="total-won">27,500.00<' in page
    assert "1 open deal in another currency than TRY is counted but left out of the sums." in page
    assert "1 won deal in another currency is left out of the won amounts." in page
    for label in ("Overdue (date passed)", "No expected close date", "Due outside these months (not overdue)", "May 2026",
                  "October 2026", "Per owner", "Per team"):
        assert label in page
    # One pair of bars per month in the chart; June's weighted bar is the tallest (40,000 on a 50,000 axis).
    chart = response.context["chart"]
    assert len(chart["bars"]) == 6
    assert chart["ticks"][-1]["value"] == 50000
    assert chart["bars"][1]["weighted_h"] == "144.0"     # 40,000 ÷ 50,000 × 180
    assert page.count('class="bar bar-weighted"') == 6 and page.count('class="bar bar-won"') == 6
    assert 'type="month" name="from" placeholder="YYYY-MM" value="2026-05"' in page


def test_forecast_chart_coordinates_stay_numbers_in_turkish(forecast_data, client_for, alice):
    alice.language = "tr"
    alice.save(update_fields=["language"])
    response = get(client_for(alice), "/reports/forecast/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'height="144.0"' in page                    # not 144,0
    assert "69.676,54" in page                         # the amounts follow the language
    translation.activate("en")


def test_forecast_page_per_owner_and_filters(forecast_data, client_for, alice, bob):
    response = get(client_for(alice), "/reports/forecast/", {"owner": bob.pk})
    assert response.status_code == 200
    total = response.context["report"]["total"]
    assert (total["count"], total["weighted"], total["won_amount"]) == (1, 40000, 7500)
    assert f'<option value="{bob.pk}" selected>' in response.content.decode()


def test_forecast_page_is_scoped_to_what_the_reader_sees(forecast_data, client_for, charlie, mona, alice):
    response = get(client_for(charlie), "/reports/forecast/")
    report = response.context["report"]
    assert report["total"]["weighted"] == 42000 and [o["id"] for o in report["owners"]] == [charlie.pk]
    assert str(alice) not in text(response)
    assert get(client_for(mona), "/reports/forecast/").context["report"]["total"] == NORTH_TOTAL


@pytest.mark.parametrize("params, message", [
    ({"from": "2026-13"}, "From month: “2026-13” is not a month: write it as YYYY-MM, for example 2026-05."),
    ({"from": "2026-06", "to": "2026-05"}, "To month: The last month is before the first month."),
    ({"from": "2026-01", "to": "2030-01"}, "To month: Choose at most 24 months."),
    ({"pipeline": "99999"}, "Pipeline: Unknown pipeline."),
    ({"owner": "bob"}, "Owner: Enter an id (a whole number)."),
    ({"team": "12.5"}, "Team: Enter an id (a whole number)."),
])
def test_forecast_page_explains_bad_parameters(client_for, alice, params, message):
    response = get(client_for(alice), "/reports/forecast/", params)
    assert response.status_code == 400
    page = text(response)
    assert "The report cannot be shown with these settings:" in page
    assert message in page
    assert response.context["report"] is None


def test_forecast_page_query_count_is_fixed(forecast_data, client_for, alice, django_assert_num_queries):
    client = client_for(alice)
    # session, user, unread notifications; the pipeline, owner and team drop-downs; open and won deals
    with django_assert_num_queries(8):
        assert get(client, "/reports/forecast/").status_code == 200
    with django_assert_num_queries(8):
        assert get(client, "/reports/forecast/", {"from": "2026-01", "to": "2027-12"}).status_code == 200


# --- pipeline review -----------------------------------------------------------------------------


def test_review_page_lists_each_section_with_links_movers_and_sums(review_data, client_for, alice, bob, mona):
    w = review_data
    response = get(client_for(alice), "/reports/review/")
    assert response.status_code == 200
    page = text(response)
    assert "What moved since Thursday 7 May 2026 (midnight), and what is stuck now." in page
    for key, count in [("forward", 1), ("backward", 1), ("won", 1), ("lost", 1), ("reopened", 0), ("new", 2),
                       ("stale", 2)]:
        assert re.search(rf'data-testid="summary-{key}">.*?<span class="stat-value">{count}</span>', page)
    assert f'<a href="/deals/{w["r1"].pk}/">R1</a>' in page
    assert "Lead → Qualified" in page and "Qualified → Proposal" in page and "Proposal → Qualified" in page
    assert f"<td class=\"nowrap\">{mona}</td>" in page                    # who moved R2 back
    lost = re.search(r'data-testid="section-lost">(.*?)</section>', page)[1]
    assert "Price" in lost and "Too expensive" in lost and str(bob) in lost and "6,000.00" in lost
    stale = re.search(r'data-testid="section-stale">(.*?)</section>', page)[1]
    assert stale.index("S2") < stale.index("S1")                          # longest in stage first
    assert '<td class="num">132</td>' in stale
    assert "43,000.00 TRY" in stale
    assert "Some deals are in other currencies than TRY: they are listed and counted but left out of the sums" in page
    assert "1 in another currency not in the sum" in page
    assert "1,500.00 <span class=\"currency-code\"" in page                # N1 in euros, marked


def test_review_page_says_how_many_more(review_data, client_for, alice, monkeypatch):
    monkeypatch.setattr(views_reports, "REVIEW_PAGE_LIMIT", 1)
    page = text(get(client_for(alice), "/reports/review/"))
    assert re.search(r'data-testid="more-forward">… and 1 more.</p>', page)
    assert re.search(r'data-testid="more-stale">… and 1 more. <a href="/deals/\?stale=yes">See all stale deals</a>',
                     page)
    assert 'data-testid="more-won"' not in page


def test_review_page_lists_50_per_section_and_the_api_100(review_data, alice, monkeypatch):
    assert (views_reports.REVIEW_PAGE_LIMIT, reports.REVIEW_LIMIT) == (50, 100)


def test_review_page_hides_other_teams_deals(review_data, client_for, charlie):
    page = text(get(client_for(charlie), "/reports/review/"))
    assert ">C1<" in page and ">C2<" in page
    for name in ("R1", "R2", "R3", "R4", "N1", "N2", "S1", "S2"):
        assert f">{name}<" not in page


@pytest.mark.parametrize("since, message", [
    ("2026-05-15", "Since: Choose a day that is not in the future."),
    ("2020-01-01", "Since: Choose a day at most a year ago."),
    ("yesterday", "Since: “yesterday” is not a date: write it as YYYY-MM-DD, for example 2026-04-01."),
])
def test_review_page_explains_bad_days(client_for, alice, since, message):
    response = get(client_for(alice), "/reports/review/", {"since": since})
    assert response.status_code == 400
    assert message in text(response)


def test_review_page_query_count_is_fixed(review_data, client_for, alice, django_assert_num_queries):
    client = client_for(alice)
    # session, user, notifications; 3 drop-downs; moved deals' figures, new and stale deals' figures, moves,
    # new deals, stale deals
    with django_assert_num_queries(11):
        assert get(client, "/reports/review/").status_code == 200


# --- win/loss ------------------------------------------------------------------------------------


def test_win_loss_page_shows_breakdowns_funnel_and_definitions(win_loss_data, client_for, alice, pipe):
    response = get(client_for(alice), "/reports/win-loss/", {"from": "2026-04-01", "to": "2026-06-30",
                                                              "pipeline": pipe.pk})
    assert response.status_code == 200
    page = text(response)
    assert 'data-testid="won-count">3<' in page and 'data-testid="lost-count">4<' in page
    assert 'data-testid="win-rate">42.9%<' in page
    by_reason = re.search(r'data-testid="by-reason">(.*?)</table>', page)[1]
    assert re.search(r"Price</th>.*?<td class=\"num\">2</td>.*?12,000.00", by_reason)
    by_source = re.search(r'data-testid="by-source">(.*?)</table>', page)[1]
    assert "No lead source" in by_source and "66.7%" in by_source
    by_stage = re.search(r'data-testid="by-lost-stage">(.*?)</table>', page)[1]
    assert "Proposal" in by_stage and "10,500.00" in by_stage
    assert "Stage conversion: Sales" in page
    funnel = re.search(r'data-testid="funnel">(.*?)</table>', page)[1]
    assert re.search(r"Lead</th> <td class=\"num\">4</td> <td class=\"num\">3</td> "
                     r"<td class=\"num strong\">75.0%</td> <td class=\"num\">14.8</td>", funnel)
    assert re.search(r"Negotiation</th>.*?50.0%</td> <td class=\"num\">30.3</td>", funnel)
    assert "<strong>Conversion</strong> of a stage" in page and "<strong>Average days in stage</strong>" in page
    assert page.count('class="funnel-row"') == 5
    assert "1 closed deal in another currency than TRY is counted but left out of the amounts." in page


def test_win_loss_page_defaults_to_this_quarter_and_the_default_pipeline(win_loss_data, client_for, alice):
    response = get(client_for(alice), "/reports/win-loss/")
    report = response.context["report"]
    assert (str(report["from"]), str(report["to"])) == ("2026-07-01", "2026-09-30")
    page = text(response)
    assert "Stage conversion: New business" in page
    assert "The default pipeline; choose a pipeline above to see another." in page


@pytest.mark.parametrize("params, message", [
    ({"from": "2026-13"}, "Closed from: “2026-13” is not a month: write it as YYYY-MM, for example 2026-05."),
    ({"from": "2026-04-31"}, "Closed from: “2026-04-31” is not a date"),
    ({"from": "2026-05-01", "to": "2026-04-01"}, "Closed to: The end date is before the start date."),
    ({"from": "2020-01-01", "to": "2026-06-30"}, "Closed to: Choose a range of at most three years."),
    ({"owner": "999999"}, "Owner: Unknown owner."),
    ({"pipeline": "x", "team": "y"}, "Pipeline: Enter an id (a whole number)."),
])
def test_win_loss_page_explains_bad_parameters(client_for, alice, params, message):
    response = get(client_for(alice), "/reports/win-loss/", params)
    assert response.status_code == 400
    assert message in text(response)


def test_win_loss_page_is_scoped_to_what_the_reader_sees(win_loss_data, client_for, charlie, alice):
    response = get(client_for(charlie), "/reports/win-loss/", {"from": "2026-04-01", "to": "2026-06-30"})
    report = response.context["report"]
    assert (report["total"]["won_count"], report["total"]["lost_count"]) == (1, 0)
    assert str(alice) not in text(response)


def test_win_loss_page_query_count_is_fixed(win_loss_data, client_for, alice, pipe, django_assert_num_queries):
    client = client_for(alice)
    # session, user, notifications; 3 drop-downs; the stages, the closed and the lost deals' breakdowns,
    # conversion, time in stage
    with django_assert_num_queries(11):
        assert get(client, "/reports/win-loss/").status_code == 200
    # the chosen pipeline is looked up once
    with django_assert_num_queries(12):
        assert get(client, "/reports/win-loss/", {"pipeline": pipe.pk}).status_code == 200


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/reports/forecast/", "/reports/review/", "/reports/win-loss/"])
def test_report_pages_need_a_person_signed_in(client, client_for, integ, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client_for(integ).get(url).status_code == 403
