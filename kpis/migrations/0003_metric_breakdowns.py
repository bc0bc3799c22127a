"""ExternalMetric.applies_to_breakdowns: which company-wide metrics also count for each team, owner, pipeline
and lead source (customer lifetime does; sales spend, an amount the whole company spends, does not)."""

from django.db import migrations, models

# The built-in metrics that hold for every breakdown (kpis/builtins.py BUILTIN_METRICS).
APPLY_TO_BREAKDOWNS = ["customer_lifetime_years"]


def mark(apps, schema_editor):
    metric = apps.get_model("kpis", "ExternalMetric")
    metric.objects.filter(key__in=APPLY_TO_BREAKDOWNS, dimension_kind="").update(applies_to_breakdowns=True)


class Migration(migrations.Migration):

    dependencies = [
        ("kpis", "0002_builtins"),
    ]

    operations = [
        migrations.AddField(
            model_name="externalmetric",
            name="applies_to_breakdowns",
            field=models.BooleanField(
                default=False,
                help_text="A company-wide value that also holds for each team, owner, pipeline and lead source "
                          "(e.g. customer lifetime); spend is not.",
                verbose_name="applies to breakdowns",
            ),
        ),
        migrations.RunPython(mark, migrations.RunPython.noop),
    ]
