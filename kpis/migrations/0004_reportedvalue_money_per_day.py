"""ReportedValue: what each Monday report said (so the next one compares with last week's report), and the
unit "Money per day" (pipeline velocity is money per day, shown as "TRY/day"; metrics share the units)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def velocity_per_day(apps, schema_editor):
    kpi = apps.get_model("kpis", "Kpi")
    kpi.objects.filter(slug="pipeline-velocity", is_builtin=True, unit="currency").update(unit="currency_per_day")


def velocity_money(apps, schema_editor):
    kpi = apps.get_model("kpis", "Kpi")
    kpi.objects.filter(unit="currency_per_day").update(unit="currency")


class Migration(migrations.Migration):

    dependencies = [
        ("kpis", "0003_metric_breakdowns"),
    ]

    operations = [
        migrations.AlterField(
            model_name="kpi",
            name="unit",
            field=models.CharField(
                choices=[("number", "Number"), ("percent", "Percent"), ("currency", "Money"), ("days", "Days"),
                         ("currency_per_day", "Money per day")],
                default="number", max_length=20, verbose_name="unit",
            ),
        ),
        migrations.AlterField(
            model_name="externalmetric",
            name="unit",
            field=models.CharField(
                choices=[("number", "Number"), ("percent", "Percent"), ("currency", "Money"), ("days", "Days"),
                         ("currency_per_day", "Money per day")],
                default="currency", max_length=20, verbose_name="unit",
            ),
        ),
        migrations.RunPython(velocity_per_day, velocity_money),
        migrations.CreateModel(
            name="ReportedValue",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("dimension_kind", models.CharField(
                    blank=True, choices=[("team", "Team"), ("owner", "Owner"), ("pipeline", "Pipeline"),
                                         ("source", "Lead source")], max_length=10, verbose_name="dimension")),
                ("dimension_id", models.BigIntegerField(default=0, verbose_name="dimension value")),
                ("period_start", models.DateTimeField(verbose_name="period start")),
                ("value", models.DecimalField(blank=True, decimal_places=6, max_digits=24, null=True,
                                              verbose_name="value")),
                ("reported_on", models.DateField(verbose_name="reported on")),
                ("reported_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="reported at")),
                ("kpi", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                          to="kpis.kpi", verbose_name="KPI")),
            ],
            options={
                "verbose_name": "reported KPI value",
                "verbose_name_plural": "reported KPI values",
                "constraints": [models.UniqueConstraint(
                    fields=("kpi", "dimension_kind", "dimension_id", "period_start", "reported_on"),
                    name="reportedvalue_one_per_report")],
            },
        ),
    ]
