"""Compiling and evaluating formulas against hand-worked data (January 2026, company time Europe/Istanbul).

Every expected value has its arithmetic in a comment. ``now`` is after the period, so as_of = the end.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from contacts.models import CustomFieldDefinition, FieldSetting, LifecycleChange
from crm_okr.models import FieldChange
from kpis.dimensions import Dimension
from kpis.formula import FormulaError, compile_formula
from kpis.models import ExchangeRate, ExternalMetric, Kpi, KpiSnapshot, MetricValue, SurveyResponse
from kpis.periods import Period
from pipeline.models import StageChange
from tests.factories import ActivityFactory, ContactFactory, DealFactory, LeadSourceFactory

IST = ZoneInfo("Europe/Istanbul")
JAN = Period("monthly", dt.date(2026, 1, 1))
DEC = Period("monthly", dt.date(2025, 12, 1))


def at(month, day, hour=12, year=2026):
    return dt.datetime(year, month, day, hour, tzinfo=IST)


def value(text, period=JAN, dimension=None):
    return compile_formula(text).evaluate(period, dimension)


@pytest.fixture
def deals(stages, alice, bob, charlie):
    """d1 alice won 1000 TRY created 10 Dec closed 5 Jan (26 days); d2 bob won 500 created 2 Jan closed 12 Jan (10);
    d3 charlie lost 300 created 3 Jan closed 20 Jan; d4 alice open (Lead) 200 created 15 Jan;
    d5 charlie won 100 USD created 4 Jan closed 25 Jan (21 days; USD rate 30 → 3000 TRY);
    d6 bob won 50 EUR created 6 Jan closed 8 Jan (2 days; no EUR rate → left out of sums);
    d7 alice won 700 created 20 Jan closed 3 Feb (open at the end of January);
    d8 bob open (Negotiation) 400 created 1 Nov 2025."""
    ExchangeRate.objects.create(currency="USD", rate=Decimal("30"), valid_from=dt.date(2025, 12, 1))
    ExchangeRate.objects.create(currency="USD", rate=Decimal("40"), valid_from=dt.date(2026, 2, 1))

    def deal(name, owner, stage, amount, created, closed=None, currency="TRY"):
        return DealFactory(name=name, owner=owner, stage=stages[stage], amount=Decimal(amount), currency=currency,
                           created_at=created, stage_entered_at=closed or created, closed_at=closed)

    return {
        "d1": deal("d1", alice, "Won", 1000, at(12, 10, year=2025), at(1, 5)),
        "d2": deal("d2", bob, "Won", 500, at(1, 2), at(1, 12)),
        "d3": deal("d3", charlie, "Lost", 300, at(1, 3), at(1, 20)),
        "d4": deal("d4", alice, "Lead", 200, at(1, 15)),
        "d5": deal("d5", charlie, "Won", 100, at(1, 4), at(1, 25), currency="USD"),
        "d6": deal("d6", bob, "Won", 50, at(1, 6), at(1, 8), currency="EUR"),
        "d7": deal("d7", alice, "Won", 700, at(1, 20), at(2, 3)),
        "d8": deal("d8", bob, "Negotiation", 400, at(11, 1, year=2025)),
    }


WIN_RATE = ("count(deals where status = 'won' by closed_at) * 100 / "
            "count(deals where status in ('won', 'lost') by closed_at)")


class TestDeals:
    def test_count_during_period(self, deals):
        # created in January: d2 d3 d4 d5 d6 d7
        assert value("count(deals)") == 6

    def test_win_rate(self, deals):
        # won by closed_at in January: d1 d2 d5 d6 = 4; lost: d3 → 4 * 100 / 5 = 80
        assert value(WIN_RATE) == 80

    def test_win_rate_per_team_and_members(self, deals, north, south):
        compiled = compile_formula(WIN_RATE)
        # north: won d1 d2 d6, lost none → 100; south: won d5, lost d3 → 1 * 100 / 2 = 50
        assert compiled.evaluate(JAN, Dimension("team", north.id)) == 100
        assert compiled.evaluate(JAN, Dimension("team", south.id)) == 50
        assert compiled.evaluate_members(JAN, "team") == {north.id: 100, south.id: 50}

    def test_members_match_evaluate_for_each_member(self, deals, alice, bob, charlie, mona):
        compiled = compile_formula("count(deals) * 100 / count(deals during all time) + sum(deals.amount)")
        members = compiled.evaluate_members(JAN, "owner")
        assert set(members) == {alice.id, bob.id, charlie.id, mona.id}
        for user_id, member_value in members.items():
            assert member_value == compiled.evaluate(JAN, Dimension("owner", user_id))
        # alice: created in Jan d4 d7 = 2, all time d1 d4 d7 = 3 → 66.66…; + amounts 200 + 700 = 900
        assert members[alice.id].quantize(Decimal("0.01")) == Decimal("966.67")
        # mona owns nothing: 0 * 100 / NULLIF(0, 0) → no value
        assert members[mona.id] is None

    def test_division_by_zero_is_no_value(self, deals):
        # nothing closed in December
        assert value(WIN_RATE, DEC) is None
        assert value("1 / 0") is None
        assert value("count(deals) / (count(deals) - 6)") is None  # 6 / 0

    def test_average_deal_value_with_currency_conversion(self, deals):
        # won in January: d1 1000 + d2 500 + d5 100 USD × 30 = 3000 + d6 EUR left out = 4500; 4 deals → 1125
        text = ("sum(deals.amount where status = 'won' by closed_at) / "
                "count(deals where status = 'won' by closed_at)")
        assert value("sum(deals.amount where status = 'won' by closed_at)") == 4500
        assert value(text) == 1125
        compiled = compile_formula(text)
        assert compiled.unconverted_currencies(JAN) == ["EUR"]
        # February uses the 40 rate: d7 700 (closed 3 Feb) only TRY → 700
        assert value("sum(deals.amount where status = 'won' by closed_at)", Period("monthly", dt.date(2026, 2, 1))) \
            == 700

    def test_currency_rate_of_the_period(self, deals):
        # March: d5 is USD, rate on 31 Mar is 40 → sum over all time of d5 alone = 4000
        march = Period("monthly", dt.date(2026, 3, 1))
        assert value("sum(deals.amount where currency = 'USD' during all time)", march) == 4000

    def test_sales_cycle_length(self, deals):
        # (26 + 10 + 21 + 2) / 4 = 14.75 days
        assert value("avg(deals.cycle_days where status = 'won' by closed_at)") == Decimal("14.75")

    def test_pipeline_value_at_period_end(self, deals):
        # open at 1 Feb 00:00: d4 200, d7 700 (closed 3 Feb), d8 400 = 1300
        assert value("sum(deals.amount where status = 'open' at period end)") == 1300

    def test_state_at_period_start(self, deals):
        # created before 1 Jan and open then: d1 (closed 5 Jan) and d8 → 2
        assert value("count(deals where status = 'open' at period start)") == 2
        # currently: only d4 d8 are open (and created in January: d4)
        assert value("count(deals where status = 'open')") == 1

    def test_windows(self, deals):
        assert value("count(deals during previous period)") == 1  # d1 (10 Dec)
        assert value("count(deals during all time)") == 8
        # [2 Jan 00:00, 1 Feb): d2 (2 Jan 12:00) … d7 → 6; [3 Jan, 1 Feb): d3 d4 d5 d6 d7 → 5
        assert value("count(deals during last 30 days)") == 6
        assert value("count(deals during last 29 days)") == 5
        assert value("count(deals by closed_at)") == 5  # d1 d2 d3 d5 d6

    def test_min_max_latest_count_distinct(self, deals):
        # TRY/USD amounts created in January: d2 500, d3 300, d4 200, d5 3000, d7 700 (d6 EUR → NULL)
        assert value("min(deals.amount)") == 200
        assert value("max(deals.amount)") == 3000
        # latest created in January: d7 (20 Jan) → 700
        assert value("latest(deals.amount)") == 700
        # distinct owners of deals created in January: alice bob charlie
        assert value("count_distinct(deals.owner)") == 3
        assert value("avg(deals.amount where status = 'open' and amount > 1000)") is None

    def test_conditions(self, deals, stages):
        assert value("count(deals where owner = 'alice')") == 2  # d4 d7
        assert value("count(deals where owner != 'alice')") == 4
        assert value("count(deals where stage = 'Won' or stage = 'Lost')") == 5  # d2 d3 d5 d6 d7
        assert value("count(deals where not (status = 'won'))") == 2  # d3 d4 (d7 is won now)
        assert value("count(deals where lost_reason is empty)") == 6
        assert value("count(deals where amount >= 500 and currency = 'TRY')") == 2  # d2 d7
        assert value("count(deals where expected_close_date is not empty)") == 0
        assert value("count(deals where created_at < '2026-01-10')") == 4  # d2 d3 d5 d6
        assert value("count(deals where status not in ('won'))") == 2

    def test_has(self, deals, alice):
        ActivityFactory(deal=deals["d4"], contact=None, owner=alice, occurred_at=at(1, 28))
        ActivityFactory(deal=deals["d2"], contact=None, owner=alice, occurred_at=at(12, 1, year=2025))
        assert value("count(deals where has activities)") == 2
        assert value("count(deals where has activities during period)") == 1
        assert value("count(deals where not has activities during last 7 days)") == 5

    def test_arithmetic_is_numeric(self, deals):
        assert value("count(deals) / 4") == Decimal("1.5")  # 6 / 4, never integer division
        assert value("-count(deals) + 2 * 3") == 0
        assert value("(1 + 2) * 3 - 4 / 8") == Decimal("8.5")


class TestOneStatement:
    def test_evaluate_is_one_query(self, deals, north, django_assert_num_queries):
        compiled = compile_formula(WIN_RATE + " + count(contacts) + sum(deals.amount at period end)")
        with django_assert_num_queries(1):
            compiled.evaluate(JAN)
        with django_assert_num_queries(1):
            compiled.evaluate(JAN, Dimension("team", north.id))
        with django_assert_num_queries(1):
            compiled.evaluate_members(JAN, "owner")

    def test_one_scan_per_source(self, deals, django_assert_num_queries):
        compiled = compile_formula(WIN_RATE)
        with django_assert_num_queries(1) as captured:
            compiled.evaluate(JAN)
        sql = captured.captured_queries[0]["sql"]
        assert sql.count('FROM "pipeline_deal"') == 1
        assert "FILTER (WHERE" in sql
        # the shared window is factored out, and status = 'won' implies status in ('won', 'lost'): no OR
        assert " OR " not in sql

    def test_different_ranges_of_one_source_are_separate_scans(self, deals, north, django_assert_num_queries):
        # Open at the end (by created_at) and won in the period (by closed_at) share no index range: one scan under
        # "created_at < E AND … OR closed_at in [S, E) AND …" would read every deal. Two subqueries instead.
        compiled = compile_formula("count(deals where status = 'open' at period end) * "
                                   "count(deals where status = 'won' by closed_at)")
        with django_assert_num_queries(1) as captured:
            # open at the end of January: d4, d7 (closed 3 Feb), d8 = 3; won in January: d1 d2 d5 d6 = 4 → 12
            assert compiled.evaluate(JAN) == 12
        sql = captured.captured_queries[0]["sql"]
        assert sql.count('FROM "pipeline_deal"') == 2 and " OR " not in sql
        members = compiled.evaluate_members(JAN, "owner")
        for owner_id, member_value in members.items():
            assert compiled.evaluate(JAN, Dimension("owner", owner_id)) == member_value

    def test_pipeline_velocity_keeps_each_inlined_kpi_in_one_scan(self, deals, django_assert_num_queries):
        # the built-in formulas (data migration): count open at the end × average-deal-value × win-rate / 100 /
        # sales-cycle-length
        compiled = compile_formula(Kpi.objects.get(slug="pipeline-velocity").formula)
        with django_assert_num_queries(1) as captured:
            result = compiled.evaluate(JAN)
        # open at the end: 3; average deal value (1000 + 500 + 3000) / 4 won = 1125 (d6's EUR left out of the sum);
        # win rate 4 × 100 / 5 = 80; cycle (26 + 10 + 21 + 2) / 4 = 14.75 days → 3 × 1125 × 80 / 100 / 14.75
        assert result.quantize(Decimal("0.0001")) == (Decimal(3 * 1125 * 80) / 100 / Decimal("14.75")).quantize(
            Decimal("0.0001"))
        sql = captured.captured_queries[0]["sql"]
        # one scan for the open deals, one per inlined KPI (the win rate's two counts share theirs)
        assert sql.count('FROM "pipeline_deal"') == 4
        assert " OR " not in sql

    def test_shared_conditions_need_no_filter(self, deals, django_assert_num_queries):
        compiled = compile_formula("(count(deals where currency = 'TRY' and amount >= 500) - "
                                   "count(deals where currency = 'TRY' and amount < 300)) * 100 / "
                                   "count(deals where currency = 'TRY')")
        with django_assert_num_queries(1) as captured:
            # TRY deals created in January: d2 500, d3 300, d4 200, d7 700 → (2 − 1) × 100 / 4 = 25
            assert compiled.evaluate(JAN) == 25
        sql = captured.captured_queries[0]["sql"]
        assert sql.count("FILTER (WHERE") == 2 and " OR " not in sql

    def test_kpi_and_snapshot_references_are_resolved_in_compile(self, deals, django_assert_num_queries):
        won = Kpi.objects.create(slug="won", name="Won", formula="count(deals where status = 'won' by closed_at)")
        KpiSnapshot.objects.create(kpi=won, frequency="monthly", period_start=JAN.start, period_end=JAN.end,
                                   value=Decimal("8"), formula_version=1)
        compiled = compile_formula("kpi('won') * 10 + snapshot('won')")
        assert compiled.references == ["won"]
        assert compiled.snapshot_references == ["won"]
        with django_assert_num_queries(1):
            # 4 won × 10 + the stored 8
            assert compiled.evaluate(JAN) == 48


class TestContacts:
    @pytest.fixture
    def lifecycle(self, alice, charlie):
        """Before January: a (customer since 1 Dec, churned 15 Jan), b (customer since 20 Dec),
        c (a lead that became a customer on 10 Jan). In January: e, f, g (alice) and h (charlie)."""

        def contact(created, stage, changed, owner=alice, **kwargs):
            return ContactFactory(created_at=created, lifecycle_stage=stage, lifecycle_changed_at=changed,
                                  owner=owner, **kwargs)

        a = contact(at(11, 1, year=2025), "churned", at(1, 15))
        LifecycleChange.objects.create(contact=a, from_stage="lead", to_stage="customer", changed_at=at(12, 1, year=2025))
        LifecycleChange.objects.create(contact=a, from_stage="customer", to_stage="churned", changed_at=at(1, 15))
        b = contact(at(11, 2, year=2025), "customer", at(12, 20, year=2025))
        c = contact(at(11, 3, year=2025), "customer", at(1, 10))
        LifecycleChange.objects.create(contact=c, from_stage="lead", to_stage="customer", changed_at=at(1, 10))
        jan = [contact(at(1, d), "lead", at(1, d)) for d in (5, 6, 7)] + [contact(at(1, 8), "lead", at(1, 8),
                                                                                 owner=charlie)]
        return {"a": a, "b": b, "c": c, "jan": jan}

    def test_lifecycle_at_period_start_and_churn(self, lifecycle):
        # at 1 Jan: a customer (changed since → the last change before: →customer), b customer (unchanged since
        # 20 Dec), c no value (changed since, and no change before 1 Jan) → a, b = 2
        assert value("count(contacts where lifecycle_stage = 'customer' at period start)") == 2
        # currently: b and c are customers, created before the end of January
        assert value("count(contacts where lifecycle_stage = 'customer' at period end)") == 2
        churn = ("count_distinct(lifecycle_changes.contact where to_stage = 'churned') * 100 / "
                 "count(contacts where lifecycle_stage in ('customer', 'advocate') at period start)")
        assert value(churn) == 50  # 1 churned × 100 / 2

    def test_negated_and_empty_stage_at_an_instant(self, lifecycle):
        # Created before 1 Jan: a, b, c. Stage at 1 Jan: a customer, b customer, c no value (changed on 10 Jan, no
        # change before). A negation keeps the rows without a value; "is empty" finds them.
        assert value("count(contacts where lifecycle_stage != 'customer' at period start)") == 1  # c
        assert value("count(contacts where lifecycle_stage not in ('customer', 'lead') at period start)") == 1  # c
        assert value("count(contacts where not (lifecycle_stage = 'lead') at period start)") == 3  # a, b, c
        assert value("count(contacts where lifecycle_stage = 'lead' at period start)") == 0
        assert value("count(contacts where lifecycle_stage is empty at period start)") == 1  # c
        assert value("count(contacts where lifecycle_stage is not empty at period start)") == 2  # a, b
        assert value("count(contacts where not (lifecycle_stage is empty) and lifecycle_stage != 'lead' "
                     "at period start)") == 2  # a, b
        # at the end of January (now: the current stage): a churned, b customer, c customer, e f g h leads
        assert value("count(contacts where lifecycle_stage != 'lead' at period end)") == 3
        assert value("count_distinct(contacts.lifecycle_stage at period start)") == 1  # customer (c has none)

    def test_stage_at_an_instant_is_one_correlated_subquery(self, lifecycle, django_assert_num_queries):
        # count(contacts where C) = count(… AND lifecycle_changed_at < T AND lifecycle_stage IN (…)) — an index-only
        # count — + count(… AND NOT lifecycle_changed_at < T AND (the last change before T) IN (…)): the correlated
        # subquery runs only for the contacts changed since T, and no CASE over every contact.
        compiled = compile_formula("count(contacts where lifecycle_stage in ('customer', 'advocate') at period start)")
        with django_assert_num_queries(1) as captured:
            assert compiled.evaluate(JAN) == 2
        sql = captured.captured_queries[0]["sql"]
        assert sql.count('FROM "contacts_lifecyclechange"') == 1
        assert sql.count('FROM "contacts_contact"') == 2
        assert "CASE" not in sql and " OR " not in sql
        assert '"lifecycle_stage" IN (\'customer\', \'advocate\')' in sql
        members = compiled.evaluate_members(JAN, "owner")
        for owner_id, member_value in members.items():
            assert compiled.evaluate(JAN, Dimension("owner", owner_id)) == member_value

    def test_stage_at_an_instant_in_other_aggregates_is_one_scan(self, lifecycle, django_assert_num_queries):
        # avg/min/max/latest/count_distinct are not split: their condition tests each piece under its own
        # condition, (lifecycle_changed_at < T AND stage …) OR (NOT lifecycle_changed_at < T AND (subquery) …)
        compiled = compile_formula("count_distinct(contacts.owner where lifecycle_stage != 'lead' at period start)")
        with django_assert_num_queries(1) as captured:
            assert compiled.evaluate(JAN) == 1  # a, b, c all alice's
        sql = captured.captured_queries[0]["sql"]
        assert sql.count('FROM "contacts_contact"') == 1 and " OR " in sql

    def test_lead_conversion_per_team(self, lifecycle, deals, north, south):
        compiled = compile_formula("count(deals) * 100 / count(contacts)")
        assert compiled.evaluate(JAN) == 150  # 6 deals × 100 / 4 contacts
        members = compiled.evaluate_members(JAN, "team")
        # north: deals d2 d4 d6 d7 = 4, contacts e f g = 3 → 133.33…; south: d3 d5 = 2, contacts h = 1 → 200
        assert members[north.id].quantize(Decimal("0.0001")) == Decimal("133.3333")
        assert members[south.id] == 200

    def test_archived_and_complete(self, lifecycle):
        e, f, g, h = lifecycle["jan"]
        for name in ("phone", "company", "job_title", "lead_source", "city"):
            FieldSetting.objects.create(entity="contact", field_name=name, is_important=False)
        CustomFieldDefinition.objects.create(entity="contact", key="segment", label="Segment", field_type="text",
                                             is_important=True)
        # important: first_name, last_name, email (factory fills them) + custom "segment"
        for contact, segment in ((e, "smb"), (f, "ent"), (g, ""), (lifecycle["a"], "smb")):
            contact.custom_fields = {"segment": segment} if segment else {}
            contact.save()
        f.archived_at = at(1, 20)  # archived before the end
        f.save()
        h.archived_at = at(2, 5)  # archived after the end: still counted
        h.save()
        text = ("count(contacts where complete and not archived at period end) * 100 / "
                "count(contacts where not archived at period end)")
        # not archived at 1 Feb, created before: a b c e g h = 6; complete among them: a e = 2 → 33.33…
        assert value(text).quantize(Decimal("0.01")) == Decimal("33.33")
        assert value("count(contacts where archived)") == 2  # f h (currently)

    def test_has_relations(self, lifecycle, deals, alice):
        deals["d4"].contact = lifecycle["a"]
        deals["d4"].save()
        SurveyResponse.objects.create(kind="nps", score=9, contact=lifecycle["b"], responded_at=at(1, 3))
        assert value("count(contacts where has deals during all time)") == 0 + 0  # anchor window: January only
        assert value("count(contacts where has deals during all time at period end)") == 1
        assert value("count(contacts where has survey_responses at period end)") == 1


class TestOtherSources:
    def test_nps(self, db):
        for score in (10, 9, 9, 7, 6, 0):
            SurveyResponse.objects.create(kind="nps", score=score, responded_at=at(1, 10))
        SurveyResponse.objects.create(kind="csat", score=5, responded_at=at(1, 10))
        SurveyResponse.objects.create(kind="nps", score=1, responded_at=at(2, 10))
        text = ("(count(survey_responses where kind = 'nps' and score >= 9) - "
                "count(survey_responses where kind = 'nps' and score <= 6)) * 100 / "
                "count(survey_responses where kind = 'nps')")
        # (3 promoters − 2 detractors) × 100 / 6 = 16.66…
        assert value(text).quantize(Decimal("0.01")) == Decimal("16.67")

    def test_metrics_dimensions(self, db, deals):
        web, ads = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Ads")
        def metric(key, kind=""):
            return ExternalMetric.objects.update_or_create(key=key, defaults={"name": key, "dimension_kind": kind})[0]

        spend, sales, life = metric("marketing_spend", "source"), metric("sales_spend"), metric("customer_lifetime_years")
        MetricValue.objects.all().delete()
        for metric, dim, amount, day in ((spend, web.id, 100, dt.date(2026, 1, 1)),
                                         (spend, ads.id, 50, dt.date(2026, 1, 1)),
                                         (spend, web.id, 999, dt.date(2026, 2, 1)),
                                         (sales, 0, 30, dt.date(2026, 1, 1)),
                                         (life, 0, 3, dt.date(2025, 6, 1)),
                                         (life, 0, 4, dt.date(2025, 12, 1))):
            MetricValue.objects.create(metric=metric, dimension_id=dim, value=amount, period_start=day,
                                       period_end=day)
        both = compile_formula("sum(metrics.value where metric in ('marketing_spend', 'sales_spend'))")
        assert both.dimensions == ["source"]
        assert both.evaluate(JAN) == 180  # 100 + 50 + 30
        # per source: that source's spend only — the company's sales spend is not each source's
        assert both.evaluate(JAN, Dimension("source", web.id)) == 100
        assert both.evaluate_members(JAN, "source") == {web.id: 100, ads.id: 50}
        sales_only = compile_formula("sum(metrics.value where metric = 'sales_spend')")
        assert sales_only.dimensions == ["team", "owner", "pipeline", "source"]
        assert sales_only.evaluate(JAN, Dimension("source", web.id)) == 0  # sum over no rows
        # latest over all time up to the end of January: 4 (December's value); customer lifetime applies to
        # every breakdown (the migration marks it), so each source reads it too
        lifetime = compile_formula("latest(metrics.value where metric = 'customer_lifetime_years' during all time)")
        assert value(lifetime.text) == 4
        assert lifetime.evaluate(JAN, Dimension("source", web.id)) == 4
        assert lifetime.evaluate_members(JAN, "source") == {web.id: 4, ads.id: 4}
        # an admin marks sales spend as applying to breakdowns: each source then counts it again (100 + 30)
        ExternalMetric.objects.filter(key="sales_spend").update(applies_to_breakdowns=True)
        assert both.evaluate(JAN, Dimension("source", web.id)) == 130
        assert both.evaluate_members(JAN, "source") == {web.id: 130, ads.id: 80}

    def test_users_adoption(self, alice, bob, charlie, mona, sam, deals):
        ActivityFactory(owner=alice, occurred_at=at(1, 28))
        ActivityFactory(owner=bob, occurred_at=at(1, 10))  # outside the 7 days
        FieldChange.objects.create(record_type="pipeline.deal", record_id=1, actor=charlie, changed_at=at(1, 30),
                                   changes={})
        StageChange.objects.create(deal=deals["d2"], to_stage_name="Won", direction="won", actor=bob,
                                   changed_at=at(1, 12))
        text = ("count(users where active and role in ('rep', 'manager') and (has activities during last 7 days "
                "or has changes during last 7 days or has stage_changes during last 7 days)) * 100 / "
                "count(users where active and role in ('rep', 'manager'))")
        compiled = compile_formula(text)
        assert compiled.dimensions == ["team", "owner"]
        # users joined before the end (now joined "today" → set their date_joined back)
        from accounts.models import User

        User.objects.update(date_joined=at(12, 1, year=2025))
        # alice (activity 28 Jan) and charlie (change 30 Jan) of alice bob charlie mona → 2 × 100 / 4 = 50
        assert compiled.evaluate(JAN) == 50

    def test_stage_changes(self, deals):
        StageChange.objects.create(deal=deals["d2"], to_stage_name="Won", direction="won", changed_at=at(1, 12),
                                   seconds_in_from_stage=86400 * 3)
        StageChange.objects.create(deal=deals["d3"], to_stage_name="Lost", direction="lost", changed_at=at(1, 20),
                                   seconds_in_from_stage=86400)
        assert value("avg(stage_changes.days_in_from_stage)") == 2  # (3 + 1) / 2
        assert value("count(stage_changes where direction = 'won' and to_stage = 'Won')") == 1


class TestLeaves:
    def test_leaves_records_and_values(self, deals):
        compiled = compile_formula(WIN_RATE)
        won, closed = compiled.leaves
        assert won.text == "count(deals where status = 'won' by closed_at)"
        assert won.source == "deals"
        assert won.model.__name__ == "Deal"
        assert sorted(won.records(JAN).values_list("name", flat=True)) == ["d1", "d2", "d5", "d6"]
        assert won.value(JAN) == 4
        assert closed.value(JAN) == 5

    def test_not_applicable_dimension(self, deals, north):
        compiled = compile_formula("count(survey_responses)")
        assert "pipeline" not in compiled.dimensions
        with pytest.raises(FormulaError):
            compiled.evaluate_members(JAN, "pipeline")


BUILTIN_FORMULAS = [
    "count(deals) * 100 / count(contacts)",
    "avg(deals.cycle_days where status = 'won' by closed_at)",
    "sum(deals.amount where status = 'open' at period end)",
    WIN_RATE,
    "sum(deals.amount where status = 'won' by closed_at) / count(deals where status = 'won' by closed_at)",
    "sum(metrics.value where metric in ('marketing_spend', 'sales_spend')) / "
    "count_distinct(lifecycle_changes.contact where to_stage = 'customer')",
    "kpi('average-deal-value') * (count(deals where status = 'won' by closed_at during last 365 days) / "
    "count_distinct(deals.customer where status = 'won' by closed_at during last 365 days)) * "
    "latest(metrics.value where metric = 'customer_lifetime_years' during all time)",
    "count_distinct(lifecycle_changes.contact where to_stage = 'churned') * 100 / "
    "count(contacts where lifecycle_stage in ('customer', 'advocate') at period start)",
    "count(deals where status = 'open' at period end) * kpi('average-deal-value') * kpi('win-rate') / 100 / "
    "kpi('sales-cycle-length')",
    "(sum(deals.amount where status = 'won' by closed_at) - sum(metrics.value where metric = 'marketing_spend')) "
    "* 100 / sum(metrics.value where metric = 'marketing_spend')",
    "count(activities where kind != 'task' or done) / count(deals)",
    "sum(deals.amount where status = 'won' by closed_at) * 100 / snapshot('sales-forecast')",
    "sum(deals.weighted_amount where status = 'open' by expected_close_date)",
    "count(users where active and role in ('rep', 'manager') and (has activities during last 7 days or has changes "
    "during last 7 days or has stage_changes during last 7 days)) * 100 / "
    "count(users where active and role in ('rep', 'manager'))",
    "count(contacts where complete and not archived at period end) * 100 / "
    "count(contacts where not archived at period end)",
    "(count(survey_responses where kind = 'nps' and score >= 9) - count(survey_responses where kind = 'nps' and "
    "score <= 6)) * 100 / count(survey_responses where kind = 'nps')",
]


class TestValidation:
    @pytest.fixture
    def referenced(self, db):
        """The KPIs and metrics the built-in formulas refer to (created here unless a migration made them)."""
        for slug, formula in (
            ("average-deal-value", BUILTIN_FORMULAS[4]), ("win-rate", WIN_RATE),
            ("sales-cycle-length", BUILTIN_FORMULAS[1]), ("sales-forecast", BUILTIN_FORMULAS[12]),
        ):
            Kpi.objects.update_or_create(slug=slug, defaults={"name": slug, "formula": formula})
        for key, kind in (("marketing_spend", "source"), ("sales_spend", ""), ("customer_lifetime_years", "")):
            ExternalMetric.objects.update_or_create(key=key, defaults={"name": key, "dimension_kind": kind})

    @pytest.mark.parametrize("text", BUILTIN_FORMULAS)
    def test_builtin_formulas_compile(self, referenced, text):
        compiled = compile_formula(text)
        assert compiled.leaves

    def test_builtin_dimensions(self, referenced):
        assert compile_formula(BUILTIN_FORMULAS[0]).dimensions == ["team", "owner", "source"]
        assert compile_formula(BUILTIN_FORMULAS[3]).dimensions == ["team", "owner", "pipeline", "source"]
        assert compile_formula(BUILTIN_FORMULAS[9]).dimensions == ["source"]
        assert compile_formula(BUILTIN_FORMULAS[11]).dimensions == ["team", "owner", "pipeline", "source"]
        assert compile_formula(BUILTIN_FORMULAS[13]).dimensions == ["team", "owner"]
        ltv = compile_formula(BUILTIN_FORMULAS[6])
        assert ltv.references == ["average-deal-value"]
        assert len(ltv.leaves) == 5  # 2 inlined from average-deal-value + 3

    @pytest.mark.parametrize("text, message, position", [
        ("count(deals where stauts = 'won')", "Unknown field “stauts” on deals — did you mean “status”?", 18),
        ("sum(deals.name)", "“sum” needs a number field; “name” is text.", 10),
        ("count(deals where status = 'wonn')", "“wonn” is not one of: open, won, lost.", 27),
        ("count(deal)", "Unknown source “deal” — did you mean “deals”?", 6),
        ("count(changes)", "Unknown source “changes”", 6),
        ("sum(deals)", "“sum” needs a field, e.g. sum(deals.amount).", 0),
        ("count(deals by name)", "“by” needs a date field; “name” is text.", 15),
        ("count(deals where amount = 'big')", "compare it with a number", 27),
        ("count(deals where name = 3)", "compare it with a text in quotes", 25),
        ("count(deals where status > 'open')", "compare it with = or !=", 18),
        ("count(deals where name)", "not a yes/no field", 18),
        ("count(deals where created_at < '2026-13-01')", "not a date", 31),
        ("count(deals where has stage_chnges)", "did you mean “stage_changes”?", 22),
        ("count(deals where has contacts)",
         "Unknown relation “contacts” on deals; “has” can follow: activities, stage_changes.", 22),
        # activities have no relations: said so (not "can follow: —")
        ("count(activities where has deals)",
         "Unknown relation “deals”: activities have no related records for “has”.", 27),
        # names in any alphabet are names: the compiler answers about them
        ("count(kişiler)", "Unknown source “kişiler”; the sources are: contacts, companies, deals,", 6),
        ("count(dealş)", "Unknown source “dealş” — did you mean “deals”?", 6),
        ("count(deals where statüs = 'won')", "Unknown field “statüs” on deals — did you mean “status”?", 18),
        ("count(deals where has aktiviteler)",
         "Unknown relation “aktiviteler” on deals — did you mean “activities”?", 22),
        ("count(users where has activities where kindd = 'call')", "Unknown field “kindd” on activities", 39),
        ("sum(metrics.value where metric = 'marketing_spnd')", "did you mean “marketing_spend”?", 33),
        ("count(deals where stale = 1)", "compare it with true or false", 26),
        ("count(deals where stale is empty)", "never empty", 18),
    ])
    def test_errors(self, referenced, text, message, position):
        with pytest.raises(FormulaError) as info:
            compile_formula(text)
        assert message in info.value.message
        assert info.value.position == position

    def test_unknown_kpi_suggests(self, referenced):
        with pytest.raises(FormulaError) as info:
            compile_formula("kpi('win-rat') * 2")
        assert info.value.message == "Unknown KPI “win-rat” — did you mean “win-rate”?"
        assert (info.value.position, info.value.end) == (4, 13)
        with pytest.raises(FormulaError, match="Unknown KPI “nope”"):
            compile_formula("snapshot('nope')")

    def test_cycles(self, db):
        Kpi.objects.create(slug="a", name="a", formula="kpi('b') + 1")
        Kpi.objects.create(slug="b", name="b", formula="kpi('a') * 2")
        with pytest.raises(FormulaError) as info:
            compile_formula("kpi('b')", slug="a")
        assert info.value.message == "KPI references form a cycle: a → b → a."
        with pytest.raises(FormulaError, match="cycle: a → a"):
            compile_formula("kpi('a')", slug="a")
        with pytest.raises(FormulaError, match="cycle: a → b → a"):
            compile_formula("kpi('a')")  # the stored pair already loops

    def test_reference_depth(self, db):
        Kpi.objects.create(slug="k0", name="k0", formula="1")
        for i in range(1, 7):
            Kpi.objects.create(slug=f"k{i}", name=f"k{i}", formula=f"kpi('k{i - 1}') + 1")
        assert compile_formula("kpi('k4')").evaluate(JAN) == 5
        with pytest.raises(FormulaError, match="nested too deeply"):
            compile_formula("kpi('k6')")

    def test_an_invalid_referenced_formula_is_reported_with_one_position(self, db):
        Kpi.objects.create(slug="torn", name="t", formula="1 + 2)")
        with pytest.raises(FormulaError) as info:
            compile_formula("10 * kpi('torn')")
        # the position in that KPI's formula is said; the kpi('torn') call (5) is where it is underlined
        assert info.value.with_position() == ("KPI “torn” has an invalid formula: Unexpected “)” at position 5: "
                                              "there is no “(” to close.")
        assert (info.value.position, info.value.end) == (5, 16)
        Kpi.objects.filter(slug="torn").update(formula="1 +")
        with pytest.raises(FormulaError) as info:
            compile_formula("10 * kpi('torn')")
        assert info.value.with_position() == ("KPI “torn” has an invalid formula: The formula ends too early: "
                                              "expected a number or a function. (position 5)")

    def test_error_inside_a_referenced_kpi_points_at_the_reference(self, db):
        Kpi.objects.create(slug="broken", name="b", formula="count(deals where stauts = 'won')")
        with pytest.raises(FormulaError) as info:
            compile_formula("1 + kpi('broken')")
        assert info.value.message.startswith("In KPI “broken”: Unknown field “stauts”")
        assert info.value.position == 4

    def test_aggregate_cap(self, db):
        assert len(compile_formula(" + ".join(["count(deals)"] * 40)).leaves) == 40
        with pytest.raises(FormulaError, match="too many aggregates"):
            compile_formula(" + ".join(["count(deals)"] * 41))
        Kpi.objects.create(slug="twenty", name="20", formula=" + ".join(["count(deals)"] * 20))
        with pytest.raises(FormulaError, match="too many aggregates"):
            compile_formula("kpi('twenty') + kpi('twenty') + count(deals)")

    def test_long_chains_are_refused_not_crashing(self, db):
        with pytest.raises(FormulaError, match="too long"):
            compile_formula("+".join(["1"] * 500))


class TestGuard:
    def test_statement_timeout_is_set_for_the_statement_and_restored(self, db, settings):
        from django.db import connection

        from kpis.formula.compiler import _Guard

        settings.KPI_STATEMENT_TIMEOUT_MS = 1234
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            before = cursor.fetchone()[0]
            with _Guard():
                cursor.execute("SHOW statement_timeout")
                assert cursor.fetchone()[0] == "1234ms"
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == before

    def test_timeout_becomes_a_formula_error(self, deals, settings, monkeypatch):
        from kpis.formula import FormulaTimeout, compiler

        settings.KPI_STATEMENT_TIMEOUT_MS = 1
        slow = compiler.scalar

        def sleepy(expression):
            from django.db.models import Func

            return slow(Func(expression, template="(SELECT %(expressions)s FROM pg_sleep(0.05))"))

        monkeypatch.setattr(compiler, "scalar", sleepy)
        with pytest.raises(FormulaTimeout, match="took too long"):
            compile_formula("count(deals)").evaluate(JAN)


class TestRunningPeriod:
    def test_as_of_is_now_while_the_period_runs(self, deals):
        now = at(1, 15, hour=13)  # d4 was created at 12:00 that day
        compiled = compile_formula("count(deals during last 7 days)")
        # [8 Jan 13:00, 15 Jan 13:00): d4 (15 Jan 12:00) only
        assert compiled.evaluate(JAN, now=now) == 1
        # open at 15 Jan 13:00 among deals created before: d2 closed 12 Jan → no; d3 (closed 20 Jan) d4 d5 d6? d6
        # closed 8 Jan → no; d5 closed 25 Jan → open; d1 closed 5 Jan → no; d8 → open: d3 d4 d5 d8 = 4
        assert compile_formula("count(deals where status = 'open' at period end)").evaluate(JAN, now=now) == 4
        members = compile_formula("count(deals where status = 'open' at period end)").evaluate_members(
            JAN, "team", now=now)
        assert sorted(members.values()) == [2, 2]  # north d4 d8, south d3 d5
