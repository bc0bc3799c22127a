"""The built-in KPIs of issue #4 and the external metrics they read (kpis/builtins.py)."""

from django.db import migrations


def install(apps, schema_editor):
    from kpis.builtins import install_builtins

    install_builtins(apps)


class Migration(migrations.Migration):

    dependencies = [
        ("kpis", "0001_initial"),
    ]

    operations = [
        # Going back leaves the rows: the snapshots and metric values that point at them are data.
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
