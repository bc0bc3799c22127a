"""Trigram indexes for fragment search, where PostgreSQL has pg_trgm.

pg_trgm is an acceleration, not a feature: without it (for example on the embedded server, which
ships no contrib extensions) the same searches run, only slower. So the extension and indexes are
created only when available.
"""

from django.db import migrations

INDEXES = [
    ("contact_search_trgm", "contacts_contact"),
    ("company_search_trgm", "contacts_company"),
]


def create(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table in INDEXES:
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (search_text gin_trgm_ops)")


def drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name, _table in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
