"""The OKR math (okrs.progress), case by case with hand-worked values."""

import datetime as dt
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from okrs import progress as P

IST = ZoneInfo("Europe/Istanbul")


# kind, start, target, current, expected raw, expected shown value
TO_TARGET_CASES = [
    # increase 22 → 30 (win rate): at 26, (26 − 22) ÷ (30 − 22) = 4 ÷ 8 = 0.5
    ("increase", "22", "30", "26", "0.5", "0.5"),
    # at the start: 0
    ("increase", "22", "30", "22", "0", "0"),
    # exactly on target: 1
    ("increase", "22", "30", "30", "1", "1"),
    # over-achievement 34: (34 − 22) ÷ 8 = 1.5, shown 1, raw kept
    ("increase", "22", "30", "34", "1.5", "1"),
    # going backwards 20: (20 − 22) ÷ 8 = −0.25, shown 0
    ("increase", "22", "30", "20", "-0.25", "0"),
    # a third: 0 → 3, at 1: 1 ÷ 3 = 0.33333… → 0.3333
    ("increase", "0", "3", "1", "0.3333", "0.3333"),
    # two thirds: 2 ÷ 3 = 0.66666… → 0.6667 (half up)
    ("increase", "0", "3", "2", "0.6667", "0.6667"),
    # decreasing churn 8 % → 5 %: at 6.5, (6.5 − 8) ÷ (5 − 8) = −1.5 ÷ −3 = 0.5
    ("decrease", "8", "5", "6.5", "0.5", "0.5"),
    # churn at 7: −1 ÷ −3 = 0.3333
    ("decrease", "8", "5", "7", "0.3333", "0.3333"),
    # churn down to 5: −3 ÷ −3 = 1
    ("decrease", "8", "5", "5", "1", "1"),
    # churn better than the target, 4: −4 ÷ −3 = 1.3333, shown 1
    ("decrease", "8", "5", "4", "1.3333", "1"),
    # churn worse than at the start, 9: 1 ÷ −3 = −0.3333, shown 0
    ("decrease", "8", "5", "9", "-0.3333", "0"),
    # response time 6 min → 3 min, at 4.5: −1.5 ÷ −3 = 0.5
    ("decrease", "6", "3", "4.5", "0.5", "0.5"),
    # CSAT 4.2 → 4.6, at 4.5: 0.3 ÷ 0.4 = 0.75
    ("increase", "4.2", "4.6", "4.5", "0.75", "0.75"),
    # money, 1,000,000 → 1,150,000 (+15 %), at 1,030,000: 30,000 ÷ 150,000 = 0.2
    ("increase", "1000000", "1150000", "1030000", "0.2", "0.2"),
    # negative values: −10 → 10, at 0: 10 ÷ 20 = 0.5
    ("increase", "-10", "10", "0", "0.5", "0.5"),
]


@pytest.mark.parametrize(("kind", "start", "target", "current", "raw", "value"), TO_TARGET_CASES)
def test_progress_to_target(kind, start, target, current, raw, value):
    result = P.key_result_progress(kind, start=D(start), target=D(target), current=D(current))
    assert result.raw == D(raw)
    assert result.value == D(value)
    assert result.over_achieved == (D(raw) > 1)


def test_no_reading_yet_is_zero_shown_and_no_raw():
    result = P.key_result_progress("increase", start=D("22"), target=D("30"), current=None)
    assert result == P.Progress(None, D("0"))


def test_start_equal_to_target_has_no_progress():
    with pytest.raises(ValueError):
        P.key_result_progress("increase", start=D("5"), target=D("5"), current=D("5"))
    with pytest.raises(ValueError):
        P.ratio(D("1"), D("2"), D("2"))


# kind, threshold, readings, expected share
KEEP_CASES = [
    # keep NPS ≥ 50: 60, 50 (met: equal counts), 40, 55 → 3 of 4 = 0.75
    ("keep_above", "50", ["60", "50", "40", "55"], "0.75"),
    # keep churn ≤ 5: 4, 6, 5 → 2 of 3 = 0.6667
    ("keep_below", "5", ["4", "6", "5"], "0.6667"),
    # all met
    ("keep_above", "80", ["80", "90"], "1"),
    # none met
    ("keep_below", "3", ["4", "5"], "0"),
    # an empty reading is ignored: 1 of 2 = 0.5
    ("keep_above", "10", ["11", None, "9"], "0.5"),
]


@pytest.mark.parametrize(("kind", "threshold", "readings", "share"), KEEP_CASES)
def test_keep_above_and_below(kind, threshold, readings, share):
    values = [D(r) if r is not None else None for r in readings]
    result = P.key_result_progress(kind, target=D(threshold), readings=values)
    assert result.raw == D(share)
    assert result.value == D(share)


def test_keep_key_results_are_expected_at_one_all_along():
    start, end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    mid = dt.datetime(2026, 2, 15, tzinfo=dt.UTC)  # 45 of 90 days
    assert P.key_result_expected("increase", start, end, mid) == D("0.5")
    assert P.key_result_expected("milestone", start, end, mid) == D("0.5")
    for now in (start, mid, end):
        assert P.key_result_expected("keep_above", start, end, now) == D("1")
        assert P.key_result_expected("keep_below", start, end, now) == D("1")
    # 3 of 4 readings met: pace 0.75 ÷ 1 = 0.75, at risk
    share = P.key_result_progress("keep_above", target=D("40"), readings=[D("42"), D("38"), D("45"), D("41")]).value
    assert (P.pace(share, D("1")), P.status(share, D("1"))) == (D("0.75"), "at_risk")


def test_keep_without_check_ins_has_no_reading():
    assert P.key_result_progress("keep_above", target=D("50"), readings=[]) == P.NO_READING


@pytest.mark.parametrize(("done", "value"), [(False, "0"), (True, "1")])
def test_milestone(done, value):
    assert P.key_result_progress("milestone", done=done) == P.Progress(D(value), D(value))


# (weight, progress) pairs → weighted mean
OBJECTIVE_CASES = [
    # equal weights: (0.5 + 1 + 0) ÷ 3 = 0.5
    ([("1", "0.5"), ("1", "1"), ("1", "0")], "0.5"),
    # weights 2 and 1: (2 × 0.9 + 1 × 0.3) ÷ 3 = 2.1 ÷ 3 = 0.7
    ([("2", "0.9"), ("1", "0.3")], "0.7"),
    # weights 1, 1, 1 with thirds: (0.3333 + 0.6667 + 0) ÷ 3 = 1 ÷ 3 = 0.3333
    ([("1", "0.3333"), ("1", "0.6667"), ("1", "0")], "0.3333"),
    # fractional weights 0.5 and 1.5: (0.5 × 1 + 1.5 × 0.2) ÷ 2 = 0.8 ÷ 2 = 0.4
    ([("0.5", "1"), ("1.5", "0.2")], "0.4"),
    # a single key result
    ([("3", "0.25")], "0.25"),
]


@pytest.mark.parametrize(("items", "mean"), OBJECTIVE_CASES)
def test_objective_progress_is_the_weighted_mean(items, mean):
    assert P.objective_progress([(D(w), D(p)) for w, p in items]) == D(mean)


def test_objective_without_key_results_has_no_progress():
    assert P.objective_progress([]) is None


# Q1 2026: 1 January – 31 March, 90 days, in Istanbul time.
Q1 = P.cycle_bounds(dt.date(2026, 1, 1), dt.date(2026, 3, 31), IST)


def at(day: dt.date, hour: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=IST)


def test_cycle_bounds_are_local_midnights_half_open():
    assert Q1 == (at(dt.date(2026, 1, 1)), at(dt.date(2026, 4, 1)))


EXPECTED_CASES = [
    # before the start and at the very start: nothing elapsed
    (at(dt.date(2025, 12, 20)), "0"),
    (at(dt.date(2026, 1, 1)), "0"),
    # 9 days of 90 = 0.1
    (at(dt.date(2026, 1, 10)), "0.1"),
    # 12 hours of 90 days = 0.5 ÷ 90 = 0.005555… → 0.0056
    (at(dt.date(2026, 1, 1), 12), "0.0056"),
    # 30 days of 90 = 0.3333
    (at(dt.date(2026, 1, 31)), "0.3333"),
    # 45 days of 90 = 0.5 (15 February)
    (at(dt.date(2026, 2, 15)), "0.5"),
    # the last day at noon: 89.5 ÷ 90 = 0.99444… → 0.9944
    (at(dt.date(2026, 3, 31), 12), "0.9944"),
    # at the end and after it: 1
    (at(dt.date(2026, 4, 1)), "1"),
    (at(dt.date(2026, 6, 1)), "1"),
]


@pytest.mark.parametrize(("now", "expected"), EXPECTED_CASES)
def test_expected_progress_is_the_share_of_the_cycle_elapsed(now, expected):
    assert P.expected_progress(*Q1, now) == D(expected)


@pytest.mark.parametrize(
    ("now", "grace_days", "in_grace"),
    [
        (at(dt.date(2026, 1, 1)), 7, True),
        (at(dt.date(2026, 1, 7), 23), 7, True),  # still in the 7th day
        (at(dt.date(2026, 1, 8)), 7, False),  # 7 full days have passed
        (at(dt.date(2026, 1, 1)), 0, False),  # no grace
        (at(dt.date(2026, 1, 14)), 14, True),
    ],
)
def test_grace_days(now, grace_days, in_grace):
    assert P.in_grace(Q1[0], now, grace_days) is in_grace


# progress, expected, expected pace, status with the default thresholds 0.95 / 0.75
STATUS_CASES = [
    ("0.5", "0.5", "1", P.ON_TRACK),
    # exactly 0.95: 0.475 ÷ 0.5 — on track (≥)
    ("0.475", "0.5", "0.95", P.ON_TRACK),
    # 0.4749 ÷ 0.5 = 0.9498 — at risk
    ("0.4749", "0.5", "0.9498", P.AT_RISK),
    # exactly 0.75: 0.375 ÷ 0.5 — at risk (≥)
    ("0.375", "0.5", "0.75", P.AT_RISK),
    # 0.3749 ÷ 0.5 = 0.7498 — off track
    ("0.3749", "0.5", "0.7498", P.OFF_TRACK),
    ("0", "0.5", "0", P.OFF_TRACK),
    # ahead of pace: 0.6 ÷ 0.3333 = 1.80018… → 1.8002
    ("0.6", "0.3333", "1.8002", P.ON_TRACK),
    # after the end (expected 1): the progress itself decides; 0.8 → at risk
    ("0.8", "1", "0.8", P.AT_RISK),
    ("1", "1", "1", P.ON_TRACK),
    # zero elapsed: no pace, no status
    ("0.2", "0", None, None),
]


@pytest.mark.parametrize(("progress", "expected", "pace", "status"), STATUS_CASES)
def test_pace_and_status(progress, expected, pace, status):
    assert P.pace(D(progress), D(expected)) == (D(pace) if pace is not None else None)
    assert P.status(D(progress), D(expected)) == status


def test_status_thresholds_are_configurable():
    # pace 0.4 ÷ 0.5 = 0.8: on track with 0.8 / 0.5, off track with 1.0 / 0.9
    assert P.status(D("0.4"), D("0.5"), on_track=D("0.8"), at_risk=D("0.5")) == P.ON_TRACK
    assert P.status(D("0.4"), D("0.5"), on_track=D("1.0"), at_risk=D("0.9")) == P.OFF_TRACK
    assert P.status(D("0.4"), D("0.5"), on_track=D("1.0"), at_risk=D("0.8")) == P.AT_RISK


def test_no_status_in_the_grace_days():
    assert P.status(D("0"), D("0.05"), grace=True) is None


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        ([P.ON_TRACK, P.AT_RISK, P.ON_TRACK], P.AT_RISK),
        ([P.ON_TRACK, P.OFF_TRACK, P.AT_RISK], P.OFF_TRACK),
        ([P.ON_TRACK, None], P.ON_TRACK),
        ([None, None], None),
        ([], None),
    ],
)
def test_objective_takes_the_worst_status(statuses, worst):
    assert P.worst_status(statuses) == worst


@pytest.mark.parametrize(
    ("progress", "score"),
    [("0", "0.0"), ("0.3333", "0.3"), ("0.65", "0.7"), ("0.64", "0.6"), ("0.95", "1.0"), ("1", "1.0"),
     ("1.5", "1.0"), ("-0.2", "0.0"), ("0.05", "0.1"), ("0.0499", "0.0")],
)
def test_default_score_is_the_progress_rounded_to_one_decimal(progress, score):
    assert P.default_score(D(progress)) == D(score)
    assert str(P.default_score(D(progress))) == score


def test_churn_example_end_to_end():
    """Churn 8 % → 5 % in Q1; on 15 February (half the cycle) churn is 6.8 %.

    progress = (6.8 − 8) ÷ (5 − 8) = 0.4; expected 0.5; pace 0.8 → at risk; score 0.4.
    """
    now = at(dt.date(2026, 2, 15))
    result = P.key_result_progress("decrease", start=D("8"), target=D("5"), current=D("6.8"))
    expected = P.expected_progress(*Q1, now)
    assert (result.value, expected, P.pace(result.value, expected)) == (D("0.4"), D("0.5"), D("0.8"))
    assert P.status(result.value, expected, grace=P.in_grace(Q1[0], now)) == P.AT_RISK
    assert P.default_score(result.value) == D("0.4")
