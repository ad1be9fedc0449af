"""What MLflow's registry searches may name: two schemas of ``experiments.search``.

``search_registered_models`` filters on ``name`` and ``tags.<key>``; ``search_model_versions`` also on
``run_id``, ``source_path``, ``version_number`` and ``current_stage``. Both join comparisons by ``AND``
(as MLflow does); ``IN``/``NOT IN`` apply to ``name``, ``run_id`` and ``version_number``, ``<``/``>`` to
``version_number`` only. Grammar, errors, LIKE semantics, ordering and page tokens are the run
filter's own; timestamps are ``order_by`` keys only, ``run_id``, ``source_path`` and ``current_stage``
filter terms only.
"""

from __future__ import annotations

from experiments.search import MATCH_OPS, STRING_OPS, Attribute, Relation, Schema
from registry.models import ModelVersionTag, RegisteredModelTag

TIMESTAMPS = {
    "creation_timestamp": Attribute("created_at", filterable=False),
    "last_updated_timestamp": Attribute("updated_at", filterable=False),
    "timestamp": Attribute("updated_at", filterable=False),
}
MODELS = Schema(
    attributes={
        "name": Attribute("name", ops=STRING_OPS),
        **TIMESTAMPS,
    },
    entities={"tag": Relation(RegisteredModelTag, "model")},
    string_ops=MATCH_OPS,
    default_order=("name",),
    tiebreak=("pk",),
)
VERSIONS = Schema(
    attributes={
        "name": Attribute("model__name", ops=STRING_OPS),
        "run_id": Attribute("run__run_uuid", ops=STRING_OPS, sortable=False),
        "source_path": Attribute("source", sortable=False),
        "version_number": Attribute("version", "version"),
        "current_stage": Attribute("current_stage", sortable=False),
        **TIMESTAMPS,
    },
    entities={"tag": Relation(ModelVersionTag, "version")},
    string_ops=MATCH_OPS,
    default_order=("model__name", "-version"),
    tiebreak=("pk",),
)
