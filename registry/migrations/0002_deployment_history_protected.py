"""Deployments protect their model and version: deleting a deployed version or model is refused.

A deployment and its events are the release history ("who put it there"); CASCADE erased them with the
version. ``on_delete`` is enforced by Django, not the database, so this migration changes no SQL.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="deployment",
            name="model",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="deployments", to="registry.registeredmodel"
            ),
        ),
        migrations.AlterField(
            model_name="deployment",
            name="version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="deployments", to="registry.modelversion"
            ),
        ),
    ]
