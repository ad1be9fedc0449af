"""Drop the single-column ``run_id`` indexes of metric history and latest metrics.

Each is the leading column of another index ((run, key, step) and (run, seq) for history; the (run, key)
unique constraint for latest metrics), so they answered nothing those did not, and every metric insert
paid for them. Only the indexes are dropped: Django's own AlterField would rebuild the SQLite tables and
re-validate the foreign keys on PostgreSQL, both a full pass over the largest tables.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "experiments_metric": "experiments_metric_run_id_3fea1165",
    "experiments_latestmetric": "experiments_latestmetric_run_id_f0d26b4e",
}


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0002_latestmetric_order_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ("run_id")',
                )
                for table, index in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="latestmetric",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="latest_metrics",
                        to="experiments.run",
                    ),
                ),
                migrations.AlterField(
                    model_name="metric",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="metrics",
                        to="experiments.run",
                    ),
                ),
            ],
        ),
    ]
