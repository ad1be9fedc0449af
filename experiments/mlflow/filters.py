"""What MLflow's experiment and logged-model searches may name: two schemas of ``experiments.search``.

Both are comparisons joined by ``AND`` over a fixed set of attributes plus ``tags.<key>`` (and, for
logged models, ``params.<key>`` and ``metrics.<key>``: true when any of the model's points of that key
compares true, as in MLflow; NaN only matches ``!=``). The grammar, its errors (with the column), the LIKE semantics and
the ordering are the run filter's own (``experiments.search``); only what may be named differs.
"""

from __future__ import annotations

from experiments.mlflow.models import LoggedModelMetric, LoggedModelParam, LoggedModelTag
from experiments.models import ExperimentTag
from experiments.search import MATCH_OPS, Attribute, Relation, Schema

EXPERIMENTS = Schema(
    attributes={
        "name": Attribute("name"),
        "experiment_id": Attribute("id", "number"),
        "creation_time": Attribute("created_at", "time"),
        "last_update_time": Attribute("updated_at", "time"),
    },
    entities={"tag": Relation(ExperimentTag, "experiment")},
    string_ops=MATCH_OPS,
    tiebreak=("-created_at", "id"),
)
LOGGED_MODELS = Schema(
    attributes={
        "name": Attribute("name"),
        "model_id": Attribute("model_id"),
        "model_type": Attribute("model_type"),
        "status": Attribute("status"),
        "source_run_id": Attribute("source_run__run_uuid"),
        "creation_timestamp": Attribute("creation_timestamp", "number"),
        "creation_time": Attribute("creation_timestamp", "number"),
        "last_updated_timestamp": Attribute("last_updated_timestamp", "number"),
    },
    # Metrics have many points per key: ``order_by`` on them (the latest point) is
    # ``selectors.logged_models_search``' own, so the relation has no ``related_name`` here.
    entities={
        "metric": Relation(LoggedModelMetric, "model", kind="number", nan_field="is_nan"),
        "tag": Relation(LoggedModelTag, "model"),
        "param": Relation(LoggedModelParam, "model"),
    },
    string_ops=MATCH_OPS,
    tiebreak=("-creation_timestamp", "-id"),
)
