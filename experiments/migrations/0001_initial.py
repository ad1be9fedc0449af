# Index choices are explained in the experiments/models.py docstring (search over ~100k runs).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Experiment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=500)),
                ("description", models.TextField(blank=True)),
                (
                    "lifecycle_stage",
                    models.CharField(
                        choices=[("active", "active"), ("deleted", "deleted")], default="active", max_length=16
                    ),
                ),
                ("artifact_location", models.CharField(blank=True, max_length=1000)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="experiments", to="accounts.team"
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        migrations.CreateModel(
            name="ExperimentTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.TextField(blank=True)),
                (
                    "experiment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="tags", to="experiments.experiment"
                    ),
                ),
            ],
            options={
                "ordering": ["key"],
            },
        ),
        migrations.CreateModel(
            name="Run",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("run_uuid", models.CharField(help_text="Public id (32 hex digits).", max_length=32, unique=True)),
                ("name", models.CharField(blank=True, max_length=250)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("RUNNING", "RUNNING"),
                            ("SCHEDULED", "SCHEDULED"),
                            ("FINISHED", "FINISHED"),
                            ("FAILED", "FAILED"),
                            ("KILLED", "KILLED"),
                        ],
                        default="RUNNING",
                        max_length=16,
                    ),
                ),
                ("start_time", models.BigIntegerField(help_text="Milliseconds since the epoch.")),
                ("end_time", models.BigIntegerField(blank=True, help_text="Milliseconds since the epoch.", null=True)),
                (
                    "lifecycle_stage",
                    models.CharField(
                        choices=[("active", "active"), ("deleted", "deleted")], default="active", max_length=16
                    ),
                ),
                ("artifact_uri", models.CharField(blank=True, max_length=1000)),
                (
                    "locked",
                    models.BooleanField(
                        default=False, help_text="A locked (finished) run accepts no more metrics, params or tags."
                    ),
                ),
                (
                    "last_seq",
                    models.BigIntegerField(
                        default=0, help_text="Bumped by every committed change; live events carry it."
                    ),
                ),
                (
                    "experiment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="runs", to="experiments.experiment"
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="runs", to="accounts.team"
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-start_time", "-id"],
            },
        ),
        migrations.CreateModel(
            name="Param",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.TextField(blank=True)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="params", to="experiments.run"
                    ),
                ),
            ],
            options={
                "ordering": ["key"],
            },
        ),
        migrations.CreateModel(
            name="Metric",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.FloatField()),
                ("is_nan", models.BooleanField(default=False)),
                ("timestamp", models.BigIntegerField(help_text="Milliseconds since the epoch.")),
                ("step", models.BigIntegerField(default=0)),
                (
                    "seq",
                    models.BigIntegerField(
                        default=0, help_text="The run's last_seq of the batch that wrote this point."
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="metrics", to="experiments.run"
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="LatestMetric",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.FloatField()),
                ("is_nan", models.BooleanField(default=False)),
                ("timestamp", models.BigIntegerField()),
                ("step", models.BigIntegerField(default=0)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="latest_metrics", to="experiments.run"
                    ),
                ),
            ],
            options={
                "ordering": ["key"],
            },
        ),
        migrations.CreateModel(
            name="RunTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.TextField(blank=True)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="tags", to="experiments.run"
                    ),
                ),
            ],
            options={
                "ordering": ["key"],
            },
        ),
        migrations.AddIndex(
            model_name="experiment",
            index=models.Index(fields=["team", "lifecycle_stage"], name="experiment_team_stage"),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.UniqueConstraint(fields=("team", "name"), name="experiment_unique_team_name"),
        ),
        migrations.AddConstraint(
            model_name="experimenttag",
            constraint=models.UniqueConstraint(fields=("experiment", "key"), name="experimenttag_unique_key"),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["experiment", "lifecycle_stage", "start_time"], name="run_exp_stage_start"),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["team", "lifecycle_stage", "start_time"], name="run_team_stage_start"),
        ),
        migrations.AddIndex(
            model_name="param",
            index=models.Index(fields=["key"], name="param_key"),
        ),
        migrations.AddConstraint(
            model_name="param",
            constraint=models.UniqueConstraint(fields=("run", "key"), name="param_unique_run_key"),
        ),
        migrations.AddIndex(
            model_name="metric",
            index=models.Index(fields=["run", "key", "step"], name="metric_run_key_step"),
        ),
        migrations.AddIndex(
            model_name="metric",
            index=models.Index(fields=["run", "seq"], name="metric_run_seq"),
        ),
        migrations.AddIndex(
            model_name="latestmetric",
            index=models.Index(fields=["key", "value"], name="latestmetric_key_value"),
        ),
        migrations.AddConstraint(
            model_name="latestmetric",
            constraint=models.UniqueConstraint(fields=("run", "key"), name="latestmetric_unique_run_key"),
        ),
        migrations.AddIndex(
            model_name="runtag",
            index=models.Index(fields=["key"], name="runtag_key"),
        ),
        migrations.AddConstraint(
            model_name="runtag",
            constraint=models.UniqueConstraint(fields=("run", "key"), name="runtag_unique_run_key"),
        ),
    ]
