"""OKR reads: visibility, the alignment tree, a team's objectives, at risk, what changed, my key results —
with computed progress and status checked against hand-worked values, and pinned query counts."""

import datetime as dt
from decimal import Decimal as D

import pytest

from okrs import selectors, services

from .conftest import MID, at


@pytest.fixture
def tree(active, sam, mona, alice, charlie, north, make_objective, make_kr):
    company = make_objective(sam, active, title="Delight customers", level="company")
    team = make_objective(mona, active, title="Sell better", level="team", team=north, parent=company)
    win = make_kr(mona, team, title="Win rate 22 → 30")
    churn = make_kr(mona, team, title="Churn 8 → 5", kind="decrease", start_value=D("8"), target_value=D("5"))
    mine = make_objective(alice, active, title="Know the product", parent=team)
    demo = make_kr(alice, mine, title="Demo certified", kind="milestone")
    theirs = make_objective(charlie, active, title="South secret")
    services.check_in(actor=mona, key_result=win, value="24", now=at(dt.date(2026, 1, 20)))
    services.check_in(actor=mona, key_result=churn, value="7.4", confidence=4, now=at(dt.date(2026, 1, 20)))
    services.check_in(actor=mona, key_result=win, value="26", confidence=8, now=at(dt.date(2026, 2, 12)))
    return {"company": company, "team": team, "mine": mine, "theirs": theirs, "win": win, "churn": churn,
            "demo": demo}


def titles(states):
    return [s.objective.title for s in states]


def test_visibility_of_individual_objectives(tree, bob, charlie, mona, sam):
    assert set(selectors.objectives_visible_to(bob).values_list("title", flat=True)) == {
        "Delight customers", "Sell better", "Know the product"}
    assert set(selectors.objectives_visible_to(charlie).values_list("title", flat=True)) == {
        "Delight customers", "Sell better", "South secret"}
    assert selectors.objectives_visible_to(sam).count() == 4


def test_alignment_tree_with_progress_and_status(tree, bob, django_assert_num_queries):
    with django_assert_num_queries(4):
        roots = selectors.alignment_tree(tree["company"].cycle, bob, now=MID)
    assert titles(roots) == ["Delight customers"]
    team = roots[0].children[0]
    assert titles(roots[0].children) == ["Sell better"] and titles(team.children) == ["Know the product"]
    win, churn = team.key_results
    # win: (26 − 22) ÷ 8 = 0.5; expected 45 ÷ 90 = 0.5; pace 1 → on track; confidence 8 from the last check-in
    assert (win.progress.value, win.expected, win.pace, win.status, win.confidence) == (
        D("0.5"), D("0.5"), D("1"), "on_track", 8)
    # churn: (7.4 − 8) ÷ (5 − 8) = 0.2; pace 0.2 ÷ 0.5 = 0.4 → off track
    assert (churn.progress.value, churn.pace, churn.status, churn.confidence) == (D("0.2"), D("0.4"), "off_track", 4)
    # the objective: (0.5 + 0.2) ÷ 2 = 0.35, the worst status of its key results
    assert (team.progress, team.status) == (D("0.35"), "off_track")
    # the company objective has no key results: no progress, no status
    assert (roots[0].progress, roots[0].status) == (None, None)


def test_no_status_in_the_first_week_or_in_planning(tree, bob):
    states = selectors.key_result_states(tree["team"].cycle, user=bob, now=at(dt.date(2026, 1, 7), 12))
    assert {s.status for s in states} == {None}


def test_query_count_does_not_grow_with_the_tree(tree, bob, mona, active, north, make_objective, make_kr,
                                                 django_assert_num_queries):
    for n in range(5):
        objective = make_objective(mona, active, title=f"More {n}", level="team", team=north, parent=tree["team"])
        kr = make_kr(mona, objective, kind="keep_above", target_value=D("10"))
        services.check_in(actor=mona, key_result=kr, value="12", now=MID)
    with django_assert_num_queries(4):
        roots = selectors.alignment_tree(active, bob, now=MID)
    assert len(roots[0].children[0].children) == 6


def test_team_objectives(tree, bob, north, django_assert_num_queries):
    with django_assert_num_queries(4):
        states = selectors.team_objectives(tree["team"].cycle, north, bob, now=MID)
    assert titles(states) == ["Sell better", "Know the product"]
    assert states[0].key_results[0].last_check_in.value == D("26")
    assert states[1].key_results[0].last_check_in is None


def test_at_risk_worst_first(tree, mona, django_assert_num_queries):
    # a manager: one more query for the teams they manage (accounts.selectors.visible_team_ids)
    with django_assert_num_queries(5):
        states = selectors.at_risk(tree["team"].cycle, mona, now=MID)
    # the undone milestone (pace 0) before churn (pace 0.4); the win rate is on track
    assert [(s.key_result.title, s.status, s.pace) for s in states] == [
        ("Demo certified", "off_track", D("0")), ("Churn 8 → 5", "off_track", D("0.4"))]


def test_changes_since_last_week(tree, mona, django_assert_num_queries):
    with django_assert_num_queries(4):  # 3 + the manager's teams
        changes = selectors.changes_since(tree["team"].cycle, mona, now=MID)
    assert changes.since == MID - dt.timedelta(days=7)
    # win moved 24 → 26 on 12 February; on 8 February it was at (24 − 22) ÷ 8 = 0.25 against 38 ÷ 90 = 0.4222
    # expected, pace 0.5921 → off track; now on track
    assert [(s.key_result.title, old, new) for s, old, new in changes.moved] == [("Win rate 22 → 30", D("24"),
                                                                                 D("26"))]
    assert [(s.key_result.title, old, new) for s, old, new in changes.status_changed] == [
        ("Win rate 22 → 30", "off_track", "on_track")]
    assert [s.key_result.title for s in changes.no_check_in] == ["Churn 8 → 5", "Demo certified"]


def test_key_results_created_this_week_are_new_not_changed(tree, mona, north, win_rate):
    """Created on 12 February (in the week before MID): no status on 8 February to compare with."""
    import time_machine

    from .conftest import snapshot

    snapshot(win_rate, dt.date(2026, 2, 2), 7, D("28"), kind="team", member=north.pk)
    with time_machine.travel(at(dt.date(2026, 2, 12), 9), tick=False):
        fresh = services.key_result_create(actor=mona, objective=tree["team"], data={
            "title": "Win rate, north", "start_value": 22, "target_value": 30, "kpi": win_rate,
            "dimension_kind": "team", "dimension_id": north.pk})[0]
        manual = services.key_result_create(actor=mona, objective=tree["team"], data={
            "title": "Calls", "start_value": 0, "target_value": 100})[0]
    services.check_in(actor=mona, key_result=manual, value="10", now=at(dt.date(2026, 2, 13)))
    changes = selectors.changes_since(tree["team"].cycle, mona, now=MID)
    assert [s.key_result for s in changes.new] == [fresh, manual]
    # (its automatic check-in from the week of 2 February is older than the key result: still new, not moved)
    listed = [s.key_result for s, _old, _new in changes.moved + changes.status_changed] + [
        s.key_result for s in changes.no_check_in]
    assert fresh not in listed and manual not in listed
    assert [(s.key_result.title, old, new) for s, old, new in changes.status_changed] == [
        ("Win rate 22 → 30", "off_track", "on_track")]
    assert [s.key_result.title for s in changes.no_check_in] == ["Churn 8 → 5", "Demo certified"]


def test_milestone_done_this_week_moved(tree, alice, mona):
    services.check_in(actor=alice, key_result=tree["demo"], done=True, now=MID - dt.timedelta(days=1))
    changes = selectors.changes_since(tree["team"].cycle, mona, now=MID)
    moved = {s.key_result.title: (old, new) for s, old, new in changes.moved}
    assert moved["Demo certified"] == (D("0"), D("1"))
    status = {s.key_result.title: (old, new) for s, old, new in changes.status_changed}
    assert status["Demo certified"] == ("off_track", "on_track")


def test_my_key_results(tree, alice, mona, django_assert_num_queries):
    with django_assert_num_queries(3):
        mine = selectors.my_key_results(alice, now=MID)
    assert [s.key_result.title for s in mine] == ["Demo certified"]
    assert [s.key_result.title for s in selectors.my_key_results(mona, now=MID)] == [
        "Win rate 22 → 30", "Churn 8 → 5"]


def test_series_history_and_pace_line(tree, mona, django_assert_num_queries):
    win = tree["win"]
    with django_assert_num_queries(1):
        series = selectors.key_result_series(win)
    assert [(p.measured_at, p.value, p.is_automatic) for p in series] == [
        (at(dt.date(2026, 1, 20)), D("24"), False), (at(dt.date(2026, 2, 12)), D("26"), False)]
    assert selectors.pace_line(win, tree["team"].cycle) == [(at(dt.date(2026, 1, 1)), D("22")),
                                                             (at(dt.date(2026, 4, 1)), D("30"))]
    services.key_result_update(actor=mona, key_result=win, data={"target_value": "32"}, reason="Strong January")
    assert [(c.field, c.old_value, c.new_value, c.changed_by) for c in selectors.key_result_history(win)] == [
        ("target_value", "30", "32", mona)]


def test_keep_above_counts_only_the_cycle_check_ins(active, mona, north, make_objective, make_kr):
    objective = make_objective(mona, active, level="team", team=north)
    kr = make_kr(mona, objective, kind="keep_above", target_value=D("50"))
    for day, value in [(5, "60"), (15, "45"), (25, "50"), (35, "49")]:
        services.check_in(actor=mona, key_result=kr, value=value, now=at(dt.date(2026, 1, 1)) + dt.timedelta(day))
    # 60 and 50 meet ≥ 50: 2 of 4 = 0.5; a keep key result is expected at 1 all along → pace 0.5, off track
    state = selectors.key_result_state(kr, now=MID)
    assert (state.progress.value, state.expected, state.pace, state.status) == (D("0.5"), D("1"), D("0.5"),
                                                                              "off_track")


@pytest.mark.parametrize(("readings", "pace", "status"), [
    # 3 of 4 met ≥ 40: 0.75 ÷ 1 = 0.75 ≥ 0.75 → at risk (with the cycle's share, 0.75 ÷ 0.5 = 1.5 would be on track)
    (["42", "38", "45", "41"], "0.75", "at_risk"),
    # 4 of 4: on track on any day
    (["42", "40", "45", "41"], "1", "on_track"),
    # 1 of 2: off track
    (["42", "38"], "0.5", "off_track"),
])
def test_keep_above_pace_is_the_share_met_whatever_the_day(active, mona, north, make_objective, make_kr, readings,
                                                           pace, status):
    objective = make_objective(mona, active, level="team", team=north)
    kr = make_kr(mona, objective, kind="keep_above", target_value=D("40"))
    for n, value in enumerate(readings):
        services.check_in(actor=mona, key_result=kr, value=value, now=at(dt.date(2026, 1, 10 + n)))
    for now in (at(dt.date(2026, 1, 20)), MID, at(dt.date(2026, 3, 30))):
        state = selectors.key_result_state(kr, now=now)
        assert (state.expected, state.pace, state.status) == (D("1"), D(pace), status)
