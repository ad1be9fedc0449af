"""MLflow's small filter languages for experiments and logged models, on top of ``experiments.search``.

Both are comparisons joined by ``AND`` over a fixed set of attributes plus ``tags.<key>`` (and, for
logged models, ``params.<key>``). They reuse the run filter's tokenizer, error messages (with the
column) and case-sensitive LIKE lookups, so every filter in the product reads the same way. The run
filter itself (OR, parentheses, metrics) is ``experiments.search``, used as is by ``runs/search``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from experiments import search
from experiments.mlflow.models import LoggedModelParam, LoggedModelTag
from experiments.models import ExperimentTag
from mlplatform.errors import InvalidInput

STRING_OPS = {"=": "exact", "!=": "exact", "LIKE": "sql_like", "ILIKE": "sql_ilike"}
NUMBER_OPS = {"=": "exact", "!=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
ENTITY_ALIASES = {
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "tags": "tag",
    "tag": "tag",
    "params": "param",
    "param": "param",
}


@dataclass(frozen=True)
class FilterSpec:
    """What a filter may name: attributes (-> model field, kind) and key/value relations (-> model, fk)."""

    attributes: dict[str, tuple[str, str]]
    related: dict[str, tuple[type[Model], str]] = field(default_factory=dict)
    default_order: tuple[str, ...] = ()


def _identifier(spec: FilterSpec, token: search.Token) -> tuple[str, str]:
    if token.kind != "ident":
        shown = token.text or "end of input"
        raise search.syntax_error(f"expected an attribute or tags.<key>, found {shown!r}.", token.column)
    prefix, dot, rest = token.text.partition(".")
    if not dot:
        prefix, rest = "attribute", token.text
    entity = ENTITY_ALIASES.get(prefix.lower())
    key = rest[1:-1] if rest[:1] in '`"' else rest
    known = (entity == "attribute" and key in spec.attributes) or entity in spec.related
    if not key or not known:
        names = [*sorted(spec.attributes), *(f"{name}s.<key>" for name in spec.related)]
        raise search.syntax_error(f"invalid identifier {token.text!r}; use one of {', '.join(names)}.", token.column)
    return entity or "", key


def _condition(spec: FilterSpec, entity: str, key: str, op: str, value: Any, column: int) -> Q:
    if entity in spec.related:
        if op not in STRING_OPS or not isinstance(value, str):
            raise search.syntax_error(f"{entity}s compare with =, !=, LIKE or ILIKE and a quoted string.", column)
        model, fk = spec.related[entity]
        rows = model.objects.filter(**{fk: OuterRef("pk"), "key": key})
        # As in MLflow (and the run filter): the key must exist, so ``tags.k != 'x'`` skips objects without ``k``.
        matching = ~Q(value__exact=value) if op == "!=" else Q(**{f"value__{STRING_OPS[op]}": value})
        return Q(Exists(rows.filter(matching)))
    model_field, kind = spec.attributes[key]
    if kind == "string":
        if op not in STRING_OPS or not isinstance(value, str):
            raise search.syntax_error(f"{key} compares with =, !=, LIKE or ILIKE and a quoted string.", column)
    elif op not in NUMBER_OPS or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise search.syntax_error(f"{key} compares with =, !=, <, <=, > or >= and a number.", column)
    elif kind == "time":
        try:
            value = datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise search.syntax_error(f"{key} {value} is not a time in milliseconds since the epoch.", column) from None
    lookup = (STRING_OPS if kind == "string" else NUMBER_OPS)[op]
    condition = Q(**{f"{model_field}__{lookup}": value})
    return ~condition if op == "!=" else condition


def compile_filter(spec: FilterSpec, text: str | None) -> Q:
    """Compile ``a = 'x' AND tags.k LIKE 'y%'`` to a Q (empty for no filter); errors name the column."""
    if not text or not text.strip():
        return Q()
    tokens = search.tokenize(text)
    position = 0
    combined = Q()
    for _ in range(search.MAX_COMPARISONS):
        entity, key = _identifier(spec, tokens[position])
        op_token = tokens[position + 1]
        op = op_token.text if op_token.kind in {"op", "keyword"} else ""
        if op not in STRING_OPS and op not in NUMBER_OPS:
            shown = op_token.text or "end of input"
            raise search.syntax_error(
                f"expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE), found {shown!r}.", op_token.column
            )
        value_token = tokens[position + 2] if position + 2 < len(tokens) else tokens[-1]
        if value_token.kind not in {"string", "number"}:
            shown = value_token.text or "end of input"
            raise search.syntax_error(f"expected a quoted string or a number, found {shown!r}.", value_token.column)
        combined &= _condition(spec, entity, key, op, value_token.value, op_token.column)
        position += 3
        following = tokens[position]
        if following.kind == "end":
            return combined
        if following.kind != "keyword" or following.text != "AND":
            raise search.syntax_error(f"expected AND or the end, found {following.text!r}.", following.column)
        position += 1
    raise search.syntax_error(f"more than {search.MAX_COMPARISONS} comparisons.", tokens[position].column)


def ordering(spec: FilterSpec, items: list[tuple[str, bool]]) -> list[str]:
    """``[(attribute, ascending)]`` → ORM ordering, followed by the spec's default order as tie-breaker."""
    result = []
    for index, (name, ascending) in enumerate(items):
        key = name.removeprefix("attributes.").removeprefix("attribute.")
        if key not in spec.attributes:
            raise InvalidInput(f"order_by[{index}] {name!r}: use one of {', '.join(sorted(spec.attributes))}.")
        model_field = spec.attributes[key][0]
        result.append(model_field if ascending else f"-{model_field}")
    return [*result, *spec.default_order]


def parse_order_strings(items: list[str]) -> list[tuple[str, bool]]:
    """``["name ASC", "creation_time DESC"]`` → ``[(name, ascending)]``."""
    parsed = []
    for index, item in enumerate(items):
        parts = item.split()
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if len(parts) not in {1, 2} or direction not in {"ASC", "DESC"}:
            raise InvalidInput(f"order_by[{index}] {item!r}: expected '<attribute> [ASC|DESC]'.")
        parsed.append((parts[0], direction == "ASC"))
    return parsed


def apply(
    spec: FilterSpec, queryset: QuerySet, *, filter_string: str | None, order_by: list[tuple[str, bool]]
) -> QuerySet:
    """Filter and order a queryset of visible objects."""
    return queryset.filter(compile_filter(spec, filter_string)).order_by(*ordering(spec, order_by))


def _experiment_spec() -> FilterSpec:
    return FilterSpec(
        attributes={
            "name": ("name", "string"),
            "experiment_id": ("id", "number"),
            "creation_time": ("created_at", "time"),
            "last_update_time": ("updated_at", "time"),
        },
        related={"tag": (ExperimentTag, "experiment")},
        default_order=("-created_at", "id"),
    )


def _logged_model_spec() -> FilterSpec:
    return FilterSpec(
        attributes={
            "name": ("name", "string"),
            "model_id": ("model_id", "string"),
            "model_type": ("model_type", "string"),
            "status": ("status", "string"),
            "source_run_id": ("source_run__run_uuid", "string"),
            "creation_timestamp": ("creation_timestamp", "number"),
            "creation_time": ("creation_timestamp", "number"),
            "last_updated_timestamp": ("last_updated_timestamp", "number"),
        },
        related={"tag": (LoggedModelTag, "model"), "param": (LoggedModelParam, "model")},
        default_order=("-creation_timestamp", "-id"),
    )


EXPERIMENTS = _experiment_spec()
LOGGED_MODELS = _logged_model_spec()
