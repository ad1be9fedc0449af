"""``python manage.py seed_demo``: a demo team with experiments, runs with curves, models and deployments.

Everything goes through the services (so limits, permissions and events apply) and metrics are
logged in bulk batches. It refuses to run twice: when the demo team exists it says so and stops.
"""

from __future__ import annotations

import io
import math
import random
import struct
import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import Team, User
from accounts.services import team_create
from experiments import artifacts, services
from experiments.limits import MAX_METRICS_PER_BATCH
from experiments.models import Run
from registry import services as registry_services
from registry.models import (
    Alert,
    Alias,
    Deployment,
    DeploymentEvent,
    ModelVersion,
    RegisteredModel,
    StageTransition,
)

TEAM_NAME = "demo"
EXPERIMENTS = [
    ("mnist-cnn", "Small CNNs on MNIST: optimizer and learning-rate sweep.", 14, 400),
    ("bert-finetune-sst2", "Fine-tuning BERT-base on SST-2 sentiment.", 8, 300),
    ("resnet50-imagenet-subset", "ResNet-50 on a 100-class ImageNet subset, augmentation ablation.", 10, 500),
]
STEP_SECONDS = 3
# Registry rows whose times a step of the demo story moves back to when that step "happened".
BACKDATED: list[tuple[Any, tuple[str, ...]]] = [
    (RegisteredModel, ("created_at", "updated_at")),
    (ModelVersion, ("created_at", "updated_at")),
    (StageTransition, ("created_at",)),
    (Alias, ("updated_at",)),
    (Deployment, ("created_at", "updated_at", "went_live_at", "retired_at")),
    (DeploymentEvent, ("created_at",)),
    (Alert, ("raised_at", "resolved_at")),
]
T = TypeVar("T")


def _png(width: int, height: int, pixel: Any) -> bytes:
    """A minimal RGB PNG; ``pixel(x, y)`` returns an (r, g, b) tuple."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def confusion_matrix_png(rng: random.Random, classes: int = 10, cell: int = 22) -> bytes:
    """A confusion-matrix-looking heat map (strong diagonal, a little confusion)."""
    matrix = [
        [(0.85 + rng.random() * 0.1) if i == j else rng.random() * 0.08 for j in range(classes)] for i in range(classes)
    ]

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        value = matrix[y // cell][x // cell]
        return (int(255 - 219 * value), int(255 - 168 * value), int(255 - 41 * value))

    return _png(classes * cell, classes * cell, pixel)


class Command(BaseCommand):
    """Seed a demo team, user, experiments, runs, models, versions, deployments and monitoring points."""

    help = "Create demo data (team 'demo', user 'demo'); refuses to run when the demo team already exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")
        parser.add_argument("--seed", type=int, default=7, help="Random seed, for reproducible curves.")

    def handle(self, *args: Any, **options: Any) -> None:
        if Team.objects.filter(name=TEAM_NAME).exists():
            message = f"Demo data already exists (team {TEAM_NAME!r}); nothing was changed."
            self.stdout.write(self.style.WARNING(message))
            return
        self.rng = random.Random(options["seed"])
        self.now_ms = int(time.time() * 1000)
        with transaction.atomic():
            user = User.objects.filter(username=options["username"]).first()
            if user is None:
                user = User.objects.create_user(username=options["username"], password=options["password"])
            team = team_create(name=TEAM_NAME, creator=user, description="Demo data from seed_demo.")
        runs_by_experiment = {}
        for index, (name, description, run_count, steps) in enumerate(EXPERIMENTS):
            experiment = services.experiment_create(user=user, team=team, name=name, description=description)
            runs_by_experiment[name] = [
                self.make_run(user, experiment, index, number, steps, running=(index == 0 and number == run_count - 1))
                for number in range(run_count)
            ]
            self.stdout.write(f"experiment {name}: {run_count} runs")
        self.make_registry(user, team, runs_by_experiment["mnist-cnn"])
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready. Log in as {options['username']!r} / {options['password']!r}.")
        )

    # Runs -------------------------------------------------------------------------------------

    def make_run(self, user: User, experiment: Any, kind: int, number: int, steps: int, *, running: bool) -> Run:
        """One run with params, tags and four realistic curves (loss, val_loss, accuracy, learning_rate)."""
        rng = self.rng
        lr = rng.choice([0.1, 0.03, 0.01, 0.003, 0.001])
        optimizer = rng.choice(["adam", "sgd", "adamw"])
        batch = rng.choice([32, 64, 128])
        dropout = rng.choice([0.0, 0.1, 0.2, 0.3])
        # Newest experiment first; within one, later-numbered runs started later (a sweep running through the day).
        runs_in_experiment = EXPERIMENTS[kind][2]
        age_hours = 0.5 + kind * 26 + (runs_in_experiment - number) * (0.8 + rng.random() * 0.6)
        start = self.now_ms - int(age_hours * 3600 * 1000)
        step_ms = int((STEP_SECONDS + rng.uniform(-1.2, 1.5)) * 1000)
        # A running run has logged half of its planned steps so far.
        logged = steps // 2 if running else steps
        if running:
            step_ms = STEP_SECONDS * 1000
            start = self.now_ms - logged * step_ms
        run = services.run_create(
            user=user,
            experiment=experiment,
            name=f"{optimizer}-lr{lr}-bs{batch}-{number:02d}",
            start_time=start,
            tags={"model": ["cnn-small", "bert-base", "resnet50"][kind], "git_commit": f"{rng.getrandbits(28):07x}"},
        )
        params = [
            {"key": "learning_rate", "value": str(lr)},
            {"key": "optimizer", "value": optimizer},
            {"key": "batch_size", "value": str(batch)},
            {"key": "dropout", "value": str(dropout)},
            {"key": "epochs", "value": str(steps // 50)},
            {"key": "total_steps", "value": str(steps)},
            {"key": "seed", "value": str(rng.randint(0, 9999))},
        ]
        services.log_batch(user=user, run=run, params=params)
        quality = 1.0 - abs(math.log10(lr) + 2.5) / 3 + (0.05 if optimizer == "adamw" else 0) - dropout * 0.1
        floor = max(0.02, 0.35 - 0.3 * quality)
        tau = steps / (3 + 4 * rng.random())
        overfit = 0.15 * (0.3 - dropout) + 0.02
        points = []
        loss = val = acc = 0.0
        for step in range(logged):
            t = start + step * step_ms
            decay = math.exp(-step / tau)
            loss = floor + (2.3 - floor) * decay + rng.gauss(0, 0.03) * (0.3 + decay)
            val = floor + 0.05 + (2.3 - floor) * decay + overfit * step / steps + rng.gauss(0, 0.02)
            acc = min(0.999, (0.99 - floor / 3) * (1 - decay) + 0.1 * decay + rng.gauss(0, 0.006))
            rate = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            points.append({"key": "loss", "value": round(loss, 5), "timestamp": t, "step": step})
            if step % 5 == 0:
                points.append({"key": "val_loss", "value": round(val, 5), "timestamp": t, "step": step})
                points.append({"key": "accuracy", "value": round(acc, 5), "timestamp": t, "step": step})
            points.append({"key": "learning_rate", "value": rate, "timestamp": t, "step": step})
        for begin in range(0, len(points), MAX_METRICS_PER_BATCH):
            services.log_batch(user=user, run=run, metrics=points[begin : begin + MAX_METRICS_PER_BATCH])
        status = "RUNNING" if running else ("FAILED" if number % 9 == 4 else "FINISHED")
        if status != "RUNNING":
            services.run_update(user=user, run=run, status=status, end_time=start + logged * step_ms)
        artifacts.artifact_write(
            user=user,
            run=run,
            path="metrics_summary.txt",
            stream=io.BytesIO(f"final loss: {loss:.4f}\nfinal val_loss: {val:.4f}\naccuracy: {acc:.4f}\n".encode()),
        )
        if kind == 0:
            artifacts.artifact_write(
                user=user, run=run, path="plots/confusion_matrix.png", stream=io.BytesIO(confusion_matrix_png(rng))
            )
            mlmodel = (
                "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pytorch\n"
                f"run_id: {run.run_uuid}\n"
            )
            artifacts.artifact_write(user=user, run=run, path="model/MLmodel", stream=io.BytesIO(mlmodel.encode()))
        return run

    # Registry ---------------------------------------------------------------------------------

    def at(self, when: datetime, step: Callable[[], T]) -> T:
        """Run one step of the demo story, then date what it wrote (or changed) at ``when``.

        The services stamp rows with the current time; without this every version, stage change,
        deployment and alert of the demo would read "a few seconds ago".
        """
        marker = timezone.now()
        result = step()
        for model, fields in BACKDATED:
            for name in fields:
                model.objects.filter(**{f"{name}__gte": marker}).update(**{name: when})
        return result

    def make_registry(self, user: User, team: Team, runs: list[Run]) -> None:
        """A model with three versions, stages, an alias, two environments, deployments and monitoring.

        The story is dated like a real one: versions over the last days, production's current version
        deployed a few hours ago, and its monitoring (with an error spike and its alert) over the last hour.
        """
        now = timezone.now()
        days = [now - timedelta(days=3, hours=2), now - timedelta(days=2, hours=5), now - timedelta(days=1, hours=3)]
        finished = [run for run in runs if run.status != "RUNNING"][:3]
        model = self.at(
            days[0] - timedelta(hours=1),
            lambda: registry_services.registered_model_create(
                user=user, team=team, name="mnist-classifier", description="Digit classifier served by the demo API."
            ),
        )
        versions = [
            self.at(
                day,
                lambda run=run: registry_services.model_version_create(
                    user=user,
                    model=model,
                    source=f"runs:/{run.run_uuid}/model",
                    run=run,
                    description=f"Trained by {run.name}.",
                ),
            )
            for day, run in zip(days, finished, strict=False)
        ]
        staging = self.at(days[0], lambda: registry_services.environment_create(user=user, team=team, name="staging"))
        production = self.at(
            days[0], lambda: registry_services.environment_create(user=user, team=team, name="production")
        )
        self.at(
            days[0] + timedelta(minutes=20),
            lambda: registry_services.model_version_transition_stage(user=user, version=versions[0], stage="Staging"),
        )
        first = self.at(
            days[0] + timedelta(minutes=25),
            lambda: registry_services.deploy(
                user=user, version=versions[0], environment=staging, endpoint_url="http://staging.internal/mnist"
            ),
        )
        self.at(
            days[0] + timedelta(hours=20),
            lambda: registry_services.model_version_transition_stage(
                user=user, version=versions[0], stage="Production", comment="Passed offline evaluation."
            ),
        )
        self.at(
            days[0] + timedelta(hours=20, minutes=5),
            lambda: registry_services.promote(user=user, deployment=first, endpoint_url="http://prod.internal/mnist"),
        )
        self.at(
            days[0] + timedelta(hours=20, minutes=6),
            lambda: registry_services.alias_set(user=user, model=model, alias="baseline", version=versions[0]),
        )
        self.at(
            days[1] + timedelta(minutes=30),
            lambda: registry_services.model_version_transition_stage(user=user, version=versions[1], stage="Staging"),
        )
        self.at(
            days[1] + timedelta(minutes=40),
            lambda: registry_services.deploy(user=user, version=versions[1], environment=staging),
        )
        self.at(
            now - timedelta(hours=4),
            lambda: registry_services.alias_set(user=user, model=model, alias="champion", version=versions[1]),
        )
        live = self.at(
            now - timedelta(hours=4),
            lambda: registry_services.deploy(
                user=user, version=versions[1], environment=production, endpoint_url="http://prod.internal/mnist"
            ),
        )
        self.at(
            now - timedelta(hours=4),
            lambda: registry_services.alert_rule_create(
                user=user, deployment=live, metric="error_rate", comparison="gt", threshold=0.05, window_seconds=300
            ),
        )
        self.at(
            now - timedelta(days=1),
            lambda: registry_services.registered_model_create(
                user=user, team=team, name="sst2-sentiment", description="Sentiment model (no versions yet)."
            ),
        )
        self.monitoring(user, live)
        self.stdout.write("registry: 2 models, 3 versions, 2 environments, 4 deployments")

    def monitoring(self, user: User, deployment: Any) -> None:
        """An hour of latency, error rate and drift points, one every 30 s (each dated, with its alerts)."""
        rng = self.rng
        count = 120
        batch: list[dict[str, Any]] = []
        for i in range(count):
            t = self.now_ms - (count - i) * 30_000
            spike = 1.0 if 80 <= i < 90 else 0.0
            latency = 42 + 6 * math.sin(i / 9) + rng.gauss(0, 3) + 60 * spike
            errors = max(0.0, 0.01 + rng.gauss(0, 0.004) + 0.06 * spike)
            drift = 0.1 + i / count * 0.15 + rng.gauss(0, 0.01)
            batch.append({"key": "latency_ms", "value": round(latency, 2), "timestamp": t})
            batch.append({"key": "error_rate", "value": round(errors, 4), "timestamp": t})
            batch.append({"key": "drift_score", "value": round(drift, 4), "timestamp": t})
            # One batch per 2.5 minutes, as a sidecar would post them; alerts are dated with their batch.
            if len(batch) == 15 or i == count - 1:
                points, batch = batch, []
                self.at(
                    datetime.fromtimestamp(t / 1000, tz=timezone.get_current_timezone()),
                    lambda points=points: registry_services.monitoring_ingest(
                        user=user, deployment=deployment, metrics=points
                    ),
                )
