"""OKR fixtures: a Q1 2026 cycle (1 January – 31 March, 90 days) and helpers to build objectives and key
results through the services. Times are Istanbul time (the company's)."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kpis.models import Kpi, KpiSnapshot
from okrs import services
from tests.pipeline.conftest import make_deal, pipe, price, stages  # noqa: F401

IST = ZoneInfo("Europe/Istanbul")
Q1_START, Q1_END = dt.date(2026, 1, 1), dt.date(2026, 3, 31)


def at(day: dt.date, hour: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=IST)


# 15 February 00:00: 45 of 90 days, expected progress 0.5.
MID = at(dt.date(2026, 2, 15))


@pytest.fixture(autouse=True)
def english():
    """Every OKR test starts and ends in English: a request of a Turkish reader (or a test of another app) leaves
    its language active in the thread, and numbers and labels built outside a request would follow it."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture
def cycle(sam):
    return services.cycle_create(actor=sam, data={"name": "Q1 2026", "start_date": Q1_START, "end_date": Q1_END})


@pytest.fixture
def active(cycle, sam):
    return services.cycle_activate(actor=sam, cycle=cycle, now=at(Q1_START))


@pytest.fixture
def make_objective():
    def make(actor, cycle, **data):
        data.setdefault("title", "Grow revenue")
        return services.objective_create(actor=actor, cycle=cycle, data=data)[0]

    return make


@pytest.fixture
def make_kr():
    def make(actor, objective, **data):
        data.setdefault("title", "Win rate")
        data.setdefault("kind", "increase")
        if data["kind"] in ("increase", "decrease"):
            data.setdefault("start_value", Decimal("22"))
        if data["kind"] != "milestone":
            data.setdefault("target_value", Decimal("30") if data["kind"] != "decrease" else Decimal("5"))
        return services.key_result_create(actor=actor, objective=objective, data=data)[0]

    return make


@pytest.fixture
def north_objective(cycle, mona, north, make_objective):
    """A team objective of North owned by its manager."""
    return make_objective(mona, cycle, level="team", team=north)


@pytest.fixture
def win_rate(db):
    return Kpi.objects.get(slug="win-rate")


def snapshot(kpi, first_day: dt.date, days: int, value, *, kind="", member=0, computed_at=None):
    """A snapshot row written directly (what kpis.snapshots upserts)."""
    start, end = at(first_day), at(first_day + dt.timedelta(days=days))
    row, _created = KpiSnapshot.objects.update_or_create(
        kpi=kpi, period_start=start, dimension_kind=kind, dimension_id=member,
        defaults={"frequency": kpi.frequency, "period_end": end, "value": value,
                  "formula_version": kpi.formula_version, "computed_at": computed_at or end},
    )
    return row
