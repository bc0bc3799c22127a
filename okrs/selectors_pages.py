"""Reads the OKR pages need beyond ``okrs.selectors``: the cycle a page shows, the value series of many key
results at once (one query for a whole dashboard's charts), an objective's expected mark and confidence, and
the rows of a team's export.

Nothing here writes; the visibility rules are those of ``okrs.selectors``.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.http import Http404
from django.utils import timezone

from . import progress as P
from .models import CheckIn, Cycle
from .selectors import ObjectiveState, SeriesPoint


def cycles_for_picker() -> list[Cycle]:
    """Every cycle, newest first (one query; there are a few a year)."""
    return list(Cycle.objects.order_by("-start_date", "-id"))


def default_cycle(cycles: list[Cycle], today: dt.date | None = None) -> Cycle | None:
    """The cycle a page shows without ``?cycle=``: the active cycle that contains today, else the newest
    active one, else the newest planned one, else the newest cycle."""
    today = today or timezone.localdate()
    active = [c for c in cycles if c.status == Cycle.Status.ACTIVE]
    for cycle in active:
        if cycle.start_date <= today <= cycle.end_date:
            return cycle
    if active:
        return active[0]
    planning = [c for c in cycles if c.status == Cycle.Status.PLANNING]
    if planning:
        return planning[0]
    return cycles[0] if cycles else None


def chosen_cycle(raw: str | None, cycles: list[Cycle]) -> Cycle | None:
    """The cycle of ``?cycle=<id>`` among ``cycles`` (404 for an unknown or malformed id), or the default."""
    if raw is None or raw == "":
        return default_cycle(cycles)
    raw = str(raw).strip()
    if not raw.isdigit() or len(raw) > 18:
        raise Http404("unknown cycle")
    for cycle in cycles:
        if cycle.pk == int(raw):
            return cycle
    raise Http404("unknown cycle")


def series_many(key_result_ids) -> dict[int, list[SeriesPoint]]:
    """The values over time (oldest first) of many key results: one query, whatever their number."""
    ids = list(key_result_ids)
    result: dict[int, list[SeriesPoint]] = defaultdict(list)
    if not ids:
        return result
    rows = (
        CheckIn.objects.filter(key_result_id__in=ids, value__isnull=False)
        .order_by("key_result_id", "measured_at", "id")
        .values_list("key_result_id", "measured_at", "value", "is_automatic", "confidence")
    )
    for kr_id, measured_at, value, automatic, confidence in rows:
        result[kr_id].append(SeriesPoint(measured_at, value, automatic, confidence))
    return result


def objective_expected(state: ObjectiveState) -> Decimal | None:
    """The objective's expected mark: the weighted mean of its key results' expected progress (key results
    may be due before the cycle ends); None without key results."""
    return P.objective_progress((s.key_result.weight, s.expected) for s in state.key_results)


def objective_confidence(state: ObjectiveState) -> int | None:
    """The owners' confidence on an objective: the mean of its key results' latest confidences, rounded half
    up to a whole number; None when nobody gave one yet."""
    values = [s.confidence for s in state.key_results if s.confidence is not None]
    if not values:
        return None
    return int((Decimal(sum(values)) / len(values)).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def objective_score(state: ObjectiveState) -> Decimal | None:
    """A closed cycle's objective score: the weighted mean of its key results' scores (0.0–1.0, rounded to
    four places like progress); None while none of them is scored."""
    return P.objective_progress((s.key_result.weight, s.key_result.score) for s in state.key_results
                                if s.key_result.score is not None)


def score_overridden(state) -> bool:
    """Whether a key result's score differs from the one its progress gives (an override, with its comment)."""
    kr = state.key_result
    return kr.score is not None and kr.score != P.default_score(state.progress.value)


def flatten(states: list[ObjectiveState]) -> list[ObjectiveState]:
    """The objectives of a tree, depth first (parents before their children)."""
    out = []
    for state in states:
        out.append(state)
        out.extend(flatten(state.children))
    return out

