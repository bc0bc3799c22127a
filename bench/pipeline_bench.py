#!/usr/bin/env python
"""The pipeline at real size: the board, the deals list (page and API), the forecast and win/loss.

    .venv/bin/python bench/pipeline_bench.py

What it does (the machinery is bench/contacts_bench.py's, imported):

1. uses its own database (``crm_okr_bench`` on the server of ``DATABASE_URL``; created and migrated
   when needed) and loads ``--contacts`` contacts and ``--deals`` deals with ``manage.py seed_demo``
   unless they are there; the deals are loaded so that the default pipeline's board has
   ``--board-deals`` open deals, all visible to ``admin`` (the benchmark user);
2. starts gunicorn on 127.0.0.1 with the production settings (DEBUG off, ``bench/settings.py``) and
   times real HTTP requests: median and p95 over ``--requests`` requests per scenario, after a warm-up;
3. counts the SQL queries of each request in-process (Django test client + CaptureQueriesContext), and
   checks that the board's query count does not grow with the number of deals (the same board with a
   filter that leaves a fraction of them, and the smaller Renewals board);
4. a scenario whose URL does not resolve yet (a page still being written) is reported as "not
   available" instead of stopping the run;
5. prints a markdown table and writes it into docs/benchmarks.md between the pipeline markers, with the
   plan (EXPLAIN ANALYZE) of the slowest query of every scenario that misses its target.
"""

import argparse
import datetime as dt
import math
import os
import statistics
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.contacts_bench import (  # noqa: E402  (after the path is set)
    IN_PROCESS_RUNS,
    Scenario,
    _create_database,
    _database_url,
    _explain,
    _get,
    _load_average,
    _machine,
    _manage,
    _SqlTimer,
    _start_gunicorn,
    say,
)

DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:pipeline:start -->", "<!-- bench:pipeline:end -->"
BOARD_TARGET, REPORT_TARGET = 150, 300


@dataclass
class Case(Scenario):
    """A scenario, plus what the pipeline report needs: whether its page exists yet."""

    available: bool = True
    note: str = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="Contacts to have (default 1,000,000).")
    parser.add_argument("--deals", type=int, default=200_000, help="Deals to have (default 200,000).")
    parser.add_argument("--board-deals", type=int, default=5_000,
                        help="Open deals on the default pipeline's board when loading (default 5,000).")
    parser.add_argument("--requests", type=int, default=30, help="Timed requests per scenario (default 30).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests first (default 3).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2).")
    parser.add_argument("--port", type=int, default=0, help="Port for gunicorn (default: a free one).")
    parser.add_argument("--database", default="crm_okr_bench", help="Database name (default crm_okr_bench).")
    parser.add_argument("--no-write", action="store_true", help="Print the table only; leave docs/ alone.")
    parser.add_argument("--pg-options", default="", metavar="OPTIONS",
                        help='PostgreSQL settings for every connection of the run, as PGOPTIONS (e.g. "-c jit=off").')
    args = parser.parse_args()

    url = _database_url(args.database)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "ENVIRONMENT": "bench",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abc"),
        "DEBUG": "false",
        "PYTHONPATH": str(ROOT),
    }
    if args.pg_options:
        env["PGOPTIONS"] = args.pg_options
    os.environ.update(env)
    _create_database(url)
    say(f"migrating {args.database}")
    _manage(env, "migrate", "--no-input", "-v0")

    import django

    django.setup()
    from django.db import connection

    from contacts.models import Contact
    from pipeline.demo import RENEWALS_SHARE
    from pipeline.models import Deal

    have = Contact.objects.count()
    if have < args.contacts:
        missing = args.contacts - have
        say(f"{have:,} contacts in {args.database}; loading {missing:,} more with seed_demo (takes minutes)")
        _manage(env, "seed_demo", "--contacts", str(missing), "--deals", "0", *(["--append"] if have else []))
    else:
        say(f"{have:,} contacts already in {args.database}")
    have = Deal.objects.count()
    if have < args.deals:
        missing = args.deals - have
        # Renewals take their share of the open deals; the rest are on the default pipeline's board.
        open_deals = math.ceil(args.board_deals / (1 - RENEWALS_SHARE)) if not have else 0
        say(f"{have:,} deals in {args.database}; loading {missing:,} more with seed_demo")
        _manage(env, "seed_demo", "--contacts", "0", "--deals", str(missing), "--open-deals", str(open_deals),
                *(["--append"] if have else []))
    else:
        say(f"{have:,} deals already in {args.database}")
    connection.close()

    cases, setup = _prepare(args)
    server = _start_gunicorn(env, args)
    setup["load"] = [_load_average(), ""]
    try:
        for case in cases:
            if not case.available:
                say(f"{case.name}: not available ({case.note})")
                continue
            _time_http(case, setup["headers"][case.kind], args)
            say(f"{case.name}: median {case.median:.1f} ms, p95 {case.p95:.1f} ms, {case.queries} queries")
    finally:
        setup["load"][1] = _load_average()
        server.terminate()
        server.wait(timeout=30)
    for token in setup["tokens"]:
        token.revoke()

    report = _report(args, cases, setup)
    print()
    print(report)
    if not args.no_write:
        _write_doc(report)
        say(f"written to {DOC.relative_to(ROOT)}")


# --- the scenarios -------------------------------------------------------------------------------


def _path(name: str, **kwargs) -> str:
    """The path of a named URL, or raise NoReverseMatch when that page does not exist (yet)."""
    from django.urls import reverse

    return reverse(name, kwargs=kwargs or None)


def _api(path: str) -> str:
    """An API path, or raise Resolver404 when no endpoint answers there (yet)."""
    from django.urls import resolve

    resolve(urllib.parse.urlsplit(path).path)
    return path


def _prepare(args):
    """Users, credentials, the pipeline and filter values from the data; query counts measured in-process."""
    from django.db import connection
    from django.test import Client
    from django.urls import NoReverseMatch, Resolver404
    from django.utils import timezone

    from accounts.models import ApiToken, User
    from pipeline.models import Deal, Pipeline
    from pipeline.selectors import deals_visible_to

    admin = User.objects.get(username="admin")
    rep = User.objects.get(username="rep")
    token, raw_key = ApiToken.issue(user=admin, name="benchmark")
    clients, headers = {}, {}
    for kind, user in (("page", admin), ("page_rep", rep)):
        client = Client()
        client.force_login(user)
        clients[kind] = client
        headers[kind] = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    clients["api"] = Client(HTTP_AUTHORIZATION=f"Token {raw_key}", HTTP_ACCEPT="application/json")
    headers["api"] = {"Authorization": f"Token {raw_key}", "Accept": "application/json"}

    default = Pipeline.objects.get(is_default=True)
    renewals = Pipeline.objects.exclude(pk=default.pk).order_by("order", "id").first()
    board_open = deals_visible_to(admin).filter(pipeline=default, status=Deal.Status.OPEN)
    rep_open = board_open.filter(owner=rep).count()
    counts = {
        "board": board_open.count(), "board_rep_owner": rep_open,
        "board_rep_team": deals_visible_to(rep).filter(pipeline=default, status=Deal.Status.OPEN).count(),
        "renewals": deals_visible_to(admin).filter(pipeline=renewals, status=Deal.Status.OPEN).count(),
    }
    say(f"board of “{default}” as admin: {counts['board']:,} open deals ({rep_open:,} of them rep's)")
    today = timezone.localdate()
    month = f"{today.year}-{today.month:02d}"
    next_month = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    close_to = (next_month + dt.timedelta(days=62)).replace(day=1) - dt.timedelta(days=1)
    q = urllib.parse.urlencode

    specs = [
        # name, kind, path (a callable: may raise when the page is not there yet), target, group
        (f"Board, first load: “{default}”, {counts['board']:,} open deals (admin)", "page",
         lambda: _path("board-pipeline", pk=default.pk), BOARD_TARGET, "board"),
        ("Board at /board/ (the default pipeline)", "page", lambda: _path("board"), BOARD_TARGET, ""),
        (f"Board filtered to one owner ({rep_open:,} deals)", "page",
         lambda: f"{_path('board-pipeline', pk=default.pk)}?{q({'owner': rep.id})}", BOARD_TARGET, ""),
        (f"Board as `rep` (own team: {counts['board_rep_team']:,} deals)", "page_rep",
         lambda: _path("board-pipeline", pk=default.pk), BOARD_TARGET, ""),
        (f"Board of “{renewals}” ({counts['renewals']:,} open deals)", "page",
         lambda: _path("board-pipeline", pk=renewals.pk), BOARD_TARGET, ""),
        ("Deals list page: pipeline + open", "page",
         lambda: f"{_path('deal-list')}?{q({'pipeline': default.pk, 'status': 'open'})}", None, ""),
        ("Deals list page: stale only, one owner", "page",
         lambda: f"{_path('deal-list')}?{q({'stale': 'yes', 'owner': rep.id})}", None, ""),
        (f"Deals list page: closing in {month}", "page",
         lambda: f"{_path('deal-list')}?{q({'close_month': month})}", None, ""),
        ("Deals list page: no filter (all 200k, newest first)", "page", lambda: _path("deal-list"), None, ""),
        ("API deals: pipeline + status=open", "api",
         lambda: _api(f"/api/v1/deals/?{q({'pipeline': default.pk, 'status': 'open'})}"), None, ""),
        ("API deals: stale=true & owner", "api",
         lambda: _api(f"/api/v1/deals/?{q({'stale': 'true', 'owner': rep.id})}"), None, ""),
        ("API deals: close date range & amount ≥ 100,000", "api",
         lambda: _api(f"/api/v1/deals/?{q({'close_from': next_month, 'close_to': close_to, 'amount_min': 100000})}"),
         None, ""),
        ("Forecast page (default: coming months)", "page", lambda: _path("forecast"), REPORT_TARGET, ""),
        ("Forecast API", "api", lambda: _api("/api/v1/forecast/"), REPORT_TARGET, ""),
        ("Win/loss page (default period)", "page", lambda: _path("win-loss"), REPORT_TARGET, ""),
        ("Win/loss API", "api", lambda: _api("/api/v1/win-loss/"), REPORT_TARGET, ""),
        ("Weekly pipeline review page", "page", lambda: _path("pipeline-review"), None, ""),
    ]
    cases = []
    for name, kind, make_path, target, group in specs:
        label = f"< {target} ms" if target else ""
        try:
            path = make_path()
        except (NoReverseMatch, Resolver404) as exc:
            cases.append(Case(name, kind, [], target, label, available=False, note=type(exc).__name__))
            continue
        case = Case(name, kind, [path], target, label)
        case.raw_of = group  # reused: which query-count group the case belongs to
        cases.append(case)

    from django.test.utils import CaptureQueriesContext

    for case in cases:
        if not case.available:
            continue
        client = clients[case.kind]
        response = client.get(case.paths[0])
        if response.status_code != 200:
            case.available, case.note = False, f"answered {response.status_code}"
            continue
        sql_ms = []
        for _ in range(IN_PROCESS_RUNS):
            timer = _SqlTimer()
            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
                response = client.get(case.paths[0])
            sql_ms.append(sum(timer.durations))
        case.queries = len(captured.captured_queries)
        case.sql_ms = statistics.median(sql_ms)
        if timer.durations:
            slowest = max(zip(timer.durations, captured.captured_queries, strict=True), key=lambda pair: pair[0])
            case.slowest_ms, case.slowest_sql = slowest[0], slowest[1]["sql"]
        if case.kind == "api" and isinstance(data := response.json(), dict) and "results" in data:
            case.rows = len(data["results"])
    board = next((c for c in cases if c.raw_of == "board" and c.available), None)
    sizes = _board_queries_by_size(clients["page"], board.paths[0], default) if board else {}
    setup = {"headers": headers, "tokens": [token], "counts": counts | _table_counts(), "pipeline": default,
             "board_sizes": sizes}
    connection.close()
    return cases, setup


def _board_queries_by_size(client, path: str, pipeline) -> dict[int, int]:
    """The board's query count with all its open deals, and with 20 per stage left (the others closed in a
    transaction that is rolled back): the same count means it does not grow with the deals."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from pipeline.models import Deal

    open_deals = Deal.objects.filter(pipeline=pipeline, status=Deal.Status.OPEN)
    sizes = {}
    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    sizes[open_deals.count()] = len(captured.captured_queries)
    with transaction.atomic():
        keep = [pk for stage in pipeline.stages.filter(kind="open")
                for pk in open_deals.filter(stage=stage).order_by("id").values_list("id", flat=True)[:20]]
        open_deals.exclude(pk__in=keep).update(status=Deal.Status.WON, closed_at=timezone.now())
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        sizes[open_deals.count()] = len(captured.captured_queries)
        transaction.set_rollback(True)
    say("board queries by number of open deals: " + ", ".join(f"{n:,} → {q}" for n, q in sizes.items()))
    return sizes


def _table_counts() -> dict:
    from django.db import connection

    result = {}
    with connection.cursor() as cursor:
        for table in ("contacts_contact", "contacts_company", "pipeline_deal", "pipeline_stagechange"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            result[table] = cursor.fetchone()[0]
        cursor.execute("SELECT status, count(*) FROM pipeline_deal GROUP BY status")
        result["status"] = dict(cursor.fetchall())
    return result


def _time_http(case: Case, headers: dict, args) -> None:
    path = case.paths[0]
    for _ in range(args.warmup):
        _get(args.port, path, headers)
    for _ in range(args.requests):
        status, body, ms = _get(args.port, path, headers)
        if status != 200:
            raise SystemExit(f"{case.name}: {path} answered {status}: {body[:300]!r}")
        case.timings.append(ms)


# --- the report ----------------------------------------------------------------------------------


def _report(args, cases: list[Case], setup: dict) -> str:
    m = _machine()
    counts = setup["counts"]
    status = counts["status"]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sizes = setup["board_sizes"]
    flat = len(set(sizes.values())) == 1
    lines = [
        f"Run of {now} on commit `{m['commit']}`: {counts['contacts_contact']:,} contacts, "
        f"{counts['contacts_company']:,} companies, {counts['pipeline_deal']:,} deals "
        f"({status.get('open', 0):,} open, {status.get('won', 0):,} won, {status.get('lost', 0):,} lost) with "
        f"{counts['pipeline_stagechange']:,} stage changes; the board of “{setup['pipeline']}” holds "
        f"{counts['board']:,} open deals, all visible to the benchmark user (`admin`).",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['mem']}; PostgreSQL {m['pg']} (shared_buffers "
        f"{m['shared_buffers']}) on the same machine; Python {m['python']}, Django {m['django']}; gunicorn with "
        f"{args.workers} sync workers, DEBUG off"
        f"{f'; every connection with PGOPTIONS `{args.pg_options}`' if args.pg_options else ''}. "
        f"{args.requests} requests per row after {args.warmup} "
        f"untimed ones, one at a time over HTTP on 127.0.0.1 (connect + request + full response); "
        f"queries per request counted in-process with the Django test client. Load average when the timing "
        f"started: {setup['load'][0]}, when it ended: {setup['load'][1]} (other work on the machine shows here).",
        "",
        "| scenario | median ms | p95 ms | queries | of which SQL ms | rows | target | met |",
        "|---|---:|---:|---:|---:|---:|---|:---:|",
    ]
    missed = []
    for c in cases:
        if not c.available:
            lines.append(f"| {c.name} | not available ({c.note}) | | | | | {c.target_label or '—'} | — |")
            continue
        checks = [c.median < c.target_ms] if c.target_ms is not None else []
        target = c.target_label
        if c.raw_of == "board":
            checks.append(flat)
            target = f"{target}; same queries at any size"
        met = "—" if not checks else ("yes" if all(checks) else "**no**")
        if checks and not all(checks):
            missed.append(c)
        rows = "" if c.rows is None else str(c.rows)
        lines.append(f"| {c.name} | {c.median:.1f} | {c.p95:.1f} | {c.queries} | {c.sql_ms:.1f} | {rows} "
                     f"| {target or '—'} | {met} |")
    by_size = "; ".join(f"{q} queries with {n:,} open deals" for n, q in sizes.items()) or "not measured"
    lines += [
        "",
        f"“same queries at any size”: the board's first load runs {by_size} (all but 20 per stage closed in a "
        f"transaction that is rolled back){' — the count does not grow with the deals' if flat else ''}. "
        f"“of which SQL ms”: the request's queries' total time, median of {IN_PROCESS_RUNS} in-process runs; the "
        "rest of the median is Python (middleware, authentication, templates or DRF) and HTTP.",
    ]
    # Plans where a query is slow enough to matter (a miss with fast queries is Python: templates, serializers).
    slow_sql = [c for c in missed if c.slowest_ms >= 10 or c.sql_ms >= 0.4 * c.median]
    if slow_sql:
        lines += ["", "Plans of the slowest query of each scenario that missed its target (EXPLAIN ANALYZE, BUFFERS, "
                  "run after the timing):", ""]
        for c in slow_sql:
            lines += [f"<details><summary>{c.name} (slowest query {c.slowest_ms:.1f} ms)</summary>", "", "```sql",
                      c.slowest_sql, "```", "", "```", _explain(c.slowest_sql), "```", "", "</details>", ""]
    return "\n".join(lines)


def _write_doc(report: str) -> None:
    block = f"{START}\n{report}\n{END}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        DOC.write_text(f"{before}{block}{rest.split(END, 1)[1]}")
        return
    DOC.write_text(text.rstrip("\n") + "\n\n" + SECTION + block + "\n")


SECTION = """## Pipeline at 200,000 deals

```
.venv/bin/python bench/pipeline_bench.py
```

Same machinery as the contacts benchmark (its own database `crm_okr_bench`, gunicorn with the production
settings, real HTTP, queries counted in-process). The data: 1M contacts, then 200,000 deals loaded by
`manage.py seed_demo --contacts 0 --deals 200000 --open-deals 6250` (COPY, two years of history: 6,250
open deals of which 5,000 on the default pipeline's board, a fifth of them stale; the rest won or lost).
A page that does not exist yet is listed as "not available". The block between the markers is rewritten
by each run.

Targets (from the Pipeline issue, 2 cores): the board's first load under 150 ms median, with a query
count that does not grow with the number of deals; the forecast and win/loss pages under 300 ms.

"""


if __name__ == "__main__":
    main()
