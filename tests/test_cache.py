"""The Redis cache backend keeps one connection pool per process, not one per request context."""

import os
import uuid

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from mlplatform.cache import RedisCache


def test_cache_objects_with_the_same_servers_share_one_client():
    first = RedisCache("redis://127.0.0.1:6399/0", {})
    second = RedisCache("redis://127.0.0.1:6399/0", {})
    other = RedisCache("redis://127.0.0.1:6399/1", {})
    assert isinstance(first, DjangoRedisCache)
    assert first._cache is second._cache
    assert other._cache is not first._cache
    assert first._cache.get_client(write=True) is second._cache.get_client(write=False)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_requests_reuse_one_connection():
    url = os.environ["REDIS_URL"]
    options = {"client_name": f"cache-test-{uuid.uuid4().hex}"}  # a pool of its own, not the suite's
    for _ in range(5):
        cache = RedisCache(url, {"KEY_PREFIX": "cache-test", "OPTIONS": options})  # one per async context
        cache.set("k", 1, 5)
        assert cache.get("k") == 1
    pool = cache._cache.get_client(write=True).connection_pool
    assert len(pool._available_connections) + len(pool._in_use_connections) == 1
