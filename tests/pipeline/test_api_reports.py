"""The report endpoints: the hand-worked numbers as JSON, equal to the pages', bad parameters as 400s naming
the field, visibility, pinned query counts and the schema."""

import io

import pytest
from django.core.management import call_command

from pipeline.api_reports import PipelineReviewSerializer, WinLossSerializer
from pipeline.models import Pipeline
from tests.pipeline.test_reports import (
    FORECAST_NOW,
    NORTH_MONTHS,
    NORTH_NO_DATE,
    NORTH_OUTSIDE,
    NORTH_OVERDUE,
    NORTH_TOTAL,
    REVIEW_NOW,
    WIN_LOSS_NOW,
    forecast_world,
    frozen,
    review_world,
    win_loss_world,
)

pytestmark = pytest.mark.django_db


def as_json(cell: dict) -> dict:
    """A cell of expected figures as the API writes it (decimals as strings)."""
    return {key: str(value) if not isinstance(value, int) else value for key, value in cell.items()}


def cell_of(row: dict) -> dict:
    return {key: row[key] for key in ("count", "amount", "weighted", "other_currency", "won_count", "won_amount",
                                      "won_other_currency")}


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


# --- forecast ------------------------------------------------------------------------------------


def test_forecast_endpoint_answers_the_hand_worked_figures(forecast_data, api_for, alice, bob, north):
    response = get(api_for(alice), "/api/v1/forecast/")
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"], body["today"], body["currency"]) == ("2026-05", "2026-10", "2026-05-14", "TRY")
    assert {m["month"]: cell_of(m) for m in body["months"]} == {k: as_json(v) for k, v in NORTH_MONTHS.items()}
    assert body["overdue"] == as_json(NORTH_OVERDUE)
    assert body["no_date"] == as_json(NORTH_NO_DATE)
    assert body["outside"] == as_json(NORTH_OUTSIDE)
    assert body["total"] == as_json(NORTH_TOTAL)
    assert body["total"]["weighted"] == "69676.54"
    assert body["other_currency"] == {"open": 1, "won": 1}
    assert {o["id"] for o in body["owners"]} == {alice.pk, bob.pk}
    [team] = body["teams"]
    assert (team["id"], team["name"], team["total"]) == (north.pk, "North", as_json(NORTH_TOTAL))


def test_forecast_endpoint_equals_the_page(forecast_data, api_for, client_for, alice):
    params = {"from": "2026-04", "to": "2026-07"}
    api = get(api_for(alice), "/api/v1/forecast/", params).json()
    page = get(client_for(alice), "/reports/forecast/", params).context["report"]
    assert api["total"] == as_json(page["total"])
    assert [cell_of(m) for m in api["months"]] == [as_json(cell_of(m)) for m in page["months"]]
    for key in ("overdue", "no_date", "outside"):
        assert api[key] == as_json(page[key])
    assert [(o["id"], o["total"]) for o in api["owners"]] == [(o["id"], as_json(o["total"])) for o in page["owners"]]
    assert [(t["id"], t["total"]) for t in api["teams"]] == [(t["id"], as_json(t["total"])) for t in page["teams"]]


def test_forecast_endpoint_hides_other_teams_deals(forecast_data, api_for, charlie, mona, alice):
    body = get(api_for(charlie), "/api/v1/forecast/").json()
    # C1 70,000 × 60% = 42,000 in May; C2 won 30,000 in May; nothing of North.
    assert body["total"] == as_json({"count": 1, "amount": "70000.00", "weighted": "42000.00", "other_currency": 0,
                                     "won_count": 1, "won_amount": "30000.00", "won_other_currency": 0})
    assert [o["id"] for o in body["owners"]] == [charlie.pk]
    # Asking for alice's deals by id is an unknown owner to charlie, not an empty answer.
    refused = get(api_for(charlie), "/api/v1/forecast/", {"owner": alice.pk})
    assert refused.status_code == 400 and refused.json() == {"errors": {"owner": ["Unknown owner."]}}
    assert get(api_for(mona), "/api/v1/forecast/").json()["total"] == as_json(NORTH_TOTAL)


def test_integration_sees_every_team(forecast_data, api_for, integ):
    body = get(api_for(integ), "/api/v1/forecast/").json()
    assert body["total"]["count"] == 10 and body["total"]["weighted"] == "111676.54"


@pytest.mark.parametrize("params, errors", [
    ({"from": "2026-13"}, {"from": ["“2026-13” is not a month: write it as YYYY-MM, for example 2026-05."]}),
    ({"from": "May"}, {"from": ["“May” is not a month: write it as YYYY-MM, for example 2026-05."]}),
    ({"from": "2026-06", "to": "2026-05"}, {"to": ["The last month is before the first month."]}),
    ({"from": "2026-01", "to": "2028-01"}, {"to": ["Choose at most 24 months."]}),
    ({"pipeline": "999999"}, {"pipeline": ["Unknown pipeline."]}),
    ({"owner": "abc"}, {"owner": ["Enter an id (a whole number)."]}),
    ({"team": "-1"}, {"team": ["Enter an id (a whole number)."]}),
    ({"team": "99999999999999999999"}, {"team": ["Enter an id (a whole number)."]}),
    ({"owner": "1.5", "from": "x"}, {"owner": ["Enter an id (a whole number)."],
                                     "from": ["“x” is not a month: write it as YYYY-MM, for example 2026-05."]}),
    ({"mont": "2026-05"}, {"mont": ["Unknown query parameter. Known parameters: from, to, pipeline, owner, team."]}),
])
def test_forecast_endpoint_refuses_bad_parameters_by_name(api_for, alice, params, errors):
    response = get(api_for(alice), "/api/v1/forecast/", params)
    assert response.status_code == 400
    assert response.json() == {"errors": errors}


def test_forecast_endpoint_accepts_24_months(api_for, alice):
    body = get(api_for(alice), "/api/v1/forecast/", {"from": "2026-01", "to": "2027-12"}).json()
    assert len(body["months"]) == 24 and body["months"][-1]["month"] == "2027-12"


def test_forecast_endpoint_query_count_is_fixed(forecast_data, api_for, alice, bob, north, pipe,
                                                django_assert_num_queries):
    # A fresh token each time: the token with its user, and its "last used" time written once.
    # Then two queries, open and won deals, grouped, with every total as a window sum.
    api = api_for(alice)
    with django_assert_num_queries(4):
        assert get(api, "/api/v1/forecast/").status_code == 200
    # each filter given is looked up once
    api = api_for(alice)
    with django_assert_num_queries(7):
        assert get(api, "/api/v1/forecast/", {"pipeline": pipe.pk, "owner": bob.pk, "team": north.pk}
                   ).status_code == 200


def test_report_endpoints_need_a_token(client):
    for url in ("/api/v1/forecast/", "/api/v1/win-loss/", "/api/v1/pipeline-review/"):
        response = client.get(url)
        assert response.status_code == 401
        assert "errors" in response.json()


# --- win/loss ------------------------------------------------------------------------------------


def test_win_loss_endpoint_answers_the_hand_worked_figures(win_loss_data, api_for, alice, bob, pipe):
    body = get(api_for(alice), "/api/v1/win-loss/", {"from": "2026-04-01", "to": "2026-06-30", "pipeline": pipe.pk}
               ).json()
    assert (body["from"], body["to"]) == ("2026-04-01", "2026-06-30")
    # 3 won (30,000 + one in USD), 4 lost (17,500): 3 ÷ 7 = 42.9 %
    assert body["total"] == {"won_count": 3, "won_amount": "30000.00", "won_other_currency": 1, "lost_count": 4,
                             "lost_amount": "17500.00", "lost_other_currency": 0, "win_rate": "42.9"}
    assert [(r["name"], r["lost_count"], r["lost_amount"]) for r in body["by_reason"]] == [
        ("Chose a competitor", 2, "5500.00"), ("Price", 2, "12000.00")]
    assert {r["name"]: r["win_rate"] for r in body["by_source"]} == {"Web": "66.7", "Referral": "50.0", "": "0.0"}
    assert {r["id"]: r["win_rate"] for r in body["by_owner"]} == {alice.pk: "40.0", bob.pk: "50.0"}
    assert sorted((r["name"], r["pipeline"], r["lost_count"]) for r in body["by_lost_stage"]) == [
        ("Negotiation", "Sales", 1), ("Proposal", "Sales", 2), ("Qualified", "Sales", 1)]
    assert body["funnel_pipeline"] == {"id": pipe.pk, "name": "Sales"}
    assert [(f["name"], f["entered"], f["advanced"], f["rate"], f["average_days"]) for f in body["funnel"]] == [
        ("Lead", 4, 3, "75.0", "14.8"), ("Qualified", 3, 2, "66.7", "10.8"), ("Proposal", 5, 2, "40.0", "10.2"),
        ("Negotiation", 2, 1, "50.0", "30.3"), ("Won", 3, None, None, None)]
    assert body["other_currency"] == 1


def test_win_loss_endpoint_equals_the_page(win_loss_data, api_for, client_for, alice, pipe):
    params = {"from": "2026-04", "to": "2026-06", "pipeline": pipe.pk}
    api = get(api_for(alice), "/api/v1/win-loss/", params).json()
    page = get(client_for(alice), "/reports/win-loss/", params).context["report"]
    assert api == WinLossSerializer(page).data
    assert api["total"]["win_rate"] == "42.9"


def test_win_loss_endpoint_default_is_this_quarter_and_months_are_accepted(win_loss_data, api_for, alice):
    body = get(api_for(alice), "/api/v1/win-loss/").json()
    assert (body["from"], body["to"]) == ("2026-07-01", "2026-09-30")       # today is 10 July 2026
    assert body["total"]["lost_count"] == 1                                # L4, lost on 1 July
    body = get(api_for(alice), "/api/v1/win-loss/", {"from": "2026-02", "to": "2026-02"}).json()
    assert (body["from"], body["to"]) == ("2026-02-01", "2026-02-28")
    assert body["funnel_pipeline"]["id"] == Pipeline.objects.get(is_default=True).pk


@pytest.mark.parametrize("params, field, message", [
    ({"from": "2026-13"}, "from", "“2026-13” is not a month: write it as YYYY-MM, for example 2026-05."),
    ({"from": "2026-02-30"}, "from", "“2026-02-30” is not a date: write it as YYYY-MM-DD (or a month as YYYY-MM), "
                                     "for example 2026-04-01."),
    ({"from": "2026-05-01", "to": "2026-04-30"}, "to", "The end date is before the start date."),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "to", "Choose a range of at most three years."),
    ({"pipeline": "0"}, "pipeline", "Enter an id (a whole number)."),
    ({"owner": "424242"}, "owner", "Unknown owner."),
    ({"team": "x"}, "team", "Enter an id (a whole number)."),
])
def test_win_loss_endpoint_refuses_bad_parameters_by_name(api_for, alice, params, field, message):
    response = get(api_for(alice), "/api/v1/win-loss/", params)
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}


def test_win_loss_endpoint_hides_other_teams_deals(win_loss_data, api_for, charlie, south):
    body = get(api_for(charlie), "/api/v1/win-loss/").json()
    assert body["total"]["won_count"] == 0 and body["total"]["lost_count"] == 0   # this quarter: nothing of South
    body = get(api_for(charlie), "/api/v1/win-loss/", {"from": "2026-04-01", "to": "2026-06-30"}).json()
    assert body["total"] == {"won_count": 1, "won_amount": "50000.00", "won_other_currency": 0, "lost_count": 0,
                             "lost_amount": "0.00", "lost_other_currency": 0, "win_rate": "100.0"}
    assert [r["id"] for r in body["by_owner"]] == [body["by_owner"][0]["id"]] and len(body["by_owner"]) == 1
    refused = get(api_for(charlie), "/api/v1/win-loss/", {"team": south.pk + 1000})
    assert refused.status_code == 400


def test_win_loss_endpoint_query_count_is_fixed(win_loss_data, api_for, alice, pipe, django_assert_num_queries):
    # token (+ its "last used" time); the stages; the closed deals' groups and the lost deals' groups with
    # every breakdown as window sums; the stage changes per deal counted per stage (conversion); the stays
    api = api_for(alice)
    with django_assert_num_queries(7):
        assert get(api, "/api/v1/win-loss/").status_code == 200
    api = api_for(alice)
    with django_assert_num_queries(8):
        assert get(api, "/api/v1/win-loss/", {"pipeline": pipe.pk}).status_code == 200


# --- pipeline review -----------------------------------------------------------------------------


def test_review_endpoint_answers_the_hand_worked_figures(review_data, api_for, alice, bob, mona):
    w = review_data
    body = get(api_for(alice), "/api/v1/pipeline-review/").json()
    assert (body["since"], body["start"]) == ("2026-05-07", "2026-05-07T00:00:00+03:00")
    sections = body["sections"]
    figures = {key: (s["deals"], s["moves"], s["amount"], s["other_currency"], s["more"])
               for key, s in sections.items()}
    assert figures == {
        "forward": (1, 2, "10000.00", 0, 0), "backward": (1, 1, "5000.00", 0, 0), "won": (1, 1, "20000.00", 0, 0),
        "lost": (1, 1, "6000.00", 0, 0), "reopened": (0, 0, "0.00", 0, 0), "new": (2, None, "2500.00", 1, 0),
        "stale": (2, None, "43000.00", 0, 0),
    }
    [lost] = sections["lost"]["items"]
    assert lost == {
        "id": lost["id"], "deal_id": w["r4"].pk, "deal_name": "R4", "amount": "6000.00", "currency": "TRY",
        "owner_id": alice.pk, "from_stage": "Proposal", "to_stage": "Lost", "changed_at": "2026-05-11T09:30:00+03:00",
        "actor_id": bob.pk, "actor_name": str(bob), "lost_reason": "Price",
    }
    assert [i["actor_name"] for i in sections["backward"]["items"]] == [str(mona)]
    assert [i["id"] for i in sections["new"]["items"]] == [w["n1"].pk, w["n2"].pk]
    assert [(i["name"], i["days_in_stage"]) for i in sections["stale"]["items"]] == [("S2", 132), ("S1", 74)]
    assert sections["forward"]["items"][0]["lost_reason"] is None
    assert body["other_currency"] is True


def test_review_endpoint_equals_the_page(review_data, api_for, client_for, alice):
    api = get(api_for(alice), "/api/v1/pipeline-review/", {"since": "2026-05-01"}).json()
    page = get(client_for(alice), "/reports/review/", {"since": "2026-05-01"}).context["report"]
    assert api == PipelineReviewSerializer(page).data


@pytest.mark.parametrize("since, message", [
    ("2026-05-15", "Choose a day that is not in the future."),
    ("2025-05-12", "Choose a day at most a year ago."),
    ("14.05.2026", "“14.05.2026” is not a date: write it as YYYY-MM-DD, for example 2026-04-01."),
])
def test_review_endpoint_refuses_bad_days(api_for, alice, since, message):
    response = get(api_for(alice), "/api/v1/pipeline-review/", {"since": since})
    assert response.status_code == 400
    assert response.json() == {"errors": {"since": [message]}}


def test_review_endpoint_hides_other_teams_moves(review_data, api_for, charlie):
    sections = get(api_for(charlie), "/api/v1/pipeline-review/").json()["sections"]
    assert [i["deal_name"] for i in sections["won"]["items"]] == ["C1"]
    assert [i["name"] for i in sections["stale"]["items"]] == ["C2"]
    assert all(sections[key]["items"] == [] for key in ("forward", "backward", "lost", "reopened", "new"))


def test_review_endpoint_query_count_is_fixed(review_data, api_for, alice, django_assert_num_queries):
    # token (+ its "last used" time); moved deals' figures, new and stale deals' figures; the moves
    # (window-limited); new deals; stale deals
    api = api_for(alice)
    with django_assert_num_queries(7):
        assert get(api, "/api/v1/pipeline-review/").status_code == 200


# --- schema --------------------------------------------------------------------------------------


def test_schema_documents_the_report_endpoints_without_warnings(api_for, alice):
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
    schema = api_for(alice).get("/api/schema/", {"format": "json"}).json()
    for path, names in [("/api/v1/forecast/", {"from", "to", "pipeline", "owner", "team"}),
                        ("/api/v1/win-loss/", {"from", "to", "pipeline", "owner", "team"}),
                        ("/api/v1/pipeline-review/", {"since", "pipeline", "owner", "team"})]:
        operation = schema["paths"][path]["get"]
        assert {p["name"] for p in operation["parameters"]} == names
        assert {"200", "400", "401"} <= set(operation["responses"])
        assert operation["tags"] == ["reports"]
    assert {"from", "to", "months", "overdue", "no_date", "outside", "owners", "teams"} <= set(
        schema["components"]["schemas"]["Forecast"]["properties"])
