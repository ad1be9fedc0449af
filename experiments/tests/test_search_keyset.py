"""search_runs keyset pages: every page after the last row's sort position, in apply_order_by's exact order."""

import base64
import json
import math
import random
import re

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments import search
from experiments.models import Run
from experiments.selectors import search_runs
from experiments.tests.api import assert_error, url
from experiments.tests.factories import LatestMetricFactory, ParamFactory, RunFactory, RunTagFactory
from mlplatform.errors import InvalidInput

LONG = "x" * (search.MAX_TOKEN_STRING + 50)


@pytest.fixture
def many_runs(experiment, editor, viewer):
    """36 runs full of ties: few start times, repeated and missing values, NaN and ±inf metrics, long strings."""
    rng = random.Random(7)
    made = []
    for index in range(36):
        run = RunFactory(
            experiment=experiment,
            name=rng.choice(["a", "b", "c", ""]),
            status=rng.choice(["RUNNING", "FINISHED", "FAILED"]),
            start_time=rng.choice([1000, 1001, 1002]),
            end_time=rng.choice([None, 5, 6]),
            user=rng.choice([editor, viewer, None]),
        )
        acc = rng.choice([None, 0.5, 0.25, -0.0, 0.0, math.nan, math.inf, -math.inf, 1e300])
        if acc is not None:
            nan = math.isnan(acc)
            LatestMetricFactory(run=run, key="acc", value=0.0 if nan else acc, is_nan=nan)
        loss = rng.choice([None, 1.0, 2.0, math.nan])
        if loss is not None:
            nan = math.isnan(loss)
            LatestMetricFactory(run=run, key="loss", value=0.0 if nan else loss, is_nan=nan)
        model = rng.choice([None, "cnn", "mlp", "", LONG, LONG + "y"])
        if model is not None:
            ParamFactory(run=run, key="model", value=model)
        team = rng.choice([None, "nlp", "vision"])
        if team is not None:
            RunTagFactory(run=run, key="team", value=team)
        made.append(run)
    return made


def walk(user, experiment, text, order_by, page_size, first_token=None):
    """Every page's run ids, following next_page_token to the end."""
    seen, token, pages = [], first_token, 0
    while True:
        page = search_runs(
            user=user,
            experiment_ids=[experiment.pk],
            filter_string=text,
            order_by=order_by,
            max_results=page_size,
            page_token=token,
        )
        seen += [run.pk for run in page.runs]
        pages += 1
        token = page.next_page_token
        if token is None:
            return seen
        assert len(token) < 1000  # the native API's page_token limit
        assert pages < 200


def everything(user, experiment, text, order_by):
    page = search_runs(
        user=user, experiment_ids=[experiment.pk], filter_string=text, order_by=order_by, max_results=1000
    )
    assert page.next_page_token is None
    return [run.pk for run in page.runs]


ORDERS = [
    [],
    ["metrics.acc DESC"],
    ["metrics.acc ASC"],
    ["metrics.acc", "metrics.loss DESC"],
    ["metrics.loss DESC", "params.model"],
    ["params.model DESC"],
    ["params.model", "tags.team DESC", "metrics.acc"],
    ["tags.team", "attributes.run_name DESC"],
    ["attributes.run_name"],
    ["status DESC", "metrics.loss"],
    ["start_time"],
    ["start_time DESC", "end_time"],
    ["end_time DESC"],
    ["user_id", "metrics.acc DESC"],
    ["created ASC", "params.model DESC"],
    ["metrics.acc DESC", "metrics.acc ASC"],
]
FILTERS = ["", "metrics.acc > 0", "metrics.acc != 0.5", "params.model != 'cnn' or tags.team = 'nlp'"]


@pytest.mark.parametrize("order_by", ORDERS)
@pytest.mark.parametrize("text", FILTERS)
def test_pages_concatenate_to_the_unpaged_order(editor, experiment, many_runs, text, order_by):
    expected = everything(editor, experiment, text, order_by)
    assert expected  # every filter matches something
    for page_size in (1, 4, 7):
        assert walk(editor, experiment, text, order_by, page_size) == expected


def test_unpaged_order_has_the_documented_ranks(editor, experiment, many_runs):
    # Numbers (ascending, ±inf included), then NaN, then missing; each block newest first, then by id.
    runs = Run.objects.in_bulk(everything(editor, experiment, "", ["metrics.acc"]))
    ordered = [runs[pk] for pk in everything(editor, experiment, "", ["metrics.acc"])]

    def rank(run):
        metric = run.latest_metrics.filter(key="acc").first()
        if metric is None:
            return (2, 0.0)
        return (1, 0.0) if metric.is_nan else (0, metric.value)

    assert [(rank(r), -r.start_time, -r.pk) for r in ordered] == sorted(
        (rank(r), -r.start_time, -r.pk) for r in ordered
    )


@pytest.mark.parametrize("order_by", [[], ["metrics.acc DESC"], ["params.model", "start_time DESC"]])
def test_a_run_created_between_pages_repeats_and_skips_nothing(editor, experiment, many_runs, order_by):
    before = everything(editor, experiment, "", order_by)
    first = search_runs(user=editor, experiment_ids=[experiment.pk], order_by=order_by, max_results=5)
    # Sorts before every run of the first page: an offset would now repeat the first page's last run.
    newcomer = RunFactory(experiment=experiment, name="new", start_time=9999, end_time=None)
    LatestMetricFactory(run=newcomer, key="acc", value=math.inf)
    ParamFactory(run=newcomer, key="model", value="")
    rest = walk(editor, experiment, "", order_by, 5, first_token=first.next_page_token)
    seen = [run.pk for run in first.runs] + rest
    assert len(seen) == len(set(seen))
    assert [pk for pk in seen if pk != newcomer.pk] == before


def test_a_run_re_sorted_between_pages_moves_no_other_run(editor, experiment, many_runs):
    order_by = ["metrics.loss DESC"]
    before = everything(editor, experiment, "", order_by)
    first = search_runs(user=editor, experiment_ids=[experiment.pk], order_by=order_by, max_results=6)
    moved = Run.objects.get(pk=before[-1])
    LatestMetricFactory._meta.model.objects.update_or_create(
        run=moved, key="loss", defaults={"value": 1e9, "is_nan": False, "timestamp": 1, "step": 0}
    )
    rest = walk(editor, experiment, "", order_by, 6, first_token=first.next_page_token)
    seen = [run.pk for run in first.runs] + rest
    assert [pk for pk in seen if pk != moved.pk] == [pk for pk in before if pk != moved.pk]


def _first_token(editor, experiment, **kwargs):
    page = search_runs(user=editor, experiment_ids=[experiment.pk], max_results=2, **kwargs)
    assert page.next_page_token
    return page.next_page_token


@pytest.mark.parametrize(
    "changed",
    [
        {"order_by": ["metrics.acc ASC"]},
        {"order_by": ["metrics.acc DESC", "params.model"]},
        {"order_by": []},
        {"filter_string": "metrics.acc > 0"},
        {"run_view": "all"},
    ],
)
def test_a_token_from_another_search_is_refused(editor, experiment, many_runs, changed):
    token = _first_token(editor, experiment, order_by=["metrics.acc DESC"])
    arguments = {"order_by": ["metrics.acc DESC"], **changed}
    with pytest.raises(InvalidInput, match="Invalid page token"):
        search_runs(user=editor, experiment_ids=[experiment.pk], max_results=2, page_token=token, **arguments)


def test_the_same_sort_spelled_differently_keeps_its_token(editor, experiment, many_runs):
    token = _first_token(editor, experiment, order_by=["metrics.acc DESC"])
    page = search_runs(
        user=editor, experiment_ids=[experiment.pk], order_by=["metric.acc desc"], max_results=2, page_token=token
    )
    assert len(page.runs) == 2


def _tampered(token):
    payload, _, mac = token.rpartition(":")
    data = signing.loads(token, salt=search.KEYSET_SALT)
    data["t"][1] += 1  # another run id: well-formed, but not a token this server made
    forged = signing.dumps(data, salt="not-the-salt", compress=True)
    return [
        forged,
        payload + ":" + mac[::-1],
        token[:-3],
        token + "A",
        base64.urlsafe_b64encode(json.dumps({"offset": 2}).encode()).decode(),  # an old offset token
        search.encode_page_token(2),
        "%%%",
    ]


def test_tampered_and_old_tokens_are_refused(editor, experiment, many_runs):
    token = _first_token(editor, experiment)
    for bad in _tampered(token):
        with pytest.raises(InvalidInput, match="Invalid page token"):
            search_runs(user=editor, experiment_ids=[experiment.pk], max_results=2, page_token=bad)


@pytest.mark.parametrize(
    "data",
    [
        {"k": None, "c": [], "t": [1, 2]},
        {"c": [], "t": [1, 2]},
        [1, 2],
        {"k": "sig", "c": [[0, "text"]], "t": [1, 2]},  # a string for a metric
        {"k": "sig", "c": [[3, 1.0]], "t": [1, 2]},  # no such rank
        {"k": "sig", "c": [[2, 1.0]], "t": [1, 2]},  # missing with a value
        {"k": "sig", "c": [[0]], "t": [1, 2]},  # a metric read back from the row
        {"k": "sig", "c": [], "t": [1, 2]},  # a key short
        {"k": "sig", "c": [[0, 1.0]], "t": [1]},  # a tie-breaker short
        {"k": "sig", "c": [[0, 1.0]], "t": [1, True]},
    ],
)
def test_signed_but_malformed_positions_are_refused(data):
    keys = search.parse_order_by(["metrics.acc"])
    with pytest.raises(InvalidInput, match="Invalid page token"):
        search.decode_position(signing.dumps(data, salt=search.KEYSET_SALT), "sig", keys, model=Run)


def _select_and_joins(sql):
    """The SELECT list and the joins (with their types) of a query, joins in any order."""
    select, _, joins = sql.split(" WHERE ")[0].partition(" FROM ")
    return select, sorted(re.split(r" (?=(?:LEFT OUTER|INNER) JOIN )", joins))


@pytest.mark.parametrize(
    ("text", "order_by"),
    [
        ("", []),
        ("", ["metrics.acc DESC"]),
        ("metrics.acc > 0", ["metrics.acc DESC"]),  # the restated tests make the sort join inner
        ("params.model != 'cnn'", ["params.model", "tags.team DESC", "end_time"]),
    ],
)
def test_later_pages_add_only_a_where_and_no_query(editor, experiment, many_runs, text, order_by):
    arguments = {"user": editor, "experiment_ids": [experiment.pk], "filter_string": text, "order_by": order_by}
    search_runs(**arguments, max_results=3)  # roles cached
    with CaptureQueriesContext(connection) as first_queries:
        first = search_runs(**arguments, max_results=3)
    with CaptureQueriesContext(connection) as second_queries:
        search_runs(**arguments, max_results=3, page_token=first.next_page_token)
    assert len(first_queries) == len(second_queries)
    runs_query = next(q["sql"] for q in first_queries if "ORDER BY" in q["sql"] and "LIMIT" in q["sql"])
    paged_query = next(q["sql"] for q in second_queries if "ORDER BY" in q["sql"] and "LIMIT" in q["sql"])
    assert "OFFSET" not in paged_query.upper()
    assert _select_and_joins(paged_query) == _select_and_joins(runs_query)
    assert paged_query.partition(" ORDER BY ")[2] == runs_query.partition(" ORDER BY ")[2]
    assert len(paged_query) > len(runs_query)


def test_api_pages_by_next_link_and_refuses_foreign_tokens(client_for, viewer, experiment, many_runs):
    client = client_for(viewer)
    query = {"experiment_id": experiment.pk, "order_by": ["metrics.acc DESC", "params.model"], "page_size": 5}
    seen, link = [], None
    body = client.get(url("run-list"), query).json()
    while True:
        seen += [run["run_id"] for run in body["results"]]
        link = body["next"]
        if link is None:
            break
        body = client.get(link).json()
    everything_at_once = client.get(url("run-list"), {**query, "page_size": 1000}).json()
    assert seen == [run["run_id"] for run in everything_at_once["results"]]
    token = client.get(url("run-list"), query).json()["next_page_token"]
    error = assert_error(
        client.get(url("run-list"), {**query, "order_by": "metrics.acc ASC", "page_token": token}), 400
    )
    assert error["message"] == "Invalid page token."
    assert_error(client.get(url("run-list"), {**query, "page_token": token[:-2]}), 400)
