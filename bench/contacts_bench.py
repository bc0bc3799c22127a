#!/usr/bin/env python
"""Contacts at real size: the list API and page, search, filters and the contact page.

    .venv/bin/python bench/contacts_bench.py --contacts 1000000

What it does:

1. uses its own database (``crm_okr_bench`` on the server of ``DATABASE_URL``; created and migrated
   when needed) and loads ``--contacts`` contacts with ``manage.py seed_demo`` unless they are there;
2. starts gunicorn on 127.0.0.1 with the production settings (DEBUG off; ``bench/settings.py`` only
   drops HTTPS-only switches) and times real HTTP requests: median and p95 over ``--requests`` requests
   per scenario, after a short warm-up;
3. counts the SQL queries of each request in-process (Django test client + CaptureQueriesContext);
4. times the list page's own SQL query straight through psycopg2, and reports API time / SQL time;
5. prints a markdown table and writes it into docs/benchmarks.md (between the markers, so hand-written
   notes around it stay), with the plans (EXPLAIN ANALYZE) of any scenario that misses its target.
"""

import argparse
import datetime as dt
import http.client
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:contacts:start -->", "<!-- bench:contacts:end -->"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/crm_okr"


@dataclass
class Scenario:
    name: str
    kind: str  # "api", "api_rep" (as the rep: team-scoped) or "page"
    paths: list[str]  # requested in turn (one path, or one per request)
    target_ms: float | None = None
    target_label: str = ""
    raw_of: str = ""  # for API list pages: the raw-SQL row to compare with
    timings: list[float] = field(default_factory=list)
    queries: int | None = None
    rows: int | None = None
    slowest_sql: str = ""
    slowest_ms: float = 0.0
    sql_ms: float | None = None
    status: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.timings)

    @property
    def p95(self) -> float:
        ordered = sorted(self.timings)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="Contacts to have in the database.")
    parser.add_argument("--requests", type=int, default=30, help="Timed requests per scenario (default 30).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests first (default 3).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2).")
    parser.add_argument("--port", type=int, default=0, help="Port for gunicorn (default: a free one).")
    parser.add_argument("--database", default="crm_okr_bench", help="Database name (default crm_okr_bench).")
    parser.add_argument("--no-write", action="store_true", help="Print the table only; leave docs/ alone.")
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
    os.environ.update(env)
    _create_database(url)
    say(f"migrating {args.database}")
    _manage(env, "migrate", "--no-input", "-v0")

    import django

    django.setup()
    from django.db import connection

    from contacts.models import Contact

    have = Contact.objects.count()
    if have < args.contacts:
        missing = args.contacts - have
        say(f"{have:,} contacts in {args.database}; loading {missing:,} more with seed_demo")
        _manage(env, "seed_demo", "--contacts", str(missing), *(["--append"] if have else []))
        connection.close()
    else:
        say(f"{have:,} contacts already in {args.database}")

    scenarios, raw, setup = _prepare(args)
    server = _start_gunicorn(env, args)
    setup["load"] = [_load_average(), ""]
    try:
        for scenario in scenarios:
            _time_http(scenario, setup["headers"][scenario.kind], args)
            say(f"{scenario.name}: median {scenario.median:.1f} ms, p95 {scenario.p95:.1f} ms")
    finally:
        setup["load"][1] = _load_average()
        server.terminate()
        server.wait(timeout=30)
    for item in raw:
        _time_raw(item, args)
        say(f"{item.name}: median {item.median:.2f} ms")
    for token in setup["tokens"]:
        token.revoke()

    report = _report(args, scenarios, raw, setup)
    print()
    print(report)
    if not args.no_write:
        _write_doc(report)
        say(f"written to {DOC.relative_to(ROOT)}")


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- database and server -------------------------------------------------------------------------


def _database_url(name: str) -> str:
    base = urllib.parse.urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    return urllib.parse.urlunsplit(base._replace(path=f"/{name}"))


def _create_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(urllib.parse.urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            say(f"creating database {name}")
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()


def _manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_gunicorn(env: dict, args) -> subprocess.Popen:
    args.port = args.port or _free_port()
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", args.port)) == 0:
            raise SystemExit(f"Port {args.port} is taken by another server; pass a free --port.")
    say(f"starting gunicorn ({args.workers} workers) on 127.0.0.1:{args.port}")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm_okr.wsgi:application", "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.workers), "--log-level", "warning", "--chdir", str(ROOT)],
        env=env, cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _body, _ms = _get(args.port, "/login/", {})
            if status < 500 and server.poll() is None:
                return server
        except OSError:
            pass
        if server.poll() is not None:
            raise SystemExit("gunicorn exited before answering")
        time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def _get(port: int, path: str, headers: dict) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return response.status, body, elapsed


# --- the scenarios -------------------------------------------------------------------------------


def _prepare(args):
    """Users, credentials, search terms and cursors taken from the data; query counts measured in-process."""
    from django.db import connection
    from django.test import Client

    from accounts.models import ApiToken, User
    from contacts.models import Activity, Contact, LifecycleStage
    from crm_okr.pagination import encode_cursor
    from crm_okr.text import fold

    admin = User.objects.get(username="admin")
    rep = User.objects.get(username="rep")
    token, raw_key = ApiToken.issue(user=admin, name="benchmark")
    rep_token, rep_key = ApiToken.issue(user=rep, name="benchmark")
    page_client = Client()
    page_client.force_login(admin)
    headers = {
        "api": {"Authorization": f"Token {raw_key}", "Accept": "application/json"},
        "api_rep": {"Authorization": f"Token {rep_key}", "Accept": "application/json"},
        "page": {"Cookie": f"sessionid={page_client.cookies['sessionid'].value}"},
    }
    api_client = Client(HTTP_AUTHORIZATION=f"Token {raw_key}")
    clients = {"api": api_client, "api_rep": Client(HTTP_AUTHORIZATION=f"Token {rep_key}"), "page": page_client}

    live = Contact.objects.filter(archived_at__isnull=True)
    total = live.count()
    deep_row = live.order_by("sort_name", "id").values_list("sort_name", "id")[int(total * 0.9)]
    deep_cursor = encode_cursor(deep_row[0], deep_row[1])

    # Page 20 by following `next`, as a client paging through would.
    path = "/api/v1/contacts/"
    for _ in range(19):
        path = _next_path(api_client.get(path).json()["next"])
    page20_cursor = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["cursor"][0]

    # Search terms from the data: a common surname typed without Turkish letters, a full name the same way,
    # and a fragment of one contact's e-mail address.
    sample = live.exclude(email="").filter(last_name="Öztürk").order_by("id")[int(total * 0.0005)]
    common = "ozturk"
    rare = live.filter(first_name__regex="[ğışçöüİĞŞÇÖÜ]", last_name__regex="[ğışçöüİĞŞÇÖÜ]").order_by("-id")[7]
    full_name = fold(f"{rare.first_name} {rare.last_name}")
    email_fragment = sample.email.split("@")[0][2:]
    detail_ids = list(
        Activity.objects.filter(contact__isnull=False).order_by("?").values_list("contact_id", flat=True)[
            : args.requests]
    ) if total < 50_000 else _sample_contact_ids(args.requests)

    q = urllib.parse.urlencode
    stage = LifecycleStage.CUSTOMER
    api, page = "/api/v1/contacts/", "/contacts/"
    scenarios = [
        Scenario("API list, first page", "api", [api], 20, "< 20 ms", raw_of="first"),
        Scenario("API list, page 20 (following next)", "api", [f"{api}?{q({'cursor': page20_cursor})}"], 20,
                 "< 20 ms", raw_of="page20"),
        Scenario("API list, deep cursor (90 % into the order)", "api", [f"{api}?{q({'cursor': deep_cursor})}"],
                 20, "< 20 ms", raw_of="deep"),
        Scenario(f"API search, surname fragment “{common}”", "api", [f"{api}?{q({'search': common})}"], 50,
                 "< 50 ms"),
        Scenario(f"API search, full name without accents “{full_name}”", "api",
                 [f"{api}?{q({'search': full_name})}"], 50, "< 50 ms"),
        Scenario(f"API search, e-mail fragment “{email_fragment}”", "api",
                 [f"{api}?{q({'search': email_fragment})}"], 50, "< 50 ms"),
        Scenario("API filter, lifecycle_stage=customer & owner=rep", "api",
                 [f"{api}?{q({'lifecycle_stage': stage, 'owner': rep.id})}"], 20, "< 20 ms"),
        Scenario("API list as `rep` (own team only), first page", "api_rep", [api], 20, "< 20 ms"),
        Scenario("API contact (one record)", "api", [f"{api}{pk}/" for pk in detail_ids]),
        Scenario("Page list, first page", "page", [page]),
        Scenario("Page list, page 20", "page", [f"{page}?{q({'cursor': page20_cursor})}"]),
        Scenario("Page list, deep cursor (90 %)", "page", [f"{page}?{q({'cursor': deep_cursor})}"]),
        Scenario(f"Page search, surname fragment “{common}”", "page", [f"{page}?{q({'q': common})}"], 50,
                 "< 50 ms"),
        Scenario(f"Page search, e-mail fragment “{email_fragment}”", "page",
                 [f"{page}?{q({'q': email_fragment})}"], 50, "< 50 ms"),
        Scenario("Page filter, stage=customer & owner=rep", "page",
                 [f"{page}?{q({'stage': stage, 'owner': rep.id})}"]),
        Scenario("Contact page (30 different contacts)", "page", [f"/contacts/{pk}/" for pk in detail_ids], 100,
                 "< 100 ms"),
    ]

    # In-process: queries per request, the time spent in SQL (so the rest is Python: Django, DRF, templates),
    # and the slowest query's SQL (for EXPLAIN when a target is missed).
    from django.test.utils import CaptureQueriesContext

    list_sql = {}
    for scenario in scenarios:
        client = clients[scenario.kind]
        client.get(scenario.paths[0])
        sql_ms = []
        for _ in range(IN_PROCESS_RUNS):
            timer = _SqlTimer()
            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
                response = client.get(scenario.paths[0])
            if response.status_code != 200:
                raise SystemExit(f"{scenario.name}: {scenario.paths[0]} answered {response.status_code}")
            sql_ms.append(sum(timer.durations))
        scenario.queries = len(captured.captured_queries)
        scenario.sql_ms = statistics.median(sql_ms)
        slowest = max(zip(timer.durations, captured.captured_queries, strict=True), key=lambda pair: pair[0])
        scenario.slowest_ms, scenario.slowest_sql = slowest[0], slowest[1]["sql"]
        if scenario.kind.startswith("api") and "results" in (data := response.json()):
            scenario.rows = len(data["results"])
        if scenario.raw_of:
            list_sql[scenario.raw_of] = next(
                qr["sql"] for qr in captured.captured_queries
                if 'FROM "contacts_contact"' in qr["sql"] and "LIMIT" in qr["sql"]
            )
    for scenario in scenarios:
        if scenario.kind.startswith("api") and scenario.rows == 0:
            raise SystemExit(f"{scenario.name}: no rows; pick another term")
    raw = [
        Scenario("Raw SQL of the API's first page (psycopg2)", "raw", [list_sql["first"]]),
        Scenario("Raw SQL of the API's page 20", "raw", [list_sql["page20"]]),
        Scenario("Raw SQL of the API's deep page", "raw", [list_sql["deep"]]),
    ]
    counts = _counts()
    setup = {"headers": headers, "tokens": [token, rep_token], "counts": counts}
    connection.close()
    return scenarios, raw, setup


IN_PROCESS_RUNS = 5


class _SqlTimer:
    """A database execute wrapper that keeps how long each query took, in order."""

    def __init__(self):
        self.durations: list[float] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.durations.append((time.perf_counter() - started) * 1000)


def _next_path(link: str) -> str:
    parts = urllib.parse.urlsplit(link)
    return f"{parts.path}?{parts.query}"


def _sample_contact_ids(n: int) -> list[int]:
    """Random contacts that have activities (a realistic record page, timeline included)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM contacts_contact TABLESAMPLE SYSTEM (1) REPEATABLE (42) "
            "WHERE last_activity_at IS NOT NULL LIMIT %s", [n])
        return [row[0] for row in cursor.fetchall()]


def _counts() -> dict:
    from django.db import connection

    result = {}
    with connection.cursor() as cursor:
        for table in ("contacts_contact", "contacts_company", "contacts_activity", "contacts_lifecyclechange"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            result[table] = cursor.fetchone()[0]
    return result


def _time_http(scenario: Scenario, headers: dict, args) -> None:
    paths = scenario.paths
    for i in range(args.warmup):
        _get(args.port, paths[i % len(paths)], headers)
    for i in range(args.requests):
        status, body, ms = _get(args.port, paths[i % len(paths)], headers)
        if status != 200:
            raise SystemExit(f"{scenario.name}: {paths[i % len(paths)]} answered {status}: {body[:300]!r}")
        scenario.status = status
        scenario.timings.append(ms)


def _time_raw(item: Scenario, args) -> None:
    import psycopg2

    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    with conn.cursor() as cursor:
        for i in range(args.warmup + args.requests):
            started = time.perf_counter()
            cursor.execute(item.paths[0])
            rows = cursor.fetchall()
            elapsed = (time.perf_counter() - started) * 1000
            if i >= args.warmup:
                item.timings.append(elapsed)
        item.rows = len(rows)
        item.queries = 1
    conn.close()


def _explain(sql: str) -> str:
    import psycopg2

    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    with conn.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    conn.close()
    return plan


# --- the report ----------------------------------------------------------------------------------


def _load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _machine() -> dict:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, AttributeError):
        pass
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
        cursor.execute("SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem')")
        settings = {name: (setting, unit) for name, setting, unit in cursor.fetchall()}
    connection.close()
    shared = int(settings["shared_buffers"][0]) * 8 // 1024
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    import django

    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem": mem, "pg": pg, "shared_buffers": f"{shared} MB",
        "python": platform.python_version(), "django": django.get_version(),
        "commit": commit.stdout.strip() or "?",
    }


def _report(args, scenarios: list[Scenario], raw: list[Scenario], setup: dict) -> str:
    m = _machine()
    counts = setup["counts"]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    raw_by = {"first": raw[0], "page20": raw[1], "deep": raw[2]}
    lines = [
        f"Run of {now} on commit `{m['commit']}`: {counts['contacts_contact']:,} contacts, "
        f"{counts['contacts_company']:,} companies, {counts['contacts_activity']:,} activities, "
        f"{counts['contacts_lifecyclechange']:,} lifecycle changes.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['mem']}; PostgreSQL {m['pg']} (shared_buffers "
        f"{m['shared_buffers']}) on the same machine; Python {m['python']}, Django {m['django']}; gunicorn with "
        f"{args.workers} sync workers, DEBUG off. {args.requests} requests per row after {args.warmup} "
        f"untimed ones, one at a time over HTTP on 127.0.0.1 (connect + request + full response); "
        f"queries per request counted in-process with the Django test client. Load average when the timing "
        f"started: {setup['load'][0]}, when it ended: {setup['load'][1]} (other work on the machine shows here).",
        "",
        "| scenario | median ms | p95 ms | queries | of which SQL ms | rows | target | met |",
        "|---|---:|---:|---:|---:|---:|---|:---:|",
    ]
    missed = []
    for s in scenarios:
        checks = []
        if s.target_ms is not None:
            checks.append(s.median < s.target_ms)
        target = s.target_label
        if s.raw_of:
            ratio = s.median / raw_by[s.raw_of].median
            checks.append(ratio <= 8)
            target = f"{target}; ≤ 8× SQL (is {ratio:.1f}×)"
        met = "—" if not checks else ("yes" if all(checks) else "**no**")
        if checks and not all(checks):
            missed.append(s)
        rows = "" if s.rows is None else str(s.rows)
        lines.append(f"| {s.name} | {s.median:.1f} | {s.p95:.1f} | {s.queries} | {s.sql_ms:.1f} | {rows} "
                     f"| {target or '—'} | {met} |")
    for r in raw:
        lines.append(f"| {r.name} | {r.median:.2f} | {r.p95:.2f} | 1 | {r.median:.2f} | {r.rows} | — | — |")
    lines += [
        "",
        "“≤ 8× SQL”: the API page's median divided by the median of the same page's list query (the exact SQL "
        "Django sent, captured in-process) run through psycopg2 with no Django at all. “of which SQL ms”: "
        f"the request's queries' total time, median of {IN_PROCESS_RUNS} in-process runs; the rest of the "
        "median is Python (middleware, authentication, DRF or templates) and HTTP.",
    ]
    slow_sql = [s for s in missed if s.slowest_ms >= 5]
    if slow_sql:
        lines += ["", "Plans of the slowest query of each scenario that missed its target because of SQL:", ""]
        for s in slow_sql:
            lines += [f"<details><summary>{s.name}</summary>", "", "```", _explain(s.slowest_sql), "```", "",
                      "</details>", ""]
    return "\n".join(lines)


def _write_doc(report: str) -> None:
    DOC.parent.mkdir(exist_ok=True)
    block = f"{START}\n{report}\n{END}"
    if DOC.exists() and START in (text := DOC.read_text()) and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        DOC.write_text(f"{before}{block}{after}")
    else:
        DOC.write_text(
            "# Benchmarks\n\n## Contacts at a million rows\n\n"
            "Produced by `.venv/bin/python bench/contacts_bench.py --contacts 1000000` (see the script's "
            "docstring for what it does). The block below is rewritten by each run.\n\n" + block + "\n"
        )


if __name__ == "__main__":
    main()
