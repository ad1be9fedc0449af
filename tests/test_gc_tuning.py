"""The server's garbage-collector settings (mlplatform.gc_tuning)."""

from __future__ import annotations

import gc

import pytest

from mlplatform.gc_tuning import OFF, thresholds_from_env, tune_gc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("off", OFF),
        (" OFF ", OFF),
        ("1000,10,10", (1000, 10, 10)),
        ("1000,10", None),
        ("a,b,c", None),
        ("0,10,10", None),
    ],
)
def test_thresholds_from_env(raw, expected):
    assert thresholds_from_env(raw) == expected


@pytest.fixture
def restored_gc():
    """Put the test process's collector back as it was."""
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_freezes_start_up_objects_and_keeps_cpython_thresholds(restored_gc):
    before = gc.get_threshold()
    assert tune_gc({}) is True
    assert gc.get_threshold() == before and gc.get_freeze_count() > 0


def test_tune_gc_sets_configured_thresholds(restored_gc):
    assert tune_gc({"MLPLATFORM_GC_THRESHOLDS": "30000,15,50"}) is True
    assert gc.get_threshold() == (30000, 15, 50)
    assert gc.get_freeze_count() > 0


def test_tune_gc_off_changes_nothing(restored_gc):
    before = gc.get_threshold()
    gc.unfreeze()
    assert tune_gc({"MLPLATFORM_GC_THRESHOLDS": "off"}) is False
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
