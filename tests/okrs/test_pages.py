"""The OKR pages people read: the alignment tree, a team's dashboard with its charts (checked against a hand
computation), what changed, at risk, my key results with the quick check-in form, the CSV export, the printable
page and the help page's worked example — with pinned query counts and 404s for unknown ids.

The clock is 15 February 2026 00:00 Istanbul time (MID): 45 of Q1's 90 days, expected progress 0.5.
"""

import csv
import datetime as dt
import io
import re
from decimal import Decimal as D

import pytest
import time_machine
from django.urls import NoReverseMatch, reverse

from okrs import selectors, services
from okrs.selectors_pages import chosen_cycle, default_cycle, objective_confidence, objective_expected
from okrs.templatetags.okrs import kr_chart, okr_pct, okr_value
from okrs.views_pages import worked_example

from .conftest import MID, Q1_END, Q1_START, at


@pytest.fixture
def clock():
    with time_machine.travel(MID, tick=False):
        yield MID


@pytest.fixture
def tree(active, sam, mona, alice, charlie, north, south, make_objective, make_kr):
    company = make_objective(sam, active, title="Delight customers", level="company")
    team = make_objective(mona, active, title="Sell better", level="team", team=north, parent=company)
    win = make_kr(mona, team, title="Win rate 22 → 30", unit="percent")
    churn = make_kr(mona, team, title="Churn 8 → 5", kind="decrease", start_value=D("8"), target_value=D("5"),
                    unit="percent")
    mine = make_objective(alice, active, title="Know the product", parent=team)
    demo = make_kr(alice, mine, title="Demo certified", kind="milestone")
    theirs = make_objective(charlie, active, title="South secret")
    services.check_in(actor=mona, key_result=win, value="24", now=at(dt.date(2026, 1, 20)))
    services.check_in(actor=mona, key_result=churn, value="7.4", confidence=4, note="Two big accounts wobble",
                      now=at(dt.date(2026, 1, 20)))
    services.check_in(actor=mona, key_result=win, value="26", confidence=8, now=at(dt.date(2026, 2, 12)))
    return {"cycle": active, "company": company, "team": team, "mine": mine, "theirs": theirs, "win": win,
            "churn": churn, "demo": demo}


def fresh(kr):
    kr.refresh_from_db()
    return kr


# --- the chart: geometry by hand ------------------------------------------------------------------------


def test_increase_chart_matches_hand_computation(tree):
    win = fresh(tree["win"])
    chart = kr_chart(win, tree["cycle"], selectors.key_result_series(win), now=MID)
    # Plot: x from 64 to 604 (540 wide) over 1 January 00:00 – 1 April 00:00 (90 days); y from 12 to 172 (160
    # high). Values 22 (start) … 30 (target), readings 24 and 26: span 8, step 2, axis 22–30 → 20 px per unit.
    # 20 January: 19 days → 64 + 19/90 × 540 = 64 + 114 = 178; value 24 → 12 + (30 − 24) × 20 = 132.
    # 12 February: 42 days → 64 + 252 = 316; value 26 → 12 + 4 × 20 = 92.
    assert [(d["x"], d["y"]) for d in chart["dots"]] == [("178.0", "132.0"), ("316.0", "92.0")]
    assert chart["path"] == "M178.0 132.0 L316.0 92.0"
    # target 30 at the top; the pace line from (cycle start, 22) to (end of the due date 31 March, 30)
    assert chart["target"]["y"] == "12.0"
    assert chart["pace"] == {"x1": "64.0", "y1": "172.0", "x2": "604.0", "y2": "12.0"}
    # now (15 February, 45 days): 64 + 270 = 334; expected value 22 + 0.5 × 8 = 26 → y 92
    assert chart["today"] == "334.0"
    assert (chart["expected"]["x"], chart["expected"]["y"], chart["expected"]["value"]) == ("334.0", "92.0", D("26"))
    assert [(t["value"], t["y"], t["label"]) for t in chart["ticks"]] == [
        (D("22"), "172.0", "22%"), (D("24"), "132.0", "24%"), (D("26"), "92.0", "26%"), (D("28"), "52.0", "28%"),
        (D("30"), "12.0", "30%")]
    # month labels: 1 January 0 days, 1 February 31 days (64 + 186), 1 March 59 days (64 + 354)
    assert [(label["x"], label["date"]) for label in chart["labels"]] == [
        ("64.0", dt.date(2026, 1, 1)), ("250.0", dt.date(2026, 2, 1)), ("418.0", dt.date(2026, 3, 1))]


def test_decrease_chart_matches_hand_computation(tree):
    churn = fresh(tree["churn"])
    chart = kr_chart(churn, tree["cycle"], selectors.key_result_series(churn), now=MID)
    # values 5 … 8, span 3 → step 1, axis 5–8: 160 ÷ 3 px per unit; 7.4 → 12 + 0.6 × 160 ÷ 3 = 12 + 32 = 44
    assert [(d["x"], d["y"]) for d in chart["dots"]] == [("178.0", "44.0")]
    # the pace goes down: from 8 (top, y 12) to 5 (bottom, y 172); the target line at the bottom
    assert chart["pace"] == {"x1": "64.0", "y1": "12.0", "x2": "604.0", "y2": "172.0"}
    assert chart["target"]["y"] == "172.0"
    # expected now: 8 + 0.5 × (5 − 8) = 6.5 → 12 + 1.5 × 160 ÷ 3 = 92
    assert chart["expected"]["y"] == "92.0"


def test_chart_of_a_key_result_due_before_the_cycle_ends(tree, mona, make_kr):
    kr = make_kr(mona, tree["team"], title="Early", start_value=D("0"), target_value=D("100"),
                 due_date=dt.date(2026, 2, 14))
    services.check_in(actor=mona, key_result=kr, value="40", now=at(dt.date(2026, 1, 10)))
    chart = kr_chart(fresh(kr), tree["cycle"], selectors.key_result_series(kr), now=MID)
    # the pace reaches 100 at the end of 14 February (45 days: 64 + 270 = 334); the axis still spans the cycle
    assert chart["pace"] == {"x1": "64.0", "y1": "172.0", "x2": "334.0", "y2": "12.0"}
    # 10 January: 9 days → 64 + 54 = 118; 40 of 0–100 (step 25) → 12 + 0.6 × 160 = 108
    assert [(d["x"], d["y"]) for d in chart["dots"]] == [("118.0", "108.0")]
    # past the due date nothing more is expected: no expected dot
    assert chart["expected"] is None


def test_keep_and_milestone_charts_have_no_pace_line(tree, mona, alice, make_kr):
    keep = make_kr(mona, tree["team"], title="NPS ≥ 40", kind="keep_above", target_value=D("40"))
    services.check_in(actor=mona, key_result=keep, value="45", now=at(dt.date(2026, 2, 1)))
    chart = kr_chart(fresh(keep), tree["cycle"], selectors.key_result_series(keep), now=MID)
    assert chart["pace"] is None and chart["expected"] is None
    # 40 … 45, span 5 → step 2 (raw 1.25 → 2), axis 40–46 → 160 ÷ 6 per unit; 40 → 172, 45 → 12 + 160 ÷ 6
    assert chart["target"]["y"] == "172.0" and chart["dots"][0]["y"] == "38.7"
    services.check_in(actor=alice, key_result=tree["demo"], done=True, now=at(dt.date(2026, 2, 10)))
    demo = fresh(tree["demo"])
    chart = kr_chart(demo, tree["cycle"], selectors.key_result_series(demo), now=MID)
    assert [(t["label"], t["y"]) for t in chart["ticks"]] == [("Not done", "172.0"), ("Done", "12.0")]
    assert chart["dots"][0]["y"] == "12.0" and chart["pace"] is None


# --- the team dashboard ------------------------------------------------------------------------------------


def test_team_dashboard_shows_progress_against_pace_and_the_charts(tree, bob, north, client_for, clock):
    response = client_for(bob).get(reverse("okr-team", args=[north.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    team = response.context["objectives"][0]
    win, churn = team.key_results
    # win: (26 − 22) ÷ 8 = 50 % against 45 ÷ 90 = 50 % expected, pace 1 → on track, confidence 8
    assert (win.progress.value, win.expected, win.pace, win.status, win.confidence) == (
        D("0.5"), D("0.5"), D("1"), "on_track", 8)
    # churn: (7.4 − 8) ÷ (5 − 8) = 20 %, pace 0.4 → off track; the objective (0.5 + 0.2) ÷ 2 = 35 %, off track
    assert (churn.progress.value, churn.pace, churn.status) == (D("0.2"), D("0.4"), "off_track")
    assert (team.progress, team.expected, team.status, team.confidence) == (D("0.35"), D("0.5"), "off_track", 6)
    block = html[html.index(f'data-testid="kr-{tree["win"].pk}"'):html.index(f'data-testid="kr-{tree["churn"].pk}"')]
    assert 'data-testid="kr-progress">50%' in block and 'data-testid="kr-expected">50%' in block
    assert 'data-testid="kr-pace">1.00' in block and 'data-status="on_track"' in block and "8/10" in block
    # the bar: filled to 50 %, the expected tick at 50 %, green
    assert '<span class="okr-bar tone-green" role="progressbar"' in block
    assert 'style="width: 50.0%"' in block and 'style="left: 50.0%"' in block
    # the chart drawn with the numbers worked out in test_increase_chart_matches_hand_computation
    assert 'd="M178.0 132.0 L316.0 92.0"' in block
    assert 'x1="64.0" y1="172.0" x2="604.0" y2="12.0"' in block
    assert 'data-testid="objective-progress">35%' in html
    # the individual objective of alice is shown to her teammate; the last check-in with its note
    assert "Know the product" in html and "Two big accounts wobble" in html
    # "what changed since last week": win moved 24 → 26, its status went from off track to on track
    changes = response.context["changes"]
    assert [(s.key_result.title, old, new) for s, old, new in changes.moved] == [("Win rate 22 → 30", D("24"),
                                                                                 D("26"))]
    assert [s.key_result.title for s in changes.no_check_in] == ["Churn 8 → 5", "Demo certified"]
    assert "24% → 26%" in html


def test_team_dashboard_hides_individual_objectives_from_outsiders(tree, charlie, north, client_for, clock):
    response = client_for(charlie).get(reverse("okr-team", args=[north.pk]))
    assert response.status_code == 200
    assert "Sell better" in response.content.decode()
    assert "Know the product" not in response.content.decode()


def test_team_dashboard_query_count_is_fixed(tree, mona, north, client_for, clock, make_objective, make_kr,
                                             django_assert_num_queries):
    client = client_for(mona)
    url = reverse("okr-team", args=[north.pk])
    client.get(url)  # warm up (session, content types)
    # session + user, team, cycles, team objectives (4 + manager's teams), charts' series, changes (3 + manager's
    # teams), teams, the unread notifications
    with django_assert_num_queries(16):
        assert client.get(url).status_code == 200
    for n in range(3):
        objective = make_objective(mona, tree["cycle"], title=f"More {n}", level="team", team=north)
        for m in range(2):
            kr = make_kr(mona, objective, title=f"KR {n}.{m}", start_value=D("0"), target_value=D("10"))
            services.check_in(actor=mona, key_result=kr, value=str(m + 1), now=at(dt.date(2026, 2, 1)))
    with django_assert_num_queries(16):
        assert client.get(url).status_code == 200


def test_bad_ids_are_404(tree, bob, north, client_for, clock):
    client = client_for(bob)
    for url in [
        reverse("okr-team", args=[999999]), reverse("okr-team-export", args=[999999]),
        reverse("okr-team-print", args=[999999]), reverse("okr-team", args=[2 ** 63]),
        reverse("okr-home") + "?cycle=999999", reverse("okr-home") + "?cycle=abc",
        reverse("okr-home") + "?cycle=" + "9" * 40, reverse("okr-team", args=[north.pk]) + "?cycle=-1",
        reverse("okr-at-risk") + "?cycle=0", reverse("okr-changes") + "?team=x",
        reverse("okr-changes") + "?team=999999", reverse("okr-team-export", args=[north.pk]) + "?cycle=x",
    ]:
        assert client.get(url).status_code == 404, url


def test_pages_need_a_browser_user(tree, integ, client, client_for, north):
    url = reverse("okr-team", args=[north.pk])
    assert client.get(url).status_code == 302
    assert client_for(integ).get(url).status_code == 403


# --- the alignment tree ------------------------------------------------------------------------------------


def test_home_shows_the_alignment_tree(tree, bob, client_for, clock, django_assert_num_queries):
    client = client_for(bob)
    client.get(reverse("okr-home"))
    # session + user, cycles, the tree (4), teams, the unread notifications
    with django_assert_num_queries(9):
        response = client.get(reverse("okr-home"))
    html = response.content.decode()
    roots = response.context["roots"]
    assert [r.objective.title for r in roots] == ["Delight customers"]
    team = roots[0].children[0]
    assert team.objective.title == "Sell better" and team.children[0].objective.title == "Know the product"
    # every node: progress, expected mark, status, confidence (the company objective has no key results)
    assert (team.progress, team.expected, team.status, team.confidence) == (D("0.35"), D("0.5"), "off_track", 6)
    assert (roots[0].progress, roots[0].expected, roots[0].status, roots[0].confidence) == (None, None, None, None)
    node = html[html.index(f'data-testid="objective-{tree["team"].pk}"'):]
    assert 'data-testid="progress">35%' in node and 'data-status="off_track"' in node and "6/10" in node
    assert "South secret" not in html
    assert 'href="/okrs/" aria-current="page"' in html  # the OKRs link in the top navigation is current


def test_home_query_count_does_not_grow(tree, mona, client_for, clock, make_objective, make_kr, north,
                                        django_assert_num_queries):
    client = client_for(mona)
    client.get(reverse("okr-home"))
    with django_assert_num_queries(10):  # + the manager's teams
        client.get(reverse("okr-home"))
    for n in range(4):
        objective = make_objective(mona, tree["cycle"], title=f"More {n}", level="team", team=north,
                                   parent=tree["team"])
        make_kr(mona, objective, title=f"KR {n}")
    with django_assert_num_queries(10):
        client.get(reverse("okr-home"))


def test_home_without_a_cycle_links_to_the_cycles(db, bob, client_for):
    response = client_for(bob).get(reverse("okr-home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="no-cycle"' in html
    try:
        assert f'href="{reverse("okr-cycles")}"' in html
    except NoReverseMatch:  # the cycles page comes with the forms
        pass


def test_default_and_chosen_cycle(tree, sam):
    later = services.cycle_create(actor=sam, data={"name": "Q2 2026", "start_date": dt.date(2026, 4, 1),
                                                   "end_date": dt.date(2026, 6, 30)})
    cycles = [later, tree["cycle"]]
    # the active cycle containing today wins over a newer planned one
    assert default_cycle(cycles, today=dt.date(2026, 2, 15)) == tree["cycle"]
    # an active cycle that has ended is still preferred to a planned one
    assert default_cycle(cycles, today=dt.date(2026, 5, 1)) == tree["cycle"]
    assert default_cycle([later]) == later and default_cycle([]) is None
    assert chosen_cycle(str(later.pk), cycles) == later


def test_objective_expected_and_confidence(tree, bob):
    roots = selectors.alignment_tree(tree["cycle"], bob, now=MID)
    team = roots[0].children[0]
    # both key results are due at the cycle end: (1 × 0.5 + 1 × 0.5) ÷ 2; confidences 8 and 4 → 6
    assert objective_expected(team) == D("0.5") and objective_confidence(team) == 6


def test_another_cycle_by_parameter(tree, sam, bob, client_for, clock):
    other = services.cycle_create(actor=sam, data={"name": "Q2 2026", "start_date": dt.date(2026, 4, 1),
                                                   "end_date": dt.date(2026, 6, 30)})
    response = client_for(bob).get(reverse("okr-home") + f"?cycle={other.pk}")
    assert response.status_code == 200 and response.context["cycle"] == other
    assert "No objectives in this cycle yet." in response.content.decode()


# --- lists -------------------------------------------------------------------------------------------------


def test_at_risk_worst_first(tree, mona, client_for, clock, django_assert_num_queries):
    client = client_for(mona)
    client.get(reverse("okr-at-risk"))
    # session + user, cycles, at risk (4 + the manager's teams), the unread notifications
    with django_assert_num_queries(9):
        response = client.get(reverse("okr-at-risk"))
    assert [(s.key_result.title, s.pace) for s in response.context["states"]] == [
        ("Demo certified", D("0")), ("Churn 8 → 5", D("0.4"))]
    html = response.content.decode()
    assert html.index("Demo certified") < html.index("Churn 8 → 5") and "Win rate" not in html


def test_at_risk_of_a_rep_leaves_out_what_they_do_not_see(tree, charlie, client_for, clock):
    response = client_for(charlie).get(reverse("okr-at-risk"))
    assert [s.key_result.title for s in response.context["states"]] == ["Churn 8 → 5"]


def test_changes_page(tree, mona, north, south, client_for, clock, django_assert_num_queries):
    client = client_for(mona)
    client.get(reverse("okr-changes"))
    # session + user, cycles, changes (3 + the manager's teams), teams, the unread notifications
    with django_assert_num_queries(9):
        response = client.get(reverse("okr-changes"))
    html = response.content.decode()
    assert "Win rate 22 → 30" in html and "24% → 26%" in html
    response = client.get(reverse("okr-changes") + f"?team={south.pk}")
    assert response.status_code == 200
    changes = response.context["changes"]
    assert changes.moved == [] and changes.no_check_in == []


def test_my_key_results_with_the_quick_check_in_form(tree, mona, alice, north, win_rate, make_kr, client_for,
                                                     clock, django_assert_num_queries):
    linked = make_kr(mona, tree["team"], title="Win rate from the KPI", kpi=win_rate, dimension_kind="team",
                     dimension_id=north.pk, start_value=D("20"), target_value=D("30"))
    client = client_for(mona)
    client.get(reverse("okr-mine"))
    with django_assert_num_queries(6):  # session + user, my key results (3), the unread notifications
        response = client.get(reverse("okr-mine"))
    html = response.content.decode()
    assert [s.key_result.title for s in response.context["states"]] == [
        "Win rate 22 → 30", "Churn 8 → 5", "Win rate from the KPI"]
    manual = html[html.index(f'data-testid="mine-{tree["win"].pk}"'):html.index(f'data-testid="mine-{tree["churn"].pk}"')]
    kpi_block = html[html.index(f'data-testid="mine-{linked.pk}"'):]
    assert f'action="{reverse("okr-check-in", args=[tree["win"].pk])}"' in manual
    assert 'name="value"' in manual and 'name="confidence"' in manual and 'name="note"' in manual
    # a KPI-linked key result: only confidence and a note
    assert 'name="value"' not in kpi_block.split("</form>")[0] and 'name="confidence"' in kpi_block
    # alice's milestone: done or not
    html = client_for(alice).get(reverse("okr-mine")).content.decode()
    assert '<option value="yes">Done</option>' in html


def test_quick_check_in_posts_to_the_forms_view(tree, mona, alice, client_for, clock):
    """The quick form's fields as the check-in view reads them; back to my key results afterwards."""
    client = client_for(mona)
    url = reverse("okr-check-in", args=[tree["win"].pk])
    response = client.post(url, {"value": "27", "confidence": "7", "note": "Two wins this week",
                                 "next": reverse("okr-mine")})
    assert response.status_code == 302 and response["Location"] == reverse("okr-mine")
    row = tree["win"].check_ins.order_by("-id").first()
    assert (row.value, row.confidence, row.note, row.author) == (D("27"), 7, "Two wins this week", mona)
    client = client_for(alice)
    response = client.post(reverse("okr-check-in", args=[tree["demo"].pk]),
                           {"done": "yes", "confidence": "9", "note": "", "next": reverse("okr-mine")})
    assert response.status_code == 302 and fresh(tree["demo"]).milestone_done is True


def test_my_key_results_empty(db, bob, client_for):
    response = client_for(bob).get(reverse("okr-mine"))
    assert 'data-testid="mine-empty"' in response.content.decode()


# --- export and print --------------------------------------------------------------------------------------


def test_team_export_csv(tree, mona, bob, north, make_kr, client_for, clock):
    make_kr(mona, tree["team"], title="=HYPERLINK(\"http://x\")", start_value=D("0"), target_value=D("10"))
    response = client_for(bob).get(reverse("okr-team-export", args=[north.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body[1:])))
    win = next(r for r in rows if r["Key result"] == "Win rate 22 → 30")
    assert (win["Objective"], win["Start"], win["Target"], win["Current"], win["Progress (%)"], win["Expected (%)"],
            win["Pace"], win["Status"], win["Confidence"], win["Measured by"]) == (
        "Sell better", "22", "30", "26", "50", "50", "1", "On track", "8", "By hand")
    # (0.5 + 0.2 + 0) ÷ 3 = 0.2333 → 23.3 % (one decimal, as the pages; the third key result has no check-in)
    assert win["Objective progress (%)"] == "23.3" and win["Last check-in"] == "2026-02-12 00:00"
    churn = next(r for r in rows if r["Key result"] == "Churn 8 → 5")
    assert (churn["Current"], churn["Progress (%)"], churn["Pace"], churn["Status"]) == ("7.4", "20", "0.4",
                                                                                         "Off track")
    demo = next(r for r in rows if r["Key result"] == "Demo certified")
    assert (demo["Objective"], demo["Current"], demo["Progress (%)"]) == ("Know the product", "0", "0")
    # a cell a spreadsheet would run as a formula is defused
    assert "'=HYPERLINK(\"http://x\")" in [r["Key result"] for r in rows]


def test_team_export_leaves_out_hidden_objectives(tree, charlie, north, client_for, clock):
    body = client_for(charlie).get(reverse("okr-team-export", args=[north.pk])).content.decode()
    assert "Sell better" in body and "Know the product" not in body


def test_printable_page_has_no_navigation(tree, bob, north, client_for, clock):
    response = client_for(bob).get(reverse("okr-team-print", args=[north.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="topbar"' not in html and "okr-print" in html and "okrs/okrs.css" in html
    assert 'd="M178.0 132.0 L316.0 92.0"' in html and "What changed since last week" in html


# --- help ----------------------------------------------------------------------------------------------------


def test_worked_example_numbers():
    example = worked_example()
    # 45 of 90 days
    assert example["expected"] == D("0.5")
    rows = {row["key"]: row for row in example["rows"]}
    # win (26 − 22) ÷ 8 = 0.5, pace 0.5 ÷ 0.5 = 1; churn (7.4 − 8) ÷ (5 − 8) = 0.2, pace 0.2 ÷ 0.5 = 0.4;
    # NPS keeps above 40: 3 of 4 = 0.75, expected 1 at all times, pace 0.75 ÷ 1 = 0.75 (at risk); the milestone 0
    assert [(rows[k]["progress"], rows[k]["pace"], rows[k]["status"]) for k in ("win", "churn", "nps", "demo")] == [
        (D("0.5"), D("1"), "on_track"), (D("0.2"), D("0.4"), "off_track"), (D("0.75"), D("0.75"), "at_risk"),
        (D("0"), D("0"), "off_track")]
    # (2 × 0.5 + 0.2 + 0.75 + 0) ÷ 5 = 1.95 ÷ 5 = 0.39
    assert example["objective"] == D("0.39") and example["objective_status"] == "off_track"
    # (32 − 22) ÷ 8 = 1.25, shown as 1; 0.65 scores 0.7
    assert (example["over_raw"], example["over_value"], example["score"]) == (D("1.25"), D("1"), D("0.7"))


def test_help_page_shows_the_worked_example(bob, client_for):
    html = client_for(bob).get(reverse("okr-help")).content.decode()
    assert 'data-testid="example-expected">50%' in html and 'data-testid="example-objective">39%' in html
    assert 'data-testid="example-over">125%' in html and "0.65" not in html  # written as 65%
    win = html[html.index('data-testid="example-win"'):html.index('data-testid="example-churn"')]
    assert 'data-testid="progress">50%' in win and 'data-testid="pace">1.00' in win
    nps = html[html.index('data-testid="example-nps"'):html.index('data-testid="example-demo"')]
    assert 'data-testid="progress">75%' in nps and 'data-testid="pace">0.75' in nps and 'data-status="at_risk"' in nps
    assert "the expected progress is 100 % at all times" in html
    assert re.search(r"65%</?\w*>? scores 0.7|65% scores 0.7", html)


# --- small helpers ---------------------------------------------------------------------------------------------


def test_formatting_helpers(tree):
    assert okr_pct(D("0.3889")) == "38.9%" and okr_pct(D("0.35")) == "35%" and okr_pct(None) == "—"
    assert okr_pct(D("0.0001")) == "0%" and okr_pct(D("1.25")) == "125%"
    win = fresh(tree["win"])
    assert okr_value(D("26.000000"), win) == "26%" and okr_value(None, win) == "—"
    assert okr_value(D("1"), tree["demo"]) == "Done"


def test_cycle_dates(tree):
    assert (tree["cycle"].start_date, tree["cycle"].end_date) == (Q1_START, Q1_END)


# --- KPI names in the reader's language ------------------------------------------------------------------------


@pytest.fixture
def english_afterwards():
    """A request of a Turkish user leaves Turkish active in the thread: back to English for the next tests."""
    yield
    from django.utils import translation

    translation.activate("en")


def test_kpi_names_are_shown_in_the_readers_language(tree, mona, north, make_kr, client_for, clock, english_afterwards):
    """A built-in KPI's name is stored in English and shown translated (kpis.models.Kpi.shown_name)."""
    from kpis.models import Kpi

    cycle_length = Kpi.objects.get(slug="sales-cycle-length")
    make_kr(mona, tree["team"], title="Shorter cycles", kind="decrease", start_value=D("40"), target_value=D("30"),
            kpi=cycle_length, dimension_kind="team", dimension_id=north.pk)
    mona.language = "tr"
    mona.save(update_fields=["language"])
    client = client_for(mona)
    for url in (reverse("okr-team", args=[north.pk]), reverse("okr-mine")):
        html = client.get(url).content.decode()
        assert "Satış Döngüsü Süresi" in html and "Sales cycle length" not in html, url
    body = client.get(reverse("okr-team-export", args=[north.pk])).content.decode("utf-8")
    assert "Satış Döngüsü Süresi" in body and "Sales cycle length" not in body


# --- one way of writing numbers ------------------------------------------------------------------------------


def test_values_and_progress_are_written_the_same_everywhere(tree, mona, bob, north, make_kr, client_for, clock):
    """15.2 → 21.5 (no trailing zeros), values with two decimals at most, progress with one decimal at most —
    on the tree, the team dashboard, the objective page, the key result page, my key results, the print page
    and the CSV (which writes a plain dot)."""
    kr = make_kr(mona, tree["team"], title="Calls a day", start_value=D("15.2"), target_value=D("21.5"),
                 owner=mona)
    services.check_in(actor=mona, key_result=kr, value="20.3456", now=at(dt.date(2026, 2, 10)))
    # progress (20.3456 − 15.2) ÷ (21.5 − 15.2) = 5.1456 ÷ 6.3 = 0.816762 → 0.8168 → 81.68 % → 81.7%
    # the objective: (0.5 + 0.2 + 0.8168) ÷ 3 = 1.5168 ÷ 3 = 0.5056 → 50.56 % → 50.6%
    client = client_for(mona)
    pages = {
        "tree": reverse("okr-home"), "team": reverse("okr-team", args=[north.pk]),
        "print": reverse("okr-team-print", args=[north.pk]), "objective": reverse("okr-objective", args=[
            tree["team"].pk]), "kr": reverse("okr-kr", args=[kr.pk]), "mine": reverse("okr-mine"),
    }
    for name, url in pages.items():
        html = client.get(url).content.decode()
        assert "81.7%" in html, name
        assert "82%" not in html and "81.68" not in html, name
        if name in ("team", "print", "objective", "kr", "mine"):
            assert "15.2 → 21.5" in html and "15.20" not in html and "21.50" not in html, name
        if name in ("team", "print", "objective", "kr"):
            assert "20.35" in html and "20.3456" not in html, name
        if name in ("tree", "team", "print", "objective"):
            assert "50.6%" in html, name
    body = client.get(reverse("okr-team-export", args=[north.pk])).content.decode("utf-8")
    row = next(r for r in csv.DictReader(io.StringIO(body[1:])) if r["Key result"] == "Calls a day")
    assert (row["Start"], row["Target"], row["Current"], row["Progress (%)"], row["Objective progress (%)"]) == (
        "15.2", "21.5", "20.35", "81.7", "50.6")


def test_a_key_result_measured_in_days_says_days(tree, mona, north, make_kr, client_for, clock):
    """Sales cycle length is a KPI in days: its key result's values read “days”, not a bare number."""
    from kpis.models import Kpi

    from .conftest import snapshot

    cycle_length = Kpi.objects.get(slug="sales-cycle-length")
    kr = make_kr(mona, tree["team"], title="Shorter cycles", kind="decrease", start_value=D("40"),
                 target_value=D("30"), kpi=cycle_length, dimension_kind="team", dimension_id=north.pk)
    services.checkins_from_snapshots([snapshot(cycle_length, dt.date(2026, 2, 9), 7, D("36.5"), kind="team",
                                               member=north.pk)])
    assert okr_value(D("1"), fresh(kr)) == "1 day"
    # pipeline velocity is money per day, as the KPI pages write it
    velocity = make_kr(mona, tree["team"], title="Faster pipeline", start_value=D("1000"), target_value=D("1500"),
                       kpi=Kpi.objects.get(slug="pipeline-velocity"))
    assert okr_value(D("1250"), fresh(velocity)) == "1,250 TRY/day"
    client = client_for(mona)
    for url in (reverse("okr-team", args=[north.pk]), reverse("okr-kr", args=[kr.pk]), reverse("okr-mine")):
        html = client.get(url).content.decode()
        assert "40 days → 30 days" in html, url
    html = client.get(reverse("okr-kr", args=[kr.pk])).content.decode()
    assert "36.5 days" in html
    body = client.get(reverse("okr-team-export", args=[north.pk])).content.decode("utf-8")
    row = next(r for r in csv.DictReader(io.StringIO(body[1:])) if r["Key result"] == "Shorter cycles")
    assert (row["Unit"], row["Current"]) == ("Days", "36.5")


# --- a closed cycle is read by its scores ---------------------------------------------------------------------


def test_team_dashboard_of_a_closed_cycle_shows_scores(tree, sam, mona, bob, north, client_for, clock,
                                                       django_assert_num_queries):
    """After the close: each key result's score (with the override comment), each objective's score (the
    weighted mean of its key results' scores); no expected mark, pace, status or "what changed"."""
    services.key_result_update(actor=mona, key_result=tree["win"], data={"weight": D("2")}, reason="Matters most")
    services.cycle_close(actor=sam, cycle=tree["cycle"], now=MID, overrides={
        tree["churn"].pk: {"score": D("0.4"), "comment": "Two big accounts saved in the last week"}})
    # win: progress 0.5 → score 0.5; churn: progress 0.2 → 0.2, overridden to 0.4; demo: 0 → 0.0
    # Sell better: (2 × 0.5 + 1 × 0.4) ÷ (2 + 1) = 1.4 ÷ 3 = 0.4667 → shown 0.47; Know the product: 0.0
    client = client_for(bob)
    url = reverse("okr-team", args=[north.pk])
    client.get(url)
    # session + user, team, cycles, team objectives (4), charts' series, teams, the unread notifications — no
    # "what changed" any more
    with django_assert_num_queries(11):
        response = client.get(url)
    html = response.content.decode()
    team = response.context["objectives"][0]
    assert team.score == D("0.4667") and response.context["objectives"][1].score == D("0")
    assert response.context["changes"] is None
    head = html[html.index(f'data-testid="objective-{tree["team"].pk}"'):html.index(f'data-testid="kr-{tree["win"].pk}"')]
    assert 'data-testid="objective-score"' in head and ">Score 0.47</span>" in head
    win = html[html.index(f'data-testid="kr-{tree["win"].pk}"'):html.index(f'data-testid="kr-{tree["churn"].pk}"')]
    assert 'data-testid="kr-score">0.5<' in win and "overridden" not in win and 'data-testid="score-comment"' not in win
    churn = html[html.index(f'data-testid="kr-{tree["churn"].pk}"'):]
    churn = churn[:churn.index("</svg>")]
    assert 'data-testid="kr-score">0.4<' in churn and "overridden" in churn
    assert "Two big accounts saved in the last week" in churn
    assert ">Score 0.0</span>" in html  # Know the product: its milestone scored 0.0
    for live in ('data-testid="kr-pace"', 'data-testid="kr-expected"', "data-status=", "What changed since last week",
                 "expected by now:", "okr-bar-expected"):
        assert live not in html, live
    assert 'data-testid="closed-note"' in html
    # the print page and the tree say the same
    html = client.get(reverse("okr-team-print", args=[north.pk])).content.decode()
    assert "Score 0.47" in html and "What changed since last week" not in html and "data-status=" not in html
    html = client.get(reverse("okr-home")).content.decode()
    assert "Score 0.47" in html and "data-status=" not in html
    # the export: scores, the objective's too (0.4667 rounded to two decimals); no expected, pace or status
    body = client.get(reverse("okr-team-export", args=[north.pk])).content.decode("utf-8")
    rows = {r["Key result"]: r for r in csv.DictReader(io.StringIO(body[1:]))}
    churn = rows["Churn 8 → 5"]
    assert (churn["Score"], churn["Objective score"], churn["Status"], churn["Pace"], churn["Expected (%)"]) == (
        "0.4", "0.47", "", "", "")


def test_okr_score_format():
    from django.utils import translation

    from okrs.templatetags.okrs import okr_score

    with translation.override("en"):
        assert [okr_score(v) for v in (D("0.4667"), D("0.5"), D("0"), D("1"), None)] == [
            "0.47", "0.5", "0.0", "1.0", "—"]


def test_confidence_is_the_latest_check_ins(tree, mona, north, client_for, clock):
    """The confidence beside the status is the latest check-in's, labelled so: a check-in without one shows
    “—”, not an older confidence as if it were current."""
    services.check_in(actor=mona, key_result=tree["win"], value="27", now=at(dt.date(2026, 2, 14)))
    html = client_for(mona).get(reverse("okr-team", args=[north.pk])).content.decode()
    win = html[html.index(f'data-testid="kr-{tree["win"].pk}"'):html.index(f'data-testid="kr-{tree["churn"].pk}"')]
    assert "Confidence (latest check-in)" in win and '<span class="okr-confidence tone-' not in win
    assert 'title="The latest check-in gave no confidence">—<' in win
    html = client_for(mona).get(reverse("okr-kr", args=[tree["win"].pk])).content.decode()
    assert "Confidence (latest check-in)" in html


def test_key_results_created_this_week_are_listed_as_new_for_their_team(tree, sam, mona, south, north, make_objective,
                                                                        make_kr, client_for, clock):
    """The core lists key results created since last week in ``Changes.new``; the team dashboard keeps its own."""
    fresh_kr = make_kr(mona, tree["team"], title="Referrals", start_value=D("0"), target_value=D("10"))
    south_objective = make_objective(sam, tree["cycle"], title="South sells", level="team", team=south)
    make_kr(sam, south_objective, title="South calls", start_value=D("0"), target_value=D("10"))
    response = client_for(mona).get(reverse("okr-team", args=[north.pk]))
    assert [s.key_result.title for s in response.context["changes"].new] == [fresh_kr.title]
    html = response.content.decode()
    assert 'data-testid="new"' in html and "Referrals" in html and "South calls" not in html
