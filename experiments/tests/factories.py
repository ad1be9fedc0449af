"""factory-boy factories for experiments."""

from __future__ import annotations

import uuid

import factory

from accounts.tests.factories import TeamFactory
from experiments.models import Experiment, ExperimentTag, LatestMetric, Metric, Param, Run, RunTag


class ExperimentFactory(factory.django.DjangoModelFactory):
    """An active experiment in a new team."""

    class Meta:
        model = Experiment

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"experiment {n}")
    artifact_location = factory.LazyAttribute(lambda e: "")


class ExperimentTagFactory(factory.django.DjangoModelFactory):
    """A tag on an experiment."""

    class Meta:
        model = ExperimentTag

    experiment = factory.SubFactory(ExperimentFactory)
    key = factory.Sequence(lambda n: f"tag{n}")
    value = "v"


class RunFactory(factory.django.DjangoModelFactory):
    """A running run; its team follows its experiment."""

    class Meta:
        model = Run

    experiment = factory.SubFactory(ExperimentFactory)
    team = factory.LazyAttribute(lambda r: r.experiment.team)
    run_uuid = factory.LazyFunction(lambda: uuid.uuid4().hex)
    name = factory.Sequence(lambda n: f"run-{n}")
    start_time = factory.Sequence(lambda n: 1_700_000_000_000 + n)
    artifact_uri = factory.LazyAttribute(lambda r: f"mlflow-artifacts:/{r.experiment.pk}/{r.run_uuid}/artifacts")
    last_seq = 1


class ParamFactory(factory.django.DjangoModelFactory):
    """A param on a run."""

    class Meta:
        model = Param

    run = factory.SubFactory(RunFactory)
    key = factory.Sequence(lambda n: f"param{n}")
    value = "1"


class RunTagFactory(factory.django.DjangoModelFactory):
    """A tag on a run."""

    class Meta:
        model = RunTag

    run = factory.SubFactory(RunFactory)
    key = factory.Sequence(lambda n: f"tag{n}")
    value = "v"


class MetricFactory(factory.django.DjangoModelFactory):
    """One history point."""

    class Meta:
        model = Metric

    run = factory.SubFactory(RunFactory)
    key = "loss"
    value = 1.0
    timestamp = 1_700_000_000_000
    step = factory.Sequence(lambda n: n)
    seq = 1


class LatestMetricFactory(factory.django.DjangoModelFactory):
    """A run's latest value for a key."""

    class Meta:
        model = LatestMetric

    run = factory.SubFactory(RunFactory)
    key = "loss"
    value = 1.0
    timestamp = 1_700_000_000_000
    step = 0
