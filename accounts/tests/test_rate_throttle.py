"""API rate limits: O(1) fixed-window counters, 429 with Retry-After, fail open when the cache is down.

Runs against whatever cache the settings give (Redis in the PostgreSQL + Redis pass, locmem otherwise);
the dead-Redis tests point a RedisCache at a closed port.
"""

import logging
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.test import override_settings

from accounts import throttling
from accounts.tests.factories import UserFactory
from accounts.throttling import AnonRateThrottle, FixedWindowRateThrottle, UserRateThrottle, count_hit

DEAD_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def throttle_for(rate: str, base: type[FixedWindowRateThrottle] = UserRateThrottle) -> FixedWindowRateThrottle:
    """A throttle of ``base`` with its own scope (so tests never share counters) and ``rate``."""
    scope = f"test-{uuid.uuid4().hex[:12]}"
    throttle_class = type("TestThrottle", (base,), {"scope": scope})
    with override_settings(REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {scope: rate}}):
        return throttle_class()


def request_of(user=None, ip="10.1.2.3"):
    return SimpleNamespace(user=user or AnonymousUser(), META={"REMOTE_ADDR": ip}, headers={})


@pytest.fixture
def clock(monkeypatch):
    """A settable ``time.time`` for the throttle module."""
    now = SimpleNamespace(value=1_000_040.0)
    monkeypatch.setattr(throttling.time, "time", lambda: now.value)
    return now


def test_parse_rate():
    assert FixedWindowRateThrottle.parse_rate("100/min") == (100, 60)
    assert FixedWindowRateThrottle.parse_rate("5/s") == (5, 1)
    assert FixedWindowRateThrottle.parse_rate("2/hour") == (2, 3600)
    assert FixedWindowRateThrottle.parse_rate("1/day") == (1, 86400)
    assert FixedWindowRateThrottle.parse_rate(None) == (None, None)


def test_limit_per_window_then_refused_with_wait(db, clock):
    throttle = throttle_for("3/min")
    request = request_of(UserFactory())
    assert [throttle.allow_request(request, None) for _ in range(4)] == [True, True, True, False]
    # 1_000_040 is 20 s into its minute: 40 s left.
    assert throttle.wait() == pytest.approx(40.0)


def test_refused_requests_count_and_window_roll_over_resets(db, clock):
    throttle = throttle_for("2/min")
    request = request_of(UserFactory())
    assert [throttle.allow_request(request, None) for _ in range(4)] == [True, True, False, False]
    clock.value += 40  # the next minute
    assert [throttle.allow_request(request, None) for _ in range(3)] == [True, True, False]


def test_users_are_counted_separately(db, clock):
    throttle = throttle_for("1/min")
    first, second = request_of(UserFactory()), request_of(UserFactory())
    assert throttle.allow_request(first, None)
    assert not throttle.allow_request(first, None)
    assert throttle.allow_request(second, None)


def test_anon_throttle_counts_by_ip_and_skips_authenticated(db, clock):
    throttle = throttle_for("1/min", AnonRateThrottle)
    assert throttle.allow_request(request_of(ip="10.0.0.1"), None)
    assert not throttle.allow_request(request_of(ip="10.0.0.1"), None)
    assert throttle.allow_request(request_of(ip="10.0.0.2"), None)
    user_request = request_of(UserFactory(), ip="10.0.0.1")
    assert all(throttle.allow_request(user_request, None) for _ in range(3))


def test_user_throttle_counts_anonymous_callers_by_ip(clock):
    throttle = throttle_for("1/min")
    assert throttle.allow_request(request_of(ip="10.0.0.7"), None)
    assert not throttle.allow_request(request_of(ip="10.0.0.7"), None)


def test_no_rate_means_no_limit():
    throttle = throttle_for(None)
    assert all(throttle.allow_request(request_of(), None) for _ in range(5))


def test_counter_is_one_integer_per_window(clock):
    key = f"test-counter-{uuid.uuid4().hex}"
    assert [count_hit(key, 5) for _ in range(3)] == [1, 2, 3]
    assert caches["default"].get(key) == 3


def test_counter_recovers_when_the_key_expires_between_add_and_incr(monkeypatch):
    backend = caches["default"]
    if "locmem" not in type(backend).__module__:
        pytest.skip("the add/incr path is the non-Redis fallback")
    monkeypatch.setattr(backend, "add", lambda *args, **kwargs: False)
    monkeypatch.setattr(backend, "incr", lambda *args, **kwargs: (_ for _ in ()).throw(ValueError("gone")))
    assert count_hit(f"test-counter-{uuid.uuid4().hex}", 5) == 1


@override_settings(CACHES=DEAD_REDIS)
def test_rate_limit_fails_open_when_redis_is_down(clock, caplog, monkeypatch):
    monkeypatch.setattr(throttling, "_last_warning", 0.0)
    throttle = throttle_for("1/min")
    with caplog.at_level(logging.WARNING, logger="mlplatform.throttling"):
        assert all(throttle.allow_request(request_of(ip="10.0.0.3"), None) for _ in range(3))
    warnings = [r for r in caplog.records if "failing open" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited logging, not one line per request


@override_settings(CACHES=DEAD_REDIS)
def test_login_throttle_fails_open_when_redis_is_down(monkeypatch):
    monkeypatch.setattr(throttling, "_last_warning", 0.0)
    throttling.record_failure(username="ada", ip="10.0.0.4")
    throttling.check(username="ada", ip="10.0.0.4")
    throttling.reset(username="ada", ip="10.0.0.4")


def test_api_answers_429_envelope_with_retry_after(client_for, db, settings, monkeypatch):
    # Own counters: user ids are reused after rollbacks, and the cache outlives a test.
    monkeypatch.setattr(UserRateThrottle, "key_prefix", f"rate-{uuid.uuid4().hex}")
    user = UserFactory()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "2/min"},
    }
    client = client_for(user)
    assert [client.get("/api/v1/me/").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/me/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


@override_settings(CACHES=DEAD_REDIS)
def test_api_requests_succeed_while_redis_is_down(client_for, db):
    client = client_for(UserFactory())
    assert client.get("/api/v1/me/").status_code == 200
