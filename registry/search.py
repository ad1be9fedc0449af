"""MLflow's registry search grammar: ``name = 'x' AND tags.owner LIKE 'a%'`` compiled to ORM filters.

The registry grammar is MLflow's (conditions joined by ``AND``), smaller than the run search grammar of
``experiments.search``: identifiers are ``name``, ``run_id``, ``source_path``, ``version_number``,
``current_stage`` and ``tags.<key>`` (or ``tag.<key>``, key optionally back-quoted); operators ``=``,
``!=``, ``LIKE``, ``ILIKE``, ``IN``, ``NOT IN``. Errors say at which column they were found.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q

from mlplatform.errors import InvalidInput

TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|<>|>=|<=|=|>|<)
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<comma>,)
      | (?P<ident>(?:tags?\.)?(?:`[^`]+`|[A-Za-z_][\w.\-]*))
    )""",
    re.VERBOSE,
)
WORD_OPS = {"LIKE", "ILIKE", "IN", "NOT"}
# Conditions per filter: SQLite refuses expressions nested deeper than 1000 (an AND chain nests), and no
# real search needs more.
MAX_CONDITIONS = 100
MAX_VERSION = 2**31 - 1  # ModelVersion.version is a PositiveIntegerField


@dataclass(frozen=True)
class Condition:
    """One parsed ``identifier operator value`` clause."""

    field: str  # "name", "run_id", ... or "tag"
    key: str  # tag key when field == "tag"
    op: str
    value: Any


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidInput(f"Invalid filter: unexpected character {text[pos:].strip()[0]!r} at column {pos + 1}.")
        kind = match.lastgroup or ""
        value = match.group(kind)
        column = match.start(kind) + 1
        if kind == "ident" and value.upper() in WORD_OPS | {"AND"}:
            kind = "word"
            value = value.upper()
        tokens.append((kind, value, column))
        pos = match.end()
    return tokens


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


class _Parser:
    def __init__(self, text: str, fields: frozenset[str]) -> None:
        self.text = text
        self.fields = fields
        self.tokens = _tokens(text)
        self.index = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self, expected: str) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise InvalidInput(f"Invalid filter: expected {expected} at the end of {self.text!r}.")
        self.index += 1
        return token

    def _fail(self, token: tuple[str, str, int], expected: str) -> InvalidInput:
        shown = token[1] if len(token[1]) <= 40 else token[1][:40] + "..."
        return InvalidInput(f"Invalid filter: expected {expected} at column {token[2]}, found {shown!r}.")

    def parse(self) -> list[Condition]:
        conditions = [self._condition()]
        while self._peek() is not None:
            token = self._next("AND")
            if token[:2] != ("word", "AND"):
                raise self._fail(token, "AND")
            if len(conditions) == MAX_CONDITIONS:
                raise InvalidInput(f"Invalid filter: more than {MAX_CONDITIONS} conditions (column {token[2]}).")
            conditions.append(self._condition())
        return conditions

    def _condition(self) -> Condition:
        token = self._next("an identifier")
        if token[0] != "ident":
            raise self._fail(token, "an identifier")
        field, key = self._identifier(token)
        op = self._operator()
        if op in {"IN", "NOT IN"}:
            value: Any = self._tuple(field)
        else:
            value = self._value(field)
        if field == "version_number" and op not in {"=", "!=", ">", ">=", "<", "<=", "IN", "NOT IN"}:
            raise InvalidInput(f"Invalid filter: operator {op} does not apply to version_number.")
        if field != "version_number" and op in {">", ">=", "<", "<="}:
            raise InvalidInput(f"Invalid filter: operator {op} only applies to version_number.")
        if op in {"IN", "NOT IN"} and field not in {"run_id", "name", "version_number"}:
            raise InvalidInput(f"Invalid filter: {op} only applies to run_id, name and version_number.")
        return Condition(field=field, key=key, op=op, value=value)

    def _identifier(self, token: tuple[str, str, int]) -> tuple[str, str]:
        raw = token[1]
        if raw.startswith(("tags.", "tag.")):
            key = raw.split(".", 1)[1].strip("`")
            if not key:
                raise self._fail(token, "a tag key")
            return "tag", key
        name = raw.strip("`")
        if name not in self.fields:
            allowed = ", ".join(sorted(self.fields | {"tags.<key>"}))
            raise InvalidInput(
                f"Invalid filter: unknown identifier {name!r} at column {token[2]}; use one of {allowed}."
            )
        return name, ""

    def _operator(self) -> str:
        token = self._next("an operator")
        if token[0] == "op":
            return "!=" if token[1] == "<>" else token[1]
        if token[0] == "word" and token[1] in {"LIKE", "ILIKE", "IN"}:
            return token[1]
        if token[:2] == ("word", "NOT"):
            follow = self._next("IN")
            if follow[:2] != ("word", "IN"):
                raise self._fail(follow, "IN")
            return "NOT IN"
        raise self._fail(token, "an operator (=, !=, LIKE, ILIKE, IN, NOT IN)")

    def _value(self, field: str) -> Any:
        token = self._next("a value")
        if field == "version_number" and token[0] in {"string", "number"}:
            return self._version(token)
        if token[0] == "string":
            return _unquote(token[1])
        raise self._fail(token, "a quoted string" if field != "version_number" else "a version number")

    def _version(self, token: tuple[str, str, int]) -> int:
        """A version number, quoted or not; checked by length first (int() of 5000 digits is a ValueError)."""
        text = _unquote(token[1]) if token[0] == "string" else token[1]
        digits = text.lstrip("0") or "0"
        if not text.isascii() or not text.isdigit() or len(digits) > 10 or int(digits) > MAX_VERSION:
            raise self._fail(token, f"a version number from 0 to {MAX_VERSION}")
        return int(digits)

    def _tuple(self, field: str) -> list[Any]:
        token = self._next("(")
        if token[0] != "lparen":
            raise self._fail(token, "(")
        values: list[Any] = []
        while True:
            item = self._next("a quoted string")
            if item[0] not in {"string", "number"}:
                raise self._fail(item, "a quoted string")
            if field == "version_number":
                values.append(self._version(item))
            else:
                values.append(_unquote(item[1]) if item[0] == "string" else item[1])
            sep = self._next(", or )")
            if sep[0] == "rparen":
                return values
            if sep[0] != "comma":
                raise self._fail(sep, ", or )")


def parse_filter(text: str, *, fields: frozenset[str]) -> list[Condition]:
    """Parse a registry filter string; empty text means no conditions."""
    if not text or not text.strip():
        return []
    return _Parser(text, fields).parse()


def like_to_regex(pattern: str) -> str:
    """SQL LIKE pattern (``%`` any run, ``_`` one character) as an anchored regular expression."""
    parts = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "^" + "".join(parts) + "$"


def _match(column: str, op: str, value: Any) -> Q:
    if op == "=":
        return Q(**{column: value})
    if op == "!=":
        return ~Q(**{column: value})
    if op == "LIKE":
        return Q(**{f"{column}__regex": like_to_regex(value)})
    if op == "ILIKE":
        return Q(**{f"{column}__iregex": like_to_regex(value)})
    if op == "IN":
        return Q(**{f"{column}__in": value})
    if op == "NOT IN":
        return ~Q(**{f"{column}__in": value})
    lookup = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
    return Q(**{f"{column}__{lookup}": value})


def compile_conditions(conditions: list[Condition], *, columns: dict[str, str], tag_model: Any, tag_owner: str) -> Q:
    """Turn conditions into one Q for a queryset whose columns are named in ``columns``."""
    query = Q()
    for condition in conditions:
        if condition.field == "tag":
            tags = tag_model.objects.filter(**{tag_owner: OuterRef("pk")}, key=condition.key)
            op = condition.op
            if op == "!=":
                # A missing tag does not match "!=" either (MLflow semantics): the tag must exist with another value.
                query &= Exists(tags.exclude(value=condition.value))
            else:
                query &= Exists(tags.filter(_match("value", op, condition.value)))
        else:
            query &= _match(columns[condition.field], condition.op, condition.value)
    return query


ORDER_RE = re.compile(r"^\s*(?P<column>[A-Za-z_]+)\s*(?P<direction>ASC|DESC)?\s*$", re.IGNORECASE)


def parse_order_by(order_by: list[str] | tuple[str, ...] | None, *, columns: dict[str, str]) -> list[str]:
    """``["name ASC", "version_number DESC"]`` as ORM ordering; unknown columns are a 400."""
    ordering = []
    for clause in order_by or ():
        match = ORDER_RE.match(clause)
        if match is None or match.group("column") not in columns:
            allowed = ", ".join(sorted(columns))
            raise InvalidInput(f"Invalid order_by clause {clause!r}; use '<column> [ASC|DESC]' with one of {allowed}.")
        descending = (match.group("direction") or "ASC").upper() == "DESC"
        ordering.append(("-" if descending else "") + columns[match.group("column")])
    return ordering


def encode_page_token(offset: int) -> str:
    """Opaque page token for an offset."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """Offset from a page token; malformed tokens are a 400."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput("Invalid page_token.") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("Invalid page_token.")
    return offset
