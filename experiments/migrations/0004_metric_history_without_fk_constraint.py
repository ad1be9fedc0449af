"""Metric history keeps its run link without a PostgreSQL foreign-key constraint (see ``Metric.run``).

The deferred constraint fired a trigger per inserted point at commit: 4.2 of 10.5 ms of the database's
time per 1000-point COPY (bench/RESULTS.md). SQLite keeps its constraint: dropping it there would rebuild
the table, and SQLite installations are small.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "experiments_metric"
CONSTRAINT = "experiments_metric_run_id_3fea1165_fk_experiments_run_id"


def drop_constraint(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'ALTER TABLE "{TABLE}" DROP CONSTRAINT IF EXISTS "{CONSTRAINT}"')


def add_constraint(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{CONSTRAINT}" FOREIGN KEY ("run_id") '
            'REFERENCES "experiments_run" ("id") DEFERRABLE INITIALLY DEFERRED'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0003_drop_redundant_run_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_constraint, add_constraint)],
            state_operations=[
                migrations.AlterField(
                    model_name="metric",
                    name="run",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="metrics",
                        to="experiments.run",
                    ),
                ),
            ],
        ),
    ]
