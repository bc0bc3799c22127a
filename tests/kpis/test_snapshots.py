"""KPI snapshots: one row per KPI, period and dimension value; recomputing replaces; final and start-of-period
rows are kept; a failing KPI is recorded and does not stop the others."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis import snapshots
from kpis.models import Frequency, Kpi, KpiSnapshot
from kpis.periods import Period
from tests.factories import ContactFactory, LeadSourceFactory, TeamFactory

# Wednesday 25 November 2026, 15:00 in Istanbul: in ISO week 48 (23–29 Nov).
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
W48 = Period(Frequency.WEEKLY, dt.date(2026, 11, 23))
W47 = W48.previous()
ISTANBUL = ZoneInfo("Europe/Istanbul")


def at(day: int, hour: int = 12) -> dt.datetime:
    """A moment in November 2026, Istanbul time (UTC+3)."""
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=ISTANBUL)


@pytest.fixture
def now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


@pytest.fixture(autouse=True)
def only_our_kpis(db):
    """The built-in KPIs (installed by migration 0002) are switched off: these tests count runs exactly."""
    Kpi.objects.filter(is_builtin=True).update(is_active=False)


@pytest.fixture
def web(db):
    return LeadSourceFactory(name="Web")


@pytest.fixture
def contacts(alice, bob, charlie, web):
    """Week 48: alice 2 (North), charlie 1 (South), one nobody owns from Web. Week 47: bob 1 (North)."""
    ContactFactory(owner=alice, created_at=at(23, 9))
    ContactFactory(owner=alice, created_at=at(25, 10))
    ContactFactory(owner=charlie, created_at=at(24))
    ContactFactory(owner=None, lead_source=web, created_at=at(23, 0) + dt.timedelta(minutes=1))
    ContactFactory(owner=bob, created_at=at(22, 23))  # Sunday 23:00 Istanbul: still week 47
    ContactFactory(owner=bob, created_at=at(26))  # tomorrow, but inside week 48: "during period" counts it


def make_kpi(slug="new-contacts", formula="count(contacts)", **fields):
    fields.setdefault("name", slug)
    fields.setdefault("frequency", Frequency.WEEKLY)
    return Kpi.objects.create(slug=slug, formula=formula, **fields)


def rows(kpi, period=W48, kind=None):
    qs = KpiSnapshot.objects.filter(kpi=kpi, period_start=period.start)
    if kind is not None:
        qs = qs.filter(dimension_kind=kind)
    return {(row.dimension_kind, row.dimension_id): row.value for row in qs}


def test_a_snapshot_has_the_company_row_and_one_per_member_of_each_kind(now, contacts, north, south, alice, bob,
                                                                        charlie, web):
    kpi = make_kpi()
    result = snapshots.snapshot_kpi(kpi, W48)

    # Week 48 [Mon 23 Nov 00:00, Mon 30 Nov 00:00) Istanbul: alice 2 + charlie 1 + the Web one + bob's Thursday
    # contact (created_at is in the period even though it is "tomorrow") = 5; bob's Sunday one is week 47.
    assert (result[0].dimension_kind, result[0].dimension_id, result[0].value) == ("", 0, Decimal("5"))
    assert rows(kpi, kind="team") == {("team", north.pk): Decimal("3"), ("team", south.pk): Decimal("1")}
    assert rows(kpi, kind="owner") == {
        ("owner", alice.pk): Decimal("2"), ("owner", bob.pk): Decimal("1"), ("owner", charlie.pk): Decimal("1")}
    assert rows(kpi, kind="source") == {("source", web.pk): Decimal("1")}
    assert len(result) == len(rows(kpi)) == 7
    company = KpiSnapshot.objects.get(kpi=kpi, dimension_kind="")
    assert (company.frequency, company.period_start, company.period_end) == ("weekly", W48.start, W48.end)
    assert (company.formula_version, company.computed_at, company.is_final, company.error) == (1, NOW, False, "")
    assert company.duration_ms >= 0
    assert KpiSnapshot.objects.get(kpi=kpi, dimension_kind="team", dimension_id=north.pk).dimension_label == "North"


def test_recomputing_replaces_the_rows_and_never_duplicates(now, contacts, alice, time_machine):
    kpi = make_kpi()
    first = {(r.dimension_kind, r.dimension_id): r.pk for r in snapshots.snapshot_kpi(kpi, W48)}
    ContactFactory(owner=alice, created_at=at(24))
    Kpi.objects.filter(pk=kpi.pk).update(formula_version=2)
    kpi.refresh_from_db()
    time_machine.move_to(NOW + dt.timedelta(hours=1), tick=False)

    again = snapshots.snapshot_kpi(kpi, W48)

    assert {(r.dimension_kind, r.dimension_id): r.pk for r in again} == first  # same rows, updated in place
    assert KpiSnapshot.objects.filter(kpi=kpi).count() == 7
    company = KpiSnapshot.objects.get(kpi=kpi, dimension_kind="")
    # 5 + the new one = 6, with the new formula version and time.
    assert (company.value, company.formula_version, company.computed_at) == (
        Decimal("6"), 2, NOW + dt.timedelta(hours=1))
    assert rows(kpi)[("owner", alice.pk)] == Decimal("3")


def test_a_final_row_is_kept_unless_forced(now, contacts, bob):
    kpi = make_kpi()
    snapshots.snapshot_kpi(kpi, W47)
    company = KpiSnapshot.objects.get(kpi=kpi, period_start=W47.start, dimension_kind="")
    assert (company.value, company.is_final) == (Decimal("1"), True)  # week 47 has ended

    ContactFactory(owner=bob, created_at=at(20))  # a late import into week 47
    kept = snapshots.snapshot_kpi(kpi, W47)
    assert rows(kpi, W47)[("", 0)] == Decimal("1")
    assert [r.pk for r in kept][:1] == [company.pk]

    snapshots.snapshot_kpi(kpi, W47, force=True)
    assert rows(kpi, W47)[("", 0)] == Decimal("2")
    assert rows(kpi, W47)[("owner", bob.pk)] == Decimal("2")


def test_a_snapshot_at_start_kpi_keeps_the_value_taken_when_the_period_started(now, contacts, alice):
    kpi = make_kpi("forecast-x", snapshot_at_start=True)
    snapshots.snapshot_kpi(kpi, W48)
    ContactFactory(owner=alice, created_at=at(24))

    snapshots.snapshot_kpi(kpi, W48)
    assert rows(kpi)[("", 0)] == Decimal("5")  # not 6: the value of the first run is kept
    assert KpiSnapshot.objects.get(kpi=kpi, dimension_kind="").is_final is False

    snapshots.snapshot_kpi(kpi, W48, force=True)
    assert rows(kpi)[("", 0)] == Decimal("6")


def test_kinds_narrows_the_dimensions(now, contacts, north, south):
    kpi = make_kpi()
    assert [(r.dimension_kind, r.value) for r in snapshots.snapshot_kpi(kpi, W48, kinds=[])] == [("", Decimal("5"))]
    snapshots.snapshot_kpi(kpi, W48, kinds=["team", "pipeline"])  # contacts have no pipeline: ignored
    assert set(rows(kpi)) == {("", 0), ("team", north.pk), ("team", south.pk)}


def test_statements_do_not_grow_with_the_number_of_members(now, contacts):
    kpi = make_kpi()
    with CaptureQueriesContext(connection) as few:
        snapshots.snapshot_kpi(kpi, W48, force=True)
    for i in range(6):
        TeamFactory(name=f"Extra {i}")
    with CaptureQueriesContext(connection) as many:
        snapshots.snapshot_kpi(kpi, W48, force=True)
    assert len(many) == len(few)
    assert len(rows(kpi, kind="team")) == 8
    # One statement computes every member of a kind: the company, team, owner and source evaluations are
    # four SELECTs over contacts.
    evaluations = [q["sql"] for q in many.captured_queries if '"contacts_contact"' in q["sql"]]
    assert len(evaluations) == 4


def test_an_error_row_is_replaced_by_the_next_good_run(now, contacts):
    kpi = make_kpi()
    snapshots.record_failure(kpi, W47, "boom")
    assert KpiSnapshot.objects.get(kpi=kpi, period_start=W47.start).error == "boom"
    snapshots.snapshot_kpi(kpi, W47)
    company = KpiSnapshot.objects.get(kpi=kpi, period_start=W47.start, dimension_kind="")
    assert (company.value, company.error, company.is_final) == (Decimal("1"), "", True)


def test_a_failed_run_keeps_the_value_an_earlier_run_computed(now, contacts):
    kpi = make_kpi()
    snapshots.snapshot_kpi(kpi, W47)
    snapshots.record_failure(kpi, W47, "boom")
    company = KpiSnapshot.objects.get(kpi=kpi, period_start=W47.start, dimension_kind="")
    # The good number stays on the dashboard; the error is recorded and the next run retries (not final).
    assert (company.value, company.error, company.is_final) == (Decimal("1"), "boom", False)
    assert KpiSnapshot.objects.filter(kpi=kpi, period_start=W47.start, dimension_kind="").count() == 1


# --- run_snapshots -------------------------------------------------------------------------------


def test_run_takes_the_current_and_the_unfinished_previous_period(now, contacts):
    weekly = make_kpi("weekly-x")
    monthly = make_kpi("monthly-x", frequency=Frequency.MONTHLY)
    make_kpi("off-x", is_active=False)

    outcomes = snapshots.run_snapshots()

    assert sorted((o.kpi.slug, o.period.key, o.status) for o in outcomes) == [
        ("monthly-x", "2026-10", "computed"), ("monthly-x", "2026-11", "computed"),
        ("weekly-x", "2026-W47", "computed"), ("weekly-x", "2026-W48", "computed"),
    ]
    assert rows(weekly, W47)[("", 0)] == Decimal("1")
    # November so far: the 6 contacts (all created in November).
    assert rows(monthly, Period(Frequency.MONTHLY, dt.date(2026, 11, 1)))[("", 0)] == Decimal("6")
    assert not KpiSnapshot.objects.filter(kpi__slug="off-x").exists()

    # The next run: previous periods are final now, only the current ones are recomputed.
    assert sorted((o.kpi.slug, o.period.key) for o in snapshots.run_snapshots()) == [
        ("monthly-x", "2026-11"), ("weekly-x", "2026-W48")]
    assert KpiSnapshot.objects.filter(kpi=weekly).count() == 2 * 7


def test_a_failing_kpi_is_recorded_and_the_others_go_on(now, contacts, settings, monkeypatch):
    broken = make_kpi("broken-x", formula="count(nope)", order=1)
    slow = make_kpi("slow-x", order=2)
    good = make_kpi("good-x", order=3)
    settings.KPI_STATEMENT_TIMEOUT_MS = 50
    real_compile = snapshots._compile

    class Slow:
        dimensions, references = [], []

        def evaluate(self, period, dimension=None):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(2)")  # cancelled by the statement timeout

    monkeypatch.setattr(snapshots, "_compile", lambda kpi: Slow() if kpi.slug == "slow-x" else real_compile(kpi))

    outcomes = {(o.kpi.slug, o.period.key): o for o in snapshots.run_snapshots()}

    assert outcomes[("broken-x", "2026-W48")].status == "failed"
    assert "nope" in outcomes[("broken-x", "2026-W48")].error
    assert outcomes[("slow-x", "2026-W48")].status == "failed"
    assert "statement timeout" in outcomes[("slow-x", "2026-W48")].error
    assert outcomes[("good-x", "2026-W48")].status == "computed"
    assert rows(good)[("", 0)] == Decimal("5")
    for kpi in (broken, slow):
        for period in (W47, W48):
            row = KpiSnapshot.objects.get(kpi=kpi, period_start=period.start)
            assert (row.dimension_kind, row.value, row.is_final) == ("", None, False)
            assert row.error
    # The statement timeout did not outlive the evaluation.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "50ms"


def test_kpis_read_through_snapshot_run_after_the_kpi_they_read(now, contacts):
    reader = make_kpi("reader-x", formula="snapshot('base-x') * 2", order=1)
    make_kpi("base-x", order=2)
    outcomes = snapshots.run_snapshots()
    slugs = [o.kpi.slug for o in outcomes]
    assert slugs.index("base-x") < slugs.index("reader-x")
    # base-x for week 48 = 5 contacts; × 2 = 10.
    assert rows(reader)[("", 0)] == Decimal("10")


def test_a_run_is_skipped_while_another_one_holds_the_lock(now, contacts):
    from django.db import connections

    kpi = make_kpi()
    other = connections.create_connection("default")  # another worker's session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [snapshots.RUN_LOCK])
        assert snapshots.run_snapshots() == []
        assert not KpiSnapshot.objects.filter(kpi=kpi).exists()
    finally:
        # Unlock explicitly: a closed session's locks are released by the server a moment later.
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [snapshots.RUN_LOCK])
        other.close()
    assert len(snapshots.run_snapshots()) == 2


def test_the_hourly_task_runs_the_snapshots(now, contacts):
    from kpis.tasks import snapshot_kpis

    make_kpi()
    assert snapshot_kpis.delay().get() == {"computed": 2}  # eager in tests: week 47 and week 48


def test_every_built_in_kpi_snapshots_without_an_error(now, contacts):
    Kpi.objects.filter(is_builtin=True).update(is_active=True)
    outcomes = snapshots.run_snapshots()
    assert {o.kpi.slug for o in outcomes} == set(Kpi.objects.filter(is_builtin=True).values_list("slug", flat=True))
    assert [(o.kpi.slug, o.period.key, o.error) for o in outcomes if o.status != "computed"] == []
    slugs = [o.kpi.slug for o in outcomes]
    assert slugs.index("sales-forecast") < slugs.index("forecast-accuracy")  # read through snapshot()


# --- KPIs taken when the period starts (the forecast) ---------------------------------------------------


def test_run_computes_a_start_of_period_kpi_only_for_the_current_period_without_a_row(now, contacts, alice):
    kpi = make_kpi("forecast-x", snapshot_at_start=True)
    # First run in week 48: no row yet, so it is taken now (5 contacts); week 47 started before this run and
    # would get today's value, so it is not computed.
    assert [(o.period.key, o.status) for o in snapshots.run_snapshots()] == [("2026-W48", "computed")]
    assert rows(kpi)[("", 0)] == Decimal("5")
    assert not KpiSnapshot.objects.filter(kpi=kpi, period_start=W47.start).exists()

    ContactFactory(owner=alice, created_at=at(24))
    assert [(o.period.key, o.status) for o in snapshots.run_snapshots()] == [("2026-W48", "kept")]
    assert rows(kpi)[("", 0)] == Decimal("5")  # the value taken first stays


def test_evaluate_returns_the_snapshot_of_a_start_of_period_kpi_for_a_started_period(now, contacts, north):
    from kpis.dimensions import Dimension
    from kpis.services import evaluate

    kpi = make_kpi("forecast-x", snapshot_at_start=True)
    assert evaluate(kpi, W48) is None  # started, nothing taken: no value (not today's computation)
    assert evaluate(kpi, W47) is None
    snapshots.snapshot_kpi(kpi, W48)
    KpiSnapshot.objects.filter(kpi=kpi, period_start=W48.start, dimension_kind="").update(value=Decimal("42"))
    assert evaluate(kpi, W48) == Decimal("42")  # the stored value, not the 5 the formula gives now
    assert evaluate(kpi, W48, Dimension("team", north.pk)) == Decimal("3")  # North's stored row
    # A period that has not started is computed: week 49 has no contacts yet.
    assert evaluate(kpi, W48.next()) == Decimal("0")
    # Other KPIs are computed as before.
    assert evaluate(make_kpi(), W47) == Decimal("1")
