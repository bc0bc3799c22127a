"""Demo data for the KPIs, run at the end of ``manage.py seed_demo`` (after the contacts and the deals).

What the built-in KPIs read that the contacts and deals demos do not write:

- **customers from won deals**: a contact whose deal was won becomes a customer at the deal's close time (a
  lifecycle change from its stage then, and the contact's stage), so CAC and churn follow the deals; the
  contacts demo already writes lifecycle histories over two years, some ending in churn;
- **exchange rates** for the foreign currencies the demo deals use (one a month, over two years), so money
  KPIs convert them rather than leave them out;
- **external metrics**: ``marketing_spend`` per lead source per month and ``sales_spend`` per month, sized on
  the demo's won amounts (lead source ROI lands around the 200 % benchmark), and ``customer_lifetime_years``
  per year;
- **survey responses**: NPS answers (and some CSAT) from customers, advocates and churned contacts, after they
  became customers; each of the last quarters has answers;
- **the sales forecast as it was at the start of each month** (snapshots of ``sales-forecast`` for the company
  and every team, owner, pipeline and lead source), rebuilt from the deals' stage history — a forecast taken
  today for a past month would only see the deals still open today, so forecast accuracy needs these;
- the demo users joined two years ago (the adoption KPI counts users who had joined by the period end).

It runs once, after there are deals: when the database already has metric values or survey responses, or has no
deals yet, nothing is added. Everything is set-based SQL or capped in size, so it also runs after a million
contacts.
"""

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from . import periods
from .builtins import install_builtins
from .models import (
    DimensionKind,
    ExchangeRate,
    ExternalMetric,
    Frequency,
    Kpi,
    KpiSnapshot,
    MetricValue,
    SurveyResponse,
)

# Company-currency value of one unit, for a TRY company (rates two years ago → now); other companies divide.
TRY_PER_UNIT = {"EUR": (Decimal("33.0"), Decimal("49.5")), "USD": (Decimal("30.5"), Decimal("42.4")),
                "GBP": (Decimal("38.6"), Decimal("56.0")), "TRY": (Decimal("1"), Decimal("1"))}
RATE_MONTHS = 24
# Marketing spend is the won amount ÷ this (ROI about 250 %); sales spend a fifth of the won amount.
MARKETING_DIVISOR = Decimal("3.5")
SALES_SHARE = Decimal("0.2")
LIFETIME_YEARS = [Decimal("2.5"), Decimal("3")]  # last year, this year
SURVEY_CONTACTS_CAP = 5_000
SURVEY_QUARTERS = 6  # the current quarter and the five before it each get answers
MIN_ANSWERS_PER_QUARTER = 4
PRE_CUSTOMER = ("subscriber", "lead", "mql", "sql", "opportunity")
CHANNELS = [c for c, _label in SurveyResponse.Channel.choices]


@dataclass
class KpiDemoSummary:
    skipped: str = ""  # why nothing was added
    customers_from_deals: int = 0
    exchange_rates: int = 0
    metric_values: int = 0
    survey_responses: int = 0
    forecast_snapshots: int = 0
    users_backdated: int = 0
    seconds: float = 0.0
    notes: list = field(default_factory=list)


def describe(summary: KpiDemoSummary) -> str:
    if summary.skipped:
        return f"KPI demo data: none added ({summary.skipped})."
    return (f"KPI demo data: {summary.customers_from_deals:,} contacts became customers with their won deals, "
            f"{summary.exchange_rates:,} exchange rates, {summary.metric_values:,} metric values, "
            f"{summary.survey_responses:,} survey responses, {summary.forecast_snapshots:,} sales forecast "
            f"snapshots, in {summary.seconds:.0f} s.")


class KpiDemoSeeder:
    def __init__(self, *, seed: int = 42, progress: Callable[[str], None] = print, now: dt.datetime | None = None):
        self.rng = random.Random(seed * 104_729 + 11)
        self.progress = progress
        self.now = now or timezone.now()
        self.started = time.monotonic()
        self.summary = KpiDemoSummary()

    def run(self) -> KpiDemoSummary:
        from pipeline.models import Deal

        install_builtins()
        if MetricValue.objects.exists() or SurveyResponse.objects.exists():
            self.summary.skipped = "the database already has metric values or survey responses"
            return self._done()
        if not Deal.objects.exists():
            # Spend is sized on the won amounts, customers come from won deals: wait for the deals.
            self.summary.skipped = "there are no deals yet"
            return self._done()
        with transaction.atomic():
            self._backdate_users()
            self._customers_from_won_deals()
            self._exchange_rates()
        with transaction.atomic():
            self._metrics()
        with transaction.atomic():
            self._surveys()
        with transaction.atomic():
            self._forecast_snapshots()
        return self._done()

    def _done(self) -> KpiDemoSummary:
        self.summary.seconds = time.monotonic() - self.started
        return self.summary

    # -- users, customers, rates --

    def _backdate_users(self) -> None:
        """The demo users were created just now; in the demo's story they have used the CRM for two years."""
        from accounts.models import User
        from contacts.demo import USERS

        joined = self.now - dt.timedelta(days=730)
        self.summary.users_backdated = User.objects.filter(
            username__in=[row[0] for row in USERS], date_joined__gt=joined
        ).update(date_joined=joined)

    def _customers_from_won_deals(self) -> None:
        """A contact whose deal was won (and who was not a customer yet) became a customer when it closed."""
        with connection.cursor() as cursor:
            cursor.execute("""
                WITH firsts AS (
                    SELECT DISTINCT ON (d.contact_id) d.contact_id, d.closed_at, d.owner_id
                    FROM pipeline_deal d
                    WHERE d.status = 'won' AND d.contact_id IS NOT NULL
                    ORDER BY d.contact_id, d.closed_at, d.id
                ), targets AS (
                    SELECT c.id, c.lifecycle_stage, f.closed_at, f.owner_id
                    FROM contacts_contact c JOIN firsts f ON f.contact_id = c.id
                    WHERE c.lifecycle_stage IN %s AND c.lifecycle_changed_at < f.closed_at
                      AND c.archived_at IS NULL
                ), changes AS (
                    INSERT INTO contacts_lifecyclechange (contact_id, from_stage, to_stage, changed_at, actor_id)
                    SELECT t.id, t.lifecycle_stage, 'customer', t.closed_at, t.owner_id FROM targets t
                    RETURNING contact_id
                )
                UPDATE contacts_contact c
                SET lifecycle_stage = 'customer', lifecycle_changed_at = t.closed_at,
                    updated_at = GREATEST(c.updated_at, t.closed_at)
                FROM targets t WHERE c.id = t.id
            """, [PRE_CUSTOMER])
            self.summary.customers_from_deals = cursor.rowcount

    def _exchange_rates(self) -> None:
        from pipeline.models import Deal

        base = settings.CRM_CURRENCY
        currencies = set(Deal.objects.exclude(currency=base).values_list("currency", flat=True).distinct())
        currencies -= set(ExchangeRate.objects.values_list("currency", flat=True).distinct())
        if not currencies:
            return
        base_then, base_now = TRY_PER_UNIT.get(base, (Decimal("40"), Decimal("40")))
        first = periods.containing(Frequency.MONTHLY, self.now).shift(-(RATE_MONTHS - 1))
        rows = []
        for currency in sorted(currencies):
            then, now = TRY_PER_UNIT.get(currency, (Decimal("30"), Decimal("40")))
            for month in range(RATE_MONTHS):
                share = Decimal(month) / (RATE_MONTHS - 1)
                in_try = then + (now - then) * share
                base_in_try = base_then + (base_now - base_then) * share
                wobble = Decimal(1 + (self.rng.random() - 0.5) * 0.02)
                rate = (in_try / base_in_try * wobble).quantize(Decimal("0.0001"), ROUND_HALF_UP)
                rows.append(ExchangeRate(currency=currency, rate=rate, valid_from=first.shift(month).first_day))
        ExchangeRate.objects.bulk_create(rows, ignore_conflicts=True)
        self.summary.exchange_rates = len(rows)

    # -- metrics --

    def _won_by_source_month(self, months: list) -> dict:
        """Won amounts (company currency, converted) per (lead source id, month index)."""
        from . import reference_sql

        start, end = months[0].start, months[-1].end
        with connection.cursor() as cursor:
            cursor.execute(f"""
                SELECT d.lead_source_id, date_trunc('month', d.closed_at AT TIME ZONE %(tz)s)::date,
                       COALESCE(sum({reference_sql.AMOUNT}), 0)
                FROM pipeline_deal d
                WHERE d.status = 'won' AND d.closed_at >= %(start)s AND d.closed_at < %(end)s
                GROUP BY 1, 2
            """, {"tz": settings.TIME_ZONE, "start": start, "end": end, "currency": settings.CRM_CURRENCY,
                  "rate_day": months[-1].last_day})
            return {(source, day): amount for source, day, amount in cursor.fetchall()}

    def _metrics(self) -> None:
        from contacts.models import LeadSource
        from pipeline.models import Deal

        metrics = {m.key: m for m in ExternalMetric.objects.filter(
            key__in=["marketing_spend", "sales_spend", "customer_lifetime_years"])}
        current = periods.containing(Frequency.MONTHLY, self.now)
        first_deal = Deal.objects.aggregate(first=Min("created_at"))["first"]
        back = 6
        if first_deal is not None:
            first_month = periods.containing(Frequency.MONTHLY, first_deal)
            back = min(12, (current.first_day.year - first_month.first_day.year) * 12
                       + current.first_day.month - first_month.first_day.month)
        months = [current.shift(-i) for i in range(back, -1, -1)]
        won = self._won_by_source_month(months)
        sources = list(LeadSource.objects.filter(is_active=True).values_list("id", flat=True))
        # Each source's share of the won amount over the months (a floor, so every source costs something).
        total_won = sum(won.values(), Decimal(0))
        share = {s: sum((a for (src, _m), a in won.items() if src == s), Decimal(0)) for s in sources}
        floor = Decimal("0.03")
        weights = {s: (share[s] / total_won if total_won else Decimal(1) / max(1, len(sources))) + floor
                   for s in sources}
        weight_sum = sum(weights.values(), Decimal(0)) or Decimal(1)
        monthly_won = total_won / len(months) if total_won else Decimal("1000000")
        rows = []
        elapsed = (self.now - current.start) / (current.end - current.start)
        for month in months:
            part = Decimal(str(max(0.05, min(1.0, elapsed)))) if month == current else Decimal(1)
            spend = monthly_won * part / MARKETING_DIVISOR
            for source in sources:
                noise = Decimal(str(0.7 + 0.6 * self.rng.random()))
                value = (spend * weights[source] / weight_sum * noise).quantize(Decimal("1"))
                rows.append(self._value(metrics["marketing_spend"], month, value, source))
            noise = Decimal(str(0.9 + 0.2 * self.rng.random()))
            rows.append(self._value(metrics["sales_spend"], month, (monthly_won * part * SALES_SHARE * noise)
                                    .quantize(Decimal("1"))))
        this_year = self.now.astimezone(periods.company_tz()).year
        for offset, years in zip((1, 0), LIFETIME_YEARS, strict=True):
            first, last = dt.date(this_year - offset, 1, 1), dt.date(this_year - offset, 12, 31)
            rows.append(MetricValue(metric=metrics["customer_lifetime_years"], period_start=first, period_end=last,
                                    value=years, updated_at=self.now))
        MetricValue.objects.bulk_create(rows, ignore_conflicts=True)
        self.summary.metric_values = len(rows)

    def _value(self, metric, month, value, dimension_id: int = 0) -> MetricValue:
        return MetricValue(metric=metric, period_start=month.first_day, period_end=month.last_day,
                           dimension_id=dimension_id, value=value, updated_at=self.now)

    # -- survey responses --

    def _surveys(self) -> None:
        """NPS (and some CSAT) answers from contacts who are or were customers, after they became one."""
        with connection.cursor() as cursor:
            cursor.execute("""
                SELECT c.id, c.lifecycle_stage, c.lifecycle_changed_at,
                       (SELECT min(lc.changed_at) FROM contacts_lifecyclechange lc
                        WHERE lc.contact_id = c.id AND lc.to_stage = 'customer')
                FROM contacts_contact c
                WHERE c.lifecycle_stage IN ('customer', 'advocate', 'churned') AND c.archived_at IS NULL
                ORDER BY c.id
            """)
            people = cursor.fetchall()
        if not people:
            return
        if len(people) > SURVEY_CONTACTS_CAP:
            people = sorted(self.rng.sample(people, SURVEY_CONTACTS_CAP))
        r = self.rng.random
        horizon = self.now - dt.timedelta(days=460)
        rows = []
        for contact_id, stage, stage_at, customer_at in people:
            since = max(customer_at or stage_at, horizon)
            until = stage_at if stage == "churned" else self.now
            if until - since < dt.timedelta(hours=1):
                continue
            for _ in range(1 if r() < 0.6 else 2):
                when = since + (until - since) * r()
                rows.append(self._answer(contact_id, stage, when))
        # Every recent quarter has a few answers, so NPS has a value in each.
        quarter = periods.containing(Frequency.QUARTERLY, self.now)
        for back in range(SURVEY_QUARTERS):
            period = quarter.shift(-back)
            until = min(period.end, self.now)
            have = sum(1 for row in rows if row.kind == "nps" and period.start <= row.responded_at < until)
            for _ in range(max(0, MIN_ANSWERS_PER_QUARTER - have)):
                contact_id, stage, *_times = self.rng.choice(people)
                when = period.start + (until - period.start) * r()
                rows.append(self._answer(contact_id, stage, when, kind="nps"))
        SurveyResponse.objects.bulk_create(rows, batch_size=2000)
        self.summary.survey_responses = len(rows)

    def _answer(self, contact_id: int, stage: str, when: dt.datetime, kind: str | None = None) -> SurveyResponse:
        r = self.rng.random
        kind = kind or ("nps" if r() < 0.85 else "csat")
        # Advocates mostly promote, churned contacts mostly detract, customers are mixed.
        promoter, detractor = {"advocate": (0.8, 0.05), "churned": (0.1, 0.7)}.get(stage, (0.5, 0.2))
        x = r()
        if kind == "nps":
            score = self.rng.choice([9, 10]) if x < promoter else (
                self.rng.randint(0, 6) if x < promoter + detractor else self.rng.choice([7, 8]))
        else:
            score = self.rng.choice([4, 5]) if x < promoter else (
                self.rng.randint(1, 2) if x < promoter + detractor else 3)
        return SurveyResponse(kind=kind, score=score, contact_id=contact_id, responded_at=when,
                              channel=self.rng.choice(CHANNELS), created_at=when)

    # -- the sales forecast as it was --

    def _forecast_snapshots(self) -> None:
        """``sales-forecast`` for each month of the deals' history, as a snapshot taken at the month's start
        would have found it: deals open then (created before, not closed before), expected to close in the
        month, weighted with the probability of the stage they were in then."""
        from pipeline.models import Deal

        from . import dimensions, reference_sql

        kpi = Kpi.objects.filter(slug="sales-forecast").first()
        first_deal = Deal.objects.aggregate(first=Min("created_at"))["first"]
        if kpi is None or first_deal is None:
            return
        month = periods.containing(Frequency.MONTHLY, first_deal).next()
        current = periods.containing(Frequency.MONTHLY, self.now)
        columns = {"": None, DimensionKind.TEAM: "team_id", DimensionKind.OWNER: "owner_id",
                   DimensionKind.PIPELINE: "pipeline_id", DimensionKind.SOURCE: "lead_source_id"}
        members = {kind: {m.pk: str(m) for m in dimensions.members(kind)} for kind in columns if kind}
        rows = []
        while month.first_day <= current.first_day:
            sums = self._forecast_at(month, reference_sql.AMOUNT)
            for kind, column in columns.items():
                if column is None:
                    value = sum((v for v in sums.values()), Decimal(0))
                    rows.append(self._snapshot(kpi, month, "", 0, "", value))
                    continue
                index = list(columns.values()).index(column) - 1
                for member_id, label in members[kind].items():
                    value = sum((v for key, v in sums.items() if key[index] == member_id), Decimal(0))
                    rows.append(self._snapshot(kpi, month, kind, member_id, label, value))
            month = month.next()
        KpiSnapshot.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        self.summary.forecast_snapshots = len(rows)

    def _forecast_at(self, month, amount_sql: str) -> dict:
        """{(team, owner, pipeline, source): weighted amount} of the deals open at the month's start."""
        with connection.cursor() as cursor:
            cursor.execute(f"""
                SELECT d.team_id, d.owner_id, d.pipeline_id, d.lead_source_id,
                       sum(({amount_sql}) * COALESCE(then_stage.probability, now_stage.probability) / 100)
                FROM pipeline_deal d
                JOIN pipeline_stage now_stage ON now_stage.id = d.stage_id
                LEFT JOIN LATERAL (
                    SELECT sc.to_stage_id FROM pipeline_stagechange sc
                    WHERE sc.deal_id = d.id AND sc.changed_at < %(start)s
                    ORDER BY sc.changed_at DESC, sc.id DESC LIMIT 1
                ) last_change ON TRUE
                LEFT JOIN pipeline_stage then_stage ON then_stage.id = last_change.to_stage_id
                WHERE d.created_at < %(start)s AND (d.closed_at IS NULL OR d.closed_at >= %(start)s)
                  AND d.expected_close_date >= %(first_day)s AND d.expected_close_date < %(end_day)s
                GROUP BY 1, 2, 3, 4
            """, {"start": month.start, "first_day": month.first_day, "end_day": month.end_day,
                  "rate_day": month.last_day,
                  "currency": settings.CRM_CURRENCY})
            return {tuple(row[:4]): row[4] or Decimal(0) for row in cursor.fetchall()}

    def _snapshot(self, kpi, month, kind: str, member_id: int, label: str, value: Decimal) -> KpiSnapshot:
        return KpiSnapshot(
            kpi=kpi, frequency=kpi.frequency, period_start=month.start, period_end=month.end, dimension_kind=kind,
            dimension_id=member_id, dimension_label=label[:200], value=value.quantize(Decimal("0.000001")),
            formula_version=kpi.formula_version, computed_at=month.start,
            is_final=month.has_ended(self.now),
        )
