"""Process-local copies of Redis cache entries: served without Redis, dropped the moment any process forgets them.

Two ``NearCache`` objects on one channel stand for two server processes: each has its own subscribed
connection, exactly as two daphne processes would.
"""

import os
import time
import uuid

import pytest
from django.core.cache import cache
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from mlplatform import near_cache
from mlplatform.near_cache import NearCache, redis_client

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the Redis cache)")


@pytest.fixture
def processes():
    """Two near caches on a channel of their own."""
    channel = f"near-cache-test:{uuid.uuid4().hex}"
    return NearCache(ttl=10, channel=channel), NearCache(ttl=10, channel=channel)


def key() -> str:
    return f"near-test:{uuid.uuid4().hex}"


@needs_redis
def test_a_copy_is_served_from_the_process_until_another_process_forgets_it(processes):
    here, there = processes
    name = key()
    here.set(name, {"role": 1}, 10)
    cache.delete(name)  # behind its back: only a forget message may drop the copy
    assert here.get(name) == {"role": 1}
    there.forget([name])
    assert here.get(name) is None  # at once: the message is read before the copy is used


@needs_redis
def test_each_read_returns_a_fresh_object(processes):
    here, _ = processes
    name = key()
    here.set(name, {"roles": {}}, 10)
    first = here.get(name)
    first["roles"][1] = 4  # a request decorating its object must not change the next request's
    assert here.get(name) == {"roles": {}}


@needs_redis
def test_a_value_read_while_a_forget_arrived_is_not_kept(processes, monkeypatch):
    here, there = processes
    name = key()
    cache.set(name, "old", 10)
    here.get(key())  # subscribe first

    class RacingCache:
        """Redis answers "old", and meanwhile another process forgets the key."""

        def get(self, *args):
            value = cache.get(*args)
            there.forget([name])
            return value

        def __getattr__(self, attribute):
            return getattr(cache, attribute)

    monkeypatch.setattr(near_cache, "cache", RacingCache())
    assert here.get(name) == "old"
    monkeypatch.undo()
    cache.set(name, "new", 10)
    assert here.get(name) == "new"  # nothing was kept from the racing read


@needs_redis
def test_copies_expire_after_their_ttl(processes):
    here, _ = processes
    here.ttl = 0.05
    name = key()
    here.set(name, "first", 10)
    cache.set(name, "second", 10)
    assert here.get(name) == "first"
    time.sleep(0.1)
    assert here.get(name) == "second"


@needs_redis
def test_a_dropped_subscription_drops_the_copies_until_it_is_confirmed_again(processes):
    here, there = processes
    name = key()
    here.set(name, "kept", 10)
    cache.set(name, "changed", 10)
    here._pubsub.connection.disconnect()  # Redis restarted or the network blipped: redis-py reconnects
    assert here.get(name) == "changed"  # messages may have been missed: the copy is gone
    deadline = time.monotonic() + 5
    while not here._confirmed and time.monotonic() < deadline:
        here.get(key())
    assert here._confirmed
    here.set(name, "kept again", 10)
    cache.delete(name)
    assert here.get(name) == "kept again"
    there.forget([name])  # the new subscription hears it
    assert here.get(name) is None


@needs_redis
def test_an_error_on_the_subscription_falls_back_to_redis_and_retries(processes, monkeypatch):
    here, _ = processes
    name = key()
    here.set(name, "kept", 10)
    cache.set(name, "changed", 10)

    def broken(timeout):
        raise ConnectionError("subscription lost")

    monkeypatch.setattr(here._pubsub, "get_message", broken)
    assert here.get(name) == "changed"
    assert here._pubsub is None
    cache.set(name, "changed again", 10)
    assert here.get(name) == "changed again"  # nothing kept before the retry time
    here._retry_at = 0.0
    assert here.get(name) == "changed again"
    cache.delete(name)
    assert here.get(name) == "changed again"  # subscribed again, and kept


@needs_redis
def test_a_subscription_that_is_not_confirmed_is_not_trusted(processes, monkeypatch):
    here, _ = processes

    class SilentPubSub:
        def subscribe(self, channel):
            pass

        def get_message(self, timeout):
            return None

        def close(self):
            pass

    class Client:
        def pubsub(self):
            return SilentPubSub()

    monkeypatch.setattr(near_cache, "redis_client", Client)
    name = key()
    here.set(name, "value", 10)
    cache.set(name, "newer", 10)
    assert here.get(name) == "newer"


def test_without_redis_reads_go_to_the_cache(processes, settings):
    here, _ = processes
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        assert redis_client() is None
        name = key()
        here.set(name, "value", 10)
        assert here.get(name) == "value"
        cache.set(name, "changed", 10)
        assert here.get(name) == "changed"  # no process copy without a subscription
        here.forget([name])
        assert here.get(name) is None


def test_redis_down_raises_to_the_caller_who_falls_back(processes):
    here, _ = processes
    dead = {"default": {"BACKEND": "mlplatform.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=dead):
        here._retry_at = 0.0
        with pytest.raises(RedisConnectionError):
            here.get(key())
        with pytest.raises(RedisConnectionError):
            here.forget([key()])
        here.clear_local()
        assert here._entries == {}


@needs_redis
def test_copies_are_bounded(processes, monkeypatch):
    here, _ = processes
    monkeypatch.setattr(near_cache, "MAX_ENTRIES", 3)
    here.ttl = 0.05
    for index in range(3):
        here.set(f"{key()}-{index}", index, 10)
    time.sleep(0.1)  # all three expired: the next copy drops them
    fresh = key()
    here.ttl = 10
    here.set(fresh, "fresh", 10)
    assert list(here._entries) == [fresh]
    for index in range(3):  # full of live copies: the next one starts over
        here.set(f"{key()}-{index}", index, 10)
    assert len(here._entries) == 1
