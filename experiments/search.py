"""The one filter language of the product, and ``order_by``, driven by a ``Schema``.

Runs (native API, pages, MLflow ``runs/search``), MLflow experiments and logged models, and registry
models and versions all use this grammar; a ``Schema`` says what a search may name. Grammar (keywords
are case-insensitive)::

    filter      := or_expr
    or_expr     := and_expr ("OR" and_expr)*              (OR only where the schema allows it)
    and_expr    := primary ("AND" primary)*
    primary     := "(" or_expr ")" | comparison          (parentheses only where OR is allowed)
    comparison  := identifier operator value
    identifier  := entity "." key | attribute          e.g. metrics.acc, params.`my param`, run_name
    entity      := metrics | metric | params | param | parameters | tags | tag | attributes | attribute | attr | run
    operator    := = | != | <> | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value       := 'string' | "string" | number | "(" value ("," value)* ")"

Text is parsed once into a tree (``parse_filter``), then compiled into ORM conditions: ``EXISTS``
over the schema's key/value models (``LatestMetric``/``Param``/``RunTag`` for runs) for entities,
plain columns for attributes. Values only ever reach the database as query parameters. Errors are
``InvalidInput`` naming the column where parsing stopped. Without a schema, everything is about runs
(``RUNS``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from django.core import signing
from django.db.models import (
    CharField,
    Exists,
    F,
    FilteredRelation,
    Lookup,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.constants import LOOKUP_SEP

from experiments.models import LatestMetric, Param, RunTag
from mlplatform.errors import InvalidInput

Entity = Literal["metric", "param", "tag", "attribute"]
Kind = Literal["string", "number", "time", "version"]

ENTITY_ALIASES: dict[str, Entity] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
PLURALS: dict[str, str] = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}
NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
MATCH_OPS = ("=", "!=", "LIKE", "ILIKE")  # MLflow's experiment, logged-model and registry searches
KIND_OPS: dict[str, tuple[str, ...]] = {
    "number": NUMERIC_OPS,
    "time": NUMERIC_OPS,
    "version": (*NUMERIC_OPS, "IN", "NOT IN"),
}
NEGATIONS = {"!=": "=", "NOT IN": "IN"}
KEYWORDS = {"AND", "OR", "LIKE", "ILIKE", "IN", "NOT", "ASC", "DESC"}
# Parentheses nest at most this deep: the parser recurses once per level, far below Python's stack limit.
MAX_NESTING = 100
# Comparisons per filter: SQLite refuses expressions nested deeper than 1000 (an AND/OR chain nests there),
# which would be a 500; no real search needs more.
MAX_COMPARISONS = 200
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_VERSION = 2**31 - 1  # registry ModelVersion.version is a PositiveIntegerField


# Schemas ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """A column a search may name: its ORM path and kind of value.

    ``ops`` narrows the kind's operators; ``filterable``/``sortable`` say whether it may be a filter
    term and an ``order_by`` key; ``nullable`` makes ``!=``/``NOT IN`` skip rows where the column is
    NULL (as ``=`` does).
    """

    field: str
    kind: Kind = "string"
    ops: tuple[str, ...] | None = None
    filterable: bool = True
    sortable: bool = True
    nullable: bool = False


@dataclass(frozen=True)
class Relation:
    """Key/value rows of an entity (metrics, params, tags): their model, the FK to the searched object.

    ``related_name`` (the reverse accessor) makes the entity an ``order_by`` key; ``nan_field`` marks
    numeric rows whose NaN values no comparison but ``!=`` matches (and which sort after numbers).
    """

    model: type[Model]
    owner: str
    related_name: str | None = None
    kind: Kind = "string"
    nan_field: str | None = None


@dataclass(frozen=True)
class Schema:
    """What one search may name, and how its results are ordered.

    ``boolean`` allows OR and parentheses (runs); MLflow's other searches join comparisons by AND only.
    ``string_ops`` are the operators of string attributes and relations without their own ``ops``.
    Results are ordered by the ``order_by`` keys (``default_order`` when there are none), then ``tiebreak``;
    ``nulls_last`` sorts missing values last (runs' optional columns).
    """

    attributes: dict[str, Attribute]
    entities: dict[str, Relation] = field(default_factory=dict)
    boolean: bool = False
    string_ops: tuple[str, ...] = STRING_OPS
    default_order: tuple[str, ...] = ()
    tiebreak: tuple[str, ...] = ()
    nulls_last: bool = False

    def kind_and_ops(self, identifier: Identifier) -> tuple[Kind, tuple[str, ...]]:
        """The value kind of an identifier and the operators it takes."""
        if identifier.entity == "attribute":
            attribute = self.attributes[identifier.key]
            kind, ops = attribute.kind, attribute.ops
        else:
            kind, ops = self.entities[identifier.entity].kind, None
        return kind, ops or (self.string_ops if kind == "string" else KIND_OPS[kind])

    def prefixes(self) -> list[str]:
        """The entity prefixes this schema knows, ``attributes`` last."""
        return [*(PLURALS[entity] for entity in self.entities), "attributes"]


def _or_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


RUNS = Schema(
    attributes={
        "run_id": Attribute("run_uuid"),
        "run_name": Attribute("name"),
        "status": Attribute("status"),
        "user_id": Attribute("user__username"),
        "artifact_uri": Attribute("artifact_uri"),
        "lifecycle_stage": Attribute("lifecycle_stage"),
        "start_time": Attribute("start_time", "number"),
        "created": Attribute("start_time", "number"),
        "end_time": Attribute("end_time", "number", nullable=True),
    },
    entities={
        "metric": Relation(LatestMetric, "run", "latest_metrics", kind="number", nan_field="is_nan"),
        "param": Relation(Param, "run", "params"),
        "tag": Relation(RunTag, "run", "tags"),
    },
    boolean=True,
    tiebreak=("-start_time", "-id"),
    nulls_last=True,
)


# Tokens ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A lexical token and the 1-based column where it starts."""

    kind: str  # ident, keyword, op, string, number, lparen, rparen, comma, end
    text: str
    column: int
    value: Any = None


TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<ident>[A-Za-z_][\w]*(?:\.(?:`[^`]*`|"[^"]*"|[\w.\-/:]+))?)
    """,
    re.VERBOSE,
)


def syntax_error(message: str, column: int) -> InvalidInput:
    """An ``InvalidInput`` saying where the problem is."""
    return InvalidInput(
        f"Invalid filter at column {column}: {message}", details={"column": column}, code="invalid_filter"
    )


def _unquote(text: str) -> str:
    quote = text[0]
    return re.sub(r"\\([\\" + quote + "])", r"\1", text[1:-1])


def _number(raw: str, column: int) -> int | float:
    """A numeric literal: integers must fit int64 (the database's bigint), floats must be finite."""
    if re.fullmatch(r"[-+]?\d+", raw):
        # Length first: int() of thousands of digits is slow, and past 4300 digits a ValueError.
        digits = raw.lstrip("+-").lstrip("0") or "0"
        value = int(digits) * (-1 if raw.startswith("-") else 1) if len(digits) <= 19 else None
        if value is not None and INT64_MIN <= value <= INT64_MAX:
            return value
    else:
        number = float(raw)
        if math.isfinite(number):
            return number
    shown = raw if len(raw) <= 20 else raw[:20] + "..."
    raise syntax_error(f"number {shown} is out of range.", column)


def tokenize(text: str) -> list[Token]:
    """Split filter text into tokens; unknown characters are an error at their column."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = TOKEN_RE.match(text, pos)
        if match is None:
            snippet = text[pos : pos + 10]
            if text[pos] in "'\"":
                raise syntax_error(f"unterminated string starting {snippet!r}.", pos + 1)
            raise syntax_error(f"unexpected text {snippet!r}.", pos + 1)
        kind = match.lastgroup or ""
        raw = match.group()
        column = pos + 1
        pos = match.end()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Token("string", raw, column, _unquote(raw)))
        elif kind == "number":
            tokens.append(Token("number", raw, column, _number(raw, column)))
        elif kind == "ident" and raw.upper() in KEYWORDS:
            tokens.append(Token("keyword", raw.upper(), column))
        else:
            tokens.append(Token(kind, raw, column))
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# Tree ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identifier:
    """What a comparison or sort key is about: ``metric``/``param``/``tag`` with a key, or an attribute."""

    entity: Entity
    key: str
    column: int


@dataclass(frozen=True)
class Comparison:
    """``identifier op value``."""

    identifier: Identifier
    op: str
    value: Any


@dataclass(frozen=True)
class BoolOp:
    """``AND``/``OR`` over two or more children."""

    op: Literal["AND", "OR"]
    children: tuple[Any, ...]


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` entry."""

    identifier: Identifier
    ascending: bool


def parse_identifier(token: Token, schema: Schema = RUNS, *, sorting: bool = False) -> Identifier:
    """``metrics.acc`` / ``params.`a b``` / ``run_name`` → Identifier, checked against the schema.

    ``sorting`` checks it may be an ``order_by`` key rather than a filter term.
    """
    if token.kind != "ident":
        shown = token.text or "end of input"
        names = [f"{prefix}.<key>" for prefix in schema.prefixes()[:-1]] + ["attributes.<name>"]
        raise syntax_error(f"expected a name like {_or_list(names)}, found {shown!r}.", token.column)
    prefix, dot, rest = token.text.partition(".")
    usable = {name for name, a in schema.attributes.items() if (a.sortable if sorting else a.filterable)}
    if not dot:
        if token.text in usable:
            return Identifier("attribute", token.text, token.column)
        prefixes = _or_list([f"{p}." for p in schema.prefixes()])
        raise syntax_error(
            f"unknown identifier {token.text!r}: it is not an attribute ({', '.join(sorted(usable))}), and any"
            f" other name needs an entity prefix ({prefixes}).",
            token.column,
        )
    entity = ENTITY_ALIASES.get(prefix.lower())
    if entity is None or (entity != "attribute" and entity not in schema.entities):
        raise syntax_error(f"unknown entity {prefix!r}; use {_or_list(schema.prefixes())}.", token.column)
    key = rest[1:-1] if rest[:1] in '`"' else rest
    if not key:
        raise syntax_error("empty key name.", token.column)
    if entity == "attribute" and key not in usable:
        raise syntax_error(f"unknown attribute {key!r}; use one of {', '.join(sorted(usable))}.", token.column)
    if sorting and entity != "attribute" and schema.entities[entity].related_name is None:
        raise syntax_error(f"results cannot be ordered by {PLURALS[entity]}.", token.column)
    return Identifier(entity, key, token.column)


class _Parser:
    def __init__(self, text: str, schema: Schema) -> None:
        self.tokens = tokenize(text)
        self.schema = schema
        self.pos = 0
        self.depth = 0
        self.comparisons = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at_keyword(self, word: str) -> bool:
        return self.token.kind == "keyword" and self.token.text == word

    def parse(self) -> Any:
        node = self.or_expr()
        if self.token.kind != "end":
            expected = "AND, OR or the end" if self.schema.boolean else "AND or the end"
            raise syntax_error(f"expected {expected}, found {self.token.text!r}.", self.token.column)
        return node

    def or_expr(self) -> Any:
        children = [self.and_expr()]
        while self.schema.boolean and self.at_keyword("OR"):
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else BoolOp("OR", tuple(children))

    def and_expr(self) -> Any:
        children = [self.primary()]
        while self.at_keyword("AND"):
            self.take()
            children.append(self.primary())
        return children[0] if len(children) == 1 else BoolOp("AND", tuple(children))

    def primary(self) -> Any:
        if self.schema.boolean and self.token.kind == "lparen":
            opening = self.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise syntax_error(f"parentheses nested deeper than {MAX_NESTING} levels.", opening.column)
            node = self.or_expr()
            if self.token.kind != "rparen":
                shown = self.token.text or "end of input"
                raise syntax_error(f"expected ')', found {shown!r}.", self.token.column)
            self.take()
            self.depth -= 1
            return node
        return self.comparison()

    def operator(self) -> tuple[str, int]:
        token = self.take()
        if token.kind == "op":
            return ("!=" if token.text == "<>" else token.text), token.column
        if token.kind == "keyword" and token.text in {"LIKE", "ILIKE", "IN"}:
            return token.text, token.column
        if token.kind == "keyword" and token.text == "NOT":
            if not self.at_keyword("IN"):
                shown = self.token.text or "end of input"
                raise syntax_error(f"expected IN after NOT, found {shown!r}.", self.token.column)
            self.take()
            return "NOT IN", token.column
        shown = token.text or "end of input"
        raise syntax_error(
            f"expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN), found {shown!r}.", token.column
        )

    def value(self) -> Any:
        token = self.take()
        if token.kind in {"string", "number"}:
            return token.value
        shown = token.text or "end of input"
        raise syntax_error(f"expected a value (a quoted string or a number), found {shown!r}.", token.column)

    def value_list(self) -> tuple[Any, ...]:
        if self.token.kind != "lparen":
            raise syntax_error("IN needs a parenthesised list, e.g. ('a', 'b').", self.token.column)
        self.take()
        values = [self.value()]
        while self.token.kind == "comma":
            self.take()
            values.append(self.value())
        if self.token.kind != "rparen":
            shown = self.token.text or "end of input"
            raise syntax_error(f"expected ',' or ')', found {shown!r}.", self.token.column)
        self.take()
        return tuple(values)

    def comparison(self) -> Comparison:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise syntax_error(f"more than {MAX_COMPARISONS} comparisons.", self.token.column)
        identifier = parse_identifier(self.take(), self.schema)
        op, op_column = self.operator()
        value_column = self.token.column
        value = self.value_list() if op in {"IN", "NOT IN"} else self.value()
        return _checked(self.schema, Comparison(identifier, op, value), op_column, value_column)


def _checked(schema: Schema, node: Comparison, op_column: int, value_column: int) -> Comparison:
    """Check the operator and values fit the identifier's kind; times and versions are converted."""
    kind, allowed = schema.kind_and_ops(node.identifier)
    if node.op not in allowed:
        raise syntax_error(
            f"operator {node.op} cannot be used with {_describe(node.identifier)}; use one of {', '.join(allowed)}.",
            op_column,
        )
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    try:
        converted = tuple(CONVERTERS[kind](value) for value in values)
    except (TypeError, ValueError, OverflowError, OSError):
        raise syntax_error(f"{_describe(node.identifier)} {KIND_NAMES[kind]}.", value_column) from None
    return Comparison(node.identifier, node.op, converted if isinstance(node.value, tuple) else converted[0])


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _number_value(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError
    return value


def _time(value: Any) -> datetime:
    """Milliseconds since the epoch as an aware datetime."""
    return datetime.fromtimestamp(_number_value(value) / 1000, tz=UTC)


def _version(value: Any) -> int:
    """A whole version number, quoted or not (length checked first: int() of 5000 digits is a ValueError)."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    digits = text.lstrip("0") or "0"
    if not text.isascii() or not text.isdigit() or len(digits) > 10 or int(digits) > MAX_VERSION:
        raise ValueError
    return int(digits)


CONVERTERS: dict[str, Any] = {"string": _string, "number": _number_value, "time": _time, "version": _version}
KIND_NAMES = {
    "string": "must be compared with a quoted string",
    "number": "must be compared with a number",
    "time": "must be compared with a time in milliseconds since the epoch",
    "version": f"must be compared with a version number from 0 to {MAX_VERSION}",
}


def _describe(identifier: Identifier) -> str:
    if identifier.entity == "attribute":
        return f"attribute {identifier.key!r}"
    return f"{identifier.entity} {identifier.key!r}"


def parse_filter(text: str | None, schema: Schema = RUNS) -> Any:
    """Parse filter text into a tree of ``BoolOp``/``Comparison``; None for an empty filter."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput("filter must be a string.", code="invalid_filter")
    if not text.strip():
        return None
    return _Parser(text, schema).parse()


def parse_order_by(items: Sequence[str | tuple[str, bool]] | None, schema: Schema = RUNS) -> list[OrderKey]:
    """Parse ``["metrics.acc DESC", "params.lr", "start_time ASC"]`` into order keys.

    An item may also be a ``(name, ascending)`` pair (MLflow's logged-model search sends those).
    """
    keys: list[OrderKey] = []
    for index, item in enumerate(items or ()):
        text, ascending = item if isinstance(item, tuple) else (item, None)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"order_by[{index}] must be a non-empty string.", code="invalid_order_by")
        try:
            tokens = tokenize(text)
            identifier = parse_identifier(tokens[0], schema, sorting=True)
            rest = tokens[1:-1]
            if ascending is None:
                ascending = True
                if rest and rest[0].kind == "keyword" and rest[0].text in {"ASC", "DESC"}:
                    ascending = rest[0].text == "ASC"
                    rest = rest[1:]
            if rest:
                raise syntax_error(f"expected ASC, DESC or the end, found {rest[0].text!r}.", rest[0].column)
        except InvalidInput as exc:
            raise InvalidInput(
                f"order_by[{index}] {text!r}: {exc.message}", details=exc.details, code="invalid_order_by"
            ) from exc
        keys.append(OrderKey(identifier, ascending))
    return keys


# Compilation -----------------------------------------------------------------------------------


class SqlLike(Lookup):
    """SQL ``LIKE`` with MLflow semantics: case-sensitive, ``%``/``_`` wildcards, ``\\`` escapes."""

    lookup_name = "sql_like"
    operator = "LIKE"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        """PostgreSQL and others: LIKE is case-sensitive already."""
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} {self.operator} {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        """SQLite's LIKE ignores ASCII case, so a case-sensitive LIKE is run as GLOB."""
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} GLOB {rhs}", [*lhs_params, *[like_to_glob(p) for p in rhs_params]]


class SqlILike(SqlLike):
    """Case-insensitive ``LIKE`` (ASCII case on SQLite)."""

    lookup_name = "sql_ilike"
    operator = "ILIKE"

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        """SQLite's LIKE is case-insensitive for ASCII."""
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]


CharField.register_lookup(SqlLike)
CharField.register_lookup(SqlILike)
TextField.register_lookup(SqlLike)
TextField.register_lookup(SqlILike)


def like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, ``\\`` escapes) to an equivalent GLOB pattern."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            literal = next(chars, "\\")
            out.append(f"[{literal}]" if literal in "*?[" else literal)
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    return "".join(out)


STRING_LOOKUPS = {"=": "exact", "LIKE": "sql_like", "ILIKE": "sql_ilike", "IN": "in"}
NUMBER_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
LOOKUPS = {**STRING_LOOKUPS, **NUMBER_LOOKUPS}


def _value_condition(field: str, op: str, value: Any) -> Q:
    """``field op value`` as a Q; ``!=`` and ``NOT IN`` are negations of ``=`` and ``IN``."""
    if op in NEGATIONS:
        return ~_value_condition(field, NEGATIONS[op], value)
    return Q(**{f"{field}__{LOOKUPS[op]}": list(value) if op == "IN" else value})


def compile_comparison(node: Comparison, schema: Schema = RUNS) -> Q:
    """One comparison as a Q: EXISTS over the entity's rows (the key must exist, even for ``!=``), or a column test."""
    ident = node.identifier
    if ident.entity == "attribute":
        attribute = schema.attributes[ident.key]
        condition = _value_condition(attribute.field, node.op, node.value)
        if node.op in NEGATIONS and attribute.nullable:
            condition &= Q(**{f"{attribute.field}__isnull": False})
        return condition
    relation = schema.entities[ident.entity]
    rows = relation.model.objects.filter(**{relation.owner: OuterRef("pk")}, key=ident.key)
    if relation.nan_field is None:
        return Q(Exists(rows.filter(_value_condition("value", node.op, node.value))))
    # NaN never satisfies a numeric comparison; != matches it (as IEEE says NaN != x).
    if node.op == "!=":
        return Q(Exists(rows.filter(Q(**{relation.nan_field: True}) | ~Q(value=node.value))))
    condition = _value_condition("value", node.op, node.value)
    return Q(Exists(rows.filter(condition, **{relation.nan_field: False})))


def compile_filter(node: Any, schema: Schema = RUNS) -> Q:
    """A parsed filter tree as one Q over the schema's model (an empty Q for no filter)."""
    if node is None:
        return Q()
    if isinstance(node, Comparison):
        return compile_comparison(node, schema)
    compiled = [compile_filter(child, schema) for child in node.children]
    combined = compiled[0]
    for condition in compiled[1:]:
        combined = combined & condition if node.op == "AND" else combined | condition
    return combined


def apply_order_by(queryset: QuerySet, keys: list[OrderKey], schema: Schema = RUNS) -> QuerySet:
    """Order by the keys (runs: missing values last, NaN after numbers), then the schema's tie-breakers."""
    ordering: list[Any] = []
    relations: dict[str, Any] = {}
    for index, key in enumerate(keys):
        ident = key.identifier

        def direction(expr: Any, asc: bool = key.ascending) -> Any:
            nulls_last = True if schema.nulls_last else None
            return expr.asc(nulls_last=nulls_last) if asc else expr.desc(nulls_last=nulls_last)

        if ident.entity == "attribute":
            ordering.append(direction(F(schema.attributes[ident.key].field)))
            continue
        alias = f"_order_{index}"
        relation = schema.entities[ident.entity]
        name = relation.related_name or ""
        relations[alias] = FilteredRelation(name, condition=Q(**{f"{name}__key": ident.key}))
        if relation.nan_field:
            ordering.append(F(f"{alias}__{relation.nan_field}").asc(nulls_last=True))
        ordering.append(direction(F(f"{alias}__value")))
    if relations:
        queryset = queryset.annotate(**relations)
    return queryset.order_by(*(ordering or schema.default_order), *schema.tiebreak)


def apply(
    schema: Schema,
    queryset: QuerySet,
    *,
    filter_string: str | None,
    order_by: Sequence[str | tuple[str, bool]] | None,
) -> QuerySet:
    """Filter and order ``queryset`` (objects the caller may see) with the schema's grammar."""
    tree = parse_filter(filter_string, schema)
    keys = parse_order_by(order_by, schema)
    return apply_order_by(queryset.filter(compile_filter(tree, schema)), keys, schema)


def metric_tests_on(tree: Any, key: str, alias: str) -> Q | None:
    """The filter's AND-ed numeric tests on metric ``key`` restated on a join ``alias`` (None if it has none).

    ``metrics.acc > 0.5 ... ORDER BY metrics.acc`` compiles to an ``EXISTS`` on one alias and a LEFT JOIN
    (the sort) on another; PostgreSQL cannot tell they are the same row (unique run+key), so it sorts every
    matching run before taking a page. The same tests on the sort alias make the join inner and let it walk
    ``latestmetric (key, is_nan, value)`` in order and stop after one page. Only rows with a number pass them,
    so they select exactly the runs the ``EXISTS`` does.
    """

    def conjuncts(node: Any) -> list[Any]:
        if isinstance(node, BoolOp) and node.op == "AND":
            return [term for child in node.children for term in conjuncts(child)]
        return [] if node is None else [node]

    condition = None
    for term in conjuncts(tree):
        ident = getattr(term, "identifier", None)
        if ident is None or ident.entity != "metric" or ident.key != key or term.op not in NUMBER_LOOKUPS:
            continue
        test = Q(**{f"{alias}__value__{NUMBER_LOOKUPS[term.op]}": term.value})
        condition = test if condition is None else condition & test
    return condition


# Page tokens -----------------------------------------------------------------------------------


def encode_page_token(offset: int) -> str:
    """An opaque token for the next page."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset in a page token; a malformed token is a 400."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput("Invalid page token.", details={"page_token": ["Malformed."]}) from exc
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("Invalid page token.", details={"page_token": ["Malformed."]})
    return offset


def page(queryset: QuerySet, *, page_token: str | None, max_results: int) -> tuple[list[Any], str | None]:
    """One page of an ordered queryset from a page token: (rows, next page token or None)."""
    offset = decode_page_token(page_token)
    rows = list(queryset[offset : offset + max_results + 1])
    return rows[:max_results], encode_page_token(offset + max_results) if len(rows) > max_results else None


# Keyset positions ------------------------------------------------------------------------------
#
# A keyset page token holds where the last row of a page sits in ``apply_order_by``'s order, and the
# next page is the rows strictly after it: rows added or re-sorted meanwhile are neither repeated nor
# skipped, and a deep page costs what the first does. Each ``order_by`` key contributes a (rank, value):
# rank 0 has a value, 1 is a NaN metric (its stored value, 0, still sorts within the rank), 2 is missing.

RANK_VALUE, RANK_NAN, RANK_MISSING = 0, 1, 2
KEYSET_SALT = "experiments.search.keyset"
# Longer strings stay out of the token (the native API takes tokens of up to 1000 characters): the next
# page reads them from the last row itself, by its id.
MAX_TOKEN_STRING = 100
BAD_PAGE = "Invalid page token."


class _FromRow:
    """A key value left out of a token: the next page reads it from the position's row."""

    def __repr__(self) -> str:
        return "FROM_ROW"


FROM_ROW: Any = _FromRow()


@dataclass(frozen=True)
class Position:
    """Where a row sits in an ``apply_order_by`` order.

    ``keys``: each ``order_by`` key's (rank, value), value None when missing or ``FROM_ROW``;
    ``tiebreak``: the row's values of the schema's tie-breakers (runs: start_time, id).
    """

    keys: tuple[tuple[int, Any], ...]
    tiebreak: tuple[Any, ...]


def keyset_signature(*parts: Any) -> str:
    """A short digest of what a token is valid for (filter, order_by, scope): another search refuses it."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def order_signature(keys: Sequence[OrderKey]) -> list[Any]:
    """``order_by`` keys in a canonical form (``metrics.x DESC`` and ``metric.x desc`` are one sort)."""
    return [[key.identifier.entity, key.identifier.key, key.ascending] for key in keys]


def _token_value(value: Any) -> Any:
    return FROM_ROW if isinstance(value, str) and len(value) > MAX_TOKEN_STRING else value


def encode_position(position: Position, signature: str) -> str:
    """A signed, opaque page token for the rows after ``position`` (long strings left out)."""
    keys = []
    for rank, value in position.keys:
        value = _token_value(value)
        keys.append([rank] if value is FROM_ROW else [rank, value])
    data = {"k": signature, "c": keys, "t": list(position.tiebreak)}
    return signing.dumps(data, salt=KEYSET_SALT, compress=True)


def _ranks(key: OrderKey, schema: Schema, model: type[Model]) -> tuple[int, ...]:
    ident = key.identifier
    if ident.entity == "attribute":
        nullable = _nullable(model, schema.attributes[ident.key].field)
        return (RANK_VALUE, RANK_MISSING) if nullable else (RANK_VALUE,)
    if schema.entities[ident.entity].nan_field:
        return (RANK_VALUE, RANK_NAN, RANK_MISSING)
    return (RANK_VALUE, RANK_MISSING)


def _valid_value(rank: int, value: list[Any], kind: Kind) -> bool:
    if rank == RANK_MISSING:
        return value == [None]
    if not value:  # FROM_ROW: strings only
        return kind == "string"
    item = value[0]
    if kind == "string":
        return isinstance(item, str)
    return isinstance(item, (int, float)) and not isinstance(item, bool)


def decode_position(
    token: str | None, signature: str, keys: Sequence[OrderKey], schema: Schema = RUNS, *, model: type[Model]
) -> Position | None:
    """The position in a keyset page token; tampered, malformed or made for another search → a 400."""
    if not token:
        return None
    try:
        data = signing.loads(token, salt=KEYSET_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise InvalidInput(BAD_PAGE, details={"page_token": ["Malformed."]}) from exc
    if not isinstance(data, dict) or data.get("k") != signature:
        raise InvalidInput(BAD_PAGE, details={"page_token": ["Made for another search (filter or order_by)."]})
    entries, tiebreak = data.get("c"), data.get("t")
    valid = (
        isinstance(entries, list)
        and len(entries) == len(keys)
        and isinstance(tiebreak, list)
        and len(tiebreak) == len(schema.tiebreak)
        and all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in tiebreak)
    )
    decoded: list[tuple[int, Any]] = []
    for key, entry in zip(keys, entries if valid else [], strict=False):
        if not (isinstance(entry, list) and 1 <= len(entry) <= 2 and entry[0] in _ranks(key, schema, model)):
            valid = False
            break
        rank, value = entry[0], entry[1:]
        kind = schema.kind_and_ops(key.identifier)[0]
        if not _valid_value(rank, value, kind):
            valid = False
            break
        decoded.append((rank, value[0] if value else FROM_ROW))
    if not valid:
        raise InvalidInput(BAD_PAGE, details={"page_token": ["Malformed."]})
    return Position(tuple(decoded), tuple(tiebreak))


def _nullable(model: type[Model], path: str) -> bool:
    """Whether ``path`` (``end_time``, ``user__username``) can be NULL: a nullable column or relation on the way."""
    for name in path.split(LOOKUP_SEP):
        found = model._meta.get_field(name)
        if found.null:
            return True
        if found.related_model is None:
            return False
        model = found.related_model
    return False


def _tiebreak_bounds(schema: Schema, position: Position) -> list[tuple[Q | None, Q]]:
    bounds: list[tuple[Q | None, Q]] = []
    for name, value in zip(schema.tiebreak, position.tiebreak, strict=True):
        column = name.lstrip("-")
        beyond = "lt" if name.startswith("-") else "gt"
        bounds.append((Q(**{f"{column}__{beyond}": value}), Q(**{column: value})))
    return bounds


def _key_bounds(
    index: int, key: OrderKey, rank: int, value: Any, schema: Schema, model: type[Model], pk: Any
) -> tuple[Q | None, Q]:
    """(rows after the position on this key alone, rows level with it), as ``apply_order_by`` sorts the key."""
    ident = key.identifier
    beyond = "gt" if key.ascending else "lt"
    if ident.entity == "attribute":
        path = schema.attributes[ident.key].field
        missing = Q(**{f"{path}__isnull": True})
        if rank == RANK_MISSING:
            return None, missing
        if value is FROM_ROW:
            value = Subquery(model._default_manager.filter(pk=pk).values(path)[:1])
        after = Q(**{f"{path}__{beyond}": value})
        return (after | missing if _nullable(model, path) else after), Q(**{path: value})
    relation = schema.entities[ident.entity]
    column = f"_order_{index}__value"
    if value is FROM_ROW:
        rows = relation.model._default_manager.filter(**{relation.owner: pk}, key=ident.key)
        value = Subquery(rows.values("value")[:1])
    if relation.nan_field is None:
        missing = Q(**{f"{column}__isnull": True})
        if rank == RANK_MISSING:
            return None, missing
        return Q(**{f"{column}__{beyond}": value}) | missing, Q(**{column: value})
    # Ordered by (nan_field ASC NULLS LAST, value): numbers (False), then NaN (True), then missing (NULL).
    nan = f"_order_{index}__{relation.nan_field}"
    if rank == RANK_MISSING:
        return None, Q(**{f"{nan}__isnull": True})
    is_nan = rank == RANK_NAN
    after = Q(**{nan: is_nan, f"{column}__{beyond}": value})
    if not is_nan:
        after |= Q(**{nan: True})
    return after | Q(**{f"{nan}__isnull": True}), Q(**{nan: is_nan, column: value})


def order_after(position: Position, keys: Sequence[OrderKey], schema: Schema = RUNS, *, model: type[Model]) -> Q:
    """Rows strictly after ``position`` in ``apply_order_by(keys)``'s order, as one Q on its annotations.

    The lexicographic chain ``after₀ | (level₀ & (after₁ | (level₁ & ... tiebreak)))``. Missing values
    are tested with ``IS NULL`` on the very column the ordering puts last, NaN with the schema's NaN
    flag (SQLite cannot store NaN), so both databases agree with their own ``ORDER BY``. When the order
    starts with a never-null column, a redundant bound on it (``start_time <= s``) lets an index range
    scan start at the position instead of filtering every row before it.
    """
    pk = next(
        (v for name, v in zip(schema.tiebreak, position.tiebreak, strict=True) if name.lstrip("-") in ("id", "pk")),
        None,
    )
    bounds = [
        _key_bounds(index, key, rank, value, schema, model, pk)
        for index, (key, (rank, value)) in enumerate(zip(keys, position.keys, strict=True))
    ]
    bounds += _tiebreak_bounds(schema, position)
    last, _ = bounds[-1]
    condition = Q(pk__in=[]) if last is None else last  # nothing is after the last missing value
    for after, level in reversed(bounds[:-1]):
        condition = level & condition if after is None else after | (level & condition)
    lead = _leading_bound(keys, position, schema, model)
    return condition if lead is None else lead & condition


def _leading_bound(keys: Sequence[OrderKey], position: Position, schema: Schema, model: type[Model]) -> Q | None:
    """``first_column >= value`` (or ``<=``) when the order starts with a never-null column, else None."""
    if keys:
        ident = keys[0].identifier
        rank, value = position.keys[0]
        if ident.entity != "attribute" or rank != RANK_VALUE or value is FROM_ROW:
            return None
        path, ascending = schema.attributes[ident.key].field, keys[0].ascending
        if _nullable(model, path):
            return None
    elif schema.tiebreak:
        name = schema.tiebreak[0]
        path, ascending, value = name.lstrip("-"), not name.startswith("-"), position.tiebreak[0]
    else:
        return None
    return Q(**{f"{path}__{'gte' if ascending else 'lte'}": value})
