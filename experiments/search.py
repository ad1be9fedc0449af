"""The run filter language (MLflow-compatible, plus OR and parentheses) and multi-key ``order_by``.

Grammar (keywords are case-insensitive)::

    filter      := or_expr
    or_expr     := and_expr ("OR" and_expr)*
    and_expr    := primary ("AND" primary)*
    primary     := "(" or_expr ")" | comparison
    comparison  := identifier operator value
    identifier  := entity "." key | attribute          e.g. metrics.acc, params.`my param`, run_name
    entity      := metrics | metric | params | param | parameters | tags | tag | attributes | attribute | attr | run
    operator    := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value       := 'string' | "string" | number | "(" value ("," value)* ")"

Text is parsed once into a tree (``parse_filter``), then compiled into ORM conditions: ``EXISTS``
over ``LatestMetric``/``Param``/``RunTag`` for metrics/params/tags, plain columns for attributes.
Values only ever reach the database as query parameters. Errors are ``InvalidInput`` naming the
column where parsing stopped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from django.db.models import CharField, Exists, F, FilteredRelation, Lookup, OuterRef, Q, QuerySet, TextField

from experiments.models import LatestMetric, Param, RunTag
from mlplatform.errors import InvalidInput

Entity = Literal["metric", "param", "tag", "attribute"]

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
# attribute name -> (Run field, kind)
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "run_id": ("run_uuid", "string"),
    "run_name": ("name", "string"),
    "status": ("status", "string"),
    "user_id": ("user__username", "string"),
    "artifact_uri": ("artifact_uri", "string"),
    "lifecycle_stage": ("lifecycle_stage", "string"),
    "start_time": ("start_time", "number"),
    "created": ("start_time", "number"),
    "end_time": ("end_time", "number"),
}
NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
KEYWORDS = {"AND", "OR", "LIKE", "ILIKE", "IN", "NOT", "ASC", "DESC"}
# Parentheses nest at most this deep: the parser recurses once per level, far below Python's stack limit.
MAX_NESTING = 100
# Comparisons per filter: SQLite refuses expressions nested deeper than 1000 (an AND/OR chain nests there),
# which would be a 500; no real search needs more.
MAX_COMPARISONS = 200
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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
  | (?P<op>!=|<=|>=|=|<|>)
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


def parse_identifier(token: Token) -> Identifier:
    """``metrics.acc`` / ``params.`a b``` / ``run_name`` → Identifier, checking the entity and attribute."""
    if token.kind != "ident":
        shown = token.text or "end of input"
        raise syntax_error(
            f"expected a name like metrics.<key>, params.<key>, tags.<key> or attributes.<name>, found {shown!r}.",
            token.column,
        )
    prefix, dot, rest = token.text.partition(".")
    if not dot:
        if token.text in ATTRIBUTES:
            return Identifier("attribute", token.text, token.column)
        raise syntax_error(
            f"{token.text!r} needs an entity prefix (metrics., params., tags. or attributes.).", token.column
        )
    entity = ENTITY_ALIASES.get(prefix.lower())
    if entity is None:
        raise syntax_error(
            f"unknown entity {prefix!r}; use metrics, params, tags or attributes.",
            token.column,
        )
    key = rest[1:-1] if rest[:1] in '`"' else rest
    if not key:
        raise syntax_error("empty key name.", token.column)
    if entity == "attribute" and key not in ATTRIBUTES:
        raise syntax_error(
            f"unknown attribute {key!r}; use one of {', '.join(sorted(ATTRIBUTES))}.",
            token.column,
        )
    return Identifier(entity, key, token.column)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
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

    def parse(self) -> Any:
        node = self.or_expr()
        if self.token.kind != "end":
            raise syntax_error(f"expected AND, OR or the end, found {self.token.text!r}.", self.token.column)
        return node

    def or_expr(self) -> Any:
        children = [self.and_expr()]
        while self.token.kind == "keyword" and self.token.text == "OR":
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else BoolOp("OR", tuple(children))

    def and_expr(self) -> Any:
        children = [self.primary()]
        while self.token.kind == "keyword" and self.token.text == "AND":
            self.take()
            children.append(self.primary())
        return children[0] if len(children) == 1 else BoolOp("AND", tuple(children))

    def primary(self) -> Any:
        if self.token.kind == "lparen":
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
            return token.text, token.column
        if token.kind == "keyword" and token.text in {"LIKE", "ILIKE", "IN"}:
            return token.text, token.column
        if token.kind == "keyword" and token.text == "NOT" and self.token.text == "IN":
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
        raise syntax_error(f"expected a quoted string or a number, found {shown!r}.", token.column)

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
        identifier = parse_identifier(self.take())
        op, op_column = self.operator()
        value_column = self.token.column
        value = self.value_list() if op in {"IN", "NOT IN"} else self.value()
        return _checked(Comparison(identifier, op, value), op_column, value_column)


def _kind_of(identifier: Identifier) -> str:
    if identifier.entity == "metric":
        return "number"
    if identifier.entity == "attribute":
        return ATTRIBUTES[identifier.key][1]
    return "string"


def _checked(node: Comparison, op_column: int, value_column: int) -> Comparison:
    """Check the operator and value type fit the identifier (metrics are numbers, params strings...)."""
    kind = _kind_of(node.identifier)
    allowed = NUMERIC_OPS if kind == "number" else STRING_OPS
    if node.op not in allowed:
        raise syntax_error(
            f"operator {node.op} cannot be used with {_describe(node.identifier)}; use one of {', '.join(allowed)}.",
            op_column,
        )
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    if kind == "number" and not all(isinstance(v, (int, float)) for v in values):
        raise syntax_error(f"{_describe(node.identifier)} must be compared with a number.", value_column)
    if kind == "string" and not all(isinstance(v, str) for v in values):
        raise syntax_error(f"{_describe(node.identifier)} must be compared with a quoted string.", value_column)
    return node


def _describe(identifier: Identifier) -> str:
    if identifier.entity == "attribute":
        return f"attribute {identifier.key!r}"
    return f"{identifier.entity} {identifier.key!r}"


def parse_filter(text: str | None) -> Any:
    """Parse filter text into a tree of ``BoolOp``/``Comparison``; None for an empty filter."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput("filter must be a string.", code="invalid_filter")
    if not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(items: list[str] | tuple[str, ...] | None) -> list[OrderKey]:
    """Parse ``["metrics.acc DESC", "params.lr", "start_time ASC"]`` into order keys."""
    keys: list[OrderKey] = []
    for index, item in enumerate(items or ()):
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"order_by[{index}] must be a non-empty string.", code="invalid_order_by")
        try:
            tokens = tokenize(item)
            identifier = parse_identifier(tokens[0])
            ascending = True
            rest = tokens[1:-1]
            if rest and rest[0].kind == "keyword" and rest[0].text in {"ASC", "DESC"}:
                ascending = rest[0].text == "ASC"
                rest = rest[1:]
            if rest:
                raise syntax_error(f"expected ASC, DESC or the end, found {rest[0].text!r}.", rest[0].column)
        except InvalidInput as exc:
            raise InvalidInput(
                f"order_by[{index}] {item!r}: {exc.message}", details=exc.details, code="invalid_order_by"
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


def _value_condition(field: str, op: str, value: Any, *, numeric: bool) -> Q:
    """``field op value`` as a Q; ``!=`` and ``NOT IN`` are negations of ``=`` and ``IN``."""
    if op == "!=":
        return ~_value_condition(field, "=", value, numeric=numeric)
    if op == "NOT IN":
        return ~_value_condition(field, "IN", value, numeric=numeric)
    lookup = (NUMBER_LOOKUPS if numeric else STRING_LOOKUPS)[op]
    return Q(**{f"{field}__{lookup}": list(value) if op == "IN" else value})


def compile_comparison(node: Comparison) -> Q:
    """One comparison as a Q over Run: EXISTS for metrics/params/tags, a column test for attributes."""
    ident = node.identifier
    if ident.entity == "metric":
        # NaN never satisfies a numeric comparison; != matches it (as IEEE says NaN != x).
        rows = LatestMetric.objects.filter(run=OuterRef("pk"), key=ident.key)
        if node.op == "!=":
            rows = rows.filter(Q(is_nan=True) | ~Q(value=node.value))
        else:
            rows = rows.filter(_value_condition("value", node.op, node.value, numeric=True), is_nan=False)
        return Q(Exists(rows))
    if ident.entity in {"param", "tag"}:
        model = Param if ident.entity == "param" else RunTag
        rows = model.objects.filter(run=OuterRef("pk"), key=ident.key)
        rows = rows.filter(_value_condition("value", node.op, node.value, numeric=False))
        return Q(Exists(rows))
    field, kind = ATTRIBUTES[ident.key]
    condition = _value_condition(field, node.op, node.value, numeric=kind == "number")
    if node.op in {"!=", "NOT IN"} and field == "end_time":
        condition &= Q(end_time__isnull=False)
    return condition


def compile_filter(node: Any) -> Q:
    """A parsed filter tree as one Q over Run (an empty Q for no filter)."""
    if node is None:
        return Q()
    if isinstance(node, Comparison):
        return compile_comparison(node)
    compiled = [compile_filter(child) for child in node.children]
    combined = compiled[0]
    for condition in compiled[1:]:
        combined = combined & condition if node.op == "AND" else combined | condition
    return combined


def apply_order_by(queryset: QuerySet, keys: list[OrderKey]) -> QuerySet:
    """Order runs by the keys (missing values last; NaN after numbers), then newest first, then id."""
    ordering: list[Any] = []
    relations: dict[str, Any] = {}
    for index, key in enumerate(keys):
        ident = key.identifier

        def direction(expr: Any, asc: bool = key.ascending) -> Any:
            return expr.asc(nulls_last=True) if asc else expr.desc(nulls_last=True)

        if ident.entity == "attribute":
            ordering.append(direction(F(ATTRIBUTES[ident.key][0])))
            continue
        alias = f"_order_{index}"
        relation = {"metric": "latest_metrics", "param": "params", "tag": "tags"}[ident.entity]
        relations[alias] = FilteredRelation(relation, condition=Q(**{f"{relation}__key": ident.key}))
        if ident.entity == "metric":
            ordering.append(F(f"{alias}__is_nan").asc(nulls_last=True))
        ordering.append(direction(F(f"{alias}__value")))
    if relations:
        queryset = queryset.annotate(**relations)
    return queryset.order_by(*ordering, "-start_time", "-id")


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
