"""OKR services: cycles, objectives (permissions, warnings, alignment), key results (validation, history),
check-ins, closing and scoring, initiatives."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from okrs import services
from okrs.models import CheckIn, Cycle, KeyResult, KeyResultChange, Objective

from .conftest import MID, Q1_END, Q1_START, at


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


# --- cycles --------------------------------------------------------------------------------------


def test_cycle_defaults_to_the_current_quarter(sam):
    with time_machine.travel(at(dt.date(2026, 5, 10), 12)):
        cycle = services.cycle_create(actor=sam)
    assert (cycle.name, cycle.start_date, cycle.end_date, cycle.status) == (
        "Q2 2026", dt.date(2026, 4, 1), dt.date(2026, 6, 30), Cycle.Status.PLANNING)
    assert (cycle.on_track_threshold, cycle.at_risk_threshold, cycle.grace_days) == (D("0.95"), D("0.75"), 7)


def test_cycle_from_a_start_date_lasts_a_quarter(sam):
    cycle = services.cycle_create(actor=sam, data={"start_date": "2026-02-01"})
    assert (cycle.end_date, cycle.name) == (dt.date(2026, 4, 30), "2026-02-01 – 2026-04-30")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"start_date": "2026-03-01", "end_date": "2026-02-01"}, "end_date"),
        ({"start_date": "2026-03-01", "end_date": "2026-03-01"}, "end_date"),
        ({"start_date": "1 March"}, "start_date"),
        ({"on_track_threshold": "0.7", "at_risk_threshold": "0.8"}, "at_risk_threshold"),
        ({"on_track_threshold": "abc"}, "on_track_threshold"),
        ({"grace_days": 400}, "grace_days"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_cycle_bad_input_is_refused_with_the_field(sam, data, field):
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_create(actor=sam, data=data)
    assert field in errors_of(excinfo)
    assert not Cycle.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "mona", "integ"])
def test_only_admins_run_cycles(request, persona, cycle):
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        services.cycle_create(actor=user)
    with pytest.raises(PermissionDenied):
        services.cycle_activate(actor=user, cycle=cycle)


def test_cycle_goes_planning_active_closed_and_not_back(sam, cycle):
    with pytest.raises(ValidationError):
        services.cycle_close(actor=sam, cycle=cycle)
    services.cycle_activate(actor=sam, cycle=cycle, now=at(Q1_START))
    with pytest.raises(ValidationError):
        services.cycle_activate(actor=sam, cycle=cycle)
    services.cycle_close(actor=sam, cycle=cycle, now=at(dt.date(2026, 4, 1)))
    cycle.refresh_from_db()
    assert (cycle.status, cycle.closed_by, cycle.closed_at) == ("closed", sam, at(dt.date(2026, 4, 1)))
    with pytest.raises(ValidationError):
        services.cycle_update(actor=sam, cycle=cycle, data={"name": "Renamed"})


def test_cycle_names_are_unique_whatever_the_case(sam, cycle):
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_create(actor=sam, data={"name": "q1 2026 ", "start_date": "2027-01-01"})
    assert errors_of(excinfo) == {"name": ["A cycle named “q1 2026” exists already; choose another name."]}
    # the default name of a quarter counts too: Q1 2026 is taken
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_create(actor=sam, data={"start_date": "2026-01-01", "end_date": "2026-03-31"})
    assert errors_of(excinfo) == {"name": ["A cycle named “Q1 2026” exists already; choose another name."]}
    other = services.cycle_create(actor=sam, data={"name": "Q2 2026", "start_date": "2026-04-01"})
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_update(actor=sam, cycle=other, data={"name": "Q1 2026"})
    assert list(errors_of(excinfo)) == ["name"]
    # keeping its own name (in another case) is fine
    assert services.cycle_update(actor=sam, cycle=other, data={"name": "q2 2026"}).name == "q2 2026"
    assert Cycle.objects.count() == 2


def test_overlapping_cycles_cannot_both_be_active(sam, active):
    # Q1 2026 (1 January – 31 March) is active
    overlapping = services.cycle_create(actor=sam, data={"name": "Winter push", "start_date": "2026-03-01",
                                                          "end_date": "2026-04-30"})
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_activate(actor=sam, cycle=overlapping)
    assert errors_of(excinfo) == {"status": [
        "“Q1 2026” is active and its days (Jan. 1, 2026 – March 31, 2026) overlap this cycle's; close it first or "
        "move the dates."]}
    assert Cycle.objects.get(pk=overlapping.pk).status == "planning"
    # the day after the active cycle's last day does not overlap
    services.cycle_update(actor=sam, cycle=overlapping, data={"start_date": "2026-04-01"})
    services.cycle_activate(actor=sam, cycle=overlapping)
    # an active cycle's dates cannot be moved onto another active cycle either
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_update(actor=sam, cycle=overlapping, data={"start_date": "2026-03-31"})
    assert errors_of(excinfo)["start_date"][0].startswith("“Q1 2026” is active")
    assert Cycle.objects.get(pk=overlapping.pk).start_date == dt.date(2026, 4, 1)
    # once Q1 is closed, an overlapping cycle may be activated
    services.cycle_close(actor=sam, cycle=active)
    third = services.cycle_create(actor=sam, data={"name": "Spring", "start_date": "2026-02-01",
                                                    "end_date": "2026-03-31"})
    services.cycle_activate(actor=sam, cycle=third)


# --- objectives: permissions -----------------------------------------------------------------------


def test_company_objectives_are_for_admins(sam, mona, cycle):
    objective, _warnings = services.objective_create(actor=sam, cycle=cycle, data={"title": "Delight customers",
                                                                                    "level": "company"})
    assert (objective.level, objective.team, objective.owner) == ("company", None, sam)
    with pytest.raises(ValidationError) as excinfo:
        services.objective_create(actor=mona, cycle=cycle, data={"title": "X", "level": "company"})
    assert "level" in errors_of(excinfo)


@pytest.mark.parametrize(("persona", "allowed"), [("mona", True), ("sam", True), ("alice", False),
                                                  ("charlie", False)])
def test_team_objectives_are_set_by_the_team_manager_and_admins(request, cycle, north, mona, persona, allowed):
    user = request.getfixturevalue(persona)
    data = {"title": "Grow revenue", "level": "team", "team": north, "owner": mona}
    if allowed:
        objective, _warnings = services.objective_create(actor=user, cycle=cycle, data=data)
        assert (objective.team, objective.owner) == (north, mona)
    else:
        with pytest.raises(ValidationError) as excinfo:
            services.objective_create(actor=user, cycle=cycle, data=data)
        assert set(errors_of(excinfo)) & {"team", "owner"}


def test_individual_objectives_for_oneself_or_by_the_manager(cycle, alice, bob, mona, north):
    mine, _w = services.objective_create(actor=alice, cycle=cycle, data={"title": "Learn the product"})
    assert (mine.level, mine.owner, mine.team) == ("individual", alice, north)
    by_manager, _w = services.objective_create(actor=mona, cycle=cycle, data={"title": "Coach", "owner": bob})
    assert by_manager.owner == bob
    with pytest.raises(ValidationError) as excinfo:
        services.objective_create(actor=alice, cycle=cycle, data={"title": "For bob", "owner": bob})
    assert "owner" in errors_of(excinfo)


@pytest.mark.parametrize(("persona", "allowed"), [("alice", True), ("mona", True), ("sam", True),
                                                  ("bob", False), ("charlie", False), ("integ", False)])
def test_who_edits_an_individual_objective(request, cycle, alice, mona, persona, allowed):
    objective, _w = services.objective_create(actor=alice, cycle=cycle, data={"title": "Learn the product"})
    user = request.getfixturevalue(persona)
    if allowed:
        services.objective_update(actor=user, objective=objective, data={"description": "Demo every feature"})
        objective.refresh_from_db()
        assert objective.description == "Demo every feature"
    else:
        with pytest.raises(PermissionDenied):
            services.objective_update(actor=user, objective=objective, data={"description": "x"})


def test_the_team_objective_owner_cannot_move_it_to_another_team(cycle, alice, north, south, sam):
    objective, _w = services.objective_create(actor=sam, cycle=cycle, data={
        "title": "Grow", "level": "team", "team": north, "owner": alice})
    services.objective_update(actor=alice, objective=objective, data={"title": "Grow faster"})
    with pytest.raises(ValidationError) as excinfo:
        services.objective_update(actor=alice, objective=objective, data={"team": south})
    assert "team" in errors_of(excinfo)


# --- objectives: warnings and alignment ------------------------------------------------------------


def test_guidance_warnings(cycle, mona, north, make_kr):
    objective, warnings = services.objective_create(actor=mona, cycle=cycle, data={
        "title": "Grow revenue by 15%", "level": "team", "team": north})
    assert warnings == [
        "Numbers belong in key results: say in words what the objective wants to achieve and put the number "
        "in a key result.",
        "An objective usually has 2 to 4 key results; this one has 0.",
    ]
    objective, warnings = services.objective_update(actor=mona, objective=objective, data={"title": "Grow revenue"})
    assert warnings == ["An objective usually has 2 to 4 key results; this one has 0."]
    make_kr(mona, objective)
    _kr, warnings = services.key_result_create(actor=mona, objective=objective, data={
        "title": "Second", "kind": "milestone"})
    assert warnings == []
    for n in range(3):
        _kr, warnings = services.key_result_create(actor=mona, objective=objective, data={
            "title": f"More {n}", "kind": "milestone"})
    assert warnings == ["More than 4 key results scatter the team's focus; this one has 5. Keep the 2 to 4 that "
                        "matter most."]


def test_alignment_stays_in_the_cycle_and_never_loops(sam, cycle, mona, north, alice, make_objective):
    company = make_objective(sam, cycle, title="Delight customers", level="company")
    team = make_objective(mona, cycle, title="Answer faster", level="team", team=north, parent=company)
    mine = make_objective(alice, cycle, title="Reply the same day", parent=team)
    assert (team.parent, mine.parent) == (company, team)
    with pytest.raises(ValidationError) as excinfo:
        services.objective_update(actor=sam, objective=company, data={"parent": mine})
    assert "loop" in errors_of(excinfo)["parent"][0]
    with pytest.raises(ValidationError):
        services.objective_update(actor=sam, objective=company, data={"parent": company})
    other = services.cycle_create(actor=sam, data={"start_date": dt.date(2026, 4, 1)})
    with pytest.raises(ValidationError) as excinfo:
        make_objective(sam, other, title="Elsewhere", level="company", parent=company)
    assert "same cycle" in errors_of(excinfo)["parent"][0]
    services.objective_archive(actor=sam, objective=team)
    with pytest.raises(ValidationError) as excinfo:
        make_objective(alice, cycle, title="Another", parent=team)
    assert "archived" in errors_of(excinfo)["parent"][0]


def test_alignment_goes_to_the_same_or_a_higher_level(sam, cycle, mona, north, alice, make_objective):
    company = make_objective(sam, cycle, title="Delight customers", level="company")
    team = make_objective(mona, cycle, title="Answer faster", level="team", team=north, parent=company)
    mine = make_objective(alice, cycle, title="Reply the same day", parent=team)
    # same level is fine: a team objective under a team one, an individual one under an individual one
    sub_team = make_objective(mona, cycle, title="Clear the backlog", level="team", team=north, parent=team)
    sub_mine = make_objective(alice, cycle, title="Empty my inbox", parent=mine)
    assert (sub_team.parent, sub_mine.parent) == (team, mine)
    with pytest.raises(ValidationError) as excinfo:
        make_objective(mona, cycle, title="Upside down", level="team", team=north, parent=mine)
    assert errors_of(excinfo) == {"parent": [
        "A team objective cannot align to the individual objective “Reply the same day”: align it to an objective "
        "at the same or a higher level."]}
    with pytest.raises(ValidationError) as excinfo:
        make_objective(sam, cycle, title="Company under a team", level="company", parent=team)
    assert errors_of(excinfo) == {"parent": [
        "A company objective cannot align to the team objective “Answer faster”: align it to an objective at the "
        "same or a higher level."]}
    with pytest.raises(ValidationError) as excinfo:
        services.objective_update(actor=sam, objective=company, data={"parent": team})
    assert list(errors_of(excinfo)) == ["parent"]
    # changing the level: the existing parent must still be at the same or a higher level…
    with pytest.raises(ValidationError) as excinfo:
        services.objective_update(actor=sam, objective=sub_team, data={"level": "company"})
    assert errors_of(excinfo)["parent"][0].startswith("A company objective cannot align to the team objective")
    # …and the objectives aligned under it at the same or a lower one
    services.objective_update(actor=sam, objective=mine, data={"parent": None})
    with pytest.raises(ValidationError) as excinfo:
        services.objective_update(actor=sam, objective=team, data={"level": "individual", "parent": None})
    assert errors_of(excinfo) == {"level": [
        "“Clear the backlog” (team) is aligned under this objective; it cannot move to the individual level."]}
    # a team objective moving up to the company level under a company objective is fine
    assert services.objective_update(actor=sam, objective=team, data={"level": "company"})[0].level == "company"
    assert Objective.objects.get(pk=sub_team.pk).level == "team"
    assert Objective.objects.filter(title__in=["Upside down", "Company under a team"]).count() == 0


def test_aligning_to_an_individual_objective_one_cannot_see_is_refused(cycle, alice, charlie, make_objective):
    mine = make_objective(alice, cycle, title="Mine")
    with pytest.raises(ValidationError) as excinfo:
        make_objective(charlie, cycle, title="Theirs", parent=mine)
    assert errors_of(excinfo) == {"parent": ["Unknown objective."]}


# --- key results ---------------------------------------------------------------------------------


def test_key_result_defaults(north_objective, mona, make_kr):
    kr = make_kr(mona, north_objective)
    assert (kr.due_date, kr.owner, kr.weight, kr.unit, kr.kpi) == (Q1_END, mona, D("1"), "number", None)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "increase", "start_value": "22"}, "target_value"),
        ({"kind": "increase", "target_value": "30"}, "start_value"),
        ({"kind": "keep_above"}, "target_value"),
        ({"kind": "increase", "start_value": "5", "target_value": "5"}, "target_value"),
        ({"kind": "increase", "start_value": "8", "target_value": "5"}, "kind"),
        ({"kind": "decrease", "start_value": "5", "target_value": "8"}, "kind"),
        ({"kind": "increase", "start_value": "x", "target_value": "5"}, "start_value"),
        ({"kind": "increase", "start_value": "1", "target_value": "5", "due_date": "2026-04-01"}, "due_date"),
        ({"kind": "increase", "start_value": "1", "target_value": "5", "due_date": "2025-12-31"}, "due_date"),
        ({"kind": "increase", "start_value": "1", "target_value": "5", "weight": "0"}, "weight"),
        ({"kind": "increase", "start_value": "1", "target_value": "5", "unit": "apples"}, "unit"),
        ({"kind": "grow", "start_value": "1", "target_value": "5"}, "kind"),
        ({"kind": "increase", "start_value": "1", "target_value": "5", "dimension_kind": "team"}, "dimension_kind"),
        ({"kind": "increase", "start_value": "1", "target_value": "5", "colour": "red"}, "colour"),
        ({"kind": "increase", "start_value": "1", "target_value": "1e20"}, "target_value"),
    ],
)
def test_key_result_bad_input_is_refused(north_objective, mona, data, field):
    with pytest.raises(ValidationError) as excinfo:
        services.key_result_create(actor=mona, objective=north_objective, data={"title": "KR", **data})
    assert field in errors_of(excinfo)
    assert not KeyResult.objects.exists()


def test_key_result_linked_to_a_kpi_checks_the_dimension(north_objective, mona, north, win_rate):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate, "dimension_kind": "team",
        "dimension_id": north.pk})
    assert (kr.kpi, kr.dimension_kind, kr.dimension_id, kr.unit) == (win_rate, "team", north.pk, "percent")
    with pytest.raises(ValidationError) as excinfo:
        services.key_result_create(actor=mona, objective=north_objective, data={
            "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate, "dimension_kind": "team",
            "dimension_id": 999999})
    assert errors_of(excinfo) == {"dimension_id": ["There is no team with id 999999."]}
    from kpis.models import Kpi
    roi = Kpi.objects.get(slug="lead-source-roi")
    with pytest.raises(ValidationError) as excinfo:
        services.key_result_create(actor=mona, objective=north_objective, data={
            "title": "ROI", "start_value": 100, "target_value": 200, "kpi": roi, "dimension_kind": "team",
            "dimension_id": north.pk})
    assert "dimension_kind" in errors_of(excinfo)


def test_kpi_messages_name_the_kpi_and_the_breakdown_in_the_readers_words(north_objective, mona):
    """Messages name a KPI by its shown name (a built-in's in the reader's language) and a breakdown by its label,
    not by the stored code ("source")."""
    from django.utils import translation

    from kpis.models import Kpi

    def refused(slug, **data):
        with pytest.raises(ValidationError) as excinfo:
            services.key_result_create(actor=mona, objective=north_objective, data={
                "title": "KR", "start_value": 1, "target_value": 2, "kpi": Kpi.objects.get(slug=slug), **data})
        return errors_of(excinfo)

    assert refused("cac", kind="decrease", start_value=2, target_value=1, dimension_kind="source",
                   dimension_id=999999) == {"dimension_id": ["There is no lead source with id 999999."]}
    assert refused("crm-user-adoption", dimension_kind="source", dimension_id=1) == {
        "dimension_kind": ["“CRM user adoption” cannot be broken down by lead source."]}
    Kpi.objects.filter(slug="sales-cycle-length").update(is_active=False)
    with translation.override("tr"):
        message = refused("sales-cycle-length", kind="decrease", start_value=2, target_value=1)["kpi"][0]
    assert "Satış Döngüsü Süresi" in message and "Sales cycle length" not in message


def test_a_key_result_linked_to_a_kpi_takes_its_unit(north_objective, mona, north, win_rate, make_kr):
    from kpis.models import Kpi

    def create(slug, **data):
        return services.key_result_create(actor=mona, objective=north_objective, data={
            "title": slug, "kind": "increase", "start_value": 1, "target_value": 2,
            "kpi": Kpi.objects.get(slug=slug), **data})[0]

    # percent → percent, currency → money, money per day → money, days → number, number → number; the same unit
    # given is fine
    assert [create(slug).unit for slug in ("win-rate", "pipeline-value", "pipeline-velocity", "sales-cycle-length",
                                           "nps")] == ["percent", "currency", "currency", "number", "number"]
    assert create("pipeline-velocity", unit="currency").unit == "currency"
    assert create("win-rate", unit="percent").unit == "percent"
    assert create("sales-cycle-length", unit="number", kind="decrease", start_value=60, target_value=48).unit == (
        "number")
    with pytest.raises(ValidationError) as excinfo:
        create("win-rate", unit="currency")
    assert errors_of(excinfo) == {"unit": ["A key result measured by “Win rate” is in the KPI's unit, “Percent”."]}
    with pytest.raises(ValidationError) as excinfo:
        create("sales-cycle-length", unit="percent")
    assert errors_of(excinfo) == {"unit": [
        "A key result measured by “Sales cycle length” is in the KPI's unit, “Number”."]}
    # linking an existing key result to a KPI takes the KPI's unit, or refuses another unit given with it
    kr = make_kr(mona, north_objective, title="By hand", unit="currency")
    with pytest.raises(ValidationError) as excinfo:
        services.key_result_update(actor=mona, key_result=kr, data={"kpi": win_rate, "unit": "currency"})
    assert list(errors_of(excinfo)) == ["unit"]
    assert services.key_result_update(actor=mona, key_result=kr, data={"kpi": win_rate}).unit == "percent"
    with pytest.raises(ValidationError):
        services.key_result_update(actor=mona, key_result=kr, data={"unit": "number"})
    assert KeyResult.objects.get(pk=kr.pk).unit == "percent"


def test_milestone_has_no_start_or_target(north_objective, mona):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Launch the portal", "kind": "milestone", "start_value": 1, "target_value": 2})
    assert (kr.start_value, kr.target_value) == (None, None)


def test_history_in_planning_needs_no_reason(north_objective, mona, make_kr):
    kr = make_kr(mona, north_objective)
    services.key_result_update(actor=mona, key_result=kr, data={"target_value": "32", "title": "Win rate up"},
                               now=at(dt.date(2025, 12, 20)))
    rows = list(KeyResultChange.objects.values_list("field", "old_value", "new_value", "changed_by", "reason"))
    assert rows == [("target_value", "30", "32", mona.pk, "")]


def test_history_once_active_needs_a_reason(north_objective, mona, sam, cycle, make_kr):
    kr = make_kr(mona, north_objective)
    services.cycle_activate(actor=sam, cycle=cycle, now=at(Q1_START))
    with pytest.raises(ValidationError) as excinfo:
        services.key_result_update(actor=mona, key_result=kr, data={"start_value": "20", "weight": "2"})
    assert errors_of(excinfo) == {"reason": ["The cycle is under way: say why the start value, weight changed."]}
    kr.refresh_from_db()
    assert (kr.start_value, kr.weight) == (D("22"), D("1"))
    services.key_result_update(actor=mona, key_result=kr, reason="Q4 ended lower than we thought", now=MID, data={
        "start_value": "20", "weight": "2", "due_date": "2026-02-28", "title": "Renamed"})
    rows = sorted(KeyResultChange.objects.values_list("field", "old_value", "new_value", "reason", "changed_at"))
    assert rows == [
        ("due_date", "2026-03-31", "2026-02-28", "Q4 ended lower than we thought", MID),
        ("start_value", "22", "20", "Q4 ended lower than we thought", MID),
        ("weight", "1", "2", "Q4 ended lower than we thought", MID),
    ]
    # a title-only change needs no reason and writes no history
    services.key_result_update(actor=mona, key_result=kr, data={"title": "Again"})
    assert KeyResultChange.objects.count() == 3
    with pytest.raises(ValidationError) as excinfo:
        services.key_result_update(actor=mona, key_result=kr, data={"due_date": None}, reason="x")
    assert errors_of(excinfo) == {"due_date": ["A key result needs a due date."]}


@pytest.mark.parametrize(("persona", "allowed"), [("alice", True), ("mona", True), ("sam", True),
                                                  ("bob", False), ("charlie", False)])
def test_who_edits_and_checks_in_on_a_key_result(request, north_objective, mona, alice, active, persona, allowed,
                                                  make_kr):
    kr = make_kr(mona, north_objective, owner=alice)
    user = request.getfixturevalue(persona)
    if allowed:
        row = services.check_in(actor=user, key_result=kr, value="25", confidence=7, note="Two big deals",
                                now=MID)
        kr.refresh_from_db()
        assert (row.value, row.confidence, row.author, kr.current_value) == (D("25"), 7, user, D("25"))
    else:
        with pytest.raises(PermissionDenied):
            services.check_in(actor=user, key_result=kr, value="25")
        with pytest.raises(PermissionDenied):
            services.key_result_update(actor=user, key_result=kr, data={"title": "x"})
        assert not CheckIn.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"value": "25", "confidence": 11}, "confidence"), ({"value": "25", "confidence": -1}, "confidence"),
     ({"value": "25", "confidence": "high"}, "confidence"), ({"value": "25", "confidence": True}, "confidence"),
     ({"confidence": 5}, "value"), ({"value": "lots"}, "value"), ({"value": "NaN"}, "value")],
)
def test_check_in_bad_input(north_objective, mona, active, make_kr, kwargs, field):
    kr = make_kr(mona, north_objective)
    with pytest.raises(ValidationError) as excinfo:
        services.check_in(actor=mona, key_result=kr, **kwargs)
    assert field in errors_of(excinfo)
    assert not CheckIn.objects.exists()


def test_milestone_check_in(north_objective, mona, active):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Launch", "kind": "milestone"})
    with pytest.raises(ValidationError) as excinfo:
        services.check_in(actor=mona, key_result=kr, confidence=5)
    assert "done" in errors_of(excinfo)
    services.check_in(actor=mona, key_result=kr, done=True, now=MID)
    kr.refresh_from_db()
    assert (kr.milestone_done, kr.current_value) == (True, D("1"))


def test_a_kpi_key_result_takes_confidence_but_no_value_by_hand(north_objective, mona, north, active, win_rate):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate, "dimension_kind": "team",
        "dimension_id": north.pk})
    with pytest.raises(ValidationError) as excinfo:
        services.check_in(actor=mona, key_result=kr, value=25)
    assert errors_of(excinfo) == {"value": ["“Win rate” gives this key result its value; add your confidence and "
                                            "a note."]}
    row = services.check_in(actor=mona, key_result=kr, confidence=6, note="Pipeline looks thin")
    assert (row.value, row.confidence) == (None, 6)


# --- close and score -----------------------------------------------------------------------------


@pytest.fixture
def scored_setup(north_objective, mona, active, make_kr):
    inc = make_kr(mona, north_objective, title="Win rate 22 → 30")
    dec = make_kr(mona, north_objective, title="Churn 8 → 5", kind="decrease", start_value=D("8"),
                  target_value=D("5"))
    keep = make_kr(mona, north_objective, title="NPS ≥ 50", kind="keep_above", target_value=D("50"))
    mile = make_kr(mona, north_objective, title="Portal", kind="milestone")
    services.check_in(actor=mona, key_result=inc, value="26", now=MID)  # (26 − 22) ÷ 8 = 0.5
    services.check_in(actor=mona, key_result=dec, value="6.8", now=MID)  # (6.8 − 8) ÷ −3 = 0.4
    for day, value in [(10, "60"), (20, "40"), (30, "55")]:  # 2 of 3 met = 0.6667
        services.check_in(actor=mona, key_result=keep, value=value, now=at(dt.date(2026, 1, day)))
    services.check_in(actor=mona, key_result=mile, done=True, now=MID)
    return inc, dec, keep, mile


def test_close_scores_every_key_result(sam, active, scored_setup):
    services.cycle_close(actor=sam, cycle=active, now=at(dt.date(2026, 4, 1)))
    scores = [KeyResult.objects.get(pk=kr.pk).score for kr in scored_setup]
    # 0.5 → 0.5; 0.4 → 0.4; 0.6667 → 0.7; done → 1.0
    assert scores == [D("0.5"), D("0.4"), D("0.7"), D("1.0")]


def test_close_override_needs_a_comment(sam, active, scored_setup):
    inc = scored_setup[0]
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_close(actor=sam, cycle=active, overrides={inc.pk: {"score": "0.6"}})
    assert errors_of(excinfo) == {f"overrides.{inc.pk}.comment": ["Say why the score differs from the computed 0.5."]}
    active.refresh_from_db()
    assert active.status == "active" and KeyResult.objects.get(pk=inc.pk).score is None
    with pytest.raises(ValidationError) as excinfo:
        services.cycle_close(actor=sam, cycle=active, overrides={inc.pk: {"score": "0.65", "comment": "x"}})
    assert f"overrides.{inc.pk}.score" in errors_of(excinfo)
    services.cycle_close(actor=sam, cycle=active, overrides={
        inc.pk: {"score": "0.6", "comment": "Two deals signed on 1 April"}})
    inc.refresh_from_db()
    assert (inc.score, inc.score_comment) == (D("0.6"), "Two deals signed on 1 April")


def test_after_close_everything_locks_but_score_overrides(sam, mona, alice, active, scored_setup):
    inc, dec, _keep, _mile = scored_setup
    services.cycle_close(actor=sam, cycle=active, now=at(dt.date(2026, 4, 1)))
    with pytest.raises(ValidationError):
        services.check_in(actor=mona, key_result=inc, value="27")
    with pytest.raises(ValidationError):
        services.check_in_annotate(actor=mona, check_in=CheckIn.objects.filter(key_result=inc).first(),
                                   confidence=3)
    with pytest.raises(ValidationError):
        services.key_result_update(actor=mona, key_result=inc, data={"title": "x"})
    with pytest.raises(ValidationError):
        services.key_result_create(actor=mona, objective=inc.objective, data={"title": "x", "kind": "milestone"})
    with pytest.raises(ValidationError):
        services.initiative_create(actor=mona, key_result=inc, data={"title": "Call"})
    # the score: same as computed needs no comment; another one does
    services.key_result_score(actor=mona, key_result=dec, score="0.4", now=at(dt.date(2026, 4, 2)))
    with pytest.raises(ValidationError) as excinfo:
        services.key_result_score(actor=mona, key_result=dec, score="0.5", now=at(dt.date(2026, 4, 2)))
    assert "comment" in errors_of(excinfo)
    with pytest.raises(PermissionDenied):
        services.key_result_score(actor=alice, key_result=dec, score="0.4", comment="x")
    services.key_result_score(actor=mona, key_result=dec, score="0.5", comment="Churn data late",
                              now=at(dt.date(2026, 4, 2)))
    dec.refresh_from_db()
    assert (dec.score, dec.score_comment) == (D("0.5"), "Churn data late")


def test_score_only_when_closed(mona, active, scored_setup):
    with pytest.raises(ValidationError):
        services.key_result_score(actor=mona, key_result=scored_setup[0], score="0.5")


# --- initiatives ---------------------------------------------------------------------------------


def test_initiatives(north_objective, mona, alice, bob, charlie, active, make_kr):
    kr = make_kr(mona, north_objective, owner=alice)
    item = services.initiative_create(actor=alice, key_result=kr, data={
        "title": "Call every stalled deal", "due_date": "2026-02-01"})
    assert (item.owner, item.status, item.due_date) == (alice, "not_started", dt.date(2026, 2, 1))
    services.initiative_update(actor=alice, initiative=item, data={"status": "in_progress"})
    item.refresh_from_db()
    assert item.status == "in_progress"
    with pytest.raises(ValidationError) as excinfo:
        services.initiative_update(actor=alice, initiative=item, data={"status": "paused"})
    assert "status" in errors_of(excinfo)
    with pytest.raises(PermissionDenied):
        services.initiative_update(actor=bob, initiative=item, data={"status": "done"})
    with pytest.raises(PermissionDenied):
        services.initiative_create(actor=charlie, key_result=kr, data={"title": "x"})
    with pytest.raises(ValidationError) as excinfo:
        services.initiative_create(actor=alice, key_result=kr, data={"title": "x", "owner": bob})
    assert "owner" in errors_of(excinfo)
    by_manager = services.initiative_create(actor=mona, key_result=kr, data={"title": "Train", "owner": bob})
    # an initiative's owner may update it even when they cannot edit the key result
    services.initiative_update(actor=bob, initiative=by_manager, data={"status": "done"})
    services.initiative_delete(actor=mona, initiative=item)
    assert list(kr.initiatives.values_list("title", "status")) == [("Train", "done")]


def test_objective_archive(north_objective, mona, bob):
    with pytest.raises(PermissionDenied):
        services.objective_archive(actor=bob, objective=north_objective)
    services.objective_archive(actor=mona, objective=north_objective)
    assert Objective.objects.get(pk=north_objective.pk).archived_at is not None
    services.objective_archive(actor=mona, objective=north_objective, archived=False)
    assert Objective.objects.get(pk=north_objective.pk).archived_at is None
