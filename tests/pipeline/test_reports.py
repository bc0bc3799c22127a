"""The report computations against hand-worked fixtures: forecast, weekly pipeline review, win/loss.

The builders here (``forecast_world``, ``review_world``, ``win_loss_world``) are also used by the page
and API tests, which check that both doors show exactly these numbers. Times are written in the
company time zone (Europe/Istanbul, UTC+3 all year).
"""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from pipeline import reports
from pipeline.models import LostReason, Pipeline, StageChange
from tests.factories import DealFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db

D = Decimal
FORECAST_NOW = "2026-05-14 12:00"
REVIEW_NOW = "2026-05-14 12:00"
WIN_LOSS_NOW = "2026-07-10 12:00"
DAY = 86400


def at(text: str) -> datetime:
    """``"2026-05-02 10:00"`` in the company time zone."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.get_default_timezone())


def frozen(text: str):
    return time_machine.travel(at(text), tick=False)


def deal(stage, owner, amount=None, *, currency="TRY", close=None, entered=None, closed=None, created=None, **kw):
    """A deal row with exact dates: ``entered`` (in stage since), ``closed`` (closed_at), ``close`` (expected)."""
    created_at = at(created) if created else at(entered) if entered else at("2026-01-01 09:00")
    data = {"stage": stage, "owner": owner, "amount": D(amount) if amount is not None else None,
            "currency": currency, "expected_close_date": date.fromisoformat(close) if close else None,
            "created_at": created_at, "stage_entered_at": at(entered) if entered else created_at, **kw}
    if closed:
        data["closed_at"] = at(closed)
    return DealFactory(**data)


def move(deal, to, when, *, frm=None, seconds=None, actor=None, direction=None):
    """A stage change row; ``direction`` defaults from the stages (created when there is no from-stage)."""
    if direction is None:
        if frm is None:
            direction = StageChange.Direction.CREATED
        elif to.kind in ("won", "lost"):
            direction = to.kind
        elif frm.kind != "open":
            direction = StageChange.Direction.REOPENED
        else:
            direction = StageChange.Direction.FORWARD if to.order > frm.order else StageChange.Direction.BACKWARD
    return StageChange.objects.create(
        deal=deal, from_stage=frm, from_stage_name=frm.name if frm else "", to_stage=to, to_stage_name=to.name,
        direction=direction, changed_at=at(when), actor=actor, seconds_in_from_stage=seconds)


def by_name(*users):
    """Users in the order the reports list them: by the name shown."""
    return sorted(users, key=str)


def cell(count=0, amount="0.00", weighted="0.00", other=0, won=0, won_amount="0.00", won_other=0) -> dict:
    return {"count": count, "amount": D(amount), "weighted": D(weighted), "other_currency": other,
            "won_count": won, "won_amount": D(won_amount), "won_other_currency": won_other}


# --- forecast ------------------------------------------------------------------------------------


def forecast_world(stages, alice, bob, charlie):
    """Today is 2026-05-14; the default range is 2026-05 … 2026-10.

    Probabilities: Lead 10, Qualified 30, Proposal 60, Negotiation 80.
    """
    s = stages
    # Open deals of team North (alice and bob)
    deal(s["Lead"], alice, "10000", close="2026-05-20", name="A1")         # May      w 1,000
    deal(s["Proposal"], alice, "25000", close="2026-05-31", name="A2")     # May      w 15,000
    deal(s["Negotiation"], alice, "12345.67", close="2026-07-01", name="A3")  # July w 9,876.536
    deal(s["Qualified"], alice, "5000", currency="EUR", close="2026-06-10", name="A4")  # June, other currency
    deal(s["Lead"], alice, "8000", name="A5")                              # no date  w 800
    deal(s["Qualified"], alice, "4000", close="2026-05-13", name="A6")     # overdue  w 1,200
    deal(s["Lead"], alice, None, close="2026-06-15", name="A7")            # June, no amount
    deal(s["Proposal"], alice, "3000", close="2026-12-01", name="A8")      # outside  w 1,800
    deal(s["Negotiation"], bob, "50000", close="2026-06-30", name="B1")    # June     w 40,000
    # Won deals
    deal(s["Won"], alice, "20000", closed="2026-05-02 10:00", name="W1")   # May
    # 2026-05-31 21:30 UTC is 2026-06-01 00:30 in Istanbul: a June win.
    deal(s["Won"], bob, "7500", closed="2026-06-01 00:30", name="W2")      # June
    deal(s["Won"], alice, "1000", currency="USD", closed="2026-06-05 10:00", name="W3")  # June, other currency
    deal(s["Won"], alice, "9999", closed="2026-04-30 23:00", name="W4")    # April: before the default range
    deal(s["Lost"], alice, "6000", closed="2026-05-05 10:00", name="L1", lost_reason=LostReason.objects.first())
    # team South: charlie's, hidden from North
    deal(s["Proposal"], charlie, "70000", close="2026-05-25", name="C1")
    deal(s["Won"], charlie, "30000", closed="2026-05-10 10:00", name="C2")


@pytest.fixture
def forecast_data(stages, alice, bob, charlie):
    forecast_world(stages, alice, bob, charlie)


def run_forecast(user, first="2026-05", last="2026-10", **filters):
    with frozen(FORECAST_NOW):
        return reports.forecast(user=user, first_month=date.fromisoformat(first + "-01"),
                                last_month=date.fromisoformat(last + "-01"), **filters)


# The figures team North sees (alice, bob and mona alike).
NORTH_MONTHS = {
    # May: A1 10,000 × 10% = 1,000; A2 25,000 × 60% = 15,000 → 16,000. Won W1 20,000.
    "2026-05": cell(2, "35000.00", "16000.00", won=1, won_amount="20000.00"),
    # June: A4 (EUR, left out), A7 (no amount), B1 50,000 × 80% = 40,000. Won W2 7,500 and W3 (USD, left out).
    "2026-06": cell(3, "50000.00", "40000.00", other=1, won=2, won_amount="7500.00", won_other=1),
    # July: A3 12,345.67 × 80% = 9,876.536 → 9,876.54
    "2026-07": cell(1, "12345.67", "9876.54"),
    "2026-08": cell(), "2026-09": cell(), "2026-10": cell(),
}
NORTH_OVERDUE = cell(1, "4000.00", "1200.00")     # A6 4,000 × 30%
NORTH_NO_DATE = cell(1, "8000.00", "800.00")      # A5 8,000 × 10%
NORTH_OUTSIDE = cell(1, "3000.00", "1800.00")     # A8 3,000 × 60%
# All open: 9 deals; 10,000 + 25,000 + 12,345.67 + 8,000 + 4,000 + 3,000 + 50,000 = 112,345.67;
# weighted 1,000 + 15,000 + 9,876.536 + 800 + 1,200 + 1,800 + 40,000 = 69,676.536 → 69,676.54.
# Won in May–October: W1 20,000 + W2 7,500 = 27,500 (W3 in USD left out; W4 is April).
NORTH_TOTAL = cell(9, "112345.67", "69676.54", other=1, won=3, won_amount="27500.00", won_other=1)


def test_forecast_by_month_with_overdue_no_date_and_outside_rows(forecast_data, alice):
    result = run_forecast(alice)
    assert {m["month"]: reports._cell(m) for m in result["months"]} == NORTH_MONTHS
    assert [m["month"] for m in result["months"]] == list(NORTH_MONTHS)
    assert result["overdue"] == NORTH_OVERDUE
    assert result["no_date"] == NORTH_NO_DATE
    assert result["outside"] == NORTH_OUTSIDE
    assert result["total"] == NORTH_TOTAL
    assert result["other_currency"] == {"open": 1, "won": 1}
    assert result["currency"] == "TRY"


def test_forecast_per_owner_and_per_team(forecast_data, alice, bob, north):
    result = run_forecast(alice)
    rows = {row["id"]: row for row in result["owners"]}
    alice_row, bob_row = rows[alice.pk], rows[bob.pk]
    # Owners in the order of their names, named as everywhere else.
    assert [row["name"] for row in result["owners"]] == [str(u) for u in by_name(alice, bob)]
    alice_months = {m["month"]: reports._cell(m) for m in alice_row["months"]}
    assert alice_months["2026-05"] == cell(2, "35000.00", "16000.00", won=1, won_amount="20000.00")
    # June: A4 (EUR) and A7 (no amount); won W3 in USD.
    assert alice_months["2026-06"] == cell(2, other=1, won=1, won_other=1)
    assert alice_months["2026-07"] == cell(1, "12345.67", "9876.54")
    assert alice_row["overdue"] == NORTH_OVERDUE and alice_row["no_date"] == NORTH_NO_DATE
    assert alice_row["outside"] == NORTH_OUTSIDE
    # 8 open deals; 10,000 + 25,000 + 12,345.67 + 8,000 + 4,000 + 3,000 = 62,345.67;
    # weighted 1,000 + 15,000 + 9,876.536 + 800 + 1,200 + 1,800 = 29,676.536 → 29,676.54; won W1 20,000 (+ W3 USD)
    assert alice_row["total"] == cell(8, "62345.67", "29676.54", other=1, won=2, won_amount="20000.00", won_other=1)
    bob_months = {m["month"]: reports._cell(m) for m in bob_row["months"]}
    assert bob_months["2026-06"] == cell(1, "50000.00", "40000.00", won=1, won_amount="7500.00")
    assert bob_row["total"] == cell(1, "50000.00", "40000.00", won=1, won_amount="7500.00")
    assert bob_row["overdue"] == cell()
    [team] = result["teams"]
    assert (team["id"], team["name"]) == (north.pk, "North")
    assert team["total"] == NORTH_TOTAL
    assert {m["month"]: reports._cell(m) for m in team["months"]} == NORTH_MONTHS


def test_forecast_won_months_follow_the_company_time_zone_and_the_range(forecast_data, alice):
    result = run_forecast(alice, "2026-04", "2026-05")
    months = {m["month"]: reports._cell(m) for m in result["months"]}
    # April is past: no open deal can fall in it (a past date is overdue); W4 was won on 30 April at 23:00.
    assert months["2026-04"] == cell(won=1, won_amount="9999.00")
    assert months["2026-05"] == NORTH_MONTHS["2026-05"]
    # June onwards is now outside the range: A4, A7, B1 (June), A3 (July), A8 (December).
    # 50,000 + 12,345.67 + 3,000 = 65,345.67; weighted 40,000 + 9,876.536 + 1,800 = 51,676.536
    assert result["outside"] == cell(5, "65345.67", "51676.54", other=1)
    # W1 + W4 won in April–May; W2 and W3 (June) are outside the range.
    assert result["total"] == cell(9, "112345.67", "69676.54", other=1, won=2, won_amount="29999.00")


def test_forecast_filters_by_owner_team_and_pipeline(forecast_data, alice, bob, north, south, pipe):
    assert run_forecast(alice, owner=bob)["total"] == cell(1, "50000.00", "40000.00", won=1, won_amount="7500.00")
    assert run_forecast(alice, team=north)["total"] == NORTH_TOTAL
    assert run_forecast(alice, pipeline=pipe)["total"] == NORTH_TOTAL
    other = Pipeline.objects.get(name="New business")
    empty = run_forecast(alice, pipeline=other)
    assert empty["total"] == cell() and empty["owners"] == [] and empty["teams"] == []


def test_forecast_visibility_outsider_and_manager(forecast_data, charlie, mona, sam):
    result = run_forecast(charlie)
    # Only charlie's own team: C1 70,000 × 60% = 42,000 in May; C2 won 30,000 in May.
    assert result["total"] == cell(1, "70000.00", "42000.00", won=1, won_amount="30000.00")
    assert [o["id"] for o in result["owners"]] == [charlie.pk]
    assert run_forecast(mona)["total"] == NORTH_TOTAL
    # The admin sees both teams: 112,345.67 + 70,000; 69,676.536 + 42,000; won 27,500 + 30,000.
    assert run_forecast(sam)["total"] == cell(10, "182345.67", "111676.54", other=1, won=4,
                                              won_amount="57500.00", won_other=1)


# --- weekly pipeline review ----------------------------------------------------------------------


def review_world(stages, alice, bob, charlie, mona):
    """Today is 2026-05-14 (Thursday); the default review starts on 2026-05-07 at midnight."""
    s = stages
    price = LostReason.objects.get(name="Price")
    w = {}
    w["r1"] = deal(s["Proposal"], alice, "10000", created="2026-04-01 09:00", entered="2026-05-10 11:00", name="R1")
    move(w["r1"], s["Qualified"], "2026-05-08 10:00", frm=s["Lead"], seconds=37 * DAY, actor=alice)
    move(w["r1"], s["Proposal"], "2026-05-10 11:00", frm=s["Qualified"], seconds=2 * DAY, actor=alice)
    w["r2"] = deal(s["Qualified"], bob, "5000", created="2026-04-01 09:00", entered="2026-05-09 09:00", name="R2")
    move(w["r2"], s["Qualified"], "2026-05-09 09:00", frm=s["Proposal"], seconds=5 * DAY, actor=mona)
    w["r3"] = deal(s["Won"], alice, "20000", created="2026-03-01 09:00", closed="2026-05-12 16:00", name="R3")
    move(w["r3"], s["Won"], "2026-05-12 16:00", frm=s["Negotiation"], seconds=10 * DAY, actor=alice)
    w["r4"] = deal(s["Lost"], alice, "6000", created="2026-03-01 09:00", closed="2026-05-11 09:30", name="R4",
                   lost_reason=price, lost_note="Too expensive")
    move(w["r4"], s["Lost"], "2026-05-11 09:30", frm=s["Proposal"], seconds=20 * DAY, actor=bob)
    # 23:59 on 6 May: one minute before the review starts, so left out.
    w["r5"] = deal(s["Qualified"], alice, "777", created="2026-04-01 09:00", entered="2026-05-06 23:59", name="R5")
    move(w["r5"], s["Qualified"], "2026-05-06 23:59", frm=s["Lead"], seconds=DAY, actor=alice)
    # New deals since the 7th: one in euros.
    w["n1"] = deal(s["Lead"], alice, "1500", currency="EUR", created="2026-05-13 09:00", name="N1")
    w["n2"] = deal(s["Lead"], bob, "2500", created="2026-05-07 00:00", name="N2", created_by=bob)
    # Stale now: Negotiation rots after 30 days, Lead after 90.
    w["s1"] = deal(s["Negotiation"], alice, "40000", created="2026-02-01 09:00", entered="2026-03-01 09:00",
                   name="S1")  # stale from 31 March
    w["s2"] = deal(s["Lead"], bob, "3000", created="2026-01-02 09:00", name="S2")  # stale from 2 April
    # Charlie's (South) moves and deals stay hidden from North.
    w["c1"] = deal(s["Won"], charlie, "99000", created="2026-04-01 09:00", closed="2026-05-12 10:00", name="C1")
    move(w["c1"], s["Won"], "2026-05-12 10:00", frm=s["Lead"], seconds=DAY, actor=charlie)
    w["c2"] = deal(s["Lead"], charlie, "1000", created="2026-01-01 09:00", name="C2")  # stale, hidden
    return w


@pytest.fixture
def review_data(stages, alice, bob, charlie, mona):
    return review_world(stages, alice, bob, charlie, mona)


def run_review(user, since="2026-05-07", **kwargs):
    with frozen(REVIEW_NOW):
        return reports.pipeline_review(user=user, since=date.fromisoformat(since), **kwargs)


def figures(section) -> tuple:
    return section["deals"], section["moves"], section["amount"], section["other_currency"]


def test_review_sections_count_deals_and_list_moves(review_data, alice, bob, mona):
    w = review_data
    result = run_review(alice)
    sections = result["sections"]
    # R1 moved forward twice (one deal, two moves; 10,000 counted once); R5's move was before the 7th.
    assert figures(sections["forward"]) == (1, 2, D("10000.00"), 0)
    assert [(c.deal, c.from_stage_name, c.to_stage_name, c.actor) for c in sections["forward"]["items"]] == [
        (w["r1"], "Qualified", "Proposal", alice), (w["r1"], "Lead", "Qualified", alice)]
    assert figures(sections["backward"]) == (1, 1, D("5000.00"), 0)
    assert [(c.deal, c.actor) for c in sections["backward"]["items"]] == [(w["r2"], mona)]
    assert figures(sections["won"]) == (1, 1, D("20000.00"), 0)
    assert figures(sections["lost"]) == (1, 1, D("6000.00"), 0)
    [lost] = sections["lost"]["items"]
    assert (lost.deal, lost.deal.lost_reason.name, lost.from_stage_name, lost.actor) == (w["r4"], "Price", "Proposal",
                                                                                        bob)
    assert figures(sections["reopened"]) == (0, 0, D("0.00"), 0)
    # New: N1 (EUR, left out of the sum) and N2 (created at midnight on the 7th, so included), newest first.
    assert figures(sections["new"]) == (2, None, D("2500.00"), 1)
    assert sections["new"]["items"] == [w["n1"], w["n2"]]
    # Stale now: S2 (in Lead since 2 January) before S1 (in Negotiation since 1 March): longest first.
    # 40,000 + 3,000 = 43,000.
    assert figures(sections["stale"]) == (2, None, D("43000.00"), 0)
    assert sections["stale"]["items"] == [w["s2"], w["s1"]]
    # 2 Jan 09:00 → 14 May 12:00 = 132 days and 3 hours
    assert sections["stale"]["items"][0].in_stage == timedelta(days=132, hours=3)
    assert all(s["more"] == 0 for s in sections.values())
    assert result["other_currency"] is True
    assert result["start"] == at("2026-05-07 00:00")


def test_review_since_an_earlier_day_includes_the_earlier_move(review_data, alice):
    sections = run_review(alice, since="2026-05-06")["sections"]
    # R5 (777) moved on the 6th at 23:59: now two deals moved forward; 10,000 + 777.
    assert figures(sections["forward"]) == (2, 3, D("10777.00"), 0)


def test_review_lists_are_bounded_with_and_n_more(review_data, alice):
    sections = run_review(alice, limit=1)["sections"]
    assert [c.to_stage_name for c in sections["forward"]["items"]] == ["Proposal"]
    assert sections["forward"]["more"] == 1       # two moves, one shown
    assert sections["stale"]["more"] == 1 and sections["new"]["more"] == 1
    assert sections["won"]["more"] == 0


def test_review_visibility_and_filters(review_data, charlie, mona, alice, bob):
    sections = run_review(charlie)["sections"]
    assert figures(sections["won"]) == (1, 1, D("99000.00"), 0)
    assert [c.deal.name for c in sections["won"]["items"]] == ["C1"]
    assert [d.name for d in sections["stale"]["items"]] == ["C2"]
    for key in ("forward", "backward", "lost", "new"):
        assert sections[key]["deals"] == 0 and sections[key]["items"] == []
    assert figures(run_review(mona)["sections"]["forward"]) == (1, 2, D("10000.00"), 0)
    by_bob = run_review(alice, owner=bob)["sections"]
    assert figures(by_bob["forward"]) == (0, 0, D("0.00"), 0)
    assert figures(by_bob["stale"]) == (1, None, D("3000.00"), 0)


# --- win/loss ------------------------------------------------------------------------------------


def win_loss_world(stages, alice, bob, charlie):
    """Closed deals and stage histories in Q2 2026 (1 April – 30 June); today is 2026-07-10.

    Every stage change is written with the seconds the deal spent in the stage it left, matching its
    timestamps.
    """
    s = stages
    web, referral = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Referral")
    price, competitor = LostReason.objects.get(name="Price"), LostReason.objects.get(name="Chose a competitor")
    w = {}
    w["W1"] = deal(s["Won"], alice, "20000", lead_source=web, created="2026-04-01 09:00", closed="2026-04-10 09:00")
    move(w["W1"], s["Lead"], "2026-04-01 09:00")
    move(w["W1"], s["Won"], "2026-04-10 09:00", frm=s["Lead"], seconds=9 * DAY)
    w["W2"] = deal(s["Won"], alice, "10000", lead_source=referral, created="2026-03-20 09:00",
                   closed="2026-05-02 09:00")
    move(w["W2"], s["Qualified"], "2026-03-20 09:00")
    move(w["W2"], s["Proposal"], "2026-04-15 09:00", frm=s["Qualified"], seconds=26 * DAY)
    move(w["W2"], s["Won"], "2026-05-02 09:00", frm=s["Proposal"], seconds=17 * DAY)
    # Won at 23:30 on 30 June (20:30 UTC): inside the quarter.
    w["W3"] = deal(s["Won"], bob, "5000", currency="USD", lead_source=web, created="2026-05-22 10:00",
                   closed="2026-06-30 23:30")
    move(w["W3"], s["Proposal"], "2026-05-22 10:00")
    move(w["W3"], s["Negotiation"], "2026-06-01 10:00", frm=s["Proposal"], seconds=10 * DAY)
    move(w["W3"], s["Won"], "2026-06-30 23:30", frm=s["Negotiation"], seconds=29 * DAY + 13 * 3600 + 1800)
    w["L1"] = deal(s["Lost"], alice, "8000", lead_source=web, lost_reason=price, created="2026-04-05 09:00",
                   closed="2026-04-20 09:00")
    move(w["L1"], s["Lead"], "2026-04-05 09:00")
    move(w["L1"], s["Qualified"], "2026-04-06 09:00", frm=s["Lead"], seconds=1 * DAY)
    move(w["L1"], s["Proposal"], "2026-04-08 09:00", frm=s["Qualified"], seconds=2 * DAY)
    move(w["L1"], s["Lost"], "2026-04-20 09:00", frm=s["Proposal"], seconds=12 * DAY)
    w["L2"] = deal(s["Lost"], bob, "4000", lost_reason=price, created="2026-05-01 09:00", closed="2026-05-05 09:00")
    move(w["L2"], s["Qualified"], "2026-05-01 09:00")
    move(w["L2"], s["Lost"], "2026-05-05 09:00", frm=s["Qualified"], seconds=4 * DAY)
    w["L3"] = deal(s["Lost"], alice, "2500", lead_source=referral, lost_reason=competitor,
                   created="2026-05-10 09:00", closed="2026-05-20 09:00")
    move(w["L3"], s["Proposal"], "2026-05-10 09:00")
    move(w["L3"], s["Lost"], "2026-05-20 09:00", frm=s["Proposal"], seconds=10 * DAY)
    # Lost at 00:30 on 1 July (21:30 UTC on 30 June): outside the quarter.
    w["L4"] = deal(s["Lost"], alice, "1000", lost_reason=price, created="2026-06-01 09:00", closed="2026-07-01 00:30")
    # Lost from Lead, reopened into Negotiation, lost again from Negotiation: it counts where it was lost last.
    w["L5"] = deal(s["Lost"], alice, "3000", lost_reason=competitor, created="2026-03-01 09:00",
                   closed="2026-06-01 09:00")
    move(w["L5"], s["Lead"], "2026-03-01 09:00")
    move(w["L5"], s["Lost"], "2026-04-02 09:00", frm=s["Lead"], seconds=32 * DAY)
    move(w["L5"], s["Negotiation"], "2026-05-01 09:00", frm=s["Lost"], seconds=29 * DAY)
    move(w["L5"], s["Lost"], "2026-06-01 09:00", frm=s["Negotiation"], seconds=31 * DAY)
    # Open deals
    w["O1"] = deal(s["Qualified"], alice, "9000", created="2026-04-03 09:00", entered="2026-05-03 09:00")
    move(w["O1"], s["Lead"], "2026-04-03 09:00")
    move(w["O1"], s["Qualified"], "2026-04-20 09:00", frm=s["Lead"], seconds=17 * DAY)
    move(w["O1"], s["Proposal"], "2026-05-01 09:00", frm=s["Qualified"], seconds=11 * DAY)
    move(w["O1"], s["Qualified"], "2026-05-03 09:00", frm=s["Proposal"], seconds=2 * DAY)
    w["O2"] = deal(s["Lead"], alice, "100", created="2026-05-15 09:00")
    move(w["O2"], s["Lead"], "2026-05-15 09:00")
    # Charlie's (South): hidden from North
    w["C1"] = deal(s["Won"], charlie, "50000", lead_source=web, created="2026-04-10 09:00", closed="2026-04-20 09:00")
    move(w["C1"], s["Lead"], "2026-04-10 09:00")
    move(w["C1"], s["Won"], "2026-04-20 09:00", frm=s["Lead"], seconds=10 * DAY)
    return w


@pytest.fixture
def win_loss_data(stages, alice, bob, charlie):
    return win_loss_world(stages, alice, bob, charlie)


def run_win_loss(user, first="2026-04-01", last="2026-06-30", **filters):
    with frozen(WIN_LOSS_NOW):
        return reports.win_loss(user=user, date_from=date.fromisoformat(first), date_to=date.fromisoformat(last),
                                **filters)


def wl(won=0, won_amount="0.00", won_other=0, lost=0, lost_amount="0.00", lost_other=0, rate=None) -> dict:
    return {"won_count": won, "won_amount": D(won_amount), "won_other_currency": won_other, "lost_count": lost,
            "lost_amount": D(lost_amount), "lost_other_currency": lost_other,
            "win_rate": D(rate) if rate is not None else None}


def lost_only(row) -> tuple:
    return row["name"], row["lost_count"], row["lost_amount"], row["lost_other_currency"]


def strip(row) -> dict:
    return {k: row[k] for k in reports.WIN_LOSS_FIELDS}


def test_win_loss_totals(win_loss_data, alice):
    result = run_win_loss(alice)
    # Won W1 20,000 + W2 10,000 (W3 in USD left out); lost L1 8,000 + L2 4,000 + L3 2,500 + L5 3,000 = 17,500
    # (L4 was lost on 1 July, Istanbul time). Win rate 3 ÷ (3 + 4) = 42.857… → 42.9.
    assert result["total"] == wl(3, "30000.00", 1, 4, "17500.00", 0, "42.9")
    assert result["other_currency"] == 1


def test_win_loss_breakdowns(win_loss_data, alice, bob):
    result = run_win_loss(alice)
    # Price: L1 8,000 + L2 4,000; Chose a competitor: L3 2,500 + L5 3,000
    assert [lost_only(r) for r in result["by_reason"]] == [
        ("Chose a competitor", 2, D("5500.00"), 0), ("Price", 2, D("12000.00"), 0)]
    by_source = {r["name"]: strip(r) for r in result["by_source"]}
    assert [r["name"] for r in result["by_source"]] == ["Referral", "Web", ""]
    assert by_source["Web"] == wl(2, "20000.00", 1, 1, "8000.00", 0, "66.7")       # W1, W3 (USD) ↔ L1: 2 ÷ 3
    assert by_source["Referral"] == wl(1, "10000.00", 0, 1, "2500.00", 0, "50.0")  # W2 ↔ L3
    assert by_source[""] == wl(0, "0.00", 0, 2, "7000.00", 0, "0.0")               # L2 4,000 + L5 3,000
    by_owner = {r["id"]: strip(r) for r in result["by_owner"]}
    assert by_owner[alice.pk] == wl(2, "30000.00", 0, 3, "13500.00", 0, "40.0")    # W1, W2 ↔ L1, L3, L5: 2 ÷ 5
    assert by_owner[bob.pk] == wl(1, "0.00", 1, 1, "4000.00", 0, "50.0")           # W3 (USD) ↔ L2
    assert [r["name"] for r in result["by_owner"]] == [str(u) for u in by_name(alice, bob)]
    # Lost from Proposal: L1 8,000 + L3 2,500; Qualified: L2; Negotiation: L5 (its last loss, not its first).
    assert sorted(lost_only(r) for r in result["by_lost_stage"]) == [
        ("Negotiation", 1, D("3000.00"), 0), ("Proposal", 2, D("10500.00"), 0), ("Qualified", 1, D("4000.00"), 0)]


def test_win_loss_conversion_and_time_in_stage(win_loss_data, alice, pipe):
    result = run_win_loss(alice, pipeline=pipe)
    assert result["funnel_pipeline"] == pipe
    funnel = {row["name"]: (row["entered"], row["advanced"], row["rate"]) for row in result["funnel"]}
    assert list(funnel) == ["Lead", "Qualified", "Proposal", "Negotiation", "Won"]
    # Lead: entered by W1, L1, O1, O2 (L5 entered in March); W1 → Won, L1 and O1 → Qualified. 3 ÷ 4
    assert funnel["Lead"] == (4, 3, D("75.0"))
    # Qualified: L1, L2, O1 (twice; W2 entered in March); L1 and O1 → Proposal, L2 lost. 2 ÷ 3
    assert funnel["Qualified"] == (3, 2, D("66.7"))
    # Proposal: W2, W3, L1, L3, O1; W2 → Won, W3 → Negotiation; L1, L3 lost, O1 went back. 2 ÷ 5
    assert funnel["Proposal"] == (5, 2, D("40.0"))
    # Negotiation: W3 (→ Won) and L5 (reopened into it, then lost). 1 ÷ 2
    assert funnel["Negotiation"] == (2, 1, D("50.0"))
    assert funnel["Won"] == (3, None, None)
    days = {row["name"]: (row["stays"], row["average_days"]) for row in result["funnel"]}
    # Out of Lead: W1 9, L1 1, O1 17, L5 32 days → 59 ÷ 4 = 14.75 → 14.8
    assert days["Lead"] == (4, D("14.8"))
    # Out of Qualified: W2 26, L1 2, L2 4, O1 11 → 43 ÷ 4 = 10.75 → 10.8
    assert days["Qualified"] == (4, D("10.8"))
    # Out of Proposal: W2 17, L1 12, L3 10, O1 2, W3 10 → 51 ÷ 5 = 10.2
    assert days["Proposal"] == (5, D("10.2"))
    # Out of Negotiation: W3 29 d 13 h 30 min = 2,554,200 s and L5 31 d = 2,678,400 s →
    # 2,616,300 s = 30.28… days → 30.3
    assert days["Negotiation"] == (2, D("30.3"))
    assert days["Won"] == (0, None)


def test_win_loss_funnel_defaults_to_the_default_pipeline(win_loss_data, alice):
    result = run_win_loss(alice)
    assert result["funnel_pipeline"] == Pipeline.objects.get(is_default=True)
    assert all(row["entered"] == 0 for row in result["funnel"])


def test_win_loss_visibility_and_filters(win_loss_data, charlie, mona, alice, bob, pipe):
    result = run_win_loss(charlie, pipeline=pipe)
    assert result["total"] == wl(1, "50000.00", 0, 0, "0.00", 0, "100.0")
    assert [r["id"] for r in result["by_owner"]] == [charlie.pk]
    assert result["by_reason"] == [] and result["by_lost_stage"] == []
    funnel = {row["name"]: (row["entered"], row["advanced"]) for row in result["funnel"]}
    assert funnel["Lead"] == (1, 1) and funnel["Proposal"] == (0, 0)
    assert run_win_loss(mona)["total"] == run_win_loss(alice)["total"]
    assert run_win_loss(alice, owner=bob)["total"] == wl(1, "0.00", 1, 1, "4000.00", 0, "50.0")
    # A month later: only L4 (lost 1 July 00:30 Istanbul).
    assert run_win_loss(alice, "2026-07-01", "2026-07-31")["total"] == wl(0, "0.00", 0, 1, "1000.00", 0, "0.0")
