"""What managers and reps see of OKRs: the cycle's alignment tree, a team's dashboard (with charts, its
printable page and its CSV export), what changed since last week, the at-risk list, my key results with a
quick check-in form, and the help page that documents the math.

Thin doors over ``okrs.selectors`` (and ``okrs.selectors_pages``): every list loads in a fixed number of
queries; an unknown cycle or team is a 404, never a 500.
"""

import csv
import datetime as dt
from decimal import Decimal

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.models import Team
from accounts.views import browser_user_required

from . import progress as P
from . import selectors
from . import selectors_pages as pages
from .models import Cycle, KeyResult, Objective
from .templatetags.okrs import kr_chart, percent_number, rounded, status_label, unit_label

# Characters that make a spreadsheet read a cell as a formula (CSV injection), as in the deals export.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cycle(request) -> tuple[list[Cycle], Cycle | None]:
    cycles = pages.cycles_for_picker()
    return cycles, pages.chosen_cycle(request.GET.get("cycle"), cycles)


def _team(team_id: int) -> Team:
    return get_object_or_404(Team.objects.select_related("manager"), pk=team_id)


def _decorate(states: list[selectors.ObjectiveState], cycle: Cycle | None = None) -> list[selectors.ObjectiveState]:
    """Give every objective of a tree its expected mark and confidence (read by the templates); in a closed
    cycle also its score and its key results' (with whether a score was overridden)."""
    closed = cycle is not None and cycle.is_closed
    for state in pages.flatten(states):
        state.expected = pages.objective_expected(state)
        state.confidence = pages.objective_confidence(state)
        state.score = pages.objective_score(state) if closed else None
        for kr in state.key_results:
            kr.score_overridden = closed and pages.score_overridden(kr)
    return states


def _with_charts(states: list[selectors.ObjectiveState], cycle: Cycle, now) -> None:
    """Attach each key result's chart (one query for all the series)."""
    krs = [kr for state in states for kr in state.key_results]
    series = pages.series_many(kr.key_result.pk for kr in krs)
    for kr in krs:
        kr.chart = kr_chart(kr.key_result, cycle, series.get(kr.key_result.pk, []), now=now)


def _team_changes(cycle: Cycle, team: Team, user, now) -> selectors.Changes:
    """What changed since last week for the team's key results (the cycle's changes, narrowed to the team)."""
    changes = selectors.changes_since(cycle, user, now=now)

    def mine(state):
        return state.key_result.objective.team_id == team.pk

    changes.moved = [row for row in changes.moved if mine(row[0])]
    changes.status_changed = [row for row in changes.status_changed if mine(row[0])]
    changes.no_check_in = [state for state in changes.no_check_in if mine(state)]
    changes.new = [state for state in changes.new if mine(state)]
    return changes


# --- the alignment tree --------------------------------------------------------------------------------


@require_GET
@browser_user_required
def home(request):
    cycles, cycle = _cycle(request)
    now = timezone.now()
    context = {"cycles": cycles, "cycle": cycle, "roots": [], "teams": []}
    if cycle is not None:
        roots = _decorate(selectors.alignment_tree(cycle, request.user, now=now), cycle)
        context.update({
            "roots": roots, "teams": list(Team.objects.order_by("name")),
            "expected": P.expected_progress(*selectors.cycle_window(cycle), now),
            "in_grace": P.in_grace(selectors.cycle_window(cycle)[0], now, cycle.grace_days),
        })
    return render(request, "okrs/okr_home.html", context)


# --- a team's dashboard, its printable page and its export ---------------------------------------------


def _team_context(request, team_id: int) -> dict:
    team = _team(team_id)
    cycles, cycle = _cycle(request)
    now = timezone.now()
    context = {"team": team, "cycles": cycles, "cycle": cycle, "objectives": [], "now": now}
    if cycle is not None:
        objectives = _decorate(selectors.team_objectives(cycle, team, request.user, now=now), cycle)
        _with_charts(objectives, cycle, now)
        context.update({
            "objectives": objectives,
            "expected": P.expected_progress(*selectors.cycle_window(cycle), now),
            # a closed cycle is read by its scores: nothing changes any more, no pace, no status
            "changes": None if cycle.is_closed else _team_changes(cycle, team, request.user, now),
        })
    return context


@require_GET
@browser_user_required
def team_dashboard(request, team_id: int):
    context = _team_context(request, team_id)
    context["teams"] = list(Team.objects.order_by("name"))
    return render(request, "okrs/okr_team.html", context)


@require_GET
@browser_user_required
def team_print(request, team_id: int):
    return render(request, "okrs/okr_team_print.html", _team_context(request, team_id))


def _cell(value) -> str:
    """A text cell, defused when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _number(value) -> str:
    """A number for a spreadsheet: rounded to two decimals (as the pages), a dot as the decimal separator, no
    grouping, no trailing zeros: 15.2, 1250, 0.13."""
    return "" if value is None else f"{rounded(value):f}"


@require_GET
@browser_user_required
def team_export(request, team_id: int):
    """The team's objectives and key results with their current numbers, one row per key result (an
    objective without key results gets a row of its own). UTF-8 with a byte-order mark for Excel."""
    team = _team(team_id)
    _cycles, cycle = _cycle(request)
    now = timezone.now()
    objectives = selectors.team_objectives(cycle, team, request.user, now=now) if cycle is not None else []
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"okrs-{team.pk}-{cycle.pk if cycle else 'none'}-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([
        _("Cycle"), _("Team"), _("Objective"), _("Level"), _("Objective owner"), _("Objective progress (%)"),
        _("Objective status"), _("Key result"), _("Kind"), _("Unit"), _("Start"), _("Target"), _("Current"),
        _("Progress (%)"), _("Expected (%)"), _("Pace"), _("Status"), _("Confidence"), _("Last check-in"),
        _("Measured by"), _("Owner"), _("Weight"), _("Due date"), _("Score"), _("Objective score"),
    ])
    # A closed cycle is read by its scores: no expected mark, pace or status (they describe a cycle under way).
    live = cycle is not None and not cycle.is_closed
    levels = dict(Objective.Level.choices)
    kinds = dict(KeyResult.Kind.choices)

    def pct(value):
        # progress as the pages round it: one decimal at most (81.7)
        return "" if value is None else f"{percent_number(value):f}"

    for state in objectives:
        o = state.objective
        head = [_cell(cycle.name), _cell(team.name), _cell(o.title), str(levels[o.level]), _cell(o.owner),
                pct(state.progress), status_label(state.status) if state.status and live else ""]
        tail = ["" if live else _number(pages.objective_score(state))]
        if not state.key_results:
            writer.writerow(head + [""] * 17 + tail)
        for kr_state in state.key_results:
            kr = kr_state.key_result
            last = kr_state.last_check_in
            current = (1 if kr.milestone_done else 0) if kr.kind == P.MILESTONE else kr.current_value
            writer.writerow(head + [
                _cell(kr.title), str(kinds[kr.kind]), unit_label(kr), _number(kr.start_value),
                _number(kr.target_value), _number(current), pct(kr_state.progress.raw),
                pct(kr_state.expected) if live else "", _number(kr_state.pace) if live else "",
                status_label(kr_state.status) if kr_state.status and live else "",
                "" if kr_state.confidence is None else kr_state.confidence,
                timezone.localtime(last.measured_at).strftime("%Y-%m-%d %H:%M") if last else "",
                _cell(kr.kpi.shown_name) if kr.kpi_id else _("By hand"), _cell(kr.owner), _number(kr.weight),
                kr.due_date.isoformat(), _number(kr.score),
            ] + tail)
    return response


# --- lists ---------------------------------------------------------------------------------------------


@require_GET
@browser_user_required
def changes(request):
    """Key results that moved, changed status, or got no check-in in the last seven days (optionally one
    team's)."""
    cycles, cycle = _cycle(request)
    team = None
    raw_team = request.GET.get("team", "").strip()
    if raw_team:
        if not raw_team.isdigit() or len(raw_team) > 18:
            raise Http404("unknown team")
        team = _team(int(raw_team))
    now = timezone.now()
    context = {"cycles": cycles, "cycle": cycle, "team": team, "teams": list(Team.objects.order_by("name"))}
    if cycle is not None:
        context["changes"] = (_team_changes(cycle, team, request.user, now) if team is not None
                              else selectors.changes_since(cycle, request.user, now=now))
    return render(request, "okrs/okr_changes.html", context)


@require_GET
@browser_user_required
def at_risk(request):
    """Key results at risk or off track across the teams the viewer sees, worst first."""
    cycles, cycle = _cycle(request)
    states = selectors.at_risk(cycle, request.user, now=timezone.now()) if cycle is not None else []
    return render(request, "okrs/okr_at_risk.html", {"cycles": cycles, "cycle": cycle, "states": states})


@require_GET
@browser_user_required
def mine(request):
    """My key results in the active cycles, each with a quick check-in form."""
    states = selectors.my_key_results(request.user, now=timezone.now())
    return render(request, "okrs/okr_mine.html", {"states": states})


# --- the math, documented ------------------------------------------------------------------------------


def worked_example() -> dict:
    """The help page's example, computed with ``okrs.progress`` (the numbers the page shows are tested).

    A 90-day cycle (1 January – 31 March), read on 15 February 00:00: 45 days elapsed. The keep-above key result
    is expected at 100 % all along (``progress.key_result_expected``), so its pace is its share of met check-ins.
    """
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    now = dt.datetime(2026, 2, 15, tzinfo=dt.UTC)
    expected = P.expected_progress(start, end, now)
    win = P.key_result_progress(P.INCREASE, start=Decimal("22"), target=Decimal("30"), current=Decimal("26"))
    churn = P.key_result_progress(P.DECREASE, start=Decimal("8"), target=Decimal("5"), current=Decimal("7.4"))
    nps = P.key_result_progress(P.KEEP_ABOVE, target=Decimal("40"),
                                readings=[Decimal("42"), Decimal("38"), Decimal("45"), Decimal("41")])
    demo = P.key_result_progress(P.MILESTONE, done=False)
    over = P.key_result_progress(P.INCREASE, start=Decimal("22"), target=Decimal("30"), current=Decimal("32"))
    rows = []
    for key, title, weight, result in [
        ("win", _("Win rate from 22% to 30%, now 26%"), Decimal("2"), win),
        ("churn", _("Churn from 8% down to 5%, now 7.4%"), Decimal("1"), churn),
        ("nps", _("Keep NPS at or above 40: readings 42, 38, 45, 41"), Decimal("1"), nps),
        ("demo", _("Demo certification (milestone), not done yet"), Decimal("1"), demo),
    ]:
        kind = P.KEEP_ABOVE if key == "nps" else P.INCREASE  # keep above: expected 1 at all times
        row_expected = P.key_result_expected(kind, start, end, now)
        rows.append({"key": key, "title": title, "weight": weight, "progress": result.value,
                     "pace": P.pace(result.value, row_expected), "status": P.status(result.value, row_expected)})
    objective = P.objective_progress((row["weight"], row["progress"]) for row in rows)
    return {
        "expected": expected, "rows": rows, "objective": objective,
        "objective_status": P.worst_status(row["status"] for row in rows),
        "over_raw": over.raw, "over_value": over.value,
        "score_progress": Decimal("0.65"), "score": P.default_score(Decimal("0.65")),
        "on_track": P.DEFAULT_ON_TRACK, "at_risk": P.DEFAULT_AT_RISK, "grace_days": P.DEFAULT_GRACE_DAYS,
    }


@require_GET
@browser_user_required
def help_page(request):
    example = worked_example()
    return render(request, "okrs/okr_help.html", {"example": example})
