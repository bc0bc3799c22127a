"""One cycle per name, whatever the case. Cycles sharing a name already get " (2)", " (3)"… appended (oldest
keeps its name) before the constraint is added."""

import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


def rename_duplicates(apps, schema_editor):
    Cycle = apps.get_model("okrs", "Cycle")
    taken = set()
    for cycle in Cycle.objects.order_by("created_at", "id"):
        name, n = cycle.name, 1
        while name.lower() in taken:
            n += 1
            suffix = f" ({n})"
            name = cycle.name[: 100 - len(suffix)] + suffix
        taken.add(name.lower())
        if name != cycle.name:
            Cycle.objects.filter(pk=cycle.pk).update(name=name)


class Migration(migrations.Migration):

    dependencies = [
        ("okrs", "0002_reminders"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="cycle",
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower("name"),
                                               name="cycle_name_unique_ci"),
        ),
    ]
