"""A fresh install starts with one pipeline ("New business") and a list of lost reasons; admins rename them."""

from django.db import migrations

STAGES = [
    ("Qualified", "open", 10, []),
    ("Contact made", "open", 20, []),
    ("Meeting / demo", "open", 40, []),
    ("Proposal sent", "open", 60, ["amount", "expected_close_date"]),
    ("Negotiation", "open", 80, []),
    ("Won", "won", 100, []),
    ("Lost", "lost", 0, []),
]
REASONS = ["Price", "Chose a competitor", "No budget", "No decision / timing", "Product did not fit",
           "No response"]


def create(apps, schema_editor):
    Pipeline = apps.get_model("pipeline", "Pipeline")
    Stage = apps.get_model("pipeline", "Stage")
    LostReason = apps.get_model("pipeline", "LostReason")
    if not Pipeline.objects.exists():
        pipeline = Pipeline.objects.create(name="New business", is_default=True, order=1)
        for order, (name, kind, probability, criteria) in enumerate(STAGES, start=1):
            Stage.objects.create(pipeline=pipeline, name=name, kind=kind, probability=probability, order=order,
                                 exit_criteria=criteria)
    if not LostReason.objects.exists():
        for order, name in enumerate(REASONS, start=1):
            LostReason.objects.create(name=name, order=order)


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
