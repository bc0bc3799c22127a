"""Reads for the OKR API that ``okrs.selectors`` does not have: the computed state of one page of objectives or
key results (which may belong to different cycles), and the visible initiatives.

A page is evaluated in a fixed number of queries whatever its size: the key results of the page's objectives
(objectives only), their latest check-ins, and the values of the keep above/below key results' check-ins.
The math is ``okrs.selectors.evaluate_key_result`` (so the API shows what the pages show).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User

from . import progress as P
from .models import CheckIn, Cycle, Initiative, KeyResult, Objective
from .selectors import (
    KeyResultState,
    cycle_window,
    evaluate_key_result,
    key_results_visible_to,
)


def initiatives_visible_to(user: User) -> QuerySet:
    """Initiatives of the key results the user sees."""
    return Initiative.objects.filter(key_result__in=key_results_visible_to(user))


def _latest(key_result_ids: list[int]) -> dict[int, CheckIn]:
    if not key_result_ids:
        return {}
    rows = (
        CheckIn.objects.filter(key_result_id__in=key_result_ids)
        .order_by("key_result_id", "-measured_at", "-id")
        .distinct("key_result_id")
    )
    return {row.key_result_id: row for row in rows}


def _readings(key_results: list[KeyResult]) -> dict[int, list[tuple[dt.datetime, Decimal]]]:
    ids = [kr.pk for kr in key_results if kr.kind in P.KEEP]
    if not ids:
        return {}
    readings = defaultdict(list)
    rows = (CheckIn.objects.filter(key_result_id__in=ids, value__isnull=False).order_by("measured_at", "id")
            .values_list("key_result_id", "value", "measured_at"))
    for kr_id, value, measured_at in rows:
        readings[kr_id].append((measured_at, value))
    return readings


def _in_cycle(cycle: Cycle, timed_values) -> list[Decimal]:
    start, end = cycle_window(cycle)
    return [value for measured_at, value in timed_values if start <= measured_at < end]


def key_result_page_states(key_results: list[KeyResult], *, now=None) -> dict[int, KeyResultState]:
    """The state of each key result (``objective__cycle`` loaded), by id. Two queries at most."""
    now = now or timezone.now()
    key_results = list(key_results)
    latest = _latest([kr.pk for kr in key_results])
    readings = _readings(key_results)
    states = {}
    for kr in key_results:
        cycle = kr.objective.cycle
        states[kr.pk] = evaluate_key_result(kr, cycle, readings=_in_cycle(cycle, readings.get(kr.pk, [])),
                                            last_check_in=latest.get(kr.pk), now=now)
    return states


@dataclass
class ObjectiveSummary:
    """An objective's computed numbers: weighted progress, worst status, expected progress."""

    objective: Objective
    key_results: list[KeyResultState] = field(default_factory=list)
    now: dt.datetime | None = None

    @property
    def progress(self) -> Decimal | None:
        return P.objective_progress((s.key_result.weight, s.progress.value) for s in self.key_results)

    @property
    def status(self) -> str | None:
        return P.worst_status(s.status for s in self.key_results)

    @property
    def expected(self) -> Decimal:
        """The weighted mean of its key results' expected progress (``progress.key_result_expected``: the time
        elapsed to each one's due date, 1 all along for keep above/below), as the pages' expected mark; the
        share of the cycle elapsed when it has no key results."""
        mean = P.objective_progress((s.key_result.weight, s.expected) for s in self.key_results)
        if mean is not None:
            return mean
        start, end = cycle_window(self.objective.cycle)
        return P.expected_progress(start, end, self.now or timezone.now())


def objective_page_states(objectives: list[Objective], *, now=None) -> dict[int, ObjectiveSummary]:
    """The computed state of each objective (``cycle`` loaded), by id. Three queries at most."""
    now = now or timezone.now()
    objectives = list(objectives)
    by_id = {o.pk: ObjectiveSummary(o, now=now) for o in objectives}
    if not by_id:
        return by_id
    key_results = list(KeyResult.objects.filter(objective_id__in=list(by_id)).order_by("order", "id"))
    for kr in key_results:
        kr.objective = by_id[kr.objective_id].objective
    states = key_result_page_states(key_results, now=now)
    for kr in key_results:
        by_id[kr.objective_id].key_results.append(states[kr.pk])
    return by_id
