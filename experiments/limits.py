"""MLflow's published limits and the checks that turn raw logged items into clean tuples.

Every service that logs (native API, MLflow façade, admin, pages) goes through these, so a
limit reads the same wherever it is hit. Errors name the item (``metrics[3].value``) and the limit.
"""

from __future__ import annotations

import math
import posixpath
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from mlplatform.errors import InvalidInput

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ITEMS_PER_BATCH = 1000
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_RUN_NAME_LENGTH = 250
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# MLflow's rule for metric/param/tag names, plus the ':' newer MLflow versions allow.
KEY_PATTERN = re.compile(r"^[/\w.\- :]+$")
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# NUL cannot be stored in PostgreSQL text, and an unpaired UTF-16 surrogate cannot be encoded as UTF-8 for any
# database. The request middleware refuses both in HTTP input; admin forms and management commands bypass it.
UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


class MetricPoint(NamedTuple):
    """One validated metric point (a tuple: a 1000-point batch builds a thousand of them)."""

    key: str
    value: float
    timestamp: int
    step: int


def now_ms() -> int:
    """The current time in milliseconds since the epoch."""
    return int(time.time() * 1000)


def check_storable_text(value: str, *, where: str) -> str:
    """Refuse a string holding a NUL character or a lone surrogate, which no database column can store."""
    found = UNSTORABLE_CHARACTER.search(value)
    if found is not None:
        what = "a NUL character" if found.group() == "\x00" else "an unpaired surrogate"
        raise InvalidInput(
            f"{where}: contains {what} (U+{ord(found.group()):04X}) at position {found.start()}, which cannot be "
            "stored.",
            details={where: ["Contains a character that cannot be stored."]},
        )
    return value


def validate_key(key: Any, *, where: str) -> str:
    """A metric/param/tag name: a string of at most 250 safe characters that is a clean relative path."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(
            f"{where}: a non-empty string is required.", details={where: ["Must be a non-empty string."]}
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"{where}: key is {len(key)} characters, over the limit of {MAX_KEY_LENGTH}.",
            details={where: [f"At most {MAX_KEY_LENGTH} characters."]},
        )
    check_storable_text(key, where=where)
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            f"{where}: {key!r} may only contain letters, digits, underscores, dashes, periods, spaces, colons and "
            "slashes.",
            details={where: ["Invalid characters."]},
        )
    if key.startswith("/") or posixpath.normpath(key) != key or ".." in key.split("/"):
        raise InvalidInput(
            f"{where}: {key!r} must be a normalised relative path (no '..', no leading '/', no empty segments).",
            details={where: ["Not a normalised relative path."]},
        )
    return key


def _int64(value: Any, *, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where}: an integer is required.", details={where: ["Must be an integer."]})
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(f"{where}: out of the 64-bit integer range.", details={where: ["Out of range."]})
    return value


def metric_value(value: Any, *, where: str) -> float:
    """A float64, accepting the strings "NaN", "Infinity" and "-Infinity" for non-finite values."""
    if isinstance(value, str) and value in NON_FINITE:
        return NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(
            f"{where}: a number is required (or one of the strings 'NaN', 'Infinity', '-Infinity').",
            details={where: ["Must be a number."]},
        )
    try:
        return float(value)
    except OverflowError as exc:
        raise InvalidInput(f"{where}: out of the float64 range.", details={where: ["Out of range."]}) from exc


def _item(item: Any, *, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where}: an object is required.", details={where: ["Must be an object."]})
    return item


def _value(item: Mapping[str, Any], *, where: str, limit: int, kind: str) -> str:
    if "value" not in item:
        raise InvalidInput(f"{where}.value: this field is required.", details={f"{where}.value": ["Required."]})
    value = item["value"]
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.value: a string is required.", details={f"{where}.value": ["Must be a string."]})
    if len(value) > limit:
        raise InvalidInput(
            f"{where}.value: {kind} value is {len(value)} characters, over the limit of {limit}.",
            details={f"{where}.value": [f"At most {limit} characters."]},
        )
    return check_storable_text(value, where=f"{where}.value")


def _check_count(items: list[Any], *, limit: int, name: str) -> None:
    if len(items) > limit:
        raise InvalidInput(
            f"A batch may contain at most {limit} {name}; got {len(items)}.",
            details={name: [f"At most {limit} per batch."]},
        )


def as_list(items: Iterable[Any] | None, *, name: str) -> list[Any]:
    """The items as a list; a string, bytes or a mapping is not a list of items."""
    if items is None:
        return []
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise InvalidInput(f"{name}: a list is required.", details={name: ["Must be a list."]})
    return list(items)


def clean_metrics(metrics: Iterable[Any] | None) -> list[MetricPoint]:
    """Validate metric dicts ``{key, value, timestamp?, step?}``; timestamp defaults to now, step to 0.

    A training loop sends a thousand points over a handful of keys: each key is validated once per
    batch, and a point whose fields already have their final types takes a short path. Anything else
    goes through ``_clean_metric``, which names the offending field.
    """
    items = as_list(metrics, name="metrics")
    _check_count(items, limit=MAX_METRICS_PER_BATCH, name="metrics")
    default_ts = now_ms()
    valid_keys: set[str] = set()
    points = []
    for index, raw in enumerate(items):
        if type(raw) is dict:
            key, value, timestamp, step = raw.get("key"), raw.get("value"), raw.get("timestamp"), raw.get("step")
            if (
                type(key) is str
                and key in valid_keys
                and type(value) is float
                and type(timestamp) is int
                and INT64_MIN <= timestamp <= INT64_MAX
                and type(step) is int
                and INT64_MIN <= step <= INT64_MAX
            ):
                points.append(MetricPoint(key, value, timestamp, step))
                continue
        point = _clean_metric(raw, f"metrics[{index}]", default_ts)
        valid_keys.add(point.key)
        points.append(point)
    return points


def _clean_metric(raw: Any, where: str, default_ts: int) -> MetricPoint:
    """One metric dict validated field by field, with an error naming the field."""
    item = _item(raw, where=where)
    key = validate_key(item.get("key"), where=f"{where}.key")
    if "value" not in item:
        raise InvalidInput(f"{where}.value: this field is required.", details={f"{where}.value": ["Required."]})
    value = metric_value(item["value"], where=f"{where}.value")
    timestamp = item.get("timestamp")
    timestamp = default_ts if timestamp is None else _int64(timestamp, where=f"{where}.timestamp")
    step = item.get("step")
    step = 0 if step is None else _int64(step, where=f"{where}.step")
    return MetricPoint(key, value, timestamp, step)


def clean_params(params: Iterable[Any] | None) -> dict[str, str]:
    """Validate param dicts ``{key, value}``; the same key twice must carry the same value."""
    items = as_list(params, name="params")
    _check_count(items, limit=MAX_PARAMS_PER_BATCH, name="params")
    cleaned: dict[str, str] = {}
    for index, raw in enumerate(items):
        where = f"params[{index}]"
        item = _item(raw, where=where)
        key = validate_key(item.get("key"), where=f"{where}.key")
        value = _value(item, where=where, limit=MAX_PARAM_VALUE_LENGTH, kind="param")
        if key in cleaned and cleaned[key] != value:
            raise InvalidInput(
                f"Param {key!r} appears twice in the batch with different values.", details={where: ["Duplicate key."]}
            )
        cleaned[key] = value
    return cleaned


def clean_tags(tags: Iterable[Any] | None) -> dict[str, str]:
    """Validate tag dicts ``{key, value}``; for a repeated key the last value wins, as in MLflow."""
    items = as_list(tags, name="tags")
    _check_count(items, limit=MAX_TAGS_PER_BATCH, name="tags")
    cleaned: dict[str, str] = {}
    for index, raw in enumerate(items):
        where = f"tags[{index}]"
        item = _item(raw, where=where)
        key = validate_key(item.get("key"), where=f"{where}.key")
        cleaned[key] = _value(item, where=where, limit=MAX_TAG_VALUE_LENGTH, kind="tag")
    return cleaned


def check_batch_sizes(*, metrics: list[Any], params: list[Any], tags: list[Any]) -> None:
    """Per-kind limits first (1000 metrics, 100 params, 100 tags), then 1000 items in total."""
    _check_count(metrics, limit=MAX_METRICS_PER_BATCH, name="metrics")
    _check_count(params, limit=MAX_PARAMS_PER_BATCH, name="params")
    _check_count(tags, limit=MAX_TAGS_PER_BATCH, name="tags")
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ITEMS_PER_BATCH:
        raise InvalidInput(
            f"A batch may contain at most {MAX_ITEMS_PER_BATCH} items in total (metrics + params + tags); got {total}.",
            details={"batch": [f"At most {MAX_ITEMS_PER_BATCH} items."]},
        )


def tags_from(tags: Mapping[str, Any] | Iterable[Any] | None) -> dict[str, str]:
    """Accept tags as ``{key: value}`` or ``[{key, value}]`` and validate them."""
    if isinstance(tags, Mapping):
        tags = [{"key": key, "value": value} for key, value in tags.items()]
    return clean_tags(tags)


def int64_or_none(value: Any, *, where: str) -> int | None:
    """An optional int64 (times in ms)."""
    return None if value is None else _int64(value, where=where)
