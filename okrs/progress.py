"""The OKR math, as pure functions (no database): progress, expected progress, pace, status and score.

- Key result progress ``p = (current − start) ÷ (target − start)``. The raw value is kept (over-achievement
  shows as more than 1, going backwards as less than 0); the shown value is clamped to 0–1. The same formula
  covers decreasing targets (churn 8 % → 5 %: at 6.5 % the progress is (6.5 − 8) ÷ (5 − 8) = 0.5).
  Start equal to target has no progress (ValueError here; services refuse such a key result).
- Keep above / keep below a threshold: the share of the cycle's check-ins that met the threshold.
- Milestone: 0 until done, then 1.
- Objective progress: the weighted mean of its key results' (clamped) progress.
- Expected progress ``e`` = the share of the cycle elapsed (0 before it starts, 1 after it ends) — except for
  keep above/below, where ``e = 1`` at all times: the threshold must hold all along the cycle, not by its end,
  so the pace of a keep key result is the share of its readings that met the threshold (3 of 4 → 0.75, at risk
  whatever the day). Pace ``r = p ÷ e``; on track when ``r ≥ on_track`` (0.95), at risk when ``r ≥ at_risk`` (0.75), off track
  below; no status in the first ``grace_days`` days of the cycle (or while nothing is expected yet).
- An objective takes the worst status of its key results.
- The score at close is the progress rounded to one decimal (half up): 0.65 → 0.7.

Fractions are ``Decimal`` rounded half up to four places (0.01 %); status compares the exact pace of those.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

ZERO = Decimal("0")
ONE = Decimal("1")
PLACES = Decimal("0.0001")
SCORE_PLACES = Decimal("0.1")

DEFAULT_ON_TRACK = Decimal("0.95")
DEFAULT_AT_RISK = Decimal("0.75")
DEFAULT_GRACE_DAYS = 7

# The key result kinds (the values of okrs.models.KeyResult.Kind).
INCREASE, DECREASE, KEEP_ABOVE, KEEP_BELOW, MILESTONE = "increase", "decrease", "keep_above", "keep_below", "milestone"
TO_TARGET = (INCREASE, DECREASE)
KEEP = (KEEP_ABOVE, KEEP_BELOW)

# Statuses, from best to worst.
ON_TRACK, AT_RISK, OFF_TRACK = "on_track", "at_risk", "off_track"
STATUS_ORDER = (ON_TRACK, AT_RISK, OFF_TRACK)


def _round(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_UP)


def clamp(value: Decimal, low: Decimal = ZERO, high: Decimal = ONE) -> Decimal:
    return max(low, min(high, value))


@dataclass(frozen=True)
class Progress:
    """``raw`` is None when there is no reading yet; ``value`` is what bars and means use (0–1)."""

    raw: Decimal | None
    value: Decimal

    @property
    def over_achieved(self) -> bool:
        return self.raw is not None and self.raw > ONE


NO_READING = Progress(None, ZERO)


def ratio(current: Decimal, start: Decimal, target: Decimal) -> Decimal:
    """``(current − start) ÷ (target − start)``, rounded to four places; ValueError when start equals target."""
    if target == start:
        raise ValueError("start equals target")
    return _round((Decimal(current) - Decimal(start)) / (Decimal(target) - Decimal(start)))


def met(kind: str, value: Decimal, threshold: Decimal) -> bool:
    """Whether a reading meets a keep-above (≥) or keep-below (≤) threshold."""
    if kind == KEEP_ABOVE:
        return value >= threshold
    if kind == KEEP_BELOW:
        return value <= threshold
    raise ValueError(f"{kind!r} has no threshold")


def key_result_progress(
    kind: str,
    *,
    start: Decimal | None = None,
    target: Decimal | None = None,
    current: Decimal | None = None,
    done: bool = False,
    readings: Iterable[Decimal | None] = (),
) -> Progress:
    """The progress of one key result.

    ``current`` is the latest value (increase/decrease); ``readings`` the values of the cycle's check-ins
    (keep above/below; empty values are ignored); ``done`` the milestone flag.
    """
    if kind == MILESTONE:
        return Progress(ONE, ONE) if done else Progress(ZERO, ZERO)
    if kind in KEEP:
        values = [Decimal(v) for v in readings if v is not None]
        if not values:
            return NO_READING
        share = _round(Decimal(sum(1 for v in values if met(kind, v, Decimal(target)))) / Decimal(len(values)))
        return Progress(share, share)
    if kind in TO_TARGET:
        if start is None or target is None:
            raise ValueError("a key result to a target needs a start and a target")
        if current is None:
            return NO_READING
        raw = ratio(current, start, target)
        return Progress(raw, clamp(raw))
    raise ValueError(f"unknown key result kind {kind!r}")


def objective_progress(items: Iterable[tuple[Decimal, Decimal]]) -> Decimal | None:
    """The weighted mean of ``(weight, progress)`` pairs; None without key results (or weight)."""
    items = [(Decimal(weight), Decimal(progress)) for weight, progress in items]
    total = sum((weight for weight, _progress in items), ZERO)
    if not items or total <= 0:
        return None
    return _round(sum((weight * progress for weight, progress in items), ZERO) / total)


def cycle_bounds(start_date: dt.date, end_date: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The cycle as the half-open range ``[first day 00:00, day after the last day 00:00)`` in ``tz``."""
    start = dt.datetime.combine(start_date, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(end_date + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start, end


def expected_progress(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Decimal:
    """The share of ``[start, end)`` elapsed at ``now``: 0 before the start, 1 from the end on."""
    if now <= start:
        return ZERO
    if now >= end:
        return ONE
    elapsed = Decimal(int((now - start).total_seconds()))
    total = Decimal(int((end - start).total_seconds()))
    return _round(elapsed / total)


def key_result_expected(kind: str, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Decimal:
    """The progress expected of a key result at ``now``: the share of ``[start, end)`` elapsed, except for keep
    above/below, expected at 1 all along (the threshold holds at all times, so its pace is the share of
    readings that met it)."""
    if kind in KEEP:
        return ONE
    return expected_progress(start, end, now)


def in_grace(start: dt.datetime, now: dt.datetime, grace_days: int = DEFAULT_GRACE_DAYS) -> bool:
    """Whether ``now`` falls before the end of the first ``grace_days`` days of the cycle."""
    return now < start + dt.timedelta(days=grace_days)


def pace(progress: Decimal, expected: Decimal) -> Decimal | None:
    """``progress ÷ expected`` rounded to four places; None while nothing is expected yet."""
    if expected <= 0:
        return None
    return _round(Decimal(progress) / Decimal(expected))


def status(
    progress: Decimal,
    expected: Decimal,
    *,
    on_track: Decimal = DEFAULT_ON_TRACK,
    at_risk: Decimal = DEFAULT_AT_RISK,
    grace: bool = False,
) -> str | None:
    """On track, at risk or off track by pace; None in the grace days or while nothing is expected yet."""
    if grace or expected <= 0:
        return None
    rate = Decimal(progress) / Decimal(expected)
    if rate >= on_track:
        return ON_TRACK
    if rate >= at_risk:
        return AT_RISK
    return OFF_TRACK


def worst_status(statuses: Iterable[str | None]) -> str | None:
    """The worst of the given statuses (None values are ignored; None when nothing has a status)."""
    known = [s for s in statuses if s is not None]
    if not known:
        return None
    return max(known, key=STATUS_ORDER.index)


def default_score(progress: Decimal) -> Decimal:
    """The score given at close: the (clamped) progress rounded half up to one decimal."""
    return clamp(Decimal(progress)).quantize(SCORE_PLACES, rounding=ROUND_HALF_UP)
