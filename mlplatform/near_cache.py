"""A process-local copy of hot Redis cache entries, dropped in every process the moment one forgets them.

The API token row and a user's team roles are read on every request. Reading them from Redis costs a
round trip each (about 0.4 ms of the log-metric path); keeping them in the process costs nothing, but a
revocation made by another process must still apply to the very next request everywhere.

How the copies stay right:

- ``forget(keys)`` deletes the keys from Redis, then PUBLISHes them on :data:`CHANNEL`.
- Each process holds one subscribed connection. ``get`` first drains it without blocking and drops every
  key named there. Redis pushes a PUBLISH to the subscribers before it answers the publisher, so by the
  time the forgetting process has returned (and its caller has sent the next request), the message is
  already in this process's socket: the next ``get`` sees it. No background thread is involved.
- A value read from Redis is kept only if no forget message arrived while it was being read.
- Copies live ``ttl`` seconds at most (the Redis entries' own lifetime), a safety net for a lost message.
- Until the subscription is confirmed, and after any error on it, nothing is kept in the process:
  reads go to Redis as before, and the subscription is retried a few seconds later. When redis-py
  reconnects the subscription by itself, the copies are dropped too (messages may have been missed) and
  kept again once the server confirms the new SUBSCRIBE.

Without Redis (the in-memory cache of a single dev process) ``get`` reads the cache directly.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache, caches

from mlplatform.cache import RedisCache

logger = logging.getLogger("mlplatform.cache")

CHANNEL = "mlplatform:near-cache:forget"
MAX_ENTRIES = 10_000  # copies per process; beyond it expired copies go, then all (they are only a shortcut)
RETRY_SECONDS = 5.0
SUBSCRIBE_TIMEOUT_SECONDS = 1.0


class NearCache:
    """Process-local copies of chosen entries of Django's default cache (see the module docstring)."""

    def __init__(self, ttl: float, channel: str = CHANNEL) -> None:
        self.ttl = ttl
        self.channel = channel
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()
        self._pubsub: Any = None
        self._confirmed = False  # the server acknowledged our SUBSCRIBE on the current connection
        self._retry_at = 0.0
        self._forgotten = 0  # messages handled so far: a read that saw it change keeps nothing

    # Reading ---------------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The value from this process's copy, else from the cache (kept here when it is safe to)."""
        with self._lock:
            listening = self._listening()
            if listening:
                entry = self._entries.get(key)
                if entry is not None and entry[0] > time.monotonic():
                    # Our own bytes, pickled in this process: a fresh object per request, as Redis gives.
                    return pickle.loads(entry[1])  # noqa: S301
                seen = self._forgotten
        value = cache.get(key)
        if listening and value is not None:
            self._keep(key, value, seen)
        return value

    def set(self, key: str, value: Any, timeout: float) -> None:
        """Store in the cache and (while listening) here."""
        with self._lock:
            self._listening()
            seen = self._forgotten
        cache.set(key, value, timeout)
        self._keep(key, value, seen)

    def _keep(self, key: str, value: Any, seen: int) -> None:
        data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._listening() and self._forgotten == seen:
                if len(self._entries) >= MAX_ENTRIES:
                    self._prune()
                self._entries[key] = (time.monotonic() + self.ttl, data)

    def _prune(self) -> None:
        """Bound memory: drop expired copies, and every copy if that is not enough (called with the lock)."""
        now = time.monotonic()
        self._entries = {key: entry for key, entry in self._entries.items() if entry[0] > now}
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()

    # Forgetting ------------------------------------------------------------------------------

    def forget(self, keys: Iterable[str]) -> None:
        """Drop ``keys`` here, in the cache and in every other process; raises when Redis is down."""
        keys = list(keys)
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
            self._forgotten += 1
        cache.delete_many(keys)
        client = redis_client()
        if client is not None and keys:
            client.publish(self.channel, "\n".join(keys))

    def clear_local(self) -> None:
        """Drop every copy held by this process."""
        with self._lock:
            self._entries.clear()
            self._forgotten += 1

    # The subscription (called with the lock held) ---------------------------------------------

    def _listening(self) -> bool:
        """Drain pending forget messages; False when copies cannot be trusted (no subscription)."""
        if self._pubsub is None and not self._subscribe():
            return False
        try:
            while True:
                message = self._pubsub.get_message(timeout=0.0)
                if message is None:
                    return self._confirmed
                if message.get("type") == "subscribe":
                    self._confirmed = True
                elif message.get("type") == "message":
                    for key in message["data"].decode().split("\n"):
                        self._entries.pop(key, None)
                    self._forgotten += 1
        except Exception:  # connection lost: messages may be missed from now on
            logger.warning("near cache: subscription lost; reading Redis until it is back", exc_info=True)
            self._drop_subscription()
            return False

    def _subscribe(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False
        client = redis_client()
        if client is None:
            return False
        self._retry_at = now + RETRY_SECONDS
        try:
            pubsub = client.pubsub()
            pubsub.subscribe(self.channel)
            confirmation = pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_SECONDS)
            if confirmation is None or confirmation.get("type") != "subscribe":
                pubsub.close()
                return False
            # redis-py reconnects a dropped subscription by itself (and subscribes again); whatever was
            # published in between is lost, so every reconnect drops the copies until it is confirmed.
            pubsub.connection.register_connect_callback(self._reconnected)
        except Exception:
            logger.warning("near cache: cannot subscribe; reading Redis directly", exc_info=True)
            return False
        self._pubsub = pubsub
        self._reconnected()
        self._confirmed = True
        return True

    def _reconnected(self, connection: Any = None) -> None:
        """The subscription's connection was (re)established: trust nothing until SUBSCRIBE is confirmed."""
        self._confirmed = False
        self._entries.clear()
        self._forgotten += 1

    def _drop_subscription(self) -> None:
        try:
            self._pubsub.close()
        except Exception:  # already broken
            logger.debug("near cache: closing a broken subscription failed", exc_info=True)
        self._pubsub = None
        self._reconnected()
        self._retry_at = time.monotonic() + RETRY_SECONDS


def redis_client() -> Any:
    """The redis-py client behind the default cache, or None when the cache is not Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(write=True)


# The API token rows and team roles (accounts.authentication, accounts.permissions), cached for 10 s.
AUTH_ENTRIES = NearCache(ttl=10)
