"""What MLflow's experiment and logged-model searches may name: two schemas of ``experiments.search``.

Both are comparisons joined by ``AND`` over a fixed set of attributes plus ``tags.<key>`` (and, for
logged models, ``params.<key>``). The grammar, its errors (with the column), the LIKE semantics and
the ordering are the run filter's own (``experiments.search``); only what may be named differs.
"""

from __future__ import annotations

from experiments.mlflow.models import LoggedModelParam, LoggedModelTag
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
    entities={"tag": Relation(LoggedModelTag, "model"), "param": Relation(LoggedModelParam, "model")},
    string_ops=MATCH_OPS,
    tiebreak=("-creation_timestamp", "-id"),
)
