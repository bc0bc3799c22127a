"""Automatic check-ins from KPI snapshots (idempotent), and loading the seed's OKR templates."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from kpis.models import Kpi
from okrs import selectors, services
from okrs.models import CheckIn, KeyResult
from okrs.templates_data import TEMPLATES

from .conftest import MID, at, snapshot


@pytest.fixture
def linked(north_objective, mona, north, win_rate):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Win rate 22 → 30", "start_value": 22, "target_value": 30, "kpi": win_rate,
        "dimension_kind": "team", "dimension_id": north.pk})
    return kr


def test_a_snapshot_creates_one_automatic_check_in_and_a_rerun_updates_it(linked, active, win_rate, north, mona):
    week = dt.date(2026, 2, 9)  # Monday of week 7
    snap = snapshot(win_rate, week, 7, D("25"), kind="team", member=north.pk, computed_at=at(week, 10))
    created = services.checkins_from_snapshots([snap])
    assert len(created) == 1
    row = CheckIn.objects.get()
    assert (row.key_result, row.value, row.is_automatic, row.snapshot, row.author, row.measured_at) == (
        linked, D("25"), True, snap, None, at(week, 10))
    linked.refresh_from_db()
    assert linked.current_value == D("25")
    # the same snapshot again: nothing new
    assert services.checkins_from_snapshots([snap]) == []
    assert CheckIn.objects.count() == 1
    # a person adds confidence and a note
    services.check_in_annotate(actor=mona, check_in=row, confidence=6, note="Two renewals slipped")
    # the snapshot is recomputed later the same week: the check-in is updated, the note kept
    snap = snapshot(win_rate, week, 7, D("27"), kind="team", member=north.pk, computed_at=at(week + dt.timedelta(2)))
    assert len(services.checkins_from_snapshots([snap])) == 1
    row = CheckIn.objects.get()
    assert (row.value, row.confidence, row.note, row.author, row.measured_at) == (
        D("27"), 6, "Two renewals slipped", mona, at(dt.date(2026, 2, 11)))
    linked.refresh_from_db()
    # progress (27 − 22) ÷ (30 − 22) = 0.625
    assert linked.current_value == D("27")
    assert selectors.key_result_state(linked, now=MID).progress.value == D("0.625")


def test_the_latest_period_is_the_current_value(linked, active, win_rate, north):
    """The previous week's final row computed after the current one still counts as older (its period end)."""
    current = snapshot(win_rate, dt.date(2026, 2, 9), 7, D("26"), kind="team", member=north.pk,
                       computed_at=at(dt.date(2026, 2, 10)))
    previous = snapshot(win_rate, dt.date(2026, 2, 2), 7, D("24"), kind="team", member=north.pk,
                        computed_at=at(dt.date(2026, 2, 10), 1))
    services.checkins_from_snapshots([current, previous])
    linked.refresh_from_db()
    assert linked.current_value == D("26")
    assert [p.value for p in selectors.key_result_series(linked)] == [D("24"), D("26")]


def test_snapshots_that_do_not_apply_are_skipped(linked, active, win_rate, north, south):
    rows = [
        snapshot(win_rate, dt.date(2026, 2, 9), 7, None, kind="team", member=north.pk),  # no value
        snapshot(win_rate, dt.date(2026, 2, 16), 7, D("30"), kind="team", member=south.pk),  # another team
        snapshot(win_rate, dt.date(2026, 2, 23), 7, D("30")),  # the company row
        snapshot(win_rate, dt.date(2025, 12, 22), 7, D("30"), kind="team", member=north.pk),  # before the cycle
        snapshot(win_rate, dt.date(2026, 4, 6), 7, D("30"), kind="team", member=north.pk),  # after it
    ]
    assert services.checkins_from_snapshots(rows) == []
    # a week that straddles the cycle start overlaps it
    straddling = snapshot(win_rate, dt.date(2025, 12, 29), 7, D("23"), kind="team", member=north.pk)
    assert len(services.checkins_from_snapshots([straddling])) == 1


def test_company_key_results_take_the_company_row(sam, active, win_rate, make_objective):
    objective = make_objective(sam, active, title="Sell better", level="company")
    kr, _w = services.key_result_create(actor=sam, objective=objective, data={
        "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate})
    snap = snapshot(win_rate, dt.date(2026, 2, 9), 7, D("28"))
    services.checkins_from_snapshots([snap])
    kr.refresh_from_db()
    assert kr.current_value == D("28")


def test_cycles_in_planning_or_closed_get_no_automatic_check_ins(linked, cycle, sam, win_rate, north):
    snap = snapshot(win_rate, dt.date(2026, 2, 9), 7, D("25"), kind="team", member=north.pk)
    assert services.checkins_from_snapshots([snap]) == []
    services.cycle_activate(actor=sam, cycle=cycle)
    services.cycle_close(actor=sam, cycle=cycle)
    assert services.checkins_from_snapshots([snap]) == []


def test_real_snapshot_fills_the_key_result(linked, active, win_rate, north, alice, mona, make_deal, stages, price):
    """Done when: the win-rate key result fills itself from the next KPI snapshot (run through kpis.snapshots)."""
    from kpis import periods
    from kpis.snapshots import snapshot_kpi
    from pipeline import services as pipeline_services

    for n, won in enumerate([True, True, True, False]):
        deal = make_deal(alice, name=f"D{n}", amount=100, expected_close_date=dt.date(2026, 3, 1),
                         stage=stages["Lead"])
        if won:
            pipeline_services.deal_move(actor=mona, deal=deal, stage=stages["Won"])
        else:
            pipeline_services.deal_move(actor=mona, deal=deal, stage=stages["Lost"], lost_reason=price)
    period = periods.containing(win_rate.frequency)
    rows = snapshot_kpi(win_rate, period)
    # the cycle must cover the period for the check-in to count: move it around today
    active.start_date, active.end_date = period.first_day - dt.timedelta(days=30), period.last_day
    active.save()
    linked.due_date = active.end_date
    linked.save()
    services.checkins_from_snapshots(rows)
    linked.refresh_from_db()
    # 3 won of 4 closed = 75 %
    assert linked.current_value == D("75")


def test_the_snapshot_run_itself_checks_in(linked, active, win_rate, north, alice, mona, make_deal, stages, price):
    """snapshot_kpi writes the automatic check-in in the same transaction, with no separate call."""
    from kpis import periods
    from kpis.snapshots import snapshot_kpi
    from okrs.models import CheckIn
    from pipeline import services as pipeline_services

    period = periods.containing(win_rate.frequency)
    active.start_date, active.end_date = period.first_day - dt.timedelta(days=30), period.last_day
    active.save()
    linked.due_date = active.end_date
    linked.save()
    for n, won in enumerate([True, False]):
        deal = make_deal(alice, name=f"D{n}", amount=100, expected_close_date=dt.date(2026, 3, 1),
                         stage=stages["Lead"])
        if won:
            pipeline_services.deal_move(actor=mona, deal=deal, stage=stages["Won"])
        else:
            pipeline_services.deal_move(actor=mona, deal=deal, stage=stages["Lost"], lost_reason=price)
    snapshot_kpi(win_rate, period)
    snapshot_kpi(win_rate, period)  # a second run updates the same automatic check-in
    linked.refresh_from_db()
    # 1 won of 2 closed = 50 %
    assert linked.current_value == D("50")
    assert CheckIn.objects.filter(key_result=linked, is_automatic=True).count() == 1


# --- a key result newly linked to a KPI fills itself from the stored snapshots ---------------------------------


@pytest.fixture
def stored(win_rate, north, south):
    """Weekly win-rate snapshots already stored before a key result is linked."""
    return {
        "december": snapshot(win_rate, dt.date(2025, 12, 15), 7, D("20"), kind="team", member=north.pk),  # before Q1
        "north_1": snapshot(win_rate, dt.date(2026, 2, 2), 7, D("24"), kind="team", member=north.pk),
        "north_2": snapshot(win_rate, dt.date(2026, 2, 9), 7, D("26"), kind="team", member=north.pk),
        "south_1": snapshot(win_rate, dt.date(2026, 2, 2), 7, D("35"), kind="team", member=south.pk),
        "south_2": snapshot(win_rate, dt.date(2026, 2, 9), 7, D("33"), kind="team", member=south.pk),
        "company": snapshot(win_rate, dt.date(2026, 2, 9), 7, D("29")),
    }


def test_a_new_key_result_linked_to_a_kpi_starts_from_the_stored_snapshots(active, north_objective, mona, north,
                                                                           win_rate, stored):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate, "dimension_kind": "team",
        "dimension_id": north.pk})
    # the two north weeks inside the cycle (not December's, not south's, not the company row); latest = 26
    assert kr.current_value == D("26")
    kr.refresh_from_db()
    assert kr.current_value == D("26")
    assert list(CheckIn.objects.filter(key_result=kr).order_by("measured_at").values_list(
        "value", "is_automatic", "snapshot")) == [
        (D("24"), True, stored["north_1"].pk), (D("26"), True, stored["north_2"].pk)]
    # progress (26 − 22) ÷ (30 − 22) = 0.5
    assert selectors.key_result_state(kr, now=MID).progress.value == D("0.5")
    # the next snapshot run finds nothing new to write
    assert services.checkins_from_snapshots(list(stored.values())) == []


def test_changing_the_kpi_dimension_refills_from_the_new_one(active, north_objective, mona, north, south, win_rate,
                                                               stored):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate, "dimension_kind": "team",
        "dimension_id": north.pk})
    noted = CheckIn.objects.get(key_result=kr, snapshot=stored["north_1"])
    services.check_in_annotate(actor=mona, check_in=noted, confidence=7, note="Good start")
    services.key_result_update(actor=mona, key_result=kr, data={"dimension_id": south.pk})
    kr.refresh_from_db()
    # south's weeks: 35 then 33 → current 33; north's readings left the series (the annotated one keeps its note)
    assert kr.current_value == D("33")
    assert [p.value for p in selectors.key_result_series(kr)] == [D("35"), D("33")]
    assert list(CheckIn.objects.filter(key_result=kr, snapshot__isnull=True).values_list(
        "value", "confidence", "note")) == [(None, 7, "Good start")]
    # to the company row: 29
    services.key_result_update(actor=mona, key_result=kr, data={"dimension_kind": "", "dimension_id": 0})
    kr.refresh_from_db()
    assert (kr.current_value, [p.value for p in selectors.key_result_series(kr)]) == (D("29"), [D("29")])


def test_linking_in_planning_fills_when_the_cycle_is_activated(cycle, sam, north_objective, mona, north, win_rate,
                                                               stored):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate, "dimension_kind": "team",
        "dimension_id": north.pk})
    assert (kr.current_value, CheckIn.objects.count()) == (None, 0)  # planning: no automatic check-ins yet
    services.cycle_activate(actor=sam, cycle=cycle, now=at(dt.date(2026, 2, 16)))
    kr.refresh_from_db()
    assert (kr.current_value, CheckIn.objects.filter(key_result=kr).count()) == (D("26"), 2)


def test_a_loaded_template_fills_its_kpi_key_results_at_once(active, mona, north, win_rate, stored):
    objective, _w = services.load_template(cycle=active, team=north, template_key="sales", actor=mona, now=MID)
    kr = objective.key_results.get(kpi=win_rate)
    assert (kr.current_value, CheckIn.objects.filter(key_result=kr).count()) == (D("26"), 2)


# --- templates -----------------------------------------------------------------------------------


def test_manager_loads_the_sales_template(active, mona, north, win_rate):
    cycle_kpi = Kpi.objects.get(slug="sales-cycle-length")
    snapshot(cycle_kpi, dt.date(2025, 12, 1), 31, D("60"), kind="team", member=north.pk)
    objective, warnings = services.load_template(cycle=active, team=north, template_key="sales", actor=mona,
                                                 now=MID)
    assert (objective.title, objective.level, objective.team, objective.owner) == (
        "Speed up the sales pipeline to grow revenue", "team", north, mona)
    assert warnings == []
    rows = list(objective.key_results.order_by("order").values_list(
        "title", "kind", "start_value", "target_value", "unit", "kpi__slug", "dimension_kind", "dimension_id",
        "due_date", "owner"))
    assert rows == [
        # 60 days × (1 − 0.20) = 48 days
        ("Cut the average time to close a deal by 20 % within 3 months", "decrease", D("60"), D("48"), "number",
         "sales-cycle-length", "team", north.pk, dt.date(2026, 3, 31), mona.pk),
        ("Raise the pipeline conversion (win) rate from 22 % to 30 % by the end of the quarter", "increase",
         D("22"), D("30"), "percent", "win-rate", "team", north.pk, dt.date(2026, 3, 31), mona.pk),
        ("Grow monthly sales revenue by 15 % over the 3 months", "increase", D("0"), D("15"), "percent", None, "",
         0, dt.date(2026, 3, 31), mona.pk),
    ]


def test_without_a_kpi_value_a_relative_key_result_is_kept_by_hand(active, mona, north):
    objective, warnings = services.load_template(cycle=active, team=north, template_key="sales", actor=mona,
                                                 now=MID)
    first = objective.key_results.order_by("order").first()
    assert (first.kind, first.start_value, first.target_value, first.unit, first.kpi) == (
        "increase", D("0"), D("20"), "percent", None)
    assert warnings == ["“Cut the average time to close a deal by 20 % within 3 months” has no KPI value to start "
                        "from yet; it is kept by hand as a change from 0 to 20."]


def test_loyalty_template_nps_plus_six_points(active, sam, north):
    nps = Kpi.objects.get(slug="nps")
    snapshot(nps, dt.date(2025, 10, 1), 92, D("41.5"), kind="team", member=north.pk)
    objective, _warnings = services.load_template(cycle=active, team=north, template_key="customer-loyalty",
                                                  actor=sam, now=MID)
    rows = list(objective.key_results.order_by("order").values_list("kind", "start_value", "target_value",
                                                                     "kpi__slug"))
    assert rows == [("decrease", D("8"), D("5"), "churn-rate"), ("increase", D("0"), D("20"), None),
                    ("increase", D("41.5"), D("47.5"), "nps")]


@pytest.mark.parametrize(("key", "count", "linked", "due"), [
    ("sales", 3, {"win-rate"}, None),
    # loaded on 15 February: within 2 months = 15 February + 2 months − 1 day = 14 April, capped at 31 March
    ("marketing", 2, set(), dt.date(2026, 3, 31)),
    ("customer-service", 2, set(), dt.date(2026, 3, 14)),  # within 1 month: 15 February + 1 month − 1 day
    ("customer-loyalty", 3, {"churn-rate"}, None),
    ("after-sales", 2, set(), None),
])
def test_every_template_loads(active, sam, north, key, count, linked, due):
    objective, _warnings = services.load_template(cycle=active, team=north, template_key=key, actor=sam, now=MID)
    krs = list(objective.key_results.select_related("kpi"))
    assert len(krs) == count == len(TEMPLATES[key].key_results)
    assert {kr.kpi.slug for kr in krs if kr.kpi} == linked
    if due:
        assert due in {kr.due_date for kr in krs}


def test_reps_cannot_load_templates_and_unknown_keys_are_refused(active, alice, mona, north, south):
    with pytest.raises(PermissionDenied):
        services.load_template(cycle=active, team=north, template_key="sales", actor=alice)
    with pytest.raises(PermissionDenied):
        services.load_template(cycle=active, team=south, template_key="sales", actor=mona)
    with pytest.raises(ValidationError) as excinfo:
        services.load_template(cycle=active, team=north, template_key="sails", actor=mona)
    assert excinfo.value.message_dict == {"template": [
        "Unknown template “sails”; choose one of: sales, marketing, customer-service, customer-loyalty, "
        "after-sales."]}
    assert not KeyResult.objects.exists()


def test_within_n_months_counts_from_the_load_day_capped_at_the_cycle_end(sam, mona, north):
    """Loaded on 23 November into Q4 2025 (1 October – 31 December): "within 1 month" is due on 22 December
    (23 November + 1 month − 1 day), not on 31 October; "within 2 months" (22 January) is capped at 31 December."""
    q4 = services.cycle_create(actor=sam, data={"name": "Q4 2025", "start_date": dt.date(2025, 10, 1),
                                                 "end_date": dt.date(2025, 12, 31)})
    services.cycle_activate(actor=sam, cycle=q4, now=at(dt.date(2025, 10, 1)))
    loaded_at = at(dt.date(2025, 11, 23), 16)
    service, _w = services.load_template(cycle=q4, team=north, template_key="customer-service", actor=mona,
                                         now=loaded_at)
    assert list(service.key_results.order_by("order").values_list("due_date", flat=True)) == [
        dt.date(2025, 12, 22), dt.date(2025, 12, 31)]
    marketing, _w = services.load_template(cycle=q4, team=north, template_key="marketing", actor=mona,
                                           now=loaded_at)
    assert list(marketing.key_results.order_by("order").values_list("due_date", flat=True)) == [
        dt.date(2025, 12, 31), dt.date(2025, 12, 31)]
    # loaded late on 31 December (Istanbul): due that day, never before it
    late = services.load_template(cycle=q4, team=north, template_key="after-sales", actor=sam,
                                        now=at(dt.date(2025, 12, 31), 23))[0]
    assert set(late.key_results.values_list("due_date", flat=True)) == {dt.date(2025, 12, 31)}


def test_within_n_months_loaded_before_the_cycle_counts_from_its_first_day(cycle, mona, north):
    # Q1 2026 in planning, loaded on 10 December: within 1 month of 1 January = 31 January
    objective, _w = services.load_template(cycle=cycle, team=north, template_key="customer-service", actor=mona,
                                           now=at(dt.date(2025, 12, 10), 12))
    assert objective.key_results.order_by("order").first().due_date == dt.date(2026, 1, 31)


WIN_TITLE = "Raise the pipeline conversion (win) rate from 22 % to 30 % by the end of the quarter"


def test_an_absolute_template_key_result_starts_from_the_teams_kpi_value(active, mona, north, win_rate):
    # north's win rate is 26.4 % (latest snapshot): the key result goes 26.4 → 30, not the seed's 22 → 30
    snapshot(win_rate, dt.date(2026, 2, 2), 7, D("25"), kind="team", member=north.pk)
    snapshot(win_rate, dt.date(2026, 2, 9), 7, D("26.4"), kind="team", member=north.pk)
    objective, warnings = services.load_template(cycle=active, team=north, template_key="sales", actor=mona, now=MID)
    kr = objective.key_results.get(kpi=win_rate)
    assert (kr.title, kr.start_value, kr.target_value, kr.current_value) == (WIN_TITLE, D("26.4"), D("30"),
                                                                             D("26.4"))
    assert not any("already at" in w for w in warnings)
    # progress (26.4 − 26.4) ÷ (30 − 26.4) = 0
    assert selectors.key_result_state(kr, now=MID).progress.value == D("0")


def test_an_absolute_template_target_already_met_is_kept_with_a_warning(active, mona, north, win_rate):
    # north is at 45 %, above the 30 % target: the numbers stay 22 → 30 and the manager is told to adjust them
    snapshot(win_rate, dt.date(2026, 2, 9), 7, D("45"), kind="team", member=north.pk)
    objective, warnings = services.load_template(cycle=active, team=north, template_key="sales", actor=mona, now=MID)
    kr = objective.key_results.get(kpi=win_rate)
    assert (kr.start_value, kr.target_value, kr.current_value) == (D("22"), D("30"), D("45"))
    assert f"“{WIN_TITLE}”: {win_rate.shown_name} is already at 45, at or above the target 30: adjust it." in warnings


def test_churn_template_starts_from_the_teams_churn_or_warns_when_already_below(active, sam, mona, north, south):
    churn = Kpi.objects.get(slug="churn-rate")
    snapshot(churn, dt.date(2026, 1, 1), 31, D("6.5"), kind="team", member=north.pk)
    snapshot(churn, dt.date(2026, 1, 1), 31, D("4"), kind="team", member=south.pk)
    objective, warnings = services.load_template(cycle=active, team=north, template_key="customer-loyalty",
                                                 actor=mona, now=MID)
    kr = objective.key_results.get(kpi=churn)
    # 6.5 % → 5 %: (current − 6.5) ÷ (5 − 6.5)
    assert (kr.kind, kr.start_value, kr.target_value) == ("decrease", D("6.5"), D("5"))
    assert not any("churn" in w.lower() for w in warnings)
    objective, warnings = services.load_template(cycle=active, team=south, template_key="customer-loyalty",
                                                 actor=sam, now=MID)
    kr = objective.key_results.get(kpi=churn)
    assert (kr.start_value, kr.target_value) == (D("8"), D("5"))
    assert ("“Bring the churn rate down from 8 % to 5 % by the end of the quarter”: "
            f"{churn.shown_name} is already at 4, at or below the target 5: adjust it.") in warnings


def test_a_template_is_loaded_once_per_cycle_and_team(active, sam, mona, north, south):
    first, _w = services.load_template(cycle=active, team=north, template_key="sales", actor=mona, now=MID)
    assert first.template == "sales"
    services.objective_update(actor=mona, objective=first, data={"title": "Sell faster"})
    with pytest.raises(ValidationError) as excinfo:
        services.load_template(cycle=active, team=north, template_key="sales", actor=sam, now=MID)
    assert excinfo.value.message_dict == {"template": [
        "This template is already loaded for North in Q1 2026: “Sell faster”. Edit that objective, or archive it "
        "to load the template again."]}
    assert KeyResult.objects.count() == 3
    # another template, another team or another cycle is fine
    services.load_template(cycle=active, team=north, template_key="marketing", actor=mona, now=MID)
    services.load_template(cycle=active, team=south, template_key="sales", actor=sam, now=MID)
    q2 = services.cycle_create(actor=sam, data={"name": "Q2 2026", "start_date": dt.date(2026, 4, 1)})
    services.load_template(cycle=q2, team=north, template_key="sales", actor=mona, now=MID)
    # archiving the objective frees the template; bringing it back while another is loaded is refused
    services.objective_archive(actor=mona, objective=first)
    second, _w = services.load_template(cycle=active, team=north, template_key="sales", actor=mona, now=MID)
    with pytest.raises(ValidationError) as excinfo:
        services.objective_archive(actor=mona, objective=first, archived=False)
    assert excinfo.value.message_dict["template"][0].startswith(
        "This template is already loaded for North in Q1 2026: “Speed up the sales pipeline to grow revenue”.")
    first.refresh_from_db()
    assert first.is_archived and not second.is_archived


def test_template_units_match_their_kpis(db):
    """A template key result linked to a KPI states the KPI's unit (days → number), else loading would refuse it."""
    kpis = {k.slug: k for k in Kpi.objects.all()}
    units = {"percent": "percent", "currency": "currency", "days": "number", "number": "number"}
    linked = [(t.key, item.kpi, item.unit) for t in TEMPLATES.values() for item in t.key_results if item.kpi]
    assert linked == [("sales", "sales-cycle-length", "number"), ("sales", "win-rate", "percent"),
                      ("customer-loyalty", "churn-rate", "percent"), ("customer-loyalty", "nps", "number")]
    assert all(units[kpis[slug].unit] == unit for _key, slug, unit in linked)
