"""The filter grammar and order_by parser (no database)."""

import pytest

from experiments.search import (
    MAX_COMPARISONS,
    MAX_NESTING,
    BoolOp,
    Comparison,
    Identifier,
    OrderKey,
    decode_page_token,
    encode_page_token,
    like_to_glob,
    parse_filter,
    parse_order_by,
)
from mlplatform.errors import InvalidInput


def cmp(entity, key, op, value):
    return Comparison(Identifier(entity, key, 0), op, value)


def strip(node):
    """The tree without columns, to compare shapes."""
    if isinstance(node, Comparison):
        return (node.identifier.entity, node.identifier.key, node.op, node.value)
    return (node.op, tuple(strip(child) for child in node.children))


def test_mlflow_example_parses_to_an_and_of_five():
    tree = parse_filter(
        "metrics.acc > 0.9 and params.model = 'cnn' and tags.team != 'x' and attributes.status = 'FINISHED' "
        "and run_name LIKE 'bert%'"
    )
    assert strip(tree) == (
        "AND",
        (
            ("metric", "acc", ">", 0.9),
            ("param", "model", "=", "cnn"),
            ("tag", "team", "!=", "x"),
            ("attribute", "status", "=", "FINISHED"),
            ("attribute", "run_name", "LIKE", "bert%"),
        ),
    )


def test_or_binds_looser_than_and_and_parentheses_group():
    tree = parse_filter("metrics.a > 1 AND metrics.b < 2 OR params.c = 'x'")
    assert strip(tree) == (
        "OR",
        (("AND", (("metric", "a", ">", 1), ("metric", "b", "<", 2))), ("param", "c", "=", "x")),
    )
    tree = parse_filter("metrics.a > 1 and (metrics.b < 2 or params.c = 'x')")
    assert strip(tree) == (
        "AND",
        (("metric", "a", ">", 1), ("OR", (("metric", "b", "<", 2), ("param", "c", "=", "x")))),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.`my metric` >= -1.5e3", ("metric", "my metric", ">=", -1500.0)),
        ('params."learning rate" = "0.1"', ("param", "learning rate", "=", "0.1")),
        ("metric.train/loss <= 3", ("metric", "train/loss", "<=", 3)),
        ("tags.`mlflow.runName` ILIKE '%Bert%'", ("tag", "mlflow.runName", "ILIKE", "%Bert%")),
        ("params.model IN ('cnn', 'mlp')", ("param", "model", "IN", ("cnn", "mlp"))),
        ("params.model not in ('cnn')", ("param", "model", "NOT IN", ("cnn",))),
        ("attributes.run_id IN ('" + "a" * 32 + "')", ("attribute", "run_id", "IN", ("a" * 32,))),
        ("attr.start_time > 1700000000000", ("attribute", "start_time", ">", 1700000000000)),
        ("status = 'RUNNING'", ("attribute", "status", "=", "RUNNING")),
        ("params.x = 'it\\'s'", ("param", "x", "=", "it's")),
    ],
)
def test_valid_comparisons(text, expected):
    assert strip(parse_filter(text)) == expected


def test_empty_filter_is_none():
    assert parse_filter("") is None
    assert parse_filter("   ") is None
    assert parse_filter(None) is None


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("metrics.acc >", 14, "expected a value (a quoted string or a number)"),
        ("metrics.acc 0.9", 13, "expected an operator"),
        ("metrics.acc > 0.9 and", 22, "expected a name"),
        ("(metrics.acc > 0.9", 19, "expected ')'"),
        ("metrics.acc > 0.9)", 18, "expected AND, OR"),
        ("foo.acc > 1", 1, "unknown entity"),
        ("acc > 1", 1, "needs an entity prefix"),
        ("attributes.color = 'red'", 1, "unknown attribute"),
        ("metrics.acc = 'high'", 15, "must be compared with a number"),
        ("params.lr > 0.1", 11, "operator > cannot be used"),
        ("params.lr = 0.1", 13, "must be compared with a quoted string"),
        ("metrics.acc LIKE '1%'", 13, "operator LIKE cannot be used"),
        ("params.x IN 'a'", 13, "parenthesised list"),
        ("params.x IN ('a' 'b')", 18, "expected ',' or ')'"),
        ("params.x = 'open", 12, "unterminated string"),
        ("metrics.a > 1 ; drop table runs", 15, "unexpected text"),
        ("metrics.`` > 1", 1, "empty key"),
    ],
)
def test_syntax_errors_say_where(text, column, fragment):
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    assert info.value.details["column"] == column
    assert f"column {column}" in info.value.message
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "text",
    [
        "params.x = '1' or 1=1 --",
        "params.x = '1'; DELETE FROM experiments_run",
        "params.x = '1' or '1'='1'",
        "params.x = '' UNION SELECT * FROM accounts_user",
        "params.x = '1' -- comment",
    ],
)
def test_injection_attempts_are_syntax_errors(text):
    with pytest.raises(InvalidInput):
        parse_filter(text)


def test_parentheses_nest_up_to_the_limit():
    depth = MAX_NESTING
    assert strip(parse_filter("(" * depth + "metrics.a > 1" + ")" * depth)) == ("metric", "a", ">", 1)
    with pytest.raises(InvalidInput) as info:
        parse_filter("(" * 5000 + "metrics.a > 1" + ")" * 5000)
    assert info.value.details["column"] == MAX_NESTING + 1
    assert "nested deeper than" in info.value.message


def test_comparisons_are_limited():
    assert parse_filter(" or ".join(["metrics.a > 1"] * MAX_COMPARISONS)).children[-1].value == 1
    with pytest.raises(InvalidInput, match=f"more than {MAX_COMPARISONS} comparisons"):
        parse_filter(" and ".join(["metrics.a > 1"] * (MAX_COMPARISONS + 1)))


@pytest.mark.parametrize(
    ("literal", "value"), [("9223372036854775807", 2**63 - 1), ("-9223372036854775808", -(2**63)), ("0001", 1)]
)
def test_integer_literals_up_to_int64(literal, value):
    assert parse_filter(f"attributes.start_time > {literal}").value == value


@pytest.mark.parametrize("literal", ["9223372036854775808", "-9223372036854775809", "9" * 5000, "1e400", "-1e309"])
def test_numbers_out_of_range_are_refused(literal):
    with pytest.raises(InvalidInput) as info:
        parse_filter(f"metrics.a > {literal}")
    assert info.value.details["column"] == 13
    assert "out of range" in info.value.message
    assert len(info.value.message) < 200


def test_filter_must_be_text():
    with pytest.raises(InvalidInput):
        parse_filter(123)


def test_order_by_parses_several_keys():
    keys = parse_order_by(["metrics.acc DESC", "params.lr", "attributes.start_time ASC", "tags.`a b` desc"])
    assert [(k.identifier.entity, k.identifier.key, k.ascending) for k in keys] == [
        ("metric", "acc", False),
        ("param", "lr", True),
        ("attribute", "start_time", True),
        ("tag", "a b", False),
    ]
    assert all(isinstance(k, OrderKey) for k in keys)


@pytest.mark.parametrize("item", ["", "metrics.acc DOWN", "acc DESC", "metrics.acc DESC extra", 5])
def test_order_by_errors_name_the_entry(item):
    with pytest.raises(InvalidInput) as info:
        parse_order_by(["metrics.ok", item])
    assert "order_by[1]" in info.value.message


def test_like_to_glob():
    assert like_to_glob("bert%") == "bert*"
    assert like_to_glob("a_c") == "a?c"
    assert like_to_glob("100\\%") == "100%"
    assert like_to_glob("x*y?[z]") == "x[*]y[?][[]z]"
    assert like_to_glob("a\\_b") == "a_b"


def test_page_tokens_round_trip_and_reject_garbage():
    assert decode_page_token(encode_page_token(300)) == 300
    assert decode_page_token(None) == 0
    for bad in ["!!!", "e30=", encode_page_token(-1), "eyJvZmZzZXQiOiAiMSJ9"]:
        with pytest.raises(InvalidInput):
            decode_page_token(bad)


def test_bool_op_node_is_a_tree():
    tree = parse_filter("metrics.a > 1 or metrics.b > 1 or metrics.c > 1")
    assert isinstance(tree, BoolOp) and len(tree.children) == 3


# One grammar, several schemas ------------------------------------------------------------------


def _schemas():
    from experiments.mlflow.filters import EXPERIMENTS, LOGGED_MODELS
    from registry.search import MODELS, VERSIONS

    return {"experiments": EXPERIMENTS, "logged_models": LOGGED_MODELS, "models": MODELS, "versions": VERSIONS}


@pytest.mark.parametrize("name", ["experiments", "logged_models", "models", "versions"])
@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("name = 'a' OR name = 'b'", 12, "expected AND or the end, found 'OR'"),
        ("(name = 'a')", 1, "expected a name"),
        ("name = 'a' AND", 15, "expected a name"),
        ("name = ", 8, "expected a value"),
        ("name LIKE 'a", 11, "unterminated string"),
        ("widgets.acc > 1", 1, "unknown entity 'widgets'"),
        ("name > 1", 6, "operator > cannot be used"),
        ("tags.k IN ('a')", 8, "operator IN cannot be used"),
    ],
)
def test_and_only_schemas_share_the_run_grammar_and_its_errors(name, text, column, fragment):
    with pytest.raises(InvalidInput) as info:
        parse_filter(text, _schemas()[name])
    assert info.value.details == {"column": column} and f"column {column}:" in info.value.message
    assert fragment in info.value.message


@pytest.mark.parametrize("name", ["experiments", "models", "versions"])
def test_schemas_without_metrics_refuse_them(name):
    with pytest.raises(InvalidInput, match="unknown entity 'metrics'"):
        parse_filter("metrics.acc > 1", _schemas()[name])


def test_logged_models_filter_on_metrics():
    assert strip(parse_filter("metrics.acc > 0.5", _schemas()["logged_models"])) == ("metric", "acc", ">", 0.5)


def test_schema_kinds_convert_values():
    schemas = _schemas()
    assert parse_filter("version_number IN ('02', 3)", schemas["versions"]).value == (2, 3)
    assert parse_filter("creation_time >= 0", schemas["experiments"]).value.isoformat() == "1970-01-01T00:00:00+00:00"
    assert strip(parse_filter("tags.`a b` <> 'x'", schemas["models"])) == ("tag", "a b", "!=", "x")
    for text in ["version_number = 1.5", "version_number = '-1'", "version_number = 2147483648"]:
        with pytest.raises(InvalidInput, match="version number"):
            parse_filter(text, schemas["versions"])
    with pytest.raises(InvalidInput, match="time in milliseconds"):
        parse_filter("creation_time > 1e300", schemas["experiments"])


def test_order_by_follows_the_schema():
    schemas = _schemas()
    keys = parse_order_by(["attributes.name DESC", ("creation_time", True)], schemas["experiments"])
    assert [(k.identifier.key, k.ascending) for k in keys] == [("name", False), ("creation_time", True)]
    assert parse_order_by(["timestamp"], schemas["models"])[0].identifier.key == "timestamp"
    for schema, item in [("experiments", "tags.k"), ("versions", "run_id"), ("models", ("name DESC", True))]:
        with pytest.raises(InvalidInput, match=r"order_by\[0\]"):
            parse_order_by([item], schemas[schema])
