"""What the KPI benchmark needs beyond ``seed_demo``'s contacts and deals, loaded with bulk SQL.

``seed_demo`` already writes the contacts' lifecycle history (lead → … → customer, some churned), about
three activities per contact (calls, e-mails, meetings, notes and tasks, most tasks done) and deals with
a few in EUR/USD. On top of that, each step here runs only when its rows are missing (so running the
benchmark again adds nothing):

- the demo users joined two years ago (``seed_demo`` creates them today, which would leave them out of
  "users at the period end");
- record history (``FieldChange``) up to ``--field-changes``: edits of contacts by their owners;
- activities up to ``--activities`` (5M): the missing ones are deal activities — the deal's contact,
  company, owner and team, at a random time between the deal's creation and its close (or now), kinds in
  realistic proportions, tasks with a due date and most of the past ones done;
- survey responses: NPS answers from customers, advocates and churned contacts (advocates mostly
  promoters, churned mostly detractors), plus a fifth as many CSAT answers, over the last two years;
- external metric values: ``marketing_spend`` per lead source per month (the source's new contacts that
  month × a cost per lead of that source), ``sales_spend`` per month (the reps and managers × a monthly
  cost), ``customer_lifetime_years`` per year;
- exchange rates for every foreign currency the deals use, one per month, rising over two years.

Everything is ``INSERT … SELECT`` on the server (``generate_series``, ``random()``), in batches with
progress lines.
"""

import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

ACTIVITY_BATCH = 500_000
# A foreign currency's rate (company currency per unit) two years ago and now; other currencies get 30 → 40.
RATES = {"EUR": (Decimal("33.0"), Decimal("49.5")), "USD": (Decimal("30.5"), Decimal("42.4")),
         "GBP": (Decimal("38.6"), Decimal("56.0"))}
METRICS = {
    # key: (name, unit, kept per)
    "marketing_spend": ("Marketing spend", "currency", "source"),
    "sales_spend": ("Sales spend", "currency", ""),
    "customer_lifetime_years": ("Customer lifetime (years)", "number", ""),
}


def ensure(*, activities: int, surveys: int, field_changes: int, progress: Callable[[str], None]) -> bool:
    """Load what is missing; True when anything was written (the caller then runs VACUUM ANALYZE)."""
    loaded = False
    loaded |= _users(progress)
    loaded |= _activities(activities, progress)
    loaded |= _field_changes(field_changes, progress)
    loaded |= _surveys(surveys, progress)
    loaded |= _metrics(progress)
    loaded |= _exchange_rates(progress)
    _check_lifecycle(progress)
    return loaded


def _scalar(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def _users(progress) -> bool:
    """seed_demo's users joined today; they have been working here for the two years of data."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET date_joined = now() - interval '2 years' "
                       "WHERE date_joined > now() - interval '2 years'")
        moved = cursor.rowcount
    if moved:
        progress(f"{moved} users: joined two years ago (date_joined moved back)")
    return bool(moved)


def _field_changes(target: int, progress) -> bool:
    """Edits of contacts by their owners (the record history), spread over the two years like the contacts."""
    have = _scalar("SELECT count(*) FROM crm_okr_fieldchange")
    if have >= target:
        progress(f"{have:,} field changes already (wanted {target:,})")
        return False
    missing = target - have
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO crm_okr_fieldchange (record_type, record_id, actor_id, changed_at, changes)
            SELECT 'contacts.contact', c.id, c.owner_id, c.at,
                   jsonb_build_object(f.name, jsonb_build_object('label', f.label, 'old', '', 'new', 'changed'))
            FROM (SELECT id, owner_id, created_at + (now() - created_at) * random() AS at,
                         floor(random() * 4)::int AS field
                  FROM contacts_contact TABLESAMPLE BERNOULLI (%(share)s)
                  WHERE owner_id IS NOT NULL LIMIT %(n)s) c
            JOIN (VALUES (0, 'phone', 'Phone'), (1, 'job_title', 'Job title'), (2, 'lifecycle_stage', 'Stage'),
                         (3, 'city', 'City')) AS f(i, name, label) ON f.i = c.field
            """,
            {"n": missing, "share": min(100.0, 100.0 * missing / 900_000)},
        )
        added = cursor.rowcount
    progress(f"{have:,} field changes; added {added:,} ({time.monotonic() - started:.0f} s)")
    return True


def _activities(target: int, progress) -> bool:
    have = _scalar("SELECT count(*) FROM contacts_activity")
    if have >= target:
        progress(f"{have:,} activities already (wanted {target:,})")
        return False
    missing = target - have
    fallback = _scalar("SELECT min(id) FROM accounts_user WHERE role = 'rep' AND is_active")
    deals = _scalar("SELECT count(*) FROM pipeline_deal")
    if not deals:
        raise SystemExit("no deals to hang the activities on; load the deals first")
    progress(f"{have:,} activities; adding {missing:,} deal activities in batches of {ACTIVITY_BATCH:,}")
    started = time.monotonic()
    # The deals numbered 0..n-1 once (an unlogged helper table), so each batch picks random deals by number.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_deal_pick")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_deal_pick AS SELECT (row_number() OVER (ORDER BY id) - 1)::int AS rn, "
            "id, contact_id, company_id, COALESCE(owner_id, %s) AS owner_id, team_id, created_at, "
            "GREATEST(created_at, COALESCE(closed_at, now())) AS ended_at FROM pipeline_deal", [fallback])
        cursor.execute("CREATE UNIQUE INDEX ON bench_deal_pick (rn)")
        cursor.execute("ANALYZE bench_deal_pick")
    done = 0
    while done < missing:
        size = min(ACTIVITY_BATCH, missing - done)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(ACTIVITY_SQL, {"n": size, "deals": deals})
        done += size
        progress(f"  activities +{done:,}/{missing:,} ({time.monotonic() - started:.0f} s)")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_deal_pick")
    return True


# Kinds: 30 % calls, 28 % e-mails, 15 % meetings, 10 % notes, 17 % tasks; a task is due 1–14 days after it
# was created and, when that is past, done in 85 % of cases (before its due date).
ACTIVITY_SQL = """
INSERT INTO contacts_activity (kind, subject, body, contact_id, company_id, deal_id, owner_id, team_id,
                               occurred_at, assignee_id, due_at, done_at, created_at)
SELECT k.kind,
       CASE k.kind WHEN 'call' THEN 'Follow-up call' WHEN 'email' THEN 'Proposal sent'
            WHEN 'meeting' THEN 'Demo meeting' WHEN 'note' THEN 'Call notes' ELSE 'Send the contract' END,
       '', d.contact_id, d.company_id, d.id, d.owner_id, d.team_id, t.occurred,
       CASE WHEN k.kind = 'task' THEN d.owner_id END,
       CASE WHEN k.kind = 'task' THEN t.due END,
       CASE WHEN k.kind = 'task' AND t.due < now() AND g.r4 < 0.85
            THEN t.occurred + (t.due - t.occurred) * g.r3 END,
       t.occurred
FROM (SELECT floor(random() * %(deals)s)::int AS rn, random() AS r1, random() AS r2, random() AS r3,
             random() AS r4, random() AS r5
      FROM generate_series(1, %(n)s)) g
JOIN bench_deal_pick d ON d.rn = g.rn
CROSS JOIN LATERAL (SELECT CASE WHEN g.r2 < 0.30 THEN 'call' WHEN g.r2 < 0.58 THEN 'email'
                                WHEN g.r2 < 0.73 THEN 'meeting' WHEN g.r2 < 0.83 THEN 'note'
                                ELSE 'task' END AS kind) k
CROSS JOIN LATERAL (SELECT d.created_at + (d.ended_at - d.created_at) * g.r1 AS occurred) o
CROSS JOIN LATERAL (SELECT o.occurred, o.occurred + interval '1 day' * (1 + 13 * g.r5) AS due) t
"""


def _surveys(target: int, progress) -> bool:
    have = _scalar("SELECT count(*) FROM kpis_surveyresponse WHERE kind = 'nps'")
    if have >= target:
        progress(f"{have:,} NPS responses already (wanted {target:,})")
        return False
    missing = target - have
    progress(f"{have:,} NPS responses; adding {missing:,} (and {missing // 5:,} CSAT)")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SURVEY_SQL, {"n": missing, "kind": "nps"})
        cursor.execute(SURVEY_SQL, {"n": missing // 5, "kind": "csat"})
    return True


# Who answers: customers, advocates and churned contacts, each at a random time in the last two years after
# they became a contact. NPS: advocates 8–10; churned mostly 0–6; customers about 50 % promoters (9–10),
# 30 % passives (7–8), 20 % detractors (0–6). CSAT 1–5, mostly 4–5.
SURVEY_SQL = """
INSERT INTO kpis_surveyresponse (kind, score, contact_id, responded_at, channel, comment, external_id,
                                 created_by_id, created_at)
SELECT %(kind)s,
       CASE WHEN %(kind)s = 'csat' THEN LEAST(5, 1 + floor(5 * sqrt(c.r)))::int
            WHEN c.lifecycle_stage = 'advocate' THEN LEAST(10, 8 + floor(3 * c.r))::int
            WHEN c.lifecycle_stage = 'churned' THEN CASE WHEN c.r < 0.8 THEN floor(7 * c.r2) ELSE 7 END::int
            WHEN c.r < 0.5 THEN LEAST(10, 9 + floor(2 * c.r2))::int
            WHEN c.r < 0.8 THEN LEAST(8, 7 + floor(2 * c.r2))::int
            ELSE floor(7 * c.r2)::int END,
       c.id, c.at,
       (ARRAY['email', 'sms', 'phone', 'web', 'whatsapp', 'in_person'])[1 + floor(6 * c.r3)::int],
       '', '', NULL, c.at
FROM (SELECT id, lifecycle_stage, random() AS r, random() AS r2, random() AS r3,
             GREATEST(created_at, now() - interval '730 days')
             + (now() - GREATEST(created_at, now() - interval '730 days')) * random() AS at
      FROM contacts_contact
      WHERE lifecycle_stage IN ('customer', 'advocate', 'churned') AND archived_at IS NULL
      ORDER BY random() LIMIT %(n)s) c
"""


def _metric_ids(progress) -> dict[str, int]:
    """The metric keys the built-ins use (created by kpis migration 0002; created here if it has not run)."""
    from kpis.models import ExternalMetric

    ids = {}
    for key, (name, unit, kind) in METRICS.items():
        metric = ExternalMetric.objects.filter(key=key).first()
        if metric is None:
            progress(f"external metric {key} missing (migration 0002 not there yet?): creating it")
            metric = ExternalMetric.objects.create(key=key, name=name, unit=unit, dimension_kind=kind)
        ids[key] = metric.id
    return ids


def _metrics(progress) -> bool:
    ids = _metric_ids(progress)
    have = _scalar("SELECT count(*) FROM kpis_metricvalue WHERE metric_id = ANY(%s)", [list(ids.values())])
    if have:
        progress(f"{have:,} external metric values already")
        return False
    tz = settings.TIME_ZONE
    today = timezone.localdate()
    first = dt.date(today.year - 2, today.month, 1)
    with transaction.atomic(), connection.cursor() as cursor:
        # Marketing spend: each source's new contacts of the month × that source's cost per lead (150–600).
        cursor.execute(
            """
            INSERT INTO kpis_metricvalue (metric_id, period_start, period_end, dimension_id, value, updated_at)
            SELECT %(metric)s, m.month, (m.month + interval '1 month' - interval '1 day')::date, s.id,
                   round(COALESCE(n.leads, 0) * (150 + (s.id * 97) %% 450) + 20000, 2), now()
            FROM (SELECT generate_series(%(first)s::date, %(today)s::date, interval '1 month')::date AS month) m
            CROSS JOIN contacts_leadsource s
            LEFT JOIN (SELECT lead_source_id,
                              date_trunc('month', created_at AT TIME ZONE %(tz)s)::date AS month, count(*) AS leads
                       FROM contacts_contact WHERE lead_source_id IS NOT NULL GROUP BY 1, 2) n
                   ON n.lead_source_id = s.id AND n.month = m.month
            """,
            {"metric": ids["marketing_spend"], "first": first, "today": today, "tz": tz},
        )
        marketing = cursor.rowcount
        # Sales spend: the reps and managers × 95,000 a month, ±10 %.
        cursor.execute(
            """
            INSERT INTO kpis_metricvalue (metric_id, period_start, period_end, dimension_id, value, updated_at)
            SELECT %(metric)s, m.month, (m.month + interval '1 month' - interval '1 day')::date, 0,
                   round((SELECT count(*) FROM accounts_user WHERE role IN ('rep', 'manager'))
                         * 95000 * (0.9 + 0.2 * random())::numeric, 2), now()
            FROM (SELECT generate_series(%(first)s::date, %(today)s::date, interval '1 month')::date AS month) m
            """,
            {"metric": ids["sales_spend"], "first": first, "today": today},
        )
        sales = cursor.rowcount
        # Customer lifetime: re-estimated every January.
        for year, years in ((today.year - 2, "3.1"), (today.year - 1, "3.4"), (today.year, "3.6")):
            cursor.execute(
                "INSERT INTO kpis_metricvalue (metric_id, period_start, period_end, dimension_id, value, updated_at) "
                "VALUES (%s, %s, %s, 0, %s, now())",
                [ids["customer_lifetime_years"], dt.date(year, 1, 1), dt.date(year, 12, 31), years],
            )
    progress(f"external metrics: {marketing:,} marketing spend values (per source and month), {sales} sales spend, "
             "3 customer lifetime")
    return True


def _exchange_rates(progress) -> bool:
    currencies = [row for row in _rows(
        "SELECT currency, count(*) FROM pipeline_deal WHERE currency <> %s GROUP BY 1 ORDER BY 1",
        [settings.CRM_CURRENCY])]
    missing = [c for c, _n in currencies
               if not _scalar("SELECT count(*) FROM kpis_exchangerate WHERE currency = %s", [c])]
    progress("deals in other currencies: " + (", ".join(f"{c} {n:,}" for c, n in currencies) or "none"))
    if not missing:
        return False
    today = timezone.localdate()
    first = dt.date(today.year - 2, today.month, 1)
    months = (today.year - first.year) * 12 + today.month - first.month
    with transaction.atomic(), connection.cursor() as cursor:
        for currency in missing:
            low, high = RATES.get(currency, (Decimal(30), Decimal(40)))
            for i in range(months + 1):
                index = first.year * 12 + first.month - 1 + i
                day = dt.date(index // 12, index % 12 + 1, 1)
                rate = (low + (high - low) * i / months).quantize(Decimal("0.0001"))
                cursor.execute(
                    "INSERT INTO kpis_exchangerate (currency, rate, valid_from, updated_at) VALUES (%s, %s, %s, now()) "
                    "ON CONFLICT DO NOTHING", [currency, rate, day])
    progress(f"exchange rates: {months + 1} monthly rates for {', '.join(missing)}")
    return True


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _check_lifecycle(progress) -> None:
    """The lifecycle history comes from seed_demo; say how much of it falls in the last full month."""
    tz = settings.TIME_ZONE
    rows = _rows(
        "SELECT to_stage, count(*) FROM contacts_lifecyclechange "
        "WHERE changed_at >= date_trunc('month', (now() AT TIME ZONE %s) - interval '1 month') AT TIME ZONE %s "
        "AND changed_at < date_trunc('month', now() AT TIME ZONE %s) AT TIME ZONE %s GROUP BY 1 ORDER BY 2 DESC",
        [tz, tz, tz, tz])
    progress("lifecycle changes last month: " + ", ".join(f"{stage} {n:,}" for stage, n in rows))
    if not any(stage == "customer" for stage, _n in rows) or not any(stage == "churned" for stage, _n in rows):
        progress("WARNING: no customers won or no churn last month; CAC or the churn rate will have no value")


def counts() -> dict:
    result = {}
    for table in ("contacts_contact", "contacts_company", "contacts_activity", "contacts_lifecyclechange",
                  "pipeline_deal", "pipeline_stagechange", "kpis_surveyresponse", "kpis_metricvalue",
                  "kpis_exchangerate", "crm_okr_fieldchange"):
        result[table] = _scalar(f"SELECT count(*) FROM {table}")
    result["deal_status"] = dict(_rows("SELECT status, count(*) FROM pipeline_deal GROUP BY 1"))
    result["foreign_deals"] = dict(_rows(
        "SELECT currency, count(*) FROM pipeline_deal WHERE currency <> %s GROUP BY 1", [settings.CRM_CURRENCY]))
    result["owners"] = _scalar("SELECT count(*) FROM accounts_user WHERE is_active AND role IN ('rep', 'manager')")
    result["teams"] = _scalar("SELECT count(*) FROM accounts_team")
    result["sources"] = _scalar("SELECT count(*) FROM contacts_leadsource WHERE is_active")
    result["pipelines"] = _scalar("SELECT count(*) FROM pipeline_pipeline")
    return result


def vacuum_analyze(progress) -> None:
    """VACUUM cannot run in a transaction; Django's connection is in autocommit outside atomic blocks."""
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    progress(f"VACUUM ANALYZE ({time.monotonic() - started:.0f} s)")
