"""Indexes that let a search ordered by a metric walk runs in order (issue 10, search over 100k runs).

``(key, is_nan, value)`` replaces ``(key, value)``: it still answers ``metrics.x > v`` and, scanned
forward, yields ``ORDER BY is_nan, value ASC NULLS LAST``, the ascending metric order of
``experiments.search``. The descending order (``is_nan ASC NULLS LAST, value DESC NULLS LAST``) is a
backward scan of ``(key, is_nan DESC NULLS FIRST, value NULLS FIRST)``, created on PostgreSQL only:
SQLite's CREATE INDEX has no NULLS FIRST, and a model ``Meta.indexes`` entry cannot be per database.
"""

from typing import Any

from django.db import migrations, models

DESC_INDEX = "latestmetric_key_nan_value_desc"


def create_desc_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {DESC_INDEX} ON experiments_latestmetric "
            "(key, is_nan DESC NULLS FIRST, value ASC NULLS FIRST)"
        )


def drop_desc_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {DESC_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="latestmetric",
            name="latestmetric_key_value",
        ),
        migrations.AddIndex(
            model_name="latestmetric",
            index=models.Index(fields=["key", "is_nan", "value"], name="latestmetric_key_nan_value"),
        ),
        migrations.RunPython(create_desc_index, drop_desc_index),
    ]
