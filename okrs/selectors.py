"""Reads for OKR pages, the API and dashboards: who sees which objectives, computed progress and status,
the alignment tree, a team's objectives, the at-risk list, what changed since last week, my key results and
the value series of a key result.

Every list is loaded in a fixed number of queries (objectives, key results, check-ins; one more for a manager's
teams), whatever its size;
progress and status are computed in Python with ``okrs.progress``.

Visibility: everyone signed in reads company and team objectives; an individual objective is read by its
owner, the people of its team, the team's manager and admins (``accounts.selectors.team_scope``).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.selectors import team_scope
from kpis.periods import company_tz

from . import progress as P
from .models import CheckIn, Cycle, KeyResult, KeyResultChange, Objective

SINCE_DAYS = 7


# --- visibility ---------------------------------------------------------------------------------------


def objectives_visible_to(user: User) -> QuerySet:
    qs = Objective.objects.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    scope = team_scope(user)
    if scope is None:
        return qs
    return qs.filter(Q(level__in=[Objective.Level.COMPANY, Objective.Level.TEAM]) | (Q(level=Objective.Level.INDIVIDUAL)
                                                                                      & scope))


def key_results_visible_to(user: User) -> QuerySet:
    return KeyResult.objects.filter(objective__in=objectives_visible_to(user))


def check_ins_visible_to(user: User) -> QuerySet:
    return CheckIn.objects.filter(key_result__objective__in=objectives_visible_to(user))


# --- computed state -----------------------------------------------------------------------------------


def cycle_window(cycle: Cycle) -> tuple[dt.datetime, dt.datetime]:
    """The cycle as ``[first day 00:00, day after the last day 00:00)`` in the company's time zone."""
    return P.cycle_bounds(cycle.start_date, cycle.end_date, company_tz())


def key_result_window(cycle: Cycle, key_result: KeyResult) -> tuple[dt.datetime, dt.datetime]:
    """From the cycle start to the end of the key result's due date (the pace is measured against it)."""
    start, end = cycle_window(cycle)
    if key_result.due_date and cycle.start_date <= key_result.due_date:
        end = P.cycle_bounds(cycle.start_date, key_result.due_date, company_tz())[1]
    return start, end


@dataclass
class KeyResultState:
    key_result: KeyResult
    progress: P.Progress
    expected: Decimal
    pace: Decimal | None
    status: str | None
    last_check_in: CheckIn | None = None

    @property
    def confidence(self) -> int | None:
        """The owner's confidence from the last check-in, shown beside the computed status."""
        return self.last_check_in.confidence if self.last_check_in is not None else None

    @property
    def score(self) -> Decimal:
        """The score the key result would get if the cycle closed now."""
        return P.default_score(self.progress.value)


@dataclass
class ObjectiveState:
    objective: Objective
    key_results: list[KeyResultState] = field(default_factory=list)
    children: list["ObjectiveState"] = field(default_factory=list)

    @property
    def progress(self) -> Decimal | None:
        return P.objective_progress((s.key_result.weight, s.progress.value) for s in self.key_results)

    @property
    def status(self) -> str | None:
        return P.worst_status(s.status for s in self.key_results)


def evaluate_key_result(
    key_result: KeyResult, cycle: Cycle, *, readings=(), last_check_in: CheckIn | None = None,
    now: dt.datetime | None = None, current: Decimal | None = None, use_current: bool = False,
    done: bool | None = None,
) -> KeyResultState:
    """Progress, expected progress, pace and status of one key result at ``now`` (a keep above/below key
    result is expected at 100 % all along: its pace is the share of its readings that met the threshold).

    ``readings`` are the values of the cycle's check-ins (keep above/below). ``current`` replaces the stored
    current value when ``use_current``, ``done`` the milestone flag (the state at an earlier moment, for
    "what changed").
    """
    now = now or timezone.now()
    kr = key_result
    value = current if use_current else kr.current_value
    progress = P.key_result_progress(
        kr.kind, start=kr.start_value, target=kr.target_value, current=value, done=kr.milestone_done if done is None else done,
        readings=readings,
    )
    start, end = key_result_window(cycle, kr)
    expected = P.key_result_expected(kr.kind, start, end, now)
    grace = P.in_grace(cycle_window(cycle)[0], now, cycle.grace_days)
    status = None
    if cycle.status != Cycle.Status.PLANNING:
        status = P.status(progress.value, expected, on_track=cycle.on_track_threshold,
                          at_risk=cycle.at_risk_threshold, grace=grace)
    return KeyResultState(kr, progress, expected, P.pace(progress.value, expected), status, last_check_in)


def _latest_check_ins(objective_qs: QuerySet) -> dict[int, CheckIn]:
    rows = (
        CheckIn.objects.filter(key_result__objective__in=objective_qs)
        .select_related("author")
        .order_by("key_result_id", "-measured_at", "-id")
        .distinct("key_result_id")
    )
    return {row.key_result_id: row for row in rows}


def _keep_readings(objective_qs: QuerySet, *, until: dt.datetime | None = None) -> dict[int, list]:
    """Values of keep above/below key results' check-ins, per key result, with their times (one query)."""
    rows = CheckIn.objects.filter(
        key_result__objective__in=objective_qs, key_result__kind__in=P.KEEP, value__isnull=False
    )
    if until is not None:
        rows = rows.filter(measured_at__lt=until)
    readings = defaultdict(list)
    for kr_id, value, measured_at in rows.order_by("measured_at", "id").values_list(
            "key_result_id", "value", "measured_at"):
        readings[kr_id].append((measured_at, value))
    return readings


def _in_cycle(cycle: Cycle, timed_values) -> list[Decimal]:
    start, end = cycle_window(cycle)
    return [value for measured_at, value in timed_values if start <= measured_at < end]


def _objective_qs(cycle: Cycle, user: User | None) -> QuerySet:
    qs = objectives_visible_to(user) if user is not None else Objective.objects.all()
    return qs.filter(cycle=cycle, archived_at__isnull=True)


def _states(cycle: Cycle, objective_qs: QuerySet, now) -> list[ObjectiveState]:
    """Objectives of ``objective_qs`` with their evaluated key results: four queries."""
    objectives = list(objective_qs.select_related("owner", "team").order_by("order", "id"))
    key_results = list(
        KeyResult.objects.filter(objective__in=objective_qs).select_related("owner", "kpi").order_by("order", "id")
    )
    latest = _latest_check_ins(objective_qs)
    readings = _keep_readings(objective_qs)
    by_objective = {o.pk: ObjectiveState(o) for o in objectives}
    for kr in key_results:
        kr.objective = by_objective[kr.objective_id].objective
        state = evaluate_key_result(kr, cycle, readings=_in_cycle(cycle, readings.get(kr.pk, [])),
                                    last_check_in=latest.get(kr.pk), now=now)
        by_objective[kr.objective_id].key_results.append(state)
    return list(by_objective.values())


def key_result_states(cycle: Cycle, *, user: User | None = None, now=None) -> list[KeyResultState]:
    """Every key result of the cycle's (live) objectives, evaluated; ``user`` limits to what they see."""
    now = now or timezone.now()
    return [kr for o in _states(cycle, _objective_qs(cycle, user), now) for kr in o.key_results]


def alignment_tree(cycle: Cycle, user: User, *, now=None) -> list[ObjectiveState]:
    """The cycle's objectives the user sees as a tree (children under the objective they align to).

    Roots are objectives without a parent, or whose parent the user does not see. Four queries.
    """
    now = now or timezone.now()
    states = _states(cycle, _objective_qs(cycle, user), now)
    by_id = {s.objective.pk: s for s in states}
    roots = []
    level_order = {Objective.Level.COMPANY: 0, Objective.Level.TEAM: 1, Objective.Level.INDIVIDUAL: 2}
    for state in sorted(states, key=lambda s: (level_order[s.objective.level], s.objective.order, s.objective.pk)):
        parent = by_id.get(state.objective.parent_id)
        (parent.children if parent is not None else roots).append(state)
    return roots


def team_objectives(cycle: Cycle, team, user: User, *, now=None) -> list[ObjectiveState]:
    """The team's objectives (team level and its people's individual ones) with key results and their last
    check-in. Four queries."""
    now = now or timezone.now()
    qs = _objective_qs(cycle, user).filter(team=team)
    states = _states(cycle, qs, now)
    level_order = {Objective.Level.COMPANY: 0, Objective.Level.TEAM: 1, Objective.Level.INDIVIDUAL: 2}
    return sorted(states, key=lambda s: (level_order[s.objective.level], s.objective.order, s.objective.pk))


def at_risk(cycle: Cycle, user: User, *, now=None) -> list[KeyResultState]:
    """Key results at risk or off track across the teams the user sees, worst first (off track, then the
    lowest pace). Four queries."""
    now = now or timezone.now()
    states = [s for s in key_result_states(cycle, user=user, now=now) if s.status in (P.AT_RISK, P.OFF_TRACK)]
    return sorted(states, key=lambda s: (s.status != P.OFF_TRACK, s.pace if s.pace is not None else Decimal(0),
                                         s.key_result.pk))


def my_key_results(user: User, *, cycle: Cycle | None = None, now=None) -> list[KeyResultState]:
    """The key results the user owns in the given cycle (default: every active cycle), with their last
    check-in. Three queries."""
    now = now or timezone.now()
    objective_qs = Objective.objects.filter(archived_at__isnull=True, key_results__owner=user)
    objective_qs = objective_qs.filter(cycle=cycle) if cycle is not None else objective_qs.filter(
        cycle__status=Cycle.Status.ACTIVE)
    key_results = list(
        KeyResult.objects.filter(owner=user, objective__in=objective_qs)
        .select_related("objective__cycle", "objective__team", "kpi")
        .order_by("objective__cycle__start_date", "objective__order", "objective_id", "order", "id")
    )
    latest = _latest_check_ins(objective_qs.filter(key_results__owner=user))
    readings = _keep_readings(objective_qs)
    states = []
    for kr in key_results:
        kr_cycle = kr.objective.cycle
        states.append(evaluate_key_result(kr, kr_cycle, readings=_in_cycle(kr_cycle, readings.get(kr.pk, [])),
                                          last_check_in=latest.get(kr.pk), now=now))
    return states


@dataclass
class Changes:
    """What happened to the cycle's key results since a moment (a week ago by default)."""

    since: dt.datetime
    # (state now, value then, value now)
    moved: list[tuple[KeyResultState, Decimal | None, Decimal | None]] = field(default_factory=list)
    # (state now, status then, status now)
    status_changed: list[tuple[KeyResultState, str | None, str | None]] = field(default_factory=list)
    no_check_in: list[KeyResultState] = field(default_factory=list)
    # Created since then: no value or status "then" to compare with, so listed here only.
    new: list[KeyResultState] = field(default_factory=list)


def changes_since(cycle: Cycle, user: User, *, since: dt.datetime | None = None, now=None) -> Changes:
    """Key results that moved, changed status, or got no check-in since ``since`` (a week before ``now``).

    A key result moved when its value now differs from its value at ``since`` (the last check-in before
    then; a milestone done since then moved too). A key result created since then did not exist at ``since``:
    it is listed in ``new`` only (not as moved, changed or without a check-in). Three queries.
    """
    now = now or timezone.now()
    since = since or now - dt.timedelta(days=SINCE_DAYS)
    objective_qs = _objective_qs(cycle, user)
    objectives = {o.pk: o for o in objective_qs.select_related("owner", "team")}
    key_results = list(KeyResult.objects.filter(objective__in=objective_qs).select_related("owner", "kpi")
                       .order_by("objective__order", "objective_id", "order", "id"))
    check_ins = defaultdict(list)  # oldest first
    for row in CheckIn.objects.filter(key_result__objective__in=objective_qs).select_related("author").order_by(
            "measured_at", "id"):
        check_ins[row.key_result_id].append(row)
    result = Changes(since=since)
    for kr in key_results:
        kr.objective = objectives[kr.objective_id]
        rows = check_ins.get(kr.pk, [])
        before = [row for row in rows if row.measured_at < since]
        after = [row for row in rows if row.measured_at >= since]
        keep = [(row.measured_at, row.value) for row in rows if row.value is not None]
        last = rows[-1] if rows else None
        state = evaluate_key_result(kr, cycle, readings=_in_cycle(cycle, keep), last_check_in=last, now=now)
        if since <= kr.created_at <= now:
            result.new.append(state)
            continue
        old_value = next((row.value for row in reversed(before) if row.value is not None), None)
        if kr.kind == P.MILESTONE:
            then = evaluate_key_result(kr, cycle, now=since, done=old_value == 1)
            old_value = P.ONE if old_value == 1 else P.ZERO
            new_value = P.ONE if kr.milestone_done else P.ZERO
        elif kr.kind in P.KEEP:
            then = evaluate_key_result(kr, cycle, readings=_in_cycle(cycle, [(t, v) for t, v in keep if t < since]),
                                       now=since)
            new_value = keep[-1][1] if keep else None
        else:
            then = evaluate_key_result(kr, cycle, now=since, current=old_value, use_current=True)
            new_value = kr.current_value
        if any(row.value is not None for row in after) and new_value != old_value:
            result.moved.append((state, old_value, new_value))
        if then.status != state.status:
            result.status_changed.append((state, then.status, state.status))
        if not after:
            result.no_check_in.append(state)
    return result


# --- one key result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    measured_at: dt.datetime
    value: Decimal
    is_automatic: bool
    confidence: int | None


def key_result_series(key_result: KeyResult) -> list[SeriesPoint]:
    """The key result's values over time (manual and automatic check-ins), oldest first. One query."""
    rows = (
        CheckIn.objects.filter(key_result=key_result, value__isnull=False)
        .order_by("measured_at", "id")
        .values_list("measured_at", "value", "is_automatic", "confidence")
    )
    return [SeriesPoint(*row) for row in rows]


def pace_line(key_result: KeyResult, cycle: Cycle) -> list[tuple[dt.datetime, Decimal]] | None:
    """The expected-pace line for a chart: from the start value at the cycle start to the target at the end
    of the due date (None for milestones and keep above/below, which have a flat target line)."""
    if key_result.kind not in P.TO_TARGET:
        return None
    start, end = key_result_window(cycle, key_result)
    return [(start, key_result.start_value), (end, key_result.target_value)]


def key_result_history(key_result: KeyResult) -> QuerySet:
    """Changes of start, target, weight and due date, newest first, with who made them. One query."""
    return KeyResultChange.objects.filter(key_result=key_result).select_related("changed_by").order_by(
        "-changed_at", "-id")


def key_result_state(key_result: KeyResult, *, now=None) -> KeyResultState:
    """One key result evaluated (three queries: the cycle, its last check-in and the cycle's readings)."""
    cycle = Cycle.objects.get(objectives__key_results=key_result)
    rows = list(CheckIn.objects.filter(key_result=key_result).order_by("-measured_at", "-id").select_related(
        "author")[:1])
    readings = []
    if key_result.kind in P.KEEP:
        start, end = cycle_window(cycle)
        readings = list(CheckIn.objects.filter(key_result=key_result, value__isnull=False, measured_at__gte=start,
                                               measured_at__lt=end).values_list("value", flat=True))
    return evaluate_key_result(key_result, cycle, readings=readings, last_check_in=rows[0] if rows else None,
                               now=now)
