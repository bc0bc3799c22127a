"""Hand-written SQL for each built-in KPI: the same company-level number as the formula, written directly.

Used by the benchmark (bench/kpi_bench.py: each KPI's time next to its query) and by the tests as a cross-check
of the formula compiler. The queries follow the semantics of docs in kpis/formula for a period ``[S, E)`` with
``as_of = min(E, now)``:

- "in the period": the anchor (created_at, closed_at, changed_at, occurred_at, responded_at) in ``[S, E)``;
  date anchors (expected close date, a metric value's period start) compare with the local dates of S and E;
- "at the period end": rows created before ``as_of`` in their state at ``as_of`` (a deal is open at T when it
  has no close time or closed at/after T; a contact is archived at T when archived before T);
- "at the period start": a contact's lifecycle stage at S is its stage when it last changed before S, else the
  stage of its last lifecycle change before S;
- amounts in another currency are converted with the latest exchange rate on or before the period's last day
  (as the compiler does); a currency without a rate is left out; sums of nothing are 0, and dividing by 0 gives no value (NULL).

Every value is passed as a parameter (``%(name)s``); the only text put into the SQL is built here (column names
of the completeness rule come from the model's fields, never from input).
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .periods import Period

# A deal's amount in the company currency (NULL when its currency has no rate).
AMOUNT = """CASE WHEN d.currency = %(currency)s THEN d.amount
       ELSE d.amount * (SELECT r.rate FROM kpis_exchangerate r
                        WHERE r.currency = d.currency AND r.valid_from <= %(rate_day)s
                        ORDER BY r.valid_from DESC LIMIT 1) END"""

WON_IN_PERIOD = "d.status = 'won' AND d.closed_at >= %(start)s AND d.closed_at < %(end)s"

AMOUNT_WON = f"SELECT COALESCE(sum({AMOUNT}), 0) FROM pipeline_deal d WHERE {WON_IN_PERIOD}"

AVERAGE_DEAL_VALUE = f"""SELECT COALESCE(sum({AMOUNT}), 0) / NULLIF(count(*), 0)
FROM pipeline_deal d WHERE {WON_IN_PERIOD}"""

WIN_RATE = """SELECT count(*) FILTER (WHERE d.status = 'won')::numeric * 100 / NULLIF(count(*), 0)
FROM pipeline_deal d
WHERE d.status IN ('won', 'lost') AND d.closed_at >= %(start)s AND d.closed_at < %(end)s"""

SALES_CYCLE_LENGTH = f"""SELECT avg(EXTRACT(EPOCH FROM d.closed_at - d.created_at) / 86400)
FROM pipeline_deal d WHERE {WON_IN_PERIOD}"""

OPEN_AT_END = "d.created_at < %(as_of)s AND (d.closed_at IS NULL OR d.closed_at >= %(as_of)s)"


def _metric_sum(keys: str) -> str:
    """The sum of the values of these metrics (a literal SQL list) whose period starts in the period."""
    return f"""SELECT COALESCE(sum(v.value), 0)
FROM kpis_metricvalue v JOIN kpis_externalmetric m ON m.id = v.metric_id
WHERE m.key IN ({keys}) AND v.period_start >= %(first_day)s AND v.period_start < %(end_day)s"""


QUERIES: dict[str, str] = {
    "lead-conversion-rate": """SELECT
  (SELECT count(*) FROM pipeline_deal WHERE created_at >= %(start)s AND created_at < %(end)s)::numeric * 100
  / NULLIF((SELECT count(*) FROM contacts_contact WHERE created_at >= %(start)s AND created_at < %(end)s), 0)""",

    "sales-cycle-length": SALES_CYCLE_LENGTH,

    "pipeline-value": f"SELECT COALESCE(sum({AMOUNT}), 0) FROM pipeline_deal d WHERE {OPEN_AT_END}",

    "win-rate": WIN_RATE,

    "average-deal-value": AVERAGE_DEAL_VALUE,

    "cac": f"""SELECT ({_metric_sum("'marketing_spend', 'sales_spend'")})
  / NULLIF((SELECT count(DISTINCT lc.contact_id) FROM contacts_lifecyclechange lc
            WHERE lc.to_stage = 'customer' AND lc.changed_at >= %(start)s AND lc.changed_at < %(end)s), 0)""",

    "ltv": f"""SELECT ({AVERAGE_DEAL_VALUE})
  * (SELECT count(*)::numeric
            / NULLIF(count(DISTINCT CASE WHEN d.contact_id IS NOT NULL THEN 'contact:' || d.contact_id
                                         WHEN d.company_id IS NOT NULL THEN 'company:' || d.company_id END), 0)
     FROM pipeline_deal d
     WHERE d.status = 'won' AND d.closed_at >= %(year_before)s AND d.closed_at < %(as_of)s)
  * (SELECT v.value FROM kpis_metricvalue v JOIN kpis_externalmetric m ON m.id = v.metric_id
     WHERE m.key = 'customer_lifetime_years' AND v.period_start < %(end_day)s
     ORDER BY v.period_start DESC, v.id DESC LIMIT 1)""",

    "churn-rate": """SELECT
  (SELECT count(DISTINCT lc.contact_id) FROM contacts_lifecyclechange lc
   WHERE lc.to_stage = 'churned' AND lc.changed_at >= %(start)s AND lc.changed_at < %(end)s)::numeric * 100
  / NULLIF((SELECT count(*) FROM contacts_contact c
            WHERE c.created_at < %(start)s
              AND CASE WHEN c.lifecycle_changed_at < %(start)s THEN c.lifecycle_stage
                       ELSE (SELECT lc.to_stage FROM contacts_lifecyclechange lc
                             WHERE lc.contact_id = c.id AND lc.changed_at < %(start)s
                             ORDER BY lc.changed_at DESC, lc.id DESC LIMIT 1) END IN ('customer', 'advocate')), 0)""",

    "pipeline-velocity": f"""SELECT (SELECT count(*) FROM pipeline_deal d WHERE {OPEN_AT_END})
  * ({AVERAGE_DEAL_VALUE}) * ({WIN_RATE}) / 100 / NULLIF(({SALES_CYCLE_LENGTH}), 0)""",

    "lead-source-roi": f"""SELECT (won - spend) * 100 / NULLIF(spend, 0)
FROM (SELECT ({AMOUNT_WON}) AS won, ({_metric_sum("'marketing_spend'")}) AS spend) AS figures""",

    "activities-per-opportunity": """SELECT
  (SELECT count(*) FROM contacts_activity a
   WHERE a.occurred_at >= %(start)s AND a.occurred_at < %(end)s
     AND (a.kind <> 'task' OR a.done_at IS NOT NULL))::numeric
  / NULLIF((SELECT count(*) FROM pipeline_deal WHERE created_at >= %(start)s AND created_at < %(end)s), 0)""",

    "forecast-accuracy": f"""SELECT ({AMOUNT_WON}) * 100
  / NULLIF((SELECT s.value FROM kpis_kpisnapshot s JOIN kpis_kpi k ON k.id = s.kpi_id
            WHERE k.slug = 'sales-forecast' AND s.period_start = %(start)s
              AND s.dimension_kind = '' AND s.dimension_id = 0), 0)""",

    "sales-forecast": f"""SELECT COALESCE(sum(({AMOUNT}) * st.probability / 100), 0)
FROM pipeline_deal d JOIN pipeline_stage st ON st.id = d.stage_id
WHERE d.status = 'open' AND d.expected_close_date >= %(first_day)s AND d.expected_close_date < %(end_day)s""",

    "crm-user-adoption": """SELECT count(*) FILTER (WHERE
    EXISTS (SELECT 1 FROM contacts_activity a
            WHERE a.owner_id = u.id AND a.occurred_at >= %(week_before)s AND a.occurred_at < %(as_of)s)
    OR EXISTS (SELECT 1 FROM crm_okr_fieldchange f
               WHERE f.actor_id = u.id AND f.changed_at >= %(week_before)s AND f.changed_at < %(as_of)s)
    OR EXISTS (SELECT 1 FROM pipeline_stagechange sc
               WHERE sc.actor_id = u.id AND sc.changed_at >= %(week_before)s AND sc.changed_at < %(as_of)s)
  )::numeric * 100 / NULLIF(count(*), 0)
FROM accounts_user u
WHERE u.is_active AND u.role IN ('rep', 'manager') AND u.date_joined < %(as_of)s""",

    # {complete} is filled in from the admin's field rules (see _complete_condition).
    "data-accuracy": """SELECT count(*) FILTER (WHERE {complete})::numeric * 100 / NULLIF(count(*), 0)
FROM contacts_contact c
WHERE c.created_at < %(as_of)s AND NOT (c.archived_at IS NOT NULL AND c.archived_at < %(as_of)s)""",

    "nps": """SELECT (count(*) FILTER (WHERE r.score >= 9) - count(*) FILTER (WHERE r.score <= 6))::numeric * 100
  / NULLIF(count(*), 0)
FROM kpis_surveyresponse r
WHERE r.kind = 'nps' AND r.responded_at >= %(start)s AND r.responded_at < %(end)s""",
}


def _complete_condition() -> tuple[str, dict]:
    """SQL that is true for a contact with every required and important field filled (built-in and custom),
    per ``contacts.rules.EntityRules`` — the same rule as the record pages' completeness."""
    from contacts.models import Contact, Entity
    from contacts.rules import EntityRules

    rules = EntityRules.load(Entity.CONTACT)
    quote = connection.ops.quote_name
    parts, params = [], {}
    for name in dict.fromkeys([*rules.required, *rules.important]):
        field = Contact._meta.get_field(name)
        column = f"c.{quote(field.column)}"
        if field.is_relation or field.get_internal_type() not in {"CharField", "TextField", "EmailField"}:
            parts.append(f"{column} IS NOT NULL")
        else:
            parts.append(f"COALESCE({column}, '') <> ''")
    keys = [d.key for d in rules.custom_fields if d.is_required or d.is_important]
    for position, key in enumerate(dict.fromkeys(keys)):
        params[f"custom_{position}"] = key
        parts.append(f"COALESCE(c.custom_fields ->> %(custom_{position})s, '') <> ''")
    return " AND ".join(parts) or "TRUE", params


def parameters(period: Period, now: dt.datetime | None = None) -> dict:
    """The values every query takes for a period (extra keys are ignored by the driver)."""
    as_of = period.as_of(now or timezone.now())
    return {
        "start": period.start, "end": period.end, "as_of": as_of,
        "first_day": period.first_day, "end_day": period.end_day, "rate_day": period.last_day,
        "year_before": as_of - dt.timedelta(days=365), "week_before": as_of - dt.timedelta(days=7),
        "currency": settings.CRM_CURRENCY,
    }


def query(slug: str, period: Period, now: dt.datetime | None = None) -> tuple[str, dict]:
    """The SQL of a built-in KPI and its parameters; the statement returns one row with the value (or NULL)."""
    if slug not in QUERIES:
        raise KeyError(f"no reference query for {slug!r}")
    sql, params = QUERIES[slug], parameters(period, now)
    if slug == "data-accuracy":
        complete, extra = _complete_condition()
        sql = sql.replace("{complete}", complete)
        params.update(extra)
    return sql, params


def value(slug: str, period: Period, now: dt.datetime | None = None) -> Decimal | None:
    """The company-level value of a built-in KPI for a period, by its hand-written query."""
    sql, params = query(slug, period, now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None or row[0] is None else Decimal(row[0])
